// Q2_K (84 B per 256: 16 scale/min bytes, 64 B of 2-bit quants, f16 d, f16 dmin) and Q3_K (110 B:
// 32 B high-bit mask, 64 B of 2-bit quants, 12 B of 6-bit scales, f16 d) against q8_K activations,
// as ggml_vec_dot_q2_K_q8_K / _q3_K_q8_K. Both store a 128-element half as 32 bytes whose bit pair
// 2j holds quarter j; sub-blocks are 16 elements. Quants are rebuilt as bytes and dotted like
// q8_0, four sub-block sums at a time packed into one i32x4 and multiplied by their scales.
//
//   Q2_K: y += d·d_x · Σ sc_s·Σ q·x − dmin·d_x · Σ m_s·bsum_s,   q = 0..3, sc/m = low/high nibble
//   Q3_K: y += d·d_x · Σ sc_s·Σ (q − 4)·x,   q = 2 bits | mask bit << 2, sc = 6 bits − 32
import { dotBytes, half, hsum4f, hsum4i, matmulRows, matvecRows, xe, xo } from './quant_common';

const BLOCK_Q2K: usize = 84;
const BLOCK_Q3K: usize = 110;
const BLOCK_Q8K: usize = 292;

const K = memory.data<u8>([
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, // 0: a 2-bit quant
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, // 16: a nibble
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, // 32: Q3_K's high bit
  // 48: Q3_K scales — swizzle to the low-nibble bytes (j < 8: byte j, else byte j−8 >> 4) ...
  0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
  // 64: ... and to the byte holding the high pair (8 + j % 4, at bit 2·(j / 4))
  8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11,
  // 80 + 16i: lanes whose high pair sits at bit 2i
  3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3,
  32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, // 144: the scale bias
], 16);
/** Bytes 0x0F in lanes 0..7: the Q3_K scales whose low four bits are a low nibble. */
const LOW_HALF = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0, 0, 0], 16);

/** i32x4 of four consecutive u8 at p. */
@inline function u8x4(p: usize): v128 {
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
}
/** i32x4 of lanes 4i..4i+3 of the i8 bytes `v`. */
@inline function i8x4(v: v128, i: i32): v128 {
  const w = i < 2 ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_high_i8x16_s(v);
  return (i & 1) == 0 ? i32x4.extend_low_i16x8_s(w) : i32x4.extend_high_i16x8_s(w);
}

/** The 2-bit quants of bit pair j of 16 bytes. */
@inline function pair(q: v128, j: i32): v128 {
  return v128.and(i16x8.shr_u(q, 2 * j), v128.load(K));
}

// ---- Q2_K --------------------------------------------------------------------------------------

/** isum + sc · (sums of sub-blocks 8n + 4m .. +3): quarters 2m, 2m+1 of half n. */
@inline function quadQ2K(isum: v128, p: usize, n: i32, m: i32,
  e0: v128, o0: v128, e1: v128, o1: v128, e2: v128, o2: v128, e3: v128, o3: v128): v128 {
  const q0 = v128.load(p + 16 + (<usize>n << 5)), q1 = v128.load(p + 32 + (<usize>n << 5));
  const s0 = dotBytes(pair(q0, 2 * m), e0, o0), s1 = dotBytes(pair(q1, 2 * m), e1, o1);
  const s2 = dotBytes(pair(q0, 2 * m + 1), e2, o2), s3 = dotBytes(pair(q1, 2 * m + 1), e3, o3);
  const sc = v128.and(u8x4(p + (<usize>n << 3) + (<usize>m << 2)), v128.load(K, 16));
  return i32x4.add(isum, i32x4.mul(i32x4.shr_s(hsum4i(s0, s1, s2, s3), 8), sc));
}

/** acc + d·d_x·isum − dmin·d_x·Σ m·bsums for the super-block at p. */
@inline function finishQ2K(acc: v128, isum: v128, p: usize, bs0: v128, bs1: v128, dx: f32): v128 {
  const mins = v128.and(i16x8.shr_u(v128.load(p), 4), v128.load(K, 16)); // bytes m_s
  const msum = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mins), bs0),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mins), bs1));
  return f32x4.sub(
    f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(half(p + 80) * dx))),
    f32x4.mul(f32x4.convert_i32x4_s(msum), f32x4.splat(half(p + 82) * dx)));
}

