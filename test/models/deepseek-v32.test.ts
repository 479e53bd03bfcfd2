/**
 * DeepSeek-V3.2's lightning indexer and top-k sparse attention (../../../shared/spec/deepseek-v3.md §4)
 * on synthetic checkpoints from bench/synth-v3.ts (withV32Indexer): the model's per-query selection
 * against a plain-TS reference of the §4 formulas written here (dequantised weights, LayerNorm,
 * half-split RoPE on the first 64 channels with the spec's YaRN table, an explicit Hadamard matrix,
 * ue8m0 FP8 from the E4M3 format table); with index_topk ≥ the context the logits are those of the
 * same weights as plain V3; with index_topk 8 the selection matters, token-by-token decode equals one
 * prefill, the naive MLA form agrees with the absorbed one, and saveState / loadState / truncate
 * carry the indexer's key cache.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { v3SynthConfig, withV32Indexer, writeSyntheticV3 } from '../../bench/synth-v3.js';
import { openSafetensors, type SafetensorsFile } from '../../src/formats/safetensors.js';
import { v3ConfigFromHF } from '../../src/models/deepseek-v3-config.js';
import type { DeepseekV3Model } from '../../src/models/deepseek-v3.js';
import { loadModel } from '../../src/models/index.js';
import { sharedPath } from './util.js';

/** A small V3 with the real rope width (64, so the spec's YaRN table applies) and a 4-head indexer. */
const BASE = {
  ...v3SynthConfig('v3'),
  vocab_size: 256, hidden_size: 64, intermediate_size: 96, moe_intermediate_size: 32,
  num_hidden_layers: 2, first_k_dense_replace: 1, num_nextn_predict_layers: 0,
  num_attention_heads: 2, num_key_value_heads: 2, q_lora_rank: 32, kv_lora_rank: 32,
  qk_nope_head_dim: 16, qk_rope_head_dim: 64, v_head_dim: 16,
  n_routed_experts: 4, n_group: 2, topk_group: 1, num_experts_per_tok: 2,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128], scale_fmt: 'ue8m0' },
};
const TOPK = 8, HI = 4, DI = 128;
const TOKENS = Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 256);
const SEED = 7;

// ---- the reference (spec §3, §4) ------------------------------------------------------------------

/** E4M3FN from the format table. */
function e4m3(code: number): number {
  const s = code & 0x80 ? -1 : 1, e = (code >> 3) & 15, m = code & 7;
  return s * (e === 0 ? 2 ** -6 * (m / 8) : 2 ** (e - 7) * (1 + m / 8));
}
/** Positive finite E4M3 values with their codes, ascending (codes 0 … 126; 127 is NaN). */
const E4M3_GRID = Array.from({ length: 127 }, (_, c) => ({ c, v: e4m3(c) }));
/** Round to nearest E4M3, ties to the even code. */
function toE4m3(x: number): number {
  const a = Math.min(Math.abs(x), 448);
  let best = E4M3_GRID[0];
  for (const g of E4M3_GRID) {
    const d = Math.abs(g.v - a), db = Math.abs(best.v - a);
    if (d < db || (d === db && g.c % 2 === 0)) best = g;
  }
  return Math.sign(x) * best.v;
}
/** ue8m0 FP8 of one vector: s = 2^ceil(log2(max(amax, 1e-4)/448)), values e4m3(x/s). */
function fp8(x: Float64Array): { q: Float64Array; s: number } {
  let amax = 1e-4;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  const s = 2 ** Math.ceil(Math.log2(amax / 448));
  return { q: x.map((v) => toE4m3(v / s)), s };
}
const bf16 = (bits: number): number => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

