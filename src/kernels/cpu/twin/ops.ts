/**
 * Plain-TypeScript twins of wasm/ops.ts: same names, same arguments (the memory first), same
 * memory. Arithmetic is in f64, stored as f32, so results differ from the SIMD kernels only by
 * f32 rounding and summation order.
 */
import { F16_TO_F32, bf16ToF32 } from '../../../tensor/float.js';

const f32 = (mem: ArrayBufferLike, p: number, n: number) => new Float32Array(mem, p, n);
const i32 = (mem: ArrayBufferLike, p: number, n: number) => new Int32Array(mem, p, n);

export function rmsnorm_f32(mem: ArrayBufferLike, x: number, w: number, y: number, d: number, eps: number, row0: number, row1: number): void {
  const weight = w ? f32(mem, w, d) : undefined;
  for (let r = row0; r < row1; r++) {
    const xr = f32(mem, x + r * d * 4, d), yr = f32(mem, y + r * d * 4, d);
    let ss = 0;
    for (let j = 0; j < d; j++) ss += xr[j] * xr[j];
    const inv = 1 / Math.sqrt(ss / d + Math.fround(eps));
    for (let j = 0; j < d; j++) yr[j] = xr[j] * inv * (weight ? weight[j] : 1);
  }
}

export function rope_f32(mem: ArrayBufferLike, x: number, freqs: number, pos: number, heads: number, headDim: number,
  ropeDim: number, neox: number, inverse: number, row0: number, row1: number): void {
  const half = ropeDim / 2, off = headDim - ropeDim, width = heads * headDim;
  const f = f32(mem, freqs, half), p = i32(mem, pos, row1);
  for (let t = row0; t < row1; t++) {
    const xt = f32(mem, x + t * width * 4, width);
    for (let i = 0; i < half; i++) {
      const theta = Math.fround(p[t] * f[i]);
      const c = Math.cos(theta), s = inverse ? -Math.sin(theta) : Math.sin(theta);
      const ia = neox ? off + i : off + 2 * i, ib = neox ? ia + half : ia + 1;
      for (let h = 0; h < heads; h++) {
        const a = xt[h * headDim + ia], b = xt[h * headDim + ib];
        xt[h * headDim + ia] = a * c - b * s;
        xt[h * headDim + ib] = a * s + b * c;
      }
    }
  }
}

export function softmax_f32(mem: ArrayBufferLike, x: number, y: number, d: number, scale: number, row0: number, row1: number): void {
  for (let r = row0; r < row1; r++) {
    const xr = f32(mem, x + r * d * 4, d), yr = f32(mem, y + r * d * 4, d);
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, scale * xr[j]);
    const e = Array.from(xr, (v) => Math.exp(scale * v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < d; j++) yr[j] = e[j] / sum;
  }
}

const silu = (v: number) => v / (1 + Math.exp(-v));

export function silu_f32(mem: ArrayBufferLike, x: number, y: number, d: number, row0: number, row1: number): void {
  const n = (row1 - row0) * d;
  const xv = f32(mem, x + row0 * d * 4, n), yv = f32(mem, y + row0 * d * 4, n);
  for (let i = 0; i < n; i++) yv[i] = silu(xv[i]);
}

export function swiglu_f32(mem: ArrayBufferLike, g: number, u: number, y: number, d: number, limit: number, row0: number, row1: number): void {
  const n = (row1 - row0) * d, o = row0 * d * 4;
  const gv = f32(mem, g + o, n), uv = f32(mem, u + o, n), yv = f32(mem, y + o, n);
  for (let i = 0; i < n; i++) {
    let a = gv[i], b = uv[i];
    if (limit > 0) { a = Math.min(a, limit); b = Math.min(Math.max(b, -limit), limit); }
    yv[i] = silu(a) * b;
  }
}

function binary(op: (a: number, b: number) => number) {
  return (mem: ArrayBufferLike, a: number, b: number, y: number, d: number, bstep: number, row0: number, row1: number): void => {
    for (let r = row0; r < row1; r++) {
      const ar = f32(mem, a + r * d * 4, d), br = f32(mem, b + r * bstep * 4, d), yr = f32(mem, y + r * d * 4, d);
      for (let j = 0; j < d; j++) yr[j] = op(ar[j], br[j]);
    }
  };
}
export const add_f32 = binary((a, b) => a + b);
export const mul_f32 = binary((a, b) => a * b);

function embed(eb: number, decode: (mem: ArrayBufferLike, p: number, d: number) => ArrayLike<number>) {
  return (mem: ArrayBufferLike, table: number, ids: number, y: number, d: number, row0: number, row1: number): void => {
    const id = i32(mem, ids, row1);
    for (let t = row0; t < row1; t++) f32(mem, y + t * d * 4, d).set(decode(mem, table + id[t] * d * eb, d));
  };
}
export const embed_f32 = embed(4, (mem, p, d) => f32(mem, p, d));
export const embed_f16 = embed(2, (mem, p, d) => Float32Array.from(new Uint16Array(mem, p, d), (h) => F16_TO_F32[h]));
export const embed_bf16 = embed(2, (mem, p, d) => Float32Array.from(new Uint16Array(mem, p, d), bf16ToF32));

export function argmax_f32(mem: ArrayBufferLike, x: number, d: number, out: number, row0: number, row1: number): void {
  const o = i32(mem, out, row1);
  for (let r = row0; r < row1; r++) {
    const xr = f32(mem, x + r * d * 4, d);
    let best = -1;
    for (let j = 0; j < d; j++) if (!Number.isNaN(xr[j]) && (best < 0 || xr[j] > xr[best])) best = j;
    o[r] = Math.max(best, 0);
  }
}

export function topk_f32(mem: ArrayBufferLike, x: number, d: number, k: number, vals: number, idx: number, row0: number, row1: number): void {
  for (let r = row0; r < row1; r++) {
    const xr = f32(mem, x + r * d * 4, d);
    const order = Array.from({ length: d }, (_, j) => j).filter((j) => !Number.isNaN(xr[j]));
    order.sort((a, b) => xr[b] - xr[a] || a - b);
    const v = f32(mem, vals + r * k * 4, k), ix = i32(mem, idx + r * k * 4, k);
    for (let i = 0; i < k; i++) {
      v[i] = i < order.length ? xr[order[i]] : -Infinity;
      ix[i] = i < order.length ? order[i] : -1;
    }
  }
}

export function rowsum_f32(mem: ArrayBufferLike, x: number, y: number, d: number, row0: number, row1: number): void {
  const yv = f32(mem, y, row1);
  for (let r = row0; r < row1; r++) yv[r] = f32(mem, x + r * d * 4, d).reduce((a, b) => a + b, 0);
}
