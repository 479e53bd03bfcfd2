// Matrix kernels for float weights — f32, f16, bf16 — against an f32 activation (ABI: ../README.md).
//
// Matvec streams each row once with four independent f32x4 accumulators (16 elements a step): one
// sequential stream per thread is what the hardware prefetcher serves fastest.
// Matmul keeps a block of weight rows hot in cache and runs 2 rows × 4 tokens at a time, so one
// pass over the weights from memory serves every token.

import { scratchBytes, scratchPtr } from './scratch';
import { bf16, bf16hi, bf16lo, f16, f16_raw, f16hi, f16lo, f16scale4, fma, hsum, pow2f } from './simd';

/** Bytes of weight rows a matmul keeps in cache while the tokens pass over them. */
const MATMUL_BLOCK_BYTES: i32 = 256 * 1024;

// ---- one row · one activation ----------------------------------------------------------------

@inline function dotF32(w: usize, x: usize, k: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  const end16 = w + (<usize>(k & ~15) << 2);
  while (w < end16) {
    a0 = fma(a0, v128.load(w), v128.load(x));
    a1 = fma(a1, v128.load(w, 16), v128.load(x, 16));
    a2 = fma(a2, v128.load(w, 32), v128.load(x, 32));
    a3 = fma(a3, v128.load(w, 48), v128.load(x, 48));
    w += 64; x += 64;
  }
  const end4 = end16 + (<usize>(k & 12) << 2);
  while (w < end4) { a0 = fma(a0, v128.load(w), v128.load(x)); w += 16; x += 16; }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (let j = k & 3; j > 0; j--) { s += load<f32>(w) * load<f32>(x); w += 4; x += 4; }
  return s;
}

