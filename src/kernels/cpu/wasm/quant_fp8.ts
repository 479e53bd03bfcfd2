// FP8 E4M3 weights with one scale per 128×128 tile — E8M0 bytes (DeepSeek V4 `.scale`) or f32
// (V3 `weight_scale_inv`), [ceil(rows/128), ceil(k/128)] row-major — or per 32×32 block (E8M0,
// V4.1: `_b32`, [ceil(rows/32), ceil(k/32)]) against f32 activations:
// y[r] = Σ_tiles s · Σ_{j in tile} e4m3(w_j) · x_j.
//
// The tile side is 2^lt: every helper takes lt as a constant argument (7 or 5) that folds, so each
// export is straight-line code for its own tile size.
//
// E4M3 → f32 without tables: in 16-bit lanes, a byte moved to the high half and shifted right
// (arithmetic) by 4, then masked with 0x87F0, is the top half of the f32 whose value is the E4M3
// value · 2^−120 — sign, exponent field eeee, mantissa mmm; subnormal codes become f32 subnormals,
// exactly. (Subnormal f32 operands take a slow path in the multiplier: exact, but a fraction of a
// percent of such codes halves the speed. Real weights have few — below 2^−6 of their tile's
// scale — so they are not special-cased.)
//
// The 2^120 is not multiplied into every weight: matvec folds it, with the tile scales, into the
// activations it stages (below). Matmul runs one row against four tokens at a time, each 16-byte
// piece decoded once for the four (in element order, 2^120 and the tile scale multiplied in).
import { acc16, hsum4f, hsumf, madd, matvecRows } from './quant_common';
import { scratchBytes, scratchPtr } from './scratch';

/** 16-bit lanes 0x87F0: sign, exponent and mantissa of an E4M3 top half. */
const MASK = memory.data<u16>([0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0], 16);
/** i32 lanes 0x87F00000: the same for the top half of an f32 lane, its low half cleared. */
const MASK_HI = memory.data<u32>([0x87F00000, 0x87F00000, 0x87F00000, 0x87F00000], 16);
const TWO_120: f32 = reinterpret<f32>(0x7B800000);

/** f32 of one E4M3 byte times 2^−120 (the scalar form of the above). */
@inline function e4m3Raw(b: u32): f32 {
  return reinterpret<f32>((<i32><i8>b << 20) & <i32>0x87F00000);
}

/** Scale of tile (tr, tc): the E8M0 byte's power of two or the f32. */
@inline function tileScale(scale: usize, f32scale: bool, tr: i32, tc: i32, tiles: i32): f32 {
  const i = <usize>(tr * tiles + tc);
  if (f32scale) return load<f32>(scale + (i << 2));
  return <f32>reinterpret<f64>(<u64>(<i32>load<u8>(scale + i) + 896) << 52);
}

// ---- matvec: tile row by tile row, the tile scales folded into the activations -------------------
//
// The rows of a tile row share each column tile's scale, so matvec runs tile row by tile row and
// stages x'_j = x_j · s(tr, tc) · 2^a once per tile row (exact for E8M0 scales; for f32 ones, one
// rounding of x · s): the inner loop is then only decode and fused multiply-adds along the row, y =
// 2^(120−a) · Σ_j raw(w_j) · x'_j, with a = min(120, 126 − B) and B a bound on log2 max|x_j · s|
// over the tile row, so x' stays finite.
//
// The decode needs no shuffles: in 16-bit lanes the even bytes (shifted up by 8) and the odd bytes
// (already on top), shifted right (arithmetic) by 4, hold 8 top halves each; masked with MASK_HI an
// f32 lane keeps its high half's, and shifted up by 16 first, its low half's. The four f32x4 of 16
// bytes then hold elements {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}: x' is staged in that
// order in this thread's scratch (where it does not fit, each step makes its 16 columns itself,
// shared by the four rows). 13 operations per 16 weights: the bound of this kernel on 128-bit SIMD.

/** 2^e as f32 for −149 ≤ e ≤ 127 (subnormal below −126), exact. */
@inline function pow2any(e: i32): f32 { return <f32>reinterpret<f64>(<u64>(e + 1023) << 52); }
/** v · 2^e, exact while the result is a normal f32, for |e| ≤ 252: two steps keep each factor an f32. */
@inline function scalePow2(v: v128, e: i32): v128 {
  return f32x4.mul(f32x4.mul(v, f32x4.splat(pow2any(e >> 1))), f32x4.splat(pow2any(e - (e >> 1))));
}

