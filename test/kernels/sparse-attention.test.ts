/**
 * The sparse-attention-with-sink op (DeepSeek-V4 §6.6) through the CPU backend: the official golden
 * of the deepseek-v4-tiny fixture (kernels/kernels.json, entry sparse_attn), a case known by hand,
 * candidate lists longer than a tile, and the small-scratch and no-scratch paths against the
 * twin. (The conformance table runs the op against its twin on the odd shapes.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { SCRATCH_BYTES } from '../../src/kernels/cpu/pool.js';
import { sparse_attention_f32 as twin } from '../../src/kernels/cpu/twin/sparse_attention.js';
import { assertClose, randomF32, rng, tensorOf } from './util.js';

const DIR = new URL('../../../../shared/fixtures/deepseek-v4-tiny/kernels/', import.meta.url);

interface ArrayEntry { file: string; dtype: 'f32' | 'i32'; shape: number[] }
interface GoldenEntry {
  name: string;
  params: { softmax_scale: number };
  inputs: Record<'q' | 'kv' | 'attn_sink' | 'topk_idxs', ArrayEntry>;
  outputs: { o: ArrayEntry };
  tolerance: { atol: number; rtol: number };
}

function golden(): GoldenEntry {
  const manifest = JSON.parse(readFileSync(new URL('kernels.json', DIR), 'utf8')) as { tests: GoldenEntry[] };
  const t = manifest.tests.find((e) => e.name === 'sparse_attn');
  assert.ok(t, 'kernels.json has the sparse_attn entry');
  return t;
}

function load(e: ArrayEntry): Float32Array | Int32Array {
  const bytes = new Uint8Array(readFileSync(new URL(e.file, DIR))); // copy: 4-byte aligned
  assert.equal(bytes.byteLength, 4 * e.shape.reduce((a, b) => a * b, 1), `${e.file}: size of shape [${e.shape}]`);
  return e.dtype === 'i32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
}

/** Runs the op and the twin on the same random inputs; returns both outputs. */
function versusTwin(be: CpuBackend, n: number, heads: number, d: number, count: number, kvRows: number, seed: number) {
  const r = rng(seed);
  const q = tensorOf(be, [n, heads * d], randomF32(n * heads * d, seed, 1)) as CpuTensor;
  const kv = tensorOf(be, [kvRows, d], randomF32(kvRows * d, seed + 1, 1)) as CpuTensor;
  const sink = tensorOf(be, [heads], randomF32(heads, seed + 2, 3)) as CpuTensor;
  const rows = Int32Array.from({ length: n * count }, () => (r() < 0.1 ? -1 : Math.floor(r() * kvRows)));
  const rt = be.alloc('i32', [n, count]) as CpuTensor;
  be.upload(rt, rows);
  const y = be.alloc('f32', [n, heads * d]), yt = be.alloc('f32', [n, heads * d]) as CpuTensor;
  be.sparseAttention(q, kv, rows, count, sink, y, 0.1);
  twin(be.heap.buffer, q.ptr, kv.ptr, rt.ptr, count, sink.ptr, yt.ptr, heads, d, 0.1, 0, n * heads);
  const out = { fast: be.f32(y).slice(), slow: be.f32(yt).slice() };
  for (const t of [q, kv, sink, rt, y, yt]) be.free(t);
  return out;
}

