// Q4_K (144 B per 256: f16 d, f16 dmin, 12 B of 6-bit scales/mins, 128 B nibbles) and Q5_K (176 B:
// the same plus 32 B of fifth bits before the nibbles) against q8_K activations, as
// ggml_vec_dot_q4_K_q8_K / _q5_K_q8_K:
//
//   y += d·d_x · Σ_j sc_j · Σ_{32 elements of j} q·x  −  dmin·d_x · Σ_j m_j · Σ x
//
// A super-block is four 64-element groups of 32 bytes: low nibbles are sub-block 2g, high nibbles
// 2g+1. Q4_K dots the nibble planes directly; Q5_K rebuilds 5-bit bytes. Per group the two
// sub-block sums are packed into one i32x4 (lanes 0–1: sub-block 2g, 2–3: 2g+1) and multiplied by
// their scales; Σ x per sub-block comes from the q8_K block's bsums.
import {
  LOW_NIBBLES, dotU7, dotBytes, dotHi, dotLo, half, hsum4f, matvecRows, xe, xe16, xe256, xo, xo256,
} from './quant_common';
import { BLOCK_Q8K, GROUP_I16, STAGE_I16, interleave, matmulPanel, stageQ8K, tileI16x4, tileI16x8 } from './quant_panel';
import { STAGE_R, tileBytes4, tileBytes8 } from './quant_q4_panel';

const BLOCK_Q4K: usize = 144;
const BLOCK_Q5K: usize = 176;

const K = memory.data<u8>([
  // 0: swizzle to the low parts of [sc0..sc7, m0..m7]
  0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11,
  // 16: their masks; 32: mask of m4..m7 taken from the high nibbles
  63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15,
  // 48: swizzle to the bytes whose top two bits are sc4..sc7's and m4..m7's high bits; 64: their mask
  255, 255, 255, 255, 0, 1, 2, 3, 255, 255, 255, 255, 4, 5, 6, 7,
  0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30,
  // 80: i16 lanes [m0, m0, m1, m1, m2, m2, m3, m3]; 96: the same for m4..m7
  8, 255, 8, 255, 9, 255, 9, 255, 10, 255, 10, 255, 11, 255, 11, 255,
  12, 255, 12, 255, 13, 255, 13, 255, 14, 255, 14, 255, 15, 255, 15, 255,
  // 112 + 16g: i32 lanes [sc_2g, sc_2g, sc_2g+1, sc_2g+1]
  0, 255, 255, 255, 0, 255, 255, 255, 1, 255, 255, 255, 1, 255, 255, 255,
  2, 255, 255, 255, 2, 255, 255, 255, 3, 255, 255, 255, 3, 255, 255, 255,
  4, 255, 255, 255, 4, 255, 255, 255, 5, 255, 255, 255, 5, 255, 255, 255,
  6, 255, 255, 255, 6, 255, 255, 255, 7, 255, 255, 255, 7, 255, 255, 255,
  // 176: the fifth-bit mask of Q5_K bytes
  0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
  // 192 + 16s: i16 lanes sc_s (relaxed build)
  0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255,
  1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255, 1, 255,
  2, 255, 2, 255, 2, 255, 2, 255, 2, 255, 2, 255, 2, 255, 2, 255,
  3, 255, 3, 255, 3, 255, 3, 255, 3, 255, 3, 255, 3, 255, 3, 255,
  4, 255, 4, 255, 4, 255, 4, 255, 4, 255, 4, 255, 4, 255, 4, 255,
  5, 255, 5, 255, 5, 255, 5, 255, 5, 255, 5, 255, 5, 255, 5, 255,
  6, 255, 6, 255, 6, 255, 6, 255, 6, 255, 6, 255, 6, 255, 6, 255,
  7, 255, 7, 255, 7, 255, 7, 255, 7, 255, 7, 255, 7, 255, 7, 255,
], 16);

