// Forced tool calls (tool_choice required / named) as a token constraint. Outputs are sampled as a
// model would be: random logits, the mask, argmax, with a growing pull towards the texts that close
// values and blocks so every run ends. DSML outputs must parse with the strict V4 parser
// (deepseek-v4-parse.ts, the reference's grammar) and JSON outputs with JSON.parse; the arguments
// must validate (ajv) against the tool's schema. Real tokenizers: DeepSeek-V4 (where ｜DSML｜ is one
// user-defined token) and stories260K (SentencePiece, where it is bytes), and the engine with stories260K.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { encodeV4Messages, V4_DSML, V4_EOS } from '../../src/chat/deepseek-v4-encoding.js';
import { parseV4Completion } from '../../src/chat/deepseek-v4-parse.js';
import { ConstraintState } from '../../src/engine/constrain/constraint.js';
import { compileToolCallConstraint, parseForcedJsonToolCalls, type ToolCallSyntax } from '../../src/engine/constrain/tool-calls.js';
import { Engine, type TokenConstraint } from '../../src/engine/engine.js';
import { argmax, Rng } from '../../src/engine/sampler.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';
import type { ChatTool } from '../../src/server/chat.js';
import { deepseekTokenizer, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { shared, storiesTokenizer } from './fixtures.js';

const ajv = new Ajv2020.default({ strict: false, allErrors: true });

const TOOLS: ChatTool[] = [
  {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'the city' },
        days: { type: 'integer' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city'],
    },
  },
  {
    name: 'search',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string' },
        filters: { $ref: '#/$defs/filters' },
        tags: { type: 'array', items: { enum: ['news', 'blog'] }, maxItems: 2 },
        exact: { type: 'boolean' },
      },
      required: ['query', 'exact'],
      $defs: {
        filters: {
          type: 'object',
          properties: { lang: { enum: ['en', 'fr'] }, max: { type: 'integer' } },
          required: ['lang'],
          additionalProperties: false,
        },
      },
    },
  },
  { name: 'ping' },
];

// A tool without parameters takes none.
const validators = new Map(TOOLS.map((t) => [t.name, ajv.compile(t.parameters ?? { type: 'object', additionalProperties: false })]));

const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');
const utf8Latin1 = (s: string) => latin1(new TextEncoder().encode(s));

/** Token ids by the bytes they write (normal, byte and user-defined tokens). */
function pieceIndex(tok: Tokenizer): Map<string, number[]> {
  const index = new Map<string, number[]>();
  for (let id = 0; id < tok.vocabSize; id++) {
    const type = tok.tokenType(id);
    if (type !== TokenType.NORMAL && type !== TokenType.BYTE && type !== TokenType.USER_DEFINED) continue;
    const key = latin1(tok.piece(id));
    if (key) index.set(key, [...(index.get(key) ?? []), id]);
  }
  return index;
}

const DSML_CLOSERS = [`</${V4_DSML}parameter>\n`, `</${V4_DSML}invoke>\n`, `</${V4_DSML}tool_calls>`].map(utf8Latin1);
const JSON_CLOSERS = ['"', ']', '}'];
const RAW_OPEN = 'string="true">';
const PARAM_END = utf8Latin1(`</${V4_DSML}parameter>`);

/**
 * Logit boosts that lead an output (its bytes so far, in latin1) towards its end. In raw text: on
 * along the DSML closing tags, more the further along; elsewhere JSON closers first, then the tags.
 */
function pull(text: string, index: Map<string, number[]>): Map<number, number> {
  const raw = text.lastIndexOf(RAW_OPEN) > text.lastIndexOf(PARAM_END);
  const out = new Map<number, number>();
  const boost = (key: string, by: number) => { for (const id of index.get(key) ?? []) out.set(id, Math.max(out.get(id) ?? 0, by)); };
  for (const c of DSML_CLOSERS) {
    for (let k = Math.min(c.length - 1, text.length); k >= 0; k--) {
      if (text.endsWith(c.slice(0, k))) for (let n = 1; n <= c.length - k; n++) boost(c.slice(k, k + n), raw ? 2 + k + n : 3);
    }
  }
  if (!raw) for (const c of JSON_CLOSERS) boost(c, 5);
  return out;
}

