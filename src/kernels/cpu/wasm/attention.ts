// Causal grouped-query attention over a KV cache, and the f32 → cache-dtype row stores that fill it.
// Same conventions as the ops (../README.md): pointers into the shared memory, f32 activations,
// the work-row range [row0, row1) last. Backend ops: copy() and attention() (../../backend.ts).
//
// One work row is one (token, head) pair: r = t · heads + h, so the pool splits a decode step
// across heads and a prefill across tokens and heads alike. Query head h reads KV head
// h / (heads / kvHeads), as llama.cpp broadcasts K and V over a group. Token t sits at cache
// position p = start + t and sees positions lo … p, lo = max(0, p − window + 1) (window 0: all).
//
// Positions go in tiles of up to TILE: the tile's scores are staged in the thread's scratch, a new
// maximum rescales what was summed so far (the online softmax), and V is accumulated 16 channels at
// a time in registers, so each output channel is loaded and stored once per tile, not per
// position; the scores' exponentials are taken four at a time (exp4, as ggml's softmax does with
// its vector expf). Without room in the scratch for one tile, a one-position-at-a-time path does
// the same.

import { scratchBytes, scratchPtr } from './scratch';
import { exp4, f16, f16hi, f16lo, f16scale4, fma, hsum } from './simd';

/** Positions per tile: 1 KiB of scores. */
const TILE: i32 = 256;

@inline function dotF32(a: usize, b: usize, d: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0;
  let j = 0;
  for (; j + 8 <= d; j += 8) {
    const o = <usize>j << 2;
    a0 = fma(a0, v128.load(a + o), v128.load(b + o));
    a1 = fma(a1, v128.load(a + o, 16), v128.load(b + o, 16));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; j < d; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

/** q (f32) · k (f16 bits). */
@inline function dotF16(q: usize, k: usize, d: i32): f32 {
  const sc = f16scale4();
  let a0 = f32x4.splat(0), a1 = a0;
  let j = 0;
  for (; j + 8 <= d; j += 8) {
    const v = v128.load(k + (<usize>j << 1));
    a0 = fma(a0, v128.load(q + (<usize>j << 2)), f16lo(v, sc));
    a1 = fma(a1, v128.load(q + (<usize>j << 2), 16), f16hi(v, sc));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; j < d; j++) s += load<f32>(q + (<usize>j << 2)) * f16(load<u16>(k + (<usize>j << 1)));
  return s;
}

/** y += e · v, v f32 (the one-position path). */
@inline function axpyF32(y: usize, e: f32, v: usize, d: i32): void {
  const ve = f32x4.splat(e);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(y + o, fma(v128.load(y + o), v128.load(v + o), ve)); }
  for (; j < d; j++) { const o = <usize>j << 2; store<f32>(y + o, load<f32>(y + o) + e * load<f32>(v + o)); }
}

/** y += e · v, v f16 bits (the one-position path). */
@inline function axpyF16(y: usize, e: f32, v: usize, d: i32): void {
  const sc = f16scale4(), ve = f32x4.splat(e);
  let j = 0;
  for (; j + 8 <= d; j += 8) {
    const o = <usize>j << 2, h = v128.load(v + (<usize>j << 1));
    v128.store(y + o, fma(v128.load(y + o), f16lo(h, sc), ve));
    v128.store(y + o, fma(v128.load(y + o, 16), f16hi(h, sc), ve), 16);
  }
  for (; j < d; j++) { const o = <usize>j << 2; store<f32>(y + o, load<f32>(y + o) + e * f16(load<u16>(v + (<usize>j << 1)))); }
}

/** y *= c. */
@inline function scaleRow(y: usize, c: f32, d: i32): void {
  const vc = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(y + o, f32x4.mul(v128.load(y + o), vc)); }
  for (; j < d; j++) { const o = <usize>j << 2; store<f32>(y + o, load<f32>(y + o) * c); }
}

