/**
 * The training matmul kernels (wasm/train_matmul.ts) against their plain-TypeScript twins
 * (twin/train_matmul.ts), and the twins against hand-computed products. Shapes are odd on purpose:
 * k below, at and past the 4- and 8-lane steps with tails, token / row counts that leave 1–3 rows
 * after the 2- and 4-row tiles. The raw exports of each build (baseline SIMD; relaxed, with fused
 * multiply-add) are also run on part of the rows ([row0, row1), as the pool would split them) to
 * check that nothing outside is written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WasmHeap } from '../../src/kernels/cpu/heap.js';
import { F32Gemm } from '../../src/kernels/cpu/train-gemm.js';
import * as twin from '../../src/kernels/cpu/twin/train_matmul.js';
import { kernelImports, kernelModule, type KernelVariant, relaxedSupported } from '../../src/kernels/cpu/wasm-module.js';
import { assertClose, randomF32 } from './util.js';

const SHAPES: [number, number, number][] = [[1, 1, 1], [2, 3, 4], [3, 5, 7], [5, 8, 9], [7, 13, 6], [4, 37, 11], [9, 130, 5], [6, 33, 17]];

/** Lays `arrays` out back to back (64-byte aligned) in a fresh buffer; returns it and their byte offsets. */
function layout(...arrays: Float32Array[]): { mem: ArrayBuffer; ptrs: number[] } {
  const ptrs: number[] = [];
  let top = 0;
  for (const a of arrays) {
    ptrs.push(top);
    top += Math.ceil((a.length * 4) / 64) * 64 || 64;
  }
  const mem = new ArrayBuffer(top);
  arrays.forEach((a, i) => new Float32Array(mem, ptrs[i], a.length).set(a));
  return { mem, ptrs };
}

/** f32 rounding bound of a sum of `k` products of values ≤ 1 in magnitude. */
const tol = (k: number) => 4 * k * 2 ** -23;

describe('training matmul twins: hand-computed products', () => {
  it('train_xwt_f32: [2, 3]·[2, 3]ᵀ', () => {
    const x = Float32Array.from([1, 2, 3, -1, 0, 2]), w = Float32Array.from([1, 0, -1, 2, 1, 1]), y = new Float32Array(4);
    const { mem, ptrs } = layout(x, w, y);
    twin.train_xwt_f32(mem, ptrs[0], ptrs[1], ptrs[2], 3, 2, 0, 2);
    assert.deepEqual([...new Float32Array(mem, ptrs[2], 4)], [1 - 3, 2 + 2 + 3, -1 - 2, -2 + 2]);
  });

  it('train_accum_rows_f32: dx += dy·W and dW += dyᵀ·x of the same product', () => {
    // dy [2 tokens, 2 outputs], W [2, 3], x [2, 3].
    const dy = Float32Array.from([1, 2, -1, 3]), W = Float32Array.from([1, 0, -1, 2, 1, 1]), x = Float32Array.from([1, 2, 3, -1, 0, 2]);
    const dx = Float32Array.from([10, 10, 10, 0, 0, 0]), dW = new Float32Array(6);
    const a = layout(dy, W, dx);
    twin.train_accum_rows_f32(a.mem, a.ptrs[0], 1, 2, a.ptrs[1], a.ptrs[2], 2, 3, 0, 2);
    assert.deepEqual([...new Float32Array(a.mem, a.ptrs[2], 6)], [10 + 1 + 4, 10 + 2, 10 - 1 + 2, -1 + 6, 3, 1 + 3]);
    const b = layout(dy, x, dW);
    twin.train_accum_rows_f32(b.mem, b.ptrs[0], 2, 1, b.ptrs[1], b.ptrs[2], 2, 3, 0, 2);
    assert.deepEqual([...new Float32Array(b.mem, b.ptrs[2], 6)], [1 + 1, 2, 3 - 2, 2 - 3, 4, 6 + 6]);
  });
});

