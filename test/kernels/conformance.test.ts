/**
 * The kernel conformance table: every WASM kernel, run through the real backend with 2 threads and
 * with 1 (every job split across the pool: parallelMin 0), against its plain-TypeScript twin on
 * the same inputs. Shapes are odd on purpose: k not a multiple of 16, row counts that do not
 * divide into the thread chunks, 1, 3 and 7 tokens. Each twin is also checked against an f64
 * product of the weights (and q8_0/q8_k activations) as the tensor layer decodes them: tightly
 * for the float formats, within f32 rounding of block scales for the quantised ones.
 *
 * Matrix kernels come from MATRIX_KERNELS, activation quantizers from ACT_QUANTIZERS, so formats
 * added there are tested here without edits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { ACT_QUANTIZERS } from '../../src/kernels/cpu/kernels-quant.js';
import { type ActQuantizer, MATRIX_KERNELS, type MatrixKernel } from '../../src/kernels/cpu/registry.js';
import * as twin from '../../src/kernels/cpu/twin/ops.js';
import * as twinSparse from '../../src/kernels/cpu/twin/sparse_attention.js';
import { dequantize, quantize } from '../../src/tensor/dequantize.js';
import { dequantizeRow } from '../../src/tensor/quant-gguf.js';
import { dtypeInfo, formatName } from '../../src/tensor/dtype.js';
import { f32ToBf16, f32ToF16 } from '../../src/tensor/float.js';
import { assertClose, maxAbs, randomF32, rng, tensorOf } from './util.js';

const FLOAT = new Set(['f32', 'f16', 'bf16']);
const ROWS = [1, 5, 37, 130, 259];
const TOKENS = [1, 3, 7, 12]; // 12: a full 8-token matmul tile, then a 4-token one

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

function quantizerFor(kernel: MatrixKernel): ActQuantizer | undefined {
  if (kernel.act === 'f32') return undefined;
  const q = ACT_QUANTIZERS.find((a) => a.act === kernel.act);
  assert.ok(q, `${formatName(kernel.format)} wants ${kernel.act} activations, and ACT_QUANTIZERS has no such quantizer`);
  return q;
}

/** Inner sizes for a format: odd ones where any k works, else 1 and 3 whole blocks. */
function kSizes(kernel: MatrixKernel): number[] {
  let unit = dtypeInfo(kernel.format.dtype).blockElems;
  const q = quantizerFor(kernel);
  if (q) unit = lcm(unit, q.blockElems);
  if (kernel.format.scale && kernel.format.scale.rows === 1) unit = lcm(unit, kernel.format.scale.cols);
  return unit === 1 ? [1, 7, 13, 33, 100, 259] : [unit, 3 * unit];
}

/** Σ_j |w[r, j] · x[t, j]| for each token t and row r: the scale of a dot product's rounding error. */
function absDots(w: Float32Array, x: Float32Array, rows: number, k: number, n: number): Float64Array {
  const out = new Float64Array(n * rows);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += Math.abs(w[r * k + j] * x[t * k + j]);
      out[t * rows + r] = s;
    }
  }
  return out;
}

/**
 * Random weights whose magnitude changes from one 32×32 block to the next (2^−3 … 2^3), so each
 * block gets its own power-of-two scale and a kernel that reads the wrong scale is caught.
 */
function blockSpread(rows: number, k: number, seed: number): Float32Array {
  const v = randomF32(rows * k, seed);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) v[r * k + j] *= 2 ** ((3 * (r >> 5) + (j >> 5)) % 7 - 3);
  return v;
}

