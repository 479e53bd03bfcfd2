/**
 * DeepSeekMoE as V4 and V4.1 run it (deepseek-v4.md §7, deepseek-v41.md §7): sqrtsoftplus scores,
 * top-k by score + bias (or a hash table's experts), weights normalised over the chosen and scaled,
 * clamped-SwiGLU experts, one shared expert. Routed experts load on first use (MoeWeights.expert).
 */
import type { Tensor } from '../kernels/backend.js';
import { sqrtSoftplus } from '../kernels/deepseek-ops.js';
import { type HostLinear, topIndices } from './host-linear.js';

export interface ExpertWeights {
  readonly w1: Tensor;
  readonly w2: Tensor;
  readonly w3: Tensor;
}

export interface MoeWeights {
  readonly gate: Tensor; // [E, D] bf16
  /** Score layers: selection bias. */
  readonly bias?: Float32Array;
  /** V4.1: the selection bias of positions inside an image span (loaded; no image path yet). */
  readonly biasImage?: Float32Array;
  /** Hash layers: [vocab, K] expert ids. */
  readonly tid2eid?: Int32Array;
  /** Routed experts, loaded the first time a token is routed to them. */
  readonly expert: (e: number) => Promise<ExpertWeights>;
  readonly shared: ExpertWeights;
}

export interface MoeParams {
  readonly dim: number;
  readonly topK: number;
  readonly routeScale: number;
  readonly swigluLimit: number;
  /** V4.1: router logits are divided by it (default 1). */
  readonly gateTemp?: number;
  /** V4.1 adds 1e-20 to the sum of the chosen scores (default 0). */
  readonly sumEps?: number;
}

/**
 * The MoE output [n, D] of normalised rows x [n, D] (token ids for hash routing). `fp8In` is the
 * activation rounding before FP8/FP4 products, if on.
 */
export async function moeForward(lin: HostLinear, p: MoeParams, F: MoeWeights, x: Float32Array, ids: readonly number[],
  fp8In: ((x: Float32Array) => void) | undefined, tap?: (what: string, d: Float32Array | Int32Array) => void): Promise<Float32Array> {
  const D = p.dim, K = p.topK, E = F.gate.shape[0], n = ids.length, temp = p.gateTemp ?? 1;
  const s = await lin.run(F.gate, x, n);
  for (let i = 0; i < s.length; i++) s[i] = sqrtSoftplus(temp === 1 ? s[i] : s[i] / temp);
  const chosen = new Int32Array(n * K), weight = new Float32Array(n * K);
  const sel = new Float32Array(E);
  for (let t = 0; t < n; t++) {
    let experts: ArrayLike<number>;
    if (F.tid2eid) {
      experts = F.tid2eid.subarray(ids[t] * K, (ids[t] + 1) * K);
    } else {
      for (let e = 0; e < E; e++) sel[e] = s[t * E + e] + F.bias![e];
      experts = topIndices(sel, E, K);
    }
    let sum = p.sumEps ?? 0;
    for (let k = 0; k < K; k++) sum += s[t * E + experts[k]];
    for (let k = 0; k < K; k++) {
      chosen[t * K + k] = experts[k];
      weight[t * K + k] = (s[t * E + experts[k]] / sum) * p.routeScale;
    }
  }
  tap?.('gate.indices', chosen);
  tap?.('gate.weights', weight);

  // Shared expert, then each routed expert over the tokens routed to it. Every expert's w1 and
  // w3 read the same rows, so their FP8 rounding is done once here.
  if (fp8In) {
    x = x.slice();
    fp8In(x);
  }
  const out = await expertForward(lin, p.swigluLimit, F.shared, x, n, null, fp8In);
  const byExpert = new Map<number, number[]>();
  for (let i = 0; i < n * K; i++) {
    const list = byExpert.get(chosen[i]);
    if (list) list.push(i);
    else byExpert.set(chosen[i], [i]);
  }
  for (const [e, slots] of [...byExpert].sort((a, b) => a[0] - b[0])) {
    const m = slots.length, xe = new Float32Array(m * D), we = new Float32Array(m);
    slots.forEach((slot, r) => {
      const t = Math.floor(slot / K);
      xe.set(x.subarray(t * D, (t + 1) * D), r * D);
      we[r] = weight[slot];
    });
    const ye = await expertForward(lin, p.swigluLimit, await F.expert(e), xe, m, we, fp8In);
    slots.forEach((slot, r) => {
      const t = Math.floor(slot / K);
      for (let i = 0; i < D; i++) out[t * D + i] += ye[r * D + i];
    });
  }
  return out;
}

/** Clamped SwiGLU expert (§7.3) of rows x already rounded for FP8 products; the routing weight scales w2's input. */
async function expertForward(lin: HostLinear, limit: number, X: ExpertWeights, x: Float32Array, m: number,
  weight: Float32Array | null, fp8In: ((x: Float32Array) => void) | undefined): Promise<Float32Array> {
  const g = await lin.run(X.w1, x, m);
  const u = await lin.run(X.w3, x, m);
  const inter = g.length / m;
  for (let r = 0; r < m; r++) {
    const wr = weight ? weight[r] : 1;
    for (let i = r * inter; i < (r + 1) * inter; i++) {
      let gi = g[i], ui = u[i];
      if (limit > 0) {
        gi = Math.min(gi, limit);
        ui = Math.min(Math.max(ui, -limit), limit);
      }
      g[i] = wr * (gi / (1 + Math.exp(-gi))) * ui;
    }
  }
  return lin.run(X.w2, g, m, fp8In);
}
