/**
 * V4 attention pieces as differentiable ops (spec §6): sparse attention with a per-head sink over
 * candidate rows of a key=value table, the grouped low-rank output projection, the compressor
 * (position bias and per-channel softmax pooling, overlap mode included) and the indexer's scores.
 * Also the indexer's training target, computed without a graph.
 *
 * Indexer training (documented choice): DeepSeek-V3.2's lightning-indexer objective, adapted to
 * V4's compressed entries. For query t the target is the main attention's probability mass on each
 * visible compressed entry — per head a dense softmax over the query's window, all of its visible
 * compressed entries and the sink, restricted to the compressed entries, summed over heads and
 * L1-normalised — and the loss is KL(target ‖ softmax(I_t)) over the visible entries (the V3.2
 * "dense warm-up" form, kept for the whole run since the entry count is small). The target is a
 * constant and the indexer's inputs are detached, so this loss trains only the indexer and the
 * language-model loss never reaches it (its top-k choice is not differentiable).
 */
import { F32Attention, type Grads, type IndexerShape, type SparseAttentionShape } from '../kernels/cpu/train-attention.js';
import { expectShape, type FloatArray, rowsOf, type Tape, type Tensor } from './autograd.js';
import { accumulateRows, matmulXWt } from './matmul.js';

/** g[t] + ape[(start + t) mod r]: the compressor's learned in-block position bias, ape [r, w]. */
export function addPositionBias(tp: Tape, g: Tensor, ape: Tensor, start = 0): Tensor {
  const [r, w] = ape.shape, n = rowsOf('addPositionBias', 'logits', g, w);
  const y = tp.output(g.shape, g, ape);
  for (let t = 0; t < n; t++) {
    const a = ((start + t) % r) * w;
    for (let i = 0; i < w; i++) y.data[t * w + i] = g.data[t * w + i] + ape.data[a + i];
  }
  tp.record(y, () => {
    const gy = y.grad!;
    const gg = g.requiresGrad ? g.gradient() : null, ga = ape.requiresGrad ? ape.gradient() : null;
    for (let t = 0; t < n; t++) {
      const a = ((start + t) % r) * w;
      for (let i = 0; i < w; i++) {
        if (gg) gg[t * w + i] += gy[t * w + i];
        if (ga) ga[a + i] += gy[t * w + i];
      }
    }
  });
  return y;
}

/**
 * The compressor's pooling (§6.4) for a sequence starting at position 0: values a and logits g
 * [n, c2·d] (c2 = 2 in overlap mode) → entries [floor(n/r), d]. Entry c, channel ch is the softmax
 * (over candidates, per channel) weighted sum of the values of block c (lane B = channels d.. in
 * overlap mode), plus, in overlap mode, lane A (channels 0..d−1) of block c − 1 when c > 0.
 */
export function compressPool(tp: Tape, a: Tensor, g: Tensor, ratio: number, d: number, overlap: boolean): Tensor {
  const cw = (overlap ? 2 : 1) * d, n = rowsOf('compressPool', 'values', a, cw);
  expectShape('compressPool', 'logits', g, a.shape);
  if (!(Number.isInteger(ratio) && ratio >= 1)) throw new Error(`compressPool: ratio must be a positive integer, got ${ratio}`);
  const E = Math.floor(n / ratio);
  const y = tp.output([E, d], a, g);
  const ad = a.data, gd = g.data;
  const offs = new Int32Array(2 * ratio), p = new Float64Array(2 * ratio);
  for (let c = 0; c < E; c++) {
    for (let ch = 0; ch < d; ch++) {
      const k = poolCandidates(c, ch, ratio, d, cw, overlap, offs);
      poolSoftmax(gd, offs, k, p);
      let acc = 0;
      for (let i = 0; i < k; i++) acc += p[i] * ad[offs[i]];
      y.data[c * d + ch] = acc;
    }
  }
  tp.record(y, () => {
    const gy = y.grad!;
    const ga = a.requiresGrad ? a.gradient() : null, gg = g.requiresGrad ? g.gradient() : null;
    for (let c = 0; c < E; c++) {
      for (let ch = 0; ch < d; ch++) {
        const k = poolCandidates(c, ch, ratio, d, cw, overlap, offs), dy = gy[c * d + ch], out = y.data[c * d + ch];
        poolSoftmax(gd, offs, k, p);
        for (let i = 0; i < k; i++) {
          if (ga) ga[offs[i]] += dy * p[i];
          if (gg) gg[offs[i]] += dy * p[i] * (ad[offs[i]] - out);
        }
      }
    }
  });
  return y;
}

/**
 * Offsets into a/g [n, cw] of entry c's candidates for channel ch: lane A of block c − 1 (overlap
 * mode, c > 0), then block c (lane B in overlap mode). Returns their count.
 */
