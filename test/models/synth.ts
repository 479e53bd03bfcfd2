/**
 * Tiny random Llama-family models written to disk twice: as a Hugging Face directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json) and as a GGUF the way llama.cpp's
 * converter writes one (llama names and metadata; a llama's Q/K rows permuted into adjacent RoPE
 * pairs; Llama 3 scaling as the `rope_freqs.weight` factors; norms and biases kept f32).
 *
 * Weights are kept in Hugging Face layout ([out, in] rows, NeoX Q/K order) as f64-exact values
 * (rounded to f16 first when the model is stored in f16), for the reference forward.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GGUFEntry } from '../../src/formats/gguf-writer.js';
import { writeGGUF } from '../../src/formats/gguf-writer.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { F16_TO_F32, f32ToF16 } from '../../src/tensor/float.js';
import { rng } from '../kernels/util.js';

export interface Llama3Spec {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContext: number;
}

export interface SynthSpec {
  readonly arch: 'llama' | 'mistral' | 'qwen2' | 'qwen3';
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffn: number;
  readonly eps: number;
  readonly ropeTheta: number;
  readonly llama3?: Llama3Spec;
  /** Sliding window (mistral, HF form only: llama.cpp's GGUF llama has no such key). */
  readonly window?: number;
  /** No lm_head: the embedding is the output head. */
  readonly tied: boolean;
  /** Matrix (and HF norm/bias) storage type. */
  readonly dtype: 'f32' | 'f16';
  readonly contextLength: number;
  readonly seed: number;
}

export interface SynthLayer {
  readonly attnNorm: Float32Array;
  readonly q: Float32Array; readonly k: Float32Array; readonly v: Float32Array; readonly o: Float32Array;
  readonly qBias?: Float32Array; readonly kBias?: Float32Array; readonly vBias?: Float32Array;
  readonly qNorm?: Float32Array; readonly kNorm?: Float32Array;
  readonly ffnNorm: Float32Array;
  readonly gate: Float32Array; readonly up: Float32Array; readonly down: Float32Array;
}

export interface SynthWeights {
  readonly vocab: number;
  readonly embed: Float32Array; // [vocab, dim]
  readonly layers: readonly SynthLayer[];
  readonly norm: Float32Array;
  readonly lmHead?: Float32Array; // [vocab, dim]
}

// ---- vocabularies ------------------------------------------------------------------------------

const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
const SPM_PIECES = ['▁', 'a', 'b', 'h', 'i', '▁a', '▁h', 'hi', '▁hi', 'ab'];
const SPM_MERGES = ['▁ a', '▁ h', 'h i', '▁ hi', 'a b'];

/** SentencePiece-style: <unk>, <s>, </s>, 256 byte tokens, then SPM_PIECES. */
const spmTokens = () => ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => hex(b)), ...SPM_PIECES];

/** GPT-2's byte → character table (bytes_to_unicode). */
function byteChars(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : 256 + n++));
}
const BPE_MERGES = [['Ġ', 'h'], ['i', 'l'], ['Ġh', 'i'], ['Ġhi', 'l']];
/** Byte-level: the 256 byte characters, one token per merge, then <|endoftext|>. */
const bpeTokens = () => [...byteChars(), ...BPE_MERGES.map(([a, b]) => a + b), '<|endoftext|>'];

const isSpm = (s: SynthSpec) => s.arch === 'llama' || s.arch === 'mistral';
export const vocabSize = (s: SynthSpec) => (isSpm(s) ? spmTokens() : bpeTokens()).length;

// ---- weights -----------------------------------------------------------------------------------

export function synthWeights(s: SynthSpec): SynthWeights {
  const r = rng(s.seed);
  const exact = (v: number) => (s.dtype === 'f16' ? F16_TO_F32[f32ToF16(v)] : v);
  const mat = (rows: number, cols: number) => Float32Array.from({ length: rows * cols }, () => exact((2 * r() - 1) * Math.sqrt(3 / cols)));
  const vec = (n: number, center: number, spread: number) => Float32Array.from({ length: n }, () => exact(center + spread * (2 * r() - 1)));
  const vocab = vocabSize(s), qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
  const bias = s.arch === 'qwen2', qkNorm = s.arch === 'qwen3';
  const layers = Array.from({ length: s.layers }, (): SynthLayer => ({
    attnNorm: vec(s.dim, 1, 0.3),
    q: mat(qDim, s.dim), k: mat(kvDim, s.dim), v: mat(kvDim, s.dim), o: mat(s.dim, qDim),
    ...(bias ? { qBias: vec(qDim, 0, 0.5), kBias: vec(kvDim, 0, 0.5), vBias: vec(kvDim, 0, 0.5) } : {}),
    ...(qkNorm ? { qNorm: vec(s.headDim, 1, 0.3), kNorm: vec(s.headDim, 1, 0.3) } : {}),
    ffnNorm: vec(s.dim, 1, 0.3),
    gate: mat(s.ffn, s.dim), up: mat(s.ffn, s.dim), down: mat(s.dim, s.ffn),
  }));
  return {
    vocab,
    embed: vec(vocab * s.dim, 0, 1),
    layers,
    norm: vec(s.dim, 1, 0.3),
    lmHead: s.tied ? undefined : mat(vocab, s.dim),
  };
}

