/**
 * Plain-TypeScript twins of wasm/attention.ts: same names, same arguments (the memory first), same
 * memory. The softmax is the textbook two-pass one in f64 (scores, maximum, exponentials, sum),
 * so the online one-pass kernel is held to the definition, not to a copy of itself.
 */
import { F16_TO_F32, f32BitsToF16 } from '../../../tensor/float.js';

type Row = (mem: ArrayBufferLike, p: number, d: number) => ArrayLike<number>;
const f32Row: Row = (mem, p, d) => new Float32Array(mem, p, d);
const f16Row: Row = (mem, p, d) => Float32Array.from(new Uint16Array(mem, p, d), (h) => F16_TO_F32[h]);

function attention(eb: number, row: Row) {
  return (mem: ArrayBufferLike, q: number, k: number, v: number, out: number, heads: number, kvHeads: number,
    headDim: number, start: number, window: number, scale: number, row0: number, row1: number): void => {
    const group = heads / kvHeads, kvRow = kvHeads * headDim * eb;
    for (let r = row0; r < row1; r++) {
      const t = Math.floor(r / heads), h = r % heads, g = Math.floor(h / group);
      const p = start + t, lo = window > 0 ? Math.max(0, p - window + 1) : 0;
      const qr = new Float32Array(mem, q + r * headDim * 4, headDim);
      const scores: number[] = [];
      for (let j = lo; j <= p; j++) {
        const kr = row(mem, k + j * kvRow + g * headDim * eb, headDim);
        let s = 0;
        for (let i = 0; i < headDim; i++) s += qr[i] * kr[i];
        scores.push(Math.fround(scale) * s);
      }
      const m = scores.reduce((a, b) => Math.max(a, b), -Infinity);
      const e = scores.map((s) => Math.exp(s - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const acc = new Float64Array(headDim);
      for (let j = lo; j <= p; j++) {
        const vr = row(mem, v + j * kvRow + g * headDim * eb, headDim);
        for (let i = 0; i < headDim; i++) acc[i] += (e[j - lo] / sum) * vr[i];
      }
      new Float32Array(mem, out + r * headDim * 4, headDim).set(acc);
    }
  };
}

export const attention_f32 = attention(4, f32Row);
export const attention_f16 = attention(2, f16Row);

export function copy_f32_f32(mem: ArrayBufferLike, x: number, y: number, d: number, row0: number, row1: number): void {
  new Float32Array(mem, y + row0 * d * 4, (row1 - row0) * d).set(new Float32Array(mem, x + row0 * d * 4, (row1 - row0) * d));
}

export function copy_f32_f16(mem: ArrayBufferLike, x: number, y: number, d: number, row0: number, row1: number): void {
  const xb = new Uint32Array(mem, x + row0 * d * 4, (row1 - row0) * d);
  new Uint16Array(mem, y + row0 * d * 2, (row1 - row0) * d).set(Array.from(xb, f32BitsToF16));
}