function poolCandidates(c: number, ch: number, ratio: number, d: number, cw: number, overlap: boolean, out: Int32Array): number {
  let k = 0;
  if (overlap && c > 0) for (let i = 0; i < ratio; i++) out[k++] = ((c - 1) * ratio + i) * cw + ch;
  for (let i = 0; i < ratio; i++) out[k++] = (c * ratio + i) * cw + (overlap ? d : 0) + ch;
  return k;
}

/** p[0..k) = softmax of the logits at offs[0..k). */
function poolSoftmax(gd: FloatArray, offs: Int32Array, k: number, p: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < k; i++) max = Math.max(max, gd[offs[i]]);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += (p[i] = Math.exp(gd[offs[i]] - max));
  for (let i = 0; i < k; i++) p[i] /= sum;
}

/**
 * Sparse attention with sink (§6.6): for query row t and head h, over the table rows
 * rows[t·count .. t·count+count) (−1 = padding), o = Σ_v e^{z_v}·v / (Σ_v e^{z_v} + e^{sink_h}),
 * z_v = scale·q_h·v. q [n, H·Dh], table [T, Dh] (each row is key and value), sink [H] → [n, H·Dh].
 */
export function sparseAttention(tp: Tape, q: Tensor, table: Tensor, rows: Int32Array, count: number, sink: Tensor, scale: number): Tensor {
  const H = sink.size, Dh = table.shape[1], T = table.shape[0];
  const n = rowsOf('sparseAttention', 'queries', q, H * Dh);
  if (rows.length !== n * count) throw new Error(`sparseAttention: ${rows.length} candidate slots for ${n} queries × ${count}`);
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= T || (rows[i] < 0 && rows[i] !== -1)) throw new Error(`sparseAttention: candidate ${rows[i]} is not a row of the ${T}-row table (or −1)`);
  }
  const y = tp.output([n, H * Dh], q, table, sink);
  const qd = q.data, kd = table.data, sd = sink.data;
  if (qd instanceof Float32Array && kd instanceof Float32Array && sd instanceof Float32Array && y.data instanceof Float32Array) {
    sparseAttentionF32(tp, y, q, table, rows, sink, { n, heads: H, d: Dh, T, count, scale });
    return y;
  }
  const prob = new Float64Array(n * H * (count + 1)); // per (t, h): the candidates' probabilities, then the sink's
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < H; h++) {
      const qo = (t * H + h) * Dh, po = (t * H + h) * (count + 1);
      let max = sd[h];
      for (let c = 0; c < count; c++) {
        const r = rows[t * count + c];
        if (r < 0) continue;
        let dot = 0;
        for (let i = 0; i < Dh; i++) dot += qd[qo + i] * kd[r * Dh + i];
        prob[po + c] = scale * dot;
        max = Math.max(max, prob[po + c]);
      }
      let sum = (prob[po + count] = Math.exp(sd[h] - max));
      for (let c = 0; c < count; c++) if (rows[t * count + c] >= 0) sum += (prob[po + c] = Math.exp(prob[po + c] - max));
      for (let c = 0; c <= count; c++) prob[po + c] = c === count || rows[t * count + c] >= 0 ? prob[po + c] / sum : 0;
      for (let i = 0; i < Dh; i++) {
        let acc = 0;
        for (let c = 0; c < count; c++) {
          const r = rows[t * count + c];
          if (r >= 0) acc += prob[po + c] * kd[r * Dh + i];
        }
        y.data[qo + i] = acc;
      }
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gq = q.requiresGrad ? q.gradient() : null, gk = table.requiresGrad ? table.gradient() : null, gs = sink.requiresGrad ? sink.gradient() : null;
    const dz = new Float64Array(count);
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < H; h++) {
        const qo = (t * H + h) * Dh, po = (t * H + h) * (count + 1);
        // dp_v = dO·v; Σ_v p_v dp_v = dO·o; dz_v = p_v (dp_v − dO·o); the sink's value is zero.
        let dOo = 0;
        for (let i = 0; i < Dh; i++) dOo += g[qo + i] * y.data[qo + i];
        for (let c = 0; c < count; c++) {
          const r = rows[t * count + c];
          if (r < 0) { dz[c] = 0; continue; }
          let dp = 0;
          for (let i = 0; i < Dh; i++) dp += g[qo + i] * kd[r * Dh + i];
          dz[c] = prob[po + c] * (dp - dOo);
        }
        if (gs) gs[h] -= prob[po + count] * dOo;
        for (let c = 0; c < count; c++) {
          const r = rows[t * count + c];
          if (r < 0) continue;
          const p = prob[po + c], z = scale * dz[c];
          for (let i = 0; i < Dh; i++) {
            if (gq) gq[qo + i] += z * kd[r * Dh + i];
            if (gk) gk[r * Dh + i] += p * g[qo + i] + z * qd[qo + i];
          }
        }
      }
    }
  });
  return y;
}

