// Helpers shared by the quantised matrix kernels (inlined; nothing here is a wasm export).
//
// Integer dot products. WASM SIMD's only i8 → i32 multiply-add is i32x4.dot_i16x8_s on 16-bit
// lanes, so 16 bytes are split into their even and odd bytes as 16-bit lanes ("planes"). A plane
// need not be sign-extended or shifted down: a weight plane that holds u·f (f = 1, 16 or 256, what
// a single mask leaves) meets an activation plane scaled by 256/f, and every product comes out as
// 256·w·x. The activation planes are made once per block and shared by the four rows a matvec
// step computes; the weight side then costs one operation per plane.
//
//   activation plane   lanes                 made by
//   xe(v)              even bytes            (v << 8) >> 8
//   xo(v)              odd bytes             v >> 8
//   xe16(v)            16 · even bytes       (v << 8) >> 4
//   xe256(v)           256 · even bytes      v << 8
//   xo256(v)           256 · odd bytes       v & 0xFF00
//
// Every plane fits i16 (256 · −128 = −32768 included) and the sums stay far inside i32: a 32-element
// block of q8_0 weights gives at most 256 · 32 · 128 · 128 = 2^27. Callers shift them back by 8 or
// fold 1/256 into the block scale.

// Vector constants live in static memory (below __heap_base): V8 rebuilds a v128.const at every
// use inside a loop (three instructions, two on the vector ports); a load from here is one load.
const K = memory.data<u16>([
  0xFF00, 0xFF00, 0xFF00, 0xFF00, 0xFF00, 0xFF00, 0xFF00, 0xFF00,
  0x000F, 0x000F, 0x000F, 0x000F, 0x000F, 0x000F, 0x000F, 0x000F,
  0x0F00, 0x0F00, 0x0F00, 0x0F00, 0x0F00, 0x0F00, 0x0F00, 0x0F00,
  0x00F0, 0x00F0, 0x00F0, 0x00F0, 0x00F0, 0x00F0, 0x00F0, 0x00F0,
  0x0F0F, 0x0F0F, 0x0F0F, 0x0F0F, 0x0F0F, 0x0F0F, 0x0F0F, 0x0F0F,
  0, 0xFFFF, 0, 0xFFFF, 0, 0xFFFF, 0, 0xFFFF,
  1, 1, 1, 1, 1, 1, 1, 1,
], 16);
/** i16 lanes 0xFF00: the odd byte of each lane. */
export const ODD_BYTE: usize = K;
/** i16 lanes 0x000F / 0x0F00 / 0x00F0: one nibble of each lane. */
export const NIB0: usize = K + 16;
export const NIB2: usize = K + 32;
export const NIB1: usize = K + 48;
/** Bytes 0x0F: the low nibble of every byte. */
export const LOW_NIBBLES: usize = K + 64;
/** i32 lanes 0xFFFF0000: the top half of each lane. */
export const TOP_HALVES: usize = K + 80;
/** i16 lanes 1: i32x4.dot_i16x8_s against it sums adjacent pairs. */
export const ONES16: usize = K + 96;

// ---- relaxed SIMD (the kernels-relaxed.wasm build; ASC_FEATURE_RELAXED_SIMD is a compile-time constant) --
//
// i16x8.relaxed_dot_i8x16_i7x16_s is pmaddubsw on x86, sdot-like pairs elsewhere: lane i = x[2i]·u[2i]
// + x[2i+1]·u[2i+1], x signed bytes, u bytes in 0..127. Callers pass weight codes of at most 6 bits
// as u and keep every lane (and every i16 sum of lanes they form) inside ±2^15, so the result is
// exact and the same on every machine. relaxed_madd may fuse: only used on f32 sums whose twin
// tolerance covers one rounding more or less.

/** i16x8 pair sums of signed bytes x times unsigned 7-bit bytes u. */
@inline export function dotU7(x: v128, u: v128): v128 { return i16x8.relaxed_dot_i8x16_i7x16_s(x, u); }
/**
 * Byte j of `table` at each lane of `idx`, every index in 0..15. The relaxed swizzle is the same
 * as i8x16.swizzle on such indices, and is one pshufb on x86 (the plain one adds a clamp).
 */