/** Checks matvec (n = 0 below means "matvec", else matmul with n tokens) for one weight shape. */
function checkMatrix(be: CpuBackend, kernel: MatrixKernel, rows: number, k: number, seed: number, spread = false): void {
  const name = `${formatName(kernel.format)} [${rows}, ${k}]`;
  const values = spread ? blockSpread(rows, k, seed) : randomF32(rows * k, seed);
  const q = quantize(kernel.format, values, rows, k);
  const w = be.allocWeight(kernel.format, [rows, k]) as CpuTensor;
  be.upload(w, q.data);
  if (w.scale) be.upload(w.scale.tensor, q.scale!);
  const deq = dequantize(kernel.format, q.data, rows, k, q.scale);
  const scalePtr = w.scale ? (w.scale.tensor as CpuTensor).ptr : 0;
  const quantizer = quantizerFor(kernel);
  try {
    for (const n of [0, ...TOKENS]) {
      const tokens = Math.max(n, 1);
      const what = `${name} ${n ? `matmul n=${n}` : 'matvec'}`;
      const xv = randomF32(tokens * k, seed + 7 + n, 2);
      const x = tensorOf(be, [tokens, k], xv) as CpuTensor;
      const y = be.alloc('f32', [tokens, rows]), yt = be.alloc('f32', [tokens, rows]) as CpuTensor;
      let xq: number | undefined;
      try {
        if (n) be.matmul(w, x, y); else be.matvec(w, x, be.view(y, 0, [rows]));
        // Twin path: its own quantizer, then the twin kernel in two row ranges.
        let xp = x.ptr;
        if (quantizer) {
          const qb = (k / quantizer.blockElems) * quantizer.blockBytes;
          xq = be.heap.alloc(tokens * qb);
          for (let t = 0; t < tokens; t++) quantizer.twin(be.heap.buffer, x.ptr + 4 * t * k, xq + t * qb, k);
          xp = xq;
        }
        const mid = rows >> 1, mem = be.heap.buffer;
        for (const [r0, r1] of [[0, mid], [mid, rows]]) {
          if (n) kernel.twin.matmul(mem, w.ptr, scalePtr, xp, yt.ptr, k, n, rows, r0, r1);
          else kernel.twin.matvec(mem, w.ptr, scalePtr, xp, yt.ptr, k, r0, r1);
        }
        const fast = be.f32(y), slow = be.f32(yt);
        const mag = absDots(deq, xv, rows, k, tokens);
        assertClose(`${what}: wasm vs twin`, fast, slow, Array.from(mag, (m) => 2e-5 * m + 1e-6));
        // The twin against an f64 product of the decoded weights and the decoded activations
        // (for q8 activations: the twin quantizer's blocks, decoded by the tensor layer). Not for
        // q8_1: there the kernels take a block's Σx from its f16 `s` field, as llama.cpp does,
        // which the decoded values do not carry.
        if (kernel.act === 'q8_1') continue;
        let xd = xv;
        if (quantizer) {
          const qb = (k / quantizer.blockElems) * quantizer.blockBytes;
          xd = new Float32Array(tokens * k);
          dequantizeRow(quantizer.act, new Uint8Array(be.heap.buffer, xq!, tokens * qb), xd, tokens * k);
        }
        const ref = new Float64Array(tokens * rows);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < rows; r++) {
            let s = 0;
            for (let j = 0; j < k; j++) s += deq[r * k + j] * xd[t * k + j];
            ref[t * rows + r] = s;
          }
        }
        // Float twins sum in f64 (tight); the others may round scales and block sums to f32.
        const rel = FLOAT.has(kernel.format.dtype) ? 1e-7 : 2e-6;
        assertClose(`${what}: twin vs f64`, slow, ref, Array.from(mag, (m) => rel * m + 1e-30));
      } finally {
        be.free(x); be.free(y); be.free(yt);
        if (xq !== undefined) be.heap.free(xq);
      }
    }
  } finally {
    be.free(w);
  }
}

type Out = { fast: ArrayLike<number>; slow: ArrayLike<number>; tol: number | ArrayLike<number> };

/** Row-op cases: [n, d] shapes with odd row lengths. */
const OP_SHAPES: [number, number][] = [[1, 1], [1, 17], [3, 64], [7, 130], [33, 7], [5, 1000]];

