/**
 * The dense Llama family — llama (incl. llama2.c checkpoints), mistral, qwen2, qwen3 — as one
 * forward pass. Per token x (row of the residual stream):
 *
 *   x = E[token]
 *   per layer:  h = RMSNorm(x) · w_attn_norm
 *               q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)
 *               q, k = RMSNorm per head (qwen3)
 *               q, k = RoPE(q, k; position)                (adjacent pairs or NeoX halves)
 *               K[pos], V[pos] = k, v                      (the KV cache, f32 or f16)
 *               a = softmax(q·Kᵀ / √headDim, causal, optional window) · V   (GQA: heads share KV heads)
 *               x = x + Wo a (+bo)
 *               h = RMSNorm(x) · w_ffn_norm
 *               x = x + W_down (silu(W_gate h) ⊙ W_up h)
 *   logits = W_out · RMSNorm(x) · w_out_norm             (W_out = E when the head is tied)
 *
 * Everything that differs between sources (GGUF, Hugging Face, llama2.c: names, RoPE layout,
 * frequency scaling) is settled by the loaders (llama-gguf.ts, llama-hf.ts, llama-llama2c.ts),
 * which hand this file a LlamaConfig and the tensor names.
 */
import { type Backend, numel, type RopeLayout, type Tensor } from '../kernels/backend.js';
import { byteSize, type DType } from '../tensor/dtype.js';
import { dequantizeRow } from '../tensor/quant-gguf.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { WeightFile } from '../formats/weight-file.js';
import type { BatchItem, LanguageModel, LoadOptions, ModelDescription, Sequence } from './model.js';

