/**
 * DeepSeek-V4.1 (Flash): the forward pass of ../../../shared/spec/deepseek-v41.md, a diff against
 * DeepSeek-V4 (deepseek-v4.ts), in its order.
 *
 *   X = [e, e, …, e],  pre = (1, 0, …, 0)                                                   §4
 *   per block L:  X += Engram_L(X, n-gram hash rows)          (Engram layers only)          §6A
 *                 tap_L = mean_j X_j                           (DSpark target layers)        §8
 *                 (preA, postA, C_A) = mixes(X);   a = Attn(RMSNorm(Σ_j pre_j X_j))          §5
 *                 X = postA·a + C_Aᵀ·X
 *                 (preF, postF, C_F) = mixes(X);   f = MoE(RMSNorm(Σ_j preA_j X_j))          §5, §7
 *                 X = postF·f + C_Fᵀ·X;   pre = preF        ("single pass": each sublayer's input
 *                                                             uses the mixes of the one before)
 *   logits = head · RMSNorm(Σ_j pre_j X_j)                                                 §4
 *   DSpark: stages draft a block of tokens from the taps (see dspark() below)             §8
 *
 * CSA2 attention (§6): every layer keeps its own window of keys; ratio-2 and ratio-1 layers also
 * see up to index_topk compressed entries of the latest KV-source layer at or before them, chosen
 * by the latest index-source layer (its top-k reused verbatim by the layers in between). The
 * ratio-1 candidate source publishes, per query, the blocks of entries later re-indexing layers
 * may choose from.
 *
 * State that later tokens read is kept per position and never overwritten by the next few
 * positions (window rings and compressor inputs have SLACK spare slots), so rolling back a few
 * tokens — rejected speculative drafts — is setting the length back (§8.3 step 5).
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import { ropeTail } from '../kernels/deepseek-ops.js';
import { qatFp4, qatFp8 } from '../tensor/dequantize.js';
import { E4M3_TO_F32, e2m1ToF32, f32ToE2m1, f32ToE4m3 } from '../tensor/float.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { WeightFile } from '../formats/weight-file.js';
import { argmax } from '../engine/sampler.js';
import { attendChunk, attendDraft, collapseStreams, embedRows, groupedOutput, hcMixes, hcPost, markovDraft, type HcWeights } from './deepseek-v4.js';
import { moeForward, type MoeWeights } from './deepseek-moe.js';
import { indexSourceOf, kvSourceOf, type V41Config } from './deepseek-v41-config.js';
import { EngramHasher, type EngramTable } from './engram.js';
import { DeviceBuffer, HostLinear, packState, rmsnormRows, SequenceOwner, sigmoid, topIndices } from './host-linear.js';
import type { DsparkDraft, DsparkSequence, LanguageModel, ModelDescription } from './model.js';

export interface V41Numerics {
  /** Q8(x, 32) before every FP8/FP4 matrix product (§7, §10). */
  readonly actQuant: boolean;
  /** Q8(·, 32) of window keys, Q4e(·, 16) of compressed KV, Q4(·, 32) of index keys and queries. */
  readonly kvQuant: boolean;
}

// ---- weights (filled by deepseek-v41-load.ts) --------------------------------------------------

export interface V41Attention {
  readonly ratio: number;
  readonly freqs: Float32Array;
  readonly wqA: Tensor;
  readonly qNorm: Float32Array;
  readonly wqB: Tensor;
  readonly wkv: Tensor;
  readonly kvNorm: Float32Array;
  /** Group g's rows of wo_a (or the whole matrix when its blocks do not split by group). */
  readonly woA: readonly Tensor[];
  readonly woB: Tensor;
  readonly sink: Float32Array;
  /** KV-source layers (§6.4): wgate only at ratio 2. */
  readonly compressor?: { readonly wkv: Tensor; readonly wgate?: Tensor; readonly norm: Float32Array };
  /** Index-source layers (§6.5): wk and kNorm only on KV sources (the owners of index keys). */
  readonly indexer?: { readonly wqB: Tensor; readonly weightsProj: Tensor; readonly wk?: Tensor; readonly kNorm?: Float32Array };
}

export interface EngramWeights {
  readonly table: EngramTable;
  readonly wkv: Tensor; // [D·(Hc+1), (N−1)·heads·headDim] FP8
  /** q_weight ⊙ k_weight [Hc, D] (only their product enters the gate). */
  readonly qk: Float32Array;
}

export interface V41Block {
  readonly name: string; // 'layer3', 'stage0'
  readonly attnNorm: Float32Array;
  readonly ffnNorm: Float32Array;
  readonly hcAttn: HcWeights;
  readonly hcFfn: HcWeights;
  readonly attn: V41Attention;
  readonly ffn: MoeWeights;
  readonly engram?: EngramWeights;
}