/** The gradients of `ts` that require one (f32 arrays here), in order; null for the others. */
function f32Grads(a: Tensor, b: Tensor, c: Tensor): Grads {
  const grad = (t: Tensor) => (t.requiresGrad ? t.gradient() as Float32Array : null);
  return [grad(a), grad(b), grad(c)];
}

/** sparseAttention's all-f32 case on the WASM SIMD kernels (f32 sums; src/kernels/cpu/train-attention.ts). */
function sparseAttentionF32(tp: Tape, y: Tensor, q: Tensor, table: Tensor, rows: Int32Array, sink: Tensor, s: SparseAttentionShape): void {
  const kernels = F32Attention.get(), out = y.data as Float32Array, qd = q.data as Float32Array, kd = table.data as Float32Array;
  const prob = new Float32Array(s.n * s.heads * (s.count + 1));
  kernels.sparseForward(s, qd, kd, rows, sink.data as Float32Array, out, prob);
  tp.record(y, () => kernels.sparseBackward(s, y.grad as Float32Array, out, prob, qd, kd, rows, f32Grads(q, table, sink)));
}

/**
 * The grouped low-rank output (§6.7): o [n, G·gw] (group g = its heads' concatenated outputs),
 * woA [G·Ro, gw] → z [n, G·Ro] with z[t, g·Ro + r] = woA[g·Ro + r] · o[t, g·gw ..].
 */
export function groupedLinear(tp: Tape, o: Tensor, woA: Tensor, groups: number): Tensor {
  const gw = woA.shape[1], GRo = woA.shape[0], Ro = GRo / groups, W = groups * gw;
  if (!Number.isInteger(Ro)) throw new Error(`groupedLinear: ${GRo} weight rows do not split into ${groups} groups`);
  const n = rowsOf('groupedLinear', 'input', o, W);
  const y = tp.output([n, GRo], o, woA);
  const like = (len: number): FloatArray => (o.data instanceof Float32Array ? new Float32Array(len) : new Float64Array(len));
  // Each group is a dense product on its contiguous column block (the matmul.ts kernels).
  const block = (src: FloatArray, width: number, stride: number, at: number, dst: FloatArray): FloatArray => {
    for (let t = 0; t < n; t++) for (let i = 0; i < width; i++) dst[t * width + i] = src[t * stride + at + i];
    return dst;
  };
  const xs = Array.from({ length: groups }, (_, g) => block(o.data, gw, W, g * gw, like(n * gw)));
  const yg = like(n * Ro);
  for (let g = 0; g < groups; g++) {
    matmulXWt(xs[g], woA.data.subarray(g * Ro * gw, (g + 1) * Ro * gw), yg, n, gw, Ro);
    for (let t = 0; t < n; t++) for (let r = 0; r < Ro; r++) y.data[t * GRo + g * Ro + r] = yg[t * Ro + r];
  }
  tp.record(y, () => {
    const gy = y.grad!, acc = new Float64Array(gw), dx = like(n * gw);
    for (let g = 0; g < groups; g++) {
      const gyg = gy.subarray(g * Ro), wg = woA.data.subarray(g * Ro * gw, (g + 1) * Ro * gw);
      if (o.requiresGrad) {
        dx.fill(0);
        accumulateRows(gyg, 1, GRo, wg, dx, n, Ro, gw, acc);
        const go = o.gradient();
        for (let t = 0; t < n; t++) for (let i = 0; i < gw; i++) go[t * W + g * gw + i] += dx[t * gw + i];
      }
      if (woA.requiresGrad) accumulateRows(gyg, GRo, 1, xs[g], woA.gradient().subarray(g * Ro * gw, (g + 1) * Ro * gw), Ro, n, gw, acc);
    }
  });
  return y;
}

/**
 * Indexer scores (§6.5): I[t, c] = Σ_h w[t, h]·relu(qi[t, h]·k[c]) for c < visible[t]; entries past
 * visible[t] are 0 and carry no gradient. qi [n, Hi·Di], keys [E, Di], w [n, Hi] → [n, E].
 */
