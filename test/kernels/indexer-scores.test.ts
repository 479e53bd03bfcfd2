/**
 * The lightning-indexer scores op (DeepSeek-V4 §6.5) through the CPU backend: the twin on a case
 * worked by hand, the WASM kernel against the twin (same bits: both sum in the kernel's stated
 * f32 order) over several token counts, head counts, key widths (with and without a tail past the
 * fours), a few thousand entries and visible counts from 0 to cols, on 1 and 2 threads; and the
 * argument errors. (The WebGPU kernel is checked against the CPU one in webgpu-attention.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { indexer_scores_f32 as twin } from '../../src/kernels/cpu/twin/indexer.js';
import { randomF32, rng, tensorOf } from './util.js';

const NEG = -Infinity;

/** Hand case: n 2, heads 2, d 3 (all tail, no whole four), 3 entries, cols 4. */
const HAND = {
  q: [1, 2, 0, 0, -1, 3, /* token 1 */ -1, 0, 0, 1, 1, 1],
  w: [0.5, 2, /* token 1 */ 3, -1],
  keys: [1, 0, 0, 0, 1, 1, 2, 2, 2],
  visible: [3, 1],
  // token 0: e0 0.5·1 + 2·relu(0) = 0.5; e1 0.5·2 + 2·2 = 5; e2 0.5·6 + 2·4 = 11; e3 past visible.
  // token 1: e0 3·relu(−1) + (−1)·1 = −1; the rest past visible.
  want: [0.5, 5, 11, NEG, -1, NEG, NEG, NEG],
};

interface Case { n: number; heads: number; d: number; entries: number; cols: number }

const CASES: Case[] = [
  { n: 1, heads: 16, d: 128, entries: 3000, cols: 3000 },
  { n: 4, heads: 4, d: 128, entries: 1500, cols: 1501 },
  { n: 5, heads: 1, d: 64, entries: 700, cols: 700 },
  { n: 3, heads: 16, d: 64, entries: 2000, cols: 1999 },
  { n: 3, heads: 3, d: 70, entries: 53, cols: 50 },
  { n: 2, heads: 4, d: 2, entries: 9, cols: 11 },
];

/** Visible counts: 0 for token 0 and min(entries, cols) for token 1 (when there are such), else random. */
function visibleCounts(c: Case, seed: number): Int32Array {
  const r = rng(seed), top = Math.min(c.entries, c.cols);
  return Int32Array.from({ length: c.n }, (_, t) => (t === 0 && c.n > 1 ? 0 : t === 1 ? top : Math.floor(r() * (top + 1))));
}