/** y += Σ_i e[i] · V[i] over n rows of V (row stride `stride` bytes), channels in registers. */
@inline function accumulate(half: i32, y: usize, e: usize, n: i32, v: usize, stride: usize, d: i32): void {
  const sc = f16scale4();
  const eb: usize = half ? 2 : 4;
  let c = 0;
  for (; c + 16 <= d; c += 16) {
    const yc = y + (<usize>c << 2);
    let a0 = v128.load(yc), a1 = v128.load(yc, 16), a2 = v128.load(yc, 32), a3 = v128.load(yc, 48);
    let vp = v + <usize>c * eb;
    for (let i = 0; i < n; i++) {
      const w = f32x4.splat(load<f32>(e + (<usize>i << 2)));
      if (half) {
        const h0 = v128.load(vp), h1 = v128.load(vp, 16);
        a0 = fma(a0, f16lo(h0, sc), w); a1 = fma(a1, f16hi(h0, sc), w);
        a2 = fma(a2, f16lo(h1, sc), w); a3 = fma(a3, f16hi(h1, sc), w);
      } else {
        a0 = fma(a0, v128.load(vp), w); a1 = fma(a1, v128.load(vp, 16), w);
        a2 = fma(a2, v128.load(vp, 32), w); a3 = fma(a3, v128.load(vp, 48), w);
      }
      vp += stride;
    }
    v128.store(yc, a0); v128.store(yc, a1, 16); v128.store(yc, a2, 32); v128.store(yc, a3, 48);
  }
  for (; c + 8 <= d; c += 8) {
    const yc = y + (<usize>c << 2);
    let a0 = v128.load(yc), a1 = v128.load(yc, 16);
    let vp = v + <usize>c * eb;
    for (let i = 0; i < n; i++) {
      const w = f32x4.splat(load<f32>(e + (<usize>i << 2)));
      if (half) {
        const h0 = v128.load(vp);
        a0 = fma(a0, f16lo(h0, sc), w); a1 = fma(a1, f16hi(h0, sc), w);
      } else {
        a0 = fma(a0, v128.load(vp), w); a1 = fma(a1, v128.load(vp, 16), w);
      }
      vp += stride;
    }
    v128.store(yc, a0); v128.store(yc, a1, 16);
  }
  for (; c < d; c++) {
    let a = load<f32>(y + (<usize>c << 2));
    let vp = v + <usize>c * eb;
    for (let i = 0; i < n; i++) {
      a += load<f32>(e + (<usize>i << 2)) * (half ? f16(load<u16>(vp)) : load<f32>(vp));
      vp += stride;
    }
    store<f32>(y + (<usize>c << 2), a);
  }
}