@inline function dotF16(w: usize, x: usize, k: i32): f32 {
  const sc = f16scale4();
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  const end16 = w + (<usize>(k & ~15) << 1);
  while (w < end16) {
    const v0 = v128.load(w), v1 = v128.load(w, 16);
    a0 = fma(a0, f16lo(v0, sc), v128.load(x));
    a1 = fma(a1, f16hi(v0, sc), v128.load(x, 16));
    a2 = fma(a2, f16lo(v1, sc), v128.load(x, 32));
    a3 = fma(a3, f16hi(v1, sc), v128.load(x, 48));
    w += 32; x += 64;
  }
  if (k & 8) {
    const v0 = v128.load(w);
    a0 = fma(a0, f16lo(v0, sc), v128.load(x));
    a1 = fma(a1, f16hi(v0, sc), v128.load(x, 16));
    w += 16; x += 32;
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (let j = k & 7; j > 0; j--) { s += f16(load<u16>(w)) * load<f32>(x); w += 2; x += 4; }
  return s;
}

@inline function dotBF16(w: usize, x: usize, k: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  const end16 = w + (<usize>(k & ~15) << 1);
  while (w < end16) {
    const v0 = v128.load(w), v1 = v128.load(w, 16);
    a0 = fma(a0, bf16lo(v0), v128.load(x));
    a1 = fma(a1, bf16hi(v0), v128.load(x, 16));
    a2 = fma(a2, bf16lo(v1), v128.load(x, 32));
    a3 = fma(a3, bf16hi(v1), v128.load(x, 48));
    w += 32; x += 64;
  }
  if (k & 8) {
    const v0 = v128.load(w);
    a0 = fma(a0, bf16lo(v0), v128.load(x));
    a1 = fma(a1, bf16hi(v0), v128.load(x, 16));
    w += 16; x += 32;
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (let j = k & 7; j > 0; j--) { s += bf16(load<u16>(w)) * load<f32>(x); w += 2; x += 4; }
  return s;
}

export function matvec_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const rb = <usize>k << 2;
  for (let r = row0; r < row1; r++) store<f32>(y + (<usize>r << 2), dotF32(w + <usize>r * rb, x, k));
}

// The f16 matvec widens without shuffles: in 32-bit lanes of half pairs, the high half shifted
// right (arithmetic) by 3 and masked is its raw f32 (the half · 2^−112, sign, exponent and mantissa
// in place), and so is the low half shifted up by 16 first. The lanes' f32 then hold elements
// {0,2,4,6} and {1,3,5,7} of each 8, and x is staged in that order.
const F16_RAW = memory.data<u32>([0x8FFFE000, 0x8FFFE000, 0x8FFFE000, 0x8FFFE000], 16);
@inline function f16evens(v: v128, m: v128): v128 { return v128.and(i32x4.shr_s(i32x4.shl(v, 16), 3), m); }
@inline function f16odds(v: v128, m: v128): v128 { return v128.and(i32x4.shr_s(v, 3), m); }

/**
 * As dotF16 for raw f16 bits against x' = x · 2^(112−e) staged per 8 as elements {0,2,4,6},
 * {1,3,5,7} (the last k % 8 as they are): no rescaling per weight. Eight accumulators: four would
 * leave the loop waiting on the fused multiply-adds' latency.
 */
@inline function dotF16Raw(w: usize, x: usize, k: i32): f32 {
  const m = v128.load(F16_RAW);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const end32 = w + (<usize>(k & ~31) << 1), end8 = w + (<usize>(k & ~7) << 1);
  while (w < end32) {
    const v0 = v128.load(w), v1 = v128.load(w, 16), v2 = v128.load(w, 32), v3 = v128.load(w, 48);
    a0 = fma(a0, f16evens(v0, m), v128.load(x)); a1 = fma(a1, f16odds(v0, m), v128.load(x, 16));
    a2 = fma(a2, f16evens(v1, m), v128.load(x, 32)); a3 = fma(a3, f16odds(v1, m), v128.load(x, 48));
    a4 = fma(a4, f16evens(v2, m), v128.load(x, 64)); a5 = fma(a5, f16odds(v2, m), v128.load(x, 80));
    a6 = fma(a6, f16evens(v3, m), v128.load(x, 96)); a7 = fma(a7, f16odds(v3, m), v128.load(x, 112));
    w += 64; x += 128;
  }
  while (w < end8) {
    const v0 = v128.load(w);
    a0 = fma(a0, f16evens(v0, m), v128.load(x)); a1 = fma(a1, f16odds(v0, m), v128.load(x, 16));
    w += 16; x += 32;
  }
  let s = hsum(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))));
  for (let j = k & 7; j > 0; j--) { s += f16_raw(load<u16>(w)) * load<f32>(x); w += 2; x += 4; }
  return s;
}

/**
 * The exponent shift e of the f16 matvec: x' = x · 2^(112−e) must stay finite, so e = 0 unless
 * max|x| ≥ 2^16. Raw half bits times x' is then the true product times 2^-e (exactly: both are
 * power-of-two rescalings), and the row sums are multiplied back by 2^e.
 */
@inline function f16Shift(x: usize, k: i32): i32 {
  let m = i32x4.splat(0);
  const abs = i32x4.splat(0x7FFFFFFF);
  let j = 0;
  for (; j + 4 <= k; j += 4) m = i32x4.max_u(m, v128.and(v128.load(x + (<usize>j << 2)), abs));
  let bits = max(max(i32x4.extract_lane(m, 0), i32x4.extract_lane(m, 1)), max(i32x4.extract_lane(m, 2), i32x4.extract_lane(m, 3)));
  for (; j < k; j++) bits = max(bits, load<i32>(x + (<usize>j << 2)) & 0x7FFFFFFF);
  return max(0, (bits >>> 23) - 142);
}

