// Q6_K (210 B per 256: 128 B low nibbles ql, 64 B high pairs qh, 16 × i8 scales, f16 d) against q8_K
// activations, as ggml_vec_dot_q6_K_q8_K:
//
//   y += d·d_x · Σ_s sc_s · Σ_{16 elements of s} (q − 32)·x,   q = 6 bits
//
// Each 128-element half has quarters k = 0..3: element l of quarter k takes the low (k < 2) or high
// nibble of ql[l + 32(k & 1)] and bits 2k, 2k+1 of qh[l]. The 6-bit quants are rebuilt as bytes
// (0..63), dotted like q8_0, and the −32 is taken off as 32 · Σ_s sc_s · bsum_s.
import { LOW_NIBBLES, dotU7, dotBytes, half, hsum4f, hsum4i, lookup16, matvecRows, xe, xo } from './quant_common';
import { BLOCK_Q8K, GROUP_I16, STAGE_I16, matmulPanel, stageQ8K, tileI16x4, tileI16x8 } from './quant_panel';

const BLOCK: usize = 210;

/** Bytes 0x30: where a qh pair lands in a rebuilt 6-bit byte. */
const HIGH_PAIR = memory.data<u8>([0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30], 16);

/** i16 lane j of a vector splat to all lanes, j = 0..7 (relaxed build). */
const SPLAT16 = memory.data<u8>([
  0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
  4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7,
  8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
  12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15,
], 16);

/** The 6-bit bytes of quarter k of a half, chunk of 16 whose ql / qh vectors are given. */
@inline function quant6(ql: v128, qh: v128, k: i32): v128 {
  const nib = v128.load(LOW_NIBBLES), pair = v128.load(HIGH_PAIR);
  if (k == 0) return v128.or(v128.and(ql, nib), v128.and(i16x8.shl(qh, 4), pair));
  if (k == 1) return v128.or(v128.and(ql, nib), v128.and(i16x8.shl(qh, 2), pair));
  if (k == 2) return v128.or(v128.and(i16x8.shr_u(ql, 4), nib), v128.and(qh, pair));
  return v128.or(v128.and(i16x8.shr_u(ql, 4), nib), v128.and(i16x8.shr_u(qh, 2), pair));
}

/**
 * isum + sc · (sums of sub-blocks 4m..4m+3 of half n of the super-block at p), m = 0 for quarters
 * 0–1, 1 for quarters 2–3; the activation planes are those of the four 16-element chunks.
 */
@inline function quad(isum: v128, p: usize, n: i32, m: i32,
  e0: v128, o0: v128, e1: v128, o1: v128, e2: v128, o2: v128, e3: v128, o3: v128): v128 {
  const ql = p + (<usize>n << 6), qh = p + 128 + (<usize>n << 5);
  const h0 = v128.load(qh), h1 = v128.load(qh, 16);
  const ka = 2 * m, kb = 2 * m + 1;
  if (ASC_FEATURE_RELAXED_SIMD) {
    // e0, e1, e2, e3 are the four chunks' activation vectors here; 6-bit bytes as u7, |lane| ≤ 2 · 63 · 127.
    // Each chunk's i16 pair sums meet its sub-block scale (sign-extended to i16 lanes) in one i32 dot.
    const sc = i16x8.extend_low_i8x16_s(v128.load64_zero(p + 192 + (<usize>n << 3)));
    const c0 = i32x4.dot_i16x8_s(dotU7(e0, quant6(v128.load(ql), h0, ka)), lookup16(sc, v128.load(SPLAT16 + (<usize>m << 6))));
    const c1 = i32x4.dot_i16x8_s(dotU7(e1, quant6(v128.load(ql, 16), h1, ka)), lookup16(sc, v128.load(SPLAT16 + (<usize>m << 6), 16)));
    const c2 = i32x4.dot_i16x8_s(dotU7(e2, quant6(v128.load(ql, 32), h0, kb)), lookup16(sc, v128.load(SPLAT16 + (<usize>m << 6), 32)));
    const c3 = i32x4.dot_i16x8_s(dotU7(e3, quant6(v128.load(ql, 48), h1, kb)), lookup16(sc, v128.load(SPLAT16 + (<usize>m << 6), 48)));
    return i32x4.add(isum, i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)));
  }
  // quarter ka takes ql[0..31] (k even) and quarter kb ql[32..63]
  const s0 = dotBytes(quant6(v128.load(ql), h0, ka), e0, o0);
  const s1 = dotBytes(quant6(v128.load(ql, 16), h1, ka), e1, o1);
  const s2 = dotBytes(quant6(v128.load(ql, 32), h0, kb), e2, o2);
  const s3 = dotBytes(quant6(v128.load(ql, 48), h1, kb), e3, o3);
  const sums = i32x4.shr_s(hsum4i(s0, s1, s2, s3), 8);
  const sc = p + 192 + (<usize>n << 3) + (<usize>m << 2);
  const scales = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(sc)));
  return i32x4.add(isum, i32x4.mul(sums, scales));
}

/** isum − 32 · Σ sc·bsums. */
@inline function offset(isum: v128, p: usize, bs0: v128, bs1: v128): v128 {
  const sc = v128.load(p, 192);
  const t = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(sc), bs0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(sc), bs1));
  return i32x4.sub(isum, i32x4.shl(t, 5));
}