export interface LlamaConfig {
  /** 'llama', 'mistral', 'qwen2', 'qwen3'. */
  readonly architecture: string;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly eps: number;
  /** Context the model was trained for. */
  readonly contextLength: number;
  readonly ropeLayout: RopeLayout;
  /** θ_i = position · ropeFreqs[i], i < headDim/2, scaling (linear, Llama-3) already applied. */
  readonly ropeFreqs: Float32Array;
  /** Sliding-window size of each layer's attention; 0 for full causal attention. */
  readonly windows: readonly number[];
  /** Layer tensors the architecture must have beyond the plain ones (qwen2: biases; qwen3: q/k norms). */
  readonly requires: readonly OptionalLayerTensor[];
  /** Facts for the description (rope base, scaling, source format …). */
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

export type OptionalLayerTensor = 'qBias' | 'kBias' | 'vBias' | 'oBias' | 'qNorm' | 'kNorm';

export interface LayerNames {
  readonly attnNorm: string;
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly o: string;
  readonly ffnNorm: string;
  readonly gate: string;
  readonly up: string;
  readonly down: string;
  /** Used when the file has them. */
  readonly optional: Readonly<Record<OptionalLayerTensor, string>>;
}

/** Where the loader finds each tensor in the weight file. */
export interface LlamaTensorNames {
  readonly embedding: string;
  readonly outputNorm: string;
  /** The output head; when the file lacks it, the embedding is used (tied). */
  readonly output: string;
  layer(i: number): LayerNames;
}

interface LayerWeights {
  readonly attnNorm: Tensor;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly o: Tensor;
  readonly ffnNorm: Tensor;
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly down: Tensor;
  readonly opt: Partial<Record<OptionalLayerTensor, Tensor>>;
}

interface Weights {
  readonly embedding: Tensor;
  readonly outputNorm: Tensor;
  readonly output: Tensor;
  readonly layers: readonly LayerWeights[];
}

/** Context a sequence gets when neither the load options nor newSequence() say (as llama.cpp's default). */
export const DEFAULT_CONTEXT = 4096;
/** Prompt tokens run through the layers together (one matmul pass over the weights each). */
export const PREFILL_BATCH = 64;

export interface LlamaSource {
  readonly config: LlamaConfig;
  readonly names: LlamaTensorNames;
  readonly file: WeightFile;
  readonly tokenizer: Tokenizer;
}

/** Loads the weights of `src` into `backend` (quantised ones stay in their format). */
export async function loadLlama(src: LlamaSource, backend: Backend, opts: LoadOptions, ownsBackend: boolean): Promise<LlamaModel> {
  const loader = new WeightLoader(src.file, backend, opts.onProgress);
  const c = src.config;
  const qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim;
  const n = src.names;
  const embedding = loader.plan(n.embedding, 'token embedding', null, c.dim);
  const vocab = embedding.shape[0];
  const output = src.file.tensors.has(n.output) ? loader.plan(n.output, 'output head', vocab, c.dim) : undefined;
  const layerPlans = Array.from({ length: c.layers }, (_, i) => {
    const ln = n.layer(i);
    const what = (s: string) => `layer ${i} ${s}`;
    const opt: Partial<Record<OptionalLayerTensor, PlannedTensor>> = {};
    const optShapes: Record<OptionalLayerTensor, number> = { qBias: qDim, kBias: kvDim, vBias: kvDim, oBias: c.dim, qNorm: c.headDim, kNorm: c.headDim };
    for (const key of Object.keys(optShapes) as OptionalLayerTensor[]) {
      const name = ln.optional[key];
      if (src.file.tensors.has(name)) opt[key] = loader.plan(name, what(key), optShapes[key]);
      else if (c.requires.includes(key)) loader.missing(name, `${c.architecture} ${what(key)}`);
    }
    return {
      attnNorm: loader.plan(ln.attnNorm, what('attention norm'), c.dim),
      q: loader.plan(ln.q, what('q projection'), qDim, c.dim),
      k: loader.plan(ln.k, what('k projection'), kvDim, c.dim),
      v: loader.plan(ln.v, what('v projection'), kvDim, c.dim),
      o: loader.plan(ln.o, what('output projection'), c.dim, qDim),
      ffnNorm: loader.plan(ln.ffnNorm, what('FFN norm'), c.dim),
      gate: loader.plan(ln.gate, what('FFN gate'), c.ffnDim, c.dim),
      up: loader.plan(ln.up, what('FFN up'), c.ffnDim, c.dim),
      down: loader.plan(ln.down, what('FFN down'), c.dim, c.ffnDim),
      opt,
    };
  });
  const outputNorm = loader.plan(n.outputNorm, 'output norm', c.dim);

  try {
    const emb = await loader.table(embedding);
    const weights: Weights = {
      embedding: emb,
      outputNorm: await loader.vector(outputNorm),
      output: output ? await loader.matrix(output) : emb,
      layers: [],
    };
    for (const p of layerPlans) {
      const opt: Partial<Record<OptionalLayerTensor, Tensor>> = {};
      for (const [key, t] of Object.entries(p.opt) as [OptionalLayerTensor, PlannedTensor][]) opt[key] = await loader.vector(t);
      (weights.layers as LayerWeights[]).push({
        attnNorm: await loader.vector(p.attnNorm),
        q: await loader.matrix(p.q), k: await loader.matrix(p.k), v: await loader.matrix(p.v), o: await loader.matrix(p.o),
        ffnNorm: await loader.vector(p.ffnNorm),
        gate: await loader.matrix(p.gate), up: await loader.matrix(p.up), down: await loader.matrix(p.down),
        opt,
      });
    }
    return new LlamaModel(c, weights, src.tokenizer, backend, loader, opts, ownsBackend, output === undefined);
  } catch (err) {
    loader.freeAll();
    throw err;
  }
}

interface PlannedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: number;
}

/** Checks the tensors a model needs against the file, then loads them, reporting progress. */
class WeightLoader {
  readonly loaded: Tensor[] = [];
  readonly bytesByFormat: Record<string, number> = {};
  parameters = 0;
  private total = 0;
  private done = 0;

  constructor(readonly file: WeightFile, readonly backend: Backend, readonly onProgress?: (done: number, total: number) => void) {}

  missing(name: string, what: string): never {
    throw new Error(`${this.file.path}: missing tensor '${name}' (${what})`);
  }

  /** A tensor of `rows` × `cols` (a vector when cols is absent; rows null: any). */
  plan(name: string, what: string, rows: number | null, cols?: number): PlannedTensor {
    const info = this.file.tensors.get(name) ?? this.missing(name, what);
    const want = cols === undefined ? [rows] : [rows, cols];
    const ok = info.shape.length === want.length && want.every((d, i) => d === null || d === info.shape[i]);
    if (!ok) {
      throw new Error(`${this.file.path}: tensor '${name}' (${what}) has shape [${info.shape.join(', ')}], expected [${want.map((d) => d ?? 'any').join(', ')}]`);
    }
    this.total += info.byteLength;
    return { name, dtype: info.dtype, shape: info.shape, bytes: info.byteLength };
  }

