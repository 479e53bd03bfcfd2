/**
 * GGUF (ggml) row codecs: element types and the 32-element block types (q4_0 … q8_1, mxfp4), plus
 * dispatch to the K-quant codecs. Layouts are those of ggml-common.h, byte for byte; multi-byte
 * fields are little-endian and read bytewise, so blocks may sit at any byte offset.
 *
 * Quantisers of the 32-element types follow ggml's reference quantize_row_*_ref step by step in
 * f32 arithmetic (Math.fround at every C float operation), so q8_0/q8_1 activations match what
 * llama.cpp's kernels consume. Element order inside q4/q5/mxfp4 blocks is ggml's: byte j holds
 * element j in its low nibble and element j+16 in its high nibble.
 */
import { dtypeInfo, type DType } from './dtype.js';
import { rd16, rd32, rdF32, wr16, wr32, wrF32 } from './bytes.js';
import {
  E2M1_TO_F32, E4M3_TO_F32, F16_TO_F32, bf16ToF32, e5m2ToF32, e8m0ToF32, f32ToBf16, f32ToE2m1, f32ToE4m3,
  f32ToE5m2, f32ToF16, floorLog2,
} from './float.js';
import { K_DECODERS, K_ENCODERS } from './quant-gguf-k.js';

/** Decodes `n` blocks starting at byte `so` of `src` into `dst` from element `o`. */
export type BlockDecoder = (src: Uint8Array, so: number, dst: Float32Array, o: number, n: number) => void;
/** Encodes `n` blocks from element `o` of `src` into `dst` from byte `dOff`. */
export type BlockEncoder = (src: Float32Array, o: number, dst: Uint8Array, dOff: number, n: number) => void;

const fr = Math.fround;

/** C's roundf: nearest, halves away from zero. */
const roundAway = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
const i8 = (b: number): number => (b << 24) >> 24;

// mxfp4 scale byte → 2^(e-127). ggml has no NaN code here (e = 255 is 2^128), unlike plain E8M0.
const MXFP4_SCALE = Float64Array.from({ length: 256 }, (_, e) => 2 ** (e - 127));

// ---- element types --------------------------------------------------------------------------------

const elementDecoders: Partial<Record<DType, BlockDecoder>> = {
  f32: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = rdF32(s, so + 4 * i); },
  f16: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = F16_TO_F32[rd16(s, so + 2 * i)]; },
  bf16: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = bf16ToF32(rd16(s, so + 2 * i)); },
  f8_e4m3: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = E4M3_TO_F32[s[so + i]]; },
  f8_e5m2: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = e5m2ToF32(s[so + i]); },
  e8m0: (s, so, d, o, n) => { for (let i = 0; i < n; i++) d[o + i] = e8m0ToF32(s[so + i]); },
  // n blocks of 2: low nibble = even element (DeepSeek packing, spec §10.1)
  fp4_e2m1: (s, so, d, o, n) => {
    for (let i = 0; i < n; i++) {
      const b = s[so + i];
      d[o + 2 * i] = E2M1_TO_F32[b & 15];
      d[o + 2 * i + 1] = E2M1_TO_F32[b >>> 4];
    }
  },
};

const elementEncoders: Partial<Record<DType, BlockEncoder>> = {
  f32: (s, o, d, dOff, n) => { for (let i = 0; i < n; i++) wrF32(d, dOff + 4 * i, s[o + i]); },
  f16: (s, o, d, dOff, n) => { for (let i = 0; i < n; i++) wr16(d, dOff + 2 * i, f32ToF16(s[o + i])); },
  bf16: (s, o, d, dOff, n) => { for (let i = 0; i < n; i++) wr16(d, dOff + 2 * i, f32ToBf16(s[o + i])); },
  f8_e4m3: (s, o, d, dOff, n) => { for (let i = 0; i < n; i++) d[dOff + i] = f32ToE4m3(s[o + i]); },
  f8_e5m2: (s, o, d, dOff, n) => { for (let i = 0; i < n; i++) d[dOff + i] = f32ToE5m2(s[o + i]); },
  fp4_e2m1: (s, o, d, dOff, n) => {
    for (let i = 0; i < n; i++) d[dOff + i] = f32ToE2m1(s[o + 2 * i]) | (f32ToE2m1(s[o + 2 * i + 1]) << 4);
  },
};

// ---- 32-element blocks: decoders ---------------------------------------------------------------------

function decodeQ4_0(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 18, o += 32) {
    const d = F16_TO_F32[rd16(s, so)];
    for (let j = 0; j < 16; j++) {
      const q = s[so + 2 + j];
      y[o + j] = ((q & 15) - 8) * d;
      y[o + j + 16] = ((q >>> 4) - 8) * d;
    }
  }
}

function decodeQ4_1(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 20, o += 32) {
    const d = F16_TO_F32[rd16(s, so)];
    const m = F16_TO_F32[rd16(s, so + 2)];
    for (let j = 0; j < 16; j++) {
      const q = s[so + 4 + j];
      y[o + j] = (q & 15) * d + m; // exact in double, so the f32 store rounds once, as C does
      y[o + j + 16] = (q >>> 4) * d + m;
    }
  }
}