function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 8), rb = nb * BLOCK;
  let p0 = w + <usize>r0 * rb, p1 = w + <usize>r1 * rb, p2 = w + <usize>r2 * rb, p3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let xb = x, end = x + nb * BLOCK_Q8K; xb < end; xb += BLOCK_Q8K) {
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    for (let n = 0; n < 2; n++) {
      for (let m = 0; m < 2; m++) {
        // chunks: quarter 2m (elements 0..31 of it), then quarter 2m+1
        const xq = xb + 4 + (<usize>n << 7) + (<usize>m << 6);
        const v0 = v128.load(xq), v1 = v128.load(xq, 16), v2 = v128.load(xq, 32), v3 = v128.load(xq, 48);
        let e0 = v0, o0 = v0, e1 = v1, o1 = v1, e2 = v2, o2 = v2, e3 = v3, o3 = v3;
        if (!ASC_FEATURE_RELAXED_SIMD) {
          e0 = xe(v0); o0 = xo(v0); e1 = xe(v1); o1 = xo(v1); e2 = xe(v2); o2 = xo(v2); e3 = xe(v3); o3 = xo(v3);
        }
        if (m == 0) {
          i0 = quad(i0, p0, n, 0, e0, o0, e1, o1, e2, o2, e3, o3);
          i1 = quad(i1, p1, n, 0, e0, o0, e1, o1, e2, o2, e3, o3);
          i2 = quad(i2, p2, n, 0, e0, o0, e1, o1, e2, o2, e3, o3);
          i3 = quad(i3, p3, n, 0, e0, o0, e1, o1, e2, o2, e3, o3);
        } else {
          i0 = quad(i0, p0, n, 1, e0, o0, e1, o1, e2, o2, e3, o3);
          i1 = quad(i1, p1, n, 1, e0, o0, e1, o1, e2, o2, e3, o3);
          i2 = quad(i2, p2, n, 1, e0, o0, e1, o1, e2, o2, e3, o3);
          i3 = quad(i3, p3, n, 1, e0, o0, e1, o1, e2, o2, e3, o3);
        }
      }
    }
    const bs0 = v128.load(xb, 260), bs1 = v128.load(xb, 276), dx = load<f32>(xb);
    a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(offset(i0, p0, bs0, bs1)), f32x4.splat(half(p0 + 208) * dx)));
    a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(offset(i1, p1, bs0, bs1)), f32x4.splat(half(p1 + 208) * dx)));
    a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(offset(i2, p2, bs0, bs1)), f32x4.splat(half(p2 + 208) * dx)));
    a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(offset(i3, p3, bs0, bs1)), f32x4.splat(half(p3 + 208) * dx)));
    p0 += BLOCK; p1 += BLOCK; p2 += BLOCK; p3 += BLOCK;
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q6_k(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4, w, scale, x, y, k, row0, row1);
}

// The matmul by panels (quant_panel.ts): each 32-element quarter becomes a block of i16 values
// (q − 32) · sc, |·| ≤ 32 · 128, with d as its scale, so that a block's integer sum is the one
// ggml_vec_dot_q6_K_q8_K forms for those 32 elements.

/** Panel block of quarter k of a half: its 32 codes (chunks at ql, ql + 16; qh pairs h0, h1) times their sub-block scales at sc. */
@inline function panelQuarter(pv: usize, ql: usize, h0: v128, h1: v128, sc: usize, k: i32): void {
  const bias = i8x16.splat(32);
  const c0 = i8x16.sub(quant6(v128.load(ql), h0, k), bias), c1 = i8x16.sub(quant6(v128.load(ql, 16), h1, k), bias);
  const s0 = i16x8.splat(<i16>load<i8>(sc)), s1 = i16x8.splat(<i16>load<i8>(sc, 1));
  v128.store(pv, i16x8.mul(i16x8.extend_low_i8x16_s(c0), s0)); v128.store(pv, i16x8.mul(i16x8.extend_high_i8x16_s(c0), s0), 16);
  v128.store(pv, i16x8.mul(i16x8.extend_low_i8x16_s(c1), s1), 32); v128.store(pv, i16x8.mul(i16x8.extend_high_i8x16_s(c1), s1), 48);
}

function panelQ6K(w: usize, pv: usize, ps: usize, nb: usize): void {
  for (let b: usize = 0; b < nb; b += 8, w += BLOCK) {
    const d = half(w + 208);
    for (let n: usize = 0; n < 2; n++) {
      const ql = w + (n << 6), qh = w + 128 + (n << 5), sc = w + 192 + (n << 3);
      const h0 = v128.load(qh), h1 = v128.load(qh, 16);
      panelQuarter(pv, ql, h0, h1, sc, 0);
      panelQuarter(pv + GROUP_I16, ql + 32, h0, h1, sc + 2, 1);
      panelQuarter(pv + 2 * GROUP_I16, ql, h0, h1, sc + 4, 2);
      panelQuarter(pv + 3 * GROUP_I16, ql + 32, h0, h1, sc + 6, 3);
      for (let q: usize = 0; q < 4; q++) store<f32>(ps + q * GROUP_I16, d);
      pv += 4 * GROUP_I16; ps += 4 * GROUP_I16;
    }
  }
}

function stageQ6K(x: usize, xs: usize, count: i32, s: usize, nb: usize): void { stageQ8K(false, x, xs, count, s, nb); }

export function matmul_q6_k(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const nsb = <usize>(k >> 8);
  matmulPanel(panelQ6K, stageQ6K, tileI16x8, tileI16x4, nsb * 8, GROUP_I16, 64, STAGE_I16, dot4, nsb * BLOCK, nsb * BLOCK_Q8K,
    w, scale, x, y, k, n, ldy, row0, row1);
}
