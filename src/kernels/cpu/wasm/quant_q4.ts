// Q4_0 (18 B per 32: f16 d, 16 B nibbles) against q8_0 activations and Q4_1 (20 B: f16 d, f16 m,
// 16 B nibbles) against q8_1, as ggml_vec_dot_q4_0_q8_0 / _q4_1_q8_1. Byte j holds element j in its
// low nibble and element j + 16 in its high nibble; the nibble planes (quant_common.ts) meet the
// activation planes without unpacking. Q4_0's −8 is taken off as 8 · Σx per block (shared by the
// four rows); Q4_1's min adds m · s, s = the q8_1 block's d · Σq. The relaxed build dots the
// nibbles as u7 bytes against the activation bytes directly (dotU7, quant_common.ts).
import {
  LOW_NIBBLES, NIB0, NIB1, NIB2, TWO_104, TWO_112, dotHi, dotLo, dotU7, half, halfRaw, hsum4f, hsum4i, madd, matmulRows,
  matmulTiled, matvecRows, scaleAdd, storeTokens, widenPairs,
  xe16, xe256, xo, xo256,
} from './quant_common';

/** i16 lanes 8, 2048, 128: turn the four activation planes into 256 · 8 · x. */
const OFFSET = memory.data<u16>([8, 8, 8, 8, 8, 8, 8, 8, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 128, 128, 128, 128, 128, 128, 128, 128], 16);

@inline function rowQ4_0(a: v128, p: usize, e256: v128, o: v128, e16: v128, o256: v128, off: v128, dx: f32): v128 {
  const q = v128.load(p, 2);
  return scaleAdd(a, i32x4.sub(i32x4.add(dotLo(q, e256, o), dotHi(q, e16, o256)), off), halfRaw(p) * dx);
}

/** Bytes 8: dotU7(x, EIGHTS) is 8 · (x pair sums), Q4_0's −8 in the relaxed build. */
const EIGHTS = memory.data<u8>([8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 16);

/** Relaxed: the nibbles as u7 bytes against the activation bytes, i16 pair sums minus 8·Σx pairs. */
@inline function rowQ4_0r(a: v128, p: usize, x0: v128, x1: v128, off: v128, dx: f32): v128 {
  const q = v128.load(p, 2), nib = v128.load(LOW_NIBBLES);
  const s = i16x8.sub(i16x8.add(dotU7(x0, v128.and(q, nib)), dotU7(x1, v128.and(i16x8.shr_u(q, 4), nib))), off);
  return scaleAdd(a, widenPairs(s), halfRaw(p) * dx);
}

function dot4_q4_0(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return dot4_q4_0r(w, r0, r1, r2, r3, x, k);
  const nb = <usize>(k >> 5), rb = nb * 18;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 34, o = b * 18;
    const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
    const e256 = xe256(v0), od = xo(v0), e16 = xe16(v1), o256 = xo256(v1);
    // 256 · 8 · Σx, from the same planes.
    const off = i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(e256, v128.load(OFFSET)), i32x4.dot_i16x8_s(od, v128.load(OFFSET, 16))),
      i32x4.add(i32x4.dot_i16x8_s(e16, v128.load(OFFSET, 32)), i32x4.dot_i16x8_s(o256, v128.load(OFFSET))));
    const dx = half(xb) * TWO_104;
    a0 = rowQ4_0(a0, w0 + o, e256, od, e16, o256, off, dx);
    a1 = rowQ4_0(a1, w1 + o, e256, od, e16, o256, off, dx);
    a2 = rowQ4_0(a2, w2 + o, e256, od, e16, o256, off, dx);
    a3 = rowQ4_0(a3, w3 + o, e256, od, e16, o256, off, dx);
  }
  return hsum4f(a0, a1, a2, a3);
}

// |lane| ≤ 2 · 15 · 127 per dot, 2 · that after the add, 8 · 127 · 4 for off: all far inside i16.
@inline function dot4_q4_0r(w: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32): v128 {
  const nb = <usize>(k >> 5), rb = nb * 18;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 34, o = b * 18;
    const x0 = v128.load(xb, 2), x1 = v128.load(xb, 18), e = v128.load(EIGHTS);
    const off = i16x8.add(dotU7(x0, e), dotU7(x1, e));
    const dx = half(xb) * TWO_112;
    a0 = rowQ4_0r(a0, w0 + o, x0, x1, off, dx);
    a1 = rowQ4_0r(a1, w1 + o, x0, x1, off, dx);
    a2 = rowQ4_0r(a2, w2 + o, x0, x1, off, dx);
    a3 = rowQ4_0r(a3, w3 + o, x0, x1, off, dx);
  }
  return hsum4f(a0, a1, a2, a3);
}

