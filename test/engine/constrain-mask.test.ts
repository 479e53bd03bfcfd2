// Token masks against the definition: token t is allowed iff its bytes (Tokenizer.piece) can follow
// the text so far, checked token by token with ConstraintState.feed; end-of-generation iff the
// value is whole; special tokens never. On the stories260K vocabulary (512) and DeepSeek's (128k).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileJsonConstraint, type ConstraintState, type JsonSchema } from '../../src/engine/constrain/index.js';
import type { TokenConstraint } from '../../src/engine/engine.js';
import { deepseekTokenizer, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { storiesTokenizer } from './fixtures.js';

function bruteForce(tok: Tokenizer, s: ConstraintState): Uint8Array {
  const out = new Uint8Array(tok.vocabSize);
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.eog.has(id)) { out[id] = s.canEnd ? 1 : 0; continue; }
    const type = tok.tokenType(id);
    if (type !== TokenType.NORMAL && type !== TokenType.BYTE) continue;
    const p = tok.piece(id);
    out[id] = p.length > 0 && s.feed(p) !== null ? 1 : 0;
  }
  return out;
}

function assertMask(tok: Tokenizer, s: ConstraintState, what: string): number {
  const got = s.mask();
  const want = bruteForce(tok, s);
  let allowed = 0;
  for (let id = 0; id < tok.vocabSize; id++) {
    if (got[id] !== want[id]) assert.fail(`${what}: token ${id} ${JSON.stringify(tok.tokenText(id))} is ${got[id] ? '' : 'not '}allowed, should ${want[id] ? '' : 'not '}be`);
    allowed += got[id];
  }
  return allowed;
}

const person = {
  type: 'object',
  properties: {
    name: { type: 'string' }, age: { type: 'integer' }, score: { type: 'number' },
    tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, maxItems: 3 },
    kind: { anyOf: [{ const: 'x' }, { type: 'string' }, { type: 'null' }] },
  },
  required: ['name', 'age'], additionalProperties: false,
};
const open = { type: 'object', properties: { alpha: { type: 'integer' }, alps: { type: 'boolean' } }, additionalProperties: { type: 'string' } };

/** (schema, prefix) pairs covering every kind of frame at the top, cached and walked again. */
const STATES: [JsonSchema | 'json' | 'json_object', string][] = [
  ['json', ''], ['json', ' '], ['json', '{'], ['json', '{"ke'], ['json', '{"a":'], ['json', '["abc'], ['json', '["ab\\'],
  ['json', '["ab\\u0'], ['json', '["é'], ['json', '[1'], ['json', '[-'], ['json', '[1.5e'], ['json', '{"a":tr'], ['json', '12'],
  ['json', '[[{"x":"y"}'], ['json', '{"a":"b"'], ['json_object', ''],
  [person, ''], [person, '{"'], [person, '{"a'], [person, '{"age":1'], [person, '{"name":"Bo'], [person, '{"name":"Bob",'],
  [person, '{"name":"Bob","age":7'], [person, '{"tags":["re'], [person, '{"tags":["red","red","red"'], [person, '{"kind":"'],
  [person, '{"kind":'], [person, '{"score":-0.'],
  [open, '{"alp'], [open, '{"alpha":1,"alp'], [open, '{"zz'], [open, '{"alpha":1,"alpha'],
];

test('stories260K: mask = token-by-token check, in every kind of state', () => {
  const tok = storiesTokenizer();
  for (const [schema, prefix] of STATES) {
    const s = compileJsonConstraint(schema, tok).start().feed(prefix);
    assert.ok(s, prefix);
    const n = assertMask(tok, s, `${JSON.stringify(prefix)}`);
    assert.ok(n > 0, `${JSON.stringify(prefix)}: some token must be allowed`);
  }
});

