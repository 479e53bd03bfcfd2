/**
 * Plain-TypeScript twins of wasm/train_matmul.ts: the same arguments over the same memory (byte
 * offsets, element strides), written for clarity and summed in f64. The kernel tests hold the SIMD
 * kernels to these.
 */

/** y[t, o] = Σ_i x[t, i]·w[o, i] for tokens t in [row0, row1), o < m (see the kernel). */
export function train_xwt_f32(mem: ArrayBufferLike, x: number, w: number, y: number, k: number, m: number, row0: number, row1: number): void {
  const f = new Float32Array(mem);
  const xi = x / 4, wi = w / 4, yi = y / 4;
  for (let t = row0; t < row1; t++) {
    for (let o = 0; o < m; o++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += f[xi + t * k + i] * f[wi + o * k + i];
      f[yi + t * m + o] = s;
    }
  }
}

/** out[a, j] += Σ_b g[b·gs + a·ga]·v[b, j] for rows a in [row0, row1), b < B, j < k (see the kernel). */
export function train_accum_rows_f32(mem: ArrayBufferLike, g: number, gs: number, ga: number, v: number, out: number, B: number, k: number,
  row0: number, row1: number): void {
  const f = new Float32Array(mem);
  const gi = g / 4, vi = v / 4, oi = out / 4;
  for (let a = row0; a < row1; a++) {
    for (let j = 0; j < k; j++) {
      let s = f[oi + a * k + j];
      for (let b = 0; b < B; b++) s += f[gi + b * gs + a * ga] * f[vi + b * k + j];
      f[oi + a * k + j] = s;
    }
  }
}