@inline export function lookup16(table: v128, idx: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(table, idx);
  return i8x16.swizzle(table, idx);
}
/** a · b + c, fused where the machine has FMA. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
/** i32x4 sums of adjacent i16 pairs. */
@inline export function widenPairs(v: v128): v128 { return i32x4.dot_i16x8_s(v, v128.load(ONES16)); }

@inline export function xe(v: v128): v128 { return i16x8.shr_s(i16x8.shl(v, 8), 8); }
@inline export function xo(v: v128): v128 { return i16x8.shr_s(v, 8); }
@inline export function xe16(v: v128): v128 { return i16x8.shr_s(i16x8.shl(v, 8), 4); }
@inline export function xe256(v: v128): v128 { return i16x8.shl(v, 8); }
@inline export function xo256(v: v128): v128 { return v128.and(v, v128.load(ODD_BYTE)); }

/** 256 · Σ w·x over 16 signed weight bytes `w` and the planes of the matching 16 activation bytes. */
@inline export function dotBytes(w: v128, e: v128, o: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(w, 8), e), i32x4.dot_i16x8_s(v128.and(w, v128.load(ODD_BYTE)), o));
}

/** 256 · Σ lo-nibble · x: the low nibbles of 16 bytes against the planes xe256/xo of their 16 activations. */
@inline export function dotLo(q: v128, e256: v128, o: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(v128.and(q, v128.load(NIB0)), e256),
    i32x4.dot_i16x8_s(v128.and(q, v128.load(NIB2)), o));
}

/** 256 · Σ hi-nibble · x: the high nibbles of 16 bytes against the planes xe16/xo256 of their 16 activations. */
@inline export function dotHi(q: v128, e16: v128, o256: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(v128.and(q, v128.load(NIB1)), e16),
    i32x4.dot_i16x8_s(i16x8.shr_u(q, 12), o256));
}

/**
 * 2^−112 · the little-endian f16 at `p`, exact: its bits moved into an f32 without rebiasing the
 * exponent (subnormal halves become subnormal floats; inf/NaN never occur in scales). Callers fold
 * the 2^112 into another factor: `half(p)` = halfRaw(p) · TWO_112.
 */
@inline export function halfRaw(p: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(p) << 13) & <i32>0x8FFFFFFF);
}
export const TWO_112: f32 = reinterpret<f32>(0x77800000);
/** 2^112 / 256: folds the half's rebias and the planes' ×256 into one factor. */
export const TWO_104: f32 = reinterpret<f32>(0x73800000);

@inline export function half(p: usize): f32 { return halfRaw(p) * TWO_112; }

/**
 * [halfRaw(p0), …, halfRaw(p3)] · d: four rows' block scales in one fused multiply-add, where a
 * subnormal raw half (a block of tiny weights) costs nothing; a plain product with one takes a
 * microcode assist on this x86 (Q8_0 matvecs over such blocks ran at a third of their speed). The
 * relaxed build fuses; the baseline one keeps the assist. Four loads into lanes cost more than
 * the scalar products, so matvecs take this path only for weights that have subnormal scales.
 */
@inline export function rawScales4(p0: usize, p1: usize, p2: usize, p3: usize, d: f32): v128 {
  const h = i32x4(<i32>load<i16>(p0), <i32>load<i16>(p1), <i32>load<i16>(p2), <i32>load<i16>(p3));
  return madd(v128.and(i32x4.shl(h, 13), i32x4.splat(0x8FFFFFFF)), f32x4.splat(d), f32x4.splat(0));
}
/** Lane i of v in every lane. */
@inline export function lane0(v: v128): v128 { return v128.shuffle<f32>(v, v, 0, 0, 0, 0); }
@inline export function lane1(v: v128): v128 { return v128.shuffle<f32>(v, v, 1, 1, 1, 1); }
@inline export function lane2(v: v128): v128 { return v128.shuffle<f32>(v, v, 2, 2, 2, 2); }
@inline export function lane3(v: v128): v128 { return v128.shuffle<f32>(v, v, 3, 3, 3, 3); }

/** f32 of an E8M0 byte: 2^(e − 127), exact (e = 0 gives the subnormal 2^−127). */
@inline export function e8m0(e: u32): f32 {
  return <f32>reinterpret<f64>(<u64>(e + 896) << 52);
}

