/**
 * Mixture-of-experts ops (spec §7): sqrt-softplus router scores, expert selection (score top-k
 * with the selection-only bias, or the hash table — not differentiable, the chosen experts are
 * constants of the graph), the normalised routing weights (differentiable through the chosen
 * scores), the clamped SwiGLU, and the row gather / weight / scatter that route tokens through
 * the experts.
 */
import { topIndices } from '../models/host-linear.js';
import { type FloatArray, rowsOf, type Tape, type Tensor } from './autograd.js';

/** sqrt(softplus(x)), softplus(x) = x above 20 as in torch (§3.3), elementwise. */
export function sqrtSoftplus(tp: Tape, x: Tensor): Tensor {
  const y = tp.output(x.shape, x);
  for (let i = 0; i < x.size; i++) {
    const v = x.data[i];
    y.data[i] = Math.sqrt(v > 20 ? v : Math.log1p(Math.exp(v)));
  }
  tp.record(y, () => {
    const g = y.grad!, gx = x.gradient();
    for (let i = 0; i < x.size; i++) {
      const v = x.data[i], r = Math.sqrt(v > 20 ? v : Math.log1p(Math.exp(v)));
      // d sqrt(sp)/dx = sp'(x) / (2·sqrt(sp)); sp' = sigmoid, or 1 in the linear branch.
      const dsp = v > 20 ? 1 : 1 / (1 + Math.exp(-v));
      if (r > 0) gx[i] += (g[i] * dsp) / (2 * r);
    }
  });
  return y;
}

/**
 * The clamped SwiGLU of every expert (§7.3): silu(min(g, L))·clamp(u, −L, L); no clamp when
 * L ≤ 0. Clamped entries pass no gradient to their input.
 */
export function swiglu(tp: Tape, g: Tensor, u: Tensor, limit: number): Tensor {
  if (g.size !== u.size) throw new Error(`swiglu: gate has ${g.size} values, up has ${u.size}`);
  const y = tp.output(g.shape, g, u);
  const L = limit > 0 ? limit : Infinity;
  for (let i = 0; i < g.size; i++) {
    const gi = Math.min(g.data[i], L), ui = Math.min(Math.max(u.data[i], -L), L);
    y.data[i] = (gi / (1 + Math.exp(-gi))) * ui;
  }
  tp.record(y, () => {
    const dy = y.grad!;
    const gg = g.requiresGrad ? g.gradient() : null, gu = u.requiresGrad ? u.gradient() : null;
    for (let i = 0; i < g.size; i++) {
      const graw = g.data[i], uraw = u.data[i];
      const gi = Math.min(graw, L), ui = Math.min(Math.max(uraw, -L), L);
      const s = 1 / (1 + Math.exp(-gi));
      if (gg && graw < L) gg[i] += dy[i] * ui * s * (1 + gi * (1 - s));
      if (gu && uraw > -L && uraw < L) gu[i] += dy[i] * gi * s;
    }
  });
  return y;
}

/**
 * Score routing (§7.2): per token the K experts with the largest score + bias (ties: lower expert
 * first, as the inference forward), scores [n, E]. Returns [n·K] expert ids.
 */
export function selectTopK(scores: FloatArray, bias: FloatArray, n: number, E: number, K: number): Int32Array {
  const out = new Int32Array(n * K);
  const sel = scores instanceof Float64Array ? new Float64Array(E) : new Float32Array(E);
  for (let t = 0; t < n; t++) {
    for (let e = 0; e < E; e++) sel[e] = scores[t * E + e] + bias[e];
    out.set(topIndices(sel, E, K), t * K);
  }
  return out;
}

/** Hash routing (§7.2): the K experts tid2eid [vocab, K] lists for each token id. */
export function hashExperts(tid2eid: Int32Array, ids: ArrayLike<number>, K: number): Int32Array {
  const out = new Int32Array(ids.length * K);
  for (let t = 0; t < ids.length; t++) out.set(tid2eid.subarray(ids[t] * K, (ids[t] + 1) * K), t * K);
  return out;
}

