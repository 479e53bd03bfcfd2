/**
 * Scalar codecs of the small float formats minke meets in weights and scales, bit-exact to their
 * definitions (deepseek-v4.md §10.1, IEEE 754 binary16, bfloat16, OCP FP8/FP4). Every encoder
 * rounds to nearest, ties to even. Decoders return the exact value as a JS number (every one of
 * these values is also exactly an f32).
 */

// Scratch views for moving between an f32 and its bits (typed arrays use the platform's byte order
// for both views, so the pairing is consistent on any host).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** 2^e for any integer e in double range, exact. */
function pow2(e: number): number {
  return 2 ** e;
}

/** floor(log2(a)) for a finite a > 0, exact (Math.log2 alone can be off by one near powers of 2). */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (pow2(e) > a) e--;
  else if (pow2(e + 1) <= a) e++;
  return e;
}

/** Round a double to the nearest integer, ties to even. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Magnitude code of a finite a ≥ 0 in a binary format with `man` mantissa bits and exponent
 * `bias` (subnormals included), rounded to nearest even. The result may be one past the largest
 * finite code; callers saturate or map it to infinity.
 */
function encodeMagnitude(a: number, man: number, bias: number): number {
  f32[0] = a;
  if (f32[0] === a) return encodeMagnitudeBits(u32[0], man, bias);
  const emin = 1 - bias;
  if (a < pow2(emin)) return roundHalfEven(a / pow2(emin - man)); // subnormal grid; may carry into emin
  const e = floorLog2(a);
  const n = roundHalfEven(a / pow2(e - man)); // in [2^man, 2^(man+1)]; the top carries into e+1
  return ((e + bias) << man) + n - (1 << man);
}

/**
 * encodeMagnitude for an a that is exactly an f32 with bit pattern `b` (sign clear), by integer
 * rounding on the bits: the activation quantisers call this for every element, so it avoids
 * log2/pow entirely.
 */
function encodeMagnitudeBits(b: number, man: number, bias: number): number {
  const exp = b >>> 23;
  const emin = 1 - bias;
  const e = exp - 127;
  const sig = exp === 0 ? b & 0x7fffff : (b & 0x7fffff) | 0x800000; // a = sig · 2^(e' − 23)
  // Keep `man` bits below the leading one (normal) or the bits above 2^(emin − man) (subnormal).
  const shift = e >= emin ? 23 - man : 23 - man + emin - (exp === 0 ? -126 : e);
  if (shift >= 25) return 0; // below half the smallest subnormal (a tie at exactly half goes to 0, even)
  const q = sig >>> shift;
  const rem = sig & ((1 << shift) - 1), half = 1 << (shift - 1);
  const n = rem > half || (rem === half && (q & 1)) ? q + 1 : q;
  // Normal: drop the implicit one and add the biased exponent; the carry of a round-up is exact.
  return e >= emin ? ((e + bias) << man) + n - (1 << man) : n;
}

// ---- IEEE binary16 ------------------------------------------------------------------------------

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * pow2(-24);
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * pow2(e - 25);
}

/** f32 → binary16 bits. The input is first taken as an f32; overflow gives ±inf; NaN stays NaN. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  return f32BitsToF16(u32[0]);
}

/** binary16 bits of the f32 with bit pattern `b`, by integer rounding on the bits. */
export function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below 2^-25, half the smallest subnormal
    mant |= 0x800000;
    const shift = 14 - e; // value = mant · 2^(e-14-24+24) → subnormal units of 2^-24
    const half = 1 << (shift - 1);
    let q = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && q & 1)) q++;
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && q & 1)) q++; // a carry rolls into the exponent (to inf at the top)
  return sign | q;
}

/** Every binary16 value, indexed by its bits, for fast bulk decoding. */
export const F16_TO_F32: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16ToF32(h);
  return t;
})();

// ---- bfloat16 -----------------------------------------------------------------------------------

export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** f32 → bfloat16 bits, nearest even; overflow rounds to ±inf; NaN stays a (quiet) NaN. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  return f32BitsToBf16(u32[0]);
}

export function f32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- FP8 E4M3FN: bias 7, no infinities, 0x7F/0xFF NaN, max 448 ------------------------------------

export function e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >>> 3) & 0xf;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * m * pow2(-9);
  return sign * (8 + m) * pow2(e - 10);
}

export const E4M3_TO_F32: Float32Array = Float32Array.from({ length: 256 }, (_, b) => e4m3ToF32(b));

/** f32ToE4m3 of the f32 with bit pattern `b` (the quantisers' per-element path: integer work only). */
export function f32BitsToE4m3(b: number): number {
  const sign = (b >>> 24) & 0x80, a = b & 0x7fffffff;
  if (a > 0x7f800000) return 0x7f;
  if (a >= 0x43e00000) return sign | 0x7e; // ≥ 448
  return sign | encodeMagnitudeBits(a, 3, 7);
}

/** f32ToE2m1 of the f32 with bit pattern `b`. */
export function f32BitsToE2m1(b: number): number {
  const sign = (b >>> 28) & 8, a = b & 0x7fffffff;
  if (a > 0x7f800000) return 0;
  if (a >= 0x40c00000) return sign | 7; // ≥ 6
  return sign | encodeMagnitudeBits(a, 1, 1);
}

/** Nearest E4M3FN code, ties to even, saturating to ±448 (±inf too); NaN → 0x7F. */
export function f32ToE4m3(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a >= 448) return sign | 0x7e;
  return sign | encodeMagnitude(a, 3, 7);
}

// ---- FP8 E5M2: bias 15, IEEE-like with ±inf and NaN, max 57344 --------------------------------------

export function e5m2ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >>> 2) & 0x1f;
  const m = b & 3;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * pow2(-16);
  return sign * (4 + m) * pow2(e - 17);
}

/** Nearest E5M2 code, ties to even; values from 61440 (half an ulp above 57344) up become ±inf. */
export function f32ToE5m2(x: number): number {
  if (Number.isNaN(x)) return 0x7e;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c;
  return sign | Math.min(encodeMagnitude(a, 2, 15), 0x7c);
}

// ---- E8M0 (UE8M0): a bare biased exponent ---------------------------------------------------------

export function e8m0ToF32(b: number): number {
  return b === 0xff ? NaN : pow2(b - 127);
}

// ---- FP4 E2M1: bias 1, codes 0..7 = 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 = sign -------------------------

export function e2m1ToF32(code: number): number {
  const mag = code & 7;
  const v = mag < 2 ? mag * 0.5 : (2 + (mag & 1)) * pow2((mag >>> 1) - 2);
  return code & 8 ? -v : v;
}

export const E2M1_TO_F32: Float32Array = Float32Array.from({ length: 16 }, (_, c) => e2m1ToF32(c));

/**
 * Nearest E2M1 code, ties to even mantissa, saturating to ±6. The format has no NaN: NaN maps to
 * +0 (callers that must not lose NaNs check before encoding).
 */
export function f32ToE2m1(x: number): number {
  if (Number.isNaN(x)) return 0;
  const sign = x < 0 || Object.is(x, -0) ? 8 : 0;
  const a = Math.abs(x);
  if (a >= 6) return sign | 7;
  return sign | encodeMagnitude(a, 1, 1);
}
