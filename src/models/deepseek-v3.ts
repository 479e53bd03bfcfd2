/**
 * DeepSeek-V3 / R1 / V3.1 / V3.2: the forward pass of ../../../shared/spec/deepseek-v3.md.
 *
 *   h = E[token]
 *   per layer:  x = RMSNorm(h)
 *               q = W_qb · RMSNorm(W_qa · x)  → per head [q_nope | q_pe],  q_pe = RoPE(q_pe)     §2.2
 *               c = RMSNorm((W_kva · x)[:r]),  k_pe = RoPE((W_kva · x)[r:])   (the latent cache)
 *               absorbed:  q̃_h = B_kᵀ_h · q_nope_h,  s_t = σ·(q̃_h·c_t + q_pe_h·k_pe_t)
 *                          o_h = B_v_h · Σ_t softmax(s)_t c_t
 *               V3.2: each query attends only to the positions its lightning indexer selects  §4
 *               h = h + W_o · [o_h]
 *               x = RMSNorm(h)
 *               h = h + MLP(x)        (first_k_dense_replace layers)
 *                   or Σ_k w_k·Expert_k(x) + Shared(x)   sigmoid scores, bias for selection,     §2.4
 *                                                        group-limited top-k, renormalised, ×scale
 *   logits = W_head · RMSNorm(h)
 *
 *   MTP (§2.5), row t: u = W_eh · [RMSNorm(E'[token t+1]; enorm) ; RMSNorm(h_t; hnorm)] with h_t the
 *   trunk's final hidden state at position t (before the final norm); u goes through the MTP decoder
 *   layer at position t (its own latent cache), then logits = W'_head · RMSNorm(·; shared_head.norm)
 *   draft token t+2.
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
import { IndexerCache, indexerSelect, type V32IndexerWeights } from './deepseek-v32-indexer.js';
import { DeviceBuffer, forEachExpert, HostLinear, rmsnormRows, SequenceOwner, sigmoid, topIndices } from './host-linear.js';
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
  /** V3.2's lightning indexer (§4). */
  readonly indexer?: V32IndexerWeights;
  readonly mlp?: MlpWeights;
  readonly moe?: {
    readonly gate: Tensor;
    readonly bias?: Float32Array;
    readonly expert: (e: number) => Promise<MlpWeights>;
    readonly shared?: MlpWeights;
  };
}

/** The MTP layer; embed / norm / head are the main ones where the checkpoint has no copies. */
export interface V3MtpWeights {
  readonly embed: Tensor;
  readonly enorm: Float32Array;
  readonly hnorm: Float32Array;
  /** [D, 2D]: the normalised embedding enters columns 0 … D−1, the normalised hidden state D … 2D−1. */
  readonly ehProj: Tensor;
  readonly layer: V3LayerWeights;
  readonly norm: Float32Array;
  readonly head: Tensor;
}

export interface V3Weights {
  readonly embed: Tensor;
  readonly norm: Float32Array;
  readonly head: Tensor;
  readonly layers: readonly V3LayerWeights[];
  readonly mtp?: V3MtpWeights;
  /** RoPE frequencies (YaRN-corrected) and the softmax scale with the YaRN mscale² factor. */
  readonly freqs: Float32Array;
  readonly softmaxScale: number;
}

/** Optional observer for fidelity checks: intermediate tensors by the fixtures' debug names. */
export interface V3Probe {
  tap?(name: string, data: Float32Array | Int32Array): void;
  blockInput?(name: string): Float32Array | undefined;
}

export class DeepseekV3Model extends SequenceOwner<DeepseekV3Sequence> implements LanguageModel {
  constructor(
    readonly config: V3Config,
    readonly weights: V3Weights,
    readonly tokenizer: Tokenizer,
    readonly backend: Backend,
    readonly numerics: V3Numerics,
    readonly description: ModelDescription,
    release: () => Promise<void>,
    file?: WeightFile,
  ) {
    super(description, config.contextLength, release, file);
  }

  protected makeSequence(capacity: number, onFree: () => void): DeepseekV3Sequence {
    return new DeepseekV3Sequence(this, capacity, onFree);
  }
}

