/**
 * The Backend: what a model's forward pass is written against. A backend owns device memory and
 * runs ops on tensors that live there; the model never touches the bytes. The CPU backend
 * (cpu/cpu-backend.ts) runs WASM SIMD kernels over one shared memory with a worker pool.
 *
 * Conventions:
 * - Shapes are row-major, outermost first; "rows" are everything but the last dimension.
 * - Ops write into tensors the caller allocated (no allocation in the decode loop) and run in
 *   call order. Results come back through the async readers (download, argmax, topk), so a backend
 *   may queue work; the CPU backend finishes each op before returning.
 * - Activations are f32. Matrix weights come in any format of the kernel registry
 *   (cpu/registry.ts): f32/f16/bf16, GGUF blocks, FP8 with 128×128 tile scales, FP4 with 1×32 scales.
 */
import type { DType, WeightFormat } from '../tensor/dtype.js';

/** A tensor in a backend's memory. Handles are only meaningful to the backend that made them. */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** For scaled weight formats: the block-scale tensor and the tile each scale covers. */
  readonly scale?: TensorScale;
}

export interface TensorScale {
  readonly tensor: Tensor;
  /** Rows and columns of the weight one scale covers (128×128 for FP8 tiles, 1×32 for FP4). */
  readonly rows: number;
  readonly cols: number;
}

/**
 * Where weights come from: fills `dst` with the named tensor's bytes (formats/weights.ts's
 * WeightFile is one). May return the bytes it wrote, which lets the backend check their count.
 */
export interface WeightSource {
  read(name: string, dst: Uint8Array): Uint8Array | void | Promise<Uint8Array | void>;
}

export interface WeightSpec {
  /** Tensor name in the source. */
  readonly name: string;
  readonly format: WeightFormat;
  /** [rows, cols] of the weight (rows = outputs). */
  readonly shape: readonly [number, number];
  /** Name of the block-scale tensor, for formats that have one (V4 `*.scale`, V3 `*.weight_scale_inv`). */
  readonly scaleName?: string;
  /**
   * The weight is only ever passed to matvec / matmul (never viewed by rows or read back), so the
   * backend may store it in a layout of its own (the CPU backend's column panels).
   */
  readonly matrixOnly?: boolean;
}

export type RopeLayout = 'interleaved' | 'neox';

export interface RopeOptions {
  /** Heads in each row of `x`; each row is heads × headDim values. */
  readonly heads: number;
  readonly headDim: number;
  /** Channels rotated at the end of each head (DeepSeek-V4: 64 of 512); default headDim. */
  readonly ropeDim?: number;
  /** interleaved: pairs (2i, 2i+1) as DeepSeek/GPT-J; neox: pairs (i, i + ropeDim/2) as Llama HF. */
  readonly layout: RopeLayout;
  /** Rotate by −θ (V4 de-rotates the attention output). */
  readonly inverse?: boolean;
}

export interface AttentionOptions {
  /** Query heads in each row of q and out; each row is heads × headDim values. */
  readonly heads: number;
  /** Key/value heads in each cache row (heads is a multiple: query head h reads KV head h / (heads / kvHeads)). */
  readonly kvHeads: number;
  readonly headDim: number;
  /** Cache position of q's first row: row t is position start + t and sees the positions up to it. */
  readonly start: number;
  /** Multiplies q · k before the softmax (1/sqrt(headDim) for plain attention). */
  readonly scale: number;
  /** Sliding window: position p sees only positions above p − window; absent or 0 for none. */
  readonly window?: number;
}

export interface TopK {
  /** [rows, k], largest first; ties keep the earlier index first. */
  readonly values: Float32Array;
  readonly indices: Int32Array;
}

export interface Backend {
  readonly name: string;
  /** Threads the backend computes with. */
  readonly threads: number;

  /** A new tensor, zero-filled. `what` names it in out-of-memory errors. */
  alloc(dtype: DType, shape: readonly number[], what?: string): Tensor;
  /** A matrix weight in `format` ([rows, cols]) with its scale tensor allocated beside it. */
  allocWeight(format: WeightFormat, shape: readonly [number, number], what?: string): Tensor;
  /** Releases a tensor made by alloc/allocWeight/load (and its scales). Views are not freed. */
  free(t: Tensor): void;
  /** A view of `t`'s elements from `offset` (flat, a whole number of blocks) with `shape`; no copy. */
  view(t: Tensor, offset: number, shape: readonly number[]): Tensor;
  /** Rows [row0, row1) of a 2-D weight, with the matching slice of its scales (tile-aligned). */
  rows(t: Tensor, row0: number, row1: number): Tensor;

  /** Copies host data in; its byte length must equal the tensor's. */
  upload(t: Tensor, data: ArrayBufferView): void;
  /**
   * An f32 tensor's values: a fresh array, or the first elements of `into` when given (a buffer the
   * caller reuses: a fresh array per call costs page faults once it passes malloc's mmap threshold).
   */
  download(t: Tensor, into?: Float32Array): Promise<Float32Array>;
  /** A tensor's raw bytes. */
  downloadBytes(t: Tensor): Promise<Uint8Array>;
  /** Reads a tensor of any dtype from `src` straight into backend memory. */
  load(src: WeightSource, name: string, dtype: DType, shape: readonly number[]): Promise<Tensor>;
  /** Reads a matrix weight and, for scaled formats, its scale tensor. */
  loadWeight(src: WeightSource, spec: WeightSpec): Promise<Tensor>;

