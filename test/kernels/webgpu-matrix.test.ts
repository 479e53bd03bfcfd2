/**
 * WebGPU matrix kernels (wgsl-matrix.ts) for every default format of the CPU registry: random
 * weights quantised by the tensor layer's own encoders, uploaded in their stored bytes, multiplied
 * on the GPU, and compared with an f64 product of the tensor layer's decoding of the same bytes.
 * Also: row views that start mid-buffer (FP8 tiles and 32×32 blocks, GGUF blocks), FP8 32×32
 * blocks at k = 128, a float k with a 32-element tail, more than 65,535 rows, and (with MINKE_SLOW)
 * more workgroups than one dispatch dimension holds.
 */
import { after, describe, it } from 'node:test';
import type { Tensor } from '../../src/kernels/backend.js';
import { MATRIX_KERNELS } from '../../src/kernels/cpu/registry.js';
import type { WebGpuBackend } from '../../src/kernels/webgpu/webgpu-backend.js';
import { dequantize, quantize } from '../../src/tensor/dequantize.js';
import { dtypeInfo, FP8_BLOCK32_E8M0, formatName, type WeightFormat } from '../../src/tensor/dtype.js';
import { assertClose, randomF32 } from './util.js';
import { webGpuBackend } from './webgpu-util.js';

const gpu = await webGpuBackend();
const TOKENS = [0, 1, 3, 9]; // 0: matvec; 9: a full 8-token tile, then a 1-token one

/** A shape per format: odd row counts, k with a tail where the format allows any k. */
function shapeFor(format: WeightFormat): [number, number] {
  const block = dtypeInfo(format.dtype).blockElems;
  if (format.scale?.rows === 128) return [130, 200]; // partial tiles both ways
  if (format.scale?.rows === 32) return [45, 70]; // partial 32×32 blocks both ways
  if (format.scale) return [37, 96];
  if (block === 1) return [37, 100];
  return [21, 2 * block];
}

interface Weight { w: Tensor; deq: Float32Array; rows: number; k: number }

/**
 * Random weights; with `spread`, their magnitude changes from one 32×32 block to the next (2^−3 …
 * 2^3), so each block gets its own scale and a kernel that reads the wrong one is caught.
 */
function makeWeight(be: WebGpuBackend, format: WeightFormat, rows: number, k: number, seed: number, spread = false): Weight {
  const v = randomF32(rows * k, seed);
  if (spread) for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) v[r * k + j] *= 2 ** ((3 * (r >> 5) + (j >> 5)) % 7 - 3);
  const q = quantize(format, v, rows, k);
  const w = be.allocWeight(format, [rows, k]);
  be.upload(w, q.data);
  if (w.scale) be.upload(w.scale.tensor, q.scale!);
  return { w, deq: dequantize(format, q.data, rows, k, q.scale), rows, k };
}

/** Runs matvec (n = 0) or matmul with n tokens on w and checks it against the f64 product with deq rows [r0, r0 + rows). */
async function check(be: WebGpuBackend, what: string, w: Tensor, deq: Float32Array, r0: number, rows: number, k: number, n: number, seed: number): Promise<void> {
  const tokens = Math.max(n, 1);
  const xv = randomF32(tokens * k, seed, 2);
  const x = be.alloc('f32', [tokens, k]);
  be.upload(x, xv);
  const y = be.alloc('f32', [tokens, rows]);
  try {
    if (n) be.matmul(w, x, y); else be.matvec(w, be.view(x, 0, [k]), be.view(y, 0, [rows]));
    const got = await be.download(y);
    const ref = new Float64Array(tokens * rows), tol = new Float64Array(tokens * rows);
    for (let t = 0; t < tokens; t++) {
      for (let r = 0; r < rows; r++) {
        let s = 0, mag = 0;
        for (let j = 0; j < k; j++) {
          const p = deq[(r0 + r) * k + j] * xv[t * k + j];
          s += p;
          mag += Math.abs(p);
        }
        ref[t * rows + r] = s;
        tol[t * rows + r] = 1e-5 * mag + 1e-30;
      }
    }
    assertClose(`${what} ${n ? `matmul n=${n}` : 'matvec'}`, got, ref, tol);
  } finally {
    be.free(x);
    be.free(y);
  }
}