function decodeQ5_0(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 22, o += 32) {
    const d = F16_TO_F32[rd16(s, so)];
    const qh = rd32(s, so + 2);
    for (let j = 0; j < 16; j++) {
      const q = s[so + 6 + j];
      y[o + j] = (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d;
      y[o + j + 16] = (((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
}

function decodeQ5_1(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 24, o += 32) {
    const d = F16_TO_F32[rd16(s, so)];
    const m = F16_TO_F32[rd16(s, so + 2)];
    const qh = rd32(s, so + 4);
    for (let j = 0; j < 16; j++) {
      const q = s[so + 8 + j];
      y[o + j] = ((q & 15) | (((qh >>> j) & 1) << 4)) * d + m;
      y[o + j + 16] = ((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
}

/** q8_0 (34 B) and q8_1 (36 B: an extra f16 s before the quants) differ only in the header. */
function decodeQ8(header: number): BlockDecoder {
  const bytes = header + 32;
  return (s, so, y, o, n) => {
    for (let b = 0; b < n; b++, so += bytes, o += 32) {
      const d = F16_TO_F32[rd16(s, so)];
      for (let j = 0; j < 32; j++) y[o + j] = i8(s[so + header + j]) * d;
    }
  };
}

function decodeMxfp4(s: Uint8Array, so: number, y: Float32Array, o: number, n: number): void {
  for (let b = 0; b < n; b++, so += 17, o += 32) {
    const d = MXFP4_SCALE[s[so]];
    for (let j = 0; j < 16; j++) {
      const q = s[so + 1 + j];
      y[o + j] = E2M1_TO_F32[q & 15] * d;
      y[o + j + 16] = E2M1_TO_F32[q >>> 4] * d;
    }
  }
}

// ---- 32-element blocks: encoders (ggml reference semantics, f32 arithmetic) ---------------------------

/** The element of largest magnitude (first one on ties), as ggml's `max` with `amax`. */
function signedAbsMax(x: Float32Array, o: number, len: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < len; j++) {
    const v = x[o + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, o: number, len: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < len; j++) {
    const v = x[o + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/**
 * q4_0 / q5_0: d = max / -2^(bits-1), q = min(qmax, trunc(x/d + 2^(bits-1) + 0.5)). q5_0 stores
 * the fifth bits in a little-endian u32 (bit j: element j).
 */
function encodeSymmetric32(bits: 4 | 5): BlockEncoder {
  const half = 1 << (bits - 1);
  const qmax = (1 << bits) - 1;
  const bytes = bits === 4 ? 18 : 22;
  const qOff = bits === 4 ? 2 : 6;
  return (x, o, y, dOff, n) => {
    for (let b = 0; b < n; b++, o += 32, dOff += bytes) {
      const d = fr(signedAbsMax(x, o, 32) / -half);
      const id = d ? fr(1 / d) : 0;
      wr16(y, dOff, f32ToF16(d));
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(qmax, Math.trunc(fr(fr(x[o + j] * id) + half + 0.5)));
        const q1 = Math.min(qmax, Math.trunc(fr(fr(x[o + j + 16] * id) + half + 0.5)));
        y[dOff + qOff + j] = (q0 & 15) | ((q1 & 15) << 4);
        qh |= ((q0 >>> 4) << j) | ((q1 >>> 4) << (j + 16));
      }
      if (bits === 5) wr32(y, dOff + 2, qh);
    }
  };
}

/** q4_1 / q5_1: d = (max − min)/qmax, m = min, q = min(qmax, trunc((x − min)/d + 0.5)). */
function encodeAffine32(bits: 4 | 5): BlockEncoder {
  const qmax = (1 << bits) - 1;
  const bytes = bits === 4 ? 20 : 24;
  const qOff = bits === 4 ? 4 : 8;
  return (x, o, y, dOff, n) => {
    for (let b = 0; b < n; b++, o += 32, dOff += bytes) {
      const [min, max] = minMax(x, o, 32);
      const d = fr(fr(max - min) / qmax);
      const id = d ? fr(1 / d) : 0;
      wr16(y, dOff, f32ToF16(d));
      wr16(y, dOff + 2, f32ToF16(min));
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(qmax, Math.trunc(fr(fr(fr(x[o + j] - min) * id) + 0.5)));
        const q1 = Math.min(qmax, Math.trunc(fr(fr(fr(x[o + j + 16] - min) * id) + 0.5)));
        y[dOff + qOff + j] = (q0 & 15) | ((q1 & 15) << 4);
        qh |= ((q0 >>> 4) << j) | ((q1 >>> 4) << (j + 16));
      }
      if (bits === 5) wr32(y, dOff + 4, qh);
    }
  };
}

/** q8_0 / q8_1: d = amax/127, q = roundf(x · (1/d)); q8_1 also stores s = f16(d · Σq). */
function encodeQ8(withSum: boolean): BlockEncoder {
  const header = withSum ? 4 : 2;
  const bytes = header + 32;
  return (x, o, y, dOff, n) => {
    for (let b = 0; b < n; b++, o += 32, dOff += bytes) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
      const d = fr(amax / 127);
      const id = d ? fr(1 / d) : 0;
      wr16(y, dOff, f32ToF16(d));
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const q = roundAway(fr(x[o + j] * id));
        y[dOff + header + j] = q & 0xff;
        sum += q;
      }
      if (withSum) wr16(y, dOff + 2, f32ToF16(fr(sum * d)));
    }
  };
}

/**
 * mxfp4: e = floor(log2 amax) − 2 + 127 (so amax/2^(e−127) lies in [4, 8) and values above 6·scale
 * saturate), each element the nearest of the 16 codes with ties to the lower code index (towards
 * zero; zero is always +0), comparing f32 errors as ggml's best_index_mxfp4 does. floor(log2) is
 * exact here; ggml's log2f can land one binade higher when amax is within an ulp below a power of 2.
 */
function encodeMxfp4(x: Float32Array, o: number, y: Uint8Array, dOff: number, n: number): void {
  for (let b = 0; b < n; b++, o += 32, dOff += 17) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
    const e = amax > 0 ? Math.max(0, Math.min(254, floorLog2(amax) - 2 + 127)) : 0;
    const scale = MXFP4_SCALE[e];
    y[dOff] = e;
    for (let j = 0; j < 16; j++) {
      y[dOff + 1 + j] = nearestMxfp4(x[o + j], scale) | (nearestMxfp4(x[o + j + 16], scale) << 4);
    }
  }
}

function nearestMxfp4(v: number, scale: number): number {
  let best = 0;
  let bestErr = fr(Math.abs(E2M1_TO_F32[0] * scale - v));
  for (let i = 1; i < 16; i++) {
    const err = fr(Math.abs(E2M1_TO_F32[i] * scale - v));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

const DECODERS: Partial<Record<DType, BlockDecoder>> = {
  ...elementDecoders,
  q4_0: decodeQ4_0, q4_1: decodeQ4_1, q5_0: decodeQ5_0, q5_1: decodeQ5_1,
  q8_0: decodeQ8(2), q8_1: decodeQ8(4), mxfp4: decodeMxfp4,
  ...K_DECODERS,
};

const ENCODERS: Partial<Record<DType, BlockEncoder>> = {
  ...elementEncoders,
  q4_0: encodeSymmetric32(4), q4_1: encodeAffine32(4), q5_0: encodeSymmetric32(5), q5_1: encodeAffine32(5),
  q8_0: encodeQ8(false), q8_1: encodeQ8(true), mxfp4: encodeMxfp4,
  ...K_ENCODERS,
};

/** Number of blocks in `count` elements of `dtype`, checking that buffers hold them. */
function blocksOf(what: string, dtype: DType, count: number, bytes: number, byteOff: number,
  elems: number, elemOff: number): number {
  const { blockElems, blockBytes } = dtypeInfo(dtype);
  if (!Number.isInteger(count) || count < 0 || count % blockElems !== 0) {
    throw new Error(`${what}: ${count} elements is not a whole number of ${dtype} blocks of ${blockElems}`);
  }
  const n = count / blockElems;
  if (byteOff < 0 || byteOff + n * blockBytes > bytes) {
    throw new Error(`${what}: ${count} ${dtype} elements need ${n * blockBytes} bytes at offset ${byteOff}, buffer has ${bytes}`);
  }
  if (elemOff < 0 || elemOff + count > elems) {
    throw new Error(`${what}: ${count} elements at offset ${elemOff} do not fit a Float32Array of ${elems}`);
  }
  return n;
}

/**
 * Decode `count` elements of `dtype` from `src` (at byte `srcOffset`) into `dst` (at element
 * `dstOffset`). Handles f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_k … q8_k, mxfp4, and
 * the unscaled element types f8_e4m3, f8_e5m2, e8m0, fp4_e2m1.
 */
export function dequantizeRow(dtype: DType, src: Uint8Array, dst: Float32Array, count: number,
  srcOffset = 0, dstOffset = 0): void {
  const dec = DECODERS[dtype];
  if (!dec) throw new Error(`dequantizeRow: no decoder for dtype ${dtype}`);
  const n = blocksOf('dequantizeRow', dtype, count, src.length, srcOffset, dst.length, dstOffset);
  dec(src, srcOffset, dst, dstOffset, n);
}

/**
 * Encode `count` f32 elements of `src` (from element `srcOffset`) as `dtype` into `dst` (at byte
 * `dstOffset`). Handles every dtype of dequantizeRow except e8m0.
 */
export function quantizeRow(dtype: DType, src: Float32Array, dst: Uint8Array, count: number,
  srcOffset = 0, dstOffset = 0): void {
  const enc = ENCODERS[dtype];
  if (!enc) throw new Error(`quantizeRow: no encoder for dtype ${dtype}`);
  const n = blocksOf('quantizeRow', dtype, count, dst.length, dstOffset, src.length, srcOffset);
  enc(src, srcOffset, dst, dstOffset, n);
}
