// Activation quantizers: f32 → llama.cpp's block_q8_0 / block_q8_1 / block_q8_K, byte for byte as
// its reference code (quantize_row_q8_0_ref, _q8_1_ref, _q8_K_ref) makes them.
//
//   q8_0  (34 B / 32): f16 d = amax/127, 32 × i8 round(x · (1/d)), halves away from zero
//   q8_1  (36 B / 32): as q8_0, then f16 s = d · Σq
//   q8_K (292 B / 256): f32 d = 1/iscale with iscale = −127/max (max: the first element of largest
//                       magnitude, signed), i8 min(127, x · iscale rounded half to even), then
//                       16 × i16 sums of each 16 quants. An all-zero block is all zeros.

/** f32 → f16 bits, round to nearest even (subnormals, overflow to ±inf), as ggml's fp32→fp16. */
@inline function toHalf(f: f32): u32 {
  const bits = reinterpret<u32>(f);
  const sign = (bits >> 16) & 0x8000;
  const a = bits & 0x7FFFFFFF;
  if (a >= 0x47800000) return sign | (a > 0x7F800000 ? 0x7E00 : 0x7C00); // ≥ 2^16: inf (or NaN)
  if (a < 0x38800000) {
    // Below 2^−14: adding 0.5 leaves the subnormal half's bits, rounded by the f32 addition, in the low mantissa.
    return sign | (reinterpret<u32>(reinterpret<f32>(a) + 0.5) - 0x3F000000);
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even.
  return sign | ((a + 0xC8000FFF + ((a >> 13) & 1)) >> 13);
}

/** max |x| over 32 floats at p. */
@inline function absMax32(p: usize): f32 {
  let m = f32x4.max(f32x4.abs(v128.load(p)), f32x4.abs(v128.load(p, 16)));
  m = f32x4.max(m, f32x4.max(f32x4.abs(v128.load(p, 32)), f32x4.abs(v128.load(p, 48))));
  m = f32x4.max(m, f32x4.max(f32x4.abs(v128.load(p, 64)), f32x4.abs(v128.load(p, 80))));
  m = f32x4.max(m, f32x4.max(f32x4.abs(v128.load(p, 96)), f32x4.abs(v128.load(p, 112))));
  m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
  m = f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
  return f32x4.extract_lane(m, 0);
}

/** i32x4 of round(v), halves away from zero (C roundf): trunc, plus ±1 where the dropped part is ≥ 0.5. */
@inline function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  const up = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(v128.and(v, i32x4.splat(<i32>0x80000000)), f32x4.splat(1));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(t, v128.and(up, one)));
}

/** 16 i8 of round(x · id) for the 16 floats at p. */
@inline function quant16Away(p: usize, id: v128): v128 {
  const a = roundAway(f32x4.mul(v128.load(p), id)), b = roundAway(f32x4.mul(v128.load(p, 16), id));
  const c = roundAway(f32x4.mul(v128.load(p, 32), id)), d = roundAway(f32x4.mul(v128.load(p, 48), id));
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/** Σ of 16 i8 lanes. */
@inline function sum16(q: v128): i32 {
  const s = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q));
  return (i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1)) + (i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
}

/** Quantizes one 32-float block at x into `d` (f16) and 32 quants at q; returns d as f32. */
@inline function q8Block(x: usize, dOut: usize, q: usize): f32 {
  const d: f32 = absMax32(x) / 127;
  const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
  store<u16>(dOut, <u16>toHalf(d));
  v128.store(q, quant16Away(x, id));
  v128.store(q, quant16Away(x + 64, id), 16);
  return d;
}

export function quantize_q8_0(x: usize, out: usize, k: i32): void {
  for (let b = 0; b < k >> 5; b++) {
    const o = out + <usize>b * 34;
    q8Block(x + (<usize>b << 7), o, o + 2);
  }
}

export function quantize_q8_1(x: usize, out: usize, k: i32): void {
  for (let b = 0; b < k >> 5; b++) {
    const o = out + <usize>b * 36;
    const d = q8Block(x + (<usize>b << 7), o, o + 4);
    const sum = sum16(v128.load(o, 4)) + sum16(v128.load(o, 20));
    store<u16>(o, <u16>toHalf(<f32>sum * d), 2);
  }
}

export function quantize_q8_k(x: usize, out: usize, k: i32): void {
  for (let b = 0; b < k >> 8; b++) {
    const p = x + (<usize>b << 10), o = out + <usize>b * 292;
    let amax: f32 = 0;
    for (let j = 0; j < 8; j++) amax = max(amax, absMax32(p + (<usize>j << 7)));
    if (amax == 0) {
      memory.fill(o, 0, 292);
      continue;
    }
    let j = 0;
    while (abs(load<f32>(p + (<usize>j << 2))) != amax) j++;
    const iscale: f32 = <f32>-127 / load<f32>(p + (<usize>j << 2));
    store<f32>(o, <f32>1 / iscale);
    const is = f32x4.splat(iscale), top = i32x4.splat(127);
    for (let g = 0; g < 16; g++) {
      const pg = p + (<usize>g << 6);
      const a = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pg), is))), top);
      const b1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pg, 16), is))), top);
      const c = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pg, 32), is))), top);
      const d = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pg, 48), is))), top);
      const q = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b1), i16x8.narrow_i32x4_s(c, d));
      v128.store(o + 4 + (<usize>g << 4), q);
      store<i16>(o + 260 + (<usize>g << 1), <i16>sum16(q));
    }
  }
}
