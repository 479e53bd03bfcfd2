/**
 * The WebGPU attention kernels (wgsl-attention.ts) against the CPU backend on the same random
 * inputs: causal attention over f32 and f16 caches (prefill from 0 and from a later start, decode,
 * GQA, a sliding window, head widths 64 and 512, keys spanning several tiles of 64) and V4 sparse
 * attention with sink (no candidates, one, a partial tile, several tiles; −1 entries, a token with
 * none at all; d 64 and 512, 4 and 16 heads) and the V4 indexer scores (d 128, 64 and 70, 1, 4 and 16
 * heads, up to 3000 entries, visible counts from 0 to cols).
 */
import { after, describe, it } from 'node:test';
import type { AttentionOptions, Backend, Tensor } from '../../src/kernels/backend.js';
import { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import type { WebGpuBackend } from '../../src/kernels/webgpu/webgpu-backend.js';
import { f32ToF16 } from '../../src/tensor/float.js';
import { assertClose, maxAbs, randomF32, rng } from './util.js';
import { webGpuBackend } from './webgpu-util.js';

const gpu = await webGpuBackend();
const cpu = await CpuBackend.create({ threads: 1 });

/** An f32 or f16 tensor of `values` on backend `be` (f16 rounded on the host, the same bits on both). */
function put(be: Backend, shape: readonly number[], values: Float32Array, dtype: 'f32' | 'f16' = 'f32'): Tensor {
  const t = be.alloc(dtype, shape);
  be.upload(t, dtype === 'f32' ? values : Uint16Array.from(values, f32ToF16));
  return t;
}

/** |gpu − cpu| within 1e-5 of the largest output. */
function assertMatches(what: string, got: Float32Array, want: Float32Array): void {
  assertClose(what, got, want, 1e-5 * Math.max(maxAbs(want), 1e-3));
}

interface AttentionCase extends Omit<AttentionOptions, 'scale'> { n: number; capacity: number; cache: 'f32' | 'f16' }

async function attentionCase(c: AttentionCase, seed: number): Promise<void> {
  const be = gpu as WebGpuBackend;
  const width = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim;
  const q = randomF32(c.n * width, seed, 3); // spread scores: the running maximum moves across tiles
  const k = randomF32(c.capacity * kvWidth, seed + 1);
  const v = randomF32(c.capacity * kvWidth, seed + 2);
  const o: AttentionOptions = { ...c, scale: 1 / Math.sqrt(c.headDim) };
  const run = async (b: Backend): Promise<Float32Array> => {
    // k and v as views of one buffer, k after v: bound once, offsets taken from the parameters.
    const kv = put(b, [2 * c.capacity, kvWidth], new Float32Array([...v, ...k]), c.cache);
    const vt = b.view(kv, 0, [c.capacity, kvWidth]), kt = b.view(kv, c.capacity * kvWidth, [c.capacity, kvWidth]);
    const qt = put(b, [c.n, width], q), out = b.alloc('f32', [c.n, width]);
    b.attention(qt, kt, vt, out, o);
    const r = await b.download(out);
    for (const t of [kv, qt, out]) b.free(t);
    return r;
  };
  const got = await run(be), want = await run(cpu);
  assertMatches(`attention ${JSON.stringify(c)}`, got, want);
}

interface SparseCase { n: number; heads: number; d: number; count: number; kvRows: number; skip: number }

/** Candidate rows with about `skip` of them −1, and token 1 (when there is one) with all −1. */
function candidates(n: number, count: number, kvRows: number, skip: number, seed: number): Int32Array {
  const r = rng(seed);
  const rows = Int32Array.from({ length: n * count }, () => (r() < skip ? -1 : Math.floor(r() * kvRows)));
  if (n > 1) rows.fill(-1, count, 2 * count);
  return rows;
}

async function sparseCase(c: SparseCase, seed: number): Promise<void> {
  const be = gpu as WebGpuBackend;
  const q = randomF32(c.n * c.heads * c.d, seed, 3);
  const kv = randomF32(c.kvRows * c.d, seed + 1);
  const sink = randomF32(c.heads, seed + 2, 2);
  const rows = candidates(c.n, c.count, c.kvRows, c.skip, seed + 3);
  const run = async (b: Backend): Promise<Float32Array> => {
    const qt = put(b, [c.n, c.heads * c.d], q), kvt = put(b, [c.kvRows, c.d], kv), st = put(b, [c.heads], sink);
    const out = b.alloc('f32', [c.n, c.heads * c.d]);
    b.sparseAttention(qt, kvt, rows, c.count, st, out, 1 / Math.sqrt(c.d));
    const r = await b.download(out);
    for (const t of [qt, kvt, st, out]) b.free(t);
    return r;
  };
  const got = await run(be), want = await run(cpu);
  assertMatches(`sparseAttention ${JSON.stringify(c)}`, got, want);
  if (c.n > 1 && c.count > 0) {
    const none = got.subarray(c.heads * c.d, 2 * c.heads * c.d);
    assertClose('a token without candidates gives 0', none, new Float32Array(none.length), 0);
  }
}

interface IndexerCase { n: number; heads: number; d: number; entries: number; cols: number }

async function indexerCase(c: IndexerCase, seed: number): Promise<void> {
  const be = gpu as WebGpuBackend;
  const q = randomF32(c.n * c.heads * c.d, seed), w = randomF32(c.n * c.heads, seed + 1);
  const keys = randomF32(c.entries * c.d, seed + 2);
  // Token 0 sees nothing and token 1 everything it can (when there are such); the rest random.
  const r = rng(seed + 3), top = Math.min(c.entries, c.cols);
  const visible = Int32Array.from({ length: c.n }, (_, t) => (t === 0 && c.n > 1 ? 0 : t === 1 ? top : Math.floor(r() * (top + 1))));
  const run = async (b: Backend): Promise<Float32Array> => {
    const qt = put(b, [c.n, c.heads * c.d], q), wt = put(b, [c.n, c.heads], w), kt = put(b, [c.entries, c.d], keys);
    const out = b.alloc('f32', [c.n, c.cols]);
    b.indexerScores(qt, wt, kt, visible, c.heads, out);
    const res = await b.download(out);
    for (const t of [qt, wt, kt, out]) b.free(t);
    return res;
  };
  const got = await run(be), want = await run(cpu);
  // −Infinity past the visible counts on both (exactly); elsewhere within 1e-5 of the largest score.
  const finite = want.filter((x) => Number.isFinite(x));
  assertClose(`indexerScores ${JSON.stringify(c)}`, got, want, 1e-5 * Math.max(maxAbs(finite), 1e-3));
  for (let t = 0; t < c.n; t++) {
    for (let e = visible[t]; e < c.cols; e++) {
      if (got[t * c.cols + e] !== -Infinity) throw new Error(`indexerScores: token ${t} entry ${e} past visible ${visible[t]} is ${got[t * c.cols + e]}`);
    }
  }
}

describe('WebGPU attention kernels', { skip: typeof gpu === 'string' ? gpu : false }, () => {
  after(async () => {
    if (typeof gpu !== 'string') await gpu.close();
    await cpu.close();
  });

  for (const cache of ['f32', 'f16'] as const) {
    it(`attention, ${cache} caches: prefill from 0 over several tiles`, async () => {
      await attentionCase({ n: 150, capacity: 160, heads: 4, kvHeads: 4, headDim: 64, start: 0, cache }, 1);
    });
    it(`attention, ${cache} caches: prefill from a later start, GQA 8 heads on 2`, async () => {
      await attentionCase({ n: 9, capacity: 100, heads: 8, kvHeads: 2, headDim: 64, start: 70, cache }, 2);
    });
    it(`attention, ${cache} caches: decode, GQA, head width 512`, async () => {
      await attentionCase({ n: 1, capacity: 140, heads: 8, kvHeads: 2, headDim: 512, start: 133, cache }, 3);
    });
    it(`attention, ${cache} caches: sliding window shorter than the sequence`, async () => {
      await attentionCase({ n: 40, capacity: 120, heads: 4, kvHeads: 2, headDim: 64, start: 60, window: 37, cache }, 4);
      await attentionCase({ n: 1, capacity: 300, heads: 2, kvHeads: 1, headDim: 64, start: 250, window: 100, cache }, 5);
    });
  }

  it('attention: prefill with head width 512 from a later start', async () => {
    await attentionCase({ n: 5, capacity: 80, heads: 2, kvHeads: 1, headDim: 512, start: 66, cache: 'f32' }, 6);
  });

  for (const [i, c] of ([
    { n: 3, heads: 4, d: 64, count: 0, kvRows: 8, skip: 0 },
    { n: 3, heads: 4, d: 64, count: 1, kvRows: 8, skip: 0 },
    { n: 4, heads: 16, d: 64, count: 7, kvRows: 20, skip: 0.3 },
    { n: 3, heads: 4, d: 512, count: 7, kvRows: 20, skip: 0.3 },
    { n: 3, heads: 16, d: 64, count: 300, kvRows: 500, skip: 0.2 },
    { n: 2, heads: 4, d: 512, count: 300, kvRows: 400, skip: 0.1 },
    { n: 1, heads: 4, d: 64, count: 2000, kvRows: 3000, skip: 0.5 },
  ] as SparseCase[]).entries()) {
    it(`sparse attention: ${c.count} candidates, d ${c.d}, ${c.heads} heads`, async () => {
      await sparseCase(c, 10 + i);
    });
  }

  for (const [i, c] of ([
    { n: 1, heads: 16, d: 128, entries: 3000, cols: 3000 },
    { n: 4, heads: 4, d: 128, entries: 500, cols: 530 },
    { n: 5, heads: 1, d: 64, entries: 700, cols: 700 },
    { n: 3, heads: 16, d: 64, entries: 200, cols: 190 },
    { n: 3, heads: 3, d: 70, entries: 53, cols: 50 },
  ] as IndexerCase[]).entries()) {
    it(`indexer scores: n ${c.n}, ${c.heads} heads, d ${c.d}, ${c.entries} entries, ${c.cols} columns`, async () => {
      await indexerCase(c, 40 + i);
    });
  }
});