/** Bytes [sc0..sc7, m0..m7] of the 12 packed scale bytes at p (ggml's get_scale_min_k4, all at once). */
@inline function scalesMins(p: usize): v128 {
  const v = v128.load(p);
  const low = i8x16.swizzle(v, v128.load(K));
  const lowParts = v128.or(v128.and(low, v128.load(K, 16)), v128.and(i16x8.shr_u(low, 4), v128.load(K, 32)));
  const highParts = v128.and(i16x8.shr_u(i8x16.swizzle(v, v128.load(K, 48)), 2), v128.load(K, 64));
  return v128.or(lowParts, highParts);
}

/** isum + sc·(sub-block sums) for group g, `lo`/`hi` its two sub-block sums (256 · Σ q·x). */
@inline function scaleGroup(isum: v128, lo: v128, hi: v128, sm: v128, g: i32): v128 {
  const packed = i32x4.shr_s(i32x4.add(v128.shuffle<i32>(lo, hi, 0, 1, 4, 5), v128.shuffle<i32>(lo, hi, 2, 3, 6, 7)), 8);
  return i32x4.add(isum, i32x4.mul(packed, i8x16.swizzle(sm, v128.load(K + 112 + (<usize>g << 4)))));
}

/** acc + d·d_x · isum − dmin·d_x · Σ m·bsums for the super-block at p (d, dmin at p, p+2). */
@inline function finish(acc: v128, isum: v128, sm: v128, p: usize, bs0: v128, bs1: v128, dx: f32): v128 {
  const msum = i32x4.add(
    i32x4.dot_i16x8_s(bs0, i8x16.swizzle(sm, v128.load(K, 80))),
    i32x4.dot_i16x8_s(bs1, i8x16.swizzle(sm, v128.load(K, 96))));
  return f32x4.sub(
    f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(half(p) * dx))),
    f32x4.mul(f32x4.convert_i32x4_s(msum), f32x4.splat(half(p + 2) * dx)));
}

// ---- Q4_K --------------------------------------------------------------------------------------

@inline function groupQ4K(isum: v128, q: usize, sm: v128, g: i32,
  e0: v128, o0: v128, e1: v128, o1: v128, f2: v128, h2: v128, f3: v128, h3: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // e0..h3 are the group's four activation vectors here. Nibbles as u7: |lane| ≤ 2 · 2 · 15 · 127.
    const q0 = v128.load(q), q1 = v128.load(q, 16), nib = v128.load(LOW_NIBBLES);
    const lo = i16x8.add(dotU7(e0, v128.and(q0, nib)), dotU7(e1, v128.and(q1, nib)));
    const hi = i16x8.add(dotU7(f2, v128.and(i16x8.shr_u(q0, 4), nib)), dotU7(f3, v128.and(i16x8.shr_u(q1, 4), nib)));
    const sl = i8x16.swizzle(sm, v128.load(K + 192 + (<usize>g << 5))), sh = i8x16.swizzle(sm, v128.load(K + 208 + (<usize>g << 5)));
    return i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(lo, sl), i32x4.dot_i16x8_s(hi, sh)));
  }
  const q0 = v128.load(q), q1 = v128.load(q, 16);
  const lo = i32x4.add(dotLo(q0, e0, o0), dotLo(q1, e1, o1));
  const hi = i32x4.add(dotHi(q0, f2, h2), dotHi(q1, f3, h3));
  return scaleGroup(isum, lo, hi, sm, g);
}