function vectorOf(f: SafetensorsFile, name: string): Float64Array {
  const b = f.read(name), t = f.tensors.get(name)!;
  if (t.dtype === 'bf16') return Float64Array.from(new Uint16Array(b.buffer, b.byteOffset, b.length / 2), bf16);
  assert.equal(t.dtype, 'f32', name);
  return Float64Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
}
/** A projection [rows, cols] as rows of f64: FP8 codes × their 128×128 tile's weight_scale_inv (§3), or BF16. */
function matrixOf(f: SafetensorsFile, prefix: string): Float64Array[] {
  const t = f.tensors.get(`${prefix}.weight`)!, [rows, cols] = t.shape;
  if (t.dtype === 'bf16') {
    const v = vectorOf(f, `${prefix}.weight`);
    return Array.from({ length: rows }, (_, r) => v.subarray(r * cols, (r + 1) * cols));
  }
  const codes = f.read(`${prefix}.weight`), scale = vectorOf(f, `${prefix}.weight_scale_inv`), tiles = Math.ceil(cols / 128);
  return Array.from({ length: rows }, (_, r) => Float64Array.from({ length: cols }, (_, k) => e4m3(codes[r * cols + k]) * scale[Math.floor(r / 128) * tiles + Math.floor(k / 128)]));
}
const apply = (W: Float64Array[], x: Float64Array) => Float64Array.from(W, (row) => row.reduce((s, w, i) => s + w * x[i], 0));
function rmsnorm(x: Float64Array, w: Float64Array): Float64Array {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + 1e-6)) * w[i]);
}
function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array): Float64Array {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-6)) * w[i] + b[i]);
}
/** Half-split RoPE on channels 0 … 63: channel i pairs with i + 32 (the 2025-11-18 fix). */
function rope(x: Float64Array, p: number, freqs: readonly number[]): Float64Array {
  const y = x.slice();
  for (let i = 0; i < 32; i++) {
    const c = Math.cos(p * freqs[i]), s = Math.sin(p * freqs[i]);
    y[i] = x[i] * c - x[i + 32] * s;
    y[i + 32] = x[i] * s + x[i + 32] * c;
  }
  return y;
}
/** 128-point Walsh–Hadamard as a matrix: H_ij = (−1)^popcount(i & j) / sqrt(128). */
const HAD = Array.from({ length: DI }, (_, i) => Float64Array.from({ length: DI }, (_, j) => {
  let b = i & j, n = 0;
  for (; b; b &= b - 1) n++;
  return (n % 2 ? -1 : 1) / Math.sqrt(DI);
}));

/** Layer 0's indexer scores I(t) for every query position p (§4): scores[p][t], t ≤ p. */
function referenceScores(dir: string, tokens: readonly number[]): number[][] {
  const freqs: number[] = JSON.parse(fs.readFileSync(sharedPath('spec/testdata/yarn_freqs.json'), 'utf8')).v3_mla.freqs_f32;
  const f = openSafetensors(dir);
  try {
    const D = BASE.hidden_size, a = 'model.layers.0.self_attn', ix = `${a}.indexer`;
    const embed = vectorOf(f, 'model.embed_tokens.weight'), attnNorm = vectorOf(f, 'model.layers.0.input_layernorm.weight');
    const qA = matrixOf(f, `${a}.q_a_proj`), qNorm = vectorOf(f, `${a}.q_a_layernorm.weight`);
    const wqB = matrixOf(f, `${ix}.wq_b`), wk = matrixOf(f, `${ix}.wk`), wp = matrixOf(f, `${ix}.weights_proj`);
    const kW = vectorOf(f, `${ix}.k_norm.weight`), kB = vectorOf(f, `${ix}.k_norm.bias`);
    const had = (v: Float64Array) => apply(HAD, v);
    const keys: { q: Float64Array; s: number }[] = [], out: number[][] = [];
    tokens.forEach((tok, p) => {
      const x = rmsnorm(embed.slice(tok * D, (tok + 1) * D), attnNorm);
      const qr = rmsnorm(apply(qA, x), qNorm);
      keys.push(fp8(had(rope(layerNorm(apply(wk, x), kW, kB), p, freqs))));
      const q = apply(wqB, qr), w = apply(wp, x);
      const heads = Array.from({ length: HI }, (_, h) => fp8(had(rope(q.slice(h * DI, (h + 1) * DI), p, freqs))));
      const wh = heads.map((hq, h) => w[h] * HI ** -0.5 * DI ** -0.5 * hq.s);
      out.push(keys.map((k) => k.s * heads.reduce((s, hq, h) => s + wh[h] * Math.max(0, hq.q.reduce((d, v, i) => d + v * k.q[i], 0)), 0)));
    });
    return out;
  } finally {
    f.close();
  }
}

// ---- the model --------------------------------------------------------------------------------------

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function withModel<T>(dir: string, run: (m: DeepseekV3Model) => Promise<T>, opts: { mlaForm?: 'naive' } = {}): Promise<T> {
  const model = await loadModel(dir, { threads: 1, ...opts }) as DeepseekV3Model;
  try {
    return await run(model);
  } finally {
    await model.close();
  }
}