/** One output: ids and text (special tokens written out). */
function sample(start: TokenConstraint, tok: Tokenizer, index: Map<string, number[]>, rng: Rng, steerAfter = 30, cap = 1500): { ids: number[]; text: string } {
  const logits = new Float32Array(tok.vocabSize);
  const ids: number[] = [];
  let bytes = '';
  let s = start;
  for (let step = 0; !s.done; step++) {
    assert.ok(step < cap, `no end after ${cap} tokens: ${JSON.stringify(tok.decode(ids))}`);
    for (let i = 0; i < logits.length; i++) logits[i] = rng.next();
    if (rng.next() < step / steerAfter) {
      // JSON states know their shortest completion; DSML states are pulled along the closing texts.
      const finish = s instanceof ConstraintState ? latin1(s.completion()) : undefined;
      const boosts = finish === undefined ? pull(bytes, index) : new Map([...finish].map((_, n) => index.get(finish.slice(0, n + 1)) ?? []).flat().map((id) => [id, 5]));
      for (const [id, by] of boosts) logits[id] += by;
      for (const id of tok.eog) logits[id] += 20;
    }
    s.maskLogits(logits);
    const id = argmax(logits);
    assert.notEqual(logits[id], -Infinity);
    s = s.accept(id);
    ids.push(id);
    bytes += latin1(tok.piece(id));
  }
  return { ids, text: tok.decode(ids) };
}

/** The strict V4 parse of a DSML output (the end-of-sentence text added when the output ended without it). */
function parseDsml(text: string): { name: string; arguments: string }[] {
  const full = text.endsWith(V4_EOS) ? text : text + V4_EOS;
  const parsed = parseV4Completion(full, { thinking: false });
  assert.equal(parsed.content, '');
  assert.equal(parsed.reasoning, '');
  return parsed.toolCalls;
}

function checkCalls(calls: { name: string; arguments: string }[], names: readonly string[], text: string): void {
  assert.ok(calls.length >= 1, text);
  for (const c of calls) {
    assert.ok(names.includes(c.name), `${c.name} in ${text}`);
    const validate = validators.get(c.name)!;
    const args = JSON.parse(c.arguments);
    assert.ok(validate(args), `${c.name} ${c.arguments}: ${ajv.errorsText(validate.errors)}`);
  }
}

/** Feeds `text` token by token (its own tokenization); returns the text accepted before the first refused token ('' + all when none). */
function acceptedPrefix(start: TokenConstraint, tok: Tokenizer, text: string): { accepted: string; refused?: string; state: TokenConstraint } {
  let s = start;
  const ids = tok.encode(text, { parseSpecial: true, addBos: false });
  for (let k = 0; k < ids.length; k++) {
    const logits = new Float32Array(tok.vocabSize);
    s.maskLogits(logits);
    if (logits[ids[k]] === -Infinity) {
      assert.throws(() => s.accept(ids[k]), /not allowed/);
      return { accepted: tok.decode(ids.slice(0, k)), refused: tok.decode([ids[k]]), state: s };
    }
    s = s.accept(ids[k]);
  }
  return { accepted: tok.decode(ids), state: s };
}

const BLOCK = `\n\n<${V4_DSML}tool_calls>\n`;
const invoke = (name: string) => `<${V4_DSML}invoke name="${name}">\n`;
const param = (name: string, raw: boolean, value: string) => `<${V4_DSML}parameter name="${name}" string="${raw}">${value}</${V4_DSML}parameter>\n`;

