/**
 * Plain-TypeScript twins of wasm/float.ts: the same ABI over the same memory, written for clarity
 * (row by row, summed in f64). The conformance test holds the SIMD kernels to these.
 */
import { F16_TO_F32, bf16ToF32 } from '../../../tensor/float.js';
import type { MatmulFn, MatvecFn } from '../registry.js';

type FloatDType = 'f32' | 'f16' | 'bf16';

/** The `k` values of the weight row at byte offset `p`, as numbers. */
function readRow(mem: ArrayBufferLike, dtype: FloatDType, p: number, k: number): ArrayLike<number> {
  if (dtype === 'f32') return new Float32Array(mem, p, k);
  const bits = new Uint16Array(mem, p, k);
  return dtype === 'f16' ? Float32Array.from(bits, (h) => F16_TO_F32[h]) : Float32Array.from(bits, bf16ToF32);
}

function dot(row: ArrayLike<number>, x: Float32Array): number {
  let s = 0;
  for (let j = 0; j < x.length; j++) s += row[j] * x[j];
  return s;
}

function matvec(dtype: FloatDType): MatvecFn {
  const eb = dtype === 'f32' ? 4 : 2;
  return (mem, w, _scale, x, y, k, row0, row1) => {
    const xv = new Float32Array(mem, x, k);
    const yv = new Float32Array(mem, y, row1);
    for (let r = row0; r < row1; r++) yv[r] = dot(readRow(mem, dtype, w + r * k * eb, k), xv);
  };
}

function matmul(dtype: FloatDType): MatmulFn {
  const eb = dtype === 'f32' ? 4 : 2;
  return (mem, w, _scale, x, y, k, n, ldy, row0, row1) => {
    const yv = new Float32Array(mem, y, (n - 1) * ldy + row1);
    for (let r = row0; r < row1; r++) {
      const row = readRow(mem, dtype, w + r * k * eb, k);
      for (let t = 0; t < n; t++) yv[t * ldy + r] = dot(row, new Float32Array(mem, x + t * k * 4, k));
    }
  };
}

export const matvec_f32 = matvec('f32');
export const matvec_f16 = matvec('f16');
export const matvec_bf16 = matvec('bf16');
export const matmul_f32 = matmul('f32');
export const matmul_f16 = matmul('f16');
export const matmul_bf16 = matmul('bf16');