  private count(t: PlannedTensor, tensor: Tensor): Tensor {
    this.loaded.push(tensor);
    this.bytesByFormat[t.dtype] = (this.bytesByFormat[t.dtype] ?? 0) + t.bytes;
    this.parameters += numel(t.shape);
    this.done += t.bytes;
    this.onProgress?.(this.done, this.total);
    return tensor;
  }

  /** A matrix in its stored format, for the matrix kernels. */
  async matrix(t: PlannedTensor): Promise<Tensor> {
    const [rows, cols] = t.shape;
    return this.count(t, await this.backend.loadWeight(this.file, { name: t.name, format: { dtype: t.dtype }, shape: [rows, cols], matrixOnly: true }));
  }

  /** A table read by rows (the embedding, possibly also the tied head), in its stored format. */
  async table(t: PlannedTensor): Promise<Tensor> {
    return this.count(t, await this.backend.load(this.file, t.name, t.dtype, t.shape));
  }

  /** A norm weight or bias, as f32 whatever its stored type. */
  async vector(t: PlannedTensor): Promise<Tensor> {
    if (t.dtype === 'f32') return this.count(t, await this.backend.load(this.file, t.name, 'f32', t.shape));
    const n = numel(t.shape);
    if (byteSize(t.dtype, n) === undefined) throw new Error(`${this.file.path}: tensor '${t.name}' of ${n} elements is not a whole number of ${t.dtype} blocks`);
    const values = new Float32Array(n);
    dequantizeRow(t.dtype, this.file.read(t.name), values, n);
    const out = this.backend.alloc('f32', t.shape, t.name);
    this.backend.upload(out, values);
    return this.count(t, out);
  }

  freeAll(): void {
    for (const t of this.loaded) this.backend.free(t);
    this.loaded.length = 0;
  }
}

/** What a dense model is and needs, from its config and tensor table (the same before and after loading). */
export function llamaDescription(c: LlamaConfig, opts: LoadOptions,
  w: { parameters: number; weightBytes: Record<string, number>; vocabSize: number; tied: boolean }): ModelDescription {
  const kvType = opts.kvType ?? 'f32';
  if (kvType !== 'f32' && kvType !== 'f16') throw new Error(`kvType must be 'f32' or 'f16', got ${String(kvType)}`);
  const cap = opts.contextLength;
  if (cap !== undefined && !(Number.isInteger(cap) && cap > 0)) throw new Error(`contextLength ${cap} must be a positive integer`);
  const defaultContext = Math.min(cap ?? DEFAULT_CONTEXT, c.contextLength);
  const stateBytesPerToken = c.layers * 2 * c.kvHeads * c.headDim * (kvType === 'f32' ? 4 : 2);
  const window = Math.max(...c.windows);
  return {
    architecture: c.architecture,
    parameters: w.parameters,
    weightBytes: w.weightBytes,
    contextLength: c.contextLength,
    stateBytesPerToken,
    layers: c.layers,
    vocabSize: w.vocabSize,
    details: {
      dim: c.dim, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, ffnDim: c.ffnDim, rmsEps: c.eps,
      ropeLayout: c.ropeLayout, ...(window > 0 ? { slidingWindow: window } : {}),
      tiedEmbeddings: w.tied, kvType, defaultContext,
      kvCacheBytes: stateBytesPerToken * defaultContext, ...c.details,
    },
  };
}

/** The description of `src` without loading its weights: parameters and bytes from the tensor table. */
export function describeLlama(src: LlamaSource, opts: LoadOptions): ModelDescription {
  const weightBytes: Record<string, number> = {};
  let parameters = 0;
  for (const t of src.file.tensors.values()) {
    weightBytes[t.dtype] = (weightBytes[t.dtype] ?? 0) + t.byteLength;
    parameters += numel(t.shape);
  }
  const tied = !src.file.tensors.has(src.names.output);
  const emb = src.file.tensors.get(src.names.embedding);
  const vocabSize = (tied ? emb : src.file.tensors.get(src.names.output))?.shape[0] ?? 0;
  return llamaDescription(src.config, opts, { parameters, weightBytes, vocabSize, tied });
}

