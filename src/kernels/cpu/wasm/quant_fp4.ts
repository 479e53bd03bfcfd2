// FP4 E2M1 weights, two per byte (low nibble = even element), with one E8M0 scale per row per 32
// inputs ([rows, k/32] bytes; DeepSeek V4 routed experts), against f32 activations:
// y[r] = Σ_groups 2^(e−127) · Σ_{32 in group} e2m1(w_j) · x_j.
//
// E2M1 → f32 by two byte swizzles: an E2M1 value is an f32 whose low 16 bits are zero, so one
// 16-entry table gives the low byte of its top half and one the high byte, and interleaving them
// gives 16-bit top halves. (All normal floats: a subnormal f32 operand, as the 2^−126-scaled bit
// pattern would make of code 1 = 0.5, costs the multiplier a slow path.) Matvec widens the halves
// to f32 without shuffles — a lane's own low half shifted up, or its high half kept — so its f32x4
// hold elements {0,4,8,12}, {2,6,10,14} (low nibbles) and {1,5,9,13}, {3,7,11,15} (high nibbles)
// of each 16, and the activations are transposed to match once per call into this thread's scratch
// (or, where x does not fit there, once per step, shared by the four rows);
// each group's scale multiplies the group's sum. Matmul decodes a group once, in element order with
// the scale folded in, for four tokens at a time.
import { LOW_NIBBLES, TOP_HALVES, acc16, e8m0, hsum4f, hsumf, lookup16, madd, matvecRows } from './quant_common';
import { scratchBytes, scratchPtr } from './scratch';

// f32 top halves of 0, 0.5, 1, 1.5, 2, 3, 4, 6 (then negated): 0x0000, 0x3F00, 0x3F80, 0x3FC0,
// 0x4000, 0x4040, 0x4080, 0x40C0.
const TABLES = memory.data<u8>([
  0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0, 0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0, // low bytes
  0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40, 0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0, // high bytes
], 16);

/** Interleaves bytes 0..7 (or 8..15) of a and b: a0, b0, a1, b1, … */
@inline function zip8(a: v128, b: v128, high: bool): v128 {
  return high
    ? v128.shuffle<u8>(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
    : v128.shuffle<u8>(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
/** f32 lanes whose top halves are 16-bit lanes 0..3 (or 4..7) of h. */
@inline function widen(h: v128, high: bool): v128 {
  const z = i32x4.splat(0);
  return high ? v128.shuffle<u16>(z, h, 4, 12, 5, 13, 6, 14, 7, 15) : v128.shuffle<u16>(z, h, 0, 8, 1, 9, 2, 10, 3, 11);
}
/** Top halves of the f32 values of the 8 elements whose codes are bytes 0..7 (or 8..15) of c. */
@inline function tops(c: v128, high: bool): v128 {
  return zip8(lookup16(v128.load(TABLES), c), lookup16(v128.load(TABLES, 16), c), high);
}

/**
 * acc + s · Σ of a group's 32 weights (its 16 bytes at p) times the transposed activations: xa/xb/xc/xd
 * hold elements {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15} of the first 16, ya..yd of the second.
 */
@inline function groupDot(acc: v128, p: usize, s: f32, top: v128,
  xa: v128, xb: v128, xc: v128, xd: v128, ya: v128, yb: v128, yc: v128, yd: v128): v128 {
  const b = v128.load(p);
  const lo = v128.and(b, v128.load(LOW_NIBBLES)), hi = v128.and(i16x8.shr_u(b, 4), v128.load(LOW_NIBBLES));
  const tl = v128.load(TABLES), th = v128.load(TABLES, 16);
  const el = lookup16(tl, lo), eh = lookup16(th, lo); // even elements
  const ol = lookup16(tl, hi), oh = lookup16(th, hi); // odd elements
  const e0 = zip8(el, eh, false), e1 = zip8(el, eh, true), o0 = zip8(ol, oh, false), o1 = zip8(ol, oh, true);
  const u = madd(i32x4.shl(e0, 16), xa, madd(v128.and(e0, top), xb, madd(i32x4.shl(o0, 16), xc, f32x4.mul(v128.and(o0, top), xd))));
  const v = madd(i32x4.shl(e1, 16), ya, madd(v128.and(e1, top), yb, madd(i32x4.shl(o1, 16), yc, f32x4.mul(v128.and(o1, top), yd))));
  return madd(f32x4.add(u, v), f32x4.splat(s), acc);
}

/** 16 activations at xp as four f32x4 of elements {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}, stored at out. */
@inline function transpose16(xp: usize, out: usize): void {
  const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
  const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(out, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(out, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 16);
  v128.store(out, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
  v128.store(out, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 48);
}

/**
 * Rows r0..r3 against x. `staged`: this thread's scratch holds x transposed (transpose16, every 16
 * columns), made once per call; else (x does not fit there) each step transposes its group itself.
 */
@inline function dot4At(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, staged: bool): v128 {
  const groups = k >> 5, rb = <usize>(k >> 1);
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  const s0 = scale + <usize>(r0 * groups), s1 = scale + <usize>(r1 * groups);
  const s2 = scale + <usize>(r2 * groups), s3 = scale + <usize>(r3 * groups);
  const top = v128.load(TOP_HALVES), xt = scratchPtr;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let g = 0; g < groups; g++) {
    const o = <usize>g << 4, xq = xt + (<usize>g << 7);
    let xa = top, xb = top, xc = top, xd = top, ya = top, yb = top, yc = top, yd = top;
    if (staged) {
      xa = v128.load(xq); xb = v128.load(xq, 16); xc = v128.load(xq, 32); xd = v128.load(xq, 48);
      ya = v128.load(xq, 64); yb = v128.load(xq, 80); yc = v128.load(xq, 96); yd = v128.load(xq, 112);
    } else {
      const xp = x + (<usize>g << 7);
      let v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
      let t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
      let t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
      xa = v128.shuffle<f32>(t0, t1, 0, 1, 4, 5); xc = v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
      xb = v128.shuffle<f32>(t2, t3, 0, 1, 4, 5); xd = v128.shuffle<f32>(t2, t3, 2, 3, 6, 7);
      v0 = v128.load(xp, 64); v1 = v128.load(xp, 80); v2 = v128.load(xp, 96); v3 = v128.load(xp, 112);
      t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5); t1 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
      t2 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7); t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
      ya = v128.shuffle<f32>(t0, t1, 0, 1, 4, 5); yc = v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
      yb = v128.shuffle<f32>(t2, t3, 0, 1, 4, 5); yd = v128.shuffle<f32>(t2, t3, 2, 3, 6, 7);
    }
    a0 = groupDot(a0, w0 + o, e8m0(load<u8>(s0 + <usize>g)), top, xa, xb, xc, xd, ya, yb, yc, yd);
    a1 = groupDot(a1, w1 + o, e8m0(load<u8>(s1 + <usize>g)), top, xa, xb, xc, xd, ya, yb, yc, yd);
    a2 = groupDot(a2, w2 + o, e8m0(load<u8>(s2 + <usize>g)), top, xa, xb, xc, xd, ya, yb, yc, yd);
    a3 = groupDot(a3, w3 + o, e8m0(load<u8>(s3 + <usize>g)), top, xa, xb, xc, xd, ya, yb, yc, yd);
  }
  return hsum4f(a0, a1, a2, a3);
}

function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  return dot4At(w, scale, r0, r1, r2, r3, x, k, false);
}
function dot4Staged(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  return dot4At(w, scale, r0, r1, r2, r3, x, k, true);
}

export function matvec_fp4_e2m1_e8m0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  if (<usize>k << 2 <= scratchBytes) {
    for (let j = 0; j < k; j += 16) transpose16(x + (<usize>j << 2), scratchPtr + (<usize>j << 2));
    matvecRows(dot4Staged, w, scale, x, y, k, row0, row1);
  } else matvecRows(dot4, w, scale, x, y, k, row0, row1);
}

