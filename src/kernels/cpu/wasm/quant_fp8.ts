// FP8 E4M3 weights with one scale per 128×128 tile — E8M0 bytes (DeepSeek V4 `.scale`) or f32
// (V3 `weight_scale_inv`), [ceil(rows/128), ceil(k/128)] row-major — against f32 activations:
// y[r] = Σ_tiles s · Σ_{j in tile} e4m3(w_j) · x_j.
//
// E4M3 → f32 without tables: in 16-bit lanes, a byte moved to the high half and shifted right
// (arithmetic) by 4, then masked with 0x87F0, is the top half of the f32 whose value is the E4M3
// value · 2^−120 — sign, exponent field eeee, mantissa mmm; subnormal codes become f32 subnormals,
// exactly. (Subnormal f32 operands take a slow path in the multiplier: exact, but a fraction of a
// percent of such codes halves the speed. Real weights have few — below 2^−6 of their tile's
// scale — so they are not special-cased.)
//
// The 2^120 is not multiplied into every weight: matvec multiplies the activations by 2^a instead
// (once per call, with the transpose below), a = min(120, 126 − exponent of max|x|) so x·2^a stays finite,
// and folds 2^(120−a) into the tile scale; products equal e4m3·x·2^(a−120). Matmul runs one row
// against four tokens at a time, each 16-byte piece decoded once for the four (in element order,
// 2^120 and the tile scale multiplied in).
import { TOP_HALVES, acc16, hsum4f, hsumf, madd, matvecRows } from './quant_common';
import { scratchBytes, scratchPtr } from './scratch';

/** 16-bit lanes 0x87F0: sign, exponent and mantissa of an E4M3 top half. */
const MASK = memory.data<u16>([0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0, 0x87F0], 16);
const TWO_120: f32 = reinterpret<f32>(0x7B800000);

/** f32 of one E4M3 byte times 2^−120 (the scalar form of the above). */
@inline function e4m3Raw(b: u32): f32 {
  return reinterpret<f32>((<i32><i8>b << 20) & <i32>0x87F00000);
}

/** a = min(120, 126 − ⌊log2 max|x|⌋) over the k floats at x: x · 2^a stays below 2^127. */
@inline function preScale(x: usize, k: i32): i32 {
  let m = f32x4.splat(0);
  const end = x + (<usize>(k & ~3) << 2);
  for (let p = x; p < end; p += 16) m = f32x4.max(m, f32x4.abs(v128.load(p)));
  let amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (let p = end; p < end + (<usize>(k & 3) << 2); p += 4) amax = max(amax, abs(load<f32>(p)));
  return min(120, 253 - <i32>(reinterpret<u32>(amax) >> 23));
}

/** 2^e as f32, e in the normal range. */
@inline function pow2(e: i32): f32 { return reinterpret<f32>((e + 127) << 23); }

/** Scale of tile (tr, tc): the E8M0 byte's power of two or the f32, times 2^post. */
@inline function tileScale(scale: usize, f32scale: bool, tr: i32, tc: i32, tiles: i32, post: i32): f32 {
  const i = <usize>(tr * tiles + tc);
  if (f32scale) return load<f32>(scale + (i << 2)) * pow2(post);
  return <f32>reinterpret<f64>(<u64>(<i32>load<u8>(scale + i) + 896 + post) << 52);
}

// Matvec decodes without shuffles: in 16-bit lanes the even bytes (shifted up by 8) and the odd
// bytes (already on top) each give 8 top halves; an f32 lane's top half is either its own low 16
// bits shifted up (<< 16) or its high 16 bits kept (& 0xFFFF0000). The four f32x4 of 16 bytes then
// hold elements {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}, and the activations are
// transposed to match once per call into this thread's scratch (or, where x does not fit there,
// once per step, shared by the four rows).

/** acc + Σ of 16 E4M3 weights (· 2^−120) times the transposed activations xa (elements 0,4,8,12), xb, xc, xd. */
@inline function dot16(acc: v128, b: v128, xa: v128, xb: v128, xc: v128, xd: v128, m: v128, top: v128): v128 {
  const ev = v128.and(i16x8.shr_s(i16x8.shl(b, 8), 4), m), od = v128.and(i16x8.shr_s(b, 4), m);
  return f32x4.add(acc, madd(i32x4.shl(ev, 16), xa, madd(v128.and(ev, top), xb,
    madd(i32x4.shl(od, 16), xc, f32x4.mul(v128.and(od, top), xd)))));
}

/** 16 activations at xp as four f32x4 of elements {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}, times xs, stored at out. */
@inline function transpose16(xp: usize, xs: v128, out: usize): void {
  const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
  const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(out, f32x4.mul(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), xs));
  v128.store(out, f32x4.mul(v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), xs), 16);
  v128.store(out, f32x4.mul(v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), xs), 32);
  v128.store(out, f32x4.mul(v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), xs), 48);
}

/**
 * Rows r0..r3 against x. `staged`: xt holds x·2^a transposed (transpose16) for every whole 16
 * columns, made once per call in this thread's scratch; else (x does not fit there) each step
 * transposes its 16 columns itself.
 */
