/**
 * The CPU backend's ops on hand-computed cases, its tensor handles (views, row slices with scales,
 * upload/download, loading from a weight file), and its errors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CpuBackend, type CpuTensor } from '../../src/kernels/cpu/cpu-backend.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { openWeights } from '../../src/formats/weights.js';
import { dequantize, quantize } from '../../src/tensor/dequantize.js';
import { FP8_BLOCK32_E8M0, FP8_BLOCK_E8M0 } from '../../src/tensor/dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/tensor/float.js';
import { assertClose, randomF32, tensorOf } from './util.js';

const f32 = Math.fround;

describe('CpuBackend', () => {
  let be: CpuBackend;
  before(async () => { be = await CpuBackend.create({ threads: 2, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
  after(() => be.close());

  const vec = (values: number[], shape = [values.length]) => tensorOf(be, shape, Float32Array.from(values));
  const read = (t: Parameters<CpuBackend['download']>[0]) => be.download(t);

  describe('matrix ops', () => {
    const W = [1, 2, 3, 4, 5, 6]; // [3, 2]
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      it(`${dtype} matvec and matmul on a hand-computed case`, async () => {
        const w = be.alloc(dtype, [3, 2]);
        be.upload(w, dtype === 'f32' ? Float32Array.from(W) : Uint16Array.from(W, dtype === 'f16' ? f32ToF16 : f32ToBf16));
        const y = be.alloc('f32', [3]);
        be.matvec(w, vec([1, -1]), y);
        assert.deepEqual(Array.from(await read(y)), [-1, -1, -1]);
        const yy = be.alloc('f32', [2, 3]);
        be.matmul(w, vec([1, -1, 0.5, 2], [2, 2]), yy);
        assert.deepEqual(Array.from(await read(yy)), [-1, -1, -1, 4.5, 9.5, 14.5]);
      });
    }

    it('matvec of a large f16 matrix matches an f64 product of the decoded weights', async () => {
      const rows = 1000, k = 777;
      const values = randomF32(rows * k, 3);
      const w = be.alloc('f16', [rows, k]);
      be.upload(w, Uint16Array.from(values, f32ToF16));
      const xv = randomF32(k, 4);
      const y = be.alloc('f32', [rows]);
      be.matvec(w, vec(Array.from(xv)), y);
      const ref = Array.from({ length: rows }, (_, r) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += f16ToF32(f32ToF16(values[r * k + j])) * xv[j];
        return s;
      });
      assertClose('f16 matvec', await read(y), ref, 1e-4);
    });

    it('FP8 weights with tile scales go through their kernel, and rows() slices the scales with them', async () => {
      const rows = 300, k = 200;
      const q = quantize(FP8_BLOCK_E8M0, randomF32(rows * k, 5), rows, k);
      const w = be.allocWeight(FP8_BLOCK_E8M0, [rows, k]) as CpuTensor;
      assert.deepEqual(w.scale!.tensor.shape, [3, 2]);
      be.upload(w, q.data); be.upload(w.scale!.tensor, q.scale!);
      const deq = dequantize(FP8_BLOCK_E8M0, q.data, rows, k, q.scale);
      const xv = randomF32(k, 6);
      const x = vec(Array.from(xv));
      const part = be.rows(w, 128, 300);
      const y = be.alloc('f32', [172]);
      be.matvec(part, x, y);
      const ref = Array.from({ length: 172 }, (_, i) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += deq[(128 + i) * k + j] * xv[j];
        return s;
      });
      assertClose('rows 128..300', await read(y), ref, 1e-4);
      assert.throws(() => be.rows(w, 100, 200), /does not follow the 128-row scale tiles/);
      assert.throws(() => be.view(w, 0, [10]), /use rows\(t, row0, row1\)/);
    });

    it('FP8 weights with 32×32 block scales (V4.1): scale grid, their kernel, rows() on 32-row blocks', async () => {
      const rows = 100, k = 70;
      const q = quantize(FP8_BLOCK32_E8M0, randomF32(rows * k, 7), rows, k);
      const w = be.allocWeight(FP8_BLOCK32_E8M0, [rows, k]) as CpuTensor;
      assert.deepEqual(w.scale!.tensor.shape, [4, 3]);
      assert.equal(be.kernelFor(w).wasm.matvec, 'matvec_f8_e4m3_e8m0_b32');
      be.upload(w, q.data); be.upload(w.scale!.tensor, q.scale!);
      const deq = dequantize(FP8_BLOCK32_E8M0, q.data, rows, k, q.scale);
      const xv = randomF32(k, 8);
      const part = be.rows(w, 32, 100);
      const y = be.alloc('f32', [68]);
      be.matvec(part, vec(Array.from(xv)), y);
      const ref = Array.from({ length: 68 }, (_, i) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += deq[(32 + i) * k + j] * xv[j];
        return s;
      });
      assertClose('rows 32..100', await read(y), ref, 1e-4);
      assert.throws(() => be.rows(w, 16, 64), /does not follow the 32-row scale tiles/);
    });

    it('rejects mismatched shapes and formats it has no kernel for, naming them', () => {
      const w = be.alloc('f32', [3, 2]);
      assert.throws(() => be.matvec(w, vec([1, 2, 3]), be.alloc('f32', [3])), /matvec: x must be f32 with 2 elements, got f32 \[3\]/);
      assert.throws(() => be.matvec(w, vec([1, 2]), be.alloc('f32', [4])), /matvec: y must be f32 with 3 elements/);
      assert.throws(() => be.matmul(w, vec([1, 2, 3]), be.alloc('f32', [3])), /matmul: x must be f32 \[n, 2\]/);
      assert.throws(() => be.matvec(be.alloc('i32', [3, 2]), vec([1, 2]), be.alloc('f32', [3])), /no CPU matrix kernel for weight format i32/);
    });
  });

  describe('column panels (f16 / bf16 matrices loaded matrixOnly)', () => {
    // 37 rows of 300: panels of 64 leave a last panel of 44 (not a multiple of 8 or 32), and
    // two threads with parallelMin 0 split the rows into chunks that start mid-panel.
    const rows = 37, k = 300, panel = 64;
    const values = randomF32(rows * k, 41, 0.5), x = randomF32(5 * k, 42);
    let pb: CpuBackend;
    before(async () => { pb = await CpuBackend.create({ threads: 2, panelColumns: panel, parallelMin: { matrixBytes: 0, opElements: 0 } }); });
    after(() => pb.close());

    for (const dtype of ['f16', 'bf16'] as const) {
      const stored = Uint16Array.from(values, dtype === 'f16' ? f32ToF16 : f32ToBf16);
      const wv = Float64Array.from(stored, dtype === 'f16' ? f16ToF32 : bf16ToF32);
      const src = { read: (_: string, dst: Uint8Array) => { dst.set(new Uint8Array(stored.buffer)); } };
      /** y[t][r] in float64 from the stored weights. */
      const reference = (n: number) => Float64Array.from({ length: n * rows }, (_, i) => {
        const t = Math.floor(i / rows), r = i % rows;
        let sum = 0;
        for (let j = 0; j < k; j++) sum += wv[r * k + j] * x[t * k + j];
        return sum;
      });

      it(`${dtype}: matvec and matmul of the panelled matrix match the float64 product`, async () => {
        const w = await pb.loadWeight(src, { name: 'w', format: { dtype }, shape: [rows, k], matrixOnly: true }) as CpuTensor;
        assert.equal(w.panel, panel);
        const y = pb.alloc('f32', [rows]);
        pb.matvec(w, tensorOf(pb, [k], x.subarray(0, k)), y);
        assertClose(`${dtype} matvec`, await pb.download(y), reference(1), 1e-4);
        for (const n of [2, 5]) {
          const yy = pb.alloc('f32', [n, rows]);
          pb.matmul(w, tensorOf(pb, [n, k], x.subarray(0, n * k)), yy);
          assertClose(`${dtype} matmul n=${n}`, await pb.download(yy), reference(n), 1e-4);
        }
      });

      it(`${dtype}: rows no longer than a panel, or not loaded matrixOnly, stay in plain rows`, async () => {
        const short = await pb.loadWeight({ read: (_, dst) => { dst.set(new Uint8Array(stored.buffer, 0, dst.length)); } },
          { name: 'w', format: { dtype }, shape: [rows * 4, panel], matrixOnly: true }) as CpuTensor;
        assert.equal(short.panel, 0);
        const plain = await pb.loadWeight(src, { name: 'w', format: { dtype }, shape: [rows, k] }) as CpuTensor;
        assert.equal(plain.panel, 0);
        assert.deepEqual(pb.bytes(plain), new Uint8Array(stored.buffer));
      });
    }

    it('a panelled matrix refuses row and element views, naming why', async () => {
      const stored = Uint16Array.from(values, f32ToF16);
      const w = await pb.loadWeight({ read: (_, dst) => { dst.set(new Uint8Array(stored.buffer)); } },
        { name: 'w', format: { dtype: 'f16' }, shape: [rows, k], matrixOnly: true });
      assert.throws(() => pb.rows(w, 0, 1), /rows: this f16 \[37, 300\] matrix is stored as column panels/);
      assert.throws(() => pb.view(w, 0, [k]), /view: .* column panels/);
    });

    it('panelColumns must be 0 or a multiple of 8 up to 65536', async () => {
      await assert.rejects(CpuBackend.create({ threads: 1, panelColumns: 12 }), /panelColumns must be 0 or a multiple of 8 up to 65536, got 12/);
      await assert.rejects(CpuBackend.create({ threads: 1, panelColumns: 65544 }), /got 65544/);
    });
  });

  describe('row ops', () => {
    it('rmsnorm, weighted and weightless', async () => {
      const y = be.alloc('f32', [2, 2]);
      be.rmsnorm(vec([3, 4, 0, 0], [2, 2]), vec([1, 2]), y, 1e-6);
      const rms = Math.sqrt(12.5 + 1e-6), zero = 1 / Math.sqrt(1e-6);
      assertClose('weighted', await read(y), [3 / rms, 8 / rms, 0 * zero, 0], 1e-6);
      be.rmsnorm(vec([1, 1, 1, 1], [1, 4]), null, be.view(y, 0, [1, 4]), 0);
      assert.deepEqual(Array.from(await read(y)), [1, 1, 1, 1]);
    });

    it('rope, interleaved: rotates only the last ropeDim channels of each head', async () => {
      // 2 heads of 4 channels; the last 2 of each rotate by θ = p·f = 1·π/2: (a, b) → (−b, a).
      const x = vec([1, 2, 3, 4, 5, 6, 7, 8], [1, 8]);
      be.rope(x, Float32Array.of(Math.PI / 2), [1], { heads: 2, headDim: 4, ropeDim: 2, layout: 'interleaved' });
      assertClose('rotated', await read(x), [1, 2, -4, 3, 5, 6, -8, 7], 1e-6);
      be.rope(x, Float32Array.of(Math.PI / 2), [1], { heads: 2, headDim: 4, ropeDim: 2, layout: 'interleaved', inverse: true });
      assertClose('rotated back', await read(x), [1, 2, 3, 4, 5, 6, 7, 8], 1e-6);
    });

    it('rope, neox: pairs (i, i + ropeDim/2), one position per token', async () => {
      // Pair (0, 2) rotates by p·π/2, pair (1, 3) by p·π; token 0 at p = 1, token 1 at p = 0.
      const x = vec([1, 2, 3, 4, 1, 2, 3, 4], [2, 4]);
      be.rope(x, Float32Array.of(Math.PI / 2, Math.PI), [1, 0], { heads: 1, headDim: 4, layout: 'neox' });
      assertClose('neox', await read(x), [-3, -2, 1, -4, 1, 2, 3, 4], 1e-6);
    });

    it('rope on DeepSeek-V4 heads: 512 wide, the last 64 rotate, norms of pairs are kept', async () => {
      const heads = 3, headDim = 512, n = 2;
      const xv = randomF32(n * heads * headDim, 9);
      const x = tensorOf(be, [n, heads * headDim], xv);
      const freqs = Float32Array.from({ length: 32 }, (_, i) => Math.pow(10000, -i / 32));
      be.rope(x, freqs, [5, 70000], { heads, headDim, ropeDim: 64, layout: 'interleaved' });
      const out = await read(x);
      for (let t = 0; t < n; t++) {
        for (let h = 0; h < heads; h++) {
          const o = (t * heads + h) * headDim;
          assert.deepEqual(out.subarray(o, o + 448), xv.subarray(o, o + 448), 'channels 0..447 untouched');
          for (let c = 448; c < 512; c += 2) {
            const before = Math.hypot(xv[o + c], xv[o + c + 1]), after = Math.hypot(out[o + c], out[o + c + 1]);
            assert.ok(Math.abs(before - after) < 1e-5, `pair ${c} keeps its norm`);
          }
        }
      }
      // θ uses the f32 product p·f: at p = 70000 channel pair 1 turns by f32(70000·f1).
      const theta = f32(70000 * freqs[1]);
      const o = (1 * heads) * headDim + 448 + 2;
      assertClose('pair 1 at p = 70000', [out[o], out[o + 1]],
        [xv[o] * Math.cos(theta) - xv[o + 1] * Math.sin(theta), xv[o] * Math.sin(theta) + xv[o + 1] * Math.cos(theta)], 1e-6);
    });

    it('rope rejects bad tables and positions', () => {
      const x = be.alloc('f32', [1, 8]);
      assert.throws(() => be.rope(x, new Float32Array(3), [0], { heads: 2, headDim: 4, layout: 'interleaved' }), /3 frequencies for ropeDim 4/);
      assert.throws(() => be.rope(x, new Float32Array(2), [0, 1], { heads: 2, headDim: 4, layout: 'interleaved' }), /2 positions for 1 tokens/);
      assert.throws(() => be.rope(x, new Float32Array(2), [-1], { heads: 2, headDim: 4, layout: 'interleaved' }), /position -1/);
      assert.throws(() => be.rope(x, new Float32Array(2), [0], { heads: 3, headDim: 4, layout: 'interleaved' }), /rope: x must be f32/);
    });

    it('softmax, with and without a scale', async () => {
      const y = be.alloc('f32', [3]);
      be.softmax(vec([1, 2, 3]), y);
      const e = [Math.exp(-2), Math.exp(-1), 1], s = e[0] + e[1] + e[2];
      assertClose('softmax', await read(y), e.map((v) => v / s), 1e-7);
      be.softmax(vec([0, Math.log(3)]), be.view(y, 0, [2]), 2);
      assertClose('scaled', (await read(y)).subarray(0, 2), [0.1, 0.9], 1e-7);
    });

    it('silu and the clamped swiglu of DeepSeek-V4 §7.3', async () => {
      const y = be.alloc('f32', [3]);
      be.silu(vec([0, 1, -1]), y);
      assertClose('silu', await read(y), [0, 1 / (1 + Math.exp(-1)), -1 / (1 + Math.exp(1))], 1e-7);
      const silu = (v: number) => v / (1 + Math.exp(-v));
      be.swiglu(vec([20, -3, 5]), vec([-20, 4, 30]), y, 10);
      // g = min(g, 10); u = clamp(u, −10, 10)
      assertClose('limit 10', await read(y), [silu(10) * -10, silu(-3) * 4, silu(5) * 10], 1e-5);
      be.swiglu(vec([20, -3, 5]), vec([-20, 4, 30]), y);
      assertClose('no limit', await read(y), [silu(20) * -20, silu(-3) * 4, silu(5) * 30], 1e-4);
    });

    it('add and mul, same shape and one row broadcast', async () => {
      const a = vec([1, 2, 3, 4, 5, 6], [2, 3]);
      const y = be.alloc('f32', [2, 3]);
      be.add(a, vec([10, 20, 30, 40, 50, 60], [2, 3]), y);
      assert.deepEqual(Array.from(await read(y)), [11, 22, 33, 44, 55, 66]);
      be.mul(a, vec([1, 10, 100]), y);
      assert.deepEqual(Array.from(await read(y)), [1, 20, 300, 4, 50, 600]);
      assert.throws(() => be.add(a, vec([1, 2]), y), /add: b must be f32 with a's 6 elements or one row of 3/);
    });

    it('argmax and topk: first index on ties, NaN skipped', async () => {
      const x = vec([1, 5, 5, 2, NaN, NaN, -1, NaN], [2, 4]);
      assert.deepEqual(Array.from(await be.argmax(x)), [1, 2]);
      const top = await be.topk(x, 2);
      assert.deepEqual(Array.from(top.indices), [1, 2, 2, -1]);
      assert.deepEqual(Array.from(top.values), [5, 5, -1, -Infinity]);
      await assert.rejects(be.topk(x, 5), /k = 5 must be from 1 to the row length 4/);
    });
  });

  describe('embedding', () => {
    it('f16: every finite half decodes exactly (the SIMD trick covers subnormals and ±0)', async () => {
      const halves = Uint16Array.from({ length: 65536 }, (_, h) => h).filter((h) => (h & 0x7c00) !== 0x7c00);
      assert.equal(halves.length, 1024 * 62);
      const table = be.alloc('f16', [1024, 62]);
      be.upload(table, halves);
      const y = be.alloc('f32', [1024, 62]);
      be.embedding(table, Array.from({ length: 1024 }, (_, i) => i), y);
      const out = await read(y);
      for (let i = 0; i < halves.length; i++) {
        if (!Object.is(out[i], f16ToF32(halves[i]))) assert.fail(`half 0x${halves[i].toString(16)}: ${out[i]} vs ${f16ToF32(halves[i])}`);
      }
    });

    it('bf16: every finite value decodes exactly, rows gathered in id order', async () => {
      const all = Uint16Array.from({ length: 65536 }, (_, h) => h).filter((h) => (h & 0x7f80) !== 0x7f80);
      assert.equal(all.length, 1020 * 64);
      const table = be.alloc('bf16', [1020, 64]);
      be.upload(table, all);
      const ids = [1019, 0, 511];
      const y = be.alloc('f32', [3, 64]);
      be.embedding(table, ids, y);
      const out = await read(y);
      ids.forEach((id, t) => {
        for (let j = 0; j < 64; j++) assert.ok(Object.is(out[t * 64 + j], bf16ToF32(all[id * 64 + j])));
      });
    });

    it('q8_0 tables decode through the tensor layer', async () => {
      const values = randomF32(5 * 64, 11);
      const q = quantize({ dtype: 'q8_0' }, values, 5, 64);
      const table = be.alloc('q8_0', [5, 64]);
      be.upload(table, q.data);
      const y = be.alloc('f32', [2, 64]);
      be.embedding(table, [4, 1], y);
      const deq = dequantize({ dtype: 'q8_0' }, q.data, 5, 64);
      assert.deepEqual(Array.from(await read(y)), [...deq.subarray(4 * 64, 5 * 64), ...deq.subarray(64, 128)]);
    });

    it('rejects ids outside the table', () => {
      const table = be.alloc('f32', [4, 2]);
      assert.throws(() => be.embedding(table, [4], be.alloc('f32', [1, 2])), /id 4 is outside the table's 4 rows/);
    });
  });

  describe('tensors', () => {
    it('alloc zero-fills; views read and write the same memory', async () => {
      const t = be.alloc('f32', [2, 3]);
      assert.deepEqual(Array.from(await read(t)), [0, 0, 0, 0, 0, 0]);
      be.upload(be.view(t, 3, [3]), Float32Array.of(7, 8, 9));
      assert.deepEqual(Array.from(await read(t)), [0, 0, 0, 7, 8, 9]);
      assert.throws(() => be.view(t, 4, [3]), /overruns a tensor of \[2, 3\]/);
      assert.throws(() => be.free(be.view(t, 0, [1])), /is a view/);
      const q = be.alloc('q8_0', [2, 32]);
      assert.throws(() => be.view(q, 16, [16]), /not a whole number of q8_0 blocks/);
      assert.equal((be.view(q, 32, [32]) as CpuTensor).ptr, (q as CpuTensor).ptr + 34);
    });

    it('upload and download check sizes and dtypes', async () => {
      const t = be.alloc('bf16', [4]);
      assert.throws(() => be.upload(t, new Float32Array(4)), /16 bytes for a bf16 \[4\] tensor of 8 bytes/);
      await assert.rejects(be.download(t), /expected an f32 tensor, got bf16/);
      be.upload(t, Uint16Array.of(1, 2, 3, 4));
      assert.deepEqual(Array.from(await be.downloadBytes(t)), [1, 0, 2, 0, 3, 0, 4, 0]);
      // Into a caller's buffer: the first elements of it, the rest untouched; too short is an error.
      const f = be.alloc('f32', [3]);
      be.upload(f, Float32Array.of(1, 2, 3));
      const into = new Float32Array(5).fill(-1);
      const got = await be.download(f, into.subarray(1));
      assert.equal(got.buffer, into.buffer);
      assert.deepEqual(Array.from(into), [-1, 1, 2, 3, -1]);
      await assert.rejects(be.download(f, new Float32Array(2)), /download: the destination holds 2 values, the tensor 3/);
    });

    it('names the tensor when 4 GiB would be exceeded', () => {
      assert.throws(() => be.alloc('f32', [2 ** 31], 'output.weight'), /cannot allocate 8\.00 GiB for output\.weight/);
    });

    it('loads weights from a safetensors file straight into its memory', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'minke-backend-'));
      try {
        const rows = 130, k = 200;
        const values = randomF32(rows * k, 12);
        const q = quantize(FP8_BLOCK_E8M0, values, rows, k);
        const q32 = quantize(FP8_BLOCK32_E8M0, values.subarray(0, 45 * 70), 45, 70);
        const file = join(dir, 'w.safetensors');
        writeSafetensors(file, [
          { name: 'w', dtype: 'f8_e4m3', shape: [rows, k], data: q.data },
          { name: 'w.scale', dtype: 'e8m0', shape: [2, 2], data: q.scale! },
          { name: 'w32', dtype: 'f8_e4m3', shape: [45, 70], data: q32.data },
          { name: 'w32.scale', dtype: 'e8m0', shape: [2, 3], data: q32.scale! },
          { name: 'norm', dtype: 'f32', shape: [3], data: new Uint8Array(Float32Array.of(1, 2, 3).buffer) },
        ]);
        const src = openWeights(file);
        try {
          const norm = await be.load(src, 'norm', 'f32', [3]);
          assert.deepEqual(Array.from(await read(norm)), [1, 2, 3]);
          const w = await be.loadWeight(src, { name: 'w', format: FP8_BLOCK_E8M0, shape: [rows, k], scaleName: 'w.scale' });
          assert.deepEqual(await be.downloadBytes(w), q.data);
          assert.deepEqual(await be.downloadBytes(w.scale!.tensor), q.scale);
          // the same bytes with 32×32 blocks: a [45, 70] weight and its [2, 3] scales
          const w32 = await be.loadWeight(src, { name: 'w32', format: FP8_BLOCK32_E8M0, shape: [45, 70], scaleName: 'w32.scale' });
          assert.deepEqual(await be.downloadBytes(w32), q32.data);
          assert.deepEqual(await be.downloadBytes(w32.scale!.tensor), q32.scale);
          await assert.rejects(be.loadWeight(src, { name: 'w32', format: FP8_BLOCK32_E8M0, shape: [45, 70], scaleName: 'w.scale' }), /w\.scale/);
          const before = be.heap.stats().inUse;
          await assert.rejects(be.load(src, 'norm', 'f32', [4]), /norm: the source holds 12 bytes, but f32 \[4\] is 16/);
          await assert.rejects(be.load(src, 'norm', 'f32', [2]), /'norm' has 12 bytes but the destination holds 8/);
          await assert.rejects(be.loadWeight(src, { name: 'w', format: FP8_BLOCK_E8M0, shape: [rows, k], scaleName: 'w.nope' }), /w\.nope/);
          assert.equal(be.heap.stats().inUse, before, 'failed loads free their blocks, scales included');
          await assert.rejects(be.loadWeight(src, { name: 'w', format: FP8_BLOCK_E8M0, shape: [rows, k] }), /needs scaleName/);
        } finally {
          src.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
