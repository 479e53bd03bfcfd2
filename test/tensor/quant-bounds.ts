/**
 * Per-element error bounds of quantizeRow → dequantizeRow, derived from each format (and, for the
 * K-quants, from the scale rule documented in src/tensor/quant-gguf-k.ts). Shared by the random
 * round-trip test and the stories260K acceptance test.
 */
import type { DType } from '../../src/tensor/dtype.js';

const F16_RNE = 2 ** -11; // relative error of rounding to f16 (nearest)
const F16_UP = 2 ** -10; // relative error of rounding up to the next f16
const F16_TINY = 2 ** -24; // smallest f16 step (subnormal scales)

/** The GGUF types quantizeRow supports, with their block size. */
export const GGUF_TYPES: [DType, number][] = [
  ['q4_0', 32], ['q4_1', 32], ['q5_0', 32], ['q5_1', 32], ['q8_0', 32], ['q8_1', 32], ['mxfp4', 32],
  ['q2_k', 256], ['q3_k', 256], ['q4_k', 256], ['q5_k', 256], ['q6_k', 256], ['q8_k', 256],
  ['f16', 1], ['bf16', 1], ['f32', 1],
];

function stats(x: Float32Array, o: number, n: number): { amax: number; min: number; max: number } {
  let amax = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = o; i < o + n; i++) {
    amax = Math.max(amax, Math.abs(x[i]));
    min = Math.min(min, x[i]);
    max = Math.max(max, x[i]);
  }
  return { amax, min, max };
}

/** floor(log2 a) by search (independent of the code under test). */
function exponentOf(a: number): number {
  let e = 0;
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/** Fills `b` with the bound of every element of one block of x starting at o. */
function blockBound(dtype: DType, x: Float32Array, o: number, n: number, b: Float64Array): void {
  const { amax, min, max } = stats(x, o, n);
  const slack = 2 ** -20 * amax; // f32 rounding in the reconstruction
  const set = (f: (v: number) => number): void => {
    for (let i = o; i < o + n; i++) b[i] = f(x[i]) + slack;
  };
  switch (dtype) {
    case 'q4_0': case 'q5_0': { // levels −h..h−1 of step d = amax/h; the far side clips to h−1
      const h = dtype === 'q4_0' ? 8 : 16;
      const d = amax / h;
      return set((v) => (Math.abs(v) > (h - 0.5) * d ? Math.abs(v) - (h - 1) * d : d / 2) + h * d * F16_RNE);
    }
    case 'q4_1': case 'q5_1': { // d = (max − min)/qmax, offset min; both stored as f16
      const qmax = dtype === 'q4_1' ? 15 : 31;
      const d = (max - min) / qmax;
      return set(() => d / 2 + qmax * d * F16_RNE + Math.abs(min) * F16_RNE);
    }
    case 'q8_0': case 'q8_1': { // d = amax/127 stored as f16: |err| ≤ d/2 + 127·|d − f16(d)|
      const d = amax / 127;
      return set(() => d / 2 + 127 * d * F16_RNE);
    }
    case 'q8_k': // d = amax/127 kept in f32
      return set(() => amax / 127 / 2);
    case 'mxfp4': { // s = 2^(floor(log2 amax) − 2): amax/s ∈ [4, 8), above 6·s saturates
      const s = amax > 0 ? 2 ** (exponentOf(amax) - 2) : 0;
      return set((v) => {
        const a = s ? Math.abs(v) / s : 0;
        if (a > 6) return Math.abs(v) - 6 * s;
        return (a <= 2 ? 0.25 : a <= 4 ? 0.5 : 1) * s; // half the E2M1 gap there
      });
    }
    case 'q2_k': case 'q4_k': case 'q5_k': {
      const [sub, nmax, smax] = dtype === 'q2_k' ? [16, 3, 15] : dtype === 'q4_k' ? [32, 15, 63] : [32, 31, 63];
      const subs = Array.from({ length: n / sub }, (_, j) => stats(x, o + j * sub, sub));
      const maxOffset = Math.max(...subs.map((s) => -Math.min(0, s.min)));
      const dmin = (maxOffset / smax) * (1 + F16_UP) + F16_TINY;
      const steps = subs.map((s) => (s.max - Math.min(0, s.min) + dmin) / nmax);
      const d = (Math.max(...steps) / smax) * (1 + F16_UP) + F16_TINY;
      for (let i = 0; i < n; i++) b[o + i] = (steps[Math.floor(i / sub)] + d) / 2 + slack;
      return;
    }
    case 'q3_k': case 'q6_k': {
      const [h, smax] = dtype === 'q3_k' ? [4, 31] : [32, 127];
      const steps = Array.from({ length: n / 16 }, (_, j) => stats(x, o + 16 * j, 16).amax / (h - 0.5));
      const d = (Math.max(...steps) / smax) * (1 + F16_UP) + F16_TINY;
      for (let i = 0; i < n; i++) b[o + i] = (steps[i >> 4] + d) / 2 + slack;
      return;
    }
    case 'f16': return set((v) => Math.abs(v) * 2 ** -11 + 2 ** -25);
    case 'bf16': return set((v) => Math.abs(v) * 2 ** -8 + 2 ** -134);
    case 'f32': return set(() => 0);
    default: throw new Error(`no bound for ${dtype}`);
  }
}

/** Bounds of every element of x[0, count) quantised as consecutive blocks of `blockElems`. */
export function errorBounds(dtype: DType, blockElems: number, x: Float32Array, count: number): Float64Array {
  const b = new Float64Array(count);
  for (let o = 0; o < count; o += blockElems) blockBound(dtype, x, o, blockElems, b);
  return b;
}
