// SIMD helpers shared by the kernel files (inlined; nothing here is a wasm export).
//
// f16 → f32, exact for normal and subnormal halves: the f32 bits are the half's sign in bit 31 and
// its exponent and mantissa in bits 27..13, read as a float and multiplied by 2^112 to move the
// exponent bias from 15 to 127. Built in 16-bit lanes — high word (h >> 3 arithmetic) & 0x8FFF,
// low word h << 13 — then interleaved into 32-bit lanes: 7 operations per 8 halves. Infinite and
// NaN halves come out as large finite numbers: weights and embeddings never hold them.
// bf16 → f32 is the half interleaved with a zero low word.

const TWO_112: f32 = reinterpret<f32>(0x77800000);

/** The 2^112 multiplier; loops read it into a local once and pass it to f16lo/f16hi. */
@inline export function f16scale4(): v128 { return f32x4.splat(TWO_112); }
/** Halves 0..3 / 4..7 of `v` as f32x4 times 2^-112 ("raw": exact, subnormal halves included). */
@inline export function f16lo_raw(v: v128): v128 {
  const lo = i16x8.shl(v, 13), hi = v128.and(i16x8.shr_s(v, 3), i16x8.splat(<i16>0x8FFF));
  return v128.shuffle<i16>(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11);
}
@inline export function f16hi_raw(v: v128): v128 {
  const lo = i16x8.shl(v, 13), hi = v128.and(i16x8.shr_s(v, 3), i16x8.splat(<i16>0x8FFF));
  return v128.shuffle<i16>(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15);
}
@inline export function f16_raw(h: u16): f32 { return reinterpret<f32>((<i32><i16>h << 13) & <i32>0x8FFFFFFF); }
/** f32x4 of halves 0..3 / 4..7 of `v` (`scale` = f16scale4()). */
@inline export function f16lo(v: v128, scale: v128): v128 { return f32x4.mul(f16lo_raw(v), scale); }
@inline export function f16hi(v: v128, scale: v128): v128 { return f32x4.mul(f16hi_raw(v), scale); }
@inline export function f16(h: u16): f32 { return f16_raw(h) * TWO_112; }

/** 2^e as an f32, for −126 ≤ e ≤ 127. */
@inline export function pow2f(e: i32): f32 { return reinterpret<f32>((e + 127) << 23); }
/** f32x4 of bf16 values 0..3 / 4..7 of `v`. */
@inline export function bf16lo(v: v128): v128 { return v128.shuffle<i16>(i16x8.splat(0), v, 0, 8, 1, 9, 2, 10, 3, 11); }
@inline export function bf16hi(v: v128): v128 { return v128.shuffle<i16>(i16x8.splat(0), v, 4, 12, 5, 13, 6, 14, 7, 15); }
@inline export function bf16(h: u16): f32 { return reinterpret<f32>(<u32>h << 16); }

@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}
/** acc + a·b; fused in the relaxed-SIMD build (one rounding fewer: still within the twins' tolerance). */
@inline export function fma(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * e^x of four lanes, x ≤ 0 (attention scores minus their maximum, silu's −|v|): Cephes' expf — x = n·ln2 + r with ln2 in
 * two parts, a degree-5 polynomial for e^r on |r| ≤ ln2/2 (about 1 ulp), 2^n added to the exponent
 * bits. Below −87.3 (e^x < 2^−126) the result is 0.
 */
@inline export function exp4(x: v128): v128 {
  // The relaxed max and truncation are single instructions on x86 and equal the strict ones on
  // these operands (no NaN, no −0 question, n in range).
  const xc = ASC_FEATURE_RELAXED_SIMD ? f32x4.relaxed_max(x, f32x4.splat(-87.3)) : f32x4.max(x, f32x4.splat(-87.3));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504)));
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(1.9875691500e-4), r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  const ni = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(n) : i32x4.trunc_sat_f32x4_s(n);
  const y = i32x4.add(p, i32x4.shl(ni, 23));
  return v128.and(y, f32x4.ge(x, f32x4.splat(-87.3)));
}
