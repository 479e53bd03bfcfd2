/**
 * Training's sparse attention and indexer scores on the WASM SIMD kernels (wasm/train_attention.ts
 * through train-attention.ts, as ops-attention.ts runs their all-f32 cases) against the ops' f64
 * TypeScript paths — forward, and backward adding into gradients already holding values — and the
 * plain-TypeScript twins against those same f64 paths. Shapes are odd on purpose: head widths
 * below, at and past the 4- and 32-channel steps with tails, −1 padding, a token with no
 * candidate, table rows seen by many tokens and twice by one, tokens seeing no key or all of them,
 * zero output gradients. The raw exports of each build are also run on part of the rows, as a
 * pool would split them, to check that nothing outside is written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WasmHeap } from '../../src/kernels/cpu/heap.js';
import * as twin from '../../src/kernels/cpu/twin/train_attention.js';
import { kernelImports, kernelModule, type KernelVariant, relaxedSupported } from '../../src/kernels/cpu/wasm-module.js';
import { type FloatArray, parameter, Tape, type Tensor } from '../../src/train/autograd.js';
import { indexerScores, sparseAttention } from '../../src/train/ops-attention.js';
import { assertClose, maxAbs, randomF32, rng } from './util.js';

interface Case { n: number; H: number; d: number; T: number; count: number; seed: number }

const CASES: Case[] = [
  { n: 1, H: 1, d: 1, T: 2, count: 1, seed: 1 },
  { n: 3, H: 2, d: 5, T: 6, count: 4, seed: 2 },
  { n: 7, H: 4, d: 7, T: 9, count: 6, seed: 3 },
  { n: 5, H: 3, d: 36, T: 12, count: 9, seed: 4 },
  { n: 9, H: 4, d: 128, T: 20, count: 11, seed: 5 },
  { n: 4, H: 2, d: 70, T: 5, count: 3, seed: 6 },
];

/** Candidate rows: ~¼ padding, the first token none at all, a repeated row now and then. */
function candidates(c: Case): Int32Array {
  const next = rng(c.seed * 7919), rows = new Int32Array(c.n * c.count);
  for (let i = 0; i < rows.length; i++) rows[i] = i < c.count && c.n > 1 ? -1 : next() < 0.25 ? -1 : Math.floor(next() * c.T);
  if (c.count > 1 && c.n > 1) rows[c.count + 1] = rows[c.count] = 0;
  return rows;
}

interface Data { q: Float32Array; table: Float32Array; sink: Float32Array; g: Float32Array; rows: Int32Array; scale: number;
  /** Values the gradients hold before the backward (it adds). */
  dq0: Float32Array; dtable0: Float32Array; dsink0: Float32Array }

function dataOf(c: Case): Data {
  const R = c.n * c.H * c.d;
  return { q: randomF32(R, c.seed), table: randomF32(c.T * c.d, c.seed + 100), sink: randomF32(c.H, c.seed + 200, 2), g: randomF32(R, c.seed + 300),
    rows: candidates(c), scale: 1 / Math.sqrt(c.d),
    dq0: randomF32(R, c.seed + 400), dtable0: randomF32(c.T * c.d, c.seed + 500), dsink0: randomF32(c.H, c.seed + 600) };
}

/** The op on a tape of `precision` with inputs of that precision; trainable as `train` says. Returns the output and the gradients. */
function runOp(c: Case, x: Data, precision: 'f32' | 'f64', train = { q: true, table: true, sink: true }) {
  const conv = (a: Float32Array): FloatArray => (precision === 'f32' ? Float32Array.from(a) : Float64Array.from(a));
  const q = parameter([c.n, c.H * c.d], conv(x.q), train.q), table = parameter([c.T, c.d], conv(x.table), train.table);
  const sink = parameter([c.H], conv(x.sink), train.sink);
  const seed = (t: Tensor, v: Float32Array) => { if (t.requiresGrad) t.gradient().set(v); };
  seed(q, x.dq0); seed(table, x.dtable0); seed(sink, x.dsink0);
  const tp = new Tape(precision);
  const y = sparseAttention(tp, q, table, x.rows, c.count, sink, x.scale);
  assert.equal(y.data instanceof Float32Array, precision === 'f32');
  tp.backward(y, x.g);
  return { y: y.data, dq: q.grad, dtable: table.grad, dsink: sink.grad };
}

/** f32 tolerance against the f64 result: relative to the array's largest value. */
const tolOf = (want: ArrayLike<number>) => 2e-6 * Math.max(1, maxAbs(want));