function bytesOf(values: Float32Array, dtype: 'f32' | 'f16'): Uint8Array {
  const out = dtype === 'f32' ? Float32Array.from(values) : Uint16Array.from(values, f32ToF16);
  return new Uint8Array(out.buffer);
}

// ---- Hugging Face form ---------------------------------------------------------------------------

export function writeHF(dir: string, s: SynthSpec, w: SynthWeights): void {
  fs.mkdirSync(dir, { recursive: true });
  const config: Record<string, unknown> = {
    model_type: s.arch, hidden_size: s.dim, intermediate_size: s.ffn, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, head_dim: s.headDim, rms_norm_eps: s.eps,
    rope_theta: s.ropeTheta, max_position_embeddings: s.contextLength, vocab_size: w.vocab,
    tie_word_embeddings: s.tied, torch_dtype: s.dtype === 'f16' ? 'float16' : 'float32',
    rope_scaling: s.llama3 ? {
      rope_type: 'llama3', factor: s.llama3.factor, low_freq_factor: s.llama3.lowFreqFactor,
      high_freq_factor: s.llama3.highFreqFactor, original_max_position_embeddings: s.llama3.originalContext,
    } : null,
    sliding_window: s.window ?? null,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 1));
  const t = (name: string, shape: number[], values: Float32Array) => ({ name, dtype: s.dtype, shape, data: bytesOf(values, s.dtype) });
  const qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
  const tensors = [t('model.embed_tokens.weight', [w.vocab, s.dim], w.embed)];
  w.layers.forEach((L, i) => {
    const b = `model.layers.${i}.`;
    tensors.push(
      t(`${b}input_layernorm.weight`, [s.dim], L.attnNorm),
      t(`${b}self_attn.q_proj.weight`, [qDim, s.dim], L.q), t(`${b}self_attn.k_proj.weight`, [kvDim, s.dim], L.k),
      t(`${b}self_attn.v_proj.weight`, [kvDim, s.dim], L.v), t(`${b}self_attn.o_proj.weight`, [s.dim, qDim], L.o),
      t(`${b}post_attention_layernorm.weight`, [s.dim], L.ffnNorm),
      t(`${b}mlp.gate_proj.weight`, [s.ffn, s.dim], L.gate), t(`${b}mlp.up_proj.weight`, [s.ffn, s.dim], L.up),
      t(`${b}mlp.down_proj.weight`, [s.dim, s.ffn], L.down),
    );
    const optional: [string, Float32Array | undefined][] = [
      ['self_attn.q_proj.bias', L.qBias], ['self_attn.k_proj.bias', L.kBias], ['self_attn.v_proj.bias', L.vBias],
      ['self_attn.q_norm.weight', L.qNorm], ['self_attn.k_norm.weight', L.kNorm],
    ];
    for (const [name, values] of optional) if (values) tensors.push(t(b + name, [values.length], values));
  });
  tensors.push(t('model.norm.weight', [s.dim], w.norm));
  if (w.lmHead) tensors.push(t('lm_head.weight', [w.vocab, s.dim], w.lmHead));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);

  let tokenizer: object, tokConfig: object;
  if (isSpm(s)) {
    const vocab = Object.fromEntries(spmTokens().map((tok, id) => [tok, id]));
    tokenizer = {
      version: '1.0',
      added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null, post_processor: null,
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
      model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: SPM_MERGES },
    };
    tokConfig = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
  } else {
    const tokens = bpeTokens();
    const eos = tokens.length - 1;
    tokenizer = {
      version: '1.0',
      added_tokens: [{ id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab: Object.fromEntries(tokens.slice(0, eos).map((tok, id) => [tok, id])), merges: BPE_MERGES.map(([a, b]) => `${a} ${b}`) },
    };
    tokConfig = { add_bos_token: false, bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>' };
  }
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokConfig));
}

// ---- GGUF form ---------------------------------------------------------------------------------

/**
 * convert_hf_to_gguf's `permute` for a llama's Q/K: within each head, row s·(headDim/2) + i (NeoX
 * half s, pair i) moves to row 2i + s (adjacent pair i). Applies to bias vectors too (cols 1).
 */
export function permuteForGGUF(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length), half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const from = h * headDim + s * half + i, to = h * headDim + 2 * i + s;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** The converter's Llama 3 rope factors (LlamaModel.generate_extra_tensors), from its definition. */
export function llama3RopeFactors(theta: number, headDim: number, l3: Llama3Spec): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = l3.originalContext / l3.lowFreqFactor, highWavelen = l3.originalContext / l3.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = l3.factor;
    else {
      const smooth = (l3.originalContext / wavelen - l3.lowFreqFactor) / (l3.highFreqFactor - l3.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / l3.factor + smooth);
    }
  }
  return out;
}