/** Each op: runs the backend op and the twin on the same inputs, returns both outputs and a tolerance. */
const OPS: Record<string, (be: CpuBackend, n: number, d: number, seed: number) => Out[]> = {
  rmsnorm(be, n, d, seed) {
    const x = tensorOf(be, [n, d], randomF32(n * d, seed, 3)) as CpuTensor;
    const w = tensorOf(be, [d], randomF32(d, seed + 1)) as CpuTensor;
    const out: Out[] = [];
    for (const weighted of [true, false]) {
      const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
      be.rmsnorm(x, weighted ? w : null, y, 1e-6);
      twin.rmsnorm_f32(be.heap.buffer, x.ptr, weighted ? w.ptr : 0, yt.ptr, d, 1e-6, 0, n);
      const slow = be.f32(yt).slice();
      out.push({ fast: be.f32(y).slice(), slow, tol: 2e-6 * maxAbs(slow) + 1e-30 });
    }
    return out;
  },
  rope(be, n, d, seed) {
    const out: Out[] = [];
    const r = rng(seed);
    const positions = Array.from({ length: n }, () => Math.floor(r() * 100000));
    for (const [heads, headDim, ropeDim] of [[1, 2 * Math.ceil(d / 2), 2 * Math.ceil(d / 2)], [3, 20, 8], [2, 64, 64]]) {
      for (const layout of ['interleaved', 'neox'] as const) {
        for (const inverse of [false, true]) {
          const xv = randomF32(n * heads * headDim, seed + heads, 2);
          const x = tensorOf(be, [n, heads * headDim], xv), xt = tensorOf(be, [n, heads * headDim], xv) as CpuTensor;
          const freqs = Float32Array.from({ length: ropeDim / 2 }, (_, i) => Math.pow(10000, (-2 * i) / ropeDim));
          const ft = tensorOf(be, [ropeDim / 2], freqs) as CpuTensor;
          const pt = be.alloc('i32', [n]) as CpuTensor;
          be.upload(pt, Int32Array.from(positions));
          be.rope(x, freqs, positions, { heads, headDim, ropeDim, layout, inverse });
          twin.rope_f32(be.heap.buffer, xt.ptr, ft.ptr, pt.ptr, heads, headDim, ropeDim, layout === 'neox' ? 1 : 0, inverse ? 1 : 0, 0, n);
          out.push({ fast: be.f32(x).slice(), slow: be.f32(xt).slice(), tol: 1e-6 * maxAbs(xv) * 4 });
        }
      }
    }
    return out;
  },
  softmax(be, n, d, seed) {
    const x = tensorOf(be, [n, d], randomF32(n * d, seed, 8)) as CpuTensor;
    return [1, 0.125].map((scale) => {
      const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
      be.softmax(x, y, scale);
      twin.softmax_f32(be.heap.buffer, x.ptr, yt.ptr, d, scale, 0, n);
      const slow = be.f32(yt).slice();
      return { fast: be.f32(y).slice(), slow, tol: Array.from(slow, (v) => 4e-6 * v + 1e-9) };
    });
  },
  silu(be, n, d, seed) {
    const x = tensorOf(be, [n, d], randomF32(n * d, seed, 30)) as CpuTensor;
    const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
    be.silu(x, y);
    twin.silu_f32(be.heap.buffer, x.ptr, yt.ptr, d, 0, n);
    const slow = be.f32(yt).slice();
    return [{ fast: be.f32(y).slice(), slow, tol: Array.from(slow, (v) => 2e-6 * Math.abs(v) + 1e-30) }];
  },
  swiglu(be, n, d, seed) {
    const g = tensorOf(be, [n, d], randomF32(n * d, seed, 20)) as CpuTensor;
    const u = tensorOf(be, [n, d], randomF32(n * d, seed + 1, 20)) as CpuTensor;
    return [0, 1.5, 10].map((limit) => {
      const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
      be.swiglu(g, u, y, limit);
      twin.swiglu_f32(be.heap.buffer, g.ptr, u.ptr, yt.ptr, d, limit, 0, n);
      const slow = be.f32(yt).slice();
      return { fast: be.f32(y).slice(), slow, tol: Array.from(slow, (v) => 2e-6 * Math.abs(v) + 1e-30) };
    });
  },
  add: (be, n, d, seed) => binaryCases(be, 'add', n, d, seed),
  mul: (be, n, d, seed) => binaryCases(be, 'mul', n, d, seed),
  embedding(be, n, d, seed) {
    const vocab = 11;
    const values = randomF32(vocab * d, seed, 4);
    const r = rng(seed);
    const ids = Array.from({ length: n }, () => Math.floor(r() * vocab));
    const idt = be.alloc('i32', [n]) as CpuTensor;
    be.upload(idt, Int32Array.from(ids));
    return (['f32', 'f16', 'bf16'] as const).map((dtype) => {
      const table = be.alloc(dtype, [vocab, d]) as CpuTensor;
      if (dtype === 'f32') be.upload(table, values);
      else be.upload(table, Uint16Array.from(values, dtype === 'f16' ? f32ToF16 : f32ToBf16));
      const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
      be.embedding(table, ids, y);
      twin[`embed_${dtype}`](be.heap.buffer, table.ptr, idt.ptr, yt.ptr, d, 0, n);
      return { fast: be.f32(y).slice(), slow: be.f32(yt).slice(), tol: 0 };
    });
  },
  sparseAttention(be, n, d, seed) {
    const r = rng(seed);
    // [heads, count, kv rows]: a few candidates, more than the rows (repeats), none at all; heads
    // one at a time, in fours (the kernel's group), and in fours with one left over.
    return ([[1, 5, 9], [4, 40, 23], [5, 12, 30], [3, 0, 4]] as const).map(([heads, count, kvRows]) => {
      const q = tensorOf(be, [n, heads * d], randomF32(n * heads * d, seed, 1)) as CpuTensor;
      const kv = tensorOf(be, [kvRows, d], randomF32(kvRows * d, seed + 1, 1)) as CpuTensor;
      const sink = tensorOf(be, [heads], randomF32(heads, seed + 2, 2)) as CpuTensor;
      // About one candidate in five skipped (−1), and every candidate of the last token when n > 1.
      const rows = Int32Array.from({ length: n * count }, (_, i) => (n > 1 && i >= (n - 1) * count) || r() < 0.2 ? -1 : Math.floor(r() * kvRows));
      const rt = be.alloc('i32', [n, count]) as CpuTensor;
      be.upload(rt, rows);
      const y = be.alloc('f32', [n, heads * d]), yt = be.alloc('f32', [n, heads * d]) as CpuTensor;
      const scale = 1 / Math.sqrt(d);
      be.sparseAttention(q, kv, rows, count, sink, y, scale);
      twinSparse.sparse_attention_f32(be.heap.buffer, q.ptr, kv.ptr, rt.ptr, count, sink.ptr, yt.ptr, heads, d, scale, 0, n * heads);
      const slow = be.f32(yt).slice();
      // Weighted means of kv rows (|v| ≤ 1): f32 rounding of the dots, exponentials and sums.
      return { fast: be.f32(y).slice(), slow, tol: 4e-6 };
    });
  },
  rowsum(be, n, d, seed) {
    const xv = randomF32(n * d, seed, 3);
    const x = tensorOf(be, [n, d], xv) as CpuTensor;
    const y = be.alloc('f32', [n]) as CpuTensor, yt = be.alloc('f32', [n]) as CpuTensor;
    be.pool.run('rowsum_f32', [x.ptr, y.ptr, d], n, 1);
    twin.rowsum_f32(be.heap.buffer, x.ptr, yt.ptr, d, 0, n);
    return [{ fast: be.f32(y).slice(), slow: be.f32(yt).slice(), tol: 1e-6 * d * maxAbs(xv) }];
  },
};