export class LlamaModel implements LanguageModel {
  readonly description: ModelDescription;
  private batch?: { act: Activations; logits: Tensor; hostLogits: Float32Array; positions: Int32Array };
  /** Context newSequence() gives by default. */
  readonly defaultContext: number;
  readonly kvType: 'f32' | 'f16';
  private readonly sequences = new Set<LlamaSequence>();
  private closed = false;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: Weights,
    readonly tokenizer: Tokenizer,
    readonly backend: Backend,
    private readonly loader: WeightLoader,
    opts: LoadOptions,
    private readonly ownsBackend: boolean,
    tied: boolean,
  ) {
    this.kvType = opts.kvType ?? 'f32';
    this.description = llamaDescription(config, opts, {
      parameters: loader.parameters, weightBytes: { ...loader.bytesByFormat }, vocabSize: weights.output.shape[0], tied,
    });
    this.defaultContext = this.description.details.defaultContext as number;
  }

  newSequence(opts: { contextLength?: number } = {}): Sequence {
    if (this.closed) throw new Error('the model is closed');
    const n = opts.contextLength ?? this.defaultContext;
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`contextLength ${n} must be a positive integer`);
    if (n > this.config.contextLength) {
      throw new Error(`context length ${n} is longer than the model's context of ${this.config.contextLength} tokens`);
    }
    const s = new LlamaSequence(this, n, () => this.sequences.delete(s));
    this.sequences.add(s);
    return s;
  }

  /**
   * The last-token logits of each item, every item's tokens appended to its sequence: the items'
   * rows run through the layers together (one pass over the weights per chunk of PREFILL_BATCH rows).
   */
  async forwardBatch(items: readonly BatchItem[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error('the model is closed');
    const seqs = items.map((it) => {
      if (!(it.seq instanceof LlamaSequence) || !this.sequences.has(it.seq)) throw new Error('forwardBatch: a sequence of another model');
      it.seq.check(it.tokens);
      return it.seq;
    });
    if (new Set(seqs).size !== seqs.length) throw new Error('forwardBatch: a sequence appears twice');
    const be = this.backend, dim = this.config.dim, vocab = this.description.vocabSize;
    this.batch ??= {
      act: new Activations(be, this.config, PREFILL_BATCH),
      logits: be.alloc('f32', [PREFILL_BATCH, vocab], 'batch logits'),
      hostLogits: new Float32Array(0),
      positions: new Int32Array(PREFILL_BATCH),
    };
    if (this.batch.hostLogits.length < items.length * vocab) this.batch.hostLogits = new Float32Array(items.length * vocab);
    const { act, logits, hostLogits, positions } = this.batch;
    const out: Float32Array[] = new Array(items.length);
    let item = 0, done = 0, placed = 0; // tokens of items[item] already run; items whose logits are out
    while (item < items.length) {
      const parts: Part[] = [], last: [number, number][] = []; // [item, row of its last token]
      let rows = 0;
      while (rows < PREFILL_BATCH && item < items.length) {
        const toks = items[item].tokens, take = Math.min(toks.length - done, PREFILL_BATCH - rows);
        parts.push({ seq: seqs[item], ids: toks.slice(done, done + take), row: rows });
        rows += take;
        done += take;
        if (done === toks.length) {
          last.push([item, rows - 1]);
          item++;
          done = 0;
        }
      }
      const a = act.first(rows);
      runLayers(this, a, parts, positions);
      if (last.length === 0) continue;
      // The last rows' normed outputs go to rows 0 … last.length−1 of h: in one call when every row
      // is a last row (decode steps), else row by row.
      if (last.length === rows) be.rmsnorm(a.x, this.weights.outputNorm, a.h, this.config.eps);
      else last.forEach(([, row], k) => be.rmsnorm(be.view(a.x, row * dim, [1, dim]), this.weights.outputNorm, be.view(act.h, k * dim, [1, dim]), this.config.eps));
      const y = be.view(logits, 0, [last.length, vocab]);
      if (last.length === 1) be.matvec(this.weights.output, be.view(act.h, 0, [1, dim]), y);
      else be.matmul(this.weights.output, be.view(act.h, 0, [last.length, dim]), y);
      // Into one reused buffer (valid until the next call, as LanguageModel.forwardBatch says), each
      // item its own part of it: fresh megabytes per decode step cost more than the step's attention.
      const got = await be.download(y, hostLogits.subarray(placed * vocab));
      last.forEach(([i], k) => { out[i] = got.subarray(k * vocab, (k + 1) * vocab); });
      placed += last.length;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.batch) {
      this.batch.act.free();
      this.backend.free(this.batch.logits);
    }
    for (const s of [...this.sequences]) s.free();
    this.loader.freeAll();
    if (this.ownsBackend) await this.backend.close();
  }
}

