/**
 * DeepSeek-V3 / R1 / V3.1: the forward pass of ../../../shared/spec/deepseek-v3.md.
 *
 *   h = E[token]
 *   per layer:  x = RMSNorm(h)
 *               q = W_qb · RMSNorm(W_qa · x)  → per head [q_nope | q_pe],  q_pe = RoPE(q_pe)     §2.2
 *               c = RMSNorm((W_kva · x)[:r]),  k_pe = RoPE((W_kva · x)[r:])   (the latent cache)
 *               absorbed:  q̃_h = B_kᵀ_h · q_nope_h,  s_t = σ·(q̃_h·c_t + q_pe_h·k_pe_t)
 *                          o_h = B_v_h · Σ_t softmax(s)_t c_t
 *               h = h + W_o · [o_h]
 *               x = RMSNorm(h)
 *               h = h + MLP(x)        (first_k_dense_replace layers)
 *                   or Σ_k w_k·Expert_k(x) + Shared(x)   sigmoid scores, bias for selection,     §2.4
 *                                                        group-limited top-k, renormalised, ×scale
 *   logits = W_head · RMSNorm(h)
 *
 * The KV cache holds only c_t and k_pe_t (kv_lora_rank + rope dims per token). Attention runs in
 * the absorbed form (as the reference does for prefill and decode); the naive form, which expands
 * every cached latent to per-head keys and values through B, is kept for checking that the two agree.
 * Products with stored weights run on the backend; the per-token attention runs on the host.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import { ropeTail } from '../kernels/deepseek-ops.js';
import { qatFp8, qatFp8AmaxScale } from '../tensor/dequantize.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { WeightFile } from '../formats/weight-file.js';
import type { V3Config } from './deepseek-v3-config.js';
import { forEachExpert, HostLinear, rmsnormRows, sigmoid, topIndices } from './host-linear.js';
import type { LanguageModel, ModelDescription, Sequence } from './model.js';

export interface V3Numerics {
  /** The reference's `gemm_impl = "fp8"`: FP8 activations (1×128 blocks) before FP8 products. */
  readonly fp8Gemm: boolean;
  /** 'absorb' (the reference) or 'naive' (latents expanded through kv_b; for checks). */
  readonly attention: 'absorb' | 'naive';
}

export interface MlpWeights {
  readonly w1: Tensor; // gate
  readonly w2: Tensor; // down
  readonly w3: Tensor; // up
}

export interface V3LayerWeights {
  readonly attnNorm: Float32Array;
  readonly ffnNorm: Float32Array;
  readonly wqA?: Tensor;
  readonly qNorm?: Float32Array;
  /** q_b (or the plain q projection when there is no q low rank). */
  readonly wqB: Tensor;
  readonly wkvA: Tensor;
  readonly kvNorm: Float32Array;
  /** kv_b as a matrix (naive form only) and split per head for the absorbed form. */
  readonly wkvB?: Tensor;
  /** [H·r, nope]: head h's rows are B_k(h)ᵀ. */
  readonly ukT: Tensor;
  /** [H·v, r]: head h's rows are B_v(h). */
  readonly uv: Tensor;
  readonly wo: Tensor;
  readonly mlp?: MlpWeights;
  readonly moe?: {
    readonly gate: Tensor;
    readonly bias?: Float32Array;
    readonly expert: (e: number) => Promise<MlpWeights>;
    readonly shared?: MlpWeights;
  };
}

export interface V3Weights {
  readonly embed: Tensor;
  readonly norm: Float32Array;
  readonly head: Tensor;
  readonly layers: readonly V3LayerWeights[];
  /** RoPE frequencies (YaRN-corrected) and the softmax scale with the YaRN mscale² factor. */
  readonly freqs: Float32Array;
  readonly softmaxScale: number;
}

/** Optional observer for fidelity checks: intermediate tensors by the fixtures' debug names. */
export interface V3Probe {
  tap?(name: string, data: Float32Array | Int32Array): void;
  blockInput?(name: string): Float32Array | undefined;
}

