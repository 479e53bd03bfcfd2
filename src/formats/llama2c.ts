/**
 * llama2.c checkpoints (`run.c`'s legacy "version 0" export, e.g. stories260K.bin): a header of
 * seven i32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len — then f32
 * weights back to back, each [rows, cols] row-major (rows = outputs):
 *
 *   token_embedding_table [vocab, dim]      rms_att_weight [layers, dim]
 *   wq [layers, dim, dim]   wk, wv [layers, kvDim, dim]   wo [layers, dim, dim]
 *   rms_ffn_weight [layers, dim]
 *   w1 [layers, hidden, dim]   w2 [layers, dim, hidden]   w3 [layers, hidden, dim]
 *   rms_final_weight [dim]
 *   freq_cis_real, freq_cis_imag [seq_len, headSize/2] (legacy RoPE tables, not exposed)
 *   wcls [vocab, dim], present only when vocab_size is negative (else the embedding is shared)
 *
 * kvDim = n_kv_heads · dim / n_heads. Per-layer tensors are exposed one layer at a time, named
 * `<field>.<layer>` (`wq.0`, `w2.4`); the others by their field name.
 */
import { FormatError } from './errors.js';
import { openFileSource } from './source.js';
import { checkOverlaps, tensorReaders, type TensorInfo, type WeightFile } from './weight-file.js';

export interface Llama2cConfig {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  /** The classifier is the token embedding (vocab_size was positive). */
  readonly sharedClassifier: boolean;
}

export interface Llama2cFile extends WeightFile {
  readonly config: Llama2cConfig;
}

const HEADER_BYTES = 28;
/** "ak42": the magic of export.py's later versions, which run.c does not read. */
const MAGIC_AK42 = 0x616b3432;

export function openLlama2c(path: string): Llama2cFile {
  const src = openFileSource(path);
  try {
    const fail = (fault: string): never => { throw new FormatError(path, fault); };
    if (src.size < HEADER_BYTES) fail(`truncated: ${src.size} bytes, too short for the 28-byte llama2.c header`);
    const head = new Uint8Array(HEADER_BYTES);
    src.read(0, head);
    const h = new Int32Array(head.buffer);
    if (h[0] === MAGIC_AK42) fail(`a llama2.c export of version ${h[1]} ("ak42" magic); only the legacy run.c format (version 0) is supported`);
    const [dim, hiddenDim, layers, heads, kvHeads, rawVocab, seqLen] = h;
    const vocabSize = Math.abs(rawVocab);
    const dims = { dim, hidden_dim: hiddenDim, n_layers: layers, n_heads: heads, n_kv_heads: kvHeads, vocab_size: vocabSize, seq_len: seqLen };
    for (const [k, v] of Object.entries(dims)) if (!(v > 0 && v <= 1 << 20)) fail(`header field ${k} = ${v} is not a plausible size`);
    if (dim % heads !== 0 || heads % kvHeads !== 0) fail(`header: dim ${dim}, n_heads ${heads}, n_kv_heads ${kvHeads} do not divide evenly`);
    const headSize = dim / heads, kvDim = kvHeads * headSize;
    const config: Llama2cConfig = { dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen, sharedClassifier: rawVocab > 0 };

    const tensors = new Map<string, TensorInfo>();
    let offset = HEADER_BYTES;
    const add = (name: string, shape: number[]): void => {
      const byteLength = 4 * shape.reduce((a, b) => a * b, 1);
      tensors.set(name, { name, dtype: 'f32', shape, byteLength, file: path, offset });
      offset += byteLength;
    };
    const perLayer = (field: string, shape: number[]): void => { for (let l = 0; l < layers; l++) add(`${field}.${l}`, shape); };
    add('token_embedding_table', [vocabSize, dim]);
    perLayer('rms_att_weight', [dim]);
    perLayer('wq', [dim, dim]);
    perLayer('wk', [kvDim, dim]);
    perLayer('wv', [kvDim, dim]);
    perLayer('wo', [dim, dim]);
    perLayer('rms_ffn_weight', [dim]);
    perLayer('w1', [hiddenDim, dim]);
    perLayer('w2', [dim, hiddenDim]);
    perLayer('w3', [hiddenDim, dim]);
    add('rms_final_weight', [dim]);
    offset += 2 * 4 * seqLen * (headSize / 2); // freq_cis_real, freq_cis_imag
    if (!config.sharedClassifier) add('wcls', [vocabSize, dim]);
    if (offset !== src.size) {
      fail(`the header (${Object.entries(dims).map(([k, v]) => `${k} ${v}`).join(', ')}) implies ${offset} bytes, but the file has ${src.size}`);
    }
    checkOverlaps(path, tensors);
    return { path, config, tensors, ...tensorReaders(path, tensors, () => src), close: () => src.close() };
  } catch (e) {
    src.close();
    throw e;
  }
}