  /** y[rows] = W[rows, k] · x[k]. */
  matvec(w: Tensor, x: Tensor, y: Tensor): void;
  /** y[n, rows] = x[n, k] · Wᵀ: one pass over the weights serves all n tokens. */
  matmul(w: Tensor, x: Tensor, y: Tensor): void;
  /** Per row: y = w ⊙ x / sqrt(mean(x²) + eps); `w` null for the weightless form. */
  rmsnorm(x: Tensor, w: Tensor | null, y: Tensor, eps: number): void;
  /**
   * Rotates `x` [n, heads·headDim] in place: token row t at position positions[t], angles
   * θ_i = f32(p · freqs[i]) for i < ropeDim/2. The frequency table (plain, YaRN, Llama-3) is the
   * model's business; rope-freqs.ts computes the plain and YaRN ones.
   */
  rope(x: Tensor, freqs: Float32Array, positions: ArrayLike<number>, opts: RopeOptions): void;
  /** Per row: y = softmax(scale · x). */
  softmax(x: Tensor, y: Tensor, scale?: number): void;
  silu(x: Tensor, y: Tensor): void;
  /** y = silu(min(g, L)) · clamp(u, −L, L); no clamp when `limit` is absent or ≤ 0 (V4 §7.3). */
  swiglu(g: Tensor, u: Tensor, y: Tensor, limit?: number): void;
  /** y = a + b; b has a's shape or is one row broadcast over a's rows. */
  add(a: Tensor, b: Tensor, y: Tensor): void;
  /** y = a ⊙ b; b has a's shape or is one row broadcast over a's rows. */
  mul(a: Tensor, b: Tensor, y: Tensor): void;
  /** y[t] = table[ids[t]] as f32, for a table of any dtype. */
  embedding(table: Tensor, ids: ArrayLike<number>, y: Tensor): void;
  /** y = x converted to y's dtype (f32 → f32 or f16), same element count: how KV-cache rows are stored. */
  copy(x: Tensor, y: Tensor): void;
  /**
   * Causal attention over a KV cache: for q [n, heads·headDim] (f32) and caches [capacity,
   * kvHeads·headDim] (f32 or f16, the same dtype) whose rows up to start + n − 1 are filled,
   * out[t, h] = softmax_j(scale · q[t, h] · K[j, g]) · V[j, g] over the positions j token t sees.
   */
  attention(q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttentionOptions): void;
  /**
   * DeepSeek-V4 sparse attention with sink (V4 spec §6.6), one KV head shared by all query heads:
   * for q [n, heads·d], kv [rows, d] (each row is key and value), candidate rows [n, count]
   * (host memory; −1 = skip) and sink [heads], all f32 but `rows`:
   * out[t, h] = Σ_v exp(z_v)·v / (Σ_v exp(z_v) + exp(sink[h])), z_v = scale·(q[t, h]·v), over
   * token t's candidates v; 0 where a token has none. Any count works (long HCA lists included).
   */
  sparseAttention(q: Tensor, kv: Tensor, rows: Int32Array, count: number, sink: Tensor, out: Tensor, scale: number): void;
  /**
   * DeepSeek-V4 lightning-indexer scores (V4 spec §6.5): for q [n, heads·d], w [n, heads],
   * keys [entries, d] and out [n, cols], all f32, and one visible count per token (host memory,
   * each ≤ entries and ≤ cols):
   * out[t, e] = Σ_h w[t, h] · max(0, q[t, h] · keys[e]) for e < visible[t], −Infinity for
   * visible[t] ≤ e < cols. Each dot sums d in one fixed order; heads are accumulated in order.
   */
  indexerScores(q: Tensor, w: Tensor, keys: Tensor, visible: Int32Array, heads: number, out: Tensor): void;
  /** Per row: index of the largest value (first on ties, NaN skipped). */
  argmax(x: Tensor): Promise<Int32Array>;
  /** Per row: the k largest values and their indices. */
  topk(x: Tensor, k: number): Promise<TopK>;

  close(): Promise<void>;
}

/** Elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The weight format of a tensor: its dtype plus, when scaled, the scale dtype and tile. */
export function formatOf(t: Tensor): WeightFormat {
  if (!t.scale) return { dtype: t.dtype };
  const sd = t.scale.tensor.dtype;
  if (sd !== 'e8m0' && sd !== 'f32') throw new Error(`scale tensor of dtype ${sd} is not e8m0 or f32`);
  return { dtype: t.dtype, scale: { dtype: sd, rows: t.scale.rows, cols: t.scale.cols } };
}

/** The first n elements of a download destination, or an error when it is too short. */
export function intoView(into: Float32Array, n: number): Float32Array {
  if (into.length < n) throw new Error(`download: the destination holds ${into.length} values, the tensor ${n}`);
  return into.subarray(0, n);
}