export interface DsparkWeights {
  readonly stages: readonly V41Block[];
  readonly mainProj: Tensor; // [D, |targets|·D] FP8
  readonly mainNorm: Float32Array;
  readonly norm: Float32Array;
  readonly markovEmbed: Tensor; // [V, r_m]
  readonly markovHead: Tensor; // [V, r_m]
  readonly confidence: Float32Array; // [D + r_m]
}

export interface V41Weights {
  readonly embed: Tensor;
  readonly head: Tensor;
  readonly norm: Float32Array;
  readonly blocks: readonly V41Block[];
  readonly dspark?: DsparkWeights;
}

/** Observers for fidelity checks: receives intermediate tensors named as in the fixture's debug dumps. */
export interface V41Probe {
  tap?(name: string, data: Float32Array | Int32Array): void;
  /** Replaces the input streams [n, Hc, D] (after Engram) and pre mix [n, Hc] of main block l for this chunk. */
  blockInput?(l: number): { X: Float32Array; pre: Float32Array } | undefined;
}

/** Q4e(x, 16) in place (§3.6): FP4 E2M1 codes with one E4M3 (not power-of-two) scale per 16 values. */
export function qatFp4E4m3(x: Float32Array, block = 16): void {
  if (x.length % block) throw new Error(`qatFp4E4m3: length ${x.length} is not a whole number of blocks of ${block}`);
  const floor = 6 * 2 ** -9;
  for (let o = 0; o < x.length; o += block) {
    let a = floor;
    for (let i = o; i < o + block; i++) a = Math.max(a, Math.abs(x[i]));
    const s = E4M3_TO_F32[f32ToE4m3(Math.fround(a / 6))];
    for (let i = o; i < o + block; i++) {
      const v = Math.min(6, Math.max(-6, Math.fround(x[i] / s)));
      x[i] = Math.fround(e2m1ToF32(f32ToE2m1(v)) * s);
    }
  }
}

// ---- per-sequence state ------------------------------------------------------------------------

/** Rows of at most this many tokens go through the blocks together. */
const CHUNK = 256;
/** Spare ring slots: this many newest positions can be rolled back without a rebuild. */
export const V41_SLACK = 16;

/**
 * The attention KV of a sequence in backend memory: one f32 tensor [rows, headDim] holding, after
 * CHUNK staging rows, each layer's window ring (W + SLACK slots, position p in slot p mod that) and
 * each KV source's compressed entries. Sinks [layers, H] beside it.
 */
class SequenceKv {
  readonly kv: Tensor;
  readonly ringBase: number[] = [];
  readonly entryBase = new Map<number, number>();
  readonly sinks: Tensor[];
  readonly ring: number;
  readonly stage: number;
  private readonly sinkAll: Tensor;

  constructor(private readonly be: Backend, c: V41Config, attns: readonly V41Attention[], capacity: number) {
    this.ring = c.window + V41_SLACK;
    this.stage = Math.max(Math.min(CHUNK, capacity), c.dspark.blockSize);
    let rows = this.stage;
    attns.forEach((a, l) => {
      this.ringBase.push(rows);
      rows += this.ring;
      if (a.compressor) {
        this.entryBase.set(l, rows);
        rows += Math.floor(capacity / a.ratio);
      }
    });
    this.kv = be.alloc('f32', [rows, c.headDim], 'V4.1 attention KV');
    this.sinkAll = be.alloc('f32', [attns.length, c.heads], 'V4.1 attention sinks');
    this.sinks = attns.map((a, l) => {
      const s = be.view(this.sinkAll, l * c.heads, [c.heads]);
      be.upload(s, a.sink);
      return s;
    });
  }

  ringRow(l: number, p: number): number { return this.ringBase[l] + (p % this.ring); }
  entryRow(l: number, e: number): number { return this.entryBase.get(l)! + e; }

  write(row: number, data: Float32Array): void {
    const d = this.kv.shape[1];
    this.be.upload(this.be.view(this.kv, row * d, [data.length / d, d]), data);
  }

  free(): void {
    this.be.free(this.kv);
    this.be.free(this.sinkAll);
  }
}

/** A KV-source layer's state beside its compressed entries: recent compressor inputs (ratio 2), index keys. */
class SourceState {
  /** Ratio 2: [SLACK + 2, 2·Dh] rows (a | g) of position p in slot p mod (SLACK + 2). */
  readonly recent?: Float32Array;
  /** Index keys [entries, Di] in backend memory, where indexerScores reads them. */
  readonly indexKeys?: Tensor;

  constructor(be: Backend, c: V41Config, a: V41Attention, capacity: number) {
    if (a.ratio === 2) this.recent = new Float32Array((V41_SLACK + 2) * 2 * c.headDim);
    if (a.indexer?.wk) this.indexKeys = be.alloc('f32', [Math.max(1, Math.floor(capacity / a.ratio)), c.indexHeadDim], 'V4.1 index keys');
  }
}

/** Compressed entries of a layer of ratio r visible to the query at position p (§6.3). */
const visibleAt = (p: number, r: number) => Math.floor((p + 1) / r);

