/**
 * General ops with backward passes: embedding gather, linear maps, elementwise arithmetic, RMSNorm,
 * the V4 partial interleaved RoPE, the Walsh–Hadamard rotation, masked row softmax, KL divergence
 * to a fixed target, and next-token cross-entropy. Row-wise ops take the row width explicitly, so
 * a [n, H, d] tensor is simply n·H rows of d (no reshape op needed).
 */
import { expectShape, rowsOf, type Tape, Tensor } from './autograd.js';
import { accumulateRows, matmulXWt } from './matmul.js';

const f32 = Math.fround;

/** y[t] = table[ids[t]]: rows of a [vocab, D] table; backward scatters into the table. */
export function embedding(tp: Tape, table: Tensor, ids: ArrayLike<number>): Tensor {
  if (table.shape.length !== 2) throw new Error(`embedding: table must be [vocab, D], got [${table.shape.join(', ')}]`);
  const [V, D] = table.shape, n = ids.length;
  for (let t = 0; t < n; t++) {
    if (!(Number.isInteger(ids[t]) && ids[t] >= 0 && ids[t] < V)) throw new Error(`embedding: token id ${ids[t]} at ${t} is outside 0 … ${V - 1}`);
  }
  const y = tp.output([n, D], table);
  for (let t = 0; t < n; t++) y.data.set(table.data.subarray(ids[t] * D, (ids[t] + 1) * D), t * D);
  tp.record(y, () => {
    const g = y.grad!, gt = table.gradient();
    for (let t = 0; t < n; t++) {
      const o = ids[t] * D;
      for (let i = 0; i < D; i++) gt[o + i] += g[t * D + i];
    }
  });
  return y;
}

/** y = x·Wᵀ for W [m, k] stored [out, in] and x a whole number of rows of k → [rows, m]. */
export function linear(tp: Tape, x: Tensor, W: Tensor): Tensor {
  if (W.shape.length !== 2) throw new Error(`linear: weight must be [out, in], got [${W.shape.join(', ')}]`);
  const [m, k] = W.shape, n = rowsOf('linear', 'input', x, k);
  const y = tp.output([n, m], x, W);
  matmulXWt(x.data, W.data, y.data, n, k, m);
  tp.record(y, () => {
    const g = y.grad!, acc = new Float64Array(k);
    if (x.requiresGrad) accumulateRows(g, 1, m, W.data, x.gradient(), n, m, k, acc);
    if (W.requiresGrad) accumulateRows(g, m, 1, x.data, W.gradient(), m, n, k, acc);
  });
  return y;
}