describe('DSML tool calls, DeepSeek-V4 tokenizer', () => {
  const tok = deepseekTokenizer('v4');
  const index = pieceIndex(tok);
  const dsml = tok.tokenId(V4_DSML)!;

  it('｜DSML｜ is one user-defined token here (literals are forced as that token)', () => {
    assert.equal(tok.tokenType(dsml), TokenType.USER_DEFINED);
  });

  it('sampled outputs parse strictly and their arguments validate', () => {
    const c = compileToolCallConstraint(TOOLS, { syntax: 'dsml' }, tok);
    const rng = new Rng(0x7001);
    const seen = new Set<string>();
    for (let k = 0; k < 25; k++) {
      const { ids, text } = sample(c.start(), tok, index, rng);
      const calls = parseDsml(text);
      checkCalls(calls, TOOLS.map((t) => t.name), text);
      calls.forEach((call) => seen.add(call.name));
      // The block's markers are the user-defined token, never its spelling in bytes.
      assert.equal(ids.filter((id) => id === dsml).length, text.split(V4_DSML).length - 1, text);
    }
    assert.deepEqual([...seen].sort(), ['get_weather', 'ping', 'search']);
  });

  it('a forced name is the only one written', () => {
    const c = compileToolCallConstraint(TOOLS, { syntax: 'dsml', name: 'search' }, tok);
    const rng = new Rng(0x7002);
    for (let k = 0; k < 10; k++) {
      const { text } = sample(c.start(), tok, index, rng);
      const calls = parseDsml(text);
      checkCalls(calls, ['search'], text);
    }
  });

  it("accepts the V4 encoder's own rendering of calls, token for token, then ends", () => {
    const calls = [
      { name: 'get_weather', args: { city: 'Paris', days: 3, unit: 'celsius' } },
      { name: 'search', args: { query: 'a < b & "c"', filters: { lang: 'fr', max: 10 }, tags: ['news'], exact: false } },
      { name: 'ping', args: {} },
      { name: 'get_weather', args: { city: '' } },
    ];
    const user = { role: 'user' as const, content: 'hi' };
    const assistant = {
      role: 'assistant' as const, content: '',
      tool_calls: calls.map((c) => ({ type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.args) } })),
    };
    const before = encodeV4Messages([user], { thinking: false });
    const rendered = encodeV4Messages([user, assistant], { thinking: false }).slice(before.length);
    assert.ok(rendered.startsWith(BLOCK) && rendered.endsWith(V4_EOS));
    const r = acceptedPrefix(compileToolCallConstraint(TOOLS, { syntax: 'dsml' }, tok).start(), tok, rendered);
    assert.equal(r.refused, undefined, `refused ${JSON.stringify(r.refused)} after ${JSON.stringify(r.accepted)}`);
    assert.ok(r.state.done);
    assert.deepEqual(parseDsml(rendered).map((c) => [c.name, JSON.parse(c.arguments)]), calls.map((c) => [c.name, c.args]));
  });

  const refusals: [string, string, string][] = [
    ['a tool that is not offered', BLOCK + invoke('nope'), BLOCK + `<${V4_DSML}invoke name="`],
    ['a required parameter left out', BLOCK + invoke('get_weather') + `</${V4_DSML}invoke>\n`, BLOCK + invoke('get_weather')],
    ['a string parameter written as JSON', BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="city" string="false">`, BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="city" string="`],
    ['an unknown parameter', BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="town"`, BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="`],
    ['an integer with a fraction', BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + `<${V4_DSML}parameter name="days" string="false">2.5`, BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + `<${V4_DSML}parameter name="days" string="false">2`],
    ['a value outside the enum', BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + param('unit', true, 'kelvin'), BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + `<${V4_DSML}parameter name="unit" string="true">`],
    ['the marker inside a raw value', BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="city" string="true">a${V4_DSML}`, BLOCK + invoke('get_weather') + `<${V4_DSML}parameter name="city" string="true">a`],
    ['parameters out of schema order', BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + param('unit', true, 'celsius') + param('days', false, '1'), BLOCK + invoke('get_weather') + param('city', true, 'Oslo') + param('unit', true, 'celsius') + '<'],
    ['text after the block', BLOCK + invoke('ping') + `\n</${V4_DSML}invoke>\n</${V4_DSML}tool_calls><think>`, BLOCK + invoke('ping') + `\n</${V4_DSML}invoke>\n</${V4_DSML}tool_calls>`],
    ['content before the block', 'Sure.' + BLOCK, ''],
    ['reasoning before the block', '<think>', ''],
  ];
  for (const [what, text, accepted] of refusals) {
    it(`masks ${what}`, () => {
      const r = acceptedPrefix(compileToolCallConstraint(TOOLS, { syntax: 'dsml' }, tok).start(), tok, text);
      assert.notEqual(r.refused, undefined, `all of ${JSON.stringify(text)} was accepted`);
      assert.equal(r.accepted, accepted);
    });
  }

  it('end of generation only once the block is closed', () => {
    const start = compileToolCallConstraint(TOOLS, { syntax: 'dsml' }, tok).start();
    const eos = tok.eos!;
    assert.throws(() => start.accept(eos), /not allowed/);
    const open = acceptedPrefix(start, tok, BLOCK + invoke('ping') + `\n</${V4_DSML}invoke>\n`).state;
    assert.equal(open.done, false);
    assert.throws(() => open.accept(eos), /not allowed/);
    const closed = acceptedPrefix(open, tok, `</${V4_DSML}tool_calls>`).state;
    assert.equal(closed.done, true);
    assert.equal(closed.accept(eos).done, true);
  });

  it('a forced name excludes the other tools', () => {
    const c = compileToolCallConstraint(TOOLS, { syntax: 'dsml', name: 'ping' }, tok);
    const r = acceptedPrefix(c.start(), tok, BLOCK + invoke('get_weather'));
    assert.equal(r.accepted, BLOCK + `<${V4_DSML}invoke name="`);
  });

  it('parallel: false allows exactly one call', () => {
    const c = compileToolCallConstraint(TOOLS, { syntax: 'dsml', parallel: false }, tok);
    const rng = new Rng(0x7006);
    for (let k = 0; k < 10; k++) {
      const { text } = sample(c.start(), tok, index, rng);
      const calls = parseDsml(text);
      assert.equal(calls.length, 1, text);
      checkCalls(calls, TOOLS.map((t) => t.name), text);
    }
    const one = BLOCK + invoke('ping') + `\n</${V4_DSML}invoke>\n`;
    assert.equal(acceptedPrefix(c.start(), tok, one + invoke('ping')).accepted, one + '<');
  });

  it('refuses bad inputs with clear errors', () => {
    assert.throws(() => compileToolCallConstraint([], { syntax: 'dsml' }, tok), /at least one tool/);
    assert.throws(() => compileToolCallConstraint(TOOLS, { syntax: 'dsml', name: 'nope' }, tok), /"nope" is not one of the tools/);
    assert.throws(() => compileToolCallConstraint([{ name: 'a"b' }], { syntax: 'dsml' }, tok), /cannot be written in DSML/);
    assert.throws(() => compileToolCallConstraint(TOOLS, { syntax: 'xml' as ToolCallSyntax }, tok), /unknown tool-call syntax/);
    // Keywords that cannot be enforced are ignored, not refused.
    const lenient = { name: 'f', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: 3 }, s: { type: 'string', pattern: '^a' } }, required: ['n'] } };
    assert.doesNotThrow(() => compileToolCallConstraint([lenient], { syntax: 'dsml' }, tok).start());
    assert.doesNotThrow(() => compileToolCallConstraint([lenient], { syntax: 'json' }, tok).start());
  });
});