/** Activation buffers for up to `rows` tokens, and views of their first m rows. */
class Activations {
  readonly x: Tensor; // [rows, dim] the residual stream
  readonly h: Tensor; // [rows, dim] normed input of a block, then the block's output
  readonly q: Tensor; // [rows, heads · headDim]
  readonly k: Tensor; // [rows, kvHeads · headDim]
  readonly v: Tensor;
  readonly att: Tensor; // [rows, heads · headDim]
  readonly gate: Tensor; // [rows, ffnDim], then silu(gate) ⊙ up
  readonly up: Tensor;
  readonly qHeads: Tensor; // q seen as [rows · heads, headDim], for the per-head norm
  readonly kHeads: Tensor; // k as [rows · kvHeads, headDim]
  private readonly views = new Map<number, Activations>();

  constructor(private readonly be: Backend, private readonly c: LlamaConfig, readonly rows: number, from?: Activations) {
    const qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim;
    const make = (t: Tensor | undefined, width: number, what: string) =>
      t ? be.view(t, 0, [rows, width]) : be.alloc('f32', [rows, width], `${what} activations [${rows}, ${width}]`);
    this.x = make(from?.x, c.dim, 'residual');
    this.h = make(from?.h, c.dim, 'normed');
    this.q = make(from?.q, qDim, 'query');
    this.k = make(from?.k, kvDim, 'key');
    this.v = make(from?.v, kvDim, 'value');
    this.att = make(from?.att, qDim, 'attention');
    this.gate = make(from?.gate, c.ffnDim, 'FFN gate');
    this.up = make(from?.up, c.ffnDim, 'FFN up');
    this.qHeads = be.view(this.q, 0, [rows * c.heads, c.headDim]);
    this.kHeads = be.view(this.k, 0, [rows * c.kvHeads, c.headDim]);
  }

  /** The same buffers seen as m rows (kept, so the decode loop makes no new views). */
  first(m: number): Activations {
    if (m === this.rows) return this;
    let v = this.views.get(m);
    if (!v) this.views.set(m, (v = new Activations(this.be, this.c, m, this)));
    return v;
  }

  free(): void {
    for (const t of [this.x, this.h, this.q, this.k, this.v, this.att, this.gate, this.up]) this.be.free(t);
  }
}

/** Some tokens of one sequence, in rows row … row+ids.length−1 of a batch. */
interface Part {
  readonly seq: LlamaSequence;
  readonly ids: readonly number[];
  readonly row: number;
}

/**
 * Runs a batch of rows through every layer: every product with a weight is one matrix pass for
 * all rows, attention runs per part over its own sequence's cache. Each part's tokens are appended
 * to its sequence.
 */
