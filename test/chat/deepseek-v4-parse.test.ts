// DeepSeek-V4 completion parser: the 4 results of the official parser must come out exactly (in
// strict and lenient mode); strict mode rejects what the reference rejects with a clear message;
// lenient mode recovers what it can; tool calls rendered by the encoder parse back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseV4Completion, type V4ParsedCompletion } from '../../src/chat/deepseek-v4-parse.js';
import { encodeV4Messages } from '../../src/chat/deepseek-v4-encoding.js';

interface ParseCase {
  thinking_mode: 'chat' | 'thinking';
  completion: string;
  expected: {
    role: 'assistant';
    content: string;
    reasoning_content: string;
    tool_calls: { type: 'function'; function: { name: string; arguments: string } }[];
  };
}

const casesUrl = new URL('../../../../shared/spec/testdata/dsv4_parse_cases.json', import.meta.url);
const golden = JSON.parse(readFileSync(casesUrl, 'utf8')) as { cases: ParseCase[] };

const EOS = '<｜end▁of▁sentence｜>';
const BLOCK = (invokes: string) => `\n\n<｜DSML｜tool_calls>\n${invokes}</｜DSML｜tool_calls>`;
const INVOKE = (name: string, params: string) => `<｜DSML｜invoke name="${name}">\n${params}</｜DSML｜invoke>\n`;
const PARAM = (name: string, isString: boolean, value: string) =>
  `<｜DSML｜parameter name="${name}" string="${isString}">${value}</｜DSML｜parameter>\n`;

test('the golden file holds the 4 official cases', () => {
  assert.equal(golden.cases.length, 4);
});

golden.cases.forEach((c, k) => {
  const want: V4ParsedCompletion = {
    reasoning: c.expected.reasoning_content,
    content: c.expected.content,
    toolCalls: c.expected.tool_calls.map((t) => ({ name: t.function.name, arguments: t.function.arguments })),
  };
  for (const strict of [true, false]) {
    test(`official parse case ${k} (${c.thinking_mode}, ${strict ? 'strict' : 'lenient'})`, () => {
      assert.deepEqual(parseV4Completion(c.completion, { thinking: c.thinking_mode === 'thinking', strict }), want);
    });
  }
});

test('strict is the default', () => {
  assert.throws(() => parseV4Completion('no end', { thinking: false }), /missing end-of-sentence token/);
});

test('strict: special tokens inside content or reasoning are rejected', () => {
  assert.throws(() => parseV4Completion(`a<think>b${EOS}`, { thinking: false }), /special token <think> inside the content/);
  assert.throws(() => parseV4Completion(`r<｜begin▁of▁sentence｜></think>a${EOS}`, { thinking: true }),
    /special token <｜begin▁of▁sentence｜> inside the reasoning/);
  assert.throws(() => parseV4Completion(`r</think>a</think>${EOS}`, { thinking: true }), /special token <\/think> inside the content/);
  assert.throws(() => parseV4Completion(`a<｜DSML｜invoke name="x">${EOS}`, { thinking: false }), /special token ｜DSML｜ inside the content/);
});

test('strict: text after the tool-call block or after EOS is rejected', () => {
  const block = BLOCK(INVOKE('f', PARAM('x', true, 'v')));
  assert.throws(() => parseV4Completion(`ok${block}trailing${EOS}`, { thinking: false }), /text after the tool-call block: "trailing"/);
  assert.throws(() => parseV4Completion(`ok${EOS}more`, { thinking: false }), /text after the end-of-sentence token: "more"/);
  assert.throws(() => parseV4Completion(`ok${block}${EOS}more`, { thinking: false }), /text after the end-of-sentence token/);
});

test('strict: missing </think> in thinking mode is rejected', () => {
  assert.throws(() => parseV4Completion(`still thinking${EOS}`, { thinking: true }), /no <\/think> ends the reasoning/);
  assert.throws(() => parseV4Completion(`r${BLOCK(INVOKE('f', ''))}${EOS}`, { thinking: true }), /tool calls before <\/think>/);
});

test('strict: malformed tool blocks are rejected with what is wrong', () => {
  assert.throws(() => parseV4Completion(`${BLOCK(INVOKE('f', PARAM('x', true, '1') + PARAM('x', true, '2')))}${EOS}`, { thinking: false }),
    /duplicate parameter "x"/);
  assert.throws(() => parseV4Completion(`${BLOCK(INVOKE('f', '<｜DSML｜parameter name="x" string="maybe">1</｜DSML｜parameter>\n'))}${EOS}`,
    { thinking: false }), /bad parameter/);
  assert.throws(() => parseV4Completion(`${BLOCK('<｜DSML｜invoke nom="f">\n</｜DSML｜invoke>\n')}${EOS}`, { thinking: false }),
    /bad invoke header/);
  assert.throws(() => parseV4Completion(`\n\n<｜DSML｜tool_calls> <｜DSML｜invoke name="f">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>${EOS}`,
    { thinking: false }), /expected ">\\n" in the tool-call block/);
});