// ---- Q4_0 matmul tiles (quant_common.ts matmulTiled) ------------------------------------------------
//
// Staged per block of four tokens: the baseline build keeps each token's planes e256, od, e16, o256
// (64 B), then the four tokens' 256 · 8 · Σx as i32 (16 B) and d_x / 256 · 2^112 as f32 (16 B);
// the relaxed build keeps each token's 32 activation bytes (32 B), then 8 · Σx and d_x · 2^112.
const TILE: usize = 4 * 64 + 32, TILE_R: usize = 4 * 32 + 32;

/** Σ of the four i32 lanes. */
@inline function lanesSum(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

function prep4_q4_0(x: usize, xs: usize, p: usize, k: i32): void {
  const nb = <usize>(k >> 5);
  for (let t: usize = 0; t < 4; t++) {
    let xb = x + t * xs, q = p + t * 64, s = p + 256 + (t << 2);
    for (let b: usize = 0; b < nb; b++) {
      const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
      const e256 = xe256(v0), od = xo(v0), e16 = xe16(v1), o256 = xo256(v1);
      v128.store(q, e256); v128.store(q, od, 16); v128.store(q, e16, 32); v128.store(q, o256, 48);
      store<i32>(s, lanesSum(i32x4.add(
        i32x4.add(i32x4.dot_i16x8_s(e256, v128.load(OFFSET)), i32x4.dot_i16x8_s(od, v128.load(OFFSET, 16))),
        i32x4.add(i32x4.dot_i16x8_s(e16, v128.load(OFFSET, 32)), i32x4.dot_i16x8_s(o256, v128.load(OFFSET))))));
      store<f32>(s, half(xb) * TWO_104, 16);
      xb += 34; q += TILE; s += TILE;
    }
  }
}

/** 256 · the nibble block dot of q's planes (lo0, lo2, hi1, hi3) with the token planes at p, as i32x4 partial sums. */
@inline function nibDot(lo0: v128, lo2: v128, hi1: v128, hi3: v128, p: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(lo0, v128.load(p)), i32x4.dot_i16x8_s(lo2, v128.load(p, 16))),
    i32x4.add(i32x4.dot_i16x8_s(hi1, v128.load(p, 32)), i32x4.dot_i16x8_s(hi3, v128.load(p, 48))));
}

/** acc + (the block dots of the Q4_0 block at w with the four staged tokens at p) · d_w · d_x, lane = token. */
@inline function rowTileQ4_0(acc: v128, w: usize, p: usize, n0: v128, n2: v128, n1: v128): v128 {
  const q = v128.load(w, 2);
  const lo0 = v128.and(q, n0), lo2 = v128.and(q, n2), hi1 = v128.and(q, n1), hi3 = i16x8.shr_u(q, 12);
  const s = i32x4.sub(hsum4i(nibDot(lo0, lo2, hi1, hi3, p), nibDot(lo0, lo2, hi1, hi3, p + 64),
    nibDot(lo0, lo2, hi1, hi3, p + 128), nibDot(lo0, lo2, hi1, hi3, p + 192)), v128.load(p, 256));
  return madd(f32x4.convert_i32x4_s(s), f32x4.mul(f32x4.splat(halfRaw(w)), v128.load(p, 272)), acc);
}

function tile2x4_q4_0(w0: usize, w1: usize, p: usize, k: i32, y: usize, ys: usize, two: bool): void {
  const end = p + <usize>(k >> 5) * TILE, n0 = v128.load(NIB0), n2 = v128.load(NIB2), n1 = v128.load(NIB1);
  let a = f32x4.splat(0), b = a;
  for (let q = p; q < end; q += TILE) {
    a = rowTileQ4_0(a, w0, q, n0, n2, n1);
    b = rowTileQ4_0(b, w1, q, n0, n2, n1);
    w0 += 18; w1 += 18;
  }
  storeTokens(y, ys, a);
  if (two) storeTokens(y + 4, ys, b);
}

function prep4_q4_0r(x: usize, xs: usize, p: usize, k: i32): void {
  const nb = <usize>(k >> 5), e = v128.load(EIGHTS);
  for (let t: usize = 0; t < 4; t++) {
    let xb = x + t * xs, q = p + t * 32, s = p + 128 + (t << 2);
    for (let b: usize = 0; b < nb; b++) {
      const x0 = v128.load(xb, 2), x1 = v128.load(xb, 18);
      v128.store(q, x0); v128.store(q, x1, 16);
      store<i32>(s, lanesSum(widenPairs(i16x8.add(dotU7(x0, e), dotU7(x1, e)))));
      store<f32>(s, half(xb) * TWO_112, 16);
      xb += 34; q += TILE_R; s += TILE_R;
    }
  }
}

/**
 * acc + (the Q4_0 block at w against the four staged tokens at p) · d_w · d_x, lane = token. The
 * four tokens' i16 pair sums are folded together in i16 before one widening: a lane of one token's
 * sum is |x·u + x·u| ≤ 2 · 128 · 15 per dot, 2 of them per block, 4 lanes folded: ≤ 30720.
 */