describe('DSML tool calls, stories260K tokenizer (｜DSML｜ as bytes)', () => {
  it('sampled outputs parse strictly and validate', () => {
    const tok = storiesTokenizer();
    const index = pieceIndex(tok);
    const c = compileToolCallConstraint(TOOLS, { syntax: 'dsml' }, tok);
    const rng = new Rng(0x7003);
    for (let k = 0; k < 30; k++) {
      const { text } = sample(c.start(), tok, index, rng);
      checkCalls(parseDsml(text), TOOLS.map((t) => t.name), text);
    }
  });
});

describe('forced JSON tool calls', () => {
  for (const [label, load] of [['stories260K', storiesTokenizer], ['DeepSeek-V4', () => deepseekTokenizer('v4')]] as const) {
    it(`${label}: sampled outputs are arrays of valid calls`, () => {
      const tok = load();
      const index = pieceIndex(tok);
      const c = compileToolCallConstraint(TOOLS, { syntax: 'json' }, tok);
      const rng = new Rng(0x7004);
      for (let k = 0; k < 25; k++) {
        const { text } = sample(c.start(), tok, index, rng);
        const value = JSON.parse(text) as unknown[];
        assert.ok(Array.isArray(value) && value.length >= 1, text);
        for (const call of value as { name: string; arguments: unknown }[]) {
          assert.deepEqual(Object.keys(call).sort(), ['arguments', 'name'], text);
          const validate = validators.get(call.name);
          assert.ok(validate, text);
          assert.ok(validate(call.arguments), `${text}: ${ajv.errorsText(validate.errors)}`);
        }
        const parsed = parseForcedJsonToolCalls(text);
        assert.deepEqual(parsed.map((p) => [p.name, JSON.parse(p.arguments)]), value.map((v) => [(v as { name: string }).name, (v as { arguments: unknown }).arguments]));
      }
    });
  }

  it('a forced name is the only one written; other texts do not fit', () => {
    const tok = deepseekTokenizer('v4');
    const c = compileToolCallConstraint(TOOLS, { syntax: 'json', name: 'get_weather' }, tok);
    const rng = new Rng(0x7005);
    const index = pieceIndex(tok);
    for (let k = 0; k < 10; k++) {
      const { text } = sample(c.start(), tok, index, rng);
      assert.ok(parseForcedJsonToolCalls(text).every((p) => p.name === 'get_weather'), text);
    }
    const start = c.start() as ConstraintState;
    assert.equal(start.feed('[]'), null);
    assert.equal(start.feed('[{"name": "ping"'), null);
    assert.equal(start.feed('[{"name": "get_weather", "arguments": {}}]'), null); // city is required
    assert.equal(start.feed('{"name": "get_weather"'), null);
    assert.equal(start.feed('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]')?.canEnd, true);
  });

  it('parallel: false allows exactly one call', () => {
    const start = compileToolCallConstraint(TOOLS, { syntax: 'json', parallel: false }, deepseekTokenizer('v4')).start() as ConstraintState;
    assert.equal(start.feed('[{"name": "ping", "arguments": {}}]')?.canEnd, true);
    assert.equal(start.feed('[{"name": "ping", "arguments": {}},'), null);
  });

  it('parseForcedJsonToolCalls: compact arguments; clear errors on other texts', () => {
    assert.deepEqual(parseForcedJsonToolCalls('[{"name": "f", "arguments": {"a": [1, 2], "b": {"c": "d"}}}, {"arguments": {}, "name": "g"}]'), [
      { name: 'f', arguments: '{"a":[1,2],"b":{"c":"d"}}' },
      { name: 'g', arguments: '{}' },
    ]);
    assert.throws(() => parseForcedJsonToolCalls('[{"name": "f", "argu'), /not valid JSON/);
    assert.throws(() => parseForcedJsonToolCalls('[]'), /non-empty JSON array/);
    assert.throws(() => parseForcedJsonToolCalls('{"name": "f", "arguments": {}}'), /non-empty JSON array/);
    assert.throws(() => parseForcedJsonToolCalls('[{"name": "f"}]'), /tool call 0/);
  });
});