for (const threads of [2, 1]) {
  describe(`sparse attention with sink, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
    let be: CpuBackend;
    before(async () => { be = await CpuBackend.create({ threads, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
    after(() => be.close());

    it('matches the official golden (kernels.json sparse_attn, with skipped candidates)', () => {
      const g = golden();
      const [, tokens, heads, d] = g.inputs.q.shape;
      const count = g.inputs.topk_idxs.shape[2];
      const idx = load(g.inputs.topk_idxs) as Int32Array;
      assert.ok(idx.includes(-1), 'the golden exercises skipped (−1) candidates');
      const q = tensorOf(be, [tokens, heads * d], load(g.inputs.q) as Float32Array);
      const kv = tensorOf(be, [g.inputs.kv.shape[1], d], load(g.inputs.kv) as Float32Array);
      const sink = tensorOf(be, [heads], load(g.inputs.attn_sink) as Float32Array);
      const o = be.alloc('f32', [tokens, heads * d]);
      be.sparseAttention(q, kv, idx, count, sink, o, g.params.softmax_scale);
      const want = load(g.outputs.o) as Float32Array;
      const { atol, rtol } = g.tolerance;
      assertClose('sparse_attn o', be.f32(o), want, Array.from(want, (w) => atol + rtol * Math.abs(w)));
      for (const t of [q, kv, sink, o]) be.free(t);
    });

    it('by hand: the sink is a logit with a zero value; no candidates give zeros', () => {
      // One head, d = 2; q ⟂ every row, sink 0: rows 0 and 2 and the sink weigh 1/3 each. Token 1
      // has only skipped candidates.
      const q = tensorOf(be, [2, 2], new Float32Array(4));
      const kv = tensorOf(be, [3, 2], Float32Array.of(1, 0, 0, 0, 3, 6));
      const sink = tensorOf(be, [1], Float32Array.of(0));
      const o = tensorOf(be, [2, 2], Float32Array.of(9, 9, 9, 9));
      be.sparseAttention(q, kv, Int32Array.of(-1, 0, 2, -1, -1, -1), 3, sink, o, 1);
      assertClose('o', be.f32(o), [4 / 3, 2, 0, 0], 1e-6);
      be.sparseAttention(q, kv, new Int32Array(0), 0, sink, o, 1);
      assert.deepEqual(Array.from(be.f32(o)), [0, 0, 0, 0]);
      assert.throws(() => be.sparseAttention(q, kv, Int32Array.of(0, 3), 1, sink, o, 1), /candidate row 3 is outside kv's 3 rows/);
      assert.throws(() => be.sparseAttention(q, kv, Int32Array.of(0), 1, sink, o, 1), /1 candidate rows for 2 tokens × 1/);
      assert.throws(() => be.sparseAttention(q, sink, Int32Array.of(0, 0), 1, sink, o, 1), /kv must be f32 \[rows, d\]/);
      for (const t of [q, kv, sink, o]) be.free(t);
    });

    it('a token alone gives the same bits as in a batch, however its heads are grouped or split', () => {
      // 6 heads: a group of four and two single heads per token, and the 2-thread chunks (4 rows)
      // cut through tokens. Token t's list: 3 + 4t candidates, padded with −1 in the batch.
      const [n, heads, d, count, kvRows] = [5, 6, 67, 19, 25];
      const r = rng(3);
      const q = tensorOf(be, [n, heads * d], randomF32(n * heads * d, 30, 1));
      const kv = tensorOf(be, [kvRows, d], randomF32(kvRows * d, 31, 1));
      const sink = tensorOf(be, [heads], randomF32(heads, 32, 3));
      const lists = Array.from({ length: n }, (_, t) => Int32Array.from({ length: 3 + 4 * t }, () => Math.floor(r() * kvRows)));
      const rows = new Int32Array(n * count).fill(-1);
      lists.forEach((l, t) => rows.set(l, t * count));
      const batch = be.alloc('f32', [n, heads * d]), alone = be.alloc('f32', [n, heads * d]);
      be.sparseAttention(q, kv, rows, count, sink, batch, 0.2);
      lists.forEach((l, t) => be.sparseAttention(be.view(q, t * heads * d, [1, heads * d]), kv, l, l.length, sink,
        be.view(alone, t * heads * d, [1, heads * d]), 0.2));
      assert.deepEqual(be.f32(alone), be.f32(batch));
      for (const t of [q, kv, sink, batch, alone]) be.free(t);
    });

    it('long candidate lists (several tiles of 1024, as HCA layers over a long context) match the twin', () => {
      const { fast, slow } = versusTwin(be, 2, 5, 64, 2500, 3000, 7);
      assertClose('count 2500', fast, slow, 4e-6);
    });

    it('scratch for 3 candidates a tile, for one head only, and none at all give the same results', () => {
      // The calling thread's instance runs every job when the backend has one thread.
      if (threads !== 1) return;
      const setScratch = be.pool.exports.set_scratch as (ptr: number, bytes: number) => void;
      const block = be.heap.alloc(SCRATCH_BYTES);
      try {
        // 124 bytes: 3 candidates a tile for four heads (after 64 bytes of statistics), 15 for one;
        // 24: one head at a time (3 a tile); 0: one candidate at a time.
        for (const bytes of [124, 24, 0]) {
          setScratch(block, bytes);
          const { fast, slow } = versusTwin(be, 3, 5, 37, 11, 9, 20 + bytes);
          assertClose(`${bytes} bytes of scratch`, fast, slow, 4e-6);
        }
      } finally {
        setScratch(block, SCRATCH_BYTES); // the original block stays allocated; this backend is closed after the suite
      }
    });
  });
}
