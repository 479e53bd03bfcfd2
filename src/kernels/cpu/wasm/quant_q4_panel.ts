// The Q4_0 matmul by panels (quant_panel.ts): the baseline build decodes the codes − 8 to i16 for
// the pmaddwd tiles there; the relaxed build keeps them as bytes for byte dots (below). Q4_K's
// relaxed matmul (quant_q4k.ts) uses the same byte tiles, with its mins in place of Q4_0's −8.
import { Dot4, LOW_NIBBLES, dotU7, halfRaw, madd, widenPairs } from './quant_common';
import {
  GROUP_I16, STAGE_I16, interleave, matmulPanel, panelRowI16, stageI16, stagedScales, storeRows4x8, storeTokens, tileI16x4, tileI16x8,
} from './quant_panel';

function panelQ4_0(w: usize, pv: usize, ps: usize, nb: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) panelQ4_0r(w, pv, ps, nb);
  else panelRowI16(true, w, pv, ps, nb);
}
function stageQ4_0(x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) stageQ4_0r(x, xs, count, s, nb);
  else stageI16(x, xs, count, s, nb);
}
function tileQ4_0x8(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) tileBytes8(false, GROUP_R, g, rows, s, sb, nb, y, ys, count);
  else tileI16x8(g, rows, s, sb, nb, y, ys, count);
}
function tileQ4_0x4(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD) tileBytes4(false, GROUP_R, g, rows, s, sb, nb, y, ys, count);
  else tileI16x4(g, rows, s, sb, nb, y, ys, count);
}

// Relaxed build: a panel group holds per block the four rows' 32 codes as bytes (element order),
// then their scales (144 B); a token group per block holds 8 vectors, vector i the elements
// 4i..4i+3 of the four tokens as bytes, then the four 8 · Σx (i32) and d_x (f32) (160 B).
// dotU7(vector i, splat(codes 4i..4i+3)) gives each token two i16 pair sums (lanes 2t, 2t+1);
// eight of them add up in i16 (each |lane| ≤ 2 · 128 · 15, so ≤ 30720), one pairwise widening at
// the block's end gives each token's exact Σ x · code, minus 8 · Σx.
//
// With `mins` (Q4_K) a panel block also holds the four rows' −dmin · m after their scales (160 B),
// and a token block holds in place of the 8 · Σx each token's d_x · Σx: the block then ends as
// f += Σ x · code · (d_w · d_x) + (d_x · Σx) · (−dmin · m).
const GROUP_R: usize = 4 * 32 + 16;
export const STAGE_R: usize = 8 * 16 + 32;

@inline function panelQ4_0r(w: usize, pv: usize, ps: usize, nb: usize): void {
  const nib = v128.load(LOW_NIBBLES);
  for (let b: usize = 0; b < nb; b++) {
    const q = v128.load(w, 2);
    v128.store(pv, v128.and(q, nib)); v128.store(pv, v128.and(i16x8.shr_u(q, 4), nib), 16);
    store<f32>(ps, halfRaw(w));
    w += 18; pv += GROUP_R; ps += GROUP_R;
  }
}

@inline function stageQ4_0r(x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  const x1 = count > 1 ? x + xs : x, x2 = count > 2 ? x + 2 * xs : x, x3 = count > 3 ? x + 3 * xs : x;
  const m1 = count > 1 ? i8x16.splat(-1) : i8x16.splat(0), m2 = count > 2 ? m1 : i8x16.splat(0), m3 = count > 3 ? m1 : i8x16.splat(0);
  for (let b: usize = 0; b < nb; b++) {
    const o = b * 34;
    const a0 = v128.load(x + o, 2), a1 = v128.and(v128.load(x1 + o, 2), m1);
    const a2 = v128.and(v128.load(x2 + o, 2), m2), a3 = v128.and(v128.load(x3 + o, 2), m3);
    const b0 = v128.load(x + o, 18), b1 = v128.and(v128.load(x1 + o, 18), m1);
    const b2 = v128.and(v128.load(x2 + o, 18), m2), b3 = v128.and(v128.load(x3 + o, 18), m3);
    interleave(s, a0, a1, a2, a3);
    interleave(s + 64, b0, b1, b2, b3);
    v128.store(s, i32x4.shl(i32x4(byteSum(a0, b0), byteSum(a1, b1), byteSum(a2, b2), byteSum(a3, b3)), 3), 128);
    v128.store(s, stagedScales(x + o, x1 + o, x2 + o, x3 + o, count), 144);
    s += STAGE_R;
  }
}

/** Σ of the 32 signed bytes of a and b. */
@inline function byteSum(a: v128, b: v128): i32 {
  const v = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(a), i16x8.extadd_pairwise_i8x16_s(b)));
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** f + (the widened pair sums a − 8 · Σx) · d_w · d_x, lane = token. */
@inline function blockEnd(f: v128, a: v128, off: v128, dw: usize, dx: v128): v128 {
  return madd(f32x4.convert_i32x4_s(i32x4.sub(widenPairs(a), off)), f32x4.mul(v128.load32_splat(dw), dx), f);
}