/** Logits [n, vocab] of one prefill of `tokens`, with layer 0's indexer selection when tapped. */
async function prefill(model: DeepseekV3Model, tokens: readonly number[]): Promise<{ logits: Float32Array; topk?: Int32Array }> {
  const seq = model.newSequence({ contextLength: 64 });
  let topk: Int32Array | undefined;
  seq.probe = { tap: (name, d) => { if (name === 'layer0.indexer_topk') topk = d as Int32Array; } };
  try {
    return { logits: await seq.forward(tokens, { allLogits: true }), topk };
  } finally {
    seq.free();
  }
}

describe('DeepSeek-V3.2 lightning indexer and sparse attention (spec §4)', () => {
  let tmp: string, v3: string, v32: string, wide: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v32-'));
    [v3, v32, wide] = ['v3', 'v32', 'wide'].map((d) => path.join(tmp, d));
    writeSyntheticV3(v3, BASE, { seed: SEED });
    writeSyntheticV3(v32, withV32Indexer(BASE, { heads: HI, headDim: DI, topk: TOPK }), { seed: SEED });
    // Same weights, index_topk above the context.
    fs.cpSync(v32, wide, { recursive: true });
    fs.writeFileSync(path.join(wide, 'config.json'), JSON.stringify(withV32Indexer(BASE, { heads: HI, headDim: DI, topk: 64 })));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads the V3.2 config keys and refuses indexers it cannot run', () => {
    const c = v3ConfigFromHF(withV32Indexer(BASE), 'config.json');
    assert.deepEqual(c.index, { heads: 64, headDim: 128, topk: 2048 });
    assert.equal(v3ConfigFromHF(BASE, 'config.json').index, undefined);
    assert.throws(() => v3ConfigFromHF(withV32Indexer(BASE, { headDim: 64 }), 'config.json'), /config\.json: index_head_dim 64 is not 128/);
    assert.throws(() => v3ConfigFromHF({ ...withV32Indexer(BASE), q_lora_rank: null }, 'config.json'), /needs q_lora_rank/);
    const { index_topk: _, ...noTopk } = withV32Indexer(BASE);
    assert.throws(() => v3ConfigFromHF(noTopk, 'config.json'), /index_topk must be a non-negative integer, got undefined/);
  });

  it('loads as deepseek_v32 with the indexer key cache in the state per token', async () => {
    await withModel(v32, async (m) => {
      const c = m.config;
      assert.equal(m.description.architecture, 'deepseek_v32');
      // Per layer and token: latent 32 + rope key 64 in f32, then the FP8 key (128 bytes) and its f32 scale.
      assert.equal(m.description.stateBytesPerToken, c.layers * (4 * (32 + 64) + 128 + 4));
      assert.equal(m.description.details.indexerCacheBytesPer1KTokens, c.layers * 132 * 1024);
    });
  });

  it("selects layer 0's keys as the reference computes them from the §4 formulas", async (t) => {
    const ref = referenceScores(v32, TOKENS);
    const { topk } = await withModel(v32, (m) => prefill(m, TOKENS));
    assert.ok(topk && topk.length === TOKENS.length * TOPK);
    let exact = 0;
    for (let p = 0; p < TOKENS.length; p++) {
      const got: number[] = [...topk.subarray(p * TOPK, (p + 1) * TOPK)].filter((j) => j >= 0);
      const s = ref[p], order = s.map((_, j) => j).sort((a, b) => s[b] - s[a] || a - b);
      const want = order.slice(0, Math.min(TOPK, p + 1)).sort((a, b) => a - b);
      assert.equal(got.length, want.length, `position ${p}`);
      assert.deepEqual(got, [...got].sort((a, b) => a - b), `position ${p}: not ascending`);
      if (got.every((j, i) => j === want[i])) {
        exact++;
        continue;
      }
      // A swap only between keys whose reference scores tie with the k-th best (rounding of f32 vs f64).
      const kth = s[order[TOPK - 1]], span = Math.max(...s.map(Math.abs));
      for (const j of [...got.filter((j) => !want.includes(j)), ...want.filter((j) => !got.includes(j))]) {
        assert.ok(Math.abs(s[j] - kth) <= 1e-3 * span, `position ${p}: key ${j} (score ${s[j]}, k-th ${kth})`);
      }
    }
    t.diagnostic(`${exact} of ${TOKENS.length} positions exactly as the reference`);
    assert.ok(exact >= TOKENS.length - 2, `${exact} of ${TOKENS.length} positions select exactly the reference's keys`);
    // The selection is not simply the most recent keys.
    const late = [...topk.subarray((TOKENS.length - 1) * TOPK, TOKENS.length * TOPK)];
    assert.notDeepEqual(late, Array.from({ length: TOPK }, (_, i) => TOKENS.length - TOPK + i));
  });

  it('with index_topk ≥ the context gives the logits of the same weights as plain V3', async () => {
    const plain = await withModel(v3, (m) => prefill(m, TOKENS));
    const sparse = await withModel(wide, (m) => prefill(m, TOKENS));
    assert.ok(maxDiff(plain.logits, sparse.logits) <= 1e-6, `max diff ${maxDiff(plain.logits, sparse.logits)}`);
  });

  it('with index_topk 8: decode equals prefill, the naive form agrees, and the selection changes the logits', async () => {
    const V = BASE.vocab_size, n = TOKENS.length;
    const dense = (await withModel(v3, (m) => prefill(m, TOKENS))).logits;
    const naive = (await withModel(v32, (m) => prefill(m, TOKENS), { mlaForm: 'naive' })).logits;
    await withModel(v32, async (m) => {
      const { logits } = await prefill(m, TOKENS);
      assert.ok(maxDiff(logits, naive) <= 1e-4, `naive vs absorbed: ${maxDiff(logits, naive)}`);
      const seq = m.newSequence({ contextLength: 64 });
      try {
        for (let t = 0; t < n; t++) {
          const step = await seq.forward([TOKENS[t]]);
          const d = maxDiff(step, logits.subarray(t * V, (t + 1) * V));
          assert.ok(d <= 1e-4, `position ${t}: decode differs from prefill by ${d}`);
        }
      } finally {
        seq.free();
      }
      // Up to index_topk tokens every key is visible: as dense. After that, not.
      assert.ok(maxDiff(logits.subarray(0, TOPK * V), dense.subarray(0, TOPK * V)) <= 1e-6);
      const late = maxDiff(logits.subarray((n - 8) * V), dense.subarray((n - 8) * V));
      assert.ok(late > 1e-2, `sparse and dense logits differ by only ${late}`);
    });
  });

  it('runs the MTP layer with an indexer of its own, whose keys survive saveState / loadState', async () => {
    const dir = path.join(tmp, 'mtp');
    writeSyntheticV3(dir, withV32Indexer({ ...BASE, num_nextn_predict_layers: 1 }, { heads: HI, headDim: DI, topk: TOPK }), { seed: SEED });
    await withModel(dir, async (m) => {
      assert.ok(m.weights.mtp?.layer.indexer);
      const a = m.newSequence({ contextLength: 64 }), b = m.newSequence({ contextLength: 64 });
      try {
        await a.forward(TOKENS.slice(0, 30));
        const first = await a.mtp(TOKENS.slice(1, 21)); // 20 rows: past index_topk, the MTP layer's indexer selects
        assert.ok(first.every(Number.isFinite));
        b.loadState(await a.saveState(), 30);
        for (const s of [a, b]) await s.forward(TOKENS.slice(30, 40));
        assert.deepEqual(await b.mtp(TOKENS.slice(21, 40)), await a.mtp(TOKENS.slice(21, 40)));
      } finally {
        a.free();
        b.free();
      }
    });
  });

  it('carries the indexer key cache through saveState / loadState and truncate', async () => {
    await withModel(v32, async (m) => {
      const a = m.newSequence({ contextLength: 64 }), b = m.newSequence({ contextLength: 64 });
      try {
        await a.forward(TOKENS.slice(0, 30));
        const state = await a.saveState();
        assert.equal(state.length, m.description.stateBytesPerToken * 30);
        b.loadState(state, 30);
        const rest = TOKENS.slice(30);
        const want = await a.forward(rest, { allLogits: true });
        assert.deepEqual(await b.forward(rest, { allLogits: true }), want);
        // Forget the last 18 tokens and run them again: the same logits (their indexer keys rewritten).
        b.truncate(30);
        assert.deepEqual(await b.forward(rest, { allLogits: true }), want);
        const c = m.newSequence({ contextLength: 64 });
        assert.throws(() => c.loadState(state.subarray(0, state.length - 4), 30), /bytes are not the state of 30 tokens/);
        c.free();
      } finally {
        a.free();
        b.free();
      }
    });
  });
});
