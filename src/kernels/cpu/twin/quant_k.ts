/**
 * Plain-TypeScript twins of the K-quant kernels (wasm/quant_q2k.ts … quant_q6k.ts) on q8_K
 * activations, as ggml's scalar vec_dot_q*_K_q8_K: a 256-element super-block is split into
 * sub-blocks with small integer scales (and mins); per super-block
 *
 *   y += d_w·d_x · Σ_sub scale·Σ q·x  −  dmin_w·d_x · Σ_sub min·Σ x
 *
 * with the integer sums exact and the two scale products in f32. Each format reads element e of a
 * super-block as (quant, sub-block), following ggml's dequantize_row_q*_K.
 */
import { Mem, matmulOf, matvecOf, type RowDot } from './quant_common.js';

const fr = Math.fround;

interface KFormat {
  readonly bytes: number;
  /** Elements per sub-block (16 or 32). */
  readonly sub: number;
  /** The integer quant of element e (offsets such as q3_K's −4 or q6_K's −32 included). */
  readonly quant: (m: Mem, b: number, e: number) => number;
  /** Integer scale and min of sub-block s. */
  readonly scale: (m: Mem, b: number, s: number) => number;
  readonly min?: (m: Mem, b: number, s: number) => number;
  /** Byte offsets of d and (with mins) dmin. */
  readonly d: number;
  readonly dmin?: number;
}

/** q4_K/q5_K's 6-bit scales and mins packed in 12 bytes at `p` (ggml's get_scale_min_k4). */
function scaleMinK4(m: Mem, p: number, j: number): [number, number] {
  const q = (i: number) => m.u8[p + i];
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

const FORMATS: Record<string, KFormat> = {
  // scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
  q2_k: {
    bytes: 84, sub: 16, d: 80, dmin: 82,
    quant: (m, b, e) => (m.u8[b + 16 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3,
    scale: (m, b, s) => m.u8[b + s] & 15,
    min: (m, b, s) => m.u8[b + s] >> 4,
  },
  // hmask[32], qs[64], scales[12] (16 × 6 bits, biased by 32), d
  q3_k: {
    bytes: 110, sub: 16, d: 108,
    quant: (m, b, e) => {
      const n = e >> 7, j = (e >> 5) & 3, l = e & 31;
      const low = (m.u8[b + 32 + 32 * n + l] >> (2 * j)) & 3;
      return low - (m.u8[b + l] & (1 << (4 * n + j)) ? 0 : 4);
    },
    scale: (m, b, s) => {
      const sc = b + 96;
      const low = s < 8 ? m.u8[sc + s] & 15 : m.u8[sc + s - 8] >> 4;
      return (low | (((m.u8[sc + 8 + (s & 3)] >> (2 * (s >> 2))) & 3) << 4)) - 32;
    },
  },
  // d, dmin, scales[12], qs[128]: 64-element groups of 32 bytes, low nibbles then high nibbles
  q4_k: {
    bytes: 144, sub: 32, d: 0, dmin: 2,
    quant: (m, b, e) => (m.u8[b + 16 + 32 * (e >> 6) + (e & 31)] >> (e & 32 ? 4 : 0)) & 15,
    scale: (m, b, s) => scaleMinK4(m, b + 4, s)[0],
    min: (m, b, s) => scaleMinK4(m, b + 4, s)[1],
  },
  // d, dmin, scales[12], qh[32], qs[128]: as q4_K plus bit (e >> 5) of qh[e & 31] as the fifth bit
  q5_k: {
    bytes: 176, sub: 32, d: 0, dmin: 2,
    quant: (m, b, e) => ((m.u8[b + 48 + 32 * (e >> 6) + (e & 31)] >> (e & 32 ? 4 : 0)) & 15)
      | (((m.u8[b + 16 + (e & 31)] >> (e >> 5)) & 1) << 4),
    scale: (m, b, s) => scaleMinK4(m, b + 4, s)[0],
    min: (m, b, s) => scaleMinK4(m, b + 4, s)[1],
  },
  // ql[128], qh[64], scales[16] (i8), d: per 128-element half, quarter k of element l takes
  // ql[l + 32(k&1)]'s low (k < 2) or high nibble and bits 2k, 2k+1 of qh[l]; minus 32
  q6_k: {
    bytes: 210, sub: 16, d: 208,
    quant: (m, b, e) => {
      const n = e >> 7, k = (e >> 5) & 3, l = e & 31;
      const lo = (m.u8[b + 64 * n + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
      const hi = (m.u8[b + 128 + 32 * n + l] >> (2 * k)) & 3;
      return (lo | (hi << 4)) - 32;
    },
    scale: (m, b, s) => m.i8[b + 192 + s],
  },
};

function rowDot(fmt: string): RowDot {
  const f = FORMATS[fmt];
  return (m, w, _scale, row, x, k) => {
    const nb = k / 256, wr = w + row * nb * f.bytes;
    let sum = 0;
    for (let i = 0; i < nb; i++) {
      const b = wr + i * f.bytes, xb = x + i * 292, dx = m.f32(xb);
      let isum = 0, msum = 0;
      for (let s = 0; s < 256 / f.sub; s++) {
        let qx = 0, xs = 0;
        for (let e = s * f.sub; e < (s + 1) * f.sub; e++) {
          qx += f.quant(m, b, e) * m.i8[xb + 4 + e];
          xs += m.i8[xb + 4 + e];
        }
        isum += f.scale(m, b, s) * qx;
        if (f.min) msum += f.min(m, b, s) * xs;
      }
      sum += fr(m.f16(b + f.d) * dx) * isum;
      if (f.dmin !== undefined) sum -= fr(m.f16(b + f.dmin) * dx) * msum;
    }
    return sum;
  };
}

const mv = (fmt: string) => matvecOf(rowDot(fmt));
const mm = (fmt: string) => matmulOf(rowDot(fmt), (k) => (k / 256) * 292);

export const matvec_q2_k = mv('q2_k'), matmul_q2_k = mm('q2_k');
export const matvec_q3_k = mv('q3_k'), matmul_q3_k = mm('q3_k');
export const matvec_q4_k = mv('q4_k'), matmul_q4_k = mm('q4_k');
export const matvec_q5_k = mv('q5_k'), matmul_q5_k = mm('q5_k');
export const matvec_q6_k = mv('q6_k'), matmul_q6_k = mm('q6_k');