// ---- the model ---------------------------------------------------------------------------------

export class DeepseekV41Model extends SequenceOwner<DeepseekV41Sequence> implements LanguageModel {
  /** Compressed token id per vocabulary id (§6A.2); set by the loader from the tokenizer. */
  private hasher?: EngramHasher;

  constructor(
    readonly config: V41Config,
    readonly weights: V41Weights,
    readonly tokenizer: Tokenizer,
    readonly backend: Backend,
    readonly numerics: V41Numerics,
    readonly description: ModelDescription,
    release: () => Promise<void>,
    file: WeightFile,
  ) {
    super(description, config.contextLength, release, file);
  }

  /** Sets the Engram compressed-token map (§6A.2): [vocab] ids below engram_compressed_vocab_size. */
  setEngramTokenMap(map: Int32Array): void {
    const c = this.config;
    if (map.length !== c.vocab) throw new Error(`Engram token map has ${map.length} entries, the vocabulary ${c.vocab}`);
    for (const v of map) if (!(v >= 0 && v < c.engram.compressedVocab)) throw new Error(`Engram token map holds ${v}, outside the compressed vocabulary of ${c.engram.compressedVocab}`);
    this.hasher = new EngramHasher(c.engram, map);
  }

  get engramHasher(): EngramHasher {
    if (!this.hasher) throw new Error('this DeepSeek-V4.1 model has Engram layers but no Engram token map: its directory needs the tokenizer.json the model was trained with (or, for checkpoints driven by token ids, --engram-map FILE)');
    return this.hasher;
  }

  /** The Engram row caches' hits and misses so far, over all Engram layers. */
  get engramCacheStats(): { hits: number; misses: number; bytesRead: number } {
    const sum = { hits: 0, misses: 0, bytesRead: 0 };
    for (const b of this.weights.blocks) {
      const s = b.engram?.table.stats;
      if (s) { sum.hits += s.hits; sum.misses += s.misses; sum.bytesRead += s.bytesRead; }
    }
    return sum;
  }

  protected makeSequence(capacity: number, onFree: () => void): DeepseekV41Sequence {
    return new DeepseekV41Sequence(this, capacity, onFree);
  }
}

export class DeepseekV41Sequence implements DsparkSequence {
  length = 0;
  readonly capacity: number;
  probe?: V41Probe;
  private readonly c: V41Config;
  private readonly w: V41Weights;
  private readonly lin: HostLinear;
  private readonly fp8In?: (x: Float32Array) => void;
  private readonly kq: boolean;
  private readonly kv: SequenceKv;
  private readonly sources = new Map<number, SourceState>();
  private readonly attnQ: DeviceBuffer;
  private readonly attnO: DeviceBuffer;
  /** The indexers' queries, head weights and scores on the backend. */
  private readonly idx: { q: DeviceBuffer; w: DeviceBuffer; scores: DeviceBuffer };
  /** Every token in the state (Engram hashes look back; a long truncate replays them). */
  private readonly tokens: number[] = [];
  /** Tokens to replay before the next forward (after a truncate past the slack). */
  private replay = 0;
  private freed = false;

  constructor(private readonly model: DeepseekV41Model, capacity: number, private readonly onFree: () => void) {
    this.capacity = capacity;
    this.c = model.config;
    this.w = model.weights;
    if (model.numerics.actQuant) this.fp8In = (x) => qatFp8(x, 32);
    this.kq = model.numerics.kvQuant;
    const be = model.backend;
    this.lin = new HostLinear(be, true); // batch-invariant: see HostLinear
    this.attnQ = new DeviceBuffer(be, 'V4.1 attention queries');
    this.attnO = new DeviceBuffer(be, 'V4.1 attention outputs');
    this.idx = { q: new DeviceBuffer(be, 'V4.1 indexer queries'), w: new DeviceBuffer(be, 'V4.1 indexer weights'), scores: new DeviceBuffer(be, 'V4.1 indexer scores') };
    const attns = [...this.w.blocks, ...(this.w.dspark?.stages ?? [])].map((b) => b.attn);
    this.kv = new SequenceKv(be, this.c, attns, capacity);
    this.w.blocks.forEach((b, l) => { if (b.attn.compressor) this.sources.set(l, new SourceState(be, this.c, b.attn, capacity)); });
  }

  get weightBytesRead(): number { return this.lin.weightBytes; }

  get stateBytes(): number {
    let floats = this.kv.kv.shape[0] * this.c.headDim;
    for (const s of this.sources.values()) floats += (s.recent?.length ?? 0) + (s.indexKeys ? s.indexKeys.shape[0] * s.indexKeys.shape[1] : 0);
    return 4 * floats;
  }

