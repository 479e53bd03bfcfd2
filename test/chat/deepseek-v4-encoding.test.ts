// DeepSeek-V4 chat encoder: the 23 prompts rendered by the official encoding_dsv4.py must come out
// byte for byte; the fixed texts are checked against the digests in shared/spec/README.md; the
// Python-compatible JSON writer/reader against values printed by CPython's json module; the
// pre-processing rules of spec §13.3/§13.4 against hand-built prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  encodeV4Messages, parsePythonJson, pythonFloatRepr, toPythonJson, PyFloat,
  V4_THINK_MAX_PREFIX, V4_TOOLS_PREAMBLE, V4_TOOLS_CLOSING,
  type V4EncodeOptions, type V4Message, type V4ReasoningEffort,
} from '../../src/chat/deepseek-v4-encoding.js';

interface GoldenCase {
  name: string;
  args: { thinking_mode: 'chat' | 'thinking'; reasoning_effort: V4ReasoningEffort | null; drop_thinking: boolean; add_default_bos_token: boolean };
  messages: V4Message[];
  context?: V4Message[];
  expected: string;
}

const casesUrl = new URL('../../../../shared/spec/testdata/dsv4_encoding_cases.json', import.meta.url);
const golden = JSON.parse(readFileSync(casesUrl, 'utf8')) as { cases: GoldenCase[] };

test('the golden file holds the 23 official cases', () => {
  assert.equal(golden.cases.length, 23);
});

for (const c of golden.cases) {
  test(`official prompt: ${c.name}`, () => {
    const opts: V4EncodeOptions = {
      thinking: c.args.thinking_mode === 'thinking',
      reasoningEffort: c.args.reasoning_effort,
      dropThinking: c.args.drop_thinking,
      addBos: c.args.add_default_bos_token,
      context: c.context,
    };
    assert.equal(encodeV4Messages(c.messages, opts), c.expected);
  });
}

test('fixed texts have the lengths and sha256 listed in shared/spec/README.md', () => {
  const digest = (s: string) => [Buffer.byteLength(s, 'utf8'), createHash('sha256').update(s, 'utf8').digest('hex')];
  assert.deepEqual(digest(V4_THINK_MAX_PREFIX), [476, 'f7a24f3b3050d4a83781e9b755b316aae2ec1d9dc87562541d90bcb04d7350f7']);
  assert.deepEqual(digest(V4_TOOLS_PREAMBLE), [890, 'c7c9042638154a237b5d1bd48be772374a35a4d24c5cacfd1ffbd92703da329c']);
  assert.deepEqual(digest(V4_TOOLS_CLOSING), [99, '690702850fe256512cb1ee67c4e436ecb3e735c71ebee77ca45ff357a75fb5a7']);
});

test('option defaults: BOS written, reasoning dropped, effort none', () => {
  const msgs: V4Message[] = [
    { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1', reasoning_content: 'R1' }, { role: 'user', content: 'U2' },
  ];
  assert.equal(encodeV4Messages(msgs, { thinking: true }),
    '<｜begin▁of▁sentence｜><｜User｜>U1<｜Assistant｜></think>A1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜><think>');
});

// --- tool calls --------------------------------------------------------------------------------

const CALL_PREFIX = '<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>';
function renderCall(args: string): string {
  const prompt = encodeV4Messages([
    { role: 'user', content: 'Q' },
    { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] },
  ], { thinking: false });
  assert.ok(prompt.startsWith(CALL_PREFIX));
  return prompt.slice(CALL_PREFIX.length);
}

test('unparsable tool arguments render as one string parameter named arguments', () => {
  assert.equal(renderCall('{"city": "Par'),
    '\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n' +
    '<｜DSML｜parameter name="arguments" string="true">{"city": "Par</｜DSML｜parameter>\n' +
    '</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>');
  // Python's json.loads rejects these too, so they also fall back.
  for (const bad of ["{'a': 1}", '{"a": 1,}', '\ufeff{}', '']) {
    assert.match(renderCall(bad), /^\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="arguments" string="true">/);
  }
});

test('tool arguments keep key order, ints, floats and raw string values like Python', () => {
  assert.equal(renderCall('{"b": 1.0, "2": 10000000000000000000001, "a": [1e16, 0.00001], "s": "x \\"y\\"\\n", "n": null}'),
    '\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n' +
    '<｜DSML｜parameter name="b" string="false">1.0</｜DSML｜parameter>\n' +
    '<｜DSML｜parameter name="2" string="false">10000000000000000000001</｜DSML｜parameter>\n' +
    '<｜DSML｜parameter name="a" string="false">[1e+16, 1e-05]</｜DSML｜parameter>\n' +
    '<｜DSML｜parameter name="s" string="true">x "y"\n</｜DSML｜parameter>\n' +
    '<｜DSML｜parameter name="n" string="false">null</｜DSML｜parameter>\n' +
    '</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>');
});

