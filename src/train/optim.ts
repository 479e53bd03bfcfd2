/**
 * The optimiser of minke's training runs: Muon for the hidden matrices, AdamW for the rest, one
 * global gradient-norm clip, a warmup + cosine (or WSD) learning-rate schedule, and DeepSeek-V3's
 * aux-loss-free load balancing (the routing bias moves against each expert's load by a fixed rate).
 *
 * Which tensor goes where (paramGroup) — the usual Muon split (hidden matrices on Muon; embedding,
 * output head and every vector on AdamW), with the mHC mixing projections counted as hidden matrices:
 * - Muon: every 2-D weight matrix of a block — attention projections (wq_a, wq_b, wkv, wo_a, wo_b),
 *   compressor and indexer projections, the router (`ffn.gate.weight`), shared and routed expert
 *   weights (each expert its own matrix), MTP e_proj / h_proj, and the mHC mixing projections
 *   (`hc_*_fn`, a dynamic [mix, Hc·D] map).
 * - AdamW: `embed.weight`, `head.weight`, every 1-D tensor (RMSNorm weights, `attn_sink`, `hc_*_base`,
 *   `hc_*_scale`) and the compressors' position biases `ape`.
 * - neither: `ffn.gate.bias` (no gradient; updateRoutingBias) and the hash tables.
 * Weight decay (decoupled, lr·wd·p) applies to the matrices (Muon's, embed and head), never to
 * norms, biases, scales or sinks.
 *
 * Muon (Keller Jordan; the update-RMS rule of Moonshot's "Muon is scalable"): momentum buffer
 * B ← μB + G, Nesterov direction U = G + μB, O = NewtonSchulz5(U), p ← p − lr·(0.2·√max(rows, cols)·O + wd·p).
 * An orthogonal [r, c] matrix has RMS 1/√max(r, c), so the factor makes Muon's update RMS 0.2 —
 * AdamW's typical update RMS — and both groups share one learning rate.
 *
 * Everything is deterministic: fixed iteration order, no randomness; sums in f64, but Newton–Schulz
 * on f32 parameters runs in f32 (WASM products, each output summed in one fixed order by one thread).
 */
import { allocFloats, type FloatArray, type Precision, type Tensor } from './autograd.js';
import { accumulateRows, matmulXWt } from './matmul.js';

export type ScheduleKind = 'cosine' | 'wsd' | 'constant';

export interface OptimizerConfig {
  /** Peak learning rate of both groups. */
  readonly lr: number;
  /** Steps of the whole run: the schedule's length. */
  readonly totalSteps: number;
  /** Linear warmup from lr/warmup to lr over this many steps. Default 0. */
  readonly warmup?: number;
  /** After warmup: cosine to minLrRatio·lr at totalSteps; 'wsd' holds lr, then decays linearly over the last decayFraction of the steps. Default 'cosine'. */
  readonly schedule?: ScheduleKind;
  /** Default 0.1. */
  readonly minLrRatio?: number;
  /** WSD's decay share of totalSteps. Default 0.2. */
  readonly decayFraction?: number;
  /** AdamW β1, β2, ε. Defaults 0.9, 0.95, 1e-8. */
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /** Decoupled weight decay of the matrices. Default 0.1. */
  readonly weightDecay?: number;
  /** Muon momentum μ (Nesterov). Default 0.95. */
  readonly momentum?: number;
  /** Newton–Schulz iterations. Default 5. */
  readonly nsSteps?: number;
  /** Global gradient-norm clip; 0 turns it off. Default 1. */
  readonly clip?: number;
  /** γ of the routing-bias update (DeepSeek-V3 used 0.001). Default 0.001. */
  readonly biasRate?: number;
}

type Resolved = Required<OptimizerConfig>;