export function writeGGUFModel(file: string, s: SynthSpec, w: SynthWeights): void {
  const arch = s.arch === 'mistral' ? 'llama' : s.arch; // the converter writes Mistral as llama
  const permute = arch === 'llama';
  const u32 = (value: number): GGUFEntry => ({ type: 'u32', value });
  const f32 = (value: number): GGUFEntry => ({ type: 'f32', value });
  const meta: [string, GGUFEntry][] = [
    ['general.architecture', { type: 'string', value: arch }],
    [`${arch}.context_length`, u32(s.contextLength)], [`${arch}.embedding_length`, u32(s.dim)],
    [`${arch}.block_count`, u32(s.layers)], [`${arch}.feed_forward_length`, u32(s.ffn)],
    [`${arch}.attention.head_count`, u32(s.heads)], [`${arch}.attention.head_count_kv`, u32(s.kvHeads)],
    [`${arch}.attention.key_length`, u32(s.headDim)], [`${arch}.attention.value_length`, u32(s.headDim)],
    [`${arch}.rope.dimension_count`, u32(s.headDim)], [`${arch}.rope.freq_base`, f32(s.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(s.eps)],
  ];
  if (isSpm(s)) {
    const tokens = spmTokens();
    meta.push(
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: { array: 'string' }, value: tokens }],
      ['tokenizer.ggml.scores', { type: { array: 'f32' }, value: tokens.map((_, i) => (i < 259 ? 0 : -(i - 258))) }],
      ['tokenizer.ggml.token_type', { type: { array: 'i32' }, value: tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)) }],
    );
  } else {
    const tokens = bpeTokens();
    meta.push(
      ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
      ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
      ['tokenizer.ggml.tokens', { type: { array: 'string' }, value: tokens }],
      ['tokenizer.ggml.token_type', { type: { array: 'i32' }, value: tokens.map((_, i) => (i === tokens.length - 1 ? 3 : 1)) }],
      ['tokenizer.ggml.merges', { type: { array: 'string' }, value: BPE_MERGES.map(([a, b]) => `${a} ${b}`) }],
      ['tokenizer.ggml.eos_token_id', u32(tokens.length - 1)],
      ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    );
  }
  const mat = (name: string, shape: number[], values: Float32Array) => ({ name, dtype: s.dtype, shape, data: bytesOf(values, s.dtype) });
  const vec = (name: string, values: Float32Array) => ({ name, dtype: 'f32' as const, shape: [values.length], data: bytesOf(values, 'f32') });
  const qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
  const pq = (x: Float32Array, cols: number) => (permute ? permuteForGGUF(x, s.heads, s.headDim, cols) : x);
  const pk = (x: Float32Array, cols: number) => (permute ? permuteForGGUF(x, s.kvHeads, s.headDim, cols) : x);
  const tensors = [mat('token_embd.weight', [w.vocab, s.dim], w.embed), vec('output_norm.weight', w.norm)];
  if (w.lmHead) tensors.push(mat('output.weight', [w.vocab, s.dim], w.lmHead));
  if (s.llama3) tensors.push(vec('rope_freqs.weight', llama3RopeFactors(s.ropeTheta, s.headDim, s.llama3)));
  w.layers.forEach((L, i) => {
    const b = `blk.${i}.`;
    tensors.push(
      vec(`${b}attn_norm.weight`, L.attnNorm),
      mat(`${b}attn_q.weight`, [qDim, s.dim], pq(L.q, s.dim)), mat(`${b}attn_k.weight`, [kvDim, s.dim], pk(L.k, s.dim)),
      mat(`${b}attn_v.weight`, [kvDim, s.dim], L.v), mat(`${b}attn_output.weight`, [s.dim, qDim], L.o),
      vec(`${b}ffn_norm.weight`, L.ffnNorm),
      mat(`${b}ffn_gate.weight`, [s.ffn, s.dim], L.gate), mat(`${b}ffn_up.weight`, [s.ffn, s.dim], L.up),
      mat(`${b}ffn_down.weight`, [s.dim, s.ffn], L.down),
    );
    if (L.qBias) tensors.push(vec(`${b}attn_q.bias`, pq(L.qBias, 1)));
    if (L.kBias) tensors.push(vec(`${b}attn_k.bias`, pk(L.kBias, 1)));
    if (L.vBias) tensors.push(vec(`${b}attn_v.bias`, L.vBias));
    if (L.qNorm) tensors.push(vec(`${b}attn_q_norm.weight`, L.qNorm));
    if (L.kNorm) tensors.push(vec(`${b}attn_k_norm.weight`, L.kNorm));
  });
  writeGGUF(file, { metadata: meta, tensors });
}
