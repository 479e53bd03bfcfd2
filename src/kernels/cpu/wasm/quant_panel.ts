// Matmul of 32-element block formats against q8_0 activations by panels (inlined helpers and
// tiles; nothing here is a wasm export).
//
// A block of weight rows is decoded once per call into this thread's scratch (a "panel"), row by
// row so that memory sees one sequential stream (rows read side by side defeat the prefetchers),
// into groups of four rows stored block by block, so that a tile reaches its rows from one pointer.
// Tokens are staged there in groups of four, interleaved so that one vector holds the same few
// elements of each of the four tokens. A weight element group is then splatted against that
// vector: one multiply-add gives the four tokens' partial sums at once (lane = token), with nothing
// to widen, shuffle or fold in the loop. Tiles are 4 rows × 8 tokens (eight accumulators) or, for
// the last 1..4 tokens, 4 rows × 4. Each weight is decoded once per call, not once per four tokens.
// (Wider tiles, or unrolled loops, need more than V8's 15 vector registers: it loads every splat of
// a step first, so the accumulators spill.)
//
// Here, the pmaddwd form (Q8_0, and Q4_0 without relaxed SIMD): a panel group holds per block the
// four rows' 32 values as i16, then their scales (272 B); a token group per block holds 16 vectors,
// vector j the pairs x_t[2j], x_t[2j+1] of the four tokens as i16, then the four d_x (272 B; the
// scales as stagedScales says). i32x4.dot_i16x8_s(splat(w[2j], w[2j+1]), vector j) sums the pair's
// products, lane = token. Per block the exact integer sums meet d_w · d_x (rounded once in f32, as
// the twin) and add to the f32 sums.

import { Dot4, TWO_112, half, halfRaw, madd, matmulRows } from './quant_common';
import { scratchBytes, scratchPtr } from './scratch';

/** Bytes per block of a group of four i16 panel rows: 4 × 32 i16, 4 scales. */
export const GROUP_I16: usize = 4 * 64 + 16;
/** Bytes per block of a staged group of four tokens for the i16 tiles. */
export const STAGE_I16: usize = 16 * 16 + 16;

/** i32 lane i of a, b, c, d: row i of the 4×4 transpose of i32 lanes. */
@inline function tr(a: v128, b: v128, c: v128, d: v128, i: i32): v128 {
  const ab = i < 2 ? v128.shuffle<i32>(a, b, 0, 4, 1, 5) : v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd = i < 2 ? v128.shuffle<i32>(c, d, 0, 4, 1, 5) : v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  return (i & 1) == 0 ? v128.shuffle<i32>(ab, cd, 0, 1, 4, 5) : v128.shuffle<i32>(ab, cd, 2, 3, 6, 7);
}

/** Stores the i32 lanes (element groups) of tokens a..d as four vectors at q, vector i = lane i of each token. */
@inline export function interleave(q: usize, a: v128, b: v128, c: v128, d: v128): void {
  v128.store(q, tr(a, b, c, d, 0));
  v128.store(q, tr(a, b, c, d, 1), 16);
  v128.store(q, tr(a, b, c, d, 2), 32);
  v128.store(q, tr(a, b, c, d, 3), 48);
}

/**
 * Decodes a Q8_0 row (nibbles false) or a Q4_0 row (nibbles true: codes − 8) of nb blocks at w into
 * a panel group: its values at pv, its scales at ps (both GROUP_I16 apart from block to block).
 */
@inline export function panelRowI16(nibbles: bool, w: usize, pv: usize, ps: usize, nb: usize): void {
  const mask = i8x16.splat(15), eight = i8x16.splat(8);
  for (let b: usize = 0; b < nb; b++) {
    let lo: v128, hi: v128;
    if (nibbles) {
      const q = v128.load(w, 2);
      lo = i8x16.sub(v128.and(q, mask), eight);
      hi = i8x16.sub(v128.and(i16x8.shr_u(q, 4), mask), eight);
    } else {
      lo = v128.load(w, 2);
      hi = v128.load(w, 18);
    }
    v128.store(pv, i16x8.extend_low_i8x16_s(lo)); v128.store(pv, i16x8.extend_high_i8x16_s(lo), 16);
    v128.store(pv, i16x8.extend_low_i8x16_s(hi), 32); v128.store(pv, i16x8.extend_high_i8x16_s(hi), 48);
    store<f32>(ps, halfRaw(w));
    w += nibbles ? 18 : 34; pv += GROUP_I16; ps += GROUP_I16;
  }
}