/**
 * Bytes of state per token: kv_lora_rank + rope dims per main layer, f32, and on V3.2 the indexer's
 * FP8 key and its f32 scale (an MTP layer adds one more layer's worth).
 */
export function v3StateBytesPerToken(c: V3Config): number {
  return c.layers * (4 * (c.kvLoraRank + c.ropeDim) + (c.index ? c.index.headDim + 4 : 0));
}

const CHUNK = 256;

/**
 * One sequence: the trunk's latent caches and, for checkpoints with an MTP layer, the MTP state.
 *
 * MTP (same conventions as DeepseekV4Sequence.mtp): MTP row t pairs the trunk's hidden state h_t with
 * the token at t+1, sits at position t and drafts token t+2. The MTP layer's latent cache holds rows
 * 0 … mtpLength−1; the hidden states of positions mtpLength … length−1 wait for mtp(), which takes
 * them in order, each once. (vLLM zeroes the embedding part of the row at position 0; here every
 * row, row 0 included, takes its next token's embedding.)
 *
 * truncate(n) forgets the MTP rows that saw a forgotten token: row t used token t+1, so rows from
 * n−1 on go. Where that reaches rows mtp() already took (n ≤ mtpLength), h_{n−1} is no longer held:
 * the next mtp() recomputes it with one trunk step at position n−1 (leaving the trunk's cache as it
 * was), so the MTP state after truncate(n) is that of a sequence that never went past n.
 * saveState / loadState carry the MTP state too (its cache, the waiting hidden states, the token
 * ids): a restored sequence continues exactly as the saved one, mtpLength included.
 */
export class DeepseekV3Sequence implements Sequence {
  length = 0;
  readonly capacity: number;
  probe?: V3Probe;
  private readonly c: V3Config;
  private readonly w: V3Weights;
  private readonly lin: HostLinear;
  /** Per layer [capacity, r] latents c_t and [capacity, rope] keys k_pe_t; the MTP layer's last. */
  private readonly latent: Float32Array[];
  private readonly kpe: Float32Array[];
  /** V3.2: per layer the indexer's FP8 keys and scales (§4); the MTP layer's last. */
  private readonly index?: IndexerCache[];
  /** Token ids of positions 0 … length−1 (MTP checkpoints only: recomputing a hidden state needs them). */
  private readonly tokens: number[] = [];
  /** Trunk hidden states [D] of positions mtpLength … length−1, the first one missing while `rehide`. */
  private pendingHidden: Float32Array[] = [];
  private mtpRows = 0;
  /** h_mtpLength is to be recomputed before mtp() takes it (truncate went below mtpLength). */
  private rehide = false;
  /**
   * Backend copies of each cache as rows [c_t | k_pe_t] for the attention kernel, up to date for
   * rows below `mirrored[l]` (host writes below that lower it).
   */
  private readonly device: (Tensor | undefined)[];
  private readonly mirrored: number[];
  private readonly qBuf: DeviceBuffer;
  private readonly oBuf: DeviceBuffer;
  private sinks?: Tensor;
  private freed = false;

  constructor(private readonly model: DeepseekV3Model, capacity: number, private readonly onFree: () => void) {
    this.capacity = capacity;
    this.c = model.config;
    this.w = model.weights;
    this.lin = new HostLinear(model.backend);
    const caches = this.w.layers.length + (this.w.mtp ? 1 : 0);
    this.latent = Array.from({ length: caches }, () => new Float32Array(capacity * this.c.kvLoraRank));
    this.kpe = Array.from({ length: caches }, () => new Float32Array(capacity * this.c.ropeDim));
    const ix = this.c.index;
    if (ix) this.index = Array.from({ length: caches }, () => new IndexerCache(capacity, ix.headDim));
    this.device = new Array(caches).fill(undefined);
    this.mirrored = new Array(caches).fill(0);
    this.qBuf = new DeviceBuffer(model.backend, 'MLA queries');
    this.oBuf = new DeviceBuffer(model.backend, 'MLA outputs');
  }

  /** Host cache rows from `row` on changed: their backend copies must be uploaded again. */
  private invalidate(row: number): void {
    for (let l = 0; l < this.mirrored.length; l++) this.mirrored[l] = Math.min(this.mirrored[l], row);
  }