function runLayers(model: LlamaModel, a: Activations, parts: readonly Part[], positions: Int32Array): void {
  const { backend: be, config: c, weights: w } = model;
  const m = a.rows;
  const pos = positions.subarray(0, m);
  const ids: number[] = [];
  for (const p of parts) {
    for (let t = 0; t < p.ids.length; t++) pos[p.row + t] = p.seq.length + t;
    ids.push(...p.ids);
  }
  if (ids.length !== m) throw new Error(`runLayers: ${ids.length} tokens for ${m} rows`);
  const project = m === 1 ? be.matvec.bind(be) : be.matmul.bind(be);

  be.embedding(w.embedding, ids, a.x);
  for (let l = 0; l < c.layers; l++) {
    const L = w.layers[l], opt = L.opt;
    // attention block
    be.rmsnorm(a.x, L.attnNorm, a.h, c.eps);
    project(L.q, a.h, a.q);
    project(L.k, a.h, a.k);
    project(L.v, a.h, a.v);
    if (opt.qBias) be.add(a.q, opt.qBias, a.q);
    if (opt.kBias) be.add(a.k, opt.kBias, a.k);
    if (opt.vBias) be.add(a.v, opt.vBias, a.v);
    if (opt.qNorm) be.rmsnorm(a.qHeads, opt.qNorm, a.qHeads, c.eps);
    if (opt.kNorm) be.rmsnorm(a.kHeads, opt.kNorm, a.kHeads, c.eps);
    be.rope(a.q, c.ropeFreqs, pos, { heads: c.heads, headDim: c.headDim, layout: c.ropeLayout });
    be.rope(a.k, c.ropeFreqs, pos, { heads: c.kvHeads, headDim: c.headDim, layout: c.ropeLayout });
    for (const p of parts) p.seq.attendLayer(a, l, p.row, p.ids.length);
    project(L.o, a.att, a.h);
    if (opt.oBias) be.add(a.h, opt.oBias, a.h);
    be.add(a.x, a.h, a.x);
    // feed-forward block
    be.rmsnorm(a.x, L.ffnNorm, a.h, c.eps);
    project(L.gate, a.h, a.gate);
    project(L.up, a.h, a.up);
    be.swiglu(a.gate, a.up, a.gate);
    project(L.down, a.gate, a.h);
    be.add(a.x, a.h, a.x);
  }
  for (const p of parts) p.seq.length += p.ids.length;
}

class LlamaSequence implements Sequence {
  length = 0;
  readonly capacity: number;
  private readonly be: Backend;
  private readonly c: LlamaConfig;
  private readonly w: Weights;
  private readonly kCache: Tensor[] = [];
  private readonly vCache: Tensor[] = [];
  // forward()'s own buffers, made on first use: sequences the engine runs through the model's
  // forwardBatch never need them (2 MB and more per request).
  private act?: Activations;
  private readonly batchRows: number;
  private readonly positions: Int32Array;
  private logits?: Tensor; // [1, vocab]
  private allLogits?: Tensor; // [batch, vocab]
  private freed = false;

  constructor(private readonly model: LlamaModel, capacity: number, private readonly onFree: () => void) {
    this.capacity = capacity;
    this.be = model.backend;
    this.c = model.config;
    this.w = model.weights;
    const kvDim = this.c.kvHeads * this.c.headDim;
    this.batchRows = Math.min(PREFILL_BATCH, capacity);
    try {
      for (let l = 0; l < this.c.layers; l++) {
        this.kCache.push(this.be.alloc(model.kvType, [capacity, kvDim], `layer ${l} K cache [${capacity}, ${kvDim}]`));
        this.vCache.push(this.be.alloc(model.kvType, [capacity, kvDim], `layer ${l} V cache [${capacity}, ${kvDim}]`));
      }
    } catch (err) {
      for (const t of [...this.kCache, ...this.vCache]) this.be.free(t);
      throw err;
    }
    this.positions = new Int32Array(this.batchRows);
  }

  private get vocab(): number { return this.w.output.shape[0]; }

  async forward(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    this.check(tokens);
    const n = tokens.length, vocab = this.vocab;
    const all = opts.allLogits ? new Float32Array(n * vocab) : undefined;
    let last: Float32Array | undefined;
    const act = (this.act ??= new Activations(this.be, this.c, this.batchRows));
    for (let i = 0; i < n; i += act.rows) {
      const m = Math.min(act.rows, n - i);
      const a = act.first(m);
      this.layers(a, tokens.slice(i, i + m));
      if (all) all.set(await this.head(a, m, true), i * vocab);
      else if (i + m === n) last = await this.head(a, m, false);
    }
    return all ?? last!;
  }

  /** Runs m tokens through every layer, appending their keys and values at positions length … length+m−1. */
  private layers(a: Activations, ids: readonly number[]): void {
    runLayers(this.model, a, [{ seq: this, ids, row: 0 }], this.positions);
  }

