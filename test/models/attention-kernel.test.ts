/**
 * The attention op and the KV-cache store: the WASM kernels through the CPU backend (2 threads
 * with every job split across the pool, and 1 thread) against their plain-TypeScript twins, plus
 * cases whose answer is known by hand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { SCRATCH_BYTES } from '../../src/kernels/cpu/pool.js';
import * as twin from '../../src/kernels/cpu/twin/attention.js';
import { F16_TO_F32, f32ToF16 } from '../../src/tensor/float.js';
import { assertClose, maxAbs, randomF32, tensorOf } from '../kernels/util.js';

/** [heads, kvHeads, headDim] */
const HEAD_SHAPES: [number, number, number][] = [[1, 1, 1], [4, 2, 8], [8, 1, 7], [6, 3, 16], [2, 2, 64], [3, 1, 130]];
/** [n tokens, start position, window] */
const SPANS: [number, number, number][] = [[1, 0, 0], [1, 37, 0], [3, 0, 0], [9, 5, 0], [1, 37, 4], [7, 20, 1], [5, 2, 3]];

function cache(be: CpuBackend, dtype: 'f32' | 'f16', rows: number, width: number, seed: number): CpuTensor {
  const values = randomF32(rows * width, seed, 2);
  const t = be.alloc(dtype, [rows, width]) as CpuTensor;
  be.upload(t, dtype === 'f32' ? values : Uint16Array.from(values, f32ToF16));
  return t;
}

