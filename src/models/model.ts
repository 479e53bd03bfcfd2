/**
 * What every architecture file exports to the engine: a loaded model that hands out sequences.
 * A sequence owns its inference state (KV cache for dense models; latent cache for V3; window +
 * compressed + indexer state for V4) and turns tokens into logits.
 */
import type { BackendKind } from '../kernels/create-backend.js';
import type { Backend } from '../kernels/backend.js';
import type { Tokenizer } from '../tokenizer/index.js';

export interface ModelDescription {
  /** e.g. 'llama', 'qwen2', 'qwen3', 'mistral', 'deepseek_v4'. */
  readonly architecture: string;
  readonly parameters: number;
  /** Bytes of weights by storage format (dtype name or formatName()). */
  readonly weightBytes: Readonly<Record<string, number>>;
  readonly contextLength: number;
  /** Bytes of inference state one token of context takes, and the total for the sequence's context. */
  readonly stateBytesPerToken: number;
  readonly layers: number;
  readonly vocabSize: number;
  /** MTP blocks whose drafts the sequence's `mtp()` gives (DeepSeek-V3/V4); absent or 0 for none. */
  readonly mtpLayers?: number;
  /** DSpark draft stages whose block drafts the sequence's `dspark()` gives (DeepSeek-V4.1); absent or 0 for none. */
  readonly dsparkStages?: number;
  /** Free-form architecture facts worth printing (heads, dims, rope, …). */
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

export interface Sequence {
  /** Tokens already in the state. */
  readonly length: number;
  /** Largest number of tokens this sequence can hold. */
  readonly capacity: number;
  /**
   * Appends `tokens` at positions length … length+n−1 and returns logits [vocab] of the last one,
   * or [n × vocab] of every one with `allLogits`. Throws a clear error past capacity.
   */
  forward(tokens: readonly number[], opts?: { allLogits?: boolean }): Promise<Float32Array>;
  /** Forgets every token from position n on (n ≤ length). */
  truncate(n: number): void;
  /**
   * The whole inference state as bytes (the prefix cache stores them); `loadState` on an empty
   * sequence of the same model, with enough capacity, restores exactly this state and length.
   */
  saveState?(): Promise<Uint8Array>;
  loadState?(state: Uint8Array, length: number): void;
  /** Releases the state's memory. */
  free(): void;
}

/**
 * A sequence of a model with an MTP block (DeepSeek-V3/V4, spec §8.1): `mtp(next)` takes the trunk
 * outputs of positions mtpLength … mtpLength+n−1, pairs row t with next[t] (the token at the
 * following position) and returns the draft logits [n, vocab] for the position after that.
 */
export interface MtpSequence extends Sequence {
  readonly mtpLength: number;
  mtp(next: readonly number[]): Promise<Float32Array>;
}

/**
 * A sequence of a model with DSpark draft stages (DeepSeek-V4.1, spec §8): `dspark(anchor, pick)`
 * drafts the tokens after `anchor` (the token following the last one in the state) without changing
 * the state; `pick` chooses each draft token from its logits row (default argmax).
 */
export interface DsparkSequence extends Sequence {
  dspark(anchor: number, pick?: (logits: Float32Array, k: number) => number): Promise<DsparkDraft>;
}

/** One DSpark draft round (deepseek-v41.md §8.1). */
export interface DsparkDraft {
  /** [anchor, x_1 … x_γ]: x_k is the guess for the k-th position after the anchor's. */
  readonly ids: number[];
  /** [γ, vocab]: row k is the distribution x_{k+1} was drawn from (base logits + Markov bias). */
  readonly logits: Float32Array;
  /** [γ] confidence logits (sigmoid gives the probability that draft k is right given the ones before). */
  readonly confidence: Float32Array;
}

/** Tokens to append to one sequence in a batched forward. */
export interface BatchItem {
  readonly seq: Sequence;
  readonly tokens: readonly number[];
  /** Every token's logits, [n × vocab] (default: the last token's). */
  readonly allLogits?: boolean;
}

export interface LanguageModel {
  readonly description: ModelDescription;
  readonly tokenizer: Tokenizer;
  readonly backend: Backend;
  /** A new empty sequence; `contextLength` defaults to the model's (capped by options at load). */
  newSequence(opts?: { contextLength?: number }): Sequence;
  /**
   * Appends each item's tokens to its sequence in one batched pass (one pass over the weights for
   * all rows) and returns each item's last-token logits. The arrays may share one buffer that the
   * next call overwrites: read them before calling again. Models without it are run item by item
   * (engine/batch.ts).
   */
  forwardBatch?(items: readonly BatchItem[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export interface LoadOptions {
  /** Worker threads of the CPU backend (default: all cores). */
  readonly threads?: number;
  /** KV cache element type (dense models). */
  readonly kvType?: 'f32' | 'f16';
  /** Cap on the context sequences get by default. */
  readonly contextLength?: number;
  /** Called while weights load: bytes done of total. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Backend to load into; default a new one of `backendKind` (default 'cpu'). A backend passed in
   * stays open after the model's close() (its owner closes it).
   */
  readonly backend?: Backend;
  readonly backendKind?: BackendKind;
  /**
   * DeepSeek numerics. `actQuant`: FP8 rounding of the input of every FP8/FP4 product — V4
   * default on (its trained behaviour, spec §10.3), V3 default off (the reference's default
   * `gemm_impl = "bf16"`). `kvQuant` (V4): the quantisation round trips inside attention, default on.
   */
  readonly actQuant?: boolean;
  readonly kvQuant?: boolean;
  /** DeepSeek-V3 attention form: 'absorb' (default, as the reference) or 'naive' (for checks). */
  readonly mlaForm?: 'absorb' | 'naive';
  /** Called with warnings worth showing the user (e.g. a checkpoint larger than this machine's memory). */
  readonly onWarning?: (message: string) => void;
  /** A separate tokenizer file (llama2.c `tokenizer.bin`); default: looked for beside the model. */
  readonly tokenizerPath?: string;
  /**
   * DeepSeek-V4.1 without its tokenizer (test checkpoints): the Engram compressed-token map
   * (spec §6A.2) as a file of little-endian int32, one per vocabulary id.
   */
  readonly engramMapPath?: string;
}
