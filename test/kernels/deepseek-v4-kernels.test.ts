/**
 * DeepSeek-V4 numeric primitives against the official unit goldens of the deepseek-v4-tiny fixture
 * (kernels/kernels.json, produced by the reference's kernels in float32): the quantisers bit-exactly,
 * Hadamard, mHC Sinkhorn, sparse attention with sink and RoPE within the per-test tolerance. One
 * test per kernels.json entry, so an entry without a check fails.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { hadamard, hcSplitSinkhorn, ropeTail, sparseAttentionWithSink, sqrtSoftplus } from '../../src/kernels/deepseek-ops.js';
import { ropeFreqs, yarnFreqs } from '../../src/kernels/rope-freqs.js';
import { actQuantFp8, qatFp4, qatFp8 } from '../../src/tensor/dequantize.js';
import { E4M3_TO_F32 } from '../../src/tensor/float.js';

const DIR = new URL('../../../../shared/fixtures/deepseek-v4-tiny/kernels/', import.meta.url);

interface ArrayEntry { file: string; dtype: 'f32' | 'i32'; shape: number[] }
interface KernelTest {
  name: string;
  op: string;
  params: Record<string, unknown>;
  inputs: Record<string, ArrayEntry>;
  outputs: Record<string, ArrayEntry>;
  tolerance: { exact?: boolean; atol?: number; rtol?: number };
  note: string;
}

const manifest = JSON.parse(readFileSync(new URL('kernels.json', DIR), 'utf8')) as { format: string; tests: KernelTest[] };

function load(e: ArrayEntry): Float32Array | Int32Array {
  const bytes = new Uint8Array(readFileSync(new URL(e.file, DIR))); // copy: 4-byte aligned
  const n = e.shape.reduce((a, b) => a * b, 1);
  assert.equal(bytes.byteLength, 4 * n, `${e.file}: ${bytes.byteLength} bytes for shape [${e.shape}]`);
  return e.dtype === 'i32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
}
const f32In = (t: KernelTest, name: string) => load(t.inputs[name]) as Float32Array;
const f32Out = (t: KernelTest, name: string) => load(t.outputs[name]) as Float32Array;

/** Element-wise Object.is (so −0 ≠ +0), naming the first difference. */
function assertBitExact(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  assert.equal(got.length, want.length, `${what}: lengths differ`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i}: ${got[i]} vs golden ${want[i]}`);
  }
}

/** |got − want| ≤ atol + rtol·|want| element-wise, with the tolerance of the test entry. */
function assertWithin(t: KernelTest, what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  const { atol = 0, rtol = 0 } = t.tolerance;
  assert.ok(atol > 0 || rtol > 0, `${t.name}: no tolerance given`);
  assert.equal(got.length, want.length, `${what}: lengths differ`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) {
      assert.fail(`${t.name} ${what}: element ${i}: ${got[i]} vs golden ${want[i]} (|Δ| ${d} > ${atol} + ${rtol}·|golden|)`);
    }
  }
}

function yarnTable(t: KernelTest): Float32Array {
  const p = t.params as { rope_head_dim: number; original_seq_len: number; base: number; factor: number; beta_fast: number; beta_slow: number };
  return p.original_seq_len > 0
    ? yarnFreqs({ base: p.base, dim: p.rope_head_dim, originalSeqLen: p.original_seq_len, factor: p.factor, betaFast: p.beta_fast, betaSlow: p.beta_slow })
    : ropeFreqs(p.base, p.rope_head_dim);
}

function checkRopeTable(t: KernelTest): void {
  const freqs = yarnTable(t);
  const { seqlen } = t.params as { seqlen: number };
  const pairs = freqs.length;
  const cos = new Float32Array(seqlen * pairs), sin = new Float32Array(seqlen * pairs);
  for (let p = 0; p < seqlen; p++) {
    for (let i = 0; i < pairs; i++) {
      const theta = Math.fround(p * freqs[i]);
      cos[p * pairs + i] = Math.cos(theta);
      sin[p * pairs + i] = Math.sin(theta);
    }
  }
  assertWithin(t, 'cos', cos, f32Out(t, 'cos'));
  assertWithin(t, 'sin', sin, f32Out(t, 'sin'));
}

function checkSinkhorn(t: KernelTest): void {
  const { hc_mult: hc, sinkhorn_iters: iters, eps } = t.params as { hc_mult: number; sinkhorn_iters: number; eps: number };
  const mixes = f32In(t, 'mixes'), scale = f32In(t, 'hc_scale'), base = f32In(t, 'hc_base');
  const n = (2 + hc) * hc;
  assert.equal(t.inputs.mixes.shape.at(-1), n);
  const tokens = mixes.length / n;
  const pre = new Float32Array(tokens * hc), post = new Float32Array(tokens * hc), comb = new Float32Array(tokens * hc * hc);
  for (let s = 0; s < tokens; s++) {
    hcSplitSinkhorn(mixes, s * n, scale, base, hc, iters, eps, pre.subarray(s * hc, (s + 1) * hc),
      post.subarray(s * hc, (s + 1) * hc), comb.subarray(s * hc * hc, (s + 1) * hc * hc));
  }
  assertWithin(t, 'pre', pre, f32Out(t, 'pre'));
  assertWithin(t, 'post', post, f32Out(t, 'post'));
  assertWithin(t, 'comb', comb, f32Out(t, 'comb'));
}

/** Golden-driven check of each kernels.json entry, by name. */
const checks: Record<string, (t: KernelTest) => void> = {
  act_quant_fp8_b128(t) {
    const { block_size: block, inplace } = t.params as { block_size: number; inplace: boolean };
    assert.equal(inplace, false);
    const { codes, scales } = actQuantFp8(f32In(t, 'x'), block);
    assertBitExact('y_e4m3_values', Float32Array.from(codes, (c) => E4M3_TO_F32[c]), f32Out(t, 'y_e4m3_values'));
    assertBitExact('scale', scales, f32Out(t, 'scale'));
  },
  act_quant_fp8_b64_inplace(t) {
    const x = f32In(t, 'x');
    qatFp8(x, (t.params as { block_size: number }).block_size);
    assertBitExact('x_after', x, f32Out(t, 'x_after'));
  },
  fp4_act_quant_b32_inplace(t) {
    const x = f32In(t, 'x');
    qatFp4(x, (t.params as { block_size: number }).block_size);
    assertBitExact('x_after', x, f32Out(t, 'x_after'));
  },
  rotate_activation_128(t) {
    const x = f32In(t, 'x');
    const n = t.inputs.x.shape.at(-1)!;
    assert.ok(Math.abs((t.params as { scale: number }).scale - 1 / Math.sqrt(n)) < 1e-15, 'the golden is the orthonormal scale n^-0.5');
    for (let o = 0; o < x.length; o += n) hadamard(x, o, n);
    assertWithin(t, 'y', x, f32Out(t, 'y'));
  },
  hc_split_sinkhorn_hc4_it20: checkSinkhorn,
  hc_split_sinkhorn_hc3_it7: checkSinkhorn,
  sparse_attn(t) {
    const q = f32In(t, 'q'), kv = f32In(t, 'kv'), sink = f32In(t, 'attn_sink');
    const idx = load(t.inputs.topk_idxs) as Int32Array;
    const [, tokens, heads, d] = t.inputs.q.shape;
    const k = t.inputs.topk_idxs.shape[2];
    assert.ok(idx.includes(-1), 'the golden exercises skipped (−1) candidates');
    const { softmax_scale: scale } = t.params as { softmax_scale: number };
    const o = new Float32Array(q.length);
    for (let s = 0; s < tokens; s++) {
      sparseAttentionWithSink(q, s * heads * d, heads, d, kv, idx.subarray(s * k, (s + 1) * k), k, sink, scale, o, s * heads * d);
    }
    assertWithin(t, 'o', o, f32Out(t, 'o'));
  },
  rope_table_swa_plain: checkRopeTable,
  rope_table_compressed_yarn: checkRopeTable,
  apply_rotary_emb_interleaved(t) {
    const { positions, table } = t.params as { positions: number[]; table: string };
    const tableTest = manifest.tests.find((e) => e.name === table);
    assert.ok(tableTest, `table ${table} is in kernels.json`);
    const freqs = yarnTable(tableTest);
    const [, tokens, heads, width] = t.inputs.x.shape;
    assert.equal(positions.length, tokens);
    const ropeDim = 2 * freqs.length;
    const x = f32In(t, 'x');
    for (let s = 0; s < tokens; s++) ropeTail(x, s * heads * width, heads, width, ropeDim, freqs, positions[s], false);
    assertWithin(t, 'rotated', x, f32Out(t, 'rotated'));
    // The golden inverse is the conjugate rotation applied to the golden rotated values.
    const y = f32Out(t, 'rotated');
    for (let s = 0; s < tokens; s++) ropeTail(y, s * heads * width, heads, width, ropeDim, freqs, positions[s], true);
    assertWithin(t, 'inverse_of_rotated', y, f32Out(t, 'inverse_of_rotated'));
  },
};

describe('DeepSeek-V4 kernel goldens (kernels.json)', () => {
  it('is the expected manifest and every check names an entry', () => {
    assert.equal(manifest.format, 'minke-kernel-golden-v1');
    const names = new Set(manifest.tests.map((t) => t.name));
    for (const name of Object.keys(checks)) assert.ok(names.has(name), `check ${name} has no kernels.json entry`);
  });
  for (const t of manifest.tests) {
    it(`${t.name} (${t.op})`, () => {
      const check = checks[t.name];
      if (!check) assert.fail(`kernels.json entry ${t.name} (op ${t.op}) has no check`);
      if (!t.tolerance.exact) assert.ok(t.tolerance.atol !== undefined || t.tolerance.rtol !== undefined, `${t.name}: no tolerance`);
      check(t);
    });
  }
});

describe('DeepSeek-V4 primitives on hand-computed cases', () => {
  it('hadamard of length 4 is H4/2 in Sylvester order', () => {
    const x = Float32Array.from([9, 1, 2, 3, 4, 9]);
    hadamard(x, 1, 4);
    // rows of H4: ++++, +-+-, ++--, +--+
    assert.deepEqual(Array.from(x), [9, 5, -1, -2, 0, 9]);
  });

  it('hadamard rejects a length that is not a power of two', () => {
    assert.throws(() => hadamard(new Float32Array(6), 0, 6), /power of two/);
    assert.throws(() => hadamard(new Float32Array(4), 2, 4), /needs 4 elements from offset 2/);
  });

  it('ropeTail rotates only the tail pairs by position·freq and the inverse undoes it', () => {
    const freqs = Float32Array.from([0.5, 0.25]);
    const x = Float32Array.from([7, 1, 0, 0, 2]); // one head, width 5, ropeDim 4: channels 1..4 rotate
    ropeTail(x, 0, 1, 5, 4, freqs, 2, false); // angles 1, 0.5
    const [c1, s1, c2, s2] = [Math.cos(1), Math.sin(1), Math.cos(0.5), Math.sin(0.5)].map(Math.fround);
    const want = [7, c1, s1, -2 * s2, 2 * c2];
    want.forEach((w, i) => assert.ok(Math.abs(x[i] - w) < 1e-6, `channel ${i}: ${x[i]} vs ${w}`));
    ropeTail(x, 0, 1, 5, 4, freqs, 2, true);
    [7, 1, 0, 0, 2].forEach((w, i) => assert.ok(Math.abs(x[i] - w) < 1e-6, `inverse channel ${i}: ${x[i]} vs ${w}`));
  });

  it('sparse attention: the sink is a zero-valued logit; no candidates gives zeros', () => {
    // One head, d = 2, two keys with logit 0 (q ⟂ both) and sink 0: each weight is 1/3.
    const kv = Float32Array.from([1, 0, 0, 0, 3, 6]); // rows 0..2
    const q = Float32Array.from([0, 0]);
    const out = Float32Array.from([9, 9]);
    sparseAttentionWithSink(q, 0, 1, 2, kv, [-1, 0, 2], 3, Float32Array.of(0), 1, out, 0);
    assert.ok(Math.abs(out[0] - 4 / 3) < 1e-6 && Math.abs(out[1] - 2) < 1e-6, `got ${Array.from(out)}`);
    sparseAttentionWithSink(q, 0, 1, 2, kv, [-1, -1], 2, Float32Array.of(0), 1, out, 0);
    assert.deepEqual(Array.from(out), [0, 0]);
    assert.throws(() => sparseAttentionWithSink(q, 0, 1, 2, kv, [3], 1, Float32Array.of(0), 1, out, 0), /row 3, kv holds 3 rows/);
  });

  it('hcSplitSinkhorn with zero logits: pre = ½ + eps, post = 1, comb doubly stochastic 1/hc', () => {
    const hc = 2, n = (2 + hc) * hc;
    const pre = new Float32Array(hc), post = new Float32Array(hc), comb = new Float32Array(hc * hc);
    hcSplitSinkhorn(new Float32Array(n), 0, Float32Array.of(1, 1, 1), new Float32Array(n), hc, 3, 0, pre, post, comb);
    assert.deepEqual(Array.from(pre), [0.5, 0.5]);
    assert.deepEqual(Array.from(post), [1, 1]);
    assert.deepEqual(Array.from(comb), [0.5, 0.5, 0.5, 0.5]);
    assert.throws(() => hcSplitSinkhorn(new Float32Array(n - 1), 0, Float32Array.of(1, 1, 1), new Float32Array(n), hc, 3, 0, pre, post, comb),
      /mixes: needs 8 elements/);
  });

  it('sqrtSoftplus: sqrt(ln 2) at 0, sqrt(x) above the threshold 20, ln(1+e^x) at and below it', () => {
    assert.equal(sqrtSoftplus(0), Math.sqrt(Math.LN2));
    assert.equal(sqrtSoftplus(30), Math.sqrt(30));
    assert.equal(sqrtSoftplus(20), Math.sqrt(Math.log1p(Math.exp(20))));
    assert.ok(Math.abs(sqrtSoftplus(-30) - Math.sqrt(Math.exp(-30))) < 1e-20);
  });
});
