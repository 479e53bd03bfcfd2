// DeepSeek-V4.1 prompt format (deepseek-v41.md §13, on top of deepseek-v4.md §13): expected prompts
// written out by hand from the spec text — the `<｜System｜>` segment with the numeric reasoning
// effort, system messages first and later, the renamed DSML tags, image parts — and V4.1 tool
// calls parsed back, whole and as a server streams them (one character at a time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeV4Messages, type V4EncodeOptions, type V4Message, type V4Tool } from '../../src/chat/deepseek-v4-encoding.js';
import { parseV4Completion } from '../../src/chat/deepseek-v4-parse.js';
import { chatFormatFor } from '../../src/chat/format.js';
import { compileToolCallConstraint } from '../../src/engine/constrain/tool-calls.js';
import type { TokenConstraint } from '../../src/engine/engine.js';
import type { LanguageModel } from '../../src/models/model.js';
import { deepseekTokenizer } from '../../src/tokenizer/index.js';
import { AnswerStream } from '../../src/server/answer.js';
import type { ChatEvent } from '../../src/server/chat.js';

const BOS = '<｜begin▁of▁sentence｜>';
const EOS = '<｜end▁of▁sentence｜>';
const SYS = '<｜System｜>';
const effort = (n: number) => `Reasoning Effort: ${n} (range 1-100, the higher the value, the more thorough the reasoning)\n\n`;

const v41 = (messages: V4Message[], opts: Omit<V4EncodeOptions, 'version'>) => encodeV4Messages(messages, { ...opts, version: 'v4.1' });