for (const threads of [2, 1]) {
  describe(`indexer scores, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
    let be: CpuBackend;
    before(async () => { be = await CpuBackend.create({ threads, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
    after(async () => { await be.close(); });

    it('the twin and the op give the hand-worked scores', () => {
      const q = tensorOf(be, [2, 6], Float32Array.from(HAND.q)) as CpuTensor;
      const w = tensorOf(be, [2, 2], Float32Array.from(HAND.w)) as CpuTensor;
      const keys = tensorOf(be, [3, 3], Float32Array.from(HAND.keys)) as CpuTensor;
      const vis = be.alloc('i32', [2]) as CpuTensor;
      be.upload(vis, Int32Array.from(HAND.visible));
      const yt = be.alloc('f32', [2, 4]) as CpuTensor, y = be.alloc('f32', [2, 4]);
      twin(be.heap.buffer, q.ptr, w.ptr, keys.ptr, vis.ptr, yt.ptr, 2, 3, 4, 0, 8);
      assert.deepEqual(Array.from(be.f32(yt)), HAND.want);
      be.indexerScores(q, w, keys, Int32Array.from(HAND.visible), 2, y);
      assert.deepEqual(Array.from(be.f32(y)), HAND.want);
    });

    CASES.forEach((c, i) => {
      it(`WASM = twin: n ${c.n}, ${c.heads} heads, d ${c.d}, ${c.entries} entries, ${c.cols} columns`, () => {
        const seed = 100 + 10 * i;
        const q = tensorOf(be, [c.n, c.heads * c.d], randomF32(c.n * c.heads * c.d, seed)) as CpuTensor;
        const w = tensorOf(be, [c.n, c.heads], randomF32(c.n * c.heads, seed + 1)) as CpuTensor;
        const keys = tensorOf(be, [c.entries, c.d], randomF32(c.entries * c.d, seed + 2)) as CpuTensor;
        const visible = visibleCounts(c, seed + 3);
        const vis = be.alloc('i32', [c.n]) as CpuTensor;
        be.upload(vis, visible);
        const y = be.alloc('f32', [c.n, c.cols]), yt = be.alloc('f32', [c.n, c.cols]) as CpuTensor;
        be.indexerScores(q, w, keys, visible, c.heads, y);
        twin(be.heap.buffer, q.ptr, w.ptr, keys.ptr, vis.ptr, yt.ptr, c.heads, c.d, c.cols, 0, c.n * c.cols);
        const got = be.f32(y), want = be.f32(yt);
        for (let t = 0; t < c.n; t++) {
          for (let e = 0; e < c.cols; e++) {
            const at = t * c.cols + e;
            if (e >= visible[t]) assert.equal(want[at], NEG, `twin: token ${t} entry ${e} past visible ${visible[t]}`);
            else assert.ok(Number.isFinite(want[at]), `twin: token ${t} entry ${e} is finite`);
            if (got[at] !== want[at]) assert.fail(`token ${t} entry ${e}: ${got[at]} vs the twin's ${want[at]}`);
          }
        }
        for (const x of [q, w, keys, vis, y, yt]) be.free(x);
      });
    });

    it('rejects bad arguments with errors naming them', () => {
      const q = be.alloc('f32', [2, 8]), w = be.alloc('f32', [2, 2]), keys = be.alloc('f32', [5, 4]), out = be.alloc('f32', [2, 6]);
      const ok = Int32Array.of(5, 0);
      assert.doesNotThrow(() => be.indexerScores(q, w, keys, ok, 2, out));
      assert.throws(() => be.indexerScores(q, w, keys, ok, 0, out), /indexerScores: heads 0 must be a positive integer/);
      assert.throws(() => be.indexerScores(q, w, be.alloc('f16', [5, 4]), ok, 2, out), /indexerScores: keys must be f32 \[entries, d\], got f16/);
      assert.throws(() => be.indexerScores(q, w, be.alloc('f32', [20]), ok, 2, out), /indexerScores: keys must be f32 \[entries, d\]/);
      assert.throws(() => be.indexerScores(be.alloc('f32', [2, 7]), w, keys, ok, 2, out), /indexerScores: q must be f32 \[n, 2·4\]/);
      assert.throws(() => be.indexerScores(q, be.alloc('f32', [2, 3]), keys, ok, 2, out), /indexerScores: w must be f32 with 4 elements/);
      assert.throws(() => be.indexerScores(q, w, keys, ok, 2, be.alloc('f32', [12])), /indexerScores: out must be f32 \[2, cols\]/);
      assert.throws(() => be.indexerScores(q, w, keys, ok, 2, be.alloc('f32', [3, 6])), /indexerScores: out must be f32 \[2, cols\]/);
      assert.throws(() => be.indexerScores(q, w, keys, Int32Array.of(1), 2, out), /indexerScores: 1 visible counts for 2 tokens/);
      assert.throws(() => be.indexerScores(q, w, keys, Int32Array.of(6, 0), 2, out), /token 0 sees 6 entries, outside 0 … min\(5 key rows, 6 columns\)/);
      assert.throws(() => be.indexerScores(q, w, keys, Int32Array.of(0, 5), 2, be.alloc('f32', [2, 4])), /token 1 sees 5 entries, outside 0 … min\(5 key rows, 4 columns\)/);
      assert.throws(() => be.indexerScores(q, w, keys, Int32Array.of(-1, 0), 2, out), /token 0 sees -1 entries/);
    });
  });
}