export function resolveOptimizerConfig(c: OptimizerConfig): Resolved {
  const r: Resolved = {
    warmup: 0, schedule: 'cosine', minLrRatio: 0.1, decayFraction: 0.2, beta1: 0.9, beta2: 0.95, eps: 1e-8,
    weightDecay: 0.1, momentum: 0.95, nsSteps: 5, clip: 1, biasRate: 0.001, ...c,
  };
  const check = (ok: boolean, what: string) => { if (!ok) throw new Error(`optimizer: ${what}`); };
  check(r.lr > 0 && Number.isFinite(r.lr), `lr must be a positive number, got ${r.lr}`);
  check(Number.isInteger(r.totalSteps) && r.totalSteps >= 1, `totalSteps must be a whole number ≥ 1, got ${r.totalSteps}`);
  check(Number.isInteger(r.warmup) && r.warmup >= 0, `warmup must be a whole number ≥ 0, got ${r.warmup}`);
  check(['cosine', 'wsd', 'constant'].includes(r.schedule), `schedule must be 'cosine', 'wsd' or 'constant', got ${JSON.stringify(r.schedule)}`);
  check(r.minLrRatio >= 0 && r.minLrRatio <= 1, `minLrRatio must be in [0, 1], got ${r.minLrRatio}`);
  check(r.decayFraction >= 0 && r.decayFraction <= 1, `decayFraction must be in [0, 1], got ${r.decayFraction}`);
  check(r.beta1 >= 0 && r.beta1 < 1 && r.beta2 >= 0 && r.beta2 < 1, `beta1 and beta2 must be in [0, 1), got ${r.beta1}, ${r.beta2}`);
  check(r.eps > 0, `eps must be positive, got ${r.eps}`);
  check(r.weightDecay >= 0, `weightDecay must be ≥ 0, got ${r.weightDecay}`);
  check(r.momentum >= 0 && r.momentum < 1, `momentum must be in [0, 1), got ${r.momentum}`);
  check(Number.isInteger(r.nsSteps) && r.nsSteps >= 1, `nsSteps must be a whole number ≥ 1, got ${r.nsSteps}`);
  check(r.clip >= 0, `clip must be ≥ 0, got ${r.clip}`);
  check(r.biasRate >= 0, `biasRate must be ≥ 0, got ${r.biasRate}`);
  return r;
}

/** Learning rate of update number `step` (0-based). */
export function learningRate(config: OptimizerConfig, step: number): number {
  const c = resolveOptimizerConfig(config), peak = c.lr, low = c.minLrRatio * peak;
  if (step < c.warmup) return (peak * (step + 1)) / c.warmup;
  if (c.schedule === 'constant') return peak;
  if (c.schedule === 'wsd') {
    const decaySteps = Math.round(c.decayFraction * c.totalSteps), start = c.totalSteps - decaySteps;
    if (step < start || decaySteps === 0) return peak;
    return peak + (low - peak) * Math.min(1, (step - start + 1) / decaySteps);
  }
  const span = c.totalSteps - c.warmup;
  const progress = span > 0 ? Math.min(1, (step - c.warmup) / span) : 1;
  return low + (peak - low) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

// ---- Newton–Schulz ------------------------------------------------------------------------------

/** The quintic's coefficients (a, b, c): p(σ) = aσ + bσ³ + cσ⁵, tuned to push σ ∈ (0, 1] into ~[0.7, 1.2] fast. */
export const NS_COEFFS = [3.4445, -4.775, 2.0315] as const;

/**
 * Approximately orthogonalises a row-major [rows, cols] matrix G: X = G/‖G‖_F, then `steps` times
 * X ← aX + (bA + cA²)X with A = XXᵀ (on the wide orientation, so A is the small Gram matrix). Each
 * singular value σ of G/‖G‖_F becomes p(p(…p(σ))), the singular vectors are kept. Iterates in
 * `precision`: f64 by default; f32 (what Muon uses for f32 parameters) runs the products on the
 * WASM SIMD kernels and agrees with f64 to about 1e-5 relative.
 */
export function newtonSchulz(g: ArrayLike<number>, rows: number, cols: number, steps = 5, precision: Precision = 'f64'): FloatArray {
  if (g.length !== rows * cols) throw new Error(`newtonSchulz: ${g.length} values are not a [${rows}, ${cols}] matrix`);
  const [a, b, c] = NS_COEFFS;
  const tall = rows > cols, m = tall ? cols : rows, n = tall ? rows : cols;
  let norm = 0;
  for (let i = 0; i < g.length; i++) norm += g[i] * g[i];
  norm = Math.sqrt(norm) + 1e-7;
  let X = allocFloats(precision, m * n), Y = allocFloats(precision, m * n); // [m, n], m ≤ n
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) X[i * n + j] = (tall ? g[j * cols + i] : g[i * cols + j]) / norm;
  const A = allocFloats(precision, m * m), A2 = allocFloats(precision, m * m), acc = new Float64Array(n);
  for (let s = 0; s < steps; s++) {
    matmulXWt(X, X, A, m, n, m); // A = X·Xᵀ [m, m], symmetric
    matmulXWt(A, A, A2, m, m, m); // A² = A·Aᵀ
    for (let i = 0; i < A.length; i++) A2[i] = b * A[i] + c * A2[i]; // B = b·A + c·A²
    for (let i = 0; i < X.length; i++) Y[i] = a * X[i];
    accumulateRows(A2, 1, m, X, Y, m, m, n, acc); // Y = a·X + B·X
    [X, Y] = [Y, X];
  }
  if (!tall) return X;
  const out = allocFloats(precision, rows * cols);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * cols + i] = X[i * n + j];
  return out;
}