function dot4_q4_k(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 8), rb = nb * BLOCK_Q4K;
  let p0 = w + <usize>r0 * rb, p1 = w + <usize>r1 * rb, p2 = w + <usize>r2 * rb, p3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let xb = x, end = x + nb * BLOCK_Q8K; xb < end; xb += BLOCK_Q8K) {
    const sm0 = scalesMins(p0 + 4), sm1 = scalesMins(p1 + 4), sm2 = scalesMins(p2 + 4), sm3 = scalesMins(p3 + 4);
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    for (let g = 0; g < 4; g++) {
      const xg = xb + 4 + (<usize>g << 6), qo: usize = 16 + (<usize>g << 5);
      const v0 = v128.load(xg), v1 = v128.load(xg, 16), v2 = v128.load(xg, 32), v3 = v128.load(xg, 48);
      let e0 = v0, o0 = v0, e1 = v1, o1 = v1, f2 = v2, h2 = v2, f3 = v3, h3 = v3;
      if (!ASC_FEATURE_RELAXED_SIMD) {
        e0 = xe256(v0); o0 = xo(v0); e1 = xe256(v1); o1 = xo(v1);
        f2 = xe16(v2); h2 = xo256(v2); f3 = xe16(v3); h3 = xo256(v3);
      }
      i0 = groupQ4K(i0, p0 + qo, sm0, g, e0, o0, e1, o1, f2, h2, f3, h3);
      i1 = groupQ4K(i1, p1 + qo, sm1, g, e0, o0, e1, o1, f2, h2, f3, h3);
      i2 = groupQ4K(i2, p2 + qo, sm2, g, e0, o0, e1, o1, f2, h2, f3, h3);
      i3 = groupQ4K(i3, p3 + qo, sm3, g, e0, o0, e1, o1, f2, h2, f3, h3);
    }
    const bs0 = v128.load(xb, 260), bs1 = v128.load(xb, 276), dx = load<f32>(xb);
    a0 = finish(a0, i0, sm0, p0, bs0, bs1, dx);
    a1 = finish(a1, i1, sm1, p1, bs0, bs1, dx);
    a2 = finish(a2, i2, sm2, p2, bs0, bs1, dx);
    a3 = finish(a3, i3, sm3, p3, bs0, bs1, dx);
    p0 += BLOCK_Q4K; p1 += BLOCK_Q4K; p2 += BLOCK_Q4K; p3 += BLOCK_Q4K;
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q4_k(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q4_k, w, scale, x, y, k, row0, row1);
}
export function matmul_q4_k(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const nsb = <usize>(k >> 8), rb = nsb * BLOCK_Q4K, xs = nsb * BLOCK_Q8K;
  if (ASC_FEATURE_RELAXED_SIMD) {
    matmulPanel(panelQ4K, stageQ4K, tileQ4Kx8, tileQ4Kx4, nsb * 8, GROUP_KR, 32, STAGE_R, dot4_q4_k, rb, xs, w, scale, x, y, k, n, ldy, row0, row1);
  } else {
    matmulPanel(panelQ4K, stageQ4K, tileQ4Kx8, tileQ4Kx4, nsb * 9, GROUP_I16, 64, STAGE_I16, dot4_q4_k, rb, xs, w, scale, x, y, k, n, ldy, row0, row1);
  }
}

// The functions passed by reference are the same in both builds (each picks its form inside), so
// that both builds lay out the same static data: tests run them over one memory.
function panelQ4K(w: usize, pv: usize, ps: usize, nb: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) panelQ4Kr(w, pv, ps, nb);
  else panelQ45K(false, w, pv, ps, nb);
}
function stageQ4K(x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) stageQ4Kr(x, xs, count, s, nb);
  else stageQ8K(true, x, xs, count, s, nb);
}
function tileQ4Kx8(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) tileBytes8(true, GROUP_KR, g, rows, s, sb, nb, y, ys, count);
  else tileI16x8(g, rows, s, sb, nb, y, ys, count);
}
function tileQ4Kx4(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) tileBytes4(true, GROUP_KR, g, rows, s, sb, nb, y, ys, count);
  else tileI16x4(g, rows, s, sb, nb, y, ys, count);
}

// Relaxed build: the codes stay bytes for the byte tiles of quant_q4_panel.ts (with mins). A panel
// block is one sub-block: four rows' 32 codes, their d · sc_j, then their −dmin · m_j (both exact
// in f32: an f16 times six bits); a token block its 32 bytes as there, d_x · Σx, d_x.
const GROUP_KR: usize = 4 * 32 + 32;