/** Stages `count` (1..4) q8_0 rows at x, x + xs, … for the i16 tiles at s (missing tokens as zeros). */
export function stageI16(x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  const x1 = count > 1 ? x + xs : x, x2 = count > 2 ? x + 2 * xs : x, x3 = count > 3 ? x + 3 * xs : x;
  const m1 = count > 1 ? i8x16.splat(-1) : i8x16.splat(0), m2 = count > 2 ? m1 : i8x16.splat(0), m3 = count > 3 ? m1 : i8x16.splat(0);
  for (let b: usize = 0; b < nb; b++) {
    const o = b * 34;
    for (let h: usize = 0; h < 32; h += 16) {
      const v0 = v128.load(x + o + h, 2), v1 = v128.and(v128.load(x1 + o + h, 2), m1);
      const v2 = v128.and(v128.load(x2 + o + h, 2), m2), v3 = v128.and(v128.load(x3 + o + h, 2), m3);
      const q = s + (h << 3);
      interleave(q, i16x8.extend_low_i8x16_s(v0), i16x8.extend_low_i8x16_s(v1), i16x8.extend_low_i8x16_s(v2), i16x8.extend_low_i8x16_s(v3));
      interleave(q + 64, i16x8.extend_high_i8x16_s(v0), i16x8.extend_high_i8x16_s(v1), i16x8.extend_high_i8x16_s(v2), i16x8.extend_high_i8x16_s(v3));
    }
    v128.store(s, stagedScales(x + o, x1 + o, x2 + o, x3 + o, count), 256);
    s += STAGE_I16;
  }
}

/** Bytes of a q8_K activation block: f32 d, 256 × i8, 16 × i16 sums of 16. */
export const BLOCK_Q8K: usize = 292;

/**
 * Stages `count` (1..4) q8_K rows for the i16 tiles, as stageI16 does q8_0 ones: per 256 elements
 * eight blocks of 32 with the token's d_x (an f32, as K-quant panels keep theirs), and with `sums`
 * a ninth block holding the eight Σx of 32 (from the bsums) against which K-quant panels put their
 * mins. `nb` counts panel blocks (8 or 9 per 256).
 */
@inline export function stageQ8K(sums: bool, x: usize, xs: usize, count: i32, s: usize, nb: usize): void {
  const x1 = count > 1 ? x + xs : x, x2 = count > 2 ? x + 2 * xs : x, x3 = count > 3 ? x + 3 * xs : x;
  const m1 = count > 1 ? i8x16.splat(-1) : i8x16.splat(0), m2 = count > 2 ? m1 : i8x16.splat(0), m3 = count > 3 ? m1 : i8x16.splat(0);
  const zero = i8x16.splat(0);
  for (let b: usize = 0, o: usize = 0; b < nb; b += sums ? 9 : 8, o += BLOCK_Q8K) {
    const d = f32x4(load<f32>(x + o), count > 1 ? load<f32>(x1 + o) : 0, count > 2 ? load<f32>(x2 + o) : 0, count > 3 ? load<f32>(x3 + o) : 0);
    for (let e: usize = o + 4, end = o + 260; e < end; e += 32) {
      for (let h: usize = 0; h < 32; h += 16) {
        const v0 = v128.load(x + e + h), v1 = v128.and(v128.load(x1 + e + h), m1);
        const v2 = v128.and(v128.load(x2 + e + h), m2), v3 = v128.and(v128.load(x3 + e + h), m3);
        const q = s + (h << 3);
        interleave(q, i16x8.extend_low_i8x16_s(v0), i16x8.extend_low_i8x16_s(v1), i16x8.extend_low_i8x16_s(v2), i16x8.extend_low_i8x16_s(v3));
        interleave(q + 64, i16x8.extend_high_i8x16_s(v0), i16x8.extend_high_i8x16_s(v1), i16x8.extend_high_i8x16_s(v2), i16x8.extend_high_i8x16_s(v3));
      }
      v128.store(s, d, 256);
      s += STAGE_I16;
    }
    if (sums) {
      interleave(s, subSums(x + o), v128.and(subSums(x1 + o), m1), v128.and(subSums(x2 + o), m2), v128.and(subSums(x3 + o), m3));
      for (let z: usize = 64; z < 256; z += 16) v128.store(s + z, zero);
      v128.store(s, d, 256);
      s += STAGE_I16;
    }
  }
}

