/**
 * A Llama-family GGUF (llama, qwen2, qwen3; Mistral as llama) → a GGUF whose weight matrices are
 * in one GGUF block type, following llama.cpp's usual rules (llama-quant.cpp):
 *
 * - 1-D tensors (norms, biases, rope_freqs) stay as they are (f32);
 * - the output head — or the token embedding when it doubles as the head (tied) — gets Q6_K
 *   when the target has fewer than 6 bits, else the target type;
 * - every other matrix, the token embedding included, gets the target type;
 * - a matrix whose rows are not a whole number of the type's blocks falls back as llama.cpp
 *   does (Q2_K/Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; f16 when not even 32 fits).
 *
 * All metadata (architecture, hyperparameters, tokenizer, chat template) is copied; only
 * `general.file_type` is set to llama.cpp's id of the new mixture.
 */
import { openGGUF } from '../formats/gguf.js';
import { metadataEntries, writeGGUF, type GGUFEntry, type GGUFWriteTensor } from '../formats/gguf-writer.js';
import { GGUF_LLAMA_ARCHITECTURES } from '../models/llama-gguf.js';
import { dequantize, quantize } from '../tensor/dequantize.js';
import { dtypeInfo, type DType } from '../tensor/dtype.js';

/** `--type` values for dense models and llama.cpp's `general.file_type` of each (LLAMA_FTYPE_*). */
export const DENSE_TYPES: Readonly<Record<string, { readonly dtype: DType; readonly fileType: number }>> = {
  f16: { dtype: 'f16', fileType: 1 },
  q8_0: { dtype: 'q8_0', fileType: 7 },
  q6_k: { dtype: 'q6_k', fileType: 18 },
  q5_k: { dtype: 'q5_k', fileType: 17 },
  q5_1: { dtype: 'q5_1', fileType: 9 },
  q5_0: { dtype: 'q5_0', fileType: 8 },
  q4_k: { dtype: 'q4_k', fileType: 15 },
  q4_1: { dtype: 'q4_1', fileType: 3 },
  q4_0: { dtype: 'q4_0', fileType: 2 },
  q3_k: { dtype: 'q3_k', fileType: 12 },
  q2_k: { dtype: 'q2_k', fileType: 10 },
};

const FALLBACK: Partial<Record<DType, DType>> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };
const BELOW_6_BITS: readonly DType[] = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];

/** The type a matrix with rows of `cols` gets when the target is `target` (`isHead`: the output head). */
export function denseTensorType(target: DType, cols: number, isHead: boolean): DType {
  let want = isHead && BELOW_6_BITS.includes(target) ? 'q6_k' : target;
  if (want === 'q6_k' && isHead && cols % 256 !== 0) want = target;
  for (let t: DType | undefined = want; t; t = FALLBACK[t]) {
    if (cols % dtypeInfo(t).blockElems === 0) return t;
  }
  return cols % 32 === 0 ? 'q8_0' : 'f16';
}

export interface DenseQuantizeResult {
  /** Tensor type → number of tensors written in it. */
  readonly types: Readonly<Record<string, number>>;
  /** Things the user should know about the result (e.g. a tokenizer that converts inexactly). */
  readonly warnings?: readonly string[];
}

/** A tensor to write: its stored dtype and shape, and how to read its bytes. */
export interface SourceTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  read(): Uint8Array;
}

export function denseType(type: string): { readonly dtype: DType; readonly fileType: number } {
  const target = DENSE_TYPES[type];
  if (!target) throw new Error(`--type ${type} does not apply to dense models (use ${Object.keys(DENSE_TYPES).join(', ')})`);
  return target;
}

/** Writes `tensors` to the GGUF `dst` with the matrices in `type` (rules above) and `metadata`. */
export function writeQuantizedGGUF(dst: string, metadata: readonly (readonly [string, GGUFEntry])[], tensors: readonly SourceTensor[], type: string): DenseQuantizeResult {
  const target = denseType(type);
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const types: Record<string, number> = {};
  const out: GGUFWriteTensor[] = tensors.map((t) => {
    let dtype = t.dtype;
    if (t.shape.length === 2) {
      const isHead = t.name === 'output.weight' || (tied && t.name === 'token_embd.weight');
      dtype = denseTensorType(target.dtype, t.shape[1], isHead);
    }
    types[dtype] = (types[dtype] ?? 0) + 1;
    if (dtype === t.dtype) return { name: t.name, dtype, shape: t.shape, data: () => t.read() };
    const [rows, cols] = t.shape;
    return { name: t.name, dtype, shape: t.shape, data: () => quantize({ dtype }, dequantize({ dtype: t.dtype }, t.read(), rows, cols), rows, cols).data };
  });
  const meta = metadata.filter(([k]) => k !== 'general.file_type');
  meta.push(['general.file_type', { type: 'u32', value: target.fileType }]);
  writeGGUF(dst, { metadata: meta, tensors: out });
  return { types };
}

export function quantizeDenseGGUF(src: string, dst: string, type: string): DenseQuantizeResult {
  denseType(type);
  const file = openGGUF(src);
  try {
    const arch = file.metadata.get('general.architecture');
    if (typeof arch !== 'string' || !GGUF_LLAMA_ARCHITECTURES.includes(arch)) {
      throw new Error(`${src}: architecture '${String(arch)}' is not a dense one minke quantizes (${GGUF_LLAMA_ARCHITECTURES.join(', ')})`);
    }
    const tensors = [...file.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, read: () => file.read(t.name) }));
    return writeQuantizedGGUF(dst, metadataEntries(file), tensors, type);
  } finally {
    file.close();
  }
}