export class DeepseekV3Model implements LanguageModel {
  readonly defaultContext: number;
  private readonly sequences = new Set<DeepseekV3Sequence>();
  private closed = false;

  constructor(
    readonly config: V3Config,
    readonly weights: V3Weights,
    readonly tokenizer: Tokenizer,
    readonly backend: Backend,
    readonly numerics: V3Numerics,
    readonly description: ModelDescription,
    private readonly release: () => Promise<void>,
    private readonly file?: WeightFile,
  ) {
    this.defaultContext = description.details.defaultContext as number;
  }

  newSequence(opts: { contextLength?: number } = {}): DeepseekV3Sequence {
    if (this.closed) throw new Error('the model is closed');
    const n = opts.contextLength ?? this.defaultContext;
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`contextLength ${n} must be a positive integer`);
    if (n > this.config.contextLength) throw new Error(`context length ${n} is longer than the model's context of ${this.config.contextLength} tokens`);
    const s = new DeepseekV3Sequence(this, n, () => this.sequences.delete(s));
    this.sequences.add(s);
    return s;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sequences]) s.free();
    await this.release();
    this.file?.close();
  }
}

/** Bytes of latent cache per token: kv_lora_rank + rope dims per layer, f32. */
export function v3StateBytesPerToken(c: V3Config): number {
  return 4 * c.layers * (c.kvLoraRank + c.ropeDim);
}

const CHUNK = 256;

export class DeepseekV3Sequence implements Sequence {
  length = 0;
  readonly capacity: number;
  probe?: V3Probe;
  private readonly c: V3Config;
  private readonly w: V3Weights;
  private readonly lin: HostLinear;
  /** Per layer [capacity, r] latents c_t and [capacity, rope] keys k_pe_t. */
  private readonly latent: Float32Array[];
  private readonly kpe: Float32Array[];
  private freed = false;

  constructor(private readonly model: DeepseekV3Model, capacity: number, private readonly onFree: () => void) {
    this.capacity = capacity;
    this.c = model.config;
    this.w = model.weights;
    this.lin = new HostLinear(model.backend);
    this.latent = this.w.layers.map(() => new Float32Array(capacity * this.c.kvLoraRank));
    this.kpe = this.w.layers.map(() => new Float32Array(capacity * this.c.ropeDim));
  }

  get weightBytesRead(): number { return this.lin.weightBytes; }