test('a call without arguments renders an empty parameter list between two newlines', () => {
  assert.equal(renderCall('{}'),
    '\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>');
});

test('tool arguments that are JSON but not an object are an error', () => {
  assert.throws(() => renderCall('[1, 2]'), /tool call arguments must be a JSON object/);
});

// --- pre-processing ----------------------------------------------------------------------------

test('consecutive user and tool messages form one user turn; list contents are flattened', () => {
  const prompt = encodeV4Messages([
    { role: 'user', content: 'first' },
    { role: 'user', content: [{ type: 'text', text: 'second' }, { type: 'text', text: 'third' }] },
    { role: 'tool', tool_call_id: 'x', content: [{ type: 'text', text: 'r1' }, { type: 'image_url', image_url: {} }] },
  ], { thinking: false });
  assert.equal(prompt,
    '<｜begin▁of▁sentence｜><｜User｜>first\n\nsecond\n\nthird\n\n<tool_result>r1\n\n[Unsupported image_url]</tool_result>' +
    '<｜Assistant｜></think>');
});

test('a user turn with a task takes no further user text', () => {
  const prompt = encodeV4Messages([
    { role: 'user', content: 'A', task: 'title' },
    { role: 'user', content: 'B' },
  ], { thinking: false });
  // Two turns; only the last one gets the generation suffix.
  assert.equal(prompt, '<｜begin▁of▁sentence｜><｜User｜>A<｜User｜>B<｜Assistant｜></think>');
});

test('tool results follow the order of the latest assistant calls; unknown ids count as position 0', () => {
  const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'f', arguments: '{}' } });
  const msgs: V4Message[] = [
    { role: 'user', content: 'Q' },
    { role: 'assistant', content: 'ok', tool_calls: [call('a'), call('b'), call('c')] },
    { role: 'tool', tool_call_id: 'c', content: 'C' },
    { role: 'tool', tool_call_id: 'zz', content: 'Z' },
    { role: 'tool', tool_call_id: 'b', content: 'B' },
    { role: 'tool', tool_call_id: 'a', content: 'A' },
  ];
  const before = structuredClone(msgs);
  const prompt = encodeV4Messages(msgs, { thinking: false });
  assert.deepEqual(msgs, before, 'the input messages are left as they were');
  assert.ok(prompt.endsWith(
    '<｜User｜><tool_result>Z</tool_result>\n\n<tool_result>A</tool_result>\n\n' +
    '<tool_result>B</tool_result>\n\n<tool_result>C</tool_result><｜Assistant｜></think>'), prompt);
});

test('thinking drop removes earlier developer turns and earlier reasoning only', () => {
  const msgs: V4Message[] = [
    { role: 'developer', content: 'D' },
    { role: 'user', content: 'U1' },
    { role: 'assistant', content: 'A1', reasoning_content: 'R1' },
    { role: 'user', content: 'U2' },
    { role: 'assistant', content: 'A2', reasoning_content: 'R2', wo_eos: true },
  ];
  assert.equal(encodeV4Messages(msgs, { thinking: true }),
    '<｜begin▁of▁sentence｜><｜User｜>U1<｜Assistant｜></think>A1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜><think>R2</think>A2');
  // Without dropping, the developer turn stays (as a user-like turn) and every reasoning is kept.
  assert.equal(encodeV4Messages(msgs, { thinking: true, dropThinking: false }),
    '<｜begin▁of▁sentence｜><｜User｜>D<｜User｜>U1<｜Assistant｜><think>R1</think>A1<｜end▁of▁sentence｜>' +
    '<｜User｜>U2<｜Assistant｜><think>R2</think>A2');
});

test('tools on a user message are dropped and do not switch dropping off', () => {
  const tools = [{ type: 'function' as const, function: { name: 'f' } }];
  const prompt = encodeV4Messages([
    { role: 'user', content: 'U1', tools },
    { role: 'assistant', content: 'A1', reasoning_content: 'R1' },
    { role: 'user', content: 'U2' },
  ], { thinking: true });
  assert.equal(prompt,
    '<｜begin▁of▁sentence｜><｜User｜>U1<｜Assistant｜></think>A1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜><think>');
});

