/**
 * DeepSeek-V3.2's lightning indexer (../../../shared/spec/deepseek-v3.md §4): per query, the
 * min(index_topk, p+1) visible positions MLA attends to.
 *
 *   k   = LayerNorm(wk · x; k_norm)  (fp32, eps 1e-6)            one key per token, cached as FP8
 *   q_h = (wq_b · qr)_h                                           qr: MLA's RMSNorm(wq_a · x)
 *   RoPE on the FIRST ropeDim channels, half-split pairs (i, i + ropeDim/2) — the 2025-11-18 fix
 *   q_h, k ← Had(·) (128-point, scale 128^-0.5), then FP8 with one power-of-two scale per vector
 *   w_h = (weights_proj · x)_h · H^-0.5 · d^-0.5 · sq_h
 *   I(t) = sk_t · Σ_h w_h · relu(q8_h · k8_t)   for t ≤ p;   selected: the top min(topk, p+1)
 *
 * The projections run on the backend (the caller's); the per-token work here runs on the host.
 */
import type { Tensor } from '../kernels/backend.js';
import { hadamard } from '../kernels/deepseek-ops.js';
import { actQuantFp8 } from '../tensor/dequantize.js';
import { E4M3_TO_F32 } from '../tensor/float.js';
import { topIndices } from './host-linear.js';

export interface V32IndexerWeights {
  /** [heads·d, q_lora_rank] */
  readonly wqB: Tensor;
  /** [d, D] */
  readonly wk: Tensor;
  readonly kNorm: Float32Array;
  readonly kNormBias: Float32Array;
  /** [heads, D] */
  readonly weightsProj: Tensor;
}

export interface V32IndexerShape {
  readonly heads: number;
  readonly headDim: number;
  readonly topk: number;
  /** Rotated channels at the start of each vector (the MLA's qk_rope_head_dim). */
  readonly ropeDim: number;
}

const LN_EPS = 1e-6;

/** One layer's key cache: E4M3 codes [capacity, d] and each key's scale [capacity]. */
export class IndexerCache {
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
  constructor(capacity: number, readonly d: number) {
    this.codes = new Uint8Array(capacity * d);
    this.scales = new Float32Array(capacity);
  }
}

/** Per row of width `width`: y = (x − mean) / sqrt(var + eps) · weight + bias, in place (biased variance). */
export function layerNormRows(x: Float32Array, width: number, weight: Float32Array, bias: Float32Array, eps: number): Float32Array {
  for (let o = 0; o < x.length; o += width) {
    let mean = 0;
    for (let i = 0; i < width; i++) mean += x[o + i];
    mean /= width;
    let v = 0;
    for (let i = 0; i < width; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / width + eps);
    for (let i = 0; i < width; i++) x[o + i] = (x[o + i] - mean) * inv * weight[i] + bias[i];
  }
  return x;
}

/**
 * In-place half-split RoPE on the FIRST ropeDim channels of each of `heads` vectors of width `width`
 * from x[offset]: channel i pairs with i + ropeDim/2, angle θ_i = fround(position · freqs[i]),
 * cos / sin rounded to f32 as the MLA's interleaved rotation does.
 */
export function ropeHeadHalfSplit(x: Float32Array, offset: number, heads: number, width: number, ropeDim: number,
  freqs: Float32Array, position: number): void {
  const half = ropeDim / 2;
  for (let i = 0; i < half; i++) {
    const theta = Math.fround(position * freqs[i]), c = Math.fround(Math.cos(theta)), s = Math.fround(Math.sin(theta));
    for (let h = 0; h < heads; h++) {
      const o = offset + h * width + i, a = x[o], b = x[o + half];
      x[o] = a * c - b * s;
      x[o + half] = a * s + b * c;
    }
  }
}

/**
 * Runs the indexer over n tokens at positions start …: `k` [n, d] = wk · x, `q` [n, H·d] = wq_b · qr,
 * `w` [n, H] = weights_proj · x (all consumed). Writes the keys into `cache` and returns, per token,
 * the selected positions in ascending order.
 */
export function indexerSelect(s: V32IndexerShape, W: Pick<V32IndexerWeights, 'kNorm' | 'kNormBias'>, cache: IndexerCache,
  freqs: Float32Array, q: Float32Array, k: Float32Array, w: Float32Array, n: number, start: number): number[][] {
  const H = s.heads, d = s.headDim;
  layerNormRows(k, d, W.kNorm, W.kNormBias, LN_EPS);
  for (let t = 0; t < n; t++) {
    ropeHeadHalfSplit(k, t * d, 1, d, s.ropeDim, freqs, start + t);
    hadamard(k, t * d, d);
  }
  const kq = actQuantFp8(k, d);
  cache.codes.set(kq.codes, start * d);
  cache.scales.set(kq.scales, start);

  const out: number[][] = [];
  const q8 = new Float32Array(H * d), wt = new Float64Array(H), kv = new Float32Array(d);
  const wScale = 1 / Math.sqrt(H) / Math.sqrt(d);
  for (let t = 0; t < n; t++) {
    const p = start + t, visible = p + 1;
    if (visible <= s.topk) {
      out.push(Array.from({ length: visible }, (_, j) => j));
      continue;
    }
    const qt = q.subarray(t * H * d, (t + 1) * H * d);
    ropeHeadHalfSplit(qt, 0, H, d, s.ropeDim, freqs, p);
    for (let h = 0; h < H; h++) hadamard(qt, h * d, d);
    const qq = actQuantFp8(qt, d);
    for (let i = 0; i < H * d; i++) q8[i] = E4M3_TO_F32[qq.codes[i]];
    for (let h = 0; h < H; h++) wt[h] = w[t * H + h] * wScale * qq.scales[h];
    const score = new Float32Array(visible);
    for (let j = 0; j < visible; j++) {
      for (let i = 0; i < d; i++) kv[i] = E4M3_TO_F32[cache.codes[j * d + i]];
      let sum = 0;
      for (let h = 0; h < H; h++) {
        let dot = 0;
        for (let i = 0, o = h * d; i < d; i++) dot += q8[o + i] * kv[i];
        if (dot > 0) sum += wt[h] * dot;
      }
      score[j] = cache.scales[j] * sum;
    }
    out.push(topIndices(score, visible, s.topk).sort((a, b) => a - b));
  }
  return out;
}
