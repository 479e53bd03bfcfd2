/**
 * GGUF K-quants: 256-element super-blocks, layouts of ggml-common.h (block_q2_K … block_q8_K).
 * Decoders follow ggml's dequantize_row_*_K. The q8_k encoder is ggml's quantize_row_q8_K_ref
 * step for step (kernels quantise activations with it). The q2_k … q6_k encoders are simpler than
 * llama.cpp's searches but guarantee an error bound, by never letting a rounded scale shrink:
 *
 * - affine types (q2_k, q4_k, q5_k; y = d·sc·q − dmin·m, q ∈ [0, nmax]): per sub-block the offset
 *   m·dmin is rounded *up* from −min(0, min x) and the step d·sc *up* from (max x + offset)/nmax,
 *   with d and dmin themselves rounded up to f16. No value clips, so |error| ≤ step/2, where
 *   step < (span + dmin)/nmax + d, span = max x − min(0, min x), dmin ≤ max offset/smax·(1+2^-10),
 *   d ≤ max step/smax·(1+2^-10) (smax = 15 for q2_k's 4-bit scales, 63 for the 6-bit ones).
 * - symmetric types (q3_k, q6_k; y = d·sc·q, q ∈ [−n, n−1]): the side of larger magnitude goes to
 *   −n, so the step is max(big/(n+½), small/(n−½)) ≤ amax/(n−½), rounded up in magnitude to a
 *   multiple of d = max step/smax (smax = 31 for q3_k, 127 for q6_k); |error| ≤ step/2.
 */
import { rd16, rdF32, wr16, wrF32 } from './bytes.js';
import type { DType } from './dtype.js';
import { F16_TO_F32, f32ToF16, roundHalfEven } from './float.js';
import type { BlockDecoder, BlockEncoder } from './quant-gguf.js';

const QK = 256;
const i8 = (b: number): number => (b << 24) >> 24;

/** Sub-block j's 6-bit scale (low byte) and min (high byte) in q4_k/q5_k's 12 packed bytes. */
function scaleMin(s: Uint8Array, o: number, j: number): number {
  if (j < 4) return (s[o + j] & 63) | ((s[o + j + 4] & 63) << 8);
  const sc = (s[o + j + 4] & 15) | ((s[o + j - 4] >>> 6) << 4);
  const m = (s[o + j + 4] >>> 4) | ((s[o + j] >>> 6) << 4);
  return sc | (m << 8);
}

/** Sub-block j's 6-bit scale in q3_k's 12 packed bytes (low 4 bits in 0..7, high 2 bits in 8..11). */
function scale6(s: Uint8Array, o: number, j: number): number {
  const low = j < 8 ? s[o + j] & 15 : s[o + j - 8] >>> 4;
  const high = (s[o + 8 + (j & 3)] >>> (2 * (j >>> 2))) & 3;
  return low | (high << 4);
}

// ---- decoders ----------------------------------------------------------------------------------------
// Products d·sc·q are exact in double and every sum rounds once on the f32 store, as in C.

/** q2_k (84 B): scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin. */
function decodeQ2K(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 84, o += QK) {
    const d = F16_TO_F32[rd16(s, so + 80)];
    const dmin = F16_TO_F32[rd16(s, so + 82)];
    for (let sb = 0; sb < 16; sb++) {
      const sc = s[so + sb];
      const dl = d * (sc & 15);
      const ml = dmin * (sc >>> 4);
      for (let e = sb * 16; e < sb * 16 + 16; e++) {
        // element e: byte 32·(e div 128) + e mod 32 of qs, bits 2·((e div 32) mod 4)
        const q = (s[so + 16 + ((e >>> 7) << 5) + (e & 31)] >>> (((e >>> 5) & 3) << 1)) & 3;
        y[o + e] = dl * q - ml;
      }
    }
  }
}