// half: 0 = f32 cache, 1 = f16 cache (element bytes 4 or 2).
@inline function attention(half: i32, q: usize, k: usize, v: usize, out: usize, heads: i32, kvHeads: i32, headDim: i32,
  start: i32, window: i32, scale: f32, row0: i32, row1: i32): void {
  const group = heads / kvHeads;
  const eb: usize = half ? 2 : 4;
  const kvRow = <usize>(kvHeads * headDim) * eb;
  const tile = min(TILE, <i32>(scratchBytes >> 2));
  const buf = scratchPtr;
  for (let r = row0; r < row1; r++) {
    const t = r / heads, h = r % heads;
    const p = start + t;
    const lo = window > 0 ? max(0, p - window + 1) : 0;
    const qr = q + (<usize>r * <usize>headDim << 2), o = out + (<usize>r * <usize>headDim << 2);
    memory.fill(o, 0, <usize>headDim << 2);
    const off = <usize>((h / group) * headDim) * eb;
    let m = -Infinity as f32, sum: f32 = 0;
    if (tile > 0) {
      for (let j0 = lo; j0 <= p; j0 += tile) {
        const n = min(tile, p + 1 - j0);
        let kp = k + <usize>j0 * kvRow + off;
        let tmax = -Infinity as f32;
        for (let i = 0; i < n; i++) {
          const s = scale * (half ? dotF16(qr, kp, headDim) : dotF32(qr, kp, headDim));
          store<f32>(buf + (<usize>i << 2), s);
          tmax = max(tmax, s);
          kp += kvRow;
        }
        if (tmax > m) {
          const c = Mathf.exp(m - tmax);
          sum *= c;
          if (j0 > lo) scaleRow(o, c, headDim);
          m = tmax;
        }
        const vm = f32x4.splat(m);
        let sum4 = f32x4.splat(0), i = 0;
        for (; i + 4 <= n; i += 4) {
          const e = exp4(f32x4.sub(v128.load(buf + (<usize>i << 2)), vm));
          v128.store(buf + (<usize>i << 2), e);
          sum4 = f32x4.add(sum4, e);
        }
        for (; i < n; i++) {
          const e = Mathf.exp(load<f32>(buf + (<usize>i << 2)) - m);
          store<f32>(buf + (<usize>i << 2), e);
          sum += e;
        }
        sum += hsum(sum4);
        accumulate(half, o, buf, n, v + <usize>j0 * kvRow + off, kvRow, headDim);
      }
    } else {
      let kp = k + <usize>lo * kvRow + off, vp = v + <usize>lo * kvRow + off;
      for (let j = lo; j <= p; j++) {
        const s = scale * (half ? dotF16(qr, kp, headDim) : dotF32(qr, kp, headDim));
        if (s > m) { const c = Mathf.exp(m - s); sum *= c; scaleRow(o, c, headDim); m = s; }
        const e = Mathf.exp(s - m);
        sum += e;
        if (half) axpyF16(o, e, vp, headDim); else axpyF32(o, e, vp, headDim);
        kp += kvRow; vp += kvRow;
      }
    }
    scaleRow(o, <f32>1.0 / sum, headDim);
  }
}

/**
 * out[t, h] = Σ_j softmax_j(scale · q[t, h] · K[j, g]) · V[j, g] over the visible positions j, for
 * q and out [n, heads · headDim] f32 and the caches [capacity, kvHeads · headDim] f32; rows r of
 * the n · heads (token, head) pairs in [row0, row1).
 */
export function attention_f32(q: usize, k: usize, v: usize, out: usize, heads: i32, kvHeads: i32, headDim: i32,
  start: i32, window: i32, scale: f32, row0: i32, row1: i32): void {
  attention(0, q, k, v, out, heads, kvHeads, headDim, start, window, scale, row0, row1);
}

/** attention_f32 over f16 caches (stored as u16 bits). */
export function attention_f16(q: usize, k: usize, v: usize, out: usize, heads: i32, kvHeads: i32, headDim: i32,
  start: i32, window: i32, scale: f32, row0: i32, row1: i32): void {
  attention(1, q, k, v, out, heads, kvHeads, headDim, start, window, scale, row0, row1);
}

// ---- stores into the cache: y[r] = x[r] in the cache's dtype -----------------------------------

export function copy_f32_f32(x: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  const rb = <usize>d << 2;
  memory.copy(y + <usize>row0 * rb, x + <usize>row0 * rb, <usize>(row1 - row0) * rb);
}

/** f32 → binary16 bits, rounded to nearest even; overflow gives ±inf, NaN stays NaN. */
@inline function toF16(b: u32): u16 {
  const sign = (b >>> 16) & 0x8000;
  const exp = <i32>((b >>> 23) & 0xff);
  let mant = b & 0x7fffff;
  if (exp == 0xff) return <u16>(sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0));
  const e = exp - 112;
  if (e >= 31) return <u16>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return <u16>sign;
    mant |= 0x800000;
    const shift = <u32>(14 - e);
    const half = <u32>1 << (shift - 1);
    let q = mant >>> shift;
    const rem = mant & ((<u32>1 << shift) - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return <u16>(sign | q);
  }
  let q = (<u32>e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
  return <u16>(sign | q);
}

export function copy_f32_f16(x: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  const end = <usize>row1 * <usize>d;
  for (let i = <usize>row0 * <usize>d; i < end; i++) store<u16>(y + (i << 1), toF16(load<u32>(x + (i << 2))));
}
