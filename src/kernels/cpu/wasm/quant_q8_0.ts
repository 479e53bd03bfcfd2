// Q8_0 weights (34 B per 32: f16 d, 32 × i8) against q8_0 activations, as ggml_vec_dot_q8_0_q8_0:
// y = Σ_blocks d_w · d_x · Σ w·x, the inner sum exact in i32, the scales in f32.
import { TWO_104, dotBytes, half, halfRaw, hsum4f, lane0, lane1, lane2, lane3, matvecRows, rawScales4, scaleAddV, xe, xo } from './quant_common';
import { GROUP_I16, STAGE_I16, matmulPanel, panelRowI16, stageI16, tileI16x4, tileI16x8 } from './quant_panel';

const BLOCK: usize = 34;

@inline function rowDot(a: v128, p: usize, e0: v128, o0: v128, e1: v128, o1: v128, d: v128): v128 {
  return scaleAddV(a, i32x4.add(dotBytes(v128.load(p, 2), e0, o0), dotBytes(v128.load(p, 18), e1, o1)), d);
}

// `scale` is a flag here (no scale tensor): 1 when some block scale is a subnormal half (see rawScales4).
function dot4(w: usize, scale: usize, r0: i32, r1: i32, r2: i32, r3: i32, x: usize, k: i32, aux: i32): v128 {
  const rb = <usize>(k >> 5) * BLOCK;
  const w0 = w + <usize>r0 * rb, w1 = w + <usize>r1 * rb, w2 = w + <usize>r2 * rb, w3 = w + <usize>r3 * rb;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let o: usize = 0; o < rb; o += BLOCK) {
    const xb = x + o;
    const v0 = v128.load(xb, 2), v1 = v128.load(xb, 18);
    const e0 = xe(v0), o0 = xo(v0), e1 = xe(v1), o1 = xo(v1);
    const dx = half(xb) * TWO_104; // d_x / 256 · 2^112 (the weights' f16 rebias)
    if (scale) {
      const d = rawScales4(w0 + o, w1 + o, w2 + o, w3 + o, dx);
      a0 = rowDot(a0, w0 + o, e0, o0, e1, o1, lane0(d));
      a1 = rowDot(a1, w1 + o, e0, o0, e1, o1, lane1(d));
      a2 = rowDot(a2, w2 + o, e0, o0, e1, o1, lane2(d));
      a3 = rowDot(a3, w3 + o, e0, o0, e1, o1, lane3(d));
    } else {
      a0 = rowDot(a0, w0 + o, e0, o0, e1, o1, f32x4.splat(halfRaw(w0 + o) * dx));
      a1 = rowDot(a1, w1 + o, e0, o0, e1, o1, f32x4.splat(halfRaw(w1 + o) * dx));
      a2 = rowDot(a2, w2 + o, e0, o0, e1, o1, f32x4.splat(halfRaw(w2 + o) * dx));
      a3 = rowDot(a3, w3 + o, e0, o0, e1, o1, f32x4.splat(halfRaw(w3 + o) * dx));
    }
  }
  return hsum4f(a0, a1, a2, a3);
}

export function matvec_q8_0(w: usize, scale: usize, x: usize, y: usize, k: i32, row0: i32, row1: i32): void {
  matvecRows(dot4, w, scale, x, y, k, row0, row1);
}

// From four tokens on, the matmul runs by panels of i16 values (quant_panel.ts).
function panelQ8_0(w: usize, pv: usize, ps: usize, nb: usize): void {
  panelRowI16(false, w, pv, ps, nb);
}

export function matmul_q8_0(w: usize, scale: usize, x: usize, y: usize, k: i32, n: i32, ldy: i32, row0: i32, row1: i32): void {
  const rb = <usize>(k >> 5) * BLOCK;
  matmulPanel(panelQ8_0, stageI16, tileI16x8, tileI16x4, <usize>(k >> 5), GROUP_I16, 64, STAGE_I16, dot4, rb, rb, w, scale, x, y, k, n, ldy, row0, row1);
}