export function indexerScores(tp: Tape, qi: Tensor, keys: Tensor, w: Tensor, visible: ArrayLike<number>): Tensor {
  const [E, Di] = keys.shape, n = visible.length, Hi = w.size / Math.max(n, 1);
  if (!Number.isInteger(Hi) || qi.size !== n * Hi * Di) throw new Error(`indexerScores: queries of ${qi.size} values are not ${n} × ${Hi} heads × ${Di}`);
  for (let t = 0; t < n; t++) if (!(visible[t] >= 0 && visible[t] <= E)) throw new Error(`indexerScores: row ${t} sees ${visible[t]} of ${E} entries`);
  const y = tp.output([n, E], qi, keys, w);
  const qd = qi.data, kd = keys.data, wd = w.data;
  if (qd instanceof Float32Array && kd instanceof Float32Array && wd instanceof Float32Array && y.data instanceof Float32Array) {
    indexerScoresF32(tp, y, qi, keys, w, Int32Array.from(visible), { n, heads: Hi, d: Di, E });
    return y;
  }
  const dots = new Float64Array(n * Hi * E); // kept for the ReLU gates of the backward
  for (let t = 0; t < n; t++) {
    for (let c = 0; c < visible[t]; c++) {
      let s = 0;
      for (let h = 0; h < Hi; h++) {
        const qo = (t * Hi + h) * Di;
        let d = 0;
        for (let i = 0; i < Di; i++) d += qd[qo + i] * kd[c * Di + i];
        dots[(t * Hi + h) * E + c] = d;
        if (d > 0) s += wd[t * Hi + h] * d;
      }
      y.data[t * E + c] = s;
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gq = qi.requiresGrad ? qi.gradient() : null, gk = keys.requiresGrad ? keys.gradient() : null, gw = w.requiresGrad ? w.gradient() : null;
    for (let t = 0; t < n; t++) {
      for (let c = 0; c < visible[t]; c++) {
        const dI = g[t * E + c];
        if (dI === 0) continue;
        for (let h = 0; h < Hi; h++) {
          const d = dots[(t * Hi + h) * E + c];
          if (!(d > 0)) continue;
          if (gw) gw[t * Hi + h] += dI * d;
          const a = dI * wd[t * Hi + h], qo = (t * Hi + h) * Di;
          for (let i = 0; i < Di; i++) {
            if (gq) gq[qo + i] += a * kd[c * Di + i];
            if (gk) gk[c * Di + i] += a * qd[qo + i];
          }
        }
      }
    }
  });
  return y;
}

/** indexerScores' all-f32 case on the WASM SIMD kernels (f32 sums; src/kernels/cpu/train-attention.ts). */
function indexerScoresF32(tp: Tape, y: Tensor, qi: Tensor, keys: Tensor, w: Tensor, visible: Int32Array, s: IndexerShape): void {
  const kernels = F32Attention.get(), qd = qi.data as Float32Array, kd = keys.data as Float32Array, wd = w.data as Float32Array;
  const dots = new Float32Array(s.n * s.heads * s.E);
  kernels.indexerForward(s, qd, kd, wd, visible, y.data as Float32Array, dots);
  tp.record(y, () => kernels.indexerBackward(s, y.grad as Float32Array, dots, qd, kd, wd, visible, f32Grads(qi, keys, w)));
}

export interface IndexerTargetInput {
  /** Queries after RoPE [n, H·Dh]. */
  readonly q: FloatArray;
  /** Window keys then compressed keys: [n + E, Dh] (the attention table). */
  readonly table: FloatArray;
  readonly sink: FloatArray;
  readonly n: number;
  readonly heads: number;
  readonly headDim: number;
  readonly window: number;
  readonly entries: number;
  readonly visible: ArrayLike<number>;
  readonly scale: number;
}

/**
 * The indexer's target [n, E] (see the file comment): for each query, the dense attention's
 * probability on each visible compressed entry, summed over heads and normalised to sum to 1.
 * Rows with no visible entry are 0.
 */
export function indexerTarget(a: IndexerTargetInput): Float64Array {
  const { q, table, sink, n, heads: H, headDim: Dh, window: W, entries: E, visible, scale } = a;
  const out = new Float64Array(n * E), z = new Float64Array(W + E);
  for (let t = 0; t < n; t++) {
    const vis = visible[t];
    if (vis === 0) continue;
    const first = Math.max(0, t - W + 1), nw = t - first + 1;
    for (let h = 0; h < H; h++) {
      const qo = (t * H + h) * Dh;
      let max = sink[h];
      for (let j = 0; j < nw + vis; j++) {
        const r = j < nw ? first + j : n + (j - nw);
        let dot = 0;
        for (let i = 0; i < Dh; i++) dot += q[qo + i] * table[r * Dh + i];
        z[j] = scale * dot;
        max = Math.max(max, z[j]);
      }
      let sum = Math.exp(sink[h] - max);
      for (let j = 0; j < nw + vis; j++) sum += (z[j] = Math.exp(z[j] - max));
      for (let c = 0; c < vis; c++) out[t * E + c] += z[nw + c] / sum;
    }
    let mass = 0;
    for (let c = 0; c < vis; c++) mass += out[t * E + c];
    for (let c = 0; c < vis; c++) out[t * E + c] /= mass;
  }
  return out;
}