@inline function dot4Fp8(f32scale: bool, staged: bool, w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32, xt: usize): v128 {
  const rb = <usize>k, tiles = (k + 127) >> 7;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  const xs = f32x4.splat(pow2(a)), m = v128.load(MASK), top = v128.load(TOP_HALVES);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
  for (let c = 0; c < k; c += 128) {
    const tc = c >> 7, end = min(k, c + 128);
    let p0 = f32x4.splat(0), p1 = p0, p2 = p0, p3 = p0;
    let j = c;
    for (; j + 16 <= end; j += 16) {
      const o = <usize>j, xq = xt + (o << 2);
      let xa = m, xb = m, xc = m, xd = m;
      if (staged) {
        xa = v128.load(xq); xb = v128.load(xq, 16); xc = v128.load(xq, 32); xd = v128.load(xq, 48);
      } else {
        const xp = x + (o << 2);
        const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
        const u0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), u1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
        const u2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), u3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        xa = f32x4.mul(v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), xs); xb = f32x4.mul(v128.shuffle<f32>(u2, u3, 0, 1, 4, 5), xs);
        xc = f32x4.mul(v128.shuffle<f32>(u0, u1, 2, 3, 6, 7), xs); xd = f32x4.mul(v128.shuffle<f32>(u2, u3, 2, 3, 6, 7), xs);
      }
      p0 = dot16(p0, v128.load(w0 + o), xa, xb, xc, xd, m, top);
      p1 = dot16(p1, v128.load(w1 + o), xa, xb, xc, xd, m, top);
      p2 = dot16(p2, v128.load(w2 + o), xa, xb, xc, xd, m, top);
      p3 = dot16(p3, v128.load(w3 + o), xa, xb, xc, xd, m, top);
    }
    // the last 0–15 columns of a row whose length is not a multiple of 16
    let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
    for (; j < end; j++) {
      const xv = load<f32>(x + (<usize>j << 2)) * pow2(a), o = <usize>j;
      q0 += e4m3Raw(load<u8>(w0 + o)) * xv; q1 += e4m3Raw(load<u8>(w1 + o)) * xv;
      q2 += e4m3Raw(load<u8>(w2 + o)) * xv; q3 += e4m3Raw(load<u8>(w3 + o)) * xv;
    }
    const s0 = tileScale(scale, f32scale, r0 >> 7, tc, tiles, 120 - a), s1 = tileScale(scale, f32scale, r1 >> 7, tc, tiles, 120 - a);
    const s2 = tileScale(scale, f32scale, r2 >> 7, tc, tiles, 120 - a), s3 = tileScale(scale, f32scale, r3 >> 7, tc, tiles, 120 - a);
    a0 = madd(p0, f32x4.splat(s0), a0); t0 += q0 * s0;
    a1 = madd(p1, f32x4.splat(s1), a1); t1 += q1 * s1;
    a2 = madd(p2, f32x4.splat(s2), a2); t2 += q2 * s2;
    a3 = madd(p3, f32x4.splat(s3), a3); t3 += q3 * s3;
  }
  return f32x4.add(hsum4f(a0, a1, a2, a3), f32x4(t0, t1, t2, t3));
}

// The Dot4 forms: scratchPtr is read inside (a Dot4 has one spare argument, taken by the pre-scale).
function dot4_e8m0(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(false, false, w, scale, r0, r1, r2, r3, x, k, a, 0);
}
function dot4_f32(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(true, false, w, scale, r0, r1, r2, r3, x, k, a, 0);
}
function dot4_e8m0_staged(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(false, true, w, scale, r0, r1, r2, r3, x, k, a, scratchPtr);
}
function dot4_f32_staged(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, a: i32): v128 {
  return dot4Fp8(true, true, w, scale, r0, r1, r2, r3, x, k, a, scratchPtr);
}

/** Stages x·2^a transposed in scratch when it fits; says whether it did. */
@inline function stage(x: usize, k: i32, a: i32): bool {
  if (<usize>k << 2 > scratchBytes) return false;
  const xs = f32x4.splat(pow2(a));
  for (let j = 0; j + 16 <= k; j += 16) transpose16(x + (<usize>j << 2), xs, scratchPtr + (<usize>j << 2));
  return true;
}

export function matvec_f8_e4m3_e8m0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const a = preScale(x, k);
  if (stage(x, k, a)) matvecRows(dot4_e8m0_staged, w, scale, x, y, k, row0, row1, a);
  else matvecRows(dot4_e8m0, w, scale, x, y, k, row0, row1, a);
}
export function matvec_f8_e4m3_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const a = preScale(x, k);
  if (stage(x, k, a)) matvecRows(dot4_f32_staged, w, scale, x, y, k, row0, row1, a);
  else matvecRows(dot4_f32, w, scale, x, y, k, row0, row1, a);
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

@inline function matmulFp8(f32scale: bool, w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const tiles = (k + 127) >> 7, xs = <usize>k << 2, ys = <usize>ldy << 2, m = v128.load(MASK);
  for (let r = row0; r < row1; r++) {
    const wr = w + <usize>r * <usize>k;
    for (let t0 = 0; t0 < n; t0 += 4) {
      // tokens t0..t0+3, the last repeated when fewer are left
      const c = min(4, n - t0), x0 = x + <usize>t0 * xs;
      const x1 = x0 + <usize>min(1, c - 1) * xs, x2 = x0 + <usize>min(2, c - 1) * xs, x3 = x0 + <usize>(c - 1) * xs;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
      for (let c0 = 0; c0 < k; c0 += 128) {
        const end = min(k, c0 + 128), s = tileScale(scale, f32scale, r >> 7, c0 >> 7, tiles, 0), sc = f32x4.splat(s);
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
  matmulFp8(false, w, scale, x, y, k, n, ldy, row0, row1);
}
export function matmul_f8_e4m3_f32(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulFp8(true, w, scale, x, y, k, n, ldy, row0, row1);
}