function dot4_q2_k(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 8), rb = nb * BLOCK_Q2K;
  let p0 = w + <usize>r0 * rb, p1 = w + <usize>r1 * rb, p2 = w + <usize>r2 * rb, p3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let xb = x, end = x + nb * BLOCK_Q8K; xb < end; xb += BLOCK_Q8K) {
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    for (let n = 0; n < 2; n++) {
      for (let m = 0; m < 2; m++) {
        const xq = xb + 4 + (<usize>n << 7) + (<usize>m << 6);
        const v0 = v128.load(xq), v1 = v128.load(xq, 16), v2 = v128.load(xq, 32), v3 = v128.load(xq, 48);
        const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1), e2 = xe(v2), o2 = xo(v2), e3 = xe(v3), o3 = xo(v3);
        i0 = quadQ2K(i0, p0, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i1 = quadQ2K(i1, p1, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i2 = quadQ2K(i2, p2, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i3 = quadQ2K(i3, p3, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
      }
    }
    const bs0 = v128.load(xb, 260), bs1 = v128.load(xb, 276), dx = load<f32>(xb);
    a0 = finishQ2K(a0, i0, p0, bs0, bs1, dx);
    a1 = finishQ2K(a1, i1, p1, bs0, bs1, dx);
    a2 = finishQ2K(a2, i2, p2, bs0, bs1, dx);
    a3 = finishQ2K(a3, i3, p3, bs0, bs1, dx);
    p0 += BLOCK_Q2K; p1 += BLOCK_Q2K; p2 += BLOCK_Q2K; p3 += BLOCK_Q2K;
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q2_k(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q2_k, w, scale, x, y, k, row0, row1);
}
export function matmul_q2_k(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q2_k, <usize>(k >> 8) * BLOCK_Q2K, <usize>(k >> 8) * BLOCK_Q8K, w, scale, x, y, k, n, ldy, row0, row1);
}

// ---- Q3_K --------------------------------------------------------------------------------------

/** The 16 signed scales (6 bits − 32) of the 12 packed bytes at p, as i8 bytes. */
@inline function scalesQ3K(p: usize): v128 {
  const v = v128.load32_lane(p + 8, v128.load64_zero(p), 2); // exactly the 12 bytes: the block ends 2 bytes later
  const lowSrc = i8x16.swizzle(v, v128.load(K, 48));
  const nib = v128.load(K, 16);
  const low = v128.or(
    v128.and(lowSrc, v128.load(LOW_HALF)),
    v128.and(i16x8.shr_u(lowSrc, 4), v128.and(nib, v128.not(v128.load(LOW_HALF)))));
  const h = i8x16.swizzle(v, v128.load(K, 64));
  const high = v128.or(
    v128.or(v128.and(h, v128.load(K, 80)), v128.and(i16x8.shr_u(h, 2), v128.load(K, 96))),
    v128.or(v128.and(i16x8.shr_u(h, 4), v128.load(K, 112)), v128.and(i16x8.shr_u(h, 6), v128.load(K, 128))));
  return i8x16.sub(v128.or(low, i16x8.shl(high, 4)), v128.load(K, 144));
}

/** The 3-bit quants (0..7, i.e. q + 4) of quarter j of half n, chunk q / mask hm. */
@inline function quant3(q: v128, hm: v128, n: i32, j: i32): v128 {
  const bit = 4 * n + j; // mask bit of this quarter, moved to bit 2
  const high = v128.and(bit >= 2 ? i16x8.shr_u(hm, bit - 2) : i16x8.shl(hm, 2 - bit), v128.load(K, 32));
  return v128.or(pair(q, j), high);
}

@inline function quadQ3K(isum: v128, p: usize, sc: v128, n: i32, m: i32,
  e0: v128, o0: v128, e1: v128, o1: v128, e2: v128, o2: v128, e3: v128, o3: v128): v128 {
  const q0 = v128.load(p + 32 + (<usize>n << 5)), q1 = v128.load(p + 48 + (<usize>n << 5));
  const h0 = v128.load(p), h1 = v128.load(p, 16);
  const s0 = dotBytes(quant3(q0, h0, n, 2 * m), e0, o0), s1 = dotBytes(quant3(q1, h1, n, 2 * m), e1, o1);
  const s2 = dotBytes(quant3(q0, h0, n, 2 * m + 1), e2, o2), s3 = dotBytes(quant3(q1, h1, n, 2 * m + 1), e3, o3);
  return i32x4.add(isum, i32x4.mul(i32x4.shr_s(hsum4i(s0, s1, s2, s3), 8), i8x4(sc, 2 * n + m)));
}

/** acc + d·d_x·(isum − 4·Σ sc·bsums). */
@inline function finishQ3K(acc: v128, isum: v128, sc: v128, p: usize, bs0: v128, bs1: v128, dx: f32): v128 {
  const t = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(sc), bs0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(sc), bs1));
  const s = i32x4.sub(isum, i32x4.shl(t, 2));
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(half(p + 108) * dx)));
}

function dot4_q3_k(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 8), rb = nb * BLOCK_Q3K;
  let p0 = w + <usize>r0 * rb, p1 = w + <usize>r1 * rb, p2 = w + <usize>r2 * rb, p3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let xb = x, end = x + nb * BLOCK_Q8K; xb < end; xb += BLOCK_Q8K) {
    const c0 = scalesQ3K(p0 + 96), c1 = scalesQ3K(p1 + 96), c2 = scalesQ3K(p2 + 96), c3 = scalesQ3K(p3 + 96);
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    for (let n = 0; n < 2; n++) {
      for (let m = 0; m < 2; m++) {
        const xq = xb + 4 + (<usize>n << 7) + (<usize>m << 6);
        const v0 = v128.load(xq), v1 = v128.load(xq, 16), v2 = v128.load(xq, 32), v3 = v128.load(xq, 48);
        const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1), e2 = xe(v2), o2 = xo(v2), e3 = xe(v3), o3 = xo(v3);
        i0 = quadQ3K(i0, p0, c0, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i1 = quadQ3K(i1, p1, c1, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i2 = quadQ3K(i2, p2, c2, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
        i3 = quadQ3K(i3, p3, c3, n, m, e0, o0, e1, o1, e2, o2, e3, o3);
      }
    }
    const bs0 = v128.load(xb, 260), bs1 = v128.load(xb, 276), dx = load<f32>(xb);
    a0 = finishQ3K(a0, i0, c0, p0, bs0, bs1, dx);
    a1 = finishQ3K(a1, i1, c1, p1, bs0, bs1, dx);
    a2 = finishQ3K(a2, i2, c2, p2, bs0, bs1, dx);
    a3 = finishQ3K(a3, i3, c3, p3, bs0, bs1, dx);
    p0 += BLOCK_Q3K; p1 += BLOCK_Q3K; p2 += BLOCK_Q3K; p3 += BLOCK_Q3K;
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q3_k(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q3_k, w, scale, x, y, k, row0, row1);
}
export function matmul_q3_k(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4_q3_k, <usize>(k >> 8) * BLOCK_Q3K, <usize>(k >> 8) * BLOCK_Q8K, w, scale, x, y, k, n, ldy, row0, row1);
}