/** Lane j of lo, hi (j = 0..7) at p + j · GROUP_KR. */
@inline function storeSubBlocks(p: usize, lo: v128, hi: v128): void {
  store<f32>(p, f32x4.extract_lane(lo, 0)); store<f32>(p + GROUP_KR, f32x4.extract_lane(lo, 1));
  store<f32>(p + 2 * GROUP_KR, f32x4.extract_lane(lo, 2)); store<f32>(p + 3 * GROUP_KR, f32x4.extract_lane(lo, 3));
  store<f32>(p + 4 * GROUP_KR, f32x4.extract_lane(hi, 0)); store<f32>(p + 5 * GROUP_KR, f32x4.extract_lane(hi, 1));
  store<f32>(p + 6 * GROUP_KR, f32x4.extract_lane(hi, 2)); store<f32>(p + 7 * GROUP_KR, f32x4.extract_lane(hi, 3));
}

/** f32 lanes of the u8 bytes 4i..4i+3 of v (i = 0, 1) times f. */
@inline function bytesTimes(v: v128, i: i32, f: f32): v128 {
  const h = i16x8.extend_low_i8x16_u(v);
  return f32x4.mul(f32x4.convert_i32x4_u(i == 0 ? i32x4.extend_low_i16x8_u(h) : i32x4.extend_high_i16x8_u(h)), f32x4.splat(f));
}

@inline function panelQ4Kr(w: usize, pv: usize, ps: usize, nb: usize): void {
  const nib = v128.load(LOW_NIBBLES);
  for (let b: usize = 0; b < nb; b += 8, w += BLOCK_Q4K) {
    const sm = scalesMins(w + 4), mins = v128.shuffle<u8>(sm, sm, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0);
    const d = half(w), dmin = -half(w + 2);
    for (let g: usize = 0; g < 4; g++) {
      const q0 = v128.load(w + 16 + (g << 5)), q1 = v128.load(w + 32 + (g << 5));
      const p = pv + 2 * g * GROUP_KR;
      v128.store(p, v128.and(q0, nib)); v128.store(p, v128.and(q1, nib), 16);
      v128.store(p + GROUP_KR, v128.and(i16x8.shr_u(q0, 4), nib)); v128.store(p + GROUP_KR, v128.and(i16x8.shr_u(q1, 4), nib), 16);
    }
    storeSubBlocks(ps, bytesTimes(sm, 0, d), bytesTimes(sm, 1, d));
    storeSubBlocks(ps + 16, bytesTimes(mins, 0, dmin), bytesTimes(mins, 1, dmin));
    pv += 8 * GROUP_KR; ps += 8 * GROUP_KR;
  }
}

/** Σx of elements 32j..32j+31 of the q8_K block at p (its two sums of 16). */
@inline function subSum(p: usize, j: usize): f32 {
  return <f32>(<i32>load<i16>(p + 260 + (j << 2)) + <i32>load<i16>(p + 262 + (j << 2)));
}

@inline function stageQ4Kr(x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  const x1 = count > 1 ? x + xs : x, x2 = count > 2 ? x + 2 * xs : x, x3 = count > 3 ? x + 3 * xs : x;
  const m1 = count > 1 ? i8x16.splat(-1) : i8x16.splat(0), m2 = count > 2 ? m1 : i8x16.splat(0), m3 = count > 3 ? m1 : i8x16.splat(0);
  for (let b: usize = 0, o: usize = 0; b < nb; b += 8, o += BLOCK_Q8K) {
    const p0 = x + o, p1 = x1 + o, p2 = x2 + o, p3 = x3 + o;
    const dx = f32x4(load<f32>(p0), count > 1 ? load<f32>(p1) : 0, count > 2 ? load<f32>(p2) : 0, count > 3 ? load<f32>(p3) : 0);
    for (let j: usize = 0; j < 8; j++) {
      const e: usize = 4 + (j << 5);
      interleave(s, v128.load(p0 + e), v128.and(v128.load(p1 + e), m1), v128.and(v128.load(p2 + e), m2), v128.and(v128.load(p3 + e), m3));
      interleave(s + 64, v128.load(p0 + e, 16), v128.and(v128.load(p1 + e, 16), m1), v128.and(v128.load(p2 + e, 16), m2), v128.and(v128.load(p3 + e, 16), m3));
      v128.store(s, f32x4.mul(f32x4(subSum(p0, j), subSum(p1, j), subSum(p2, j), subSum(p3, j)), dx), 128);
      v128.store(s, dx, 144);
      s += STAGE_R;
    }
  }
}