describe('training sparse attention: WASM SIMD (f32) against the f64 op', () => {
  for (const c of CASES) {
    it(`n ${c.n}, heads ${c.H}, d ${c.d}, T ${c.T}, count ${c.count}`, () => {
      const x = dataOf(c), got = runOp(c, x, 'f32'), want = runOp(c, x, 'f64');
      for (const k of ['y', 'dq', 'dtable', 'dsink'] as const) assertClose(k, got[k]!, want[k]!, tolOf(want[k]!));
    });
  }

  it('gradients only for tensors that require them', () => {
    const c = CASES[4], x = dataOf(c);
    for (const train of [{ q: false, table: true, sink: true }, { q: true, table: false, sink: false }]) {
      const got = runOp(c, x, 'f32', train), want = runOp(c, x, 'f64', train);
      for (const k of ['dq', 'dtable', 'dsink'] as const) {
        assert.equal(got[k] === null, want[k] === null, `${k} present in one run only`);
        if (want[k]) assertClose(k, got[k]!, want[k]!, tolOf(want[k]!));
      }
      assert.equal(got.dq === null, !train.q);
      assert.equal(got.dtable === null, !train.table);
    }
  });
});

/** Lays `arrays` out back to back (64-byte aligned) after 64 unused bytes (offset 0 means "no gradient"). */
function layout(...arrays: (Float32Array | Int32Array)[]): { mem: ArrayBuffer; ptrs: number[] } {
  const ptrs: number[] = [];
  let top = 64;
  for (const a of arrays) {
    ptrs.push(top);
    top += Math.ceil((a.length * 4) / 64) * 64 || 64;
  }
  const mem = new ArrayBuffer(top);
  arrays.forEach((a, i) => (a instanceof Int32Array ? new Int32Array(mem, ptrs[i], a.length) : new Float32Array(mem, ptrs[i], a.length)).set(a));
  return { mem, ptrs };
}

describe('training sparse attention twins against the f64 op', () => {
  for (const c of CASES.slice(1, 4)) {
    it(`n ${c.n}, heads ${c.H}, d ${c.d}, count ${c.count}`, () => {
      const x = dataOf(c), want = runOp(c, x, 'f64'), R = c.n * c.H;
      const t = layout(x.q, x.table, x.rows, x.sink, new Float32Array(R * c.d), new Float32Array(R * (c.count + 1)), x.g, x.dq0, x.dtable0, x.dsink0);
      const [pq, pt, pr, ps, po, pp, pg, pdq, pdt, pds] = t.ptrs;
      twin.train_sparse_attn_fwd_f32(t.mem, pq, pt, pr, c.count, ps, po, pp, c.H, c.d, x.scale, 0, R);
      twin.train_sparse_attn_bwd_f32(t.mem, pg, po, pp, pq, pt, pr, c.count, pdq, pdt, pds, c.H, c.d, x.scale, 0, R);
      const f = (p: number, len: number) => new Float32Array(t.mem, p, len);
      assertClose('y', f(po, R * c.d), want.y, tolOf(want.y));
      assertClose('dq', f(pdq, R * c.d), want.dq!, tolOf(want.dq!));
      assertClose('dtable', f(pdt, c.T * c.d), want.dtable!, tolOf(want.dtable!));
      assertClose('dsink', f(pds, c.H), want.dsink!, tolOf(want.dsink!));
    });
  }
});

describe('training sparse attention: raw exports on part of the rows', () => {
  const builds: KernelVariant[] = relaxedSupported() ? ['baseline', 'relaxed'] : ['baseline'];
  for (const build of builds) it(`${build} build: rows [row0, row1) only, as the twins compute them`, () => {
    const c = CASES[3], x = dataOf(c), R = c.n * c.H, row0 = 2, row1 = R - 3;
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const heap = new WasmHeap((new WebAssembly.Instance(kernelModule(build), kernelImports(probe)).exports.heap_base as () => number)());
    const ex = new WebAssembly.Instance(kernelModule(build), kernelImports(heap.memory)).exports;
    const arrays = [x.q, x.table, x.rows, x.sink, new Float32Array(R * c.d).fill(-7), new Float32Array(R * (c.count + 1)).fill(-7), x.g,
      new Float32Array(R * c.d).fill(-7), x.dtable0, x.dsink0];
    const ptrs = arrays.map((a) => {
      const p = heap.alloc(a.length * 4);
      (a instanceof Int32Array ? new Int32Array(heap.buffer, p, a.length) : new Float32Array(heap.buffer, p, a.length)).set(a);
      return p;
    });
    const [pq, pt, pr, ps, po, pp, pg, pdq, pdt, pds] = ptrs;
    (ex.train_sparse_attn_fwd_f32 as (...a: number[]) => void)(pq, pt, pr, c.count, ps, po, pp, c.H, c.d, x.scale, row0, row1);
    (ex.train_sparse_attn_bwd_f32 as (...a: number[]) => void)(pg, po, pp, pq, pt, pr, c.count, pdq, pdt, pds, c.H, c.d, x.scale, row0, row1);
    const t = layout(...arrays);
    const [tq, tt, tr, ts, to, tpp, tg, tdq, tdt, tds] = t.ptrs;
    twin.train_sparse_attn_fwd_f32(t.mem, tq, tt, tr, c.count, ts, to, tpp, c.H, c.d, x.scale, row0, row1);
    twin.train_sparse_attn_bwd_f32(t.mem, tg, to, tpp, tq, tt, tr, c.count, tdq, tdt, tds, c.H, c.d, x.scale, row0, row1);
    for (const [what, p, tp, width] of [['out', po, to, c.d], ['prob', pp, tpp, c.count + 1], ['dq', pdq, tdq, c.d]] as const) {
      const got = new Float32Array(heap.buffer, p, R * width), want = new Float32Array(t.mem, tp, R * width);
      for (let r = 0; r < R; r++) {
        if (r < row0 || r >= row1) assert.ok(got.subarray(r * width, (r + 1) * width).every((v) => v === -7), `${what} row ${r} outside [${row0}, ${row1}) was written`);
      }
      assertClose(what, got, want, tolOf(want));
    }
    for (const [what, p, tp, len] of [['dtable', pdt, tdt, c.T * c.d], ['dsink', pds, tds, c.H]] as const) {
      const want = new Float32Array(t.mem, tp, len);
      assertClose(what, new Float32Array(heap.buffer, p, len), want, tolOf(want));
    }
  });
});