describe('training matmul kernels (WASM SIMD) against their twins', () => {
  for (const [n, k, m] of SHAPES) {
    it(`x·Wᵀ, dy·W, dyᵀ·x at n ${n}, k ${k}, m ${m}`, () => {
      const x = randomF32(n * k, n * 1000 + k), w = randomF32(m * k, m * 1000 + k + 1), dy = randomF32(n * m, n + m);
      const gemm = F32Gemm.get();
      const y = new Float32Array(n * m).fill(NaN);
      gemm.matmulXWt(x, w, y, n, k, m);
      const t = layout(x, w, new Float32Array(n * m));
      twin.train_xwt_f32(t.mem, t.ptrs[0], t.ptrs[1], t.ptrs[2], k, m, 0, n);
      assertClose('y', y, new Float32Array(t.mem, t.ptrs[2], n * m), tol(k));

      const dx = randomF32(n * k, 7), dxWant = layout(dy, w, dx);
      gemm.accumulateRows(dy, 1, m, w, dx, n, m, k);
      twin.train_accum_rows_f32(dxWant.mem, dxWant.ptrs[0], 1, m, dxWant.ptrs[1], dxWant.ptrs[2], m, k, 0, n);
      assertClose('dx', dx, new Float32Array(dxWant.mem, dxWant.ptrs[2], n * k), tol(m + 1));

      const dW = randomF32(m * k, 8), dWWant = layout(dy, x, dW);
      gemm.accumulateRows(dy, m, 1, x, dW, m, n, k);
      twin.train_accum_rows_f32(dWWant.mem, dWWant.ptrs[0], m, 1, dWWant.ptrs[1], dWWant.ptrs[2], n, k, 0, m);
      assertClose('dW', dW, new Float32Array(dWWant.mem, dWWant.ptrs[2], m * k), tol(n + 1));
    });
  }

  const builds: KernelVariant[] = relaxedSupported() ? ['baseline', 'relaxed'] : ['baseline'];
  for (const build of builds) it(`${build} build: the raw exports write only rows [row0, row1), and those as the twins do`, () => {
    const probe = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const heapBase = (new WebAssembly.Instance(kernelModule(build), kernelImports(probe)).exports.heap_base as () => number)();
    const heap = new WasmHeap(heapBase);
    const ex = new WebAssembly.Instance(kernelModule(build), kernelImports(heap.memory)).exports;
    const n = 9, k = 21, m = 10, row0 = 1, row1 = 8;
    const put = (a: Float32Array) => {
      const p = heap.alloc(a.length * 4);
      new Float32Array(heap.buffer, p, a.length).set(a);
      return p;
    };
    const x = randomF32(n * k, 1), w = randomF32(m * k, 2), g = randomF32(n * m, 3);
    const px = put(x), pw = put(w), py = put(new Float32Array(n * m).fill(-7)), pg = put(g), pd = put(new Float32Array(n * k).fill(-7));
    (ex.train_xwt_f32 as (...a: number[]) => void)(px, pw, py, k, m, row0, row1);
    (ex.train_accum_rows_f32 as (...a: number[]) => void)(pg, 1, m, pw, pd, m, k, row0, row1);
    const t = layout(x, w, new Float32Array(n * m).fill(-7), g, new Float32Array(n * k).fill(-7));
    twin.train_xwt_f32(t.mem, t.ptrs[0], t.ptrs[1], t.ptrs[2], k, m, row0, row1);
    twin.train_accum_rows_f32(t.mem, t.ptrs[3], 1, m, t.ptrs[1], t.ptrs[4], m, k, row0, row1);
    const y = new Float32Array(heap.buffer, py, n * m), d = new Float32Array(heap.buffer, pd, n * k);
    for (const [what, got, rowLen] of [['y', y, m], ['dx', d, k]] as const) {
      for (let r = 0; r < n; r++) {
        const row = got.subarray(r * rowLen, (r + 1) * rowLen);
        if (r < row0 || r >= row1) assert.ok(row.every((v) => v === -7), `${what} row ${r} outside [${row0}, ${row1}) was written`);
      }
    }
    assertClose('y', y, new Float32Array(t.mem, t.ptrs[2], n * m), tol(k));
    assertClose('dx', d, new Float32Array(t.mem, t.ptrs[4], n * k), tol(m + 8));
  });
});

describe('training matmul kernels split over the worker pool', () => {
  it('2 threads: rows cut into chunks give the twins\' products (n 70, k 130, m 90)', async () => {
    const gemm = await F32Gemm.start(2);
    try {
      assert.equal(gemm.threads, 2);
      const n = 70, k = 130, m = 90;
      const x = randomF32(n * k, 11), w = randomF32(m * k, 12), dy = randomF32(n * m, 13);
      const y = new Float32Array(n * m), dx = new Float32Array(n * k), dW = new Float32Array(m * k);
      gemm.matmulXWt(x, w, y, n, k, m);
      gemm.accumulateRows(dy, 1, m, w, dx, n, m, k);
      gemm.accumulateRows(dy, m, 1, x, dW, m, n, k);
      const t = layout(x, w, dy, new Float32Array(n * m), new Float32Array(n * k), new Float32Array(m * k));
      twin.train_xwt_f32(t.mem, t.ptrs[0], t.ptrs[1], t.ptrs[3], k, m, 0, n);
      twin.train_accum_rows_f32(t.mem, t.ptrs[2], 1, m, t.ptrs[1], t.ptrs[4], m, k, 0, n);
      twin.train_accum_rows_f32(t.mem, t.ptrs[2], m, 1, t.ptrs[0], t.ptrs[5], n, k, 0, m);
      assertClose('y', y, new Float32Array(t.mem, t.ptrs[3], n * m), tol(k));
      assertClose('dx', dx, new Float32Array(t.mem, t.ptrs[4], n * k), tol(m));
      assertClose('dW', dW, new Float32Array(t.mem, t.ptrs[5], m * k), tol(n));
    } finally {
      assert.equal((await F32Gemm.start(1)).threads, 1);
    }
  });
});