  /** Cache l's backend copy, rows [0, T) up to date. */
  private mirror(l: number, T: number): Tensor {
    const be = this.model.backend, r = this.c.kvLoraRank, R = this.c.ropeDim, W = r + R;
    const t = this.device[l] ??= be.alloc('f32', [this.capacity, W], `MLA latent cache (layer ${l})`);
    const from = this.mirrored[l];
    if (from < T) {
      const rows = new Float32Array((T - from) * W);
      for (let j = from; j < T; j++) {
        rows.set(this.latent[l].subarray(j * r, (j + 1) * r), (j - from) * W);
        rows.set(this.kpe[l].subarray(j * R, (j + 1) * R), (j - from) * W + r);
      }
      be.upload(be.view(t, from * W, [T - from, W]), rows);
      this.mirrored[l] = T;
    }
    return t;
  }

  get weightBytesRead(): number { return this.lin.weightBytes; }

  /** Rows the MTP layer has taken: the next mtp() row pairs h_mtpLength with the token at mtpLength+1. */
  get mtpLength(): number { return this.mtpRows; }

  async forward(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    if (this.freed) throw new Error('forward: this sequence has been freed');
    if (tokens.length === 0) throw new Error('forward: no tokens');
    if (this.length + tokens.length > this.capacity) {
      throw new Error(`context full: ${this.length} tokens + ${tokens.length} new is more than this sequence's capacity of ${this.capacity}`);
    }
    this.checkIds('forward', tokens);
    const vocab = this.c.vocab, D = this.c.dim;
    const all = opts.allLogits ? new Float32Array(tokens.length * vocab) : undefined;
    let last!: Float32Array;
    for (let i = 0; i < tokens.length; i += CHUNK) {
      const ids = tokens.slice(i, i + CHUNK), n = ids.length;
      const h = await this.trunk(ids, this.length);
      this.length += n;
      if (this.w.mtp) {
        this.tokens.push(...ids);
        for (let t = 0; t < n; t++) this.pendingHidden.push(h.slice(t * D, (t + 1) * D));
      }
      if (all) all.set(await this.head(h, n, this.w.norm, this.w.head, 'head'), i * vocab);
      else if (i + n === tokens.length) last = await this.head(h.subarray((n - 1) * D), 1, this.w.norm, this.w.head, 'head');
    }
    return all ?? last;
  }

  /**
   * The MTP layer's draft logits [n, vocab] (§2.5): row t pairs the trunk's hidden state at position
   * mtpLength + t with `next[t]`, the token at the following position, and drafts the one after.
   * `hidden` [n, D] replaces the stored hidden states (fidelity checks); the rows are taken either way.
   */
  async mtp(next: readonly number[], hidden?: Float32Array): Promise<Float32Array> {
    if (this.freed) throw new Error('mtp: this sequence has been freed');
    const m = this.w.mtp;
    if (!m) throw new Error('mtp: this checkpoint has no MTP layer');
    const n = next.length, D = this.c.dim, vocab = this.c.vocab;
    if (n === 0) throw new Error('mtp: no tokens');
    this.checkIds('mtp', next);
    const waiting = this.length - this.mtpRows;
    if (n > waiting) throw new Error(`mtp: ${n} rows asked, but only ${waiting} trunk outputs are waiting`);
    if (hidden && hidden.length !== n * D) throw new Error(`mtp: hidden has ${hidden.length} values, expected ${n} rows of ${D}`);
    if (this.rehide) await this.recomputeHidden();
    const out = new Float32Array(n * vocab);
    for (let i = 0; i < n; i += CHUNK) {
      const k = Math.min(CHUNK, n - i);
      const h = hidden ? hidden.slice(i * D, (i + k) * D) : new Float32Array(k * D);
      if (!hidden) for (let t = 0; t < k; t++) h.set(this.pendingHidden[t], t * D);
      this.pendingHidden = this.pendingHidden.slice(k);
      const u = await this.mtpInput(m, next.slice(i, i + k), h);
      this.probe?.tap?.('mtp0.input', u);
      const y = await this.block(this.w.layers.length, m.layer, u, k, this.mtpRows, 'mtp0');
      this.mtpRows += k;
      out.set(await this.head(y, k, m.norm, m.head, 'mtp0.head'), i * vocab);
    }
    return out;
  }