interface IndexerCase { n: number; H: number; d: number; E: number; seed: number }

const INDEXER_CASES: IndexerCase[] = [
  { n: 1, H: 1, d: 1, E: 1, seed: 11 },
  { n: 5, H: 2, d: 7, E: 4, seed: 12 },
  { n: 8, H: 3, d: 36, E: 6, seed: 13 },
  { n: 12, H: 2, d: 128, E: 5, seed: 14 },
];

interface IndexerData { q: Float32Array; keys: Float32Array; w: Float32Array; g: Float32Array; visible: Int32Array;
  dq0: Float32Array; dkeys0: Float32Array; dw0: Float32Array }

function indexerDataOf(c: IndexerCase): IndexerData {
  const next = rng(c.seed * 31);
  const visible = Int32Array.from({ length: c.n }, (_, t) => (t === 0 ? 0 : t === c.n - 1 ? c.E : Math.floor(next() * (c.E + 1))));
  const g = randomF32(c.n * c.E, c.seed + 300);
  for (let i = 0; i < g.length; i += 3) g[i] = 0;
  return { q: randomF32(c.n * c.H * c.d, c.seed), keys: randomF32(c.E * c.d, c.seed + 100), w: randomF32(c.n * c.H, c.seed + 200), g, visible,
    dq0: randomF32(c.n * c.H * c.d, c.seed + 400), dkeys0: randomF32(c.E * c.d, c.seed + 500), dw0: randomF32(c.n * c.H, c.seed + 600) };
}

function runIndexer(c: IndexerCase, x: IndexerData, precision: 'f32' | 'f64', train = { q: true, keys: true, w: true }) {
  const conv = (a: Float32Array): FloatArray => (precision === 'f32' ? Float32Array.from(a) : Float64Array.from(a));
  const q = parameter([c.n, c.H * c.d], conv(x.q), train.q), keys = parameter([c.E, c.d], conv(x.keys), train.keys);
  const w = parameter([c.n, c.H], conv(x.w), train.w);
  const seed = (t: Tensor, v: Float32Array) => { if (t.requiresGrad) t.gradient().set(v); };
  seed(q, x.dq0); seed(keys, x.dkeys0); seed(w, x.dw0);
  const tp = new Tape(precision);
  const y = indexerScores(tp, q, keys, w, Array.from(x.visible));
  assert.equal(y.data instanceof Float32Array, precision === 'f32');
  tp.backward(y, x.g);
  return { y: y.data, dq: q.grad, dkeys: keys.grad, dw: w.grad };
}

describe('training indexer scores: WASM SIMD (f32) against the f64 op', () => {
  for (const c of INDEXER_CASES) {
    it(`n ${c.n}, heads ${c.H}, d ${c.d}, E ${c.E}`, () => {
      const x = indexerDataOf(c), got = runIndexer(c, x, 'f32'), want = runIndexer(c, x, 'f64');
      for (const k of ['y', 'dq', 'dkeys', 'dw'] as const) assertClose(k, got[k]!, want[k]!, tolOf(want[k]!));
    });
  }

  it('gradients only for tensors that require them', () => {
    const c = INDEXER_CASES[2], x = indexerDataOf(c);
    for (const train of [{ q: true, keys: false, w: false }, { q: false, keys: true, w: true }]) {
      const got = runIndexer(c, x, 'f32', train), want = runIndexer(c, x, 'f64', train);
      for (const k of ['dq', 'dkeys', 'dw'] as const) {
        assert.equal(got[k] === null, want[k] === null, `${k} present in one run only`);
        if (want[k]) assertClose(k, got[k]!, want[k]!, tolOf(want[k]!));
      }
      assert.equal(got.dq === null, !train.q);
      assert.equal(got.dkeys === null, !train.keys);
    }
  });
});