/** i16 lanes Σx of each 32 elements of the q8_K block at p (pairs of its sums of 16; |Σ| ≤ 32 · 128). */
@inline function subSums(p: usize): v128 {
  return i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v128.load(p, 260)), i32x4.extadd_pairwise_i16x8_s(v128.load(p, 276)));
}

/**
 * The d_x of tokens at x0..x3 (0 past count) as f32, times 2^112: a panel keeps d_w · 2^−112
 * (halfRaw, no conversion per weight row), and the product d_w · d_x comes out exact before its one
 * rounding (d_x · 2^112 < 2^128 for every half).
 */
@inline export function stagedScales(x0: usize, x1: usize, x2: usize, x3: usize, count: i32): v128 {
  return f32x4.mul(f32x4(half(x0), count > 1 ? half(x1) : 0, count > 2 ? half(x2) : 0, count > 3 ? half(x3) : 0), f32x4.splat(TWO_112));
}

/** Writes lane t < count of v (token t's sum) to y + t·ys. */
@inline export function storeTokens(y: usize, ys: usize, v: v128, count: i32): void {
  store<f32>(y, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(y + ys, f32x4.extract_lane(v, 1));
  if (count > 2) store<f32>(y + 2 * ys, f32x4.extract_lane(v, 2));
  if (count > 3) store<f32>(y + 3 * ys, f32x4.extract_lane(v, 3));
}

/**
 * f + f32(a) · d_w · d_x (d_w splatted from dw, d_x per lane). The scales' product is a fused
 * multiply-add with 0: d_w may be a subnormal raw half (see rawScales4), which a plain product pays for.
 */
@inline export function scaleInto(f: v128, a: v128, dw: usize, dx: v128): v128 {
  return madd(f32x4.convert_i32x4_s(a), madd(v128.load32_splat(dw), dx, f32x4.splat(0)), f);
}

/**
 * A panel group (`rows` of its rows stored) × eight tokens (the token groups at s and s + sb; `count`
 * of them stored): y[t·ys + 4r].
 */
export function tileI16x8(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0, g0 = f0, g1 = f0, g2 = f0, g3 = f0;
  for (let b: usize = 0; b < nb; b++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    let q = s + b * STAGE_I16, p = g + b * GROUP_I16;
    const end = p + 64;
    while (p < end) {
      const x = v128.load(q), z = v128.load(q + sb);
      let u = v128.load32_splat(p);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(u, x)); c0 = i32x4.add(c0, i32x4.dot_i16x8_s(u, z));
      u = v128.load32_splat(p, 64);
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(u, x)); c1 = i32x4.add(c1, i32x4.dot_i16x8_s(u, z));
      u = v128.load32_splat(p, 128);
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(u, x)); c2 = i32x4.add(c2, i32x4.dot_i16x8_s(u, z));
      u = v128.load32_splat(p, 192);
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(u, x)); c3 = i32x4.add(c3, i32x4.dot_i16x8_s(u, z));
      p += 4; q += 16;
    }
    const dx = v128.load(q), dz = v128.load(q + sb), d = p + 192; // the group's scales
    f0 = scaleInto(f0, a0, d, dx); g0 = scaleInto(g0, c0, d, dz);
    f1 = scaleInto(f1, a1, d + 4, dx); g1 = scaleInto(g1, c1, d + 4, dz);
    f2 = scaleInto(f2, a2, d + 8, dx); g2 = scaleInto(g2, c2, d + 8, dz);
    f3 = scaleInto(f3, a3, d + 12, dx); g3 = scaleInto(g3, c3, d + 12, dz);
  }
  storeRows4x8(y, ys, rows, count, f0, f1, f2, f3, g0, g1, g2, g3);
}