/** w[t, k] = routeScale · s[t, idx_k] / Σ_k' s[t, idx_k'] for the chosen experts idx [n·K]; s [n, E] → [n, K]. */
export function routeWeights(tp: Tape, s: Tensor, chosen: Int32Array, K: number, routeScale: number): Tensor {
  const n = chosen.length / K;
  if (!Number.isInteger(n) || n === 0 || s.size % n) throw new Error(`routeWeights: ${chosen.length} choices are not rows of ${K} for ${s.size} scores`);
  const width = s.size / n;
  for (const e of chosen) if (!(e >= 0 && e < width)) throw new Error(`routeWeights: expert ${e} is outside 0 … ${width - 1}`);
  const y = tp.output([n, K], s);
  const sum = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < K; k++) sum[t] += s.data[t * width + chosen[t * K + k]];
    for (let k = 0; k < K; k++) y.data[t * K + k] = (s.data[t * width + chosen[t * K + k]] / sum[t]) * routeScale;
  }
  tp.record(y, () => {
    const g = y.grad!, gs = s.gradient();
    for (let t = 0; t < n; t++) {
      // y_k = c·s_k/S: dy/ds_j = c(δ_kj/S − s_k/S²).
      let dot = 0;
      for (let k = 0; k < K; k++) dot += g[t * K + k] * s.data[t * width + chosen[t * K + k]];
      for (let k = 0; k < K; k++) {
        gs[t * width + chosen[t * K + k]] += routeScale * (g[t * K + k] / sum[t] - dot / (sum[t] * sum[t]));
      }
    }
  });
  return y;
}

/** y[r] = x[rows[r]]: rows of width `width`. */
export function gatherRows(tp: Tape, x: Tensor, rows: Int32Array, width: number): Tensor {
  const n = rowsOf('gatherRows', 'input', x, width);
  for (const r of rows) if (!(r >= 0 && r < n)) throw new Error(`gatherRows: row ${r} is outside 0 … ${n - 1}`);
  const y = tp.output([rows.length, width], x);
  for (let r = 0; r < rows.length; r++) y.data.set(x.data.subarray(rows[r] * width, (rows[r] + 1) * width), r * width);
  tp.record(y, () => {
    const g = y.grad!, gx = x.gradient();
    for (let r = 0; r < rows.length; r++) {
      const o = rows[r] * width;
      for (let i = 0; i < width; i++) gx[o + i] += g[r * width + i];
    }
  });
  return y;
}

/** y[r] = h[r]·w[slots[r]]: each expert row weighted by its routing weight (w flat [n·K]). */
export function scaleRows(tp: Tape, h: Tensor, w: Tensor, slots: Int32Array): Tensor {
  const width = h.size / Math.max(slots.length, 1);
  if (!Number.isInteger(width) || h.size !== slots.length * width) throw new Error(`scaleRows: ${h.size} values are not ${slots.length} rows`);
  for (const s of slots) if (!(s >= 0 && s < w.size)) throw new Error(`scaleRows: slot ${s} is outside the ${w.size} weights`);
  const y = tp.output(h.shape, h, w);
  for (let r = 0; r < slots.length; r++) {
    const ws = w.data[slots[r]];
    for (let i = r * width; i < (r + 1) * width; i++) y.data[i] = h.data[i] * ws;
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gh = h.requiresGrad ? h.gradient() : null, gw = w.requiresGrad ? w.gradient() : null;
    for (let r = 0; r < slots.length; r++) {
      const ws = w.data[slots[r]];
      let dot = 0;
      for (let i = r * width; i < (r + 1) * width; i++) {
        dot += g[i] * h.data[i];
        if (gh) gh[i] += g[i] * ws;
      }
      if (gw) gw[slots[r]] += dot;
    }
  });
  return y;
}

export interface RowsPart {
  readonly y: Tensor;
  /** Destination row of each row of y. */
  readonly rows: Int32Array;
}

/** base + every part's rows added at their destination rows (the experts' outputs combined). */
export function scatterAddRows(tp: Tape, base: Tensor, parts: readonly RowsPart[], width: number): Tensor {
  const n = rowsOf('scatterAddRows', 'base', base, width);
  for (const p of parts) {
    if (p.y.size !== p.rows.length * width) throw new Error(`scatterAddRows: a part of ${p.y.size} values is not ${p.rows.length} rows of ${width}`);
    for (const r of p.rows) if (!(r >= 0 && r < n)) throw new Error(`scatterAddRows: row ${r} is outside 0 … ${n - 1}`);
  }
  const y = tp.output(base.shape, base, ...parts.map((p) => p.y));
  y.data.set(base.data);
  for (const p of parts) {
    for (let r = 0; r < p.rows.length; r++) {
      const o = p.rows[r] * width;
      for (let i = 0; i < width; i++) y.data[o + i] += p.y.data[r * width + i];
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    if (base.requiresGrad) {
      const gb = base.gradient();
      for (let i = 0; i < g.length; i++) gb[i] += g[i];
    }
    for (const p of parts) {
      if (!p.y.requiresGrad) continue;
      const gp = p.y.gradient();
      for (let r = 0; r < p.rows.length; r++) {
        const o = p.rows[r] * width;
        for (let i = 0; i < width; i++) gp[r * width + i] += g[o + i];
      }
    }
  });
  return y;
}