// The matmul by panels (quant_panel.ts): sub-block j becomes a block of i16 values q · sc_j
// (|·| ≤ 31 · 63) with d as its scale, so that a block's integer sum is the one ggml forms for
// those 32 elements; a ninth block per super-block holds m_0..m_7 with −dmin as its scale, against
// the staged Σx of each sub-block (stageQ8K with sums).

/** Sub-block j's panel block: its codes c0, c1 (16 each, 0..31) times sc_j of the scales/mins bytes sm. */
@inline function panelSub(pv: usize, c0: v128, c1: v128, sm: v128, j: i32): void {
  const sc = i8x16.swizzle(sm, v128.load(K + 192 + (<usize>j << 4)));
  v128.store(pv, i16x8.mul(i16x8.extend_low_i8x16_u(c0), sc)); v128.store(pv, i16x8.mul(i16x8.extend_high_i8x16_u(c0), sc), 16);
  v128.store(pv, i16x8.mul(i16x8.extend_low_i8x16_u(c1), sc), 32); v128.store(pv, i16x8.mul(i16x8.extend_high_i8x16_u(c1), sc), 48);
}

/** A Q4_K (five false) or Q5_K row of nb / 9 super-blocks into a panel group (see quant_panel.ts). */
@inline function panelQ45K(five: bool, w: usize, pv: usize, ps: usize, nb: usize): void {
  const nib = v128.load(LOW_NIBBLES), zero = i8x16.splat(0);
  for (let b: usize = 0; b < nb; b += 9, w += five ? BLOCK_Q5K : BLOCK_Q4K) {
    const d = half(w), dmin = half(w + 2), sm = scalesMins(w + 4), qs = w + (five ? 48 : 16);
    const h0 = five ? v128.load(w, 16) : zero, h1 = five ? v128.load(w, 32) : zero;
    for (let g = 0; g < 4; g++) {
      const q0 = v128.load(qs + (<usize>g << 5)), q1 = v128.load(qs + (<usize>g << 5), 16);
      let l0 = v128.and(q0, nib), l1 = v128.and(q1, nib);
      let u0 = v128.and(i16x8.shr_u(q0, 4), nib), u1 = v128.and(i16x8.shr_u(q1, 4), nib);
      if (five) {
        l0 = v128.or(l0, fifth(h0, 2 * g)); l1 = v128.or(l1, fifth(h1, 2 * g));
        u0 = v128.or(u0, fifth(h0, 2 * g + 1)); u1 = v128.or(u1, fifth(h1, 2 * g + 1));
      }
      panelSub(pv, l0, l1, sm, 2 * g);
      panelSub(pv + GROUP_I16, u0, u1, sm, 2 * g + 1);
      store<f32>(ps, d); store<f32>(ps + GROUP_I16, d);
      pv += 2 * GROUP_I16; ps += 2 * GROUP_I16;
    }
    v128.store(pv, i16x8.extend_high_i8x16_u(sm)); // m_0..m_7
    v128.store(pv, zero, 16); v128.store(pv, zero, 32); v128.store(pv, zero, 48);
    store<f32>(ps, -dmin);
    pv += GROUP_I16; ps += GROUP_I16;
  }
}

function panelQ5K(w: usize, pv: usize, ps: usize, nb: usize): void { panelQ45K(true, w, pv, ps, nb); }
function stageMins(x: usize, xs: usize, count: i32, s: usize, nb: usize): void { stageQ8K(true, x, xs, count, s, nb); }

// ---- Q5_K --------------------------------------------------------------------------------------

