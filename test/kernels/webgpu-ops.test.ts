/**
 * The WebGPU backend's row and element-wise ops against the CPU backend on the same inputs
 * (SwiftShader here; see webgpu-util.ts), plus its memory ops: upload / download, views, rows,
 * in-place use, and the argument errors both backends share.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, Tensor } from '../../src/kernels/backend.js';
import { CpuBackend } from '../../src/kernels/cpu/cpu-backend.js';
import type { WebGpuBackend } from '../../src/kernels/webgpu/webgpu-backend.js';
import { quantize } from '../../src/tensor/dequantize.js';
import type { DType } from '../../src/tensor/dtype.js';
import { f32ToBf16, f32ToF16 } from '../../src/tensor/float.js';
import { webGpuBackend } from './webgpu-util.js';

const gpuOrReason = await webGpuBackend();
const skip = typeof gpuOrReason === 'string' ? gpuOrReason : false;

function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}

function close(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * Math.max(1, Math.abs(want[i])))) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

describe('WebGPU backend ops match the CPU backend', { skip }, () => {
  let gpu: WebGpuBackend;
  let cpu: CpuBackend;
  before(async () => { gpu = gpuOrReason as WebGpuBackend; cpu = await CpuBackend.create({ threads: 1 }); });
  after(async () => { await cpu?.close(); await gpu?.close(); });

  /** The same f32 data in both backends. */
  function both(shape: number[], data: Float32Array): [Tensor, Tensor] {
    const t = (b: Backend) => { const x = b.alloc('f32', shape); b.upload(x, data); return x; };
    return [t(gpu), t(cpu)];
  }
  const fresh = (shape: number[], dtype: DType = 'f32'): [Tensor, Tensor] => [gpu.alloc(dtype, shape), cpu.alloc(dtype, shape)];
  async function same(g: Tensor, c: Tensor, what: string, tol = 2e-6): Promise<void> {
    close(await gpu.download(g), await cpu.download(c), tol, what);
  }

  it('upload / download round trip, views and rows address the right bytes', async () => {
    const data = random(48, 1);
    const [g] = both([6, 8], data);
    assert.deepEqual(await gpu.download(g), data);
    assert.deepEqual(await gpu.download(gpu.view(g, 13, [7])), data.subarray(13, 20));
    assert.deepEqual(await gpu.download(gpu.rows(g, 2, 4)), data.subarray(16, 32));
    const into = new Float32Array(50).fill(-1);
    const got = await gpu.download(g, into.subarray(1));
    assert.equal(got.buffer, into.buffer);
    assert.deepEqual(into.subarray(1, 49), data);
    assert.deepEqual([into[0], into[49]], [-1, -1]);
    const h = gpu.alloc('f16', [5]);
    const halves = Uint16Array.from([1, 2, 3, 4, 5]);
    gpu.upload(h, halves);
    assert.deepEqual(new Uint16Array((await gpu.downloadBytes(gpu.view(h, 1, [3]))).slice().buffer), halves.subarray(1, 4));
    assert.throws(() => gpu.upload(g, new Float32Array(3)), /upload: 12 bytes for a f32 \[6, 8\] tensor of 192 bytes/);
  });

  it('rmsnorm with and without weight', async () => {
    for (const weighted of [true, false]) {
      const [xg, xc] = both([3, 300], random(900, 2, 3));
      const [wg, wc] = both([300], random(300, 3));
      const [yg, yc] = fresh([3, 300]);
      gpu.rmsnorm(xg, weighted ? wg : null, yg, 1e-6);
      cpu.rmsnorm(xc, weighted ? wc : null, yc, 1e-6);
      await same(yg, yc, `rmsnorm weighted=${weighted}`, 1e-5);
    }
  });

  it('rope: interleaved and neox, partial rotation, inverse, positions beyond 10^4', async () => {
    const freqs = Float32Array.from({ length: 8 }, (_, i) => 10000 ** (-i / 8));
    for (const [layout, inverse] of [['interleaved', false], ['neox', false], ['interleaved', true]] as const) {
      const data = random(3 * 2 * 24, 4);
      const [g, c] = both([3, 48], data);
      const opts = { heads: 2, headDim: 24, ropeDim: 16, layout, inverse };
      gpu.rope(g, freqs, [0, 7, 12345], opts);
      cpu.rope(c, freqs, [0, 7, 12345], opts);
      await same(g, c, `rope ${layout}${inverse ? ' inverse' : ''}`, 1e-5);
    }
  });

  it('softmax (scaled), silu, swiglu with and without the clamp', async () => {
    const [xg, xc] = both([4, 513], random(4 * 513, 5, 20));
    const [yg, yc] = fresh([4, 513]);
    gpu.softmax(xg, yg, 0.7);
    cpu.softmax(xc, yc, 0.7);
    await same(yg, yc, 'softmax', 1e-5);
    gpu.silu(xg, yg);
    cpu.silu(xc, yc);
    await same(yg, yc, 'silu', 1e-5);
    const [ug, uc] = both([4, 513], random(4 * 513, 6, 20));
    for (const limit of [0, 7]) {
      gpu.swiglu(xg, ug, yg, limit);
      cpu.swiglu(xc, uc, yc, limit);
      await same(yg, yc, `swiglu limit ${limit}`, 1e-5);
    }
  });

  it('add and mul: full and broadcast b, in place (y = a)', async () => {
    const [ag, ac] = both([3, 10], random(30, 7));
    const [bg, bc] = both([3, 10], random(30, 8));
    const [rg, rc] = both([10], random(10, 9));
    gpu.add(ag, bg, ag); cpu.add(ac, bc, ac);
    await same(ag, ac, 'add in place');
    const [yg, yc] = fresh([3, 10]);
    gpu.mul(ag, rg, yg); cpu.mul(ac, rc, yc);
    await same(yg, yc, 'mul broadcast');
  });

  it('embedding of f32, f16, bf16 and GGUF-quantised tables', async () => {
    const ids = [6, 0, 3, 3];
    for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_k', 'q6_k'] as const) {
      const d = dtype.startsWith('q') ? 256 : 33;
      const table = random(7 * d, 10);
      const bytes = dtype === 'f32' ? table : dtype.startsWith('q') ? quantize({ dtype }, table, 7, d).data
        : Uint16Array.from(table, dtype === 'f16' ? f32ToF16 : f32ToBf16);
      const tg = gpu.alloc(dtype, [7, d]), tc = cpu.alloc(dtype, [7, d]);
      gpu.upload(tg, bytes); cpu.upload(tc, bytes);
      const [yg, yc] = fresh([4, d]);
      gpu.embedding(tg, ids, yg); cpu.embedding(tc, ids, yc);
      await same(yg, yc, `embedding ${dtype}`, 0);
    }
  });

  it('copy into f32 and into f16 views that start mid-word, rounding like the CPU', async () => {
    // values near f16 rounding ties, subnormal halves, overflow to infinity
    const data = Float32Array.from([...random(21, 11, 70000), 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -20, -(2 ** -24) * 1.5, 65519, 65520]);
    const [xg, xc] = both([data.length], data);
    const [cg, cc] = fresh([data.length + 3], 'f16');
    for (const at of [0, 1, 3]) {
      gpu.copy(xg, gpu.view(cg, at, [data.length]));
      cpu.copy(xc, cpu.view(cc, at, [data.length]));
      assert.deepEqual(await gpu.downloadBytes(cg), await cpu.downloadBytes(cc), `f16 copy at ${at}`);
    }
    const [fg, fc] = fresh([data.length]);
    gpu.copy(xg, fg); cpu.copy(xc, fc);
    await same(fg, fc, 'f32 copy', 0);
  });

  it('argmax and topk: ties keep the first index, NaN skipped, −∞ kept', async () => {
    const rows = Float32Array.from([
      1, 5, 5, -1, NaN, 2, 0, 0,
      NaN, NaN, -Infinity, -Infinity, NaN, NaN, NaN, NaN,
      ...random(8, 12),
    ]);
    const [g, c] = both([3, 8], rows);
    assert.deepEqual(await gpu.argmax(g), await cpu.argmax(c));
    for (const k of [1, 3, 8]) assert.deepEqual(await gpu.topk(g, k), await cpu.topk(c, k), `topk ${k}`);
    const long = random(5000, 13);
    const [lg, lc] = both([1, 5000], long);
    assert.deepEqual(await gpu.argmax(lg), await cpu.argmax(lc));
    assert.deepEqual(await gpu.topk(lg, 40), await cpu.topk(lc, 40));
  });

  it('bad arguments get the same errors as on the CPU', () => {
    const [xg, xc] = fresh([2, 4]);
    const [yg, yc] = fresh([3, 4]);
    for (const [b, x, y] of [[gpu, xg, yg], [cpu, xc, yc]] as const) {
      assert.throws(() => b.rmsnorm(x, null, y, 1e-6), /rmsnorm: y must be f32 with 8 elements, got f32 \[3, 4\]/);
      assert.throws(() => b.embedding(x, [2], b.view(y, 0, [4])), /embedding: id 2 is outside the table's 2 rows/);
    }
  });
});