test('DeepSeek 128k vocabulary: mask = token-by-token check (the same frame under different parents)', () => {
  const tok = deepseekTokenizer('v3');
  const picked: [JsonSchema | 'json' | 'json_object', string][] = [
    ['json', '["abc'], ['json', '{"a":"b'], [person, '{"name":"Bo'], [person, '{"kind":"'], ['json', '[1'], ['json', '{"ke'],
    [person, '{"tags":["re'], [open, '{"alp'], [open, '{"'], [open, '{"alpha":1,"'], ['json', '["é'],
  ];
  for (const [schema, prefix] of picked) {
    const s = compileJsonConstraint(schema, tok).start().feed(prefix)!;
    const n = assertMask(tok, s, JSON.stringify(prefix));
    assert.ok(n > 0);
  }
});

test('DeepSeek: a suffix after the value (DSML closing tag), tokens spanning both', () => {
  const tok = deepseekTokenizer('v3');
  const suffix = '</\uff5cDSML\uff5cparameter>';
  for (const [schema, prefix] of [['json', '{"a":1'], [{ type: 'integer' }, '12'], [{ type: 'string' }, '"abc'], ['json', '[1]<']] as const) {
    const s = compileJsonConstraint(schema, tok, { suffix }).start().feed(prefix)!;
    assert.ok(assertMask(tok, s, `${prefix} + suffix`) > 0);
  }
  const end = compileJsonConstraint({ type: 'integer' }, tok, { suffix }).start().feed('7' + suffix)!;
  assert.equal(end.done, true);
});

test('end of generation exactly when the value is whole; done when nothing else can follow', () => {
  const tok = storiesTokenizer();
  const eos = tok.eos!;
  const c = compileJsonConstraint(person, tok);
  let s = c.start().feed('{"name":"x","age":1')!;
  assert.equal(s.canEnd, false);
  assert.equal(s.allows(eos), false);
  assert.throws(() => s.accept(eos), /before the JSON value is complete/);
  s = s.feed('}')!;
  assert.equal(s.canEnd, true);
  assert.equal(s.done, true, 'after the closing brace only EOS is left');
  assert.equal(s.allows(eos), true);
  const end = s.accept(eos);
  assert.equal(end.done, true);
  assert.throws(() => end.accept(eos), /after the end/);
  assert.throws(() => end.maskLogits(new Float32Array(tok.vocabSize)), /complete/);

  // A top-level number can end or go on.
  const n = compileJsonConstraint({ type: 'integer' }, tok).start().feed('12')!;
  assert.equal(n.canEnd, true);
  assert.equal(n.done, false);
  assert.equal(n.allows(eos), true);

  // Special tokens never; a disallowed token is an error naming it.
  const st = c.start();
  assert.equal(st.allows(tok.bos!), false);
  assert.throws(() => st.accept(tok.bos!), /can never appear/);
  const brace = tok.encode('{', { addBos: false }).at(-1)!;
  assert.ok(st.allows(brace));
  const word = tok.encode('hello', { addBos: false })[0];
  assert.throws(() => st.accept(word), /is not allowed here/);
});

test('maskLogits: −Infinity exactly where the mask is 0, and past the vocabulary', () => {
  const tok = storiesTokenizer();
  const s: TokenConstraint = compileJsonConstraint(person, tok).start().feed('{"name":"x","age":3')!;
  const mask = (s as ConstraintState).mask();
  const logits = Float32Array.from({ length: tok.vocabSize + 40 }, (_, i) => i % 7);
  s.maskLogits(logits);
  for (let i = 0; i < logits.length; i++) {
    const keep = i < tok.vocabSize && mask[i] === 1;
    assert.equal(logits[i], keep ? i % 7 : -Infinity, `logit ${i}`);
  }
  assert.ok(mask.reduce((a, b) => a + b, 0) > 0);
});

test('accept follows the bytes of each token; states are immutable', () => {
  const tok = storiesTokenizer();
  const c = compileJsonConstraint('json', tok);
  const ids = tok.encode('{"a": [1, 2.5, "x y"], "b": null}', { addBos: false });
  let s = c.start();
  const start = s;
  for (const id of ids) { assert.ok(s.allows(id), `token ${id}`); s = s.accept(id); }
  assert.equal(s.done, true);
  assert.equal(start.canEnd, false);
  assert.ok(start.allows(ids[0]));
});