function binaryCases(be: CpuBackend, op: 'add' | 'mul', n: number, d: number, seed: number): Out[] {
  const a = tensorOf(be, [n, d], randomF32(n * d, seed, 5)) as CpuTensor;
  return [[n, d], [d]].map((bshape) => {
    const b = tensorOf(be, bshape, randomF32(bshape.length === 2 ? n * d : d, seed + 1, 5)) as CpuTensor;
    const y = be.alloc('f32', [n, d]), yt = be.alloc('f32', [n, d]) as CpuTensor;
    be[op](a, b, y);
    twin[`${op}_f32`](be.heap.buffer, a.ptr, b.ptr, yt.ptr, d, bshape.length === 2 ? d : 0, 0, n);
    return { fast: be.f32(y).slice(), slow: be.f32(yt).slice(), tol: 0 }; // one f32 rounding either way: exact
  });
}

/** argmax/topk on rows with ties, NaN and −∞: both must agree exactly. */
async function checkSelection(be: CpuBackend, n: number, d: number, seed: number): Promise<void> {
  const r = rng(seed);
  const xv = Float32Array.from({ length: n * d }, () => {
    const u = r();
    return u < 0.05 ? NaN : u < 0.08 ? -Infinity : Math.round(r() * 16) / 4;
  });
  const x = tensorOf(be, [n, d], xv) as CpuTensor;
  const am = await be.argmax(x);
  const out = be.heap.alloc(4 * n);
  twin.argmax_f32(be.heap.buffer, x.ptr, d, out, 0, n);
  assert.deepEqual(am, new Int32Array(be.heap.buffer, out, n).slice(), `argmax [${n}, ${d}]`);
  be.heap.free(out);
  for (const k of [1, Math.min(d, 6), d]) {
    const top = await be.topk(x, k);
    const vp = be.heap.alloc(4 * n * k), ip = be.heap.alloc(4 * n * k);
    twin.topk_f32(be.heap.buffer, x.ptr, d, k, vp, ip, 0, n);
    assert.deepEqual(top.indices, new Int32Array(be.heap.buffer, ip, n * k).slice(), `topk k=${k} [${n}, ${d}] indices`);
    assert.deepEqual(top.values, new Float32Array(be.heap.buffer, vp, n * k).slice(), `topk k=${k} [${n}, ${d}] values`);
    be.heap.free(vp); be.heap.free(ip);
  }
}

