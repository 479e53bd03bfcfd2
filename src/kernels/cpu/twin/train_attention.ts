/**
 * Plain-TypeScript twins of wasm/train_attention.ts: the same arguments over the same memory (byte
 * offsets; a gradient pointer of 0 skips that gradient), written for clarity and summed in f64 —
 * the textbook two-pass softmax of spec §6.6 and its backward, the indexer's scores (§6.5) and
 * theirs. The kernel tests hold the SIMD kernels to these.
 */

/** o[r] = Σ_c p_c·v_c, prob[r, c] = p_c (0 for padding), prob[r, count] = the sink's (see the kernel). */
export function train_sparse_attn_fwd_f32(mem: ArrayBufferLike, q: number, table: number, rows: number, count: number, sink: number, out: number,
  prob: number, heads: number, d: number, scale: number, row0: number, row1: number): void {
  const f = new Float32Array(mem), ri = new Int32Array(mem);
  for (let r = row0; r < row1; r++) {
    const t = Math.floor(r / heads), h = r % heads, qi = q / 4 + r * d, pi = prob / 4 + r * (count + 1);
    const cand = Array.from({ length: count }, (_, c) => ri[rows / 4 + t * count + c]);
    const z = cand.map((row) => {
      if (row < 0) return -Infinity;
      let s = 0;
      for (let j = 0; j < d; j++) s += f[qi + j] * f[table / 4 + row * d + j];
      return Math.fround(scale) * s;
    });
    const sk = f[sink / 4 + h], m = z.reduce((a, b) => Math.max(a, b), sk);
    const e = z.map((s) => Math.exp(s - m)), sum = e.reduce((a, b) => a + b, Math.exp(sk - m));
    e.forEach((x, c) => { f[pi + c] = x / sum; });
    f[pi + count] = Math.exp(sk - m) / sum;
    for (let j = 0; j < d; j++) {
      let o = 0;
      cand.forEach((row, c) => { if (row >= 0) o += (e[c] / sum) * f[table / 4 + row * d + j]; });
      f[out / 4 + r * d + j] = o;
    }
  }
}

/** The backward from `out` and `prob`: dq, dtable, dsink += (see the kernel). */
export function train_sparse_attn_bwd_f32(mem: ArrayBufferLike, g: number, out: number, prob: number, q: number, table: number, rows: number,
  count: number, dq: number, dtable: number, dsink: number, heads: number, d: number, scale: number, row0: number, row1: number): void {
  const f = new Float32Array(mem), ri = new Int32Array(mem);
  for (let r = row0; r < row1; r++) {
    const t = Math.floor(r / heads), h = r % heads, gi = g / 4 + r * d, qi = q / 4 + r * d, pi = prob / 4 + r * (count + 1);
    let gO = 0;
    for (let j = 0; j < d; j++) gO += f[gi + j] * f[out / 4 + r * d + j];
    if (dsink) f[dsink / 4 + h] -= f[pi + count] * gO;
    for (let c = 0; c < count; c++) {
      const row = ri[rows / 4 + t * count + c];
      if (row < 0) continue;
      const vi = table / 4 + row * d, p = f[pi + c];
      let dp = 0;
      for (let j = 0; j < d; j++) dp += f[gi + j] * f[vi + j];
      const z = Math.fround(scale) * p * (dp - gO);
      for (let j = 0; j < d; j++) {
        if (dq) f[dq / 4 + r * d + j] += z * f[vi + j];
        if (dtable) f[dtable / 4 + row * d + j] += p * f[gi + j] + z * f[qi + j];
      }
    }
  }
}

/** I[t, c] = Σ_h w[t, h]·relu(q[t, h]·k_c) for c < visible[t], 0 past it; the dots kept (see the kernel). */
export function train_indexer_fwd_f32(mem: ArrayBufferLike, q: number, keys: number, w: number, visible: number, out: number, dots: number,
  E: number, heads: number, d: number, row0: number, row1: number): void {
  const f = new Float32Array(mem), vis = new Int32Array(mem, visible);
  for (let t = row0; t < row1; t++) {
    for (let c = 0; c < E; c++) {
      let s = 0;
      for (let h = 0; h < heads; h++) {
        const th = t * heads + h;
        let x = 0;
        if (c < vis[t]) for (let j = 0; j < d; j++) x += f[q / 4 + th * d + j] * f[keys / 4 + c * d + j];
        f[dots / 4 + th * E + c] = x;
        s += f[w / 4 + th] * Math.max(x, 0);
      }
      f[out / 4 + t * E + c] = s;
    }
  }
}

/** The backward from the dots: dq, dkeys, dw += (see the kernel). */
export function train_indexer_bwd_f32(mem: ArrayBufferLike, g: number, dots: number, q: number, keys: number, w: number, visible: number,
  dq: number, dkeys: number, dw: number, E: number, heads: number, d: number, row0: number, row1: number): void {
  const f = new Float32Array(mem), vis = new Int32Array(mem, visible);
  for (let t = row0; t < row1; t++) {
    for (let c = 0; c < vis[t]; c++) {
      for (let h = 0; h < heads; h++) {
        const th = t * heads + h, x = f[dots / 4 + th * E + c], dI = f[g / 4 + t * E + c];
        if (!(x > 0)) continue;
        if (dw) f[dw / 4 + th] += dI * x;
        const a = dI * f[w / 4 + th];
        for (let j = 0; j < d; j++) {
          if (dq) f[dq / 4 + th * d + j] += a * f[keys / 4 + c * d + j];
          if (dkeys) f[dkeys / 4 + c * d + j] += a * f[q / 4 + th * d + j];
        }
      }
    }
  }
}