describe('forced tool calls in the engine (stories260K)', () => {
  // Closed values only: this tiny model would write stories into a free string until max_tokens.
  const MOOD: ChatTool[] = [
    {
      name: 'set_mood',
      parameters: {
        type: 'object',
        properties: { mood: { type: 'string', enum: ['happy', 'sad'] }, count: { type: 'integer' }, ok: { type: 'boolean' } },
        required: ['mood', 'count', 'ok'], additionalProperties: false,
      },
    },
    { name: 'ping' },
  ];
  const moodValid = ajv.compile(MOOD[0].parameters!);
  let model: LanguageModel;
  before(async () => { model = await loadModel(shared('models/stories260K/stories260K.gguf'), { threads: 1 }); });
  after(async () => { await model.close(); });

  for (const syntax of ['dsml', 'json'] as const) {
    it(`${syntax}: every sampled output is whole tool calls and ends the request`, async () => {
      // This tiny model loves blank space (one byte per gap keeps its outputs short) and, in JSON,
      // would add calls to the array until the context is full: one call.
      const c = compileToolCallConstraint(MOOD, { syntax, maxWhitespace: 1, parallel: syntax === 'dsml' }, model.tokenizer);
      const engine = new Engine(model);
      const handles = [1, 2, 3, 4].map((seed) => engine.submit({
        prompt: [1, 403, 407], maxTokens: 400, constraint: c.start(), sampling: { temperature: 1, seed }, skipSpecial: false,
      }));
      for (const h of handles) {
        const r = await h.result;
        assert.equal(r.finishReason, 'eog', r.text);
        const calls = syntax === 'dsml' ? parseDsml(r.text) : parseForcedJsonToolCalls(r.text);
        assert.ok(calls.length >= 1);
        for (const call of calls) {
          if (call.name === 'set_mood') assert.ok(moodValid(JSON.parse(call.arguments)), call.arguments);
          else assert.deepEqual([call.name, call.arguments], ['ping', '{}']);
        }
      }
      await engine.close();
    });
  }
});