@inline export function hsumf(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** [Σa, Σb, Σc, Σd] of four f32x4. */
@inline export function hsum4f(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

/** [Σa, Σb, Σc, Σd] of four i32x4. */
@inline export function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 1, 4, 5), v128.shuffle<i32>(c, d, 2, 3, 6, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

/** acc + f32(s) · d, s an i32x4 of partial sums, d a scalar scale. */
@inline export function scaleAdd(acc: v128, s: v128, d: f32): v128 {
  return madd(f32x4.convert_i32x4_s(s), f32x4.splat(d), acc);
}
/** acc + f32(s) · d, d already splat. */
@inline export function scaleAddV(acc: v128, s: v128, d: v128): v128 {
  return madd(f32x4.convert_i32x4_s(s), d, acc);
}

// ---- row tiles ---------------------------------------------------------------------------------
//
// A matvec step computes four rows at once so the activation planes are shared. The four rows are
// taken a quarter of the range apart (row0+i, +q, +2q, +3q): four long sequential streams, which
// the hardware prefetchers follow; four adjacent rows read in parallel defeat them (half speed).
// The 0–3 rows left over go through one more step with the last row repeated (a repeat writes the
// same value twice). A matmul step takes four adjacent rows and runs every token against them while
// they sit in cache, so the weights come from memory once.

/**
 * The dot products of weight rows r0..r3 with the activation row at x, as an f32x4. `aux` is passed
 * through from the driver (the f32-activation formats' pre-scale exponent; unused by the others).
 */
export type Dot4 = (w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32) => v128;

@inline export function matvecRows(dot: Dot4, w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32, aux: i32 = 0): void {
  const q = (row1 - row0) >> 2;
  for (let i = 0; i < q; i++) {
    const r = row0 + i;
    const v = dot(w, scale, r, r + q, r + 2 * q, r + 3 * q, x, k, aux);
    store<f32>(y + (<usize>r << 2), f32x4.extract_lane(v, 0));
    store<f32>(y + (<usize>(r + q) << 2), f32x4.extract_lane(v, 1));
    store<f32>(y + (<usize>(r + 2 * q) << 2), f32x4.extract_lane(v, 2));
    store<f32>(y + (<usize>(r + 3 * q) << 2), f32x4.extract_lane(v, 3));
  }
  const r = row0 + 4 * q;
  if (r < row1) storeN(y + (<usize>r << 2), dot(w, scale, r, min(r + 1, row1 - 1), min(r + 2, row1 - 1), row1 - 1, x, k, aux), row1 - r);
}

/** Bytes of weight rows a matmul keeps in cache while every token passes over them. */
const MATMUL_BLOCK_BYTES: usize = 256 * 1024;

/**
 * Matmul from a Dot4: blocks of adjacent rows (about MATMUL_BLOCK_BYTES of weights, four rows at a
 * time) stay in cache while every token runs against them. `rowBytes` is one weight row, `xs` one
 * activation row (the stride between tokens).
 */
@inline export function matmulRows(dot: Dot4, rowBytes: usize, xs: usize, w: usize, scale: usize, x: usize, y: usize,
  k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const block = max(4, <i32>(MATMUL_BLOCK_BYTES / rowBytes) & ~3), ys = <usize>ldy << 2;
  for (let b0 = row0; b0 < row1; b0 += block) {
    const b1 = min(row1, b0 + block);
    for (let t = 0; t < n; t++) {
      const xt = x + <usize>t * xs, yt = y + <usize>t * ys;
      for (let r = b0; r < b1; r += 4) {
        const c = min(4, b1 - r);
        storeN(yt + (<usize>r << 2), dot(w, scale, r, r + min(1, c - 1), r + min(2, c - 1), r + c - 1, xt, k, 0), c);
      }
    }
  }
}

/** acc + (16 decoded weights w0..w3) · (16 activations at x), summed as a tree. */
@inline export function acc16(acc: v128, w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  return f32x4.add(acc, f32x4.add(
    f32x4.add(f32x4.mul(w0, v128.load(x)), f32x4.mul(w1, v128.load(x, 16))),
    f32x4.add(f32x4.mul(w2, v128.load(x, 32)), f32x4.mul(w3, v128.load(x, 48)))));
}

/** Stores the first `count` (1..4) lanes of `v` at y, y+4, … */
@inline export function storeN(y: usize, v: v128, count: i32): void {
  if (count == 4) { v128.store(y, v); return; }
  store<f32>(y, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(y, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(y, f32x4.extract_lane(v, 2), 8);
}