/** Writes a 4-row × 8-token tile: fr holds row r of tokens 0..3, gr of tokens 4..7. */
@inline export function storeRows4x8(y: usize, ys: usize, rows: i32, count: i32,
  f0: v128, f1: v128, f2: v128, f3: v128, g0: v128, g1: v128, g2: v128, g3: v128): void {
  const c = min(count, 4), y4 = y + 4 * ys, c4 = count - 4;
  storeTokens(y, ys, f0, c);
  if (c4 > 0) storeTokens(y4, ys, g0, c4);
  if (rows > 1) { storeTokens(y + 4, ys, f1, c); if (c4 > 0) storeTokens(y4 + 4, ys, g1, c4); }
  if (rows > 2) { storeTokens(y + 8, ys, f2, c); if (c4 > 0) storeTokens(y4 + 8, ys, g2, c4); }
  if (rows > 3) { storeTokens(y + 12, ys, f3, c); if (c4 > 0) storeTokens(y4 + 12, ys, g3, c4); }
}

/** A panel group (`rows` of its rows stored) × the four tokens at s (`count` stored). */
export function tileI16x4(g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32): void {
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
  for (let b: usize = 0; b < nb; b++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let q = s + b * STAGE_I16, p = g + b * GROUP_I16;
    const end = p + 64;
    while (p < end) { // two pairs a step
      const x = v128.load(q), z = v128.load(q, 16);
      a0 = i32x4.add(a0, i32x4.add(i32x4.dot_i16x8_s(v128.load32_splat(p), x), i32x4.dot_i16x8_s(v128.load32_splat(p, 4), z)));
      a1 = i32x4.add(a1, i32x4.add(i32x4.dot_i16x8_s(v128.load32_splat(p, 64), x), i32x4.dot_i16x8_s(v128.load32_splat(p, 68), z)));
      a2 = i32x4.add(a2, i32x4.add(i32x4.dot_i16x8_s(v128.load32_splat(p, 128), x), i32x4.dot_i16x8_s(v128.load32_splat(p, 132), z)));
      a3 = i32x4.add(a3, i32x4.add(i32x4.dot_i16x8_s(v128.load32_splat(p, 192), x), i32x4.dot_i16x8_s(v128.load32_splat(p, 196), z)));
      p += 8; q += 32;
    }
    const dx = v128.load(q), d = p + 192;
    f0 = scaleInto(f0, a0, d, dx); f1 = scaleInto(f1, a1, d + 4, dx);
    f2 = scaleInto(f2, a2, d + 8, dx); f3 = scaleInto(f3, a3, d + 12, dx);
  }
  storeTokens(y, ys, f0, count);
  if (rows > 1) storeTokens(y + 4, ys, f1, count);
  if (rows > 2) storeTokens(y + 8, ys, f2, count);
  if (rows > 3) storeTokens(y + 12, ys, f3, count);
}

/** Decodes the weight row at w (nb blocks) into a panel group: values at pv, scale at ps (per block). */
export type PanelRow = (w: usize, pv: usize, ps: usize, nb: usize) => void;
/** Stages `count` (1..4) activation rows at x, x + xs, … as a token group at s (zeros past count). */
export type StageTokens = (x: usize, xs: usize, count: i32, s: usize, nb: usize) => void;
/** A panel group × staged tokens into y (see tileI16x8 / tileI16x4). */
export type Tile = (g: usize, rows: i32, s: usize, sb: usize, nb: usize, y: usize, ys: usize, count: i32) => void;