/** The end of a block for one row (scale and min at d) and four tokens (see above). */
@inline function byteBlockEnd(mins: bool, f: v128, a: v128, off: v128, d: usize, dx: v128): v128 {
  if (!mins) return blockEnd(f, a, off, d, dx);
  return madd(off, v128.load32_splat(d, 16), madd(f32x4.convert_i32x4_s(widenPairs(a)), f32x4.mul(v128.load32_splat(d), dx), f));
}

@inline export function tileBytes8(mins: bool, group: usize, g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0, g0 = f0, g1 = f0, g2 = f0, g3 = f0;
  for (let b: usize = 0; b < nb; b++) {
    let a0 = i16x8.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    let q = s + b * STAGE_R, p = g + b * group;
    const end = p + 32;
    while (p < end) {
      const x = v128.load(q), z = v128.load(q + sb);
      let u = v128.load32_splat(p);
      a0 = i16x8.add(a0, dotU7(x, u)); c0 = i16x8.add(c0, dotU7(z, u));
      u = v128.load32_splat(p, 32);
      a1 = i16x8.add(a1, dotU7(x, u)); c1 = i16x8.add(c1, dotU7(z, u));
      u = v128.load32_splat(p, 64);
      a2 = i16x8.add(a2, dotU7(x, u)); c2 = i16x8.add(c2, dotU7(z, u));
      u = v128.load32_splat(p, 96);
      a3 = i16x8.add(a3, dotU7(x, u)); c3 = i16x8.add(c3, dotU7(z, u));
      p += 4; q += 16;
    }
    const ox = v128.load(q), oz = v128.load(q + sb), dx = v128.load(q, 16), dz = v128.load(q + sb, 16), d = p + 96;
    f0 = byteBlockEnd(mins, f0, a0, ox, d, dx); g0 = byteBlockEnd(mins, g0, c0, oz, d, dz);
    f1 = byteBlockEnd(mins, f1, a1, ox, d + 4, dx); g1 = byteBlockEnd(mins, g1, c1, oz, d + 4, dz);
    f2 = byteBlockEnd(mins, f2, a2, ox, d + 8, dx); g2 = byteBlockEnd(mins, g2, c2, oz, d + 8, dz);
    f3 = byteBlockEnd(mins, f3, a3, ox, d + 12, dx); g3 = byteBlockEnd(mins, g3, c3, oz, d + 12, dz);
  }
  storeRows4x8(y, ys, rows, count, f0, f1, f2, f3, g0, g1, g2, g3);
}

@inline export function tileBytes4(mins: bool, group: usize, g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
  for (let b: usize = 0; b < nb; b++) {
    let a0 = i16x8.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let q = s + b * STAGE_R, p = g + b * group;
    const end = p + 32;
    while (p < end) { // two steps at a time
      const x = v128.load(q), z = v128.load(q, 16);
      a0 = i16x8.add(a0, i16x8.add(dotU7(x, v128.load32_splat(p)), dotU7(z, v128.load32_splat(p, 4))));
      a1 = i16x8.add(a1, i16x8.add(dotU7(x, v128.load32_splat(p, 32)), dotU7(z, v128.load32_splat(p, 36))));
      a2 = i16x8.add(a2, i16x8.add(dotU7(x, v128.load32_splat(p, 64)), dotU7(z, v128.load32_splat(p, 68))));
      a3 = i16x8.add(a3, i16x8.add(dotU7(x, v128.load32_splat(p, 96)), dotU7(z, v128.load32_splat(p, 100))));
      p += 8; q += 32;
    }
    const ox = v128.load(q), dx = v128.load(q, 16), d = p + 96;
    f0 = byteBlockEnd(mins, f0, a0, ox, d, dx); f1 = byteBlockEnd(mins, f1, a1, ox, d + 4, dx);
    f2 = byteBlockEnd(mins, f2, a2, ox, d + 8, dx); f3 = byteBlockEnd(mins, f3, a3, ox, d + 12, dx);
  }
  storeTokens(y, ys, f0, count);
  if (rows > 1) storeTokens(y + 4, ys, f1, count);
  if (rows > 2) storeTokens(y + 8, ys, f2, count);
  if (rows > 3) storeTokens(y + 12, ys, f3, count);
}

@inline export function matmulQ4_0(dot: Dot4, w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const rb = <usize>(k >> 5) * 18, xs = <usize>(k >> 5) * 34;
  const group = ASC_FEATURE_RELAXED_SIMD ? GROUP_R : GROUP_I16, values: usize = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;
  const stage = ASC_FEATURE_RELAXED_SIMD ? STAGE_R : STAGE_I16;
  matmulPanel(panelQ4_0, stageQ4_0, tileQ4_0x8, tileQ4_0x4, <usize>(k >> 5), group, values, stage, dot, rb, xs, w, scale, x, y, k, n, ldy, row0, row1);
}