/** Stages k values of x for dotF16Raw in this thread's scratch: times `up`, reordered per 8. */
@inline function stageF16(x: usize, k: i32, up: f32): void {
  const xs = scratchPtr, vup = f32x4.splat(up);
  let j = 0;
  for (; j + 8 <= k; j += 8) {
    const o = <usize>j << 2, v0 = v128.load(x + o), v1 = v128.load(x + o, 16);
    v128.store(xs + o, f32x4.mul(v128.shuffle<f32>(v0, v1, 0, 2, 4, 6), vup));
    v128.store(xs + o, f32x4.mul(v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), vup), 16);
  }
  for (; j < k; j++) store<f32>(xs + (<usize>j << 2), load<f32>(x + (<usize>j << 2)) * up);
}

// With room in this thread's scratch, x is staged once per call (stageF16) so the inner loop skips
// the per-weight multiply by 2^112 (f16 widening is what bounds this kernel).
export function matvec_f16(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const rb = <usize>k << 1;
  if (<usize>k << 2 > scratchBytes) {
    for (let r = row0; r < row1; r++) store<f32>(y + (<usize>r << 2), dotF16(w + <usize>r * rb, x, k));
    return;
  }
  const e = f16Shift(x, k), down = pow2f(e);
  stageF16(x, k, pow2f(112 - e));
  for (let r = row0; r < row1; r++) store<f32>(y + (<usize>r << 2), dotF16Raw(w + <usize>r * rb, scratchPtr, k) * down);
}

export function matvec_bf16(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const rb = <usize>k << 1;
  for (let r = row0; r < row1; r++) store<f32>(y + (<usize>r << 2), dotBF16(w + <usize>r * rb, x, k));
}

// Column panels (CpuTensor.panel): panel p holds every row's columns [p·panel, p·panel + width),
// row after row, at w + rows · p·panel halves. A matvec whose x outgrows what L1 keeps beside the
// streaming weights reads it one panel at a time, while the weights still stream in order
// (synthetic 1.1B ffn_down, k = 5632, one thread: ≈ 14 → 20–23 GB/s). Panels are multiples of 8
// columns (at most the 65536 a thread's scratch stages at once). Kept apart from the plain kernels:
// V8 spilled the plain loop's accumulators when both lived in one function.
@inline function panelSum(y: usize, r: i32, first: bool, d: f32): void {
  const yr = y + (<usize>r << 2);
  store<f32>(yr, first ? d : load<f32>(yr) + d);
}

export function matvec_f16_panels(w: usize, rows: i32, panel: i32, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const e = f16Shift(x, k);
  for (let c0 = 0; c0 < k; c0 += panel) {
    const width = min(panel, k - c0);
    stageF16(x + (<usize>c0 << 2), width, pow2f(112 - e));
    f16_panel_rows(w + <usize>rows * (<usize>c0 << 1), y, width, e, c0 == 0, row0, row1);
  }
}

/**
 * Rows [row0, row1) of one f16 panel (rows of `width`, x staged) into y. Exported only so that it
 * stays a function of its own (the optimizer inlines a one-caller function unless exported): in the
 * panel loop, V8 spilled its accumulators on every step (80 % of the plain kernel's speed).
 */
export function f16_panel_rows(wp: usize, y: usize, width: i32, e: i32, first: bool, row0: i32, row1: i32): void {
  const rb = <usize>width << 1, down = pow2f(e);
  for (let r = row0; r < row1; r++) panelSum(y, r, first, dotF16Raw(wp + <usize>r * rb, scratchPtr, width) * down);
}

export function matvec_bf16_panels(w: usize, rows: i32, panel: i32, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  for (let c0 = 0; c0 < k; c0 += panel) {
    const width = min(panel, k - c0), rb = <usize>width << 1, wp = w + <usize>rows * (<usize>c0 << 1);
    const xp = x + (<usize>c0 << 2);
    for (let r = row0; r < row1; r++) panelSum(y, r, c0 == 0, dotBF16(wp + <usize>r * rb, xp, width));
  }
}

