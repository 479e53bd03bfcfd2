// Q4_0 (18 B per 32: f16 d, 16 B nibbles) against q8_0 activations and Q4_1 (20 B: f16 d, f16 m,
// 16 B nibbles) against q8_1, as ggml_vec_dot_q4_0_q8_0 / _q4_1_q8_1. Byte j holds element j in its
// low nibble and element j + 16 in its high nibble; the nibble planes (quant_common.ts) meet the
// activation planes without unpacking. Q4_0's −8 is taken off as 8 · Σx per block (shared by the
// four rows); Q4_1's min adds m · s, s = the q8_1 block's d · Σq. The relaxed build dots the
// nibbles as u7 bytes against the activation bytes directly (dotU7, quant_common.ts). From four
// tokens on, the Q4_0 matmul runs by panels (quant_q4_panel.ts).
import {
  LOW_NIBBLES, TWO_104, TWO_112, dotHi, dotLo, dotU7, half, halfRaw, hsum4f, matmulRows, matvecRows, scaleAdd, widenPairs,
  xe16, xe256, xo, xo256,
} from './quant_common';
import { matmulQ4_0 } from './quant_q4_panel';

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
  matmulQ4_0(dot4_q4_0, w, scale, x, y, k, n, ldy, row0, row1);
}
export function matvec_q4_1(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q4_1, w, scale, x, y, k, row0, row1);
}
export function matmul_q4_1(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q4_1, <usize>(k >> 5) * 20, <usize>(k >> 5) * 36, w, scale, x, y, k, n, ldy, row0, row1);
}
