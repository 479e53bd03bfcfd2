/**
 * DeepSeek-V4-specific numeric primitives on the host (spec §3, §5.2, §6.6): mHC split + Sinkhorn,
 * the Walsh–Hadamard rotation, interleaved tail RoPE, sparse attention with a sink, sqrtsoftplus.
 * Plain loops on Float32Array with float64 arithmetic; no allocation per call beyond module-level
 * scratch that grows to the largest size seen.
 */

const f32 = Math.fround;

let scratch = new Float64Array(256);

/** Module-level float64 scratch of at least `n` elements (contents undefined). */
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, 2 * scratch.length));
  return scratch;
}

function checkRange(what: string, array: ArrayLike<number>, offset: number, count: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + count > array.length) {
    throw new Error(`${what}: needs ${count} elements from offset ${offset}, array has ${array.length}`);
  }
}

function checkCount(what: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer ≥ ${min}, got ${n}`);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * mHC split + Sinkhorn of §5.2 step 3 for one token: mixes [(2+hc)·hc] logits (already divided by
 * rms), scale [3], base [(2+hc)·hc]. Writes pre [hc], post [hc], comb [hc·hc] (comb[j*hc+k]:
 * stream j → stream k).
 */
export function hcSplitSinkhorn(mixes: Float32Array, mixOffset: number, scale: Float32Array, base: Float32Array, hc: number,
  iters: number, eps: number, pre: Float32Array, post: Float32Array, comb: Float32Array): void {
  checkCount('hcSplitSinkhorn: hc', hc, 1);
  checkCount('hcSplitSinkhorn: iters', iters, 1);
  const n = (2 + hc) * hc;
  checkRange('hcSplitSinkhorn mixes', mixes, mixOffset, n);
  checkRange('hcSplitSinkhorn scale', scale, 0, 3);
  checkRange('hcSplitSinkhorn base', base, 0, n);
  checkRange('hcSplitSinkhorn pre', pre, 0, hc);
  checkRange('hcSplitSinkhorn post', post, 0, hc);
  checkRange('hcSplitSinkhorn comb', comb, 0, hc * hc);

  for (let j = 0; j < hc; j++) {
    pre[j] = sigmoid(mixes[mixOffset + j] * scale[0] + base[j]) + eps;
    post[j] = 2 * sigmoid(mixes[mixOffset + hc + j] * scale[1] + base[hc + j]);
  }
  // Row softmax of the comb logits, plus eps on every entry.
  const c0 = 2 * hc;
  for (let j = 0; j < hc; j++) {
    const r = j * hc;
    let max = -Infinity;
    for (let k = 0; k < hc; k++) {
      const z = f32(mixes[mixOffset + c0 + r + k] * scale[2] + base[c0 + r + k]);
      comb[r + k] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let k = 0; k < hc; k++) sum += (comb[r + k] = Math.exp(comb[r + k] - max));
    for (let k = 0; k < hc; k++) comb[r + k] = comb[r + k] / sum + eps;
  }
  normaliseColumns(comb, hc, eps);
  for (let it = 1; it < iters; it++) {
    normaliseRows(comb, hc, eps);
    normaliseColumns(comb, hc, eps);
  }
}

/** C[j][·] /= Σ_k C[j][k] + eps. */
function normaliseRows(c: Float32Array, hc: number, eps: number): void {
  for (let r = 0; r < hc * hc; r += hc) {
    let sum = 0;
    for (let k = 0; k < hc; k++) sum += c[r + k];
    const inv = sum + eps;
    for (let k = 0; k < hc; k++) c[r + k] /= inv;
  }
}

/** C[·][k] /= Σ_j C[j][k] + eps. */
function normaliseColumns(c: Float32Array, hc: number, eps: number): void {
  for (let k = 0; k < hc; k++) {
    let sum = 0;
    for (let r = k; r < hc * hc; r += hc) sum += c[r];
    const inv = sum + eps;
    for (let r = k; r < hc * hc; r += hc) c[r] /= inv;
  }
}

/** In-place orthonormal Walsh–Hadamard transform (Sylvester order, scale n^-0.5) of x[offset .. offset+n), n a power of two. */
export function hadamard(x: Float32Array, offset: number, n: number): void {
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) throw new Error(`hadamard: length must be a power of two, got ${n}`);
  checkRange('hadamard x', x, offset, n);
  const t = scratchOf(n);
  for (let i = 0; i < n; i++) t[i] = x[offset + i];
  // Butterflies of stride h: after all stages t_j = Σ_i x_i·(−1)^popcount(i & j).
  for (let h = 1; h < n; h <<= 1) {
    for (let i = 0; i < n; i += h << 1) {
      for (let j = i; j < i + h; j++) {
        const a = t[j], b = t[j + h];
        t[j] = a + b;
        t[j + h] = a - b;
      }
    }
  }
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) x[offset + i] = t[i] * s;
}

/**
 * In-place interleaved RoPE on the last ropeDim channels of each of `heads` vectors of width
 * `width` starting at x[offset]: pair i = channels (off+2i, off+2i+1), off = width − ropeDim,
 * angle θ_i = fround(position · freqs[i]); inverse rotates by −θ.
 */
export function ropeTail(x: Float32Array, offset: number, heads: number, width: number, ropeDim: number, freqs: Float32Array,
  position: number, inverse: boolean): void {
  checkCount('ropeTail: heads', heads, 0);
  checkCount('ropeTail: ropeDim', ropeDim, 0);
  if (ropeDim % 2 || ropeDim > width) throw new Error(`ropeTail: ropeDim ${ropeDim} must be even and ≤ width ${width}`);
  checkRange('ropeTail x', x, offset, heads * width);
  const pairs = ropeDim / 2;
  checkRange('ropeTail freqs', freqs, 0, pairs);
  // cos/sin rounded to f32 as in the reference's complex64 table; shared by every head.
  const cs = scratchOf(ropeDim);
  const sign = inverse ? -1 : 1;
  for (let i = 0; i < pairs; i++) {
    const theta = f32(position * freqs[i]);
    cs[2 * i] = f32(Math.cos(theta));
    cs[2 * i + 1] = sign * f32(Math.sin(theta));
  }
  for (let h = 0; h < heads; h++) {
    const base = offset + h * width + width - ropeDim;
    for (let i = 0; i < ropeDim; i += 2) {
      const a = x[base + i], b = x[base + i + 1], c = cs[i], s = cs[i + 1];
      x[base + i] = a * c - b * s;
      x[base + i + 1] = a * s + b * c;
    }
  }
}

/**
 * Sparse attention with sink for ONE query token (§6.6): q [heads, d] at q[qOffset..], candidate
 * key=value rows kv[row*d .. row*d+d) for row in rows (entries < 0 are skipped), sink [heads]; out
 * [heads, d] at out[outOffset..]. z = scale·(q_h·v); o_h = Σ exp(z_v)·v / (Σ exp(z_v) + exp(sink_h)),
 * with the max (sink included) subtracted for stability. No candidates: o_h = 0.
 */
export function sparseAttentionWithSink(q: Float32Array, qOffset: number, heads: number, d: number, kv: Float32Array,
  rows: ArrayLike<number>, rowCount: number, sink: Float32Array, scale: number, out: Float32Array, outOffset: number): void {
  checkCount('sparseAttentionWithSink: heads', heads, 0);
  checkCount('sparseAttentionWithSink: d', d, 1);
  checkCount('sparseAttentionWithSink: rowCount', rowCount, 0);
  checkRange('sparseAttentionWithSink q', q, qOffset, heads * d);
  checkRange('sparseAttentionWithSink out', out, outOffset, heads * d);
  checkRange('sparseAttentionWithSink sink', sink, 0, heads);
  checkRange('sparseAttentionWithSink rows', rows, 0, rowCount);
  const kvRows = Math.floor(kv.length / d);
  for (let r = 0; r < rowCount; r++) {
    const row = rows[r];
    if (row >= kvRows || !Number.isInteger(row)) {
      throw new Error(`sparseAttentionWithSink: candidate ${r} is row ${row}, kv holds ${kvRows} rows`);
    }
  }
  // scratch: [rowCount] logits, then [d] accumulator.
  const t = scratchOf(rowCount + d);
  for (let h = 0; h < heads; h++) {
    const qh = qOffset + h * d, oh = outOffset + h * d;
    let max = sink[h], any = false;
    for (let r = 0; r < rowCount; r++) {
      const row = rows[r];
      if (row < 0) continue;
      any = true;
      const v = row * d;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[qh + c] * kv[v + c];
      const z = scale * dot;
      t[r] = z;
      if (z > max) max = z;
    }
    if (!any) {
      out.fill(0, oh, oh + d);
      continue;
    }
    const acc = rowCount;
    t.fill(0, acc, acc + d);
    let sum = Math.exp(sink[h] - max);
    for (let r = 0; r < rowCount; r++) {
      const row = rows[r];
      if (row < 0) continue;
      const p = Math.exp(t[r] - max), v = row * d;
      sum += p;
      for (let c = 0; c < d; c++) t[acc + c] += p * kv[v + c];
    }
    const inv = 1 / sum;
    for (let c = 0; c < d; c++) out[oh + c] = t[acc + c] * inv;
  }
}

/** sqrt(softplus(x)), softplus(x) = x for x > 20 (torch's default threshold), ln(1 + e^x) otherwise. */
export function sqrtSoftplus(x: number): number {
  return Math.sqrt(x > 20 ? x : Math.log1p(Math.exp(x)));
}
