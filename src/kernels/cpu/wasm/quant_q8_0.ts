// Q8_0 weights (34 B per 32: f16 d, 32 × i8) against q8_0 activations, as ggml_vec_dot_q8_0_q8_0:
// y = Σ_blocks d_w · d_x · Σ w·x, the inner sum exact in i32, the scales in f32.
import {
  ODD_BYTE, TWO_104, dotBytes, half, halfRaw, hsum4f, madd, matmulTiled, matvecRows, scaleAdd, storeTokens, xe, xo,
} from './quant_common';

const BLOCK: usize = 34;

@inline function rowDot(a: v128, p: usize, e0: v128, o0: v128, e1: v128, o1: v128, dx: f32): v128 {
  return scaleAdd(a, i32x4.add(dotBytes(v128.load(p, 2), e0, o0), dotBytes(v128.load(p, 18), e1, o1)), halfRaw(p) * dx);
}

function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const rb = <usize>(k >> 5) * BLOCK;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let o: usize = 0; o < rb; o += BLOCK) {
    const xb = x + o;
    const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
    const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1);
    const dx = half(xb) * TWO_104; // d_x / 256 · 2^112 (the weights' f16 rebias)
    a0 = rowDot(a0, w0 + o, e0, o0, e1, o1, dx);
    a1 = rowDot(a1, w1 + o, e0, o0, e1, o1, dx);
    a2 = rowDot(a2, w2 + o, e0, o0, e1, o1, dx);
    a3 = rowDot(a3, w3 + o, e0, o0, e1, o1, dx);
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q8_0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4, w, scale, x, y, k, row0, row1);
}

// Matmul tile. Staged per block of four tokens (TILE bytes): each token's planes xe, xo of both
// halves (64 B), then the four d_x / 256 · 2^112 as f32 (16 B).
const TILE: usize = 4 * 64 + 16;

/** Stages four tokens' activation planes and scales (see TILE). */
function prep4(x: usize, xs: usize, p: usize, k: i32): void {
  const nb = <usize>(k >> 5);
  for (let t: usize = 0; t < 4; t++) {
    let xb = x + t * xs, q = p + t * 64;
    for (let b: usize = 0; b < nb; b++) {
      const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
      v128.store(q, xe(v0)); v128.store(q, xo(v0), 16); v128.store(q, xe(v1), 32); v128.store(q, xo(v1), 48);
      store<f32>(p + b * TILE + 256 + (t << 2), half(xb) * TWO_104);
      xb += BLOCK; q += TILE;
    }
  }
}

/** 256 · the i32 block dot of weight planes (we0, wo0, we1, wo1) with the token planes at q, as i32x4 partial sums. */
@inline function planeDot(we0: v128, wo0: v128, we1: v128, wo1: v128, q: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(we0, v128.load(q)), i32x4.dot_i16x8_s(wo0, v128.load(q, 16))),
    i32x4.add(i32x4.dot_i16x8_s(we1, v128.load(q, 32)), i32x4.dot_i16x8_s(wo1, v128.load(q, 48))));
}

/**
 * Rows w0, w1 × four staged tokens: eight accumulators (row × token); each weight block is widened
 * into its planes once and meets the four tokens. The sum order per row and token is the matvec's.
 */
function tile2x4(w0: usize, w1: usize, p: usize, k: i32, y: usize, ys: usize, two: bool): void {
  const end = p + <usize>(k >> 5) * TILE, odd = v128.load(ODD_BYTE);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let q = p; q < end; q += TILE) {
    const dx = v128.load(q, 256);
    let u0 = v128.load(w0, 2), u1 = v128.load(w0, 18);
    const ue0 = i16x8.shl(u0, 8), uo0 = v128.and(u0, odd), ue1 = i16x8.shl(u1, 8), uo1 = v128.and(u1, odd);
    const su = f32x4.mul(f32x4.splat(halfRaw(w0)), dx);
    a0 = madd(f32x4.convert_i32x4_s(planeDot(ue0, uo0, ue1, uo1, q)), laneF(su, 0), a0);
    a1 = madd(f32x4.convert_i32x4_s(planeDot(ue0, uo0, ue1, uo1, q + 64)), laneF(su, 1), a1);
    a2 = madd(f32x4.convert_i32x4_s(planeDot(ue0, uo0, ue1, uo1, q + 128)), laneF(su, 2), a2);
    a3 = madd(f32x4.convert_i32x4_s(planeDot(ue0, uo0, ue1, uo1, q + 192)), laneF(su, 3), a3);
    u0 = v128.load(w1, 2); u1 = v128.load(w1, 18);
    const ve0 = i16x8.shl(u0, 8), vo0 = v128.and(u0, odd), ve1 = i16x8.shl(u1, 8), vo1 = v128.and(u1, odd);
    const sv = f32x4.mul(f32x4.splat(halfRaw(w1)), dx);
    b0 = madd(f32x4.convert_i32x4_s(planeDot(ve0, vo0, ve1, vo1, q)), laneF(sv, 0), b0);
    b1 = madd(f32x4.convert_i32x4_s(planeDot(ve0, vo0, ve1, vo1, q + 64)), laneF(sv, 1), b1);
    b2 = madd(f32x4.convert_i32x4_s(planeDot(ve0, vo0, ve1, vo1, q + 128)), laneF(sv, 2), b2);
    b3 = madd(f32x4.convert_i32x4_s(planeDot(ve0, vo0, ve1, vo1, q + 192)), laneF(sv, 3), b3);
    w0 += BLOCK; w1 += BLOCK;
  }
  storeTokens(y, ys, hsum4f(a0, a1, a2, a3));
  if (two) storeTokens(y + 4, ys, hsum4f(b0, b1, b2, b3));
}

/** Lane i of v in every lane. */
@inline function laneF(v: v128, i: i32): v128 {
  if (i == 0) return v128.shuffle<f32>(v, v, 0, 0, 0, 0);
  if (i == 1) return v128.shuffle<f32>(v, v, 1, 1, 1, 1);
  if (i == 2) return v128.shuffle<f32>(v, v, 2, 2, 2, 2);
  return v128.shuffle<f32>(v, v, 3, 3, 3, 3);
}

export function matmul_q8_0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const nb = <usize>(k >> 5);
  matmulTiled(prep4, nb * TILE, tile2x4, dot4, nb * BLOCK, nb * 34, w, scale, x, y, k, n, ldy, row0, row1);
}