test('non-thinking chat: no system segment without a system message; a leading system message opens one', () => {
  assert.equal(v41([{ role: 'user', content: 'Hi' }], { thinking: false }), `${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
  assert.equal(v41([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], { thinking: false }),
    `${BOS}${SYS}Be brief.<｜User｜>Hi<｜Assistant｜></think>`);
  assert.equal(v41([
    { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'U2' },
  ], { thinking: false }), `${BOS}<｜User｜>U1<｜Assistant｜></think>A1${EOS}<｜User｜>U2<｜Assistant｜></think>`);
});

test('thinking: the effort line right after BOS at low 50, high 75 (the default), max 100, or a number', () => {
  const msgs: V4Message[] = [{ role: 'user', content: 'Hi' }];
  const want = (n: number) => `${BOS}${SYS}${effort(n)}<｜User｜>Hi<｜Assistant｜><think>`;
  assert.equal(v41(msgs, { thinking: true, reasoningEffort: 'low' }), want(50));
  assert.equal(v41(msgs, { thinking: true, reasoningEffort: 'high' }), want(75));
  assert.equal(v41(msgs, { thinking: true, reasoningEffort: 'max' }), want(100));
  assert.equal(v41(msgs, { thinking: true }), want(75));
  assert.equal(v41(msgs, { thinking: true, reasoningEffort: 37 }), want(37));
  assert.equal(v41(msgs, { thinking: false, reasoningEffort: 'max' }), `${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
  assert.ok(!v41(msgs, { thinking: true, reasoningEffort: 'max' }).includes('Absolute maximum'), 'no Think-Max paragraph in V4.1');
});

test('thinking with a system message first: it continues the effort segment', () => {
  assert.equal(v41([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], { thinking: true, reasoningEffort: 'low' }),
    `${BOS}${SYS}${effort(50)}Be brief.<｜User｜>Hi<｜Assistant｜><think>`);
});

test('a later system message is a <｜System｜> turn the assistant answers, and drops earlier reasoning like a user turn', () => {
  const msgs: V4Message[] = [
    { role: 'user', content: 'U1' },
    { role: 'assistant', content: 'A1', reasoning_content: 'R1' },
    { role: 'system', content: 'Now answer in French.' },
  ];
  assert.equal(v41(msgs, { thinking: true }),
    `${BOS}${SYS}${effort(75)}<｜User｜>U1<｜Assistant｜></think>A1${EOS}${SYS}Now answer in French.<｜Assistant｜><think>`);
  assert.equal(v41(msgs, { thinking: false }),
    `${BOS}<｜User｜>U1<｜Assistant｜></think>A1${EOS}${SYS}Now answer in French.<｜Assistant｜></think>`);
  // Followed by a user message, it takes no generation prompt of its own.
  assert.equal(v41([
    { role: 'system', content: 'S0' }, { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' },
    { role: 'system', content: 'S2' }, { role: 'user', content: 'U2' },
  ], { thinking: false }), `${BOS}${SYS}S0<｜User｜>U1<｜Assistant｜></think>A1${EOS}${SYS}S2<｜User｜>U2<｜Assistant｜></think>`);
});

test('after a context (turns already cached) the effort segment is not written again', () => {
  assert.equal(v41([{ role: 'user', content: 'U2' }], {
    thinking: true, reasoningEffort: 'max', context: [{ role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }],
  }), '<｜User｜>U2<｜Assistant｜><think>');
});

const WEATHER: V4Tool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};

// V4's tools block (deepseek-v4.md §13.4, golden `*_tools_*`) with the V4.1 tag names.
const TOOLS_BLOCK =
  '## Tools\n\n' +
  'You have access to a set of tools to help answer the user\'s question. You can invoke tools by writing a "<｜DSML｜ calls>" block like the following:\n\n' +
  '<｜DSML｜ calls>\n' +
  '<｜DSML｜ invoke name="$TOOL_NAME">\n' +
  '<｜DSML｜ parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜ parameter>\n' +
  '...\n' +
  '</｜DSML｜ invoke>\n' +
  '<｜DSML｜ invoke name="$TOOL_NAME2">\n' +
  '...\n' +
  '</｜DSML｜ invoke>\n' +
  '</｜DSML｜ calls>\n\n' +
  'String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.\n\n' +
  'If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\n' +
  'Otherwise, output directly after </think> with tool calls or final response.\n\n' +
  '### Available Tool Schemas\n\n' +
  '{"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}' +
  '\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n';

const CALL_BLOCK =
  '\n\n<｜DSML｜ calls>\n' +
  '<｜DSML｜ invoke name="get_weather">\n' +
  '<｜DSML｜ parameter name="city" string="true">Paris</｜DSML｜ parameter>\n' +
  '<｜DSML｜ parameter name="days" string="false">2</｜DSML｜ parameter>\n' +
  '</｜DSML｜ invoke>\n' +
  '</｜DSML｜ calls>';

test('tools, an assistant tool call and its result: renamed DSML tags, reasoning kept (tools present)', () => {
  const prompt = v41([
    { role: 'system', content: 'You can look up the weather.', tools: [WEATHER] },
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant', content: '', reasoning_content: 'Need data.',
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' } }],
    },
    { role: 'tool', tool_call_id: 'c1', content: 'Sunny' },
  ], { thinking: true });
  assert.equal(prompt,
    `${BOS}${SYS}${effort(75)}You can look up the weather.\n\n${TOOLS_BLOCK}` +
    `<｜User｜>Weather in Paris?<｜Assistant｜><think>Need data.</think>${CALL_BLOCK}${EOS}` +
    '<｜User｜><tool_result>Sunny</tool_result><｜Assistant｜><think>');
  // Without thinking, the tools block still sits in the leading system segment.
  assert.equal(v41([{ role: 'system', content: '', tools: [WEATHER] }, { role: 'user', content: 'Hi' }], { thinking: false }),
    `${BOS}${SYS}\n\n${TOOLS_BLOCK}<｜User｜>Hi<｜Assistant｜></think>`);
});

test('image parts become <｜deepseek_image｜>; the token as text is refused; V4 is unchanged', () => {
  const msgs: V4Message[] = [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }];
  assert.equal(v41(msgs, { thinking: false }), `${BOS}<｜User｜>What is this?\n\n<｜deepseek_image｜><｜Assistant｜></think>`);
  assert.equal(v41([
    { role: 'user', content: 'Look.' },
    { role: 'assistant', content: '', tool_calls: [{ id: 'c1', function: { name: 'shot', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: [{ type: 'image', data: 'AAAA' }] },
  ], { thinking: false }),
  `${BOS}<｜User｜>Look.<｜Assistant｜></think>\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke name="shot">\n\n</｜DSML｜ invoke>\n</｜DSML｜ calls>${EOS}` +
    '<｜User｜><tool_result><｜deepseek_image｜></tool_result><｜Assistant｜></think>');
  assert.throws(() => v41([{ role: 'user', content: 'a <｜deepseek_image｜> b' }], { thinking: false }), /image token <｜deepseek_image｜> as text/);
  assert.equal(encodeV4Messages(msgs, { thinking: false }), `${BOS}<｜User｜>What is this?\n\n[Unsupported image_url]<｜Assistant｜></think>`);
});

test('V4 output is untouched by the version option', () => {
  const msgs: V4Message[] = [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'A' }, { role: 'system', content: 'S2' }];
  assert.equal(encodeV4Messages(msgs, { thinking: false }), encodeV4Messages(msgs, { thinking: false, version: 'v4' }));
  assert.equal(encodeV4Messages(msgs, { thinking: false }), `${BOS}S<｜User｜>Hi<｜Assistant｜></think>A${EOS}S2`);
});

test('bad effort or version gives clear errors', () => {
  const msgs: V4Message[] = [{ role: 'user', content: 'x' }];
  for (const bad of ['medium', 0, 101, 2.5] as const) {
    assert.throws(() => v41(msgs, { thinking: true, reasoningEffort: bad as never }), /invalid reasoning effort .* for DeepSeek-V4.1/);
  }
  assert.throws(() => encodeV4Messages(msgs, { thinking: true, reasoningEffort: 'low' }), /invalid reasoning effort "low"/);
  assert.throws(() => encodeV4Messages(msgs, { thinking: true, version: 'v5' as never }), /unknown DeepSeek-V4 encoding version "v5"/);
});

test('chatFormatFor: deepseek_v41 gets the V4.1 format; think low/high/max → effort 50/75/100, V4 thinks low as high', () => {
  const fake = (architecture: string) => ({ description: { architecture }, tokenizer: {} }) as unknown as LanguageModel;
  const f41 = chatFormatFor(fake('deepseek_v41'));
  const f4 = chatFormatFor(fake('deepseek_v4'));
  assert.equal(f41.kind, 'deepseek-v4.1');
  assert.equal(f4.kind, 'deepseek-v4');
  const hi = [{ role: 'user' as const, content: 'Hi' }];
  assert.equal(f41.render(hi), `${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
  for (const [think, n] of [['low', 50], ['high', 75], ['max', 100]] as const) {
    assert.equal(f41.render(hi, { think }), `${BOS}${SYS}${effort(n)}<｜User｜>Hi<｜Assistant｜><think>`);
  }
  assert.equal(f4.render(hi, { think: 'low' }), f4.render(hi, { think: 'high' }));
  assert.equal(f4.render(hi, { think: 'low' }), `${BOS}<｜User｜>Hi<｜Assistant｜><think>`);
  // Tools go into a leading system message (made when there is none), never into a later one.
  const later = [{ role: 'user' as const, content: 'U' }, { role: 'assistant' as const, content: 'A' }, { role: 'system' as const, content: 'S' }];
  assert.equal(f41.render(later, { tools: [WEATHER] }),
    `${BOS}${SYS}\n\n${TOOLS_BLOCK}<｜User｜>U<｜Assistant｜></think>A${EOS}${SYS}S<｜Assistant｜></think>`);
});

// ---------------------------------------------------------------------------------------------
// Parsing V4.1 completions

const COMPLETION = `Need data.</think>Let me check.${CALL_BLOCK}${EOS}`;
const CALL = { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' };

test('a V4.1 tool-call block parses, strict and lenient', () => {
  for (const strict of [true, false]) {
    assert.deepEqual(parseV4Completion(COMPLETION, { thinking: true, strict, version: 'v4.1' }),
      { reasoning: 'Need data.', content: 'Let me check.', toolCalls: [CALL] });
  }
  // Two calls, the second without parameters.
  const two = '\n\n<｜DSML｜ calls>\n<｜DSML｜ invoke name="a">\n<｜DSML｜ parameter name="x" string="false">[1, 2]</｜DSML｜ parameter>\n</｜DSML｜ invoke>\n' +
    `<｜DSML｜ invoke name="b">\n\n</｜DSML｜ invoke>\n</｜DSML｜ calls>${EOS}`;
  assert.deepEqual(parseV4Completion(two, { thinking: false, version: 'v4.1' }).toolCalls,
    [{ name: 'a', arguments: '{"x": [1, 2]}' }, { name: 'b', arguments: '{}' }]);
});

test('each version reads only its own tags', () => {
  assert.throws(() => parseV4Completion(COMPLETION, { thinking: true }), /special token ｜DSML｜ inside the content/);
  assert.deepEqual(parseV4Completion(COMPLETION, { thinking: true, strict: false }).toolCalls, []);
  const v4 = `Ok.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>${EOS}`;
  assert.deepEqual(parseV4Completion(v4, { thinking: false, strict: false, version: 'v4.1' }).toolCalls, []);
  assert.deepEqual(parseV4Completion(v4, { thinking: false }).toolCalls, [{ name: 'f', arguments: '{}' }]);
});

test('the assistant turn the encoder writes parses back to its call', () => {
  const prompt = v41([
    { role: 'user', content: 'Q' },
    { role: 'assistant', content: 'Let me check.', reasoning_content: 'Need data.', tool_calls: [{ function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' } }] },
  ], { thinking: true, dropThinking: false });
  const completion = prompt.slice(prompt.indexOf('<think>') + '<think>'.length);
  assert.equal(completion, COMPLETION);
  assert.deepEqual(parseV4Completion(completion, { thinking: true, version: 'v4.1' }).toolCalls, [CALL]);
});

function streamed(text: string, cuts: number[]): { reasoning: string; content: string; calls: { name: string; arguments: string }[]; contentBeforeEnd: string } {
  const answer = new AnswerStream({ reasoningTags: true, startInReasoning: true, tools: 'dsml', dsml: 'v4.1' });
  const events: ChatEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    events.push(...answer.push(text.slice(at, cut)));
    at = cut;
  }
  const contentBeforeEnd = events.filter((e) => e.type === 'content').map((e) => (e as { text: string }).text).join('');
  const end = answer.end();
  events.push(...end.events);
  const join = (type: string) => events.filter((e) => e.type === type).map((e) => (e as { text: string }).text).join('');
  return { reasoning: join('reasoning'), content: join('content'), calls: end.calls.map((c) => ({ name: c.name, arguments: c.arguments })), contentBeforeEnd };
}

test('streamed one character at a time, the block is held back and its calls come out at the end', () => {
  const text = COMPLETION.slice(0, -EOS.length); // the engine stops at EOS and does not pass it on
  const whole = streamed(text, []);
  assert.deepEqual({ reasoning: whole.reasoning, content: whole.content, calls: whole.calls }, { reasoning: 'Need data.', content: 'Let me check.', calls: [CALL] });
  const chars = streamed(text, Array.from({ length: text.length }, (_, i) => i));
  assert.deepEqual({ reasoning: chars.reasoning, content: chars.content, calls: chars.calls }, { reasoning: 'Need data.', content: 'Let me check.', calls: [CALL] });
  assert.ok(!chars.contentBeforeEnd.includes('｜DSML｜') && !chars.contentBeforeEnd.includes('<｜'), `no markup streamed: ${JSON.stringify(chars.contentBeforeEnd)}`);
  assert.equal(chars.contentBeforeEnd, 'Let me check.');
});

test('forced tool calls (dsml: v4.1) are constrained to the V4.1 block: its tags pass, V4 tags do not', () => {
  const tok = deepseekTokenizer('v4'); // V4.1 keeps V4's vocabulary for the text (deepseek-v41.md header)
  const tools = [{ name: 'get_weather', parameters: WEATHER.function.parameters as Record<string, unknown> }];
  const run = (text: string): { refusedAt?: number; state: TokenConstraint } => {
    let s = compileToolCallConstraint(tools, { syntax: 'dsml', dsml: 'v4.1' }, tok).start();
    const ids = tok.encode(text, { parseSpecial: true, addBos: false });
    for (let k = 0; k < ids.length; k++) {
      const logits = new Float32Array(tok.vocabSize);
      s.maskLogits(logits);
      if (logits[ids[k]] === -Infinity) return { refusedAt: k, state: s };
      s = s.accept(ids[k]);
    }
    return { state: s };
  };
  const ok = run(CALL_BLOCK);
  assert.equal(ok.refusedAt, undefined);
  assert.equal(ok.state.done, true);
  assert.notEqual(run('\n\n<｜DSML｜tool_calls>\n').refusedAt, undefined);
});