// ---- groups, clipping ---------------------------------------------------------------------------

export type ParamGroup = 'muon' | 'adamw';

/** The optimiser of a trainable tensor (see the file comment). */
export function paramGroup(name: string, shape: readonly number[]): ParamGroup {
  if (shape.length !== 2 || name === 'embed.weight' || name === 'head.weight' || name.endsWith('.ape')) return 'adamw';
  return 'muon';
}

/** Whether weight decay applies: matrices (not the compressors' position biases), never vectors. */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && !name.endsWith('.ape');
}

/** √(Σ g²) over the gradients present. */
export function gradientNorm(tensors: Iterable<Tensor>): number {
  let s = 0;
  for (const t of tensors) {
    const g = t.grad;
    if (g) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  }
  return Math.sqrt(s);
}

/**
 * Scales every gradient by min(1, maxNorm/‖g‖) (global norm); returns the norm before clipping.
 * maxNorm 0 leaves the gradients alone. A non-finite norm is an error: the loss diverged.
 */
export function clipGradients(tensors: Iterable<Tensor>, maxNorm: number): number {
  const list = [...tensors], norm = gradientNorm(list);
  if (!Number.isFinite(norm)) throw new Error(`optimizer: the gradient norm is ${norm} — the loss diverged (lower the learning rate)`);
  if (maxNorm > 0 && norm > maxNorm) {
    const k = maxNorm / norm;
    for (const t of list) {
      const g = t.grad;
      if (g) for (let i = 0; i < g.length; i++) g[i] *= k;
    }
  }
  return norm;
}

// ---- the optimiser ------------------------------------------------------------------------------

interface Slot {
  readonly name: string;
  readonly tensor: Tensor;
  readonly group: ParamGroup;
  readonly decay: boolean;
  /** AdamW first moment, or Muon's momentum buffer. */
  readonly m: FloatArray;
  /** AdamW second moment. */
  readonly v: FloatArray | null;
  /** Updates this tensor has had (AdamW bias correction). */
  t: number;
}

export interface StepStats {
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
}

/** The optimiser's state for a checkpoint: moment arrays by name ('<param>.m', '<param>.v') and per-tensor update counts. */
export interface OptimizerState {
  readonly step: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly moments: ReadonlyMap<string, FloatArray>;
}

export class Optimizer {
  readonly config: Resolved;
  /** Updates taken (the schedule's position). */
  step = 0;
  private readonly slots: Slot[] = [];

  /** `params`: checkpoint name → tensor; those without requiresGrad are left alone. */
  constructor(params: ReadonlyMap<string, Tensor>, config: OptimizerConfig) {
    this.config = resolveOptimizerConfig(config);
    for (const [name, tensor] of params) {
      if (!tensor.requiresGrad) continue;
      const group = paramGroup(name, tensor.shape), precision = tensor.data instanceof Float64Array ? 'f64' : 'f32';
      this.slots.push({
        name, tensor, group, decay: decays(name, tensor.shape), t: 0,
        m: allocFloats(precision, tensor.size), v: group === 'adamw' ? allocFloats(precision, tensor.size) : null,
      });
    }
  }

  /** Each trained tensor's group, for reports. */
  groups(): Map<string, ParamGroup> {
    return new Map(this.slots.map((s) => [s.name, s.group]));
  }