  async forward(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    this.checkTokens('forward', tokens);
    if (this.replay) await this.rebuild();
    const vocab = this.c.vocab;
    const all = opts.allLogits ? new Float32Array(tokens.length * vocab) : undefined;
    let last!: Float32Array;
    for (let i = 0; i < tokens.length; i += CHUNK) {
      const ids = tokens.slice(i, i + CHUNK), n = ids.length;
      const { X, pre } = await this.trunk(ids);
      if (all) all.set(await this.head(X, pre, n, this.w.norm), i * vocab);
      else if (i + n === tokens.length) {
        const sw = this.c.hcMult * this.c.dim;
        last = await this.head(X.subarray((n - 1) * sw), pre.subarray((n - 1) * this.c.hcMult), 1, this.w.norm);
      }
    }
    return all ?? last;
  }

  /**
   * Forgets tokens from position n on. Up to SLACK newest tokens are dropped by setting the length
   * back (nothing they wrote is read again); more are rebuilt from the kept tokens.
   */
  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`truncate: ${n} is not from 0 to the sequence's length ${this.length}`);
    if (n === this.length) return;
    const fast = this.length - n <= V41_SLACK && !this.replay;
    this.tokens.length = n;
    this.length = n;
    if (!fast) this.replay = n;
  }

  /**
   * The whole state (§9): every layer's and draft stage's window ring, each KV source's compressed
   * entries, index keys and (ratio 2) recent compressor inputs, then the token ids.
   */
  async saveState(): Promise<Uint8Array> {
    if (this.replay) await this.rebuild();
    const be = this.model.backend, Dh = this.c.headDim;
    const parts: Float32Array[] = [];
    for (let l = 0; l < this.kv.ringBase.length; l++) parts.push(await be.download(be.view(this.kv.kv, this.kv.ringBase[l] * Dh, [this.kv.ring, Dh])));
    for (const [l, S] of this.sources) {
      const entries = Math.floor(this.length / this.w.blocks[l].attn.ratio);
      if (entries) parts.push(await be.download(be.view(this.kv.kv, this.kv.entryRow(l, 0) * Dh, [entries, Dh])));
      if (S.indexKeys && entries) parts.push(await be.download(be.view(S.indexKeys, 0, [entries, this.c.indexHeadDim])));
      if (S.recent) parts.push(S.recent);
    }
    return packState(parts, this.tokens);
  }

  loadState(state: Uint8Array, length: number): void {
    if (this.length !== 0 || this.replay) throw new Error('loadState: the sequence is not empty');
    if (length > this.capacity) throw new Error(`loadState: ${length} tokens do not fit this sequence's capacity of ${this.capacity}`);
    const Dh = this.c.headDim, Di = this.c.indexHeadDim;
    const entriesOf = (l: number) => Math.floor(length / this.w.blocks[l].attn.ratio);
    let need = this.kv.ringBase.length * this.kv.ring * Dh + length;
    for (const [l, S] of this.sources) need += entriesOf(l) * (Dh + (S.indexKeys ? Di : 0)) + (S.recent?.length ?? 0);
    if (state.length !== 4 * need) throw new Error(`loadState: ${state.length} bytes are not the state of ${length} tokens of this model`);
    const f = new Float32Array(state.slice().buffer);
    let o = 0;
    const take = (n: number) => f.subarray(o, (o += n));
    for (let l = 0; l < this.kv.ringBase.length; l++) this.kv.write(this.kv.ringBase[l], take(this.kv.ring * Dh));
    for (const [l, S] of this.sources) {
      const entries = entriesOf(l);
      if (entries) this.kv.write(this.kv.entryRow(l, 0), take(entries * Dh));
      if (S.indexKeys && entries) this.model.backend.upload(this.model.backend.view(S.indexKeys, 0, [entries, Di]), take(entries * Di));
      if (S.recent) S.recent.set(take(S.recent.length));
    }
    this.tokens.push(...new Int32Array(f.slice(o, o + length).buffer));
    this.length = length;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.lin.free();
    this.kv.free();
    this.attnQ.free();
    this.attnO.free();
    for (const b of Object.values(this.idx)) b.free();
    for (const S of this.sources.values()) if (S.indexKeys) this.model.backend.free(S.indexKeys);
    this.onFree();
  }

  /** Throws unless `tokens` are vocabulary ids that (`append`) fit the sequence. */
  private checkTokens(what: string, tokens: readonly number[], append = true): void {
    if (this.freed) throw new Error(`${what}: this sequence has been freed`);
    if (tokens.length === 0) throw new Error(`${what}: no tokens`);
    if (append && this.length + tokens.length > this.capacity) {
      throw new Error(`context full: ${this.length} tokens + ${tokens.length} new is more than this sequence's capacity of ${this.capacity}`);
    }
    for (const t of tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < this.c.vocab)) throw new Error(`${what}: token id ${t} is outside the vocabulary (0 … ${this.c.vocab - 1})`);
    }
  }

  private async rebuild(): Promise<void> {
    const kept = this.tokens.splice(0, this.replay);
    this.replay = 0;
    this.length = 0;
    for (let i = 0; i < kept.length; i += CHUNK) await this.trunk(kept.slice(i, i + CHUNK));
  }

  private tap(name: string, data: Float32Array | Int32Array): void {
    this.probe?.tap?.(name, data);
  }

  /** Streams [n, Hc, D] of the embeddings of `ids`, and the one-hot pre mix (stream 0). */
  private async streams(ids: readonly number[]): Promise<{ X: Float32Array; pre: Float32Array }> {
    const n = ids.length, D = this.c.dim, hc = this.c.hcMult;
    const e = await embedRows(this.model.backend, this.w.embed, ids);
    const X = new Float32Array(n * hc * D), pre = new Float32Array(n * hc);
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < hc; j++) X.set(e.subarray(t * D, (t + 1) * D), (t * hc + j) * D);
      pre[t * hc] = 1;
    }
    return { X, pre };
  }

  /** Runs `ids` through every main block; returns the last block's streams and its pre mix. */
  private async trunk(ids: readonly number[]): Promise<{ X: Float32Array; pre: Float32Array }> {
    const c = this.c, n = ids.length, start = this.length, D = c.dim, hc = c.hcMult;
    this.tokens.push(...ids);
    let { X, pre } = await this.streams(ids);
    const hashes = c.engram.layerIds.length ? this.model.engramHasher.hash(this.tokens, start, start + n) : undefined;
    const taps: Float32Array[] = [];
    const ctx: ChunkContext = { n, start, topk: new Map(), candidates: undefined };
    for (let l = 0; l < c.layers; l++) {
      const B = this.w.blocks[l];
      if (B.engram) {
        X = await this.engram(B.engram, X, hashes!, c.engram.layerIds.indexOf(l), n);
        this.tap(`engram${l}.out_streams`, X);
      }
      const forced = this.probe?.blockInput?.(l);
      if (forced) ({ X, pre } = forced);
      if (c.dspark.targetLayers.includes(l)) {
        const m = new Float32Array(n * D);
        for (let t = 0; t < n; t++) for (let j = 0; j < hc; j++) for (let i = 0; i < D; i++) m[t * D + i] += X[(t * hc + j) * D + i] / hc;
        taps.push(m);
      }
      this.tap(`block${l}.in_streams`, X);
      this.tap(`block${l}.in_pre_mix`, pre);
      ({ X, pre } = await this.block(B, l, X, pre, ctx));
      this.tap(`block${l}.out_streams`, X);
      this.tap(`block${l}.out_pre_mix`, pre);
    }
    if (this.w.dspark) await this.seedStages(taps, n, start);
    this.length += n;
    return { X, pre };
  }

  /** logits [n, vocab] = head · RMSNorm(Σ_j pre_j X_j). */
  private async head(X: Float32Array, pre: Float32Array, n: number, norm: Float32Array): Promise<Float32Array> {
    const h = this.collapse(X, pre, n);
    rmsnormRows(h, this.c.dim, norm, this.c.eps);
    return this.lin.run(this.w.head, h, n);
  }

  private collapse(X: Float32Array, pre: Float32Array, n: number): Float32Array {
    return collapseStreams(X, pre, n, this.c.hcMult, this.c.dim);
  }

  // ---- mHC, single pass (§5) -------------------------------------------------------------------

  private async block(B: V41Block, l: number, X: Float32Array, preIn: Float32Array, ctx: ChunkContext,
    query?: DraftQuery): Promise<{ X: Float32Array; pre: Float32Array }> {
    const n = ctx.n, D = this.c.dim, eps = this.c.eps;
    const A = await hcMixes(this.lin, this.c, X, n, B.hcAttn);
    const a = await this.attention(B, l, rmsnormRows(this.collapse(X, preIn, n), D, B.attnNorm, eps), ctx, query);
    X = hcPost(a, X, n, A.post, A.comb, this.c.hcMult, D);
    const F = await hcMixes(this.lin, this.c, X, n, B.hcFfn);
    const x = rmsnormRows(this.collapse(X, A.pre, n), D, B.ffnNorm, eps);
    const moe = query ? this.c.dspark : this.c;
    const f = await moeForward(this.lin, { dim: D, topK: moe.topK, routeScale: this.c.routeScale, swigluLimit: this.c.swigluLimit, gateTemp: this.c.gateTemp, sumEps: 1e-20 },
      B.ffn, x, new Array<number>(n).fill(0), this.fp8In);
    return { X: hcPost(f, X, n, F.post, F.comb, this.c.hcMult, D), pre: F.pre };
  }

  // ---- Engram (§6A.4) --------------------------------------------------------------------------

  private async engram(E: EngramWeights, X: Float32Array, hashes: Int32Array, e: number, n: number): Promise<Float32Array> {
    const c = this.c, D = c.dim, hc = c.hcMult, cols = (c.engram.maxNgram - 1) * c.engram.heads;
    const ids = new Int32Array(n * cols);
    const layers = c.engram.layerIds.length;
    for (let t = 0; t < n; t++) ids.set(hashes.subarray((t * layers + e) * cols, (t * layers + e + 1) * cols), t * cols);
    const kv = await this.lin.run(E.wkv, E.table.rows(ids), n, this.fp8In); // [n, D·(Hc+1)]
    const out = X.slice(), scale = 1 / Math.sqrt(D);
    for (let t = 0; t < n; t++) {
      const row = t * D * (hc + 1), value = row + hc * D;
      for (let j = 0; j < hc; j++) {
        const x = (t * hc + j) * D, key = row + j * D;
        let dot = 0, xs = 0, ks = 0;
        for (let i = 0; i < D; i++) {
          dot += X[x + i] * E.qk[j * D + i] * kv[key + i];
          xs += X[x + i] * X[x + i];
          ks += kv[key + i] * kv[key + i];
        }
        const d = dot / Math.sqrt(xs / D + c.eps) / Math.sqrt(ks / D + c.eps) * scale;
        const g = sigmoid(Math.sign(d) * Math.sqrt(Math.max(Math.abs(d), 1e-6)));
        for (let i = 0; i < D; i++) out[x + i] += g * kv[value + i];
      }
    }
    return out;
  }

  // ---- CSA2 attention (§6) ---------------------------------------------------------------------

  /**
   * Attention of block l for the chunk's rows x [n, D] (normed). Main layers write their window
   * keys and (KV sources) compressed entries; a draft stage (`query`) attends its ring plus the
   * draft block's own keys, bidirectionally, and writes nothing.
   */
  private async attention(B: V41Block, l: number, x: Float32Array, ctx: ChunkContext, query?: DraftQuery): Promise<Float32Array> {
    const c = this.c, A = B.attn, H = c.heads, Dh = c.headDim, R = c.ropeDim, n = ctx.n, start = ctx.start;
    const qr = rmsnormRows(await this.lin.run(A.wqA, x, n, this.fp8In), c.qLoraRank, A.qNorm, c.eps);
    const q = await this.lin.run(A.wqB, qr, n, this.fp8In);
    const kv = rmsnormRows(await this.lin.run(A.wkv, x, n, this.fp8In), Dh, A.kvNorm, c.eps);
    for (let t = 0; t < n; t++) {
      ropeTail(q, t * H * Dh, H, Dh, R, A.freqs, start + t, false);
      ropeTail(kv, t * Dh, 1, Dh, R, A.freqs, start + t, false);
    }
    if (this.kq) qatFp8(kv, 32);

    let seen: (readonly number[])[] = Array.from({ length: n }, () => []);
    if (A.ratio > 0) {
      if (A.compressor) await this.compress(A, l, x, n, start);
      if (A.indexer) ctx.topk.set(l, await this.index(A, l, x, qr, ctx));
      const src = kvSourceOf(c, l);
      seen = ctx.topk.get(indexSourceOf(c, l))!.map((list) => list.map((e) => this.kv.entryRow(src, e)));
    }
    const o = query ? await attendDraft(this.model.backend, this.c, this.kv.kv, (p) => this.kv.ringRow(l, p), this.kv.sinks[l], this.attnQ, this.attnO, q, kv, query.last)
      : await attendChunk(this.model.backend, this.c, this.kv.kv, this.kv.stage, (p) => this.kv.ringRow(l, p), this.kv.ring,
        this.kv.sinks[l], this.attnQ, this.attnO, q, kv, seen, start);
    for (let t = 0; t < n; t++) ropeTail(o, t * H * Dh, H, Dh, R, A.freqs, start + t, true);

    return groupedOutput(this.lin, this.c, A, o, n, this.fp8In);
  }

  /**
   * §6.4: the compressor's new entries of this chunk. Ratio 2 pools token pairs (softmax of the
   * gate over the two, per channel), ratio 1 takes each token; then RMSNorm, the index key from the
   * un-rotated latent (§6.5), RoPE at the group's first position, Q4e.
   */
  private async compress(A: V41Attention, l: number, x: Float32Array, n: number, start: number): Promise<void> {
    const c = this.c, Dh = c.headDim, Di = c.indexHeadDim, R = c.ropeDim, r = A.ratio, C = A.compressor!;
    const S = this.sources.get(l)!;
    const a = await this.lin.run(C.wkv, x, n);
    const g = C.wgate ? await this.lin.run(C.wgate, x, n) : undefined;
    const entries: number[] = [];
    const latents: Float32Array[] = [];
    for (let t = 0; t < n; t++) {
      const p = start + t;
      if (r === 1) {
        entries.push(p);
        latents.push(a.slice(t * Dh, (t + 1) * Dh));
        continue;
      }
      const slots = V41_SLACK + 2, rw = 2 * Dh, rec = S.recent!;
      rec.set(a.subarray(t * Dh, (t + 1) * Dh), (p % slots) * rw);
      rec.set(g!.subarray(t * Dh, (t + 1) * Dh), (p % slots) * rw + Dh);
      if (p % 2 === 0) continue;
      const r0 = ((p - 1) % slots) * rw, r1 = (p % slots) * rw, latent = new Float32Array(Dh);
      for (let ch = 0; ch < Dh; ch++) {
        const g0 = rec[r0 + Dh + ch], g1 = rec[r1 + Dh + ch], m = Math.max(g0, g1);
        const e0 = Math.exp(g0 - m), e1 = Math.exp(g1 - m);
        latent[ch] = (e0 * rec[r0 + ch] + e1 * rec[r1 + ch]) / (e0 + e1);
      }
      entries.push((p - 1) / 2);
      latents.push(latent);
    }
    if (!entries.length) return;
    const m = entries.length, flat = new Float32Array(m * Dh);
    latents.forEach((v, i) => flat.set(v, i * Dh));
    rmsnormRows(flat, Dh, C.norm, c.eps);
    if (S.indexKeys) {
      const k = rmsnormRows(await this.lin.run(A.indexer!.wk!, flat, m), Di, A.indexer!.kNorm!, c.eps);
      entries.forEach((e, i) => ropeTail(k, i * Di, 1, Di, R, A.freqs, e * r, false));
      if (this.kq) qatFp4(k, 32);
      this.model.backend.upload(this.model.backend.view(S.indexKeys, entries[0] * Di, [m, Di]), k); // entries are consecutive
      this.tapRows(`attn${l}.index_k`, k, entries[0], start + n, r, Di);
    }
    entries.forEach((e, i) => ropeTail(flat, i * Dh, 1, Dh, R, A.freqs, e * r, false));
    if (this.kq) qatFp4E4m3(flat, 16);
    // Entries are consecutive: one upload.
    this.kv.write(this.kv.entryRow(l, entries[0]), flat);
    this.tapRows(`attn${l}.compress_kv`, flat, entries[0], start + n, r, Dh);
  }

  /** Taps the entries of this chunk under the dump's name when they are all the entries so far. */
  private tapRows(name: string, rows: Float32Array, first: number, end: number, r: number, width: number): void {
    if (this.probe?.tap && first === 0 && rows.length / width === Math.floor(end / r)) this.tap(name, rows);
  }

  /**
   * §6.5: this index source's choice of compressed entries for every token of the chunk — the
   * min(index_topk, visible) highest I(c) = Σ_h w_h·relu(q_h·k_c), in position order. The candidate
   * source also publishes, per token, the blocks later re-indexing layers choose within.
   */
  private async index(A: V41Attention, l: number, x: Float32Array, qr: Float32Array, ctx: ChunkContext): Promise<number[][]> {
    const c = this.c, Hi = c.indexHeads, Di = c.indexHeadDim, R = c.ropeDim, n = ctx.n, r = A.ratio;
    const keys = this.sources.get(kvSourceOf(c, l))!.indexKeys!, be = this.model.backend;
    const qi = await this.lin.run(A.indexer!.wqB, qr, n, this.fp8In);
    for (let t = 0; t < n; t++) ropeTail(qi, t * Hi * Di, Hi, Di, R, A.freqs, ctx.start + t, false);
    if (this.kq) qatFp4(qi, 32);
    const w = await this.lin.run(A.indexer!.weightsProj, x, n);
    const ws = 1 / Math.sqrt(Di) / Math.sqrt(Hi);
    for (let i = 0; i < w.length; i++) w[i] *= ws;

    // I(c) of every token against the entries it sees, on the backend: [n, cols].
    const visibleOf = Int32Array.from({ length: n }, (_, t) => visibleAt(ctx.start + t, r));
    const cols = Math.max(1, visibleOf[n - 1]);
    const qT = this.idx.q.view([n, Hi * Di]), wT = this.idx.w.view([n, Hi]), sT = this.idx.scores.view([n, cols]);
    be.upload(qT, qi);
    be.upload(wT, w);
    be.indexerScores(qT, wT, keys, visibleOf, Hi, sT);
    const scores = await be.download(sT);

    const isCandidateSource = l === c.candidate.layer, reindex = l > c.candidate.layer && r === c.compressRatios[c.candidate.layer] && !A.indexer!.wk;
    if (isCandidateSource) ctx.candidates = [];
    const chosen: number[][] = [];
    const topk = new Int32Array(n * c.indexTopk).fill(-1);
    for (let t = 0; t < n; t++) {
      const visible = visibleOf[t];
      const score = scores.subarray(t * cols, t * cols + visible);
      if (isCandidateSource) ctx.candidates!.push(this.candidateMask(score, visible));
      if (reindex && ctx.candidates) {
        const mask = ctx.candidates[t];
        for (let e = 0; e < visible; e++) if (!mask[e]) score[e] = -Infinity;
      }
      const list = topIndices(score, visible, Math.min(c.indexTopk, visible)).sort((a, b) => a - b);
      chosen.push(list);
      list.forEach((e, i) => { topk[t * c.indexTopk + i] = ctx.start + n + e; });
    }
    if (ctx.start === 0) {
      this.tap(`indexer${l}.topk_idxs`, topk);
      if (isCandidateSource) {
        const m = new Int32Array(n * n);
        ctx.candidates!.forEach((mask, t) => m.set(mask.subarray(0, n), t * n));
        this.tap(`indexer${l}.candidates`, m);
      }
    }
    return chosen;
  }

  /** The candidate blocks of one query (§6.5): the best candidate_topk_blocks by max score, the newest always kept. */
  private candidateMask(score: Float32Array, visible: number): Uint8Array {
    const { topBlocks, blockSize } = this.c.candidate;
    const blocks = Math.ceil(visible / blockSize), best = new Float32Array(blocks).fill(-Infinity);
    const mask = new Uint8Array(blocks * blockSize); // whole blocks, as the reference publishes them
    if (!visible) return mask;
    for (let e = 0; e < visible; e++) best[Math.floor(e / blockSize)] = Math.max(best[Math.floor(e / blockSize)], score[e]);
    best[Math.floor((visible - 1) / blockSize)] = Infinity;
    for (const b of topIndices(best, blocks, Math.min(topBlocks, blocks))) {
      if (best[b] === -Infinity) continue;
      mask.fill(1, b * blockSize, (b + 1) * blockSize);
    }
    return mask;
  }

  // ---- DSpark (§8.1) ---------------------------------------------------------------------------

  /** Writes main_x's window key of the chunk's positions into every stage's ring (§8.1 prefill / step 1). */
  private async seedStages(taps: Float32Array[], n: number, start: number): Promise<void> {
    const c = this.c, D = c.dim, Dh = c.headDim, R = c.ropeDim, S = this.w.dspark!, k = taps.length;
    const cat = new Float32Array(n * k * D);
    for (let t = 0; t < n; t++) taps.forEach((m, i) => cat.set(m.subarray(t * D, (t + 1) * D), (t * k + i) * D));
    this.tap('dspark_taps', cat);
    const mainX = rmsnormRows(await this.lin.run(S.mainProj, cat, n, this.fp8In), D, S.mainNorm, c.eps);
    for (let s = 0; s < S.stages.length; s++) {
      const A = S.stages[s].attn, l = c.layers + s;
      const kv = rmsnormRows(await this.lin.run(A.wkv, mainX, n, this.fp8In), Dh, A.kvNorm, c.eps);
      for (let t = 0; t < n; t++) ropeTail(kv, t * Dh, 1, Dh, R, A.freqs, start + t, false);
      if (this.kq) qatFp8(kv, 32);
      for (let p = Math.max(start, start + n - this.kv.ring); p < start + n; p++) {
        this.kv.write(this.kv.ringRow(l, p), kv.subarray((p - start) * Dh, (p - start + 1) * Dh));
      }
    }
  }

  /**
   * One draft round after the last token in the state (position p = length − 1), whose next token
   * is `anchor` (§8.1 steps 2–6): the block [anchor, noise × (γ−1)] at positions p+1 … p+γ through
   * the stages, the head, then the Markov loop (`pick` draws each token from its row; argmax by
   * default) and the confidences. Changes no state.
   */
  async dspark(anchor: number, pick: (logits: Float32Array, k: number) => number = argmax): Promise<DsparkDraft> {
    const c = this.c, S = this.w.dspark;
    if (!S) throw new Error('dspark: this checkpoint has no DSpark draft stages');
    this.checkTokens('dspark', [anchor], false); // drafts are never stored
    if (this.replay) await this.rebuild();
    if (this.length === 0) throw new Error('dspark: the sequence is empty (prefill first)');
    const gamma = c.dspark.blockSize;
    const ids = [anchor, ...new Array<number>(gamma - 1).fill(c.dspark.noiseToken)];
    const ctx: ChunkContext = { n: gamma, start: this.length, topk: new Map(), candidates: undefined };
    let { X, pre } = await this.streams(ids);
    for (let s = 0; s < S.stages.length; s++) ({ X, pre } = await this.block(S.stages[s], c.layers + s, X, pre, ctx, { last: this.length - 1 }));
    const h = this.collapse(X, pre, gamma);
    const logits = await this.lin.run(this.w.head, rmsnormRows(h, c.dim, S.norm, c.eps, new Float32Array(h.length)), gamma);
    return markovDraft(this.lin, this.model.backend, S, anchor, logits, h, pick);
  }
}

/** What the layers of one forward pass share: top-k lists of the index sources, the candidate masks. */
interface ChunkContext {
  readonly n: number;
  readonly start: number;
  readonly topk: Map<number, number[][]>;
  candidates: Uint8Array[] | undefined;
}

/** A draft block's attention: keys from the stage ring up to position `last`. */
interface DraftQuery {
  readonly last: number;
}
