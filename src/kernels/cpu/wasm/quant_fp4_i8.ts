// FP4 E2M1 weights with one E8M0 scale per row per 32 inputs (quant_fp4.ts's layout) against q8_0
// activations: the opt-in int8-activation variant (registered with `variant: 'int8-act'`; exact
// against q8_0 x, so approximate against the f32 x the default kernel takes — as llama.cpp runs
// MXFP4, and as DeepSeek-V4 itself quantises activations before its FP4 GEMMs):
//
//   y[r] = Σ_g 2^(e_g − 127) · d_x / 2 · Σ_{32 in g} (2 · e2m1(w_j)) · q_j
//
// E2M1 values × 2 are integers in [−12, 12], so the inner sum is exact in integers. Byte j of a group
// holds elements 2j (low nibble) and 2j + 1 (high nibble): each activation block's quants are split
// into its even and odd elements once (shared by the four rows of a step), so the low
// nibbles meet the even quants and the high nibbles the odd ones without unpacking the weights.
// Relaxed build: codes → 2v + 12 ∈ [0, 24] by one swizzle (an exact u7 operand), dotted against the
// quants, less 12 · Σq per block (like Q4_0's −8). Baseline: codes → 2v as signed bytes, dotted on
// 16-bit planes (quant_common.ts) as MXFP4. Matvec stages each block's shared values (even/odd
// quants, offsets, d_x) in this thread's scratch once per call. Group scales are f32 products
// 2^(e − 127) · d_x / 2 (/ 256 in the baseline), exact unless they fall below f32's normal range.
import { LOW_NIBBLES, dotBytes, dotU7, half, hsum4f, lookup16, matmulRows, matvecRows, scaleAdd, widenPairs, xe, xo } from './quant_common';
import { scratchBytes, scratchPtr } from './scratch';

const BLOCK_Q8_0: usize = 34;

const TABLES = memory.data<i8>([
  0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12, // 2v
  12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0, // 2v + 12
  12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, // the offset
], 16);
const SIGNED: usize = TABLES, OFFSET: usize = TABLES + 16, TWELVES: usize = TABLES + 32;

/** f32 of 2^(e − 127), e an E8M0 byte: its bits shifted into the exponent field (e = 0: the subnormal 2^−127). */
@inline function pow2E8m0(e: u32): f32 {
  return reinterpret<f32>(select<u32>(e << 23, 0x00400000, e != 0));
}

/**
 * Relaxed: acc + 2^(e−127) · dx · Σ over the group at p; ev/od the block's even/odd quants, off = 12 ·
 * their pair sums, dx = d_x / 2.
 */
@inline function rowRelaxed(a: v128, p: usize, e: u32, ev: v128, od: v128, off: v128, dx: f32): v128 {
  const q = v128.load(p), nib = v128.load(LOW_NIBBLES), t = v128.load(OFFSET);
  const lo = lookup16(t, v128.and(q, nib)), hi = lookup16(t, v128.and(i16x8.shr_u(q, 4), nib));
  // |lane| ≤ 2 · 24 · 127 per dot, twice that summed: inside i16; after the offset ≤ 4 · 12 · 127.
  const s = i16x8.sub(i16x8.add(dotU7(ev, lo), dotU7(od, hi)), off);
  return scaleAdd(a, widenPairs(s), pow2E8m0(e) * dx);
}

/** Baseline: the same with signed codes on planes (products 256 · w · q; dx = d_x / 512). */
@inline function rowPlanes(a: v128, p: usize, e: u32, e0: v128, o0: v128, e1: v128, o1: v128, dx: f32): v128 {
  const q = v128.load(p), nib = v128.load(LOW_NIBBLES), t = v128.load(SIGNED);
  const lo = lookup16(t, v128.and(q, nib)), hi = lookup16(t, v128.and(i16x8.shr_u(q, 4), nib));
  return scaleAdd(a, i32x4.add(dotBytes(lo, e0, o0), dotBytes(hi, e1, o1)), pow2E8m0(e) * dx);
}

/** Bytes of one block's staged record (see stage). */
const RECORD: usize = ASC_FEATURE_RELAXED_SIMD ? 64 : 80;

/**
 * Even / odd quants of the q8_0 block at xb: each 16-bit lane's low / high byte, sign-extended and
 * narrowed back (exact, and cheaper in V8 than a two-input byte shuffle).
 */