  /** Appends this part's keys and values for layer l (rows of `a` from `row`) and attends over the cache. */
  attendLayer(a: Activations, l: number, row: number, m: number): void {
    const { be, c } = this;
    const kvDim = c.kvHeads * c.headDim, qDim = c.heads * c.headDim, start = this.length;
    const rows = (t: Tensor, width: number) => (row === 0 && m === a.rows ? t : be.view(t, row * width, [m, width]));
    be.copy(rows(a.k, kvDim), be.view(this.kCache[l], start * kvDim, [m, kvDim]));
    be.copy(rows(a.v, kvDim), be.view(this.vCache[l], start * kvDim, [m, kvDim]));
    be.attention(rows(a.q, qDim), this.kCache[l], this.vCache[l], rows(a.att, qDim),
      { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, start, scale: 1 / Math.sqrt(c.headDim), window: c.windows[l] });
  }

  /** Logits of the last of the m tokens in `a`, or of all of them. */
  private async head(a: Activations, m: number, every: boolean): Promise<Float32Array> {
    const { be, c, w } = this;
    if (!every || m === 1) {
      const x = m === 1 ? a.x : be.view(a.x, (m - 1) * c.dim, [1, c.dim]);
      const h = m === 1 ? a.h : be.view(a.h, 0, [1, c.dim]);
      be.rmsnorm(x, w.outputNorm, h, c.eps);
      const logits = (this.logits ??= be.alloc('f32', [1, this.vocab], 'logits'));
      be.matvec(w.output, h, logits);
      return be.download(logits);
    }
    this.allLogits ??= be.alloc('f32', [this.batchRows, this.vocab], 'logits of a prefill batch');
    const out = be.view(this.allLogits, 0, [m, this.vocab]);
    be.rmsnorm(a.x, w.outputNorm, a.h, c.eps);
    be.matmul(w.output, a.h, out);
    return be.download(out);
  }

  truncate(n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) throw new Error(`truncate: ${n} is not from 0 to the sequence's length ${this.length}`);
    this.length = n;
  }

  /** K rows then V rows [0, length) of every layer, in the cache's element type. */
  async saveState(): Promise<Uint8Array> {
    const kvDim = this.c.kvHeads * this.c.headDim, row = byteSize(this.model.kvType, kvDim)!;
    const out = new Uint8Array(2 * this.c.layers * this.length * row);
    let o = 0;
    for (const cache of [...this.kCache, ...this.vCache]) {
      const bytes = await this.be.downloadBytes(this.be.view(cache, 0, [this.length, kvDim]));
      out.set(bytes, o);
      o += bytes.length;
    }
    return out;
  }

  loadState(state: Uint8Array, length: number): void {
    const kvDim = this.c.kvHeads * this.c.headDim, row = byteSize(this.model.kvType, kvDim)!;
    if (this.length !== 0) throw new Error('loadState: the sequence is not empty');
    if (length > this.capacity) throw new Error(`loadState: ${length} tokens do not fit this sequence's capacity of ${this.capacity}`);
    if (state.length !== 2 * this.c.layers * length * row) throw new Error(`loadState: ${state.length} bytes are not the state of ${length} tokens of this model`);
    let o = 0;
    for (const cache of [...this.kCache, ...this.vCache]) {
      this.be.upload(this.be.view(cache, 0, [length, kvDim]), state.subarray(o, o + length * row));
      o += length * row;
    }
    this.length = length;
  }

  /** Validates tokens appended to this sequence (forward and forwardBatch). */
  check(tokens: readonly number[]): void {
    if (this.freed) throw new Error('forward: this sequence has been freed');
    const n = tokens.length;
    if (n === 0) throw new Error('forward: no tokens');
    if (this.length + n > this.capacity) {
      throw new Error(`context full: ${this.length} tokens + ${n} new is more than this sequence's capacity of ${this.capacity}`);
    }
    for (const t of tokens) {
      if (!(Number.isInteger(t) && t >= 0 && t < this.w.embedding.shape[0])) throw new Error(`forward: token id ${t} is outside the vocabulary (0 … ${this.w.embedding.shape[0] - 1})`);
    }
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of [...this.kCache, ...this.vCache]) this.be.free(t);
    if (this.logits) this.be.free(this.logits);
    if (this.allLogits) this.be.free(this.allLogits);
    this.act?.free();
    this.onFree();
  }
}
