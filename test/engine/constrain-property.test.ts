// Property test (the acceptance): 200 random schemas × sampled outputs, all valid JSON that
// ajv validates against the schema. Outputs are sampled as a model would be: random logits, the
// constraint's mask, then argmax, with a growing bias towards the tokens that begin the shortest
// completion (ConstraintState.completion) so that every run ends. Real tokenizers: stories260K
// (SentencePiece, 512) and DeepSeek-V3 (byte-level BPE, 128k), where the per-token cost is
// measured. MINKE_CONSTRAIN_LONG=1 runs 5× more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { compileJsonConstraint, type ConstraintState, type JsonConstraint } from '../../src/engine/constrain/index.js';
import { argmax, Rng } from '../../src/engine/sampler.js';
import { deepseekTokenizer, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { storiesTokenizer } from './fixtures.js';
import { randomRootSchema } from './constrain-schemas.js';

const SCALE = process.env.MINKE_CONSTRAIN_LONG ? 5 : 1;
const ajv = new Ajv2020.default({ strict: false, allErrors: true });

/** Token ids by the latin1 spelling of their bytes: the tokens that are a prefix of some bytes. */
class PieceIndex {
  private readonly byPiece = new Map<string, number[]>();
  private maxLen = 0;
  constructor(readonly tok: Tokenizer) {
    for (let id = 0; id < tok.vocabSize; id++) {
      const type = tok.tokenType(id);
      if ((type !== TokenType.NORMAL && type !== TokenType.BYTE) || tok.eog.has(id)) continue;
      const p = tok.piece(id);
      if (p.length === 0) continue;
      const key = Buffer.from(p).toString('latin1');
      this.byPiece.set(key, [...(this.byPiece.get(key) ?? []), id]);
      this.maxLen = Math.max(this.maxLen, p.length);
    }
  }
  prefixesOf(bytes: Uint8Array): number[] {
    const out: number[] = [];
    for (let k = 1; k <= Math.min(bytes.length, this.maxLen); k++) out.push(...(this.byPiece.get(Buffer.from(bytes.subarray(0, k)).toString('latin1')) ?? []));
    return out;
  }
}

interface Run { ids: number[]; text: string; steps: number; micros: number[] }

function sampleRun(c: JsonConstraint, index: PieceIndex, rng: Rng, steerAfter: number, cap: number): Run {
  const tok = index.tok;
  const logits = new Float32Array(tok.vocabSize);
  const micros: number[] = [];
  const ids: number[] = [];
  let s: ConstraintState = c.start();
  for (let step = 0; ; step++) {
    assert.ok(step < cap, `no end after ${cap} tokens: ${JSON.stringify(tok.decode(ids))}`);
    // The shortest completion must be accepted from every state reached (no dead ends).
    const finish = s.completion();
    assert.equal(s.feed(finish)?.canEnd, true, `completion ${JSON.stringify(Buffer.from(finish).toString())} of ${JSON.stringify(tok.decode(ids))}`);
    for (let i = 0; i < logits.length; i++) logits[i] = rng.next();
    if (rng.next() < step / steerAfter) {
      const steer = finish.length === 0 ? [...tok.eog] : index.prefixesOf(finish);
      for (const id of steer) logits[id] += 2;
    }
    const t0 = performance.now();
    s.maskLogits(logits);
    const id = argmax(logits);
    s = s.accept(id);
    const done = s.done;
    micros.push((performance.now() - t0) * 1000);
    if (tok.eog.has(id)) break;
    ids.push(id);
    if (done) break;
  }
  return { ids, text: tok.decode(ids), steps: ids.length, micros };
}

function property(tok: Tokenizer, schemas: number, samples: number, seed: number, steerAfter: number, cap: number): { micros: number[]; tokens: number; outputs: number } {
  const index = new PieceIndex(tok);
  const rng = new Rng(seed);
  const micros: number[] = [];
  let tokens = 0;
  let outputs = 0;
  for (let k = 0; k < schemas; k++) {
    const schema = randomRootSchema(rng);
    const validate = ajv.compile(schema);
    const c = compileJsonConstraint(schema, tok);
    for (let j = 0; j < samples; j++) {
      const run = sampleRun(c, index, rng, steerAfter, cap);
      let value: unknown;
      try {
        value = JSON.parse(run.text);
      } catch (err) {
        assert.fail(`schema #${k} ${JSON.stringify(schema)}: output is not JSON: ${JSON.stringify(run.text)} (${String(err)})`);
      }
      assert.ok(validate(value), `schema #${k} ${JSON.stringify(schema)}\noutput ${run.text}\n${ajv.errorsText(validate.errors)}`);
      micros.push(...run.micros);
      tokens += run.steps;
      outputs++;
    }
  }
  return { micros, tokens, outputs };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

test(`stories260K: ${200 * SCALE} random schemas × 3 sampled outputs validate (ajv)`, { timeout: 600_000 }, () => {
  const r = property(storiesTokenizer(), 200 * SCALE, 3, 0x5eed, 60, 600);
  assert.equal(r.outputs, 600 * SCALE);
  console.log(`stories260K: ${r.outputs} outputs, ${r.tokens} tokens, per-token constraint cost median ${pct(r.micros, 0.5).toFixed(0)} µs, p90 ${pct(r.micros, 0.9).toFixed(0)} µs`);
});

test(`DeepSeek-V3 128k vocabulary: ${200 * SCALE} random schemas × 1 sampled output validate; per-token mask cost`, { timeout: 600_000 }, () => {
  const tok = deepseekTokenizer('v3');
  const t0 = performance.now();
  compileJsonConstraint('json', tok);
  const build = performance.now() - t0;
  const r = property(tok, 200 * SCALE, 1, 0xd5eec, 40, 400);
  assert.equal(r.outputs, 200 * SCALE);
  const median = pct(r.micros, 0.5);
  console.log(`DeepSeek 128k: vocabulary trie ${build.toFixed(0)} ms once; ${r.outputs} outputs, ${r.tokens} tokens; per-token mask + maskLogits + accept: median ${median.toFixed(0)} µs, p90 ${pct(r.micros, 0.9).toFixed(0)} µs, p99 ${pct(r.micros, 0.99).toFixed(0)} µs, max ${(Math.max(...r.micros) / 1000).toFixed(1)} ms (first walk of a new frame)`);
  assert.ok(median < 5000, `median per-token cost ${median.toFixed(0)} µs should be a few ms at most`);
});

// A strict-tool-like schema reused across requests (its frame masks cached): the steady-state cost.
const TOOL = {
  type: 'object',
  properties: {
    query: { type: 'string' }, limit: { type: 'integer' }, verbose: { type: 'boolean' },
    filters: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { enum: ['title', 'body', 'date'] }, op: { enum: ['eq', 'lt', 'gt'] }, value: { anyOf: [{ type: 'string' }, { type: 'number' }] } },
        required: ['field', 'op', 'value'], additionalProperties: false,
      },
    },
  },
  required: ['query', 'limit', 'filters', 'verbose'], additionalProperties: false,
};

test('DeepSeek-V3 128k vocabulary: one schema, many outputs: warm per-token mask cost', { timeout: 600_000 }, () => {
  const tok = deepseekTokenizer('v3');
  const index = new PieceIndex(tok);
  const c = compileJsonConstraint(TOOL, tok);
  const validate = ajv.compile(TOOL);
  const rng = new Rng(0x7001);
  const warm: number[] = [];
  let tokens = 0;
  for (let j = 0; j < 6 * SCALE; j++) {
    const run = sampleRun(c, index, rng, 150, 1000);
    assert.ok(validate(JSON.parse(run.text)), `${run.text}\n${ajv.errorsText(validate.errors)}`);
    if (j > 0) { warm.push(...run.micros); tokens += run.steps; }
  }
  console.log(`DeepSeek 128k, strict-tool schema reused: ${tokens} tokens; per-token mask + maskLogits + accept: median ${pct(warm, 0.5).toFixed(0)} µs, p90 ${pct(warm, 0.9).toFixed(0)} µs, p99 ${pct(warm, 0.99).toFixed(0)} µs`);
  assert.ok(pct(warm, 0.5) < 5000);
});
