/**
 * Plain-TypeScript twins of wasm/act_quant.ts: f32 activations → llama.cpp's q8_0 / q8_1 / q8_K
 * blocks, following quantize_row_q8_0_ref / _q8_1_ref / _q8_K_ref step by step in f32 arithmetic.
 */
import { f32ToF16 } from '../../../tensor/float.js';
import type { QuantizeActFn } from '../registry.js';

const fr = Math.fround;

/** C roundf: halves away from zero. */
function roundAway(v: number): number {
  return Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
}

/** Round half to even (ggml's nearest_int). */
function roundEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  return r > 0.5 || (r === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** One q8_0/q8_1 block: writes d (f16) at `dOff` and the quants at `qOff`; returns d and Σq. */
function q8Block(x: Float32Array, xo: number, bytes: DataView, dOff: number, qOff: number): { d: number; sum: number } {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
  const d = fr(amax / 127);
  const id = d !== 0 ? fr(1 / d) : 0;
  bytes.setUint16(dOff, f32ToF16(d), true);
  let sum = 0;
  for (let j = 0; j < 32; j++) {
    const q = roundAway(fr(x[xo + j] * id));
    bytes.setInt8(qOff + j, q);
    sum += q;
  }
  return { d, sum };
}

export const quantize_q8_0: QuantizeActFn = (mem, x, out, k) => {
  const xv = new Float32Array(mem, x, k);
  const bytes = new DataView(mem);
  for (let b = 0; b < k / 32; b++) q8Block(xv, 32 * b, bytes, out + 34 * b, out + 34 * b + 2);
};

export const quantize_q8_1: QuantizeActFn = (mem, x, out, k) => {
  const xv = new Float32Array(mem, x, k);
  const bytes = new DataView(mem);
  for (let b = 0; b < k / 32; b++) {
    const o = out + 36 * b;
    const { d, sum } = q8Block(xv, 32 * b, bytes, o, o + 4);
    bytes.setUint16(o + 2, f32ToF16(fr(sum * d)), true);
  }
};

export const quantize_q8_k: QuantizeActFn = (mem, x, out, k) => {
  const xv = new Float32Array(mem, x, k);
  const bytes = new DataView(mem);
  for (let b = 0; b < k / 256; b++) {
    const xo = 256 * b, o = out + 292 * b;
    let amax = 0, max = 0;
    for (let j = 0; j < 256; j++) {
      if (Math.abs(xv[xo + j]) > amax) { amax = Math.abs(xv[xo + j]); max = xv[xo + j]; }
    }
    if (amax === 0) {
      new Uint8Array(mem, o, 292).fill(0);
      continue;
    }
    const iscale = fr(-127 / max);
    bytes.setFloat32(o, fr(1 / iscale), true);
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let j = 16 * g; j < 16 * g + 16; j++) {
        const q = Math.min(127, roundEven(fr(iscale * xv[xo + j])));
        bytes.setInt8(o + 4 + j, q);
        sum += q;
      }
      bytes.setInt16(o + 260 + 2 * g, sum, true);
    }
  }
};