/** q3_k (110 B): hmask[32], qs[64], scales[12] (6-bit, +32 bias), f16 d. */
function decodeQ3K(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 110, o += QK) {
    const d = F16_TO_F32[rd16(s, so + 108)];
    for (let sb = 0; sb < 16; sb++) {
      const dl = d * (scale6(s, so + 96, sb) - 32);
      for (let e = sb * 16; e < sb * 16 + 16; e++) {
        const q = (s[so + 32 + ((e >>> 7) << 5) + (e & 31)] >>> (((e >>> 5) & 3) << 1)) & 3;
        const high = (s[so + (e & 31)] >>> (e >>> 5)) & 1; // hmask bit (e div 32) of byte e mod 32
        y[o + e] = dl * (q - (high ? 0 : 4));
      }
    }
  }
}

/** q4_k (144 B) and q5_k (176 B): f16 d, f16 dmin, scales[12], [q5_k: qh[32]], qs[128]. */
function decodeQ45K(five: boolean): BlockDecoder {
  const bytes = five ? 176 : 144;
  const qsOff = five ? 48 : 16;
  return (s, so, y, o, n) => {
    for (let b = 0; b < n; b++, so += bytes, o += QK) {
      const d = F16_TO_F32[rd16(s, so)];
      const dmin = F16_TO_F32[rd16(s, so + 2)];
      for (let sb = 0; sb < 8; sb++) {
        const sm = scaleMin(s, so + 4, sb);
        const dl = d * (sm & 63);
        const ml = dmin * (sm >>> 8);
        const qs = so + qsOff + 32 * (sb >>> 1); // 32 bytes hold sub-blocks 2i (low) and 2i+1 (high)
        const shift = (sb & 1) * 4;
        for (let l = 0; l < 32; l++) {
          let q = (s[qs + l] >>> shift) & 15;
          if (five) q |= ((s[so + 16 + l] >>> sb) & 1) << 4;
          y[o + sb * 32 + l] = dl * q - ml;
        }
      }
    }
  };
}

/** q6_k (210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d. */
function decodeQ6K(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 210, o += QK) {
    const d = F16_TO_F32[rd16(s, so + 208)];
    for (let sb = 0; sb < 16; sb++) {
      const dl = d * i8(s[so + 192 + sb]);
      for (let e = sb * 16; e < sb * 16 + 16; e++) {
        const half = e >>> 7;
        const k = (e >>> 5) & 3; // quarter of the 128-element half
        const l = e & 31;
        const lo = (s[so + 64 * half + l + 32 * (k & 1)] >>> (4 * (k >>> 1))) & 15;
        const hi = (s[so + 128 + 32 * half + l] >>> (2 * k)) & 3;
        y[o + e] = dl * ((lo | (hi << 4)) - 32);
      }
    }
  }
}

/** q8_k (292 B): f32 d, int8 qs[256], int16 bsums[16]. */
function decodeQ8K(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 292, o += QK) {
    const d = rdF32(s, so);
    for (let j = 0; j < QK; j++) y[o + j] = d * i8(s[so + 4 + j]);
  }
}

// ---- encoders ----------------------------------------------------------------------------------------

/** f16 bits of the smallest f16 ≥ v (v ≥ 0): a scale rounded this way never shrinks. */
function f16Up(v: number, dtype: DType): number {
  let h = f32ToF16(v);
  if (F16_TO_F32[h] < v) h++;
  if (h >= 0x7c00) throw new Error(`${dtype}: block scale ${v} does not fit in f16`);
  return h;
}

// Scratch for one super-block (encoders are synchronous and not re-entrant).
const L = new Int32Array(QK);
const subScale = new Int32Array(16);
const subMin = new Int32Array(16);
const offset = new Float64Array(16);
const need = new Float64Array(16);

/**
 * Affine fit of one super-block: fills subScale/subMin (≤ smax) and L (0..nmax) and returns the f16
 * bits of d | dmin << 16. See the file comment for why nothing clips.
 */