@inline function evens(xb: usize): v128 { return i8x16.narrow_i16x8_s(xe(v128.load(xb, 2)), xe(v128.load(xb, 18))); }
@inline function odds(xb: usize): v128 { return i8x16.narrow_i16x8_s(xo(v128.load(xb, 2)), xo(v128.load(xb, 18))); }
/** Relaxed: 12 · the pair sums of the even and odd quants (the offset of the codes 2v + 12). */
@inline function offsets(ev: v128, od: v128): v128 {
  const t = v128.load(TWELVES);
  return i16x8.add(dotU7(ev, t), dotU7(od, t));
}
/** The block scale the rows multiply in: d_x / 2 (codes doubled), and / 256 for the planes' products. */
@inline function blockDx(xb: usize): f32 {
  // exact: d_x is an f16, far from f32's subnormals
  return ASC_FEATURE_RELAXED_SIMD ? half(xb) * <f32>0.5 : half(xb) * <f32>(0.5 / 256);
}

/**
 * What the four rows of a step share per activation block, made once per call into this thread's
 * scratch: relaxed — even quants, odd quants, offsets, d_x / 2; baseline — the planes of the even
 * and odd quants, d_x / 512.
 */
@inline function stage(xb: usize, out: usize): void {
  const ev = evens(xb), od = odds(xb);
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(out, ev); v128.store(out, od, 16); v128.store(out, offsets(ev, od), 32);
    store<f32>(out, blockDx(xb), 48);
  } else {
    v128.store(out, xe(ev)); v128.store(out, xo(ev), 16); v128.store(out, xe(od), 32); v128.store(out, xo(od), 48);
    store<f32>(out, blockDx(xb), 64);
  }
}

/**
 * Rows r0..r3 against x. `staged`: this thread's scratch holds every block's record (stage);
 * else (matmul, or x too long for the scratch) each step works its block out itself.
 */
@inline function dot4At(staged: bool, w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32): v128 {
  const groups = k >> 5, rb = <usize>(k >> 1);
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  const s0 = scale + <usize>(r0 * groups), s1 = scale + <usize>(r1 * groups);
  const s2 = scale + <usize>(r2 * groups), s3 = scale + <usize>(r3 * groups);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let g: usize = 0; g < <usize>groups; g++) {
    const o = g << 4, rec = scratchPtr + g * RECORD, xb = x + g * BLOCK_Q8_0;
    if (ASC_FEATURE_RELAXED_SIMD) {
      let ev: v128, od: v128, off: v128, dx: f32;
      if (staged) { ev = v128.load(rec); od = v128.load(rec, 16); off = v128.load(rec, 32); dx = load<f32>(rec, 48); }
      else { ev = evens(xb); od = odds(xb); off = offsets(ev, od); dx = blockDx(xb); }
      a0 = rowRelaxed(a0, w0 + o, load<u8>(s0 + g), ev, od, off, dx);
      a1 = rowRelaxed(a1, w1 + o, load<u8>(s1 + g), ev, od, off, dx);
      a2 = rowRelaxed(a2, w2 + o, load<u8>(s2 + g), ev, od, off, dx);
      a3 = rowRelaxed(a3, w3 + o, load<u8>(s3 + g), ev, od, off, dx);
    } else {
      let e0: v128, o0: v128, e1: v128, o1: v128, dx: f32;
      if (staged) { e0 = v128.load(rec); o0 = v128.load(rec, 16); e1 = v128.load(rec, 32); o1 = v128.load(rec, 48); dx = load<f32>(rec, 64); }
      else {
        const ev = evens(xb), od = odds(xb);
        e0 = xe(ev); o0 = xo(ev); e1 = xe(od); o1 = xo(od); dx = blockDx(xb);
      }
      a0 = rowPlanes(a0, w0 + o, load<u8>(s0 + g), e0, o0, e1, o1, dx);
      a1 = rowPlanes(a1, w1 + o, load<u8>(s1 + g), e0, o0, e1, o1, dx);
      a2 = rowPlanes(a2, w2 + o, load<u8>(s2 + g), e0, o0, e1, o1, dx);
      a3 = rowPlanes(a3, w3 + o, load<u8>(s3 + g), e0, o0, e1, o1, dx);
    }
  }
  return hsum4f(a0, a1, a2, a3);
}

function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  return dot4At(false, w, scale, r0, r1, r2, r3, x, k);
}
function dot4Staged(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  return dot4At(true, w, scale, r0, r1, r2, r3, x, k);
}

export function matvec_fp4_e2m1_e8m0_i8(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  const blocks = <usize>(k >> 5);
  if (blocks * RECORD <= scratchBytes) {
    for (let g: usize = 0; g < blocks; g++) stage(x + g * BLOCK_Q8_0, scratchPtr + g * RECORD);
    matvecRows(dot4Staged, w, scale, x, y, k, row0, row1);
  } else matvecRows(dot4, w, scale, x, y, k, row0, row1);
}
export function matmul_fp4_e2m1_e8m0_i8(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4, <usize>(k >> 1), <usize>(k >> 5) * BLOCK_Q8_0, w, scale, x, y, k, n, ldy, row0, row1);
}