/** ⌊log2 |v|⌋ + 1, an upper bound of log2 |v| (−126 for zero and subnormals). */
@inline function log2Bound(v: f32): i32 { return max(1, <i32>(reinterpret<u32>(v) >> 23 & 0xFF)) - 126; }

/** Bound on log2 max|x_j| over columns [c, end). */
@inline function xBound(x: usize, c: i32, end: i32): i32 {
  let m = f32x4.splat(0);
  let j = c;
  for (; j + 4 <= end; j += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>j << 2))));
  let amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < end; j++) amax = max(amax, abs(load<f32>(x + (<usize>j << 2))));
  return log2Bound(amax);
}

/** Bound on log2 of the scale of tile i. */
@inline function scaleBound(f32scale: bool, scale: usize, i: usize): i32 {
  return f32scale ? log2Bound(abs(load<f32>(scale + (i << 2)))) : <i32>load<u8>(scale + i) - 126;
}

/**
 * The exponent a of tile row tr (tiles of side 2^lt); the column tiles' x bounds are read from xb
 * (i32 each), or worked out from x where xb is 0.
 */
@inline function tileRowShiftOf(lt: i32, f32scale: bool, scale: usize, x: usize, k: i32, tr: i32, xb: usize): i32 {
  const tiles = (k + (1 << lt) - 1) >> lt;
  let b = -1000;
  for (let tc = 0; tc < tiles; tc++) {
    const xe = xb ? load<i32>(xb + (<usize>tc << 2)) : xBound(x, tc << lt, min(k, (tc + 1) << lt));
    b = max(b, xe + scaleBound(f32scale, scale, <usize>(tr * tiles + tc)));
  }
  return min(120, 126 - b);
}

// Called once per tile row, so not inlined: one function per tile size.
function tileRowShift(f32scale: bool, scale: usize, x: usize, k: i32, tr: i32, xb: usize): i32 {
  return tileRowShiftOf(7, f32scale, scale, x, k, tr, xb);
}
function tileRowShift_b32(f32scale: bool, scale: usize, x: usize, k: i32, tr: i32, xb: usize): i32 {
  return tileRowShiftOf(5, f32scale, scale, x, k, tr, xb);
}

/** x' = x · s · 2^a for 4 columns of tile i (the E8M0 power of two joins 2^a). */
@inline function xPrime(f32scale: bool, scale: usize, i: usize, a: i32, v: v128): v128 {
  if (f32scale) return scalePow2(f32x4.mul(v, f32x4.splat(load<f32>(scale + (i << 2)))), a);
  return scalePow2(v, <i32>load<u8>(scale + i) - 127 + a);
}

/** Of 16 values v0..v3 in element order, f32x4 q (0..3) of the staged order {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}. */
@inline function transposed(v0: v128, v1: v128, v2: v128, v3: v128, q: i32): v128 {
  const lo = q == 0 || q == 2;
  const t0 = lo ? v128.shuffle<f32>(v0, v1, 0, 4, 1, 5) : v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
  const t1 = lo ? v128.shuffle<f32>(v2, v3, 0, 4, 1, 5) : v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  return q < 2 ? v128.shuffle<f32>(t0, t1, 0, 1, 4, 5) : v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
}

/** Stages x' of tile row tr in this thread's scratch: whole 16s transposed, the last 0–15 columns as they are. */
@inline function stage(lt: i32, f32scale: bool, scale: usize, x: usize, k: i32, tr: i32, a: i32): void {
  const tiles = (k + (1 << lt) - 1) >> lt, k16 = k & ~15, xt = scratchPtr;
  for (let tc = 0; tc < tiles; tc++) {
    const i = <usize>(tr * tiles + tc), end = min(k16, (tc + 1) << lt);
    let j = tc << lt;
    for (; j < end; j += 16) {
      const xp = x + (<usize>j << 2), out = xt + (<usize>j << 2);
      const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
      v128.store(out, xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 0)));
      v128.store(out, xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 1)), 16);
      v128.store(out, xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 2)), 32);
      v128.store(out, xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 3)), 48);
    }
    for (; j < min(k, (tc + 1) << lt); j++) {
      const o = <usize>j << 2;
      store<f32>(xt + o, f32x4.extract_lane(xPrime(f32scale, scale, i, a, f32x4.splat(load<f32>(x + o))), 0));
    }
  }
}

/** Even / odd bytes of 16 E4M3 weights at the top of 16-bit lanes, shifted right (arithmetic) by 4. */
@inline function evens(b: v128): v128 { return i16x8.shr_s(i16x8.shl(b, 8), 4); }
@inline function odds(b: v128): v128 { return i16x8.shr_s(b, 4); }
/** acc + (the f32 values · 2^−120 of h's low 16-bit lanes, of its high ones) · (xl, xh). */
@inline function madd2(acc: v128, h: v128, xl: v128, xh: v128, m: v128): v128 {
  return madd(v128.and(h, m), xh, madd(v128.and(i32x4.shl(h, 16), m), xl, acc));
}