function fitAffine(x: Float32Array, o: number, sub: number, nmax: number, smax: number, dtype: DType): number {
  const nSub = QK / sub;
  let maxOffset = 0;
  for (let j = 0; j < nSub; j++) {
    let lo = 0;
    let hi = -Infinity;
    for (let i = o + j * sub; i < o + (j + 1) * sub; i++) {
      lo = Math.min(lo, x[i]);
      hi = Math.max(hi, x[i]);
    }
    offset[j] = -lo;
    need[j] = hi; // completed below once the offset is rounded
    maxOffset = Math.max(maxOffset, -lo);
  }
  const dminH = f16Up(maxOffset / smax, dtype);
  const dmin = F16_TO_F32[dminH];
  let maxStep = 0;
  for (let j = 0; j < nSub; j++) {
    subMin[j] = dmin ? Math.min(smax, Math.ceil(offset[j] / dmin)) : 0;
    offset[j] = dmin * subMin[j];
    need[j] = Math.max(0, (need[j] + offset[j]) / nmax);
    maxStep = Math.max(maxStep, need[j]);
  }
  const dH = f16Up(maxStep / smax, dtype);
  const d = F16_TO_F32[dH];
  for (let j = 0; j < nSub; j++) {
    subScale[j] = d ? Math.min(smax, Math.ceil(need[j] / d)) : 0;
    const step = d * subScale[j];
    for (let i = j * sub; i < (j + 1) * sub; i++) {
      L[i] = step ? Math.max(0, Math.min(nmax, roundHalfEven((x[o + i] + offset[j]) / step))) : 0;
    }
  }
  return dH | (dminH << 16);
}

/** Symmetric fit over 16 sub-blocks of 16: fills subScale (|·| ≤ smax) and L (−n..n−1); returns d's f16 bits. */
function fitSymmetric(x: Float32Array, o: number, n: number, smax: number, dtype: DType): number {
  let maxStep = 0;
  for (let j = 0; j < 16; j++) {
    let pos = 0;
    let neg = 0;
    for (let i = o + 16 * j; i < o + 16 * j + 16; i++) {
      pos = Math.max(pos, x[i]);
      neg = Math.max(neg, -x[i]);
    }
    // a negative step sends the positive side to −n
    need[j] = pos >= neg ? -Math.max(pos / (n + 0.5), neg / (n - 0.5)) : Math.max(neg / (n + 0.5), pos / (n - 0.5));
    maxStep = Math.max(maxStep, Math.abs(need[j]));
  }
  const dH = f16Up(maxStep / smax, dtype);
  const d = F16_TO_F32[dH];
  for (let j = 0; j < 16; j++) {
    const mag = d ? Math.min(smax, Math.ceil(Math.abs(need[j]) / d)) : 0;
    subScale[j] = need[j] < 0 ? -mag : mag;
    const step = d * subScale[j];
    for (let i = 16 * j; i < 16 * j + 16; i++) {
      L[i] = step ? Math.max(-n, Math.min(n - 1, roundHalfEven(x[o + i] / step))) : 0;
    }
  }
  return dH;
}

function encodeQ2K(x: Float32Array, o: number, y: Uint8Array, dOff: number, n: number): void {
  for (let b = 0; b < n; b++, o += QK, dOff += 84) {
    const dd = fitAffine(x, o, 16, 3, 15, 'q2_k');
    y.fill(0, dOff, dOff + 84);
    for (let j = 0; j < 16; j++) y[dOff + j] = subScale[j] | (subMin[j] << 4);
    for (let e = 0; e < QK; e++) y[dOff + 16 + ((e >>> 7) << 5) + (e & 31)] |= L[e] << (((e >>> 5) & 3) << 1);
    wr16(y, dOff + 80, dd & 0xffff);
    wr16(y, dOff + 82, dd >>> 16);
  }
}

function encodeQ3K(x: Float32Array, o: number, y: Uint8Array, dOff: number, n: number): void {
  for (let b = 0; b < n; b++, o += QK, dOff += 110) {
    const dH = fitSymmetric(x, o, 4, 31, 'q3_k');
    y.fill(0, dOff, dOff + 110);
    for (let e = 0; e < QK; e++) {
      const q = L[e] + 4;
      y[dOff + 32 + ((e >>> 7) << 5) + (e & 31)] |= (q & 3) << (((e >>> 5) & 3) << 1);
      if (q & 4) y[dOff + (e & 31)] |= 1 << (e >>> 5);
    }
    for (let j = 0; j < 16; j++) {
      const l = subScale[j] + 32;
      y[dOff + 96 + (j & 7)] |= (l & 15) << (j < 8 ? 0 : 4);
      y[dOff + 96 + 8 + (j & 3)] |= (l >>> 4) << (2 * (j >>> 2));
    }
    wr16(y, dOff + 108, dH);
  }
}