/** Matmul: one row against four tokens at a time, each group decoded once for the four. */
export function matmul_fp4_e2m1_e8m0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const groups = k >> 5, xs = <usize>k << 2, ys = <usize>ldy << 2;
  for (let r = row0; r < row1; r++) {
    const wr = w + <usize>r * <usize>(k >> 1), sr = scale + <usize>(r * groups);
    for (let t0 = 0; t0 < n; t0 += 4) {
      // tokens t0..t0+3, the last repeated when fewer are left
      const c = min(4, n - t0), x0 = x + <usize>t0 * xs;
      const x1 = x0 + <usize>min(1, c - 1) * xs, x2 = x0 + <usize>min(2, c - 1) * xs, x3 = x0 + <usize>(c - 1) * xs;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let g = 0; g < groups; g++) {
        const b = v128.load(wr + (<usize>g << 4)), o = <usize>g << 7;
        const lo = v128.and(b, v128.load(LOW_NIBBLES)), hi = v128.and(i16x8.shr_u(b, 4), v128.load(LOW_NIBBLES));
        const c0 = zip8(lo, hi, false), c1 = zip8(lo, hi, true);
        const h0 = tops(c0, false), h1 = tops(c0, true), h2 = tops(c1, false), h3 = tops(c1, true);
        const s = f32x4.splat(e8m0(load<u8>(sr + <usize>g)));
        const w0 = f32x4.mul(widen(h0, false), s), w1 = f32x4.mul(widen(h0, true), s);
        const w2 = f32x4.mul(widen(h1, false), s), w3 = f32x4.mul(widen(h1, true), s);
        const w4 = f32x4.mul(widen(h2, false), s), w5 = f32x4.mul(widen(h2, true), s);
        const w6 = f32x4.mul(widen(h3, false), s), w7 = f32x4.mul(widen(h3, true), s);
        a0 = acc16(acc16(a0, w0, w1, w2, w3, x0 + o), w4, w5, w6, w7, x0 + o + 64);
        a1 = acc16(acc16(a1, w0, w1, w2, w3, x1 + o), w4, w5, w6, w7, x1 + o + 64);
        a2 = acc16(acc16(a2, w0, w1, w2, w3, x2 + o), w4, w5, w6, w7, x2 + o + 64);
        a3 = acc16(acc16(a3, w0, w1, w2, w3, x3 + o), w4, w5, w6, w7, x3 + o + 64);
      }
      const yp = y + <usize>t0 * ys + (<usize>r << 2);
      store<f32>(yp, hsumf(a0));
      if (c > 1) store<f32>(yp + ys, hsumf(a1));
      if (c > 2) store<f32>(yp + 2 * ys, hsumf(a2));
      if (c > 3) store<f32>(yp + 3 * ys, hsumf(a3));
    }
  }
}