/** Elementwise ops need the same number of values; the output takes the first operand's shape. */
function sameSize(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: operands have ${a.size} and ${b.size} values`);
}

export function add(tp: Tape, a: Tensor, b: Tensor): Tensor {
  sameSize('add', a, b);
  const y = tp.output(a.shape, a, b);
  for (let i = 0; i < y.size; i++) y.data[i] = a.data[i] + b.data[i];
  tp.record(y, () => {
    const g = y.grad!;
    for (const t of [a, b]) {
      if (!t.requiresGrad) continue;
      const gt = t.gradient();
      for (let i = 0; i < g.length; i++) gt[i] += g[i];
    }
  });
  return y;
}

export function mul(tp: Tape, a: Tensor, b: Tensor): Tensor {
  sameSize('mul', a, b);
  const y = tp.output(a.shape, a, b);
  for (let i = 0; i < y.size; i++) y.data[i] = a.data[i] * b.data[i];
  tp.record(y, () => {
    const g = y.grad!;
    if (a.requiresGrad) {
      const ga = a.gradient();
      for (let i = 0; i < g.length; i++) ga[i] += g[i] * b.data[i];
    }
    if (b.requiresGrad) {
      const gb = b.gradient();
      for (let i = 0; i < g.length; i++) gb[i] += g[i] * a.data[i];
    }
  });
  return y;
}

/** y = s·x for a constant s. */
export function scale(tp: Tape, x: Tensor, s: number): Tensor {
  const y = tp.output(x.shape, x);
  for (let i = 0; i < y.size; i++) y.data[i] = s * x.data[i];
  tp.record(y, () => {
    const g = y.grad!, gx = x.gradient();
    for (let i = 0; i < g.length; i++) gx[i] += s * g[i];
  });
  return y;
}

/** The same values, cut off from the graph: no gradient flows back through it. */
export function detach(x: Tensor): Tensor {
  return new Tensor(x.shape, x.data, false);
}

/** [rows of a; rows of b], both of width `width`. */
export function concatRows(tp: Tape, a: Tensor, b: Tensor, width: number): Tensor {
  const ra = rowsOf('concatRows', 'first operand', a, width), rb = rowsOf('concatRows', 'second operand', b, width);
  const y = tp.output([ra + rb, width], a, b);
  y.data.set(a.data, 0);
  y.data.set(b.data, a.size);
  tp.record(y, () => {
    const g = y.grad!;
    if (a.requiresGrad) {
      const ga = a.gradient();
      for (let i = 0; i < a.size; i++) ga[i] += g[i];
    }
    if (b.requiresGrad) {
      const gb = b.gradient();
      for (let i = 0; i < b.size; i++) gb[i] += g[a.size + i];
    }
  });
  return y;
}

/** y = w ⊙ x / sqrt(mean(x²) + eps) per row of `width`; `w` null = weightless. */
export function rmsnorm(tp: Tape, x: Tensor, w: Tensor | null, width: number, eps: number): Tensor {
  const n = rowsOf('rmsnorm', 'input', x, width);
  if (w) expectShape('rmsnorm', 'weight', w, [width]);
  const y = tp.output(x.shape, x, w);
  const inv = new Float64Array(n), xd = x.data, yd = y.data;
  for (let r = 0; r < n; r++) {
    const o = r * width;
    let ss = 0;
    for (let i = 0; i < width; i++) ss += xd[o + i] * xd[o + i];
    const v = (inv[r] = 1 / Math.sqrt(ss / width + eps));
    if (w) for (let i = 0; i < width; i++) yd[o + i] = w.data[i] * (xd[o + i] * v);
    else for (let i = 0; i < width; i++) yd[o + i] = xd[o + i] * v;
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gx = x.requiresGrad ? x.gradient() : null, gw = w?.requiresGrad ? w.gradient() : null;
    for (let r = 0; r < n; r++) {
      const o = r * width, v = inv[r];
      // With x̂ = x·v and ĝ = g ⊙ w: dx = v·(ĝ − x̂·mean(ĝ ⊙ x̂)), dw = Σ_rows g ⊙ x̂.
      let dot = 0;
      for (let i = 0; i < width; i++) dot += g[o + i] * (w ? w.data[i] : 1) * xd[o + i] * v;
      const m = dot / width;
      for (let i = 0; i < width; i++) {
        const xh = xd[o + i] * v;
        if (gx) gx[o + i] += v * (g[o + i] * (w ? w.data[i] : 1) - xh * m);
        if (gw) gw[i] += g[o + i] * xh;
      }
    }
  });
  return y;
}

export interface RopeSpec {
  /** Vectors per row (heads), each `width` wide; the last `ropeDim` channels of each are rotated. */
  readonly heads: number;
  readonly width: number;
  readonly ropeDim: number;
  /** ropeDim/2 frequencies of the layer's table (deepseek-v4.ts v4RopeFreqs). */
  readonly freqs: Float32Array;
  /** Absolute position of each row. */
  readonly positions: ArrayLike<number>;
  /** Rotate by −θ (the attention output de-rotation). */
  readonly inverse?: boolean;
}

/**
 * Interleaved RoPE on the tail of each vector (spec §3.4): pair i = channels (off+2i, off+2i+1),
 * off = width − ropeDim, θ_i = fround(p·f_i), cos and sin rounded to f32 as in the reference.
 * Linear in x; its backward is the opposite rotation.
 */
export function rope(tp: Tape, x: Tensor, s: RopeSpec): Tensor {
  const { heads, width, ropeDim, freqs, positions } = s;
  if (ropeDim % 2 || ropeDim > width || freqs.length < ropeDim / 2) throw new Error(`rope: ropeDim ${ropeDim} must be even, ≤ width ${width} and have ${ropeDim / 2} frequencies`);
  const n = positions.length, rw = heads * width;
  if (x.size !== n * rw) throw new Error(`rope: input has ${x.size} values, expected ${n} rows of ${heads} × ${width}`);
  const cs = cosSin(freqs, ropeDim, positions, s.inverse ? -1 : 1);
  const y = tp.output(x.shape, x);
  rotate(x.data, y.data, cs, n, heads, width, ropeDim, 1);
  tp.record(y, () => {
    const gx = x.gradient(), back = new Float64Array(x.size);
    rotate(y.grad!, back, cs, n, heads, width, ropeDim, -1);
    for (let i = 0; i < back.length; i++) gx[i] += back[i];
  });
  return y;
}

/** [n, ropeDim]: cos θ_i, sign·sin θ_i interleaved per row. */
function cosSin(freqs: Float32Array, ropeDim: number, positions: ArrayLike<number>, sign: number): Float64Array {
  const pairs = ropeDim / 2, n = positions.length, cs = new Float64Array(n * ropeDim);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < pairs; i++) {
      const theta = f32(positions[t] * freqs[i]);
      cs[t * ropeDim + 2 * i] = f32(Math.cos(theta));
      cs[t * ropeDim + 2 * i + 1] = sign * f32(Math.sin(theta));
    }
  }
  return cs;
}

/** dst = rotation of src's tails by the table (dir −1: transposed rotation); other channels copied. */
function rotate(src: ArrayLike<number>, dst: Float32Array | Float64Array, cs: Float64Array, n: number, heads: number,
  width: number, ropeDim: number, dir: number): void {
  const off = width - ropeDim;
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * width;
      for (let i = 0; i < off; i++) dst[base + i] = src[base + i];
      for (let i = 0; i < ropeDim; i += 2) {
        const a = src[base + off + i], b = src[base + off + i + 1];
        const c = cs[t * ropeDim + i], sn = dir * cs[t * ropeDim + i + 1];
        dst[base + off + i] = a * c - b * sn;
        dst[base + off + i + 1] = a * sn + b * c;
      }
    }
  }
}

/**
 * Orthonormal Walsh–Hadamard transform of every row of `width` (a power of two), Sylvester order
 * (spec §3.5). Symmetric and orthonormal, so the backward is the same transform.
 */
export function hadamardRows(tp: Tape, x: Tensor, width: number): Tensor {
  if (!(width >= 1 && (width & (width - 1)) === 0)) throw new Error(`hadamardRows: width must be a power of two, got ${width}`);
  rowsOf('hadamardRows', 'input', x, width);
  const y = tp.output(x.shape, x);
  const t = new Float64Array(width);
  walshHadamard(x.data, y.data, width, t);
  tp.record(y, () => {
    const gx = x.gradient(), back = new Float64Array(x.size);
    walshHadamard(y.grad!, back, width, t);
    for (let i = 0; i < back.length; i++) gx[i] += back[i];
  });
  return y;
}

function walshHadamard(src: ArrayLike<number>, dst: Float32Array | Float64Array, n: number, t: Float64Array): void {
  const s = 1 / Math.sqrt(n);
  for (let o = 0; o < src.length; o += n) {
    for (let i = 0; i < n; i++) t[i] = src[o + i];
    for (let h = 1; h < n; h <<= 1) {
      for (let i = 0; i < n; i += h << 1) {
        for (let j = i; j < i + h; j++) {
          const a = t[j], b = t[j + h];
          t[j] = a + b;
          t[j + h] = a - b;
        }
      }
    }
    for (let i = 0; i < n; i++) dst[o + i] = t[i] * s;
  }
}

/**
 * Softmax of each row of `width` over its first valid[r] entries (all when `valid` is absent);
 * entries past that are 0, and a row with no valid entry is all 0.
 */
export function softmax(tp: Tape, x: Tensor, width: number, valid?: ArrayLike<number>): Tensor {
  const n = rowsOf('softmax', 'input', x, width);
  if (valid && valid.length !== n) throw new Error(`softmax: ${valid.length} valid lengths for ${n} rows`);
  const y = tp.output(x.shape, x);
  const xd = x.data, yd = y.data;
  for (let r = 0; r < n; r++) {
    const o = r * width, len = valid ? valid[r] : width;
    if (!(len >= 0 && len <= width)) throw new Error(`softmax: row ${r} has valid length ${len}, width is ${width}`);
    let max = -Infinity;
    for (let i = 0; i < len; i++) max = Math.max(max, xd[o + i]);
    let sum = 0;
    for (let i = 0; i < len; i++) sum += Math.exp(xd[o + i] - max);
    for (let i = 0; i < len; i++) yd[o + i] = Math.exp(xd[o + i] - max) / sum;
  }
  tp.record(y, () => {
    const g = y.grad!, gx = x.gradient();
    for (let r = 0; r < n; r++) {
      const o = r * width, len = valid ? valid[r] : width;
      let dot = 0;
      for (let i = 0; i < len; i++) dot += g[o + i] * yd[o + i];
      for (let i = 0; i < len; i++) gx[o + i] += yd[o + i] * (g[o + i] - dot);
    }
  });
  return y;
}

/** Probabilities below this count as this in log p (keeps an underflowed entry finite). */
const P_FLOOR = 1e-30;

/**
 * Mean over the listed rows of KL(target_r ‖ p_r) = Σ_i target·(log target − log p), for a constant
 * target (rows of `width`, entries ≤ 0 contribute nothing) and probabilities p. Scalar.
 */
export function klDivergence(tp: Tape, target: ArrayLike<number>, p: Tensor, width: number, rows: ArrayLike<number>): Tensor {
  const n = rowsOf('klDivergence', 'p', p, width);
  if (target.length !== p.size) throw new Error(`klDivergence: target has ${target.length} values, p has ${p.size}`);
  const y = tp.output([1], p);
  const pd = p.data;
  let sum = 0;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    if (!(Number.isInteger(r) && r >= 0 && r < n)) throw new Error(`klDivergence: row ${r} is outside 0 … ${n - 1}`);
    for (let i = r * width; i < (r + 1) * width; i++) {
      if (target[i] > 0) sum += target[i] * (Math.log(target[i]) - Math.log(Math.max(pd[i], P_FLOOR)));
    }
  }
  const count = Math.max(rows.length, 1);
  y.data[0] = sum / count;
  tp.record(y, () => {
    const g = y.grad![0] / count, gp = p.gradient();
    for (let k = 0; k < rows.length; k++) {
      for (let i = rows[k] * width; i < (rows[k] + 1) * width; i++) {
        if (target[i] > 0) gp[i] -= (g * target[i]) / Math.max(pd[i], P_FLOOR);
      }
    }
  });
  return y;
}

/**
 * Mean next-token cross-entropy −log softmax(logits_t)[target_t] over the rows whose target is
 * ≥ 0 (negative targets are ignored). Scalar; 0 when no row counts.
 */
export function crossEntropy(tp: Tape, logits: Tensor, targets: ArrayLike<number>): Tensor {
  const n = targets.length;
  if (n === 0 || logits.size % n) throw new Error(`crossEntropy: ${logits.size} logits are not ${n} rows`);
  const V = logits.size / n;
  const y = tp.output([1], logits);
  const ld = logits.data, lse = new Float64Array(n);
  let sum = 0, count = 0;
  for (let t = 0; t < n; t++) {
    const target = targets[t];
    if (target < 0) continue;
    if (!(Number.isInteger(target) && target < V)) throw new Error(`crossEntropy: target ${target} at row ${t} is outside 0 … ${V - 1}`);
    const o = t * V;
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, ld[o + i]);
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(ld[o + i] - max);
    lse[t] = max + Math.log(s);
    sum += lse[t] - ld[o + target];
    count++;
  }
  y.data[0] = count ? sum / count : 0;
  tp.record(y, () => {
    if (!count) return;
    const g = y.grad![0] / count, gl = logits.gradient();
    for (let t = 0; t < n; t++) {
      if (targets[t] < 0) continue;
      const o = t * V;
      for (let i = 0; i < V; i++) gl[o + i] += g * Math.exp(ld[o + i] - lse[t]);
      gl[o + targets[t]] -= g;
    }
  });
  return y;
}