for (const threads of [2, 1]) {
  describe(`kernel conformance, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
    let be: CpuBackend;
    before(async () => { be = await CpuBackend.create({ threads, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
    after(() => be.close());

    it('covers every matrix kernel of the registry', () => {
      assert.ok(MATRIX_KERNELS.length >= 3);
      for (const k of MATRIX_KERNELS) {
        assert.ok(be.pool.has(k.wasm.matvec), `kernels.wasm lacks ${k.wasm.matvec}`);
        assert.ok(be.pool.has(k.wasm.matmul), `kernels.wasm lacks ${k.wasm.matmul}`);
      }
      for (const q of ACT_QUANTIZERS) assert.ok(be.pool.has(q.wasm), `kernels.wasm lacks ${q.wasm}`);
    });

    for (const kernel of MATRIX_KERNELS) {
      it(`${formatName(kernel.format)}${kernel.variant ? ` (${kernel.variant})` : ''}: matvec and matmul (n = 1, 3, 7, 12) match the twin`, () => {
        let seed = 1;
        be.setFastActivations(kernel.variant === 'int8-act'); // the backend then dispatches to this kernel
        try {
          for (const rows of ROWS) for (const k of kSizes(kernel)) checkMatrix(be, kernel, rows, k, seed++);
        } finally {
          be.setFastActivations(false);
        }
      });
    }

    it('q8_0 with subnormal f16 block scales (blocks of tiny weights): flagged at upload, matvec and matmul match the twin', () => {
      const kernel = MATRIX_KERNELS.find((kn) => kn.format.dtype === 'q8_0' && !kn.variant)!;
      const rows = 37, k = 96;
      // Rows alternate tiny (|w| < 0.0078: amax/127 is a subnormal half) and ordinary magnitudes.
      const values = randomF32(rows * k, 77).map((v, i) => (Math.floor(i / k) % 2 ? v : v * 1e-3));
      const q = quantize(kernel.format, values, rows, k);
      const w = be.allocWeight(kernel.format, [rows, k]) as CpuTensor;
      be.upload(w, q.data);
      assert.equal(w.subnormalScales, true);
      for (const n of [1, 5]) {
        const x = tensorOf(be, [n, k], randomF32(n * k, 78 + n, 2)) as CpuTensor;
        const y = be.alloc('f32', [n, rows]), yt = be.alloc('f32', [n, rows]) as CpuTensor;
        if (n === 1) be.matvec(w, x, y); else be.matmul(w, x, y);
        const qb = (k / 32) * 34, xq = be.heap.alloc(n * qb);
        const quantizer = quantizerFor(kernel)!;
        for (let t = 0; t < n; t++) quantizer.twin(be.heap.buffer, x.ptr + 4 * t * k, xq + t * qb, k);
        kernel.twin.matmul(be.heap.buffer, w.ptr, 0, xq, yt.ptr, k, n, rows, 0, rows);
        const deq = dequantize(kernel.format, q.data, rows, k);
        const mag = absDots(deq, be.f32(x), rows, k, n);
        assertClose(`q8_0 subnormal scales n=${n}`, be.f32(y), be.f32(yt), Array.from(mag, (m) => 2e-5 * m + 1e-12));
        be.heap.free(xq); be.free(x); be.free(y); be.free(yt);
      }
      be.free(w);
    });

    it('FP8 tiles, a scale per 32×32 block: shapes that are not whole blocks (45×70), k = 128 with 64 rows, 32-row thread chunks', () => {
      let seed = 900;
      for (const kernel of MATRIX_KERNELS.filter((kn) => kn.format.dtype === 'f8_e4m3')) {
        for (const [rows, k] of [[45, 70], [64, 128], [100, 70], [259, 300]]) checkMatrix(be, kernel, rows, k, seed++, true);
      }
      assert.ok(MATRIX_KERNELS.some((kn) => formatName(kn.format) === 'f8_e4m3+e8m0/32x32'), 'the registry has the 32×32 FP8 format');
    });

    it('f16 matvec: activations beyond 2^16 (rescaled path) and k beyond the thread scratch (exact path)', () => {
      const f16 = MATRIX_KERNELS.find((k) => k.format.dtype === 'f16' && !k.format.scale)!;
      for (const [rows, k, xScale] of [[37, 100, 3e5], [37, 100, 1e36], [5, 65540, 1]]) {
        const q = quantize(f16.format, randomF32(rows * k, rows), rows, k);
        const w = be.allocWeight(f16.format, [rows, k]) as CpuTensor;
        be.upload(w, q.data);
        const xv = randomF32(k, 9, xScale);
        const x = tensorOf(be, [k], xv) as CpuTensor;
        const y = be.alloc('f32', [rows]), yt = be.alloc('f32', [rows]) as CpuTensor;
        be.matvec(w, x, y);
        f16.twin.matvec(be.heap.buffer, w.ptr, 0, x.ptr, yt.ptr, k, 0, rows);
        const mag = absDots(dequantize(f16.format, q.data, rows, k), xv, rows, k, 1);
        assertClose(`f16 [${rows}, ${k}], |x| up to ${xScale}`, be.f32(y), be.f32(yt), Array.from(mag, (m) => 2e-5 * m));
        be.free(w); be.free(x); be.free(y); be.free(yt);
      }
    });

    for (const q of ACT_QUANTIZERS) {
      it(`${q.wasm}: the WASM and twin quantizers agree byte for byte`, () => {
        for (const blocks of [1, 3, 8]) {
          const k = blocks * q.blockElems;
          const xv = randomF32(k, blocks, 3);
          xv[1] = 0; // a zero, and an all-zero block when there are several
          if (blocks > 1) xv.fill(0, q.blockElems, 2 * q.blockElems);
          const x = tensorOf(be, [k], xv) as CpuTensor;
          const bytes = blocks * q.blockBytes;
          const a = be.heap.alloc(bytes), b = be.heap.alloc(bytes);
          (be.pool.exports[q.wasm] as (x: number, out: number, k: number) => void)(x.ptr, a, k);
          q.twin(be.heap.buffer, x.ptr, b, k);
          assert.deepEqual(new Uint8Array(be.heap.buffer, a, bytes).slice(), new Uint8Array(be.heap.buffer, b, bytes).slice(), `${q.wasm} k=${k}`);
          be.heap.free(a); be.heap.free(b); be.free(x);
        }
      });
    }

    for (const [op, run] of Object.entries(OPS)) {
      it(`${op} matches the twin`, () => {
        let seed = 100; // cases leave their tensors behind: the test backend is closed afterwards
        for (const [n, d] of OP_SHAPES) {
          const outs = run(be, n, d, seed++);
          outs.forEach((o, i) => assertClose(`${op} [${n}, ${d}] case ${i}`, o.fast, o.slow, o.tol));
        }
      });
    }

    it('argmax and topk match the twin, with ties, NaN and −∞', async () => {
      let seed = 500;
      for (const [n, d] of [...OP_SHAPES, [2, 4099] as [number, number]]) await checkSelection(be, n, d, seed++);
    });
  });
}
