/**
 * A Llama-family GGUF (llama.cpp's `llama`, `qwen2`, `qwen3` architectures; llama.cpp's converter
 * writes Mistral models as `llama`): hyperparameters from `<arch>.*` metadata, tensors by
 * llama.cpp's names, the vocabulary from `tokenizer.ggml.*`.
 *
 * RoPE: llama.cpp rotates adjacent pairs for `llama` (its converter permutes Hugging Face's Q/K
 * rows into that order) and NeoX halves for `qwen2`/`qwen3` (stored unpermuted). Llama 3 scaling
 * arrives as the factor tensor `rope_freqs.weight`, which divides the frequencies.
 */
import type { RopeLayout } from '../kernels/backend.js';
import type { GGUFFile, GGUFValue } from '../formats/gguf.js';
import { tokenizerFromGGUF } from '../tokenizer/index.js';
import type { LlamaSource, LlamaTensorNames, OptionalLayerTensor } from './llama.js';
import { divideFreqs, ropeTable, type RopeScaling } from './rope-scaling.js';

const LAYOUT: Readonly<Record<string, RopeLayout>> = { llama: 'interleaved', qwen2: 'neox', qwen3: 'neox' };
const REQUIRES: Readonly<Record<string, readonly OptionalLayerTensor[]>> = { qwen2: ['qBias', 'kBias', 'vBias'], qwen3: ['qNorm', 'kNorm'] };

/** GGUF architectures this loader reads. */
export const GGUF_LLAMA_ARCHITECTURES = Object.keys(LAYOUT);

export const GGUF_LLAMA_NAMES: LlamaTensorNames = {
  embedding: 'token_embd.weight',
  outputNorm: 'output_norm.weight',
  output: 'output.weight',
  layer: (i) => {
    const b = `blk.${i}.`;
    return {
      attnNorm: `${b}attn_norm.weight`, q: `${b}attn_q.weight`, k: `${b}attn_k.weight`, v: `${b}attn_v.weight`,
      o: `${b}attn_output.weight`, ffnNorm: `${b}ffn_norm.weight`, gate: `${b}ffn_gate.weight`, up: `${b}ffn_up.weight`,
      down: `${b}ffn_down.weight`,
      optional: {
        qBias: `${b}attn_q.bias`, kBias: `${b}attn_k.bias`, vBias: `${b}attn_v.bias`, oBias: `${b}attn_output.bias`,
        qNorm: `${b}attn_q_norm.weight`, kNorm: `${b}attn_k_norm.weight`,
      },
    };
  },
};

export function llamaFromGGUF(file: GGUFFile): LlamaSource {
  const arch = file.metadata.get('general.architecture');
  if (typeof arch !== 'string' || !(arch in LAYOUT)) throw new Error(`${file.path}: architecture '${String(arch)}' is not a Llama-family one (${GGUF_LLAMA_ARCHITECTURES.join(', ')})`);
  const get = (key: string): GGUFValue | undefined => file.metadata.get(`${arch}.${key}`);
  const num = (key: string, fallback?: number): number => {
    const v = get(key);
    if (v === undefined) {
      if (fallback === undefined) throw new Error(`${file.path}: metadata ${arch}.${key} is missing`);
      return fallback;
    }
    if (typeof v !== 'number') throw new Error(`${file.path}: metadata ${arch}.${key} must be a number, found ${Array.isArray(v) ? 'an array' : typeof v}`);
    return v;
  };
  const dim = num('embedding_length'), heads = num('attention.head_count');
  const kvHeads = num('attention.head_count_kv', heads);
  const headDim = num('attention.key_length', dim / heads);
  if (num('attention.value_length', headDim) !== headDim) throw new Error(`${file.path}: key_length ${headDim} and value_length ${num('attention.value_length')} differ; minke needs them equal`);
  if (!Number.isInteger(headDim) || heads % kvHeads !== 0) throw new Error(`${file.path}: ${heads} heads, ${kvHeads} KV heads and head size ${headDim} do not fit together`);
  const ropeDim = num('rope.dimension_count', headDim);
  if (ropeDim !== headDim) throw new Error(`${file.path}: partial RoPE (rope.dimension_count ${ropeDim} of head size ${headDim}) is not supported`);
  const base = num('rope.freq_base', 10000);

  // As llama.cpp: the factor (or its old key) scales every frequency by 1/factor; only YaRN and
  // LongRoPE would change more, and those are not read here.
  const scaleType = get('rope.scaling.type') ?? 'linear';
  if (scaleType !== 'linear' && scaleType !== 'none') {
    throw new Error(`${file.path}: RoPE scaling '${String(scaleType)}' is not supported (linear, or Llama 3's rope_freqs.weight)`);
  }
  const factor = num('rope.scaling.factor', 0) || num('rope.scale_linear', 0);
  const scaling: RopeScaling = factor && factor !== 1 ? { type: 'linear', factor } : { type: 'none' };
  const table = ropeTable(base, headDim, scaling);
  let freqs = table.freqs, summary = table.summary;
  const factors = file.tensors.get('rope_freqs.weight');
  if (factors) {
    if (factors.dtype !== 'f32' || factors.shape.length !== 1 || factors.shape[0] !== headDim / 2) {
      throw new Error(`${file.path}: rope_freqs.weight must be f32 [${headDim / 2}], found ${factors.dtype} [${factors.shape.join(', ')}]`);
    }
    const bytes = file.read('rope_freqs.weight');
    freqs = divideFreqs(freqs, new Float32Array(bytes.buffer, bytes.byteOffset, headDim / 2));
    summary = summary === 'none' ? 'per-channel factors (rope_freqs.weight)' : `${summary}, per-channel factors (rope_freqs.weight)`;
  }
  const layers = num('block_count');
  const window = num('attention.sliding_window', 0);
  return {
    file,
    names: GGUF_LLAMA_NAMES,
    tokenizer: tokenizerFromGGUF(file.metadata),
    config: {
      architecture: arch, dim, layers, heads, kvHeads, headDim,
      ffnDim: num('feed_forward_length'),
      eps: num('attention.layer_norm_rms_epsilon'),
      contextLength: num('context_length'),
      ropeLayout: LAYOUT[arch],
      ropeFreqs: freqs,
      windows: new Array<number>(layers).fill(window),
      requires: REQUIRES[arch] ?? [],
      details: { source: 'gguf', ropeBase: base, ropeScaling: summary },
    },
  };
}