// ---- matmul: f32 tiles of 2 rows × 4 tokens -----------------------------------------------------
//
// f32 weights are tiled in place; f16 and bf16 rows are first widened to f32 in this thread's
// scratch, a panel of rows at a time, and the same f32 tiles run over the panel: each weight is
// widened once per call instead of once per four tokens, and the inner loop is loads and fused
// multiply-adds only (widening in the loop, with its constants, left it at a third of this speed).

/** Writes row `w` · tokens x0..x3 (each `k` f32, `xs` bytes apart) to y0..y3 (`ys` bytes apart). */
@inline function dot4F32(w: usize, x: usize, xs: usize, y: usize, ys: usize, k: i32): void {
  let a0 = f32x4.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  const end8 = w + (<usize>(k & ~7) << 2);
  while (w < end8) {
    const w0 = v128.load(w), w1 = v128.load(w, 16);
    a0 = fma(a0, w0, v128.load(x)); b0 = fma(b0, w1, v128.load(x, 16));
    a1 = fma(a1, w0, v128.load(x + xs)); b1 = fma(b1, w1, v128.load(x + xs, 16));
    a2 = fma(a2, w0, v128.load(x + 2 * xs)); b2 = fma(b2, w1, v128.load(x + 2 * xs, 16));
    a3 = fma(a3, w0, v128.load(x + 3 * xs)); b3 = fma(b3, w1, v128.load(x + 3 * xs, 16));
    w += 32; x += 32;
  }
  if (k & 4) {
    const w0 = v128.load(w);
    a0 = fma(a0, w0, v128.load(x)); a1 = fma(a1, w0, v128.load(x + xs));
    a2 = fma(a2, w0, v128.load(x + 2 * xs)); a3 = fma(a3, w0, v128.load(x + 3 * xs));
    w += 16; x += 16;
  }
  let s0 = hsum(f32x4.add(a0, b0)), s1 = hsum(f32x4.add(a1, b1));
  let s2 = hsum(f32x4.add(a2, b2)), s3 = hsum(f32x4.add(a3, b3));
  for (let j = k & 3; j > 0; j--) {
    const v = load<f32>(w);
    s0 += v * load<f32>(x); s1 += v * load<f32>(x + xs);
    s2 += v * load<f32>(x + 2 * xs); s3 += v * load<f32>(x + 3 * xs);
    w += 4; x += 4;
  }
  store<f32>(y, s0); store<f32>(y + ys, s1); store<f32>(y + 2 * ys, s2); store<f32>(y + 3 * ys, s3);
}

/**
 * f32 rows w and w + rb · tokens x0..x3 (`xs` bytes apart) into y (tokens `ys` bytes apart, rows 4):
 * eight accumulators, so each weight vector is used four times and each x vector twice.
 */
@inline function dot2x4(w: usize, rb: usize, x: usize, xs: usize, y: usize, ys: usize, k: i32): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const end4 = w + (<usize>(k & ~3) << 2);
  while (w < end4) {
    const u = v128.load(w), v = v128.load(w + rb);
    let xv = v128.load(x); a0 = fma(a0, u, xv); b0 = fma(b0, v, xv);
    xv = v128.load(x + xs); a1 = fma(a1, u, xv); b1 = fma(b1, v, xv);
    xv = v128.load(x + 2 * xs); a2 = fma(a2, u, xv); b2 = fma(b2, v, xv);
    xv = v128.load(x + 3 * xs); a3 = fma(a3, u, xv); b3 = fma(b3, v, xv);
    w += 16; x += 16;
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  let t0 = hsum(b0), t1 = hsum(b1), t2 = hsum(b2), t3 = hsum(b3);
  for (let j = k & 3; j > 0; j--) {
    const u = load<f32>(w), v = load<f32>(w + rb);
    let xv = load<f32>(x); s0 += u * xv; t0 += v * xv;
    xv = load<f32>(x + xs); s1 += u * xv; t1 += v * xv;
    xv = load<f32>(x + 2 * xs); s2 += u * xv; t2 += v * xv;
    xv = load<f32>(x + 3 * xs); s3 += u * xv; t3 += v * xv;
    w += 4; x += 4;
  }
  store<f32>(y, s0); store<f32>(y + ys, s1); store<f32>(y + 2 * ys, s2); store<f32>(y + 3 * ys, s3);
  store<f32>(y, t0, 4); store<f32>(y + ys, t1, 4); store<f32>(y + 2 * ys, t2, 4); store<f32>(y + 3 * ys, t3, 4);
}