/**
 * Rows r0..r3 (one tile row) against x, times 2^(120−a). `staged`: x points at x' in this thread's
 * scratch (the tile side lt then plays no part); else x is the activations and each step makes x'
 * of its 16 columns (16 divides the tile side: they share one scale).
 */
@inline function dot4Fp8(lt: i32, f32scale: bool, staged: bool, w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  const rb = <usize>k, k16 = k & ~15, tiles = (k + (1 << lt) - 1) >> lt, tr = r0 >> lt;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  const m = v128.load(MASK_HI);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let o: usize = 0; o < <usize>k16; o += 16) {
    const xq = x + (o << 2);
    let xa = m, xb = m, xc = m, xd = m;
    if (staged) {
      xa = v128.load(xq); xb = v128.load(xq, 16); xc = v128.load(xq, 32); xd = v128.load(xq, 48);
    } else {
      const i = <usize>(tr * tiles) + (o >> <usize>lt);
      const v0 = v128.load(xq), v1 = v128.load(xq, 16), v2 = v128.load(xq, 32), v3 = v128.load(xq, 48);
      xa = xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 0)); xb = xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 1));
      xc = xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 2)); xd = xPrime(f32scale, scale, i, a, transposed(v0, v1, v2, v3, 3));
    }
    const b0 = v128.load(w0 + o), b1 = v128.load(w1 + o), b2 = v128.load(w2 + o), b3 = v128.load(w3 + o);
    a0 = madd2(madd2(a0, evens(b0), xa, xb, m), odds(b0), xc, xd, m);
    a1 = madd2(madd2(a1, evens(b1), xa, xb, m), odds(b1), xc, xd, m);
    a2 = madd2(madd2(a2, evens(b2), xa, xb, m), odds(b2), xc, xd, m);
    a3 = madd2(madd2(a3, evens(b3), xa, xb, m), odds(b3), xc, xd, m);
  }
  // the last 0–15 columns of a row whose length is not a multiple of 16
  let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
  for (let j = k16; j < k; j++) {
    const o = <usize>j;
    const xv = staged ? load<f32>(x + (o << 2))
      : f32x4.extract_lane(xPrime(f32scale, scale, <usize>(tr * tiles + (j >> lt)), a, f32x4.splat(load<f32>(x + (o << 2)))), 0);
    q0 += e4m3Raw(load<u8>(w0 + o)) * xv; q1 += e4m3Raw(load<u8>(w1 + o)) * xv;
    q2 += e4m3Raw(load<u8>(w2 + o)) * xv; q3 += e4m3Raw(load<u8>(w3 + o)) * xv;
  }
  const v = f32x4.add(hsum4f(a0, a1, a2, a3), f32x4(q0, q1, q2, q3));
  return scalePow2(v, 120 - a);
}

// The Dot4 forms; `a` comes in as the driver's aux argument. The staged one serves every tile size.
function dot4_e8m0(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(7, false, false, w, scale, r0, r1, r2, r3, x, k, a);
}
function dot4_e8m0_b32(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(5, false, false, w, scale, r0, r1, r2, r3, x, k, a);
}
function dot4_f32(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(7, true, false, w, scale, r0, r1, r2, r3, x, k, a);
}
function dot4_staged(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(7, false, true, w, scale, r0, r1, r2, r3, x, k, a);
}

/**
 * Tile row by tile row (see above). Staged: x' at the start of this thread's scratch, then the
 * column tiles' x bounds (worked out once per call).
 */
@inline function matvecFp8(lt: i32, f32scale: bool, w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const tiles = (k + (1 << lt) - 1) >> lt, xb = scratchPtr + (<usize>k << 2);
  const staged = (<usize>(k + tiles) << 2) <= scratchBytes;
  if (staged) for (let tc = 0; tc < tiles; tc++) store<i32>(xb + (<usize>tc << 2), xBound(x, tc << lt, min(k, (tc + 1) << lt)));
  for (let r = row0; r < row1;) {
    const tr = r >> lt, end = min(row1, (tr + 1) << lt);
    const a = lt == 5 ? tileRowShift_b32(f32scale, scale, x, k, tr, staged ? xb : 0) : tileRowShift(f32scale, scale, x, k, tr, staged ? xb : 0);
    if (staged) {
      stage(lt, f32scale, scale, x, k, tr, a);
      matvecRows(dot4_staged, w, 0, scratchPtr, y, k, r, end, a);
    } else if (f32scale) matvecRows(dot4_f32, w, scale, x, y, k, r, end, a);
    else if (lt == 5) matvecRows(dot4_e8m0_b32, w, scale, x, y, k, r, end, a);
    else matvecRows(dot4_e8m0, w, scale, x, y, k, r, end, a);
    r = end;
  }
}