  /** Forgets positions n … length−1, and the MTP rows that saw them (class comment). */
  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`truncate: ${n} is not from 0 to the sequence's length ${this.length}`);
    if (n === this.length) return;
    this.length = n;
    this.invalidate(Math.max(0, n - 1));
    if (!this.w.mtp) return;
    this.tokens.length = n;
    if (n > this.mtpRows) {
      this.pendingHidden.length = n - this.mtpRows - (this.rehide ? 1 : 0);
      return;
    }
    this.mtpRows = Math.max(0, n - 1);
    this.pendingHidden = [];
    this.rehide = n > 0;
  }

  /** f32 values per token of one cache in the state: c_t, k_pe_t and (V3.2) the indexer's FP8 key and scale. */
  private get stateRow(): number {
    return this.c.kvLoraRank + this.c.ropeDim + (this.c.index ? this.c.index.headDim / 4 + 1 : 0);
  }

  /** Rows [0, k) of cache l into f at o: c_t, then k_pe_t, then (V3.2) the indexer's codes and scales. */
  private putRows(f: Float32Array, o: number, l: number, k: number): void {
    const r = this.c.kvLoraRank, R = this.c.ropeDim;
    f.set(this.latent[l].subarray(0, k * r), o);
    f.set(this.kpe[l].subarray(0, k * R), o + k * r);
    const ix = this.index?.[l];
    if (!ix) return;
    o += k * (r + R);
    new Uint8Array(f.buffer, 4 * o, k * ix.d).set(ix.codes.subarray(0, k * ix.d));
    f.set(ix.scales.subarray(0, k), o + (k * ix.d) / 4);
  }

  /** The inverse of putRows. */
  private getRows(f: Float32Array, o: number, l: number, k: number): void {
    const r = this.c.kvLoraRank, R = this.c.ropeDim;
    this.latent[l].set(f.subarray(o, o + k * r));
    this.kpe[l].set(f.subarray(o + k * r, o + k * (r + R)));
    const ix = this.index?.[l];
    if (!ix) return;
    o += k * (r + R);
    ix.codes.set(new Uint8Array(f.buffer, 4 * o, k * ix.d));
    ix.scales.set(f.subarray(o + (k * ix.d) / 4, o + (k * ix.d) / 4 + k));
  }

  /**
   * The cache rows [0, length) of every layer: c_t then k_pe_t, f32, then on V3.2 the indexer's E4M3
   * keys [length, index_head_dim] (bytes) and their f32 scales [length]. With an MTP layer, then:
   * i32 mtpLength and the token ids [length], the MTP layer's rows [0, mtpLength) laid out the same,
   * and the waiting hidden states [length − mtpLength, D].
   */
  async saveState(): Promise<Uint8Array> {
    if (this.rehide) await this.recomputeHidden();
    const D = this.c.dim, n = this.length, L = this.w.layers.length, W = this.stateRow;
    const m = this.mtpRows, mtp = this.w.mtp ? 1 + n + m * W + (n - m) * D : 0;
    const out = new Float32Array(L * n * W + mtp);
    let o = 0;
    for (let l = 0; l < L; l++, o += n * W) this.putRows(out, o, l, n);
    if (this.w.mtp) {
      const ids = new Int32Array(out.buffer, 4 * o, 1 + n);
      ids[0] = m;
      ids.set(this.tokens, 1);
      o += 1 + n;
      this.putRows(out, o, L, m);
      o += m * W;
      this.pendingHidden.forEach((h, t) => out.set(h, o + t * D));
    }
    return new Uint8Array(out.buffer);
  }

  loadState(state: Uint8Array, length: number): void {
    const D = this.c.dim, L = this.w.layers.length, W = this.stateRow;
    if (this.length !== 0) throw new Error('loadState: the sequence is not empty');
    if (length > this.capacity) throw new Error(`loadState: ${length} tokens do not fit this sequence's capacity of ${this.capacity}`);
    const trunk = L * length * W;
    this.invalidate(0);
    const f = new Float32Array(state.slice().buffer);
    const m = this.w.mtp && f.length > trunk ? new Int32Array(f.buffer, 4 * trunk, 1)[0] : 0;
    const size = trunk + (this.w.mtp ? 1 + length + m * W + (length - m) * D : 0);
    if (state.length !== 4 * size || !(m >= 0 && m <= length)) throw new Error(`loadState: ${state.length} bytes are not the state of ${length} tokens of this model`);
    let o = 0;
    for (let l = 0; l < L; l++, o += length * W) this.getRows(f, o, l, length);
    if (this.w.mtp) {
      const ids = new Int32Array(f.buffer, 4 * (o + 1), length);
      this.checkIds('loadState', ids);
      o += 1 + length;
      this.getRows(f, o, L, m);
      o += m * W;
      this.tokens.push(...ids);
      for (let t = 0; t < length - m; t++) this.pendingHidden.push(f.slice(o + t * D, o + (t + 1) * D));
      this.mtpRows = m;
    }
    this.length = length;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lin.free();
    this.qBuf.free();
    this.oBuf.free();
    for (const t of this.device) if (t) this.model.backend.free(t);
    if (this.sinks) this.model.backend.free(this.sinks);
    this.onFree();
  }

  private checkIds(what: string, ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i];
      if (!(Number.isInteger(t) && t >= 0 && t < this.c.vocab)) throw new Error(`${what}: token id ${t} is outside the vocabulary (0 … ${this.c.vocab - 1})`);
    }
  }

  private quant(role: 'linear' | 'parallel'): ((x: Float32Array) => void) | undefined {
    if (!this.model.numerics.fp8Gemm) return undefined;
    // The reference passes the config's scale_fmt from plain Linear layers only (its
    // Column/RowParallelLinear call act_quant without it).
    return role === 'linear' && this.c.ue8m0 ? (x) => qatFp8(x, 128) : (x) => qatFp8AmaxScale(x, 128);
  }

  private async embed(table: Tensor, ids: readonly number[]): Promise<Float32Array> {
    const be = this.model.backend;
    const e = be.alloc('f32', [ids.length, this.c.dim], 'embedding rows');
    try {
      be.embedding(table, ids, e);
      return await be.download(e);
    } finally {
      be.free(e);
    }
  }

  /** `ids` at positions start … start+n−1 through every main layer: the final hidden states [n, D]. */
  private async trunk(ids: readonly number[], start: number): Promise<Float32Array> {
    let h = await this.embed(this.w.embed, ids);
    this.probe?.tap?.('embed', h);
    for (let l = 0; l < this.c.layers; l++) h = await this.block(l, this.w.layers[l], h, ids.length, start, `layer${l}`);
    return h;
  }

  /** Decoder layer `l` (its latent cache l) over rows h [n, D] at positions start …; updates h. */
  private async block(l: number, L: V3LayerWeights, h: Float32Array, n: number, start: number, name: string): Promise<Float32Array> {
    const c = this.c, D = c.dim, tap = (what: string, d: Float32Array | Int32Array) => this.probe?.tap?.(`${name}.${what}`, d);
    h = this.probe?.blockInput?.(name)?.slice() ?? h;
    const a = await this.attention(l, L, rmsnormRows(h, D, L.attnNorm, c.eps, new Float32Array(h.length)), n, start, tap);
    tap('attn_out', a);
    for (let i = 0; i < h.length; i++) h[i] += a[i];
    const x = rmsnormRows(h, D, L.ffnNorm, c.eps, new Float32Array(h.length));
    const f = L.mlp ? await this.mlp(L.mlp, x, n, 'parallel') : await this.moe(L, x, n, tap);
    tap('ffn_out', f);
    for (let i = 0; i < h.length; i++) h[i] += f[i];
    tap('out', h);
    return h;
  }

  private async head(h: Float32Array, n: number, norm: Float32Array, W: Tensor, name: string): Promise<Float32Array> {
    const x = rmsnormRows(h, this.c.dim, norm, this.c.eps, new Float32Array(h.length));
    this.probe?.tap?.(`${name}.norm_out`, x);
    return this.lin.run(W, x, n);
  }

  /** u = W_eh · [RMSNorm(E'[next]; enorm) ; RMSNorm(h; hnorm)] for rows h [n, D]. */
  private async mtpInput(m: V3MtpWeights, next: readonly number[], h: Float32Array): Promise<Float32Array> {
    const D = this.c.dim, n = next.length, eps = this.c.eps;
    const e = rmsnormRows(await this.embed(m.embed, next), D, m.enorm, eps);
    const hn = rmsnormRows(h, D, m.hnorm, eps, new Float32Array(h.length));
    const x = new Float32Array(n * 2 * D); // [n, 2D]: the embedding part first
    for (let t = 0; t < n; t++) {
      x.set(e.subarray(t * D, (t + 1) * D), 2 * t * D);
      x.set(hn.subarray(t * D, (t + 1) * D), (2 * t + 1) * D);
    }
    // eh_proj is FP8 in the released checkpoints: a plain Linear there, so activations as for one.
    return this.lin.run(m.ehProj, x, n, m.ehProj.dtype === 'f8_e4m3' ? this.quant('linear') : undefined);
  }

  /** h at position mtpLength again, from its token, with the trunk's cache rows there left as they were. */
  private async recomputeHidden(): Promise<void> {
    const p = this.mtpRows, r = this.c.kvLoraRank, R = this.c.ropeDim;
    const kept = this.w.layers.map((_, l) => [this.latent[l].slice(p * r, (p + 1) * r), this.kpe[l].slice(p * R, (p + 1) * R)]);
    const ix = this.index?.map((x) => ({ codes: x.codes.slice(p * x.d, (p + 1) * x.d), scale: x.scales[p] }));
    const h = await this.trunk([this.tokens[p]], p);
    kept.forEach(([c, k], l) => {
      this.latent[l].set(c, p * r);
      this.kpe[l].set(k, p * R);
    });
    ix?.forEach((k, l) => {
      this.index![l].codes.set(k.codes, p * this.index![l].d);
      this.index![l].scales[p] = k.scale;
    });
    this.invalidate(p);
    this.pendingHidden.unshift(h);
    this.rehide = false;
  }

  // ---- MLA (§2.2) ------------------------------------------------------------------------------

  private async attention(l: number, L: V3LayerWeights, x: Float32Array, n: number, start: number,
    tap: (w: string, d: Float32Array | Int32Array) => void): Promise<Float32Array> {
    const c = this.c, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim;
    const qr = L.wqA ? rmsnormRows(await this.lin.run(L.wqA, x, n, this.quant('linear')), c.qLoraRank, L.qNorm!, c.eps) : undefined;
    const q = await this.lin.run(L.wqB, qr ?? x, n, this.quant('parallel'));
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
    const chosen = L.indexer && await this.indexer(l, L.indexer, x, qr!, n, start, tap);
    const o = this.model.numerics.attention === 'naive'
      ? await this.naive(L, q, latent, kpe, start, n, chosen)
      : await this.absorbed(L, q, l, start, n, chosen);
    return this.lin.run(L.wo, o, n, this.quant('parallel'));
  }

  /**
   * V3.2 (§4): the indexer's keys for these tokens into cache l, and per token the positions its
   * MLA attends to (ascending). Tapped as `indexer_topk` [n, index_topk], −1 past a token's count.
   */
  private async indexer(l: number, ix: V32IndexerWeights, x: Float32Array, qr: Float32Array, n: number, start: number,
    tap: (w: string, d: Float32Array | Int32Array) => void): Promise<number[][]> {
    const I = this.c.index!;
    const q = await this.lin.run(ix.wqB, qr, n, this.quant('linear'));
    const k = await this.lin.run(ix.wk, x, n, this.quant('linear'));
    const w = await this.lin.run(ix.weightsProj, x, n);
    const chosen = indexerSelect({ ...I, ropeDim: this.c.ropeDim }, ix, this.index![l], this.w.freqs, q, k, w, n, start);
    if (this.probe?.tap) {
      const topk = new Int32Array(n * I.topk).fill(-1);
      chosen.forEach((s, t) => topk.set(s, t * I.topk));
      tap('indexer_topk', topk);
    }
    return chosen;
  }

  /**
   * Scores against the latents directly: per head q̃_h = B_kᵀ q_nope_h; then one attention over the
   * cache rows [c_t | k_pe_t] with queries [q̃_h | q_pe_h] (the backend's sparse attention, every
   * position up to the query's, no sink), whose output's first r values are Σ p_t c_t; o_h = B_v of that.
   */
  private async absorbed(L: V3LayerWeights, q: Float32Array, cache: number, start: number, n: number, chosen?: number[][]): Promise<Float32Array> {
    const c = this.c, be = this.model.backend, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim, nope = c.nopeDim, V = c.vDim;
    const W = r + R, HW = H * W, T = start + n;
    const Q = new Float32Array(n * HW);
    const qn = new Float32Array(n * nope);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < n; t++) qn.set(q.subarray(t * H * qk + h * qk, t * H * qk + h * qk + nope), t * nope);
      const qc = await this.lin.run(be.rows(L.ukT, h * r, (h + 1) * r), qn, n); // [n, r]
      for (let t = 0; t < n; t++) {
        Q.set(qc.subarray(t * r, (t + 1) * r), t * HW + h * W);
        Q.set(q.subarray(t * H * qk + h * qk + nope, t * H * qk + (h + 1) * qk), t * HW + h * W + r);
      }
    }
    // Candidates per query: every position up to its own, or the indexer's choice (V3.2).
    const count = chosen ? Math.max(...chosen.map((s) => s.length)) : T;
    const rows = new Int32Array(n * count).fill(-1);
    for (let t = 0; t < n; t++) {
      if (chosen) rows.set(chosen[t], t * count);
      else for (let j = 0; j <= start + t; j++) rows[t * count + j] = j;
    }
    if (!this.sinks) {
      // No sink in MLA: a logit no score comes near adds nothing to the softmax.
      this.sinks = be.alloc('f32', [H], 'MLA (no) sinks');
      be.upload(this.sinks, new Float32Array(H).fill(-1e30));
    }
    const qT = this.qBuf.view([n, HW]), oT = this.oBuf.view([n, HW]);
    be.upload(qT, Q);
    be.sparseAttention(qT, this.mirror(cache, T), rows, count, this.sinks, oT, this.w.softmaxScale);
    const att = await be.download(oT);
    const o = new Float32Array(n * H * V), ol = new Float32Array(n * r);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < n; t++) ol.set(att.subarray(t * HW + h * W, t * HW + h * W + r), t * r);
      const oh = await this.lin.run(be.rows(L.uv, h * V, (h + 1) * V), ol, n); // [n, V]
      for (let t = 0; t < n; t++) o.set(oh.subarray(t * V, (t + 1) * V), t * H * V + h * V);
    }
    return o;
  }

  /** Every cached latent expanded to per-head keys and values through kv_b, then plain attention (over `chosen`'s positions on V3.2). */
  private async naive(L: V3LayerWeights, q: Float32Array, latent: Float32Array, kpe: Float32Array, start: number, n: number,
    chosen?: number[][]): Promise<Float32Array> {
    const c = this.c, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, R = c.ropeDim, nope = c.nopeDim, V = c.vDim;
    const T = start + n, kvw = nope + V;
    if (!L.wkvB) throw new Error('the naive attention form needs kv_b (load with mlaForm: naive)');
    const kv = await this.lin.run(L.wkvB, latent.subarray(0, T * r), T, this.quant('parallel')); // [T, H·(nope+V)]
    const o = new Float32Array(n * H * V);
    const scores = new Float64Array(T);
    for (let t = 0; t < n; t++) {
      const keys = chosen?.[t], seen = keys ? keys.length : start + t + 1;
      for (let h = 0; h < H; h++) {
        const qo = t * H * qk + h * qk;
        let max = -Infinity;
        for (let a = 0; a < seen; a++) {
          const j = keys ? keys[a] : a;
          let s = 0;
          const ko = j * H * kvw + h * kvw;
          for (let i = 0; i < nope; i++) s += q[qo + i] * kv[ko + i];
          for (let i = 0; i < R; i++) s += q[qo + nope + i] * kpe[j * R + i];
          scores[a] = s * this.w.softmaxScale;
          if (scores[a] > max) max = scores[a];
        }
        let sum = 0;
        for (let a = 0; a < seen; a++) sum += (scores[a] = Math.exp(scores[a] - max));
        const oo = t * H * V + h * V;
        for (let a = 0; a < seen; a++) {
          const j = keys ? keys[a] : a;
          const pj = scores[a] / sum, vo = j * H * kvw + h * kvw + nope;
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