/** 0x10 in each byte whose bit `bit` of the matching qh byte is set. */
@inline function fifth(qh: v128, bit: i32): v128 {
  return v128.and(i16x8.shl(i16x8.shr_u(qh, bit), 4), v128.load(K, 176));
}

@inline function groupQ5K(isum: v128, p: usize, sm: v128, g: i32,
  e0: v128, o0: v128, e1: v128, o1: v128, e2: v128, o2: v128, e3: v128, o3: v128): v128 {
  const q0 = v128.load(p + 48 + (<usize>g << 5)), q1 = v128.load(p + 64 + (<usize>g << 5));
  const h0 = v128.load(p, 16), h1 = v128.load(p, 32);
  const nib = v128.load(LOW_NIBBLES);
  const l0 = v128.or(v128.and(q0, nib), fifth(h0, 2 * g)), l1 = v128.or(v128.and(q1, nib), fifth(h1, 2 * g));
  const u0 = v128.or(v128.and(i16x8.shr_u(q0, 4), nib), fifth(h0, 2 * g + 1));
  const u1 = v128.or(v128.and(i16x8.shr_u(q1, 4), nib), fifth(h1, 2 * g + 1));
  const lo = i32x4.add(dotBytes(l0, e0, o0), dotBytes(l1, e1, o1));
  const hi = i32x4.add(dotBytes(u0, e2, o2), dotBytes(u1, e3, o3));
  return scaleGroup(isum, lo, hi, sm, g);
}

function dot4_q5_k(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 8), rb = nb * BLOCK_Q5K;
  let p0 = w + <usize>r0 * rb, p1 = w + <usize>r1 * rb, p2 = w + <usize>r2 * rb, p3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let xb = x, end = x + nb * BLOCK_Q8K; xb < end; xb += BLOCK_Q8K) {
    const sm0 = scalesMins(p0 + 4), sm1 = scalesMins(p1 + 4), sm2 = scalesMins(p2 + 4), sm3 = scalesMins(p3 + 4);
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    for (let g = 0; g < 4; g++) {
      const xg = xb + 4 + (<usize>g << 6);
      const v0 = v128.load(xg), v1 = v128.load(xg, 16), v2 = v128.load(xg, 32), v3 = v128.load(xg, 48);
      const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1), e2 = xe(v2), o2 = xo(v2), e3 = xe(v3), o3 = xo(v3);
      i0 = groupQ5K(i0, p0, sm0, g, e0, o0, e1, o1, e2, o2, e3, o3);
      i1 = groupQ5K(i1, p1, sm1, g, e0, o0, e1, o1, e2, o2, e3, o3);
      i2 = groupQ5K(i2, p2, sm2, g, e0, o0, e1, o1, e2, o2, e3, o3);
      i3 = groupQ5K(i3, p3, sm3, g, e0, o0, e1, o1, e2, o2, e3, o3);
    }
    const bs0 = v128.load(xb, 260), bs1 = v128.load(xb, 276), dx = load<f32>(xb);
    a0 = finish(a0, i0, sm0, p0, bs0, bs1, dx);
    a1 = finish(a1, i1, sm1, p1, bs0, bs1, dx);
    a2 = finish(a2, i2, sm2, p2, bs0, bs1, dx);
    a3 = finish(a3, i3, sm3, p3, bs0, bs1, dx);
    p0 += BLOCK_Q5K; p1 += BLOCK_Q5K; p2 += BLOCK_Q5K; p3 += BLOCK_Q5K;
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q5_k(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4_q5_k, w, scale, x, y, k, row0, row1);
}
export function matmul_q5_k(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const nsb = <usize>(k >> 8);
  matmulPanel(panelQ5K, stageMins, tileI16x8, tileI16x4, nsb * 9, GROUP_I16, 64, STAGE_I16, dot4_q5_k, nsb * BLOCK_Q5K, nsb * BLOCK_Q8K,
    w, scale, x, y, k, n, ldy, row0, row1);
}
