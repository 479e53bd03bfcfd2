// Q5_0 (22 B per 32: f16 d, u32 qh, 16 B nibbles) against q8_0 activations and Q5_1 (24 B: f16 d,
// f16 m, u32 qh, 16 B nibbles) against q8_1, as ggml_vec_dot_q5_0_q8_0 / _q5_1_q8_1. Element j is
// nibble j (low nibbles, then high nibbles) with bit j of qh as its fifth bit; the 5-bit quants
// (q5_0's less 16) are rebuilt as bytes (quant_blocks.ts) and dotted like q8_0. Q5_1's min adds m · s.
import { Q5_0, Q5_1, quants } from './quant_blocks';
import { TWO_104, TWO_112, dotBytes, half, halfRaw, hsum4f, matmulRows, matvecRows, scaleAdd, xe, xo } from './quant_common';

/** 256 · Σ q·x for the block at p. */
@inline function dotQ5(fmt: i32, p: usize, e0: v128, o0: v128, e1: v128, o1: v128): v128 {
  return i32x4.add(dotBytes(quants(fmt, p, false), e0, o0), dotBytes(quants(fmt, p, true), e1, o1));
}

function dot4_q5_0(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 5), rb = nb * 22;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 34, o = b * 22;
    const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
    const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1);
    const dx = half(xb) * TWO_104;
    a0 = scaleAdd(a0, dotQ5(Q5_0, w0 + o, e0, o0, e1, o1), halfRaw(w0 + o) * dx);
    a1 = scaleAdd(a1, dotQ5(Q5_0, w1 + o, e0, o0, e1, o1), halfRaw(w1 + o) * dx);
    a2 = scaleAdd(a2, dotQ5(Q5_0, w2 + o, e0, o0, e1, o1), halfRaw(w2 + o) * dx);
    a3 = scaleAdd(a3, dotQ5(Q5_0, w3 + o, e0, o0, e1, o1), halfRaw(w3 + o) * dx);
  }
  return hsum4f(a0, a1, a2, a3);
}

function dot4_q5_1(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 5), rb = nb * 24;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let m0: f32 = 0, m1: f32 = 0, m2: f32 = 0, m3: f32 = 0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 36, o = b * 24;
    const v0 = v128.load(xb, 4), v1 = v128.load(xb, 20);
    const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1);
    const dx = half(xb) * TWO_104, s = half(xb + 2) * TWO_112;
    a0 = scaleAdd(a0, dotQ5(Q5_1, w0 + o, e0, o0, e1, o1), halfRaw(w0 + o) * dx); m0 += halfRaw(w0 + o + 2) * s;
    a1 = scaleAdd(a1, dotQ5(Q5_1, w1 + o, e0, o0, e1, o1), halfRaw(w1 + o) * dx); m1 += halfRaw(w1 + o + 2) * s;
    a2 = scaleAdd(a2, dotQ5(Q5_1, w2 + o, e0, o0, e1, o1), halfRaw(w2 + o) * dx); m2 += halfRaw(w2 + o + 2) * s;
    a3 = scaleAdd(a3, dotQ5(Q5_1, w3 + o, e0, o0, e1, o1), halfRaw(w3 + o) * dx); m3 += halfRaw(w3 + o + 2) * s;
  }
  return f32x4.add(hsum4f(a0, a1, a2, a3), f32x4(m0, m1, m2, m3));
}

export function matvec_q5_0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q5_0, w, scale, x, y, k, row0, row1);
}
export function matmul_q5_0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q5_0, <usize>(k >> 5) * 22, <usize>(k >> 5) * 34, w, scale, x, y, k, n, ldy, row0, row1);
}
export function matvec_q5_1(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q5_1, w, scale, x, y, k, row0, row1);
}
export function matmul_q5_1(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q5_1, <usize>(k >> 5) * 24, <usize>(k >> 5) * 36, w, scale, x, y, k, n, ldy, row0, row1);
}
