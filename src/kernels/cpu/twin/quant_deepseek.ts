/**
 * Plain-TypeScript twins of the DeepSeek block-scaled kernels (wasm/quant_fp8.ts, quant_fp4.ts) on
 * f32 activations: FP8 E4M3 with one scale per 128×128 tile (E8M0 bytes or f32) or per 32×32 block
 * (E8M0, V4.1), FP4 E2M1 (low
 * nibble = even element) with one E8M0 scale per row per 32 inputs. Each scale group is summed in
 * f64 and multiplied by its scale. Also the FP4 int8-activation variant on q8_0 blocks.
 */
import { E2M1_TO_F32, E4M3_TO_F32 } from '../../../tensor/float.js';
import { Mem, e8m0, matmulOf, matvecOf, type RowDot } from './quant_common.js';

/** `tile`: the side of the square scale tiles (128, or 32 for V4.1). */
function fp8Dot(f32Scales: boolean, tile: number): RowDot {
  return (m, w, scale, row, x, k) => {
    const tiles = Math.ceil(k / tile), wr = w + row * k;
    let sum = 0;
    for (let tc = 0; tc < tiles; tc++) {
      const i = Math.floor(row / tile) * tiles + tc;
      const s = f32Scales ? m.f32(scale + 4 * i) : e8m0(m.u8[scale + i]);
      let part = 0;
      for (let j = tile * tc; j < Math.min(k, tile * tc + tile); j++) part += E4M3_TO_F32[m.u8[wr + j]] * m.f32(x + 4 * j);
      sum += part * s;
    }
    return sum;
  };
}

const fp4Dot: RowDot = (m, w, scale, row, x, k) => {
  const groups = k / 32, wr = w + (row * k) / 2;
  let sum = 0;
  for (let g = 0; g < groups; g++) {
    let part = 0;
    for (let j = 32 * g; j < 32 * g + 32; j++) part += E2M1_TO_F32[(m.u8[wr + (j >> 1)] >> (4 * (j & 1))) & 15] * m.f32(x + 4 * j);
    sum += part * e8m0(m.u8[scale + row * groups + g]);
  }
  return sum;
};

/** E2M1 codes as integers ×2 (the int8-activation variant's weights). */
const E2M1_X2 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/**
 * The int8-activation FP4 variant (wasm/quant_fp4_i8.ts) on q8_0 blocks (f16 d, 32 × i8): per group
 * an exact integer sum of doubled E2M1 values × quants, times f32(2^(e−127)/2 · d), summed in f64.
 */
const fp4I8Dot: RowDot = (m, w, scale, row, x, k) => {
  const groups = k / 32, wr = w + (row * k) / 2;
  let sum = 0;
  for (let g = 0; g < groups; g++) {
    const xb = x + 34 * g;
    let isum = 0;
    for (let j = 0; j < 32; j++) isum += E2M1_X2[(m.u8[wr + 16 * g + (j >> 1)] >> (4 * (j & 1))) & 15] * m.i8[xb + 2 + j];
    sum += Math.fround(Math.fround(e8m0(m.u8[scale + row * groups + g]) / 2) * m.f16(xb)) * isum;
  }
  return sum;
};

const f32Row = (k: number): number => 4 * k;

export const matvec_f8_e4m3_e8m0 = matvecOf(fp8Dot(false, 128)), matmul_f8_e4m3_e8m0 = matmulOf(fp8Dot(false, 128), f32Row);
export const matvec_f8_e4m3_e8m0_b32 = matvecOf(fp8Dot(false, 32)), matmul_f8_e4m3_e8m0_b32 = matmulOf(fp8Dot(false, 32), f32Row);
export const matvec_f8_e4m3_f32 = matvecOf(fp8Dot(true, 128)), matmul_f8_e4m3_f32 = matmulOf(fp8Dot(true, 128), f32Row);
export const matvec_fp4_e2m1_e8m0 = matvecOf(fp4Dot), matmul_fp4_e2m1_e8m0 = matmulOf(fp4Dot, f32Row);
export const matvec_fp4_e2m1_e8m0_i8 = matvecOf(fp4I8Dot), matmul_fp4_e2m1_e8m0_i8 = matmulOf(fp4I8Dot, (k) => (k / 32) * 34);