  async forward(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    if (this.freed) throw new Error('forward: this sequence has been freed');
    if (tokens.length === 0) throw new Error('forward: no tokens');
    if (this.length + tokens.length > this.capacity) {
      throw new Error(`context full: ${this.length} tokens + ${tokens.length} new is more than this sequence's capacity of ${this.capacity}`);
    }
    for (const t of tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < this.c.vocab)) throw new Error(`forward: token id ${t} is outside the vocabulary (0 … ${this.c.vocab - 1})`);
    }
    const vocab = this.c.vocab, D = this.c.dim;
    const all = opts.allLogits ? new Float32Array(tokens.length * vocab) : undefined;
    let last!: Float32Array;
    for (let i = 0; i < tokens.length; i += CHUNK) {
      const ids = tokens.slice(i, i + CHUNK), n = ids.length;
      const h = await this.layers(ids);
      if (all) all.set(await this.head(h, n), i * vocab);
      else if (i + n === tokens.length) last = await this.head(h.subarray((n - 1) * D), 1);
    }
    return all ?? last;
  }

  /** Latent caches cannot be rewound cheaply past what they hold, but truncation just forgets rows. */
  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`truncate: ${n} is not from 0 to the sequence's length ${this.length}`);
    this.length = n;
  }

  /** The latent cache rows [0, length) of every layer: c_t then k_pe_t, f32. */
  async saveState(): Promise<Uint8Array> {
    const r = this.c.kvLoraRank, R = this.c.ropeDim, n = this.length;
    const out = new Float32Array(this.w.layers.length * n * (r + R));
    let o = 0;
    for (let l = 0; l < this.w.layers.length; l++) {
      out.set(this.latent[l].subarray(0, n * r), o);
      out.set(this.kpe[l].subarray(0, n * R), o + n * r);
      o += n * (r + R);
    }
    return new Uint8Array(out.buffer);
  }

  loadState(state: Uint8Array, length: number): void {
    const r = this.c.kvLoraRank, R = this.c.ropeDim, L = this.w.layers.length;
    if (this.length !== 0) throw new Error('loadState: the sequence is not empty');
    if (length > this.capacity) throw new Error(`loadState: ${length} tokens do not fit this sequence's capacity of ${this.capacity}`);
    if (state.length !== 4 * L * length * (r + R)) throw new Error(`loadState: ${state.length} bytes are not the state of ${length} tokens of this model`);
    const f = new Float32Array(state.slice().buffer);
    let o = 0;
    for (let l = 0; l < L; l++) {
      this.latent[l].set(f.subarray(o, o + length * r));
      this.kpe[l].set(f.subarray(o + length * r, o + length * (r + R)));
      o += length * (r + R);
    }
    this.length = length;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lin.free();
    this.onFree();
  }

  private quant(role: 'linear' | 'parallel'): ((x: Float32Array) => void) | undefined {
    if (!this.model.numerics.fp8Gemm) return undefined;
    // The reference passes the config's scale_fmt from plain Linear layers only (its
    // Column/RowParallelLinear call act_quant without it).
    return role === 'linear' && this.c.ue8m0 ? (x) => qatFp8(x, 128) : (x) => qatFp8AmaxScale(x, 128);
  }

  private async layers(ids: readonly number[]): Promise<Float32Array> {
    const be = this.model.backend, c = this.c, D = c.dim, n = ids.length;
    const e = be.alloc('f32', [n, D], 'embedding rows');
    let h: Float32Array;
    try {
      be.embedding(this.w.embed, ids, e);
      h = await be.download(e);
    } finally {
      be.free(e);
    }
    this.probe?.tap?.('embed', h);
    for (let l = 0; l < c.layers; l++) {
      const L = this.w.layers[l], tap = (what: string, d: Float32Array | Int32Array) => this.probe?.tap?.(`layer${l}.${what}`, d);
      h = this.probe?.blockInput?.(`layer${l}`)?.slice() ?? h;
      const a = await this.attention(l, L, rmsnormRows(h, D, L.attnNorm, c.eps, new Float32Array(h.length)), n);
      tap('attn_out', a);
      for (let i = 0; i < h.length; i++) h[i] += a[i];
      const x = rmsnormRows(h, D, L.ffnNorm, c.eps, new Float32Array(h.length));
      const f = L.mlp ? await this.mlp(L.mlp, x, n, 'parallel') : await this.moe(L, x, n, tap);
      tap('ffn_out', f);
      for (let i = 0; i < h.length; i++) h[i] += f[i];
      tap('out', h);
    }
    this.length += n;
    return h;
  }

  private async head(h: Float32Array, n: number): Promise<Float32Array> {
    const x = rmsnormRows(h, this.c.dim, this.w.norm, this.c.eps, new Float32Array(h.length));
    this.probe?.tap?.('head.norm_out', x);
    return this.lin.run(this.w.head, x, n);
  }

  // ---- MLA (§2.2) ------------------------------------------------------------------------------

  private async attention(l: number, L: V3LayerWeights, x: Float32Array, n: number): Promise<Float32Array> {
    const c = this.c, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim;
    const start = this.length;
    const q = L.wqA
      ? await this.lin.run(L.wqB, rmsnormRows(await this.lin.run(L.wqA, x, n, this.quant('linear')), c.qLoraRank, L.qNorm!, c.eps), n, this.quant('parallel'))
      : await this.lin.run(L.wqB, x, n, this.quant('parallel'));
    const kva = await this.lin.run(L.wkvA, x, n, this.quant('linear'));
    const latent = this.latent[l], kpe = this.kpe[l];
    for (let t = 0; t < n; t++) {
      const p = start + t;
      ropeTail(q, t * H * qk, H, qk, R, this.w.freqs, p, false);
      const row = kva.subarray(t * (r + R), (t + 1) * (r + R));
      latent.set(rmsnormRows(row.slice(0, r), r, L.kvNorm, c.eps), p * r);
      const k = row.slice(r);
      ropeTail(k, 0, 1, R, R, this.w.freqs, p, false);
      kpe.set(k, p * R);
    }
    const o = this.model.numerics.attention === 'naive'
      ? await this.naive(L, q, latent, kpe, start, n)
      : await this.absorbed(L, q, latent, kpe, start, n);
    return this.lin.run(L.wo, o, n, this.quant('parallel'));
  }

  /** Scores against the latents directly: q̃_h = B_kᵀ q_nope_h, output B_v (Σ p_t c_t). */
  private async absorbed(L: V3LayerWeights, q: Float32Array, latent: Float32Array, kpe: Float32Array, start: number, n: number): Promise<Float32Array> {
    const c = this.c, be = this.model.backend, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim, nope = c.nopeDim, V = c.vDim;
    const o = new Float32Array(n * H * V);
    const qn = new Float32Array(n * nope), ol = new Float32Array(n * r);
    const scores = new Float64Array(start + n);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < n; t++) qn.set(q.subarray(t * H * qk + h * qk, t * H * qk + h * qk + nope), t * nope);
      const qc = await this.lin.run(be.rows(L.ukT, h * r, (h + 1) * r), qn, n); // [n, r]
      ol.fill(0);
      for (let t = 0; t < n; t++) {
        const p = start + t, qpe = t * H * qk + h * qk + nope;
        let max = -Infinity;
        for (let j = 0; j <= p; j++) {
          let s = 0;
          for (let i = 0; i < r; i++) s += qc[t * r + i] * latent[j * r + i];
          for (let i = 0; i < R; i++) s += q[qpe + i] * kpe[j * R + i];
          scores[j] = s * this.w.softmaxScale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j <= p; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        for (let j = 0; j <= p; j++) {
          const pj = scores[j] / sum;
          for (let i = 0; i < r; i++) ol[t * r + i] += pj * latent[j * r + i];
        }
      }
      const oh = await this.lin.run(be.rows(L.uv, h * V, (h + 1) * V), ol, n); // [n, V]
      for (let t = 0; t < n; t++) o.set(oh.subarray(t * V, (t + 1) * V), t * H * V + h * V);
    }
    return o;
  }

  /** Every cached latent expanded to per-head keys and values through kv_b, then plain attention. */
  private async naive(L: V3LayerWeights, q: Float32Array, latent: Float32Array, kpe: Float32Array, start: number, n: number): Promise<Float32Array> {
    const c = this.c, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim, nope = c.nopeDim, V = c.vDim;
    const T = start + n, kvw = nope + V;
    if (!L.wkvB) throw new Error('the naive attention form needs kv_b (load with mlaForm: naive)');
    const kv = await this.lin.run(L.wkvB, latent.subarray(0, T * r), T, this.quant('parallel')); // [T, H·(nope+V)]
    const o = new Float32Array(n * H * V);
    const scores = new Float64Array(T);
    for (let t = 0; t < n; t++) {
      const p = start + t;
      for (let h = 0; h < H; h++) {
        const qo = t * H * qk + h * qk;
        let max = -Infinity;
        for (let j = 0; j <= p; j++) {
          let s = 0;
          const ko = j * H * kvw + h * kvw;
          for (let i = 0; i < nope; i++) s += q[qo + i] * kv[ko + i];
          for (let i = 0; i < R; i++) s += q[qo + nope + i] * kpe[j * R + i];
          scores[j] = s * this.w.softmaxScale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j <= p; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        const oo = t * H * V + h * V;
        for (let j = 0; j <= p; j++) {
          const pj = scores[j] / sum, vo = j * H * kvw + h * kvw + nope;
          for (let i = 0; i < V; i++) o[oo + i] += pj * kv[vo + i];
        }
      }
    }
    return o;
  }

  // ---- feed-forward (§2.3, §2.4) ---------------------------------------------------------------

  private async mlp(W: MlpWeights, x: Float32Array, n: number, role: 'linear' | 'parallel', weight?: Float32Array): Promise<Float32Array> {
    const g = await this.lin.run(W.w1, x, n, this.quant(role));
    const u = await this.lin.run(W.w3, x, n, this.quant(role));
    for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const y = await this.lin.run(W.w2, g, n, this.quant(role));
    if (weight) {
      const D = this.c.dim;
      for (let t = 0; t < n; t++) for (let i = 0; i < D; i++) y[t * D + i] *= weight[t];
    }
    return y;
  }

  private async moe(L: V3LayerWeights, x: Float32Array, n: number, tap: (w: string, d: Float32Array | Int32Array) => void): Promise<Float32Array> {
    const c = this.c, M = L.moe!, E = c.experts, K = c.topK, D = c.dim;
    const logits = await this.lin.run(M.gate, x, n);
    const chosen = new Int32Array(n * K), weight = new Float32Array(n * K);
    const s = new Float32Array(E), sel = new Float32Array(E);
    const perGroup = E / c.groups;
    for (let t = 0; t < n; t++) {
      const z = logits.subarray(t * E, (t + 1) * E);
      if (c.scoring === 'sigmoid') {
        for (let e = 0; e < E; e++) s[e] = sigmoid(z[e]);
      } else {
        let max = -Infinity, sum = 0;
        for (let e = 0; e < E; e++) max = Math.max(max, z[e]);
        for (let e = 0; e < E; e++) sum += (s[e] = Math.exp(z[e] - max));
        for (let e = 0; e < E; e++) s[e] /= sum;
      }
      for (let e = 0; e < E; e++) sel[e] = s[e] + (M.bias ? M.bias[e] : 0);
      if (c.groups > 1) {
        // Group score: the sum of its two best (biased) scores with a bias, its best without.
        const groupScore = new Float32Array(c.groups);
        for (let g = 0; g < c.groups; g++) {
          const best = topIndices(sel.subarray(g * perGroup, (g + 1) * perGroup), perGroup, M.bias ? 2 : 1);
          groupScore[g] = best.reduce((a, i) => a + sel[g * perGroup + i], 0);
        }
        const keep = new Set(topIndices(groupScore, c.groups, c.topkGroups));
        for (let e = 0; e < E; e++) if (!keep.has(Math.floor(e / perGroup))) sel[e] = -Infinity;
      }
      const idx = topIndices(sel, E, K);
      let sum = 0;
      for (const e of idx) sum += s[e];
      idx.forEach((e, k) => {
        chosen[t * K + k] = e;
        weight[t * K + k] = (c.normTopk && c.scoring === 'sigmoid' ? s[e] / sum : s[e]) * c.routeScale;
      });
    }
    tap('gate.indices', chosen);
    tap('gate.weights', weight);
    const out = M.shared ? await this.mlp(M.shared, x, n, 'parallel') : new Float32Array(n * D);
    await forEachExpert(chosen, async (e, slots) => {
      const m = slots.length, xe = new Float32Array(m * D), we = new Float32Array(m);
      slots.forEach((slot, i) => {
        xe.set(x.subarray(Math.floor(slot / K) * D, (Math.floor(slot / K) + 1) * D), i * D);
        we[i] = weight[slot];
      });
      const y = await this.mlp(await M.expert(e), xe, m, 'linear', we);
      slots.forEach((slot, i) => {
        const t = Math.floor(slot / K);
        for (let j = 0; j < D; j++) out[t * D + j] += y[i * D + j];
      });
    });
    return out;
  }
}