test('developer turn with tools and response format; a reminder after a user turn takes the suffix', () => {
  const prompt = encodeV4Messages([
    { role: 'developer', content: 'Dev', tools: [{ type: 'function', function: { name: 'g', parameters: { 'é': 1.5 } } }], response_format: { type: 'json_object' } },
    { role: 'latest_reminder', content: 'today' },
  ], { thinking: false });
  assert.equal(prompt,
    '<｜begin▁of▁sentence｜><｜User｜>Dev\n\n' + V4_TOOLS_PREAMBLE + '{"name": "g", "parameters": {"é": 1.5}}' + V4_TOOLS_CLOSING +
    '\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{"type": "json_object"}' +
    '<｜Assistant｜></think><｜latest_reminder｜>today');
});

test('an assistant turn after a task turn carries no reasoning', () => {
  const prompt = encodeV4Messages([
    { role: 'user', content: 'Q', task: 'action' },
    { role: 'assistant', content: 'search', reasoning_content: 'R' },
  ], { thinking: true, dropThinking: false });
  assert.equal(prompt, '<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think><｜action｜>search<｜end▁of▁sentence｜>');
});

test('Think-Max is written only at message 0, so not after a context', () => {
  const prompt = encodeV4Messages([{ role: 'user', content: 'U2' }], {
    thinking: true, reasoningEffort: 'max', context: [{ role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }],
  });
  assert.equal(prompt, '<｜User｜>U2<｜Assistant｜><think>');
});

test('bad input gives clear errors', () => {
  assert.throws(() => encodeV4Messages([{ role: 'user', content: 'x' }], { thinking: true, reasoningEffort: 'low' as V4ReasoningEffort }),
    /invalid reasoning effort "low"/);
  assert.throws(() => encodeV4Messages([{ role: 'developer', content: '' }], { thinking: false }), /developer message without content/);
  assert.throws(() => encodeV4Messages([{ role: 'narrator' } as unknown as V4Message], { thinking: false }), /unknown message role "narrator"/);
  assert.throws(() => encodeV4Messages([{ role: 'user', content: 'x', task: 'poem' } as unknown as V4Message], { thinking: false }),
    /unknown task "poem"/);
});

// --- Python-compatible JSON (expected strings printed by CPython 3.11 json.dumps / repr) --------

test('floats print as Python repr', () => {
  const cases: [number, string][] = [
    [1.5, '1.5'], [1e16, '1e+16'], [1e15, '1000000000000000.0'], [1e-5, '1e-05'], [0.0001, '0.0001'], [0.1, '0.1'],
    [-0, '-0.0'], [100, '100.0'], [1e300, '1e+300'], [-2.5e-7, '-2.5e-07'], [123456789.125, '123456789.125'],
    [Infinity, 'Infinity'], [NaN, 'NaN'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [0.3, '0.3'],
  ];
  for (const [x, want] of cases) assert.equal(pythonFloatRepr(x), want, String(x));
});

test('json.dumps(ensure_ascii=False) escaping and separators', () => {
  assert.equal(toPythonJson('q"b\\s\n\r\t\b\f\x01\x1f\x7f é 中 😀'), '"q\\"b\\\\s\\n\\r\\t\\b\\f\\u0001\\u001f\x7f é 中 😀"');
  assert.equal(toPythonJson({ a: [1, 2.5, true, null], b: {}, c: [], d: new PyFloat(3), e: 12n }),
    '{"a": [1, 2.5, true, null], "b": {}, "c": [], "d": 3.0, "e": 12}');
});

test('json.loads semantics: order, duplicates, ints vs floats, constants, surrogates', () => {
  const v = parsePythonJson('{"b": 1.0, "2": 10000000000000000000001, "a": [1e16, 0.00001, -0], "b": 2.50, "x": NaN, "y": -Infinity, "z": "\\ud83d\\ude00\\u00e9"}');
  assert.equal(toPythonJson(v), '{"b": 2.5, "2": 10000000000000000000001, "a": [1e+16, 1e-05, 0], "x": NaN, "y": -Infinity, "z": "😀é"}');
  assert.equal(toPythonJson(parsePythonJson(' \n{"a" : [ 1 , 2 ] }\r\t ')), '{"a": [1, 2]}');
  for (const bad of ['\ufeff{}', '{"a":1,}', '[1,]', '01', '1.', '"a\x01"', "{'a':1}", '"\\x"', ' {"a": 1} x', '-', '.5', '+1', '1e', 'nan', '']) {
    assert.throws(() => parsePythonJson(bad), /invalid JSON/, JSON.stringify(bad));
  }
});
