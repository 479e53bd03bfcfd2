/**
 * The three dense products of a linear map y = x·Wᵀ and its backward. All-f32 operands go to the
 * WASM SIMD kernels (src/kernels/cpu/train-gemm.ts, f32 sums) once a product is big enough to pay
 * for copying them into kernel memory; f64 (the gradient checks) and tiny products take the tight
 * loops here, which walk four rows of the shared operand at once so every load of the other
 * operand serves four multiply-adds, summing in JavaScript numbers (f64).
 */
import { F32Gemm } from '../kernels/cpu/train-gemm.js';
import type { FloatArray } from './autograd.js';

/** Multiply-adds from which an all-f32 product runs in WASM (below, the copies cost more than they save). */
const WASM_MIN_MACS = 4096;

/** y[t, o] = Σ_i x[t, i]·w[o, i]: x [n, k], w [m, k] → y [n, m] (overwritten). */
export function matmulXWt(x: FloatArray, w: FloatArray, y: FloatArray, n: number, k: number, m: number): void {
  if (x instanceof Float32Array && w instanceof Float32Array && y instanceof Float32Array && n * k * m >= WASM_MIN_MACS) {
    F32Gemm.get().matmulXWt(x, w, y, n, k, m);
    return;
  }
  for (let t = 0; t < n; t++) {
    const xo = t * k, yo = t * m;
    let o = 0;
    for (; o + 4 <= m; o += 4) {
      const w0 = o * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < k; i++) {
        const xv = x[xo + i];
        s0 += xv * w[w0 + i];
        s1 += xv * w[w1 + i];
        s2 += xv * w[w2 + i];
        s3 += xv * w[w3 + i];
      }
      y[yo + o] = s0;
      y[yo + o + 1] = s1;
      y[yo + o + 2] = s2;
      y[yo + o + 3] = s3;
    }
    for (; o < m; o++) {
      const wo = o * k;
      let s = 0;
      for (let i = 0; i < k; i++) s += x[xo + i] * w[wo + i];
      y[yo + o] = s;
    }
  }
}

/**
 * out[a, :] += Σ_b g[b·gs + a·ga]·v[b, :] for a < A, b < B, rows of v of width k: the backward
 * products dx = dy·W (a = token, b = output, gs = 1, ga = m) and dW = dyᵀ·x (a = output, b = token,
 * gs = m, ga = 1). `acc` is f64 scratch of length k.
 */
export function accumulateRows(g: FloatArray, gs: number, ga: number, v: FloatArray, out: FloatArray, A: number, B: number, k: number,
  acc: Float64Array): void {
  if (g instanceof Float32Array && v instanceof Float32Array && out instanceof Float32Array && A * B * k >= WASM_MIN_MACS) {
    F32Gemm.get().accumulateRows(g, gs, ga, v, out, A, B, k);
    return;
  }
  for (let a = 0; a < A; a++) {
    acc.fill(0);
    const go = a * ga;
    let b = 0;
    for (; b + 4 <= B; b += 4) {
      const g0 = g[go + b * gs], g1 = g[go + (b + 1) * gs], g2 = g[go + (b + 2) * gs], g3 = g[go + (b + 3) * gs];
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) continue;
      const v0 = b * k, v1 = v0 + k, v2 = v1 + k, v3 = v2 + k;
      for (let i = 0; i < k; i++) acc[i] += g0 * v[v0 + i] + g1 * v[v1 + i] + g2 * v[v2 + i] + g3 * v[v3 + i];
    }
    for (; b < B; b++) {
      const gb = g[go + b * gs];
      if (gb === 0) continue;
      const vo = b * k;
      for (let i = 0; i < k; i++) acc[i] += gb * v[vo + i];
    }
    const oo = a * k;
    for (let i = 0; i < k; i++) out[oo + i] += acc[i];
  }
}
