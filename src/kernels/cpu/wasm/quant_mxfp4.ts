// MXFP4 (17 B per 32: E8M0 e, 16 B of E2M1 codes, low nibbles = elements 0..15) against q8_0
// activations, as ggml_vec_dot_mxfp4_q8_0: the codes become int8 (E2M1 values ×2) through one
// swizzle, the block scale is 2^(e−127)/2 · d_x.
import { MXFP4, quants } from './quant_blocks';
import { dotBytes, half, hsum4f, matmulRows, matvecRows, scaleAdd, xe, xo } from './quant_common';

/** f32 of 2^(e − 136) · d: the E8M0 scale halved (codes are doubled) and over 256 (the planes' scaling). */
@inline function blockScale(e: u32, d: f32): f32 {
  return <f32>(reinterpret<f64>(<u64>(e + 887) << 52) * <f64>d);
}

@inline function rowMxfp4(a: v128, p: usize, e0: v128, o0: v128, e1: v128, o1: v128, dx: f32): v128 {
  return scaleAdd(a, i32x4.add(dotBytes(quants(MXFP4, p, false), e0, o0), dotBytes(quants(MXFP4, p, true), e1, o1)), blockScale(load<u8>(p), dx));
}

function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const nb = <usize>(k >> 5), rb = nb * 17;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let b: usize = 0; b < nb; b++) {
    const xb = x + b * 34, o = b * 17;
    const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
    const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1);
    const dx = half(xb);
    a0 = rowMxfp4(a0, w0 + o, e0, o0, e1, o1, dx);
    a1 = rowMxfp4(a1, w1 + o, e0, o0, e1, o1, dx);
    a2 = rowMxfp4(a2, w2 + o, e0, o0, e1, o1, dx);
    a3 = rowMxfp4(a3, w3 + o, e0, o0, e1, o1, dx);
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_mxfp4(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4, w, scale, x, y, k, row0, row1);
}
export function matmul_mxfp4(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  matmulRows(dot4, <usize>(k >> 5) * 17, <usize>(k >> 5) * 34, w, scale, x, y, k, n, ldy, row0, row1);
}