for (const threads of [2, 1]) {
  describe(`attention kernels, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
    let be: CpuBackend;
    before(async () => { be = await CpuBackend.create({ threads, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
    after(() => be.close());

    for (const dtype of ['f32', 'f16'] as const) {
      it(`attention over an ${dtype} cache matches the twin (GQA, odd head sizes, windows, prefill and decode)`, () => {
        let seed = 1;
        for (const [heads, kvHeads, headDim] of HEAD_SHAPES) {
          for (const [n, start, window] of SPANS) {
            const capacity = start + n + 2; // rows past the last position hold junk the kernel must not read
            const q = tensorOf(be, [n, heads * headDim], randomF32(n * heads * headDim, seed++, 1.5)) as CpuTensor;
            const k = cache(be, dtype, capacity, kvHeads * headDim, seed++), v = cache(be, dtype, capacity, kvHeads * headDim, seed++);
            const fast = be.alloc('f32', [n, heads * headDim]), slow = be.alloc('f32', [n, heads * headDim]) as CpuTensor;
            const scale = 1 / Math.sqrt(headDim);
            be.attention(q, k, v, fast, { heads, kvHeads, headDim, start, scale, window });
            twin[`attention_${dtype}`](be.heap.buffer, q.ptr, k.ptr, v.ptr, slow.ptr, heads, kvHeads, headDim, start, window, scale, 0, n * heads);
            const ref = be.f32(slow).slice();
            // Outputs are convex combinations of V rows (|v| ≤ 2): f32 rounding of the softmax and sums.
            assertClose(`${dtype} heads ${heads}/${kvHeads} × ${headDim}, n ${n} at ${start}, window ${window}`, be.f32(fast), ref, 2e-5 * Math.max(1, maxAbs(ref)));
            for (const t of [q, k, v, fast, slow]) be.free(t);
          }
        }
      });
    }

    it('tiles of 3 positions, and no scratch at all (one position at a time), give the same results', () => {
      // The calling thread's instance runs every job when the backend has one thread.
      if (threads !== 1) return;
      const setScratch = be.pool.exports.set_scratch as (ptr: number, bytes: number) => void;
      const block = be.heap.alloc(SCRATCH_BYTES);
      try {
        for (const bytes of [12, 0]) {
          setScratch(block, bytes);
          let seed = 50;
          for (const dtype of ['f32', 'f16'] as const) {
            for (const [heads, kvHeads, headDim] of [[4, 2, 8], [3, 1, 20]]) {
              const [n, start] = [5, 40];
              const q = tensorOf(be, [n, heads * headDim], randomF32(n * heads * headDim, seed++, 1.5)) as CpuTensor;
              const k = cache(be, dtype, start + n, kvHeads * headDim, seed++), v = cache(be, dtype, start + n, kvHeads * headDim, seed++);
              const fast = be.alloc('f32', [n, heads * headDim]), slow = be.alloc('f32', [n, heads * headDim]) as CpuTensor;
              be.attention(q, k, v, fast, { heads, kvHeads, headDim, start, scale: 0.7, window: 17 });
              twin[`attention_${dtype}`](be.heap.buffer, q.ptr, k.ptr, v.ptr, slow.ptr, heads, kvHeads, headDim, start, 17, 0.7, 0, n * heads);
              const ref = be.f32(slow).slice();
              assertClose(`${dtype} with ${bytes} bytes of scratch`, be.f32(fast), ref, 2e-5 * Math.max(1, maxAbs(ref)));
              for (const t of [q, k, v, fast, slow]) be.free(t);
            }
          }
        }
      } finally {
        setScratch(block, SCRATCH_BYTES); // the original block stays allocated; this backend is closed after the suite
      }
    });

    it('one visible position gives its V row; equal scores give the mean of the V rows; heads read their KV group', () => {
      const heads = 4, kvHeads = 2, headDim = 4, width = kvHeads * headDim;
      const vRows = Float32Array.from({ length: 3 * width }, (_, i) => i);
      const v = tensorOf(be, [3, width], vRows);
      const k = tensorOf(be, [3, width], new Float32Array(3 * width)); // all scores 0
      const q = tensorOf(be, [1, heads * headDim], randomF32(heads * headDim, 9));
      const out = be.alloc('f32', [1, heads * headDim]);
      // Position 2 with window 1: only V[2]. Heads 0, 1 read KV head 0; heads 2, 3 read KV head 1.
      be.attention(q, k, v, out, { heads, kvHeads, headDim, start: 2, scale: 1, window: 1 });
      const row2 = Array.from(vRows.subarray(2 * width, 3 * width));
      assert.deepEqual(Array.from(be.f32(out)), [...row2.slice(0, 4), ...row2.slice(0, 4), ...row2.slice(4), ...row2.slice(4)]);
      // Position 2, no window: the mean of V[0..2] per head.
      be.attention(q, k, v, out, { heads, kvHeads, headDim, start: 2, scale: 1 });
      const mean = Array.from({ length: width }, (_, j) => (vRows[j] + vRows[width + j] + vRows[2 * width + j]) / 3);
      assertClose('mean of V', be.f32(out), [...mean.slice(0, 4), ...mean.slice(0, 4), ...mean.slice(4), ...mean.slice(4)], 1e-5);
      for (const t of [q, k, v, out]) be.free(t);
    });

    it('causality: a prefill row ignores the cache rows after its position', () => {
      const [heads, kvHeads, headDim, n] = [2, 1, 8, 4];
      const q = tensorOf(be, [n, heads * headDim], randomF32(n * heads * headDim, 3));
      const k = cache(be, 'f32', n, headDim, 4), v = cache(be, 'f32', n, headDim, 5);
      const out = be.alloc('f32', [n, heads * headDim]);
      be.attention(q, k, v, out, { heads, kvHeads, headDim, start: 0, scale: 0.3 });
      const before = be.f32(out).slice();
      be.f32(k).fill(7, 2 * headDim); be.f32(v).fill(-7, 2 * headDim); // change positions 2, 3
      be.attention(q, k, v, out, { heads, kvHeads, headDim, start: 0, scale: 0.3 });
      assert.deepEqual(be.f32(out).slice(0, 2 * heads * headDim), before.slice(0, 2 * heads * headDim));
      assert.notDeepEqual(be.f32(out).slice(2 * heads * headDim), before.slice(2 * heads * headDim));
      for (const t of [q, k, v, out]) be.free(t);
    });

    it('copy into f32 and f16 caches matches the twin bit for bit (rounding ties, subnormals, overflow, NaN)', () => {
      const special = [0, -0, 1, 65504, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity, -Infinity];
      const values = Float32Array.from([...special, ...randomF32(61 * 3 - special.length, 11, 100)]);
      const x = tensorOf(be, [3, 61], values) as CpuTensor;
      for (const dtype of ['f32', 'f16'] as const) {
        const fast = be.alloc(dtype, [3, 61]), slow = be.alloc(dtype, [3, 61]) as CpuTensor;
        be.copy(x, fast);
        twin[`copy_f32_${dtype}`](be.heap.buffer, x.ptr, slow.ptr, 61, 0, 3);
        assert.deepEqual(be.bytes(fast), be.bytes(slow), dtype);
        if (dtype === 'f16') {
          const halves = new Uint16Array(be.bytes(fast).slice().buffer);
          // Hand-checked: 65520 rounds up to inf, 2^-25 (a tie) to 0, 1.5·2^-25 to the smallest subnormal,
          // 1 + 2^-11 (a tie) down to 1, 1 + 3·2^-11 up to 1 + 2^-9.
          assert.deepEqual([4, 8, 9, 11, 12].map((i) => F16_TO_F32[halves[i]]), [Infinity, 0, 2 ** -24, 1, 1 + 2 ** -9]);
          assert.ok(Number.isNaN(F16_TO_F32[halves[13]]));
        } else {
          assert.deepEqual(be.f32(fast), values);
        }
        be.free(fast); be.free(slow);
      }
      be.free(x);
    });

    it('rejects mismatched shapes and positions past the cache', () => {
      const q = be.alloc('f32', [2, 16]), k = be.alloc('f32', [4, 8]), v = be.alloc('f32', [4, 8]), out = be.alloc('f32', [2, 16]);
      const o = { heads: 2, kvHeads: 1, headDim: 8, scale: 1 };
      assert.throws(() => be.attention(q, k, v, out, { ...o, start: 3 }), /positions 3 … 4 are outside the cache's 4 rows/);
      assert.throws(() => be.attention(q, k, v, out, { ...o, kvHeads: 3, start: 0 }), /multiple of kvHeads/);
      const k16 = be.alloc('f16', [4, 8]);
      assert.throws(() => be.attention(q, k16, v, out, { ...o, start: 0 }), /vCache must be f32 or f16 .* like kCache/);
      for (const t of [q, k, v, out, k16]) be.free(t);
    });
  });
}