function encodeQ45K(five: boolean): BlockEncoder {
  const bytes = five ? 176 : 144;
  const qsOff = five ? 48 : 16;
  const dtype: DType = five ? 'q5_k' : 'q4_k';
  return (x, o, y, dOff, n) => {
    for (let b = 0; b < n; b++, o += QK, dOff += bytes) {
      const dd = fitAffine(x, o, 32, five ? 31 : 15, 63, dtype);
      y.fill(0, dOff, dOff + bytes);
      wr16(y, dOff, dd & 0xffff);
      wr16(y, dOff + 2, dd >>> 16);
      const sc = dOff + 4;
      for (let j = 0; j < 8; j++) {
        const ls = subScale[j];
        const lm = subMin[j];
        if (j < 4) {
          y[sc + j] |= ls;
          y[sc + j + 4] |= lm;
        } else {
          y[sc + j + 4] = (ls & 15) | ((lm & 15) << 4);
          y[sc + j - 4] |= (ls >>> 4) << 6;
          y[sc + j] |= (lm >>> 4) << 6;
        }
      }
      for (let e = 0; e < QK; e++) {
        const q = L[e];
        y[dOff + qsOff + 32 * (e >>> 6) + (e & 31)] |= (q & 15) << (4 * ((e >>> 5) & 1));
        if (five && q & 16) y[dOff + 16 + (e & 31)] |= 1 << (e >>> 5);
      }
    }
  };
}

function encodeQ6K(x: Float32Array, o: number, y: Uint8Array, dOff: number, n: number): void {
  for (let b = 0; b < n; b++, o += QK, dOff += 210) {
    const dH = fitSymmetric(x, o, 32, 127, 'q6_k');
    y.fill(0, dOff, dOff + 210);
    for (let e = 0; e < QK; e++) {
      const q = L[e] + 32;
      const half = e >>> 7;
      const k = (e >>> 5) & 3;
      const l = e & 31;
      y[dOff + 64 * half + l + 32 * (k & 1)] |= (q & 15) << (4 * (k >>> 1));
      y[dOff + 128 + 32 * half + l] |= (q >>> 4) << (2 * k);
    }
    for (let j = 0; j < 16; j++) y[dOff + 192 + j] = subScale[j] & 0xff;
    wr16(y, dOff + 208, dH);
  }
}

/** ggml's quantize_row_q8_K_ref: d = max/−127 (max = the element of largest magnitude), RNE. */
function encodeQ8K(x: Float32Array, o: number, y: Uint8Array, dOff: number, n: number): void {
  const fr = Math.fround;
  for (let b = 0; b < n; b++, o += QK, dOff += 292) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const ax = Math.abs(x[o + j]);
      if (ax > amax) {
        amax = ax;
        max = x[o + j];
      }
    }
    y.fill(0, dOff, dOff + 292);
    if (!amax) continue;
    const iscale = fr(-127 / max);
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let j = 16 * g; j < 16 * g + 16; j++) {
        const q = Math.min(127, roundHalfEven(fr(iscale * x[o + j])));
        y[dOff + 4 + j] = q & 0xff;
        sum += q;
      }
      wr16(y, dOff + 260 + 2 * g, sum & 0xffff);
    }
    wrF32(y, dOff, fr(1 / iscale));
  }
}

export const K_DECODERS: Partial<Record<DType, BlockDecoder>> = {
  q2_k: decodeQ2K, q3_k: decodeQ3K, q4_k: decodeQ45K(false), q5_k: decodeQ45K(true), q6_k: decodeQ6K,
  q8_k: decodeQ8K,
};

export const K_ENCODERS: Partial<Record<DType, BlockEncoder>> = {
  q2_k: encodeQ2K, q3_k: encodeQ3K, q4_k: encodeQ45K(false), q5_k: encodeQ45K(true), q6_k: encodeQ6K,
  q8_k: encodeQ8K,
};