export function matvec_f8_e4m3_e8m0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecFp8(7, false, w, scale, x, y, k, row0, row1);
}
export function matvec_f8_e4m3_e8m0_b32(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecFp8(5, false, w, scale, x, y, k, row0, row1);
}
export function matvec_f8_e4m3_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecFp8(7, true, w, scale, x, y, k, row0, row1);
}

// ---- matmul: one row against four tokens at a time, each 16-byte piece decoded once for the four --

/** f32x4 i (0..3) of 16 E4M3 bytes in element order, times 2^120 (exact, normal) and then the tile scale `sc`. */
@inline function weights16(b: v128, m: v128, sc: v128, i: i32): v128 {
  const z = i32x4.splat(0);
  const h = v128.and(i16x8.shr_s(i < 2
    ? v128.shuffle<u8>(z, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
    : v128.shuffle<u8>(z, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), 4), m);
  const raw = (i & 1) == 0 ? v128.shuffle<u16>(z, h, 0, 8, 1, 9, 2, 10, 3, 11) : v128.shuffle<u16>(z, h, 4, 12, 5, 13, 6, 14, 7, 15);
  return f32x4.mul(f32x4.mul(raw, f32x4.splat(TWO_120)), sc);
}

@inline function matmulFp8(lt: i32, f32scale: bool, w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const tile = 1 << lt, tiles = (k + tile - 1) >> lt, xs = <usize>k << 2, ys = <usize>ldy << 2, m = v128.load(MASK);
  for (let r = row0; r < row1; r++) {
    const wr = w + <usize>r * <usize>k;
    for (let t0 = 0; t0 < n; t0 += 4) {
      // tokens t0..t0+3, the last repeated when fewer are left
      const c = min(4, n - t0), x0 = x + <usize>t0 * xs;
      const x1 = x0 + <usize>min(1, c - 1) * xs, x2 = x0 + <usize>min(2, c - 1) * xs, x3 = x0 + <usize>(c - 1) * xs;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
      for (let c0 = 0; c0 < k; c0 += tile) {
        const end = min(k, c0 + tile), s = tileScale(scale, f32scale, r >> lt, c0 >> lt, tiles), sc = f32x4.splat(s);
        let j = c0;
        for (; j + 16 <= end; j += 16) {
          const b = v128.load(wr + <usize>j), o = <usize>j << 2;
          const w0 = weights16(b, m, sc, 0), w1 = weights16(b, m, sc, 1), w2 = weights16(b, m, sc, 2), w3 = weights16(b, m, sc, 3);
          a0 = acc16(a0, w0, w1, w2, w3, x0 + o); a1 = acc16(a1, w0, w1, w2, w3, x1 + o);
          a2 = acc16(a2, w0, w1, w2, w3, x2 + o); a3 = acc16(a3, w0, w1, w2, w3, x3 + o);
        }
        // the last 0–15 columns of a row whose length is not a multiple of 16
        for (; j < end; j++) {
          const v = e4m3Raw(load<u8>(wr + <usize>j)) * TWO_120 * s, o = <usize>j << 2;
          q0 += v * load<f32>(x0 + o); q1 += v * load<f32>(x1 + o); q2 += v * load<f32>(x2 + o); q3 += v * load<f32>(x3 + o);
        }
      }
      const yp = y + <usize>t0 * ys + (<usize>r << 2);
      store<f32>(yp, hsumf(a0) + q0);
      if (c > 1) store<f32>(yp + ys, hsumf(a1) + q1);
      if (c > 2) store<f32>(yp + 2 * ys, hsumf(a2) + q2);
      if (c > 3) store<f32>(yp + 3 * ys, hsumf(a3) + q3);
    }
  }
}

export function matmul_f8_e4m3_e8m0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulFp8(7, false, w, scale, x, y, k, n, ldy, row0, row1);
}
export function matmul_f8_e4m3_e8m0_b32(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulFp8(5, false, w, scale, x, y, k, n, ldy, row0, row1);
}
export function matmul_f8_e4m3_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulFp8(7, true, w, scale, x, y, k, n, ldy, row0, row1);
}