  /**
   * One update from the gradients accumulated since the last: clip (global norm), then Muon or
   * AdamW per tensor at this step's learning rate. A tensor without a gradient (an expert no token
   * chose) is skipped entirely, as PyTorch skips grad=None. Gradients are released afterwards.
   */
  update(): StepStats {
    const c = this.config, lr = learningRate(c, this.step);
    const gradNorm = clipGradients(this.slots.map((s) => s.tensor), c.clip);
    for (const s of this.slots) {
      const g = s.tensor.grad;
      if (!g) continue;
      s.t++;
      if (s.decay && c.weightDecay > 0) {
        const keep = 1 - lr * c.weightDecay, p = s.tensor.data;
        for (let i = 0; i < p.length; i++) p[i] *= keep;
      }
      if (s.group === 'muon') this.muon(s, g, lr);
      else this.adamw(s, g, lr);
      s.tensor.grad = null;
    }
    this.step++;
    return { lr, gradNorm };
  }

  private adamw(s: Slot, g: FloatArray, lr: number): void {
    const { beta1: b1, beta2: b2, eps } = this.config, p = s.tensor.data, m = s.m, v = s.v!;
    const c1 = 1 - b1 ** s.t, c2 = 1 - b2 ** s.t;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
    }
  }

  private muon(s: Slot, g: FloatArray, lr: number): void {
    const mu = this.config.momentum, [rows, cols] = s.tensor.shape, p = s.tensor.data, B = s.m;
    const u = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      B[i] = mu * B[i] + g[i];
      u[i] = g[i] + mu * B[i];
    }
    const o = newtonSchulz(u, rows, cols, this.config.nsSteps, p instanceof Float32Array ? 'f32' : 'f64'), k = lr * 0.2 * Math.sqrt(Math.max(rows, cols));
    for (let i = 0; i < p.length; i++) p[i] -= k * o[i];
  }

  state(): OptimizerState {
    const counts: Record<string, number> = {}, moments = new Map<string, FloatArray>();
    for (const s of this.slots) {
      counts[s.name] = s.t;
      moments.set(`${s.name}.m`, s.m);
      if (s.v) moments.set(`${s.name}.v`, s.v);
    }
    return { step: this.step, counts, moments };
  }

  /** Restores state() of an optimiser over the same tensors (checked name by name). */
  loadState(state: OptimizerState): void {
    for (const s of this.slots) {
      const t = state.counts[s.name];
      if (!(Number.isInteger(t) && t >= 0)) throw new Error(`optimizer state: no update count for '${s.name}'`);
      s.t = t;
      for (const [key, dst] of [[`${s.name}.m`, s.m], [`${s.name}.v`, s.v]] as const) {
        if (!dst) continue;
        const src = state.moments.get(key);
        if (!src || src.length !== dst.length) throw new Error(`optimizer state: '${key}' is ${src ? `${src.length} values, expected ${dst.length}` : 'missing'}`);
        dst.set(src);
      }
    }
    const extra = Object.keys(state.counts).filter((n) => !this.slots.some((s) => s.name === n));
    if (extra.length) throw new Error(`optimizer state: holds tensors this model does not train: ${extra.slice(0, 3).join(', ')}`);
    this.step = state.step;
  }
}

// ---- aux-loss-free load balancing ---------------------------------------------------------------

/**
 * DeepSeek-V3 §2.1.2: after each step, every score-routed block's routing bias moves by γ towards
 * balance — b_e ← b_e + γ·sign(mean load − load_e) — so overloaded experts become less likely to
 * be picked (top-k of score + bias) and idle ones more. `load`: block ('layers.3', 'mtp.0') →
 * tokens per expert over the step's batch (V4Forward.expertLoad summed).
 */
export function updateRoutingBias(params: ReadonlyMap<string, Tensor>, load: ReadonlyMap<string, ArrayLike<number>>, rate: number): void {
  for (const [block, counts] of load) {
    const bias = params.get(`${block}.ffn.gate.bias`);
    if (!bias) throw new Error(`updateRoutingBias: no parameter '${block}.ffn.gate.bias'`);
    if (bias.size !== counts.length) throw new Error(`updateRoutingBias: ${counts.length} expert loads for the ${bias.size} experts of '${block}'`);
    let total = 0;
    for (let e = 0; e < counts.length; e++) total += counts[e];
    const mean = total / counts.length;
    for (let e = 0; e < counts.length; e++) bias.data[e] += rate * Math.sign(mean - counts[e]);
  }
}