@inline function rowTileQ4_0r(acc: v128, w: usize, p: usize, nib: v128): v128 {
  const q = v128.load(w, 2);
  const lo = v128.and(q, nib), hi = v128.and(i16x8.shr_u(q, 4), nib);
  const s0 = i16x8.add(dotU7(v128.load(p), lo), dotU7(v128.load(p, 16), hi));
  const s1 = i16x8.add(dotU7(v128.load(p, 32), lo), dotU7(v128.load(p, 48), hi));
  const s2 = i16x8.add(dotU7(v128.load(p, 64), lo), dotU7(v128.load(p, 80), hi));
  const s3 = i16x8.add(dotU7(v128.load(p, 96), lo), dotU7(v128.load(p, 112), hi));
  // i32 lanes hold i16 pairs: fold as hsum4i does, in i16, then widen the last pairs.
  const s01 = i16x8.add(v128.shuffle<i32>(s0, s1, 0, 1, 4, 5), v128.shuffle<i32>(s0, s1, 2, 3, 6, 7));
  const s23 = i16x8.add(v128.shuffle<i32>(s2, s3, 0, 1, 4, 5), v128.shuffle<i32>(s2, s3, 2, 3, 6, 7));
  const s = widenPairs(i16x8.add(v128.shuffle<i32>(s01, s23, 0, 2, 4, 6), v128.shuffle<i32>(s01, s23, 1, 3, 5, 7)));
  return madd(f32x4.convert_i32x4_s(i32x4.sub(s, v128.load(p, 128))), f32x4.mul(f32x4.splat(halfRaw(w)), v128.load(p, 144)), acc);
}

function tile2x4_q4_0r(w0: usize, w1: usize, p: usize, k: i32, y: usize, ys: usize, two: bool): void {
  const end = p + <usize>(k >> 5) * TILE_R, nib = v128.load(LOW_NIBBLES);
  let a = f32x4.splat(0), b = a;
  for (let q = p; q < end; q += TILE_R) {
    a = rowTileQ4_0r(a, w0, q, nib);
    b = rowTileQ4_0r(b, w1, q, nib);
    w0 += 18; w1 += 18;
  }
  storeTokens(y, ys, a);
  if (two) storeTokens(y + 4, ys, b);
}

@inline function rowQ4_1(a: v128, p: usize, e256: v128, o: v128, e16: v128, o256: v128, dx: f32): v128 {
  const q = v128.load(p, 4);
  return scaleAdd(a, i32x4.add(dotLo(q, e256, o), dotHi(q, e16, o256)), halfRaw(p) * dx);
}

function dot4_q4_1(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 5), rb = nb * 20;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let m0: f32 = 0, m1: f32 = 0, m2: f32 = 0, m3: f32 = 0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 36, o = b * 20;
    const v0 = v128.load(xb, 4), v1 = v128.load(xb, 20);
    const e256 = xe256(v0), od = xo(v0), e16 = xe16(v1), o256 = xo256(v1);
    const dx = half(xb) * TWO_104, s = half(xb + 2) * TWO_112;
    a0 = rowQ4_1(a0, w0 + o, e256, od, e16, o256, dx); m0 += halfRaw(w0 + o + 2) * s;
    a1 = rowQ4_1(a1, w1 + o, e256, od, e16, o256, dx); m1 += halfRaw(w1 + o + 2) * s;
    a2 = rowQ4_1(a2, w2 + o, e256, od, e16, o256, dx); m2 += halfRaw(w2 + o + 2) * s;
    a3 = rowQ4_1(a3, w3 + o, e256, od, e16, o256, dx); m3 += halfRaw(w3 + o + 2) * s;
  }
  return f32x4.add(hsum4f(a0, a1, a2, a3), f32x4(m0, m1, m2, m3));
}

export function matvec_q4_0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q4_0, w, scale, x, y, k, row0, row1);
}
export function matmul_q4_0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const nb = <usize>(k >> 5);
  if (ASC_FEATURE_RELAXED_SIMD) {
    matmulTiled(prep4_q4_0r, nb * TILE_R, tile2x4_q4_0r, dot4_q4_0, nb * 18, nb * 34, w, scale, x, y, k, n, ldy, row0, row1);
  } else {
    matmulTiled(prep4_q4_0, nb * TILE, tile2x4_q4_0, dot4_q4_0, nb * 18, nb * 34, w, scale, x, y, k, n, ldy, row0, row1);
  }
}
export function matvec_q4_1(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q4_1, w, scale, x, y, k, row0, row1);
}
export function matmul_q4_1(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q4_1, <usize>(k >> 5) * 20, <usize>(k >> 5) * 36, w, scale, x, y, k, n, ldy, row0, row1);
}