describe('training indexer twins against the f64 op', () => {
  for (const c of INDEXER_CASES.slice(1, 3)) {
    it(`n ${c.n}, heads ${c.H}, d ${c.d}, E ${c.E}`, () => {
      const x = indexerDataOf(c), want = runIndexer(c, x, 'f64');
      const t = layout(x.q, x.keys, x.w, x.visible, new Float32Array(c.n * c.E), new Float32Array(c.n * c.H * c.E), x.g, x.dq0, x.dkeys0, x.dw0);
      const [pq, pk, pw, pv, po, pd, pg, pdq, pdk, pdw] = t.ptrs;
      twin.train_indexer_fwd_f32(t.mem, pq, pk, pw, pv, po, pd, c.E, c.H, c.d, 0, c.n);
      twin.train_indexer_bwd_f32(t.mem, pg, pd, pq, pk, pw, pv, pdq, pdk, pdw, c.E, c.H, c.d, 0, c.n);
      const f = (p: number, len: number) => new Float32Array(t.mem, p, len);
      assertClose('y', f(po, c.n * c.E), want.y, tolOf(want.y));
      assertClose('dq', f(pdq, c.n * c.H * c.d), want.dq!, tolOf(want.dq!));
      assertClose('dkeys', f(pdk, c.E * c.d), want.dkeys!, tolOf(want.dkeys!));
      assertClose('dw', f(pdw, c.n * c.H), want.dw!, tolOf(want.dw!));
    });
  }
});

describe('training indexer scores: raw exports on part of the rows', () => {
  const builds: KernelVariant[] = relaxedSupported() ? ['baseline', 'relaxed'] : ['baseline'];
  for (const build of builds) it(`${build} build: rows [row0, row1) only, as the twins compute them`, () => {
    const c = INDEXER_CASES[2], x = indexerDataOf(c), row0 = 2, row1 = c.n - 1;
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const heap = new WasmHeap((new WebAssembly.Instance(kernelModule(build), kernelImports(probe)).exports.heap_base as () => number)());
    const ex = new WebAssembly.Instance(kernelModule(build), kernelImports(heap.memory)).exports;
    const arrays = [x.q, x.keys, x.w, x.visible, new Float32Array(c.n * c.E).fill(-7), new Float32Array(c.n * c.H * c.E).fill(-7), x.g,
      new Float32Array(c.n * c.H * c.d).fill(-7), x.dkeys0, new Float32Array(c.n * c.H).fill(-7)];
    const ptrs = arrays.map((a) => {
      const p = heap.alloc(a.length * 4);
      (a instanceof Int32Array ? new Int32Array(heap.buffer, p, a.length) : new Float32Array(heap.buffer, p, a.length)).set(a);
      return p;
    });
    const [pq, pk, pw, pv, po, pd, pg, pdq, pdk, pdw] = ptrs;
    (ex.train_indexer_fwd_f32 as (...a: number[]) => void)(pq, pk, pw, pv, po, pd, c.E, c.H, c.d, row0, row1);
    (ex.train_indexer_bwd_f32 as (...a: number[]) => void)(pg, pd, pq, pk, pw, pv, pdq, pdk, pdw, c.E, c.H, c.d, row0, row1);
    const t = layout(...arrays);
    const [tq, tk, tw, tv, to, td, tg, tdq, tdk, tdw] = t.ptrs;
    twin.train_indexer_fwd_f32(t.mem, tq, tk, tw, tv, to, td, c.E, c.H, c.d, row0, row1);
    twin.train_indexer_bwd_f32(t.mem, tg, td, tq, tk, tw, tv, tdq, tdk, tdw, c.E, c.H, c.d, row0, row1);
    for (const [what, p, tp, width] of [['out', po, to, c.E], ['dots', pd, td, c.H * c.E], ['dq', pdq, tdq, c.H * c.d], ['dw', pdw, tdw, c.H]] as const) {
      const got = new Float32Array(heap.buffer, p, c.n * width), want = new Float32Array(t.mem, tp, c.n * width);
      for (let r = 0; r < c.n; r++) {
        if (r < row0 || r >= row1) assert.ok(got.subarray(r * width, (r + 1) * width).every((v) => v === -7), `${what} row ${r} outside [${row0}, ${row1}) was written`);
      }
      assertClose(what, got, want, tolOf(want));
    }
    const want = new Float32Array(t.mem, tdk, c.E * c.d);
    assertClose('dkeys', new Float32Array(heap.buffer, pdk, c.E * c.d), want, tolOf(want));
  });
});
