/**
 * Plain-TypeScript twins of the 32-element GGUF block kernels (wasm/quant_q4_0.ts … quant_mxfp4.ts),
 * as ggml's scalar vec_dot_*_q8_0 / _q8_1: per block an exact integer sum of weight quant ×
 * activation quant, times the two scales multiplied in f32; q4_1/q5_1 add min · s (the q8_1 block's
 * d·Σq). Block sums are accumulated in f64.
 */
import { Mem, e8m0, matmulOf, matvecOf, type RowDot } from './quant_common.js';

const fr = Math.fround;

/** MXFP4 E2M1 codes as integers ×2 (ggml's kvalues_mxfp4). */
const MXFP4 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/**
 * A 32-element format: `bytes` per block, `quant(m, block, j)` the integer quant of element j, and
 * how the block's integer sum becomes a float given the activation block at `xb`.
 */
interface Block32 {
  readonly bytes: number;
  readonly quant: (m: Mem, b: number, j: number) => number;
  readonly scale: (m: Mem, b: number, xb: number) => number;
  /** q4_1/q5_1: the min term m · s. */
  readonly offset?: (m: Mem, b: number, xb: number) => number;
}

/** ggml block layouts: q8_0 d, qs[32]; q4_0 d, qs[16]; q4_1 d, m, qs[16]; q5_0 d, qh, qs[16]; q5_1 d, m, qh, qs[16]; mxfp4 e, qs[16]. */
const nibble = (m: Mem, p: number, j: number): number => (j < 16 ? m.u8[p + j] & 15 : m.u8[p + j - 16] >> 4);
const high = (m: Mem, qh: number, j: number): number => ((m.u32(qh) >>> j) & 1) << 4;

const FORMATS: Record<string, Block32> = {
  q8_0: { bytes: 34, quant: (m, b, j) => m.i8[b + 2 + j], scale: (m, b, xb) => fr(m.f16(b) * m.f16(xb)) },
  q4_0: { bytes: 18, quant: (m, b, j) => nibble(m, b + 2, j) - 8, scale: (m, b, xb) => fr(m.f16(b) * m.f16(xb)) },
  q4_1: {
    bytes: 20, quant: (m, b, j) => nibble(m, b + 4, j),
    scale: (m, b, xb) => fr(m.f16(b) * m.f16(xb)), offset: (m, b, xb) => fr(m.f16(b + 2) * m.f16(xb + 2)),
  },
  q5_0: {
    bytes: 22, quant: (m, b, j) => (nibble(m, b + 6, j) | high(m, b + 2, j)) - 16,
    scale: (m, b, xb) => fr(m.f16(b) * m.f16(xb)),
  },
  q5_1: {
    bytes: 24, quant: (m, b, j) => nibble(m, b + 8, j) | high(m, b + 4, j),
    scale: (m, b, xb) => fr(m.f16(b) * m.f16(xb)), offset: (m, b, xb) => fr(m.f16(b + 2) * m.f16(xb + 2)),
  },
  mxfp4: { bytes: 17, quant: (m, b, j) => MXFP4[nibble(m, b + 1, j)], scale: (m, b, xb) => fr(fr(e8m0(m.u8[b]) / 2) * m.f16(xb)) },
};

/** Activation block bytes: q8_1 (d, s, 32 quants) for q4_1/q5_1, else q8_0 (d, 32 quants). */
const actBytes = (fmt: string): number => (fmt === 'q4_1' || fmt === 'q5_1' ? 36 : 34);

function rowDot(fmt: string): RowDot {
  const f = FORMATS[fmt], xbytes = actBytes(fmt), xq = xbytes - 32;
  return (m, w, _scale, row, x, k) => {
    const nb = k / 32, wr = w + row * nb * f.bytes;
    let sum = 0;
    for (let i = 0; i < nb; i++) {
      const b = wr + i * f.bytes, xb = x + i * xbytes;
      let isum = 0;
      for (let j = 0; j < 32; j++) isum += f.quant(m, b, j) * m.i8[xb + xq + j];
      sum += f.scale(m, b, xb) * isum + (f.offset ? f.offset(m, b, xb) : 0);
    }
    return sum;
  };
}

const mv = (fmt: string) => matvecOf(rowDot(fmt));
const mm = (fmt: string) => matmulOf(rowDot(fmt), (k) => (k / 32) * actBytes(fmt));

export const matvec_q8_0 = mv('q8_0'), matmul_q8_0 = mm('q8_0');
export const matvec_q4_0 = mv('q4_0'), matmul_q4_0 = mm('q4_0');
export const matvec_q4_1 = mv('q4_1'), matmul_q4_1 = mm('q4_1');
export const matvec_q5_0 = mv('q5_0'), matmul_q5_0 = mm('q5_0');
export const matvec_q5_1 = mv('q5_1'), matmul_q5_1 = mm('q5_1');
export const matvec_mxfp4 = mv('mxfp4'), matmul_mxfp4 = mm('mxfp4');