/** Every token against f32 rows [r0, r1) of w (row r at w + r · 4k): tiles of 2 rows × 4 tokens. */
@inline function tilesF32(w: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, r0: i32, r1: i32): void {
  const rb = <usize>k << 2, xs = rb, ys = <usize>ldy << 2;
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const xt = x + <usize>t * xs, yt = y + <usize>t * ys;
    let r = r0;
    for (; r + 2 <= r1; r += 2) dot2x4(w + <usize>r * rb, rb, xt, xs, yt + (<usize>r << 2), ys, k);
    if (r < r1) dot4F32(w + <usize>r * rb, xt, xs, yt + (<usize>r << 2), ys, k);
  }
  for (; t < n; t++) {
    const xt = x + <usize>t * xs, yt = y + <usize>t * ys;
    for (let r = r0; r < r1; r++) store<f32>(yt + (<usize>r << 2), dotF32(w + <usize>r * rb, xt, k));
  }
}

export function matmul_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const block = max(1, MATMUL_BLOCK_BYTES / (k << 2));
  for (let r0 = row0; r0 < row1; r0 += block) tilesF32(w, x, y, k, n, ldy, r0, min(r0 + block, row1));
}

/** `count` halves (f16, or bf16 when `bf`) at h widened to f32 at p. */
@inline function widenHalves(bf: bool, h: usize, count: usize, p: usize): void {
  const sc = f16scale4(), end8 = h + ((count & ~7) << 1);
  while (h < end8) {
    const v = v128.load(h);
    v128.store(p, bf ? bf16lo(v) : f16lo(v, sc));
    v128.store(p, bf ? bf16hi(v) : f16hi(v, sc), 16);
    h += 16; p += 32;
  }
  for (let j = count & 7; j > 0; j--) {
    store<f32>(p, bf ? bf16(load<u16>(h)) : f16(load<u16>(h)));
    h += 2; p += 4;
  }
}

// Widened panels of rows in scratch (see above); under four tokens (where widening costs more than
// it saves) or without room for one row, a dot per row and token over cache-sized blocks of rows.
@inline function matmulHalf(bf: bool, w: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const hb = <usize>k << 1, fb = <usize>k << 2;
  const panel = <i32>(min(scratchBytes, <usize>MATMUL_BLOCK_BYTES) / fb);
  if (n < 4 || panel < 1) {
    const ys = <usize>ldy << 2, block = max(1, MATMUL_BLOCK_BYTES / (k << 1));
    for (let r0 = row0; r0 < row1; r0 += block) {
      const r1 = min(r0 + block, row1);
      for (let t = 0; t < n; t++) {
        const xt = x + <usize>t * fb, yt = y + <usize>t * ys;
        for (let r = r0; r < r1; r++) store<f32>(yt + (<usize>r << 2), bf ? dotBF16(w + <usize>r * hb, xt, k) : dotF16(w + <usize>r * hb, xt, k));
      }
    }
    return;
  }
  for (let r0 = row0; r0 < row1; r0 += panel) {
    const m = min(panel, row1 - r0);
    widenHalves(bf, w + <usize>r0 * hb, <usize>m * <usize>k, scratchPtr);
    tilesF32(scratchPtr, x, y + (<usize>r0 << 2), k, n, ldy, 0, m);
  }
}

export function matmul_f16(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulHalf(false, w, x, y, k, n, ldy, row0, row1);
}

export function matmul_bf16(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulHalf(true, w, x, y, k, n, ldy, row0, row1);
}