/**
 * Matmul by panels (see above), `nb` blocks per row. `decode` fills a row of a panel group whose blocks are
 * `groupBlock` bytes (four rows of `rowValues`, then four 4-byte scales), `stage` a token group
 * (`stageBlock` bytes per block); `tile8` runs a group × 8 tokens (two token groups), `tile4` a
 * group × 4 tokens. Under four tokens, or when the scratch cannot hold two token groups and one
 * panel group, the format's matvec Dot4 serves. `rowBytes` is one weight row, `xs` one activation row.
 *
 * When every token fits the scratch staged, they are staged once and each group of four rows is
 * decoded into one small (L1) buffer just before all tokens pass over it: the weights stream in
 * once, and decoding writes stay in L1 (a panel as large as L2, written while the weights stream
 * through, halves the speed at which they come in from memory). Else a panel of as many rows as the
 * scratch holds is decoded first and the tokens pass over it four or eight at a time.
 */
@inline export function matmulPanel(decode: PanelRow, stage: StageTokens, tile8: Tile, tile4: Tile, nb: usize, groupBlock: usize,
  rowValues: usize, stageBlock: usize, dot: Dot4, rowBytes: usize, xs: usize, w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32,
  ldy: i32, row0: i32, row1: i32): void {
  const ys = <usize>ldy << 2, gb = nb * groupBlock, sb = nb * stageBlock, sc = rowValues << 2;
  // Under four tokens a dot per token costs less than decoding a panel.
  if (n < 4 || (sb << 1) + gb > scratchBytes) { matmulRows(dot, rowBytes, xs, w, scale, x, y, k, n, ldy, row0, row1); return; }
  const s = scratchPtr, staged = <usize>((n + 3) >> 2) * sb;
  if (staged + gb <= scratchBytes) {
    for (let t = 0; t < n; t += 4) stage(x + <usize>t * xs, xs, min(4, n - t), s + <usize>(t >> 2) * sb, nb);
    const g = s + staged;
    for (let r = row0; r < row1; r += 4) {
      const m = min(4, row1 - r);
      for (let i = 0; i < m; i++) decode(w + <usize>(r + i) * rowBytes, g + <usize>i * rowValues, g + sc + (<usize>i << 2), nb);
      for (let t = 0; t < n; t += 8) {
        const yt = y + <usize>t * ys + (<usize>r << 2), st = s + <usize>(t >> 2) * sb, left = n - t;
        if (left > 4) tile8(g, m, st, sb, nb, yt, ys, min(8, left));
        else tile4(g, m, st, sb, nb, yt, ys, left);
      }
    }
    return;
  }
  const panel = s + (sb << 1);
  const rows = <i32>((scratchBytes - (sb << 1)) / gb) << 2; // as many as the scratch holds (≤ 256 KiB: L2)
  for (let b0 = row0; b0 < row1; b0 += rows) {
    const m = min(rows, row1 - b0);
    for (let r = 0; r < m; r++) {
      const g = panel + <usize>(r >> 2) * gb, i = <usize>(r & 3);
      decode(w + <usize>(b0 + r) * rowBytes, g + i * rowValues, g + sc + (i << 2), nb);
    }
    for (let t = 0; t < n;) {
      const yt = y + <usize>t * ys + (<usize>b0 << 2), left = n - t;
      stage(x + <usize>t * xs, xs, min(4, left), s, nb);
      if (left > 4) stage(x + <usize>(t + 4) * xs, xs, min(4, left - 4), s + sb, nb);
      for (let r = 0; r < m; r += 4) {
        const g = panel + <usize>(r >> 2) * gb, yr = yt + (<usize>r << 2);
        if (left > 4) tile8(g, min(4, m - r), s, sb, nb, yr, ys, min(8, left));
        else tile4(g, min(4, m - r), s, sb, nb, yr, ys, left);
      }
      t += left > 4 ? 8 : 4;
    }
  }
}