describe('WebGPU matrix kernels', { skip: typeof gpu === 'string' ? gpu : false }, () => {
  const be = gpu as WebGpuBackend;
  after(() => be.close());

  MATRIX_KERNELS.filter((kn) => !kn.variant).forEach((kernel, i) => {
    const format = kernel.format;
    it(`${formatName(format)}: matvec and matmul against the decoded weights`, async () => {
      const [rows, k] = shapeFor(format);
      const wt = makeWeight(be, format, rows, k, 100 + i, !!format.scale);
      try {
        for (const n of TOKENS) await check(be, `${formatName(format)} [${rows}, ${k}]`, wt.w, wt.deq, 0, rows, k, n, 1000 * i + n);
      } finally {
        be.free(wt.w);
      }
    });
  });

  it('row views that start mid-buffer', async () => {
    const cases: [WeightFormat, number, number, number, number][] = [
      [MATRIX_KERNELS.find((kn) => kn.format.scale?.rows === 128 && kn.format.scale.dtype === 'e8m0')!.format, 300, 256, 128, 256],
      [MATRIX_KERNELS.find((kn) => kn.format.scale?.rows === 128 && kn.format.scale.dtype === 'f32')!.format, 300, 200, 256, 300],
      [FP8_BLOCK32_E8M0, 100, 70, 32, 100], // from the second block row to the partial last one
      [FP8_BLOCK32_E8M0, 64, 128, 32, 64],
      [{ dtype: 'q4_0' }, 10, 64, 3, 7],
      [{ dtype: 'mxfp4' }, 9, 96, 1, 6], // 51-byte rows: the view starts on an odd byte
      [{ dtype: 'q6_k' }, 5, 256, 1, 4],
      [MATRIX_KERNELS.find((kn) => kn.format.dtype === 'fp4_e2m1' && !kn.variant)!.format, 12, 64, 5, 11],
      [{ dtype: 'f16' }, 9, 33, 3, 8],
    ];
    for (const [c, [format, rows, k, r0, r1]] of cases.entries()) {
      const wt = makeWeight(be, format, rows, k, 500 + c, !!format.scale);
      try {
        const v = be.rows(wt.w, r0, r1);
        for (const n of [0, 3]) await check(be, `${formatName(format)} rows ${r0}..${r1} of [${rows}, ${k}]`, v, wt.deq, r0, r1 - r0, k, n, 77 + c);
      } finally {
        be.free(wt.w);
      }
    }
  });

  it('FP8 E8M0 32×32 blocks: k = 128 with 64 rows (four block columns, two block rows)', async () => {
    const wt = makeWeight(be, FP8_BLOCK32_E8M0, 64, 128, 31, true);
    try {
      for (const n of TOKENS) await check(be, 'f8_e4m3+e8m0/32x32 [64, 128]', wt.w, wt.deq, 0, 64, 128, n, 32 + n);
    } finally {
      be.free(wt.w);
    }
  });

  it('more than 65,535 rows (f16 [70000, 32]: 64 short rows per workgroup)', async () => {
    const wt = makeWeight(be, { dtype: 'f16' }, 70000, 32, 9);
    try {
      await check(be, 'f16 [70000, 32]', wt.w, wt.deq, 0, 70000, 32, 0, 10);
    } finally {
      be.free(wt.w);
    }
  });

  // One row per workgroup once k > 1024: 65,600 workgroups, which the backend folds into two
  // dimensions. Slow on SwiftShader (~20 s), so behind MINKE_SLOW.
  it('a dispatch of more than 65,535 workgroups (q4_0 [65600, 1056])', { skip: process.env.MINKE_SLOW ? false : 'set MINKE_SLOW=1' }, async () => {
    const wt = makeWeight(be, { dtype: 'q4_0' }, 65600, 1056, 12);
    try {
      await check(be, 'q4_0 [65600, 1056]', wt.w, wt.deq, 0, 65600, 1056, 0, 13);
    } finally {
      be.free(wt.w);
    }
  });
});