test('strict: truncation inside the tool block is accepted like the reference does', () => {
  // The reference stops reading at the end of the text without requiring the closing tags or EOS.
  assert.deepEqual(parseV4Completion('x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n', { thinking: false }),
    { reasoning: '', content: 'x', toolCalls: [{ name: 'f', arguments: '{}' }] });
  assert.deepEqual(parseV4Completion(`x${BLOCK(INVOKE('f', PARAM('a', false, '[1,2]')))}`, { thinking: false }),
    { reasoning: '', content: 'x', toolCalls: [{ name: 'f', arguments: '{"a": [1,2]}' }] });
});

test('strict: string parameters are JSON-encoded, others inserted verbatim', () => {
  const text = `r</think>${BLOCK(INVOKE('f', PARAM('q', true, 'say "hi"\nnow é') + PARAM('n', false, '1.50') + PARAM('bad', false, 'not json')))}${EOS}`;
  assert.deepEqual(parseV4Completion(text, { thinking: true }),
    { reasoning: 'r', content: '', toolCalls: [{ name: 'f', arguments: '{"q": "say \\"hi\\"\\nnow é", "n": 1.50, "bad": not json}' }] });
  // Lenient mode keeps the arguments valid JSON.
  assert.deepEqual(parseV4Completion(text, { thinking: true, strict: false }).toolCalls,
    [{ name: 'f', arguments: '{"q": "say \\"hi\\"\\nnow é", "n": 1.50, "bad": "not json"}' }]);
});

test('lenient: missing </think> makes everything reasoning', () => {
  assert.deepEqual(parseV4Completion(`still thinking${EOS}`, { thinking: true, strict: false }),
    { reasoning: 'still thinking', content: '', toolCalls: [] });
  assert.deepEqual(parseV4Completion('cut off mid-thought', { thinking: true, strict: false }),
    { reasoning: 'cut off mid-thought', content: '', toolCalls: [] });
});

test('lenient: a malformed tool block stays in the content', () => {
  const bad = `\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nom="f">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>`;
  assert.deepEqual(parseV4Completion(`r</think>Sure.${bad}${EOS}`, { thinking: true, strict: false }),
    { reasoning: 'r', content: `Sure.${bad}`, toolCalls: [] });
});

test('lenient: missing EOS, text after EOS, special tokens and text after the block are tolerated', () => {
  assert.deepEqual(parseV4Completion('partial answer', { thinking: false, strict: false }),
    { reasoning: '', content: 'partial answer', toolCalls: [] });
  assert.deepEqual(parseV4Completion(`a<think>b${EOS}ignored`, { thinking: false, strict: false }),
    { reasoning: '', content: 'a<think>b', toolCalls: [] });
  const block = BLOCK(INVOKE('f', PARAM('x', true, 'v')));
  assert.deepEqual(parseV4Completion(`ok${block} and more${EOS}`, { thinking: false, strict: false }),
    { reasoning: '', content: 'ok and more', toolCalls: [{ name: 'f', arguments: '{"x": "v"}' }] });
});

test('tool calls written by the encoder parse back to the same arguments', () => {
  const args = '{"city": "Zürich", "days": 3, "opts": {"unit": "C", "hours": [6, 12.5]}, "note": "a\\tb"}';
  const prompt = encodeV4Messages([
    { role: 'user', content: 'Q' },
    { role: 'assistant', content: 'Checking.', reasoning_content: 'Need data.', tool_calls: [
      { id: 'c1', type: 'function', function: { name: 'weather', arguments: args } },
      { id: 'c2', type: 'function', function: { name: 'time', arguments: '{"tz": "CET"}' } },
    ] },
  ], { thinking: true });
  const opened = '<｜Assistant｜><think>';
  const completion = prompt.slice(prompt.indexOf(opened) + opened.length);
  assert.deepEqual(parseV4Completion(completion, { thinking: true }), {
    reasoning: 'Need data.',
    content: 'Checking.',
    toolCalls: [{ name: 'weather', arguments: args }, { name: 'time', arguments: '{"tz": "CET"}' }],
  });
});
