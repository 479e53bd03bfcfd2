/**
 * A Hugging Face Llama-family directory (llama, mistral, qwen2, qwen3) as GGUF metadata and
 * tensors in llama.cpp's layout, for writeQuantizedGGUF: llama.cpp's tensor names; a llama's (and
 * Mistral's) Q/K rows permuted from NeoX halves into adjacent RoPE pairs as its converter does;
 * 1-D tensors widened to f32; RoPE scaling (linear, Llama 3) as `rope_freqs.weight` factors;
 * the tokenizer as `tokenizer.ggml.*` (hf-gguf-tokenizer.ts).
 */
import * as path from 'node:path';
import type { GGUFEntry } from '../formats/gguf-writer.js';
import type { WeightFile } from '../formats/weight-file.js';
import { openSafetensors } from '../formats/safetensors.js';
import { GGUF_LLAMA_NAMES } from '../models/llama-gguf.js';
import { HF_LLAMA_NAMES, llamaFromHF, readJson } from '../models/llama-hf.js';
import type { LayerNames, LlamaTensorNames } from '../models/llama.js';
import { ropeTable } from '../models/rope-scaling.js';
import { dequantize } from '../tensor/dequantize.js';
import { ggufTokenizerMetadata } from './hf-gguf-tokenizer.js';
import { writeQuantizedGGUF, type DenseQuantizeResult, type SourceTensor } from './gguf-dense.js';

/** Rows of each head go from NeoX order (half s, pair i) to adjacent pairs (row 2i + s). */
function permuteRows(bytes: Uint8Array, heads: number, headDim: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(bytes.length), half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const from = h * headDim + s * half + i, to = h * headDim + 2 * i + s;
        out.set(bytes.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}

/** (HF name, GGUF name) of every tensor a layer may have. */
function layerPairs(hf: LayerNames, gg: LayerNames): [string, string][] {
  const plain = ['attnNorm', 'q', 'k', 'v', 'o', 'ffnNorm', 'gate', 'up', 'down'] as const;
  return [
    ...plain.map((k): [string, string] => [hf[k], gg[k]]),
    ...(Object.keys(hf.optional) as (keyof LayerNames['optional'])[]).map((k): [string, string] => [hf.optional[k], gg.optional[k]]),
  ];
}

function tensorPairs(layers: number, hf: LlamaTensorNames, gg: LlamaTensorNames): [string, string][] {
  const pairs: [string, string][] = [[hf.embedding, gg.embedding], [hf.outputNorm, gg.outputNorm], [hf.output, gg.output]];
  for (let i = 0; i < layers; i++) pairs.push(...layerPairs(hf.layer(i), gg.layer(i)));
  return pairs;
}

export function quantizeHFDense(dir: string, dst: string, type: string): DenseQuantizeResult {
  const config = readJson(dir, 'config.json', true)!;
  const file: WeightFile = openSafetensors(dir);
  try {
    const src = llamaFromHF(dir, config, file);
    const c = src.config;
    const arch = c.architecture === 'mistral' ? 'llama' : c.architecture; // llama.cpp writes Mistral as llama
    const windows = new Set(c.windows);
    if (windows.size > 1) throw new Error(`${dir}: sliding windows on some layers only cannot be written to a GGUF llama.cpp reads`);
    const u32 = (value: number): GGUFEntry => ({ type: 'u32', value });
    const f32 = (value: number): GGUFEntry => ({ type: 'f32', value });
    const base = Number(c.details.ropeBase);
    const meta: [string, GGUFEntry][] = [
      ['general.architecture', { type: 'string', value: arch }],
      ['general.name', { type: 'string', value: path.basename(path.resolve(dir)) }],
      [`${arch}.context_length`, u32(c.contextLength)], [`${arch}.embedding_length`, u32(c.dim)],
      [`${arch}.block_count`, u32(c.layers)], [`${arch}.feed_forward_length`, u32(c.ffnDim)],
      [`${arch}.attention.head_count`, u32(c.heads)], [`${arch}.attention.head_count_kv`, u32(c.kvHeads)],
      [`${arch}.attention.key_length`, u32(c.headDim)], [`${arch}.attention.value_length`, u32(c.headDim)],
      [`${arch}.rope.dimension_count`, u32(c.headDim)], [`${arch}.rope.freq_base`, f32(base)],
      [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.eps)],
      ...(c.windows[0] ? [[`${arch}.attention.sliding_window`, u32(c.windows[0])] as [string, GGUFEntry]] : []),
    ];
    const tokenizer = ggufTokenizerMetadata(readJson(dir, 'tokenizer.json', true)!, readJson(dir, 'tokenizer_config.json', false) ?? {});
    meta.push(...tokenizer.metadata);

    const permute = arch === 'llama';
    const tensors: SourceTensor[] = [];
    const plain = ropeTable(base, c.headDim, { type: 'none' }).freqs;
    if (c.ropeFreqs.some((f, i) => f !== plain[i])) {
      const factors = Float32Array.from(plain, (f, i) => f / c.ropeFreqs[i]);
      tensors.push({ name: 'rope_freqs.weight', dtype: 'f32', shape: [factors.length], read: () => new Uint8Array(factors.buffer) });
    }
    for (const [hfName, ggName] of tensorPairs(c.layers, HF_LLAMA_NAMES, GGUF_LLAMA_NAMES)) {
      const t = file.tensors.get(hfName);
      if (!t) continue; // optional tensors, or a tied head
      const heads = ggName.includes('attn_q.') ? c.heads : ggName.includes('attn_k.') ? c.kvHeads : 0;
      if (t.shape.length === 1) {
        const widen = () => new Uint8Array(dequantize({ dtype: t.dtype }, file.read(hfName), 1, t.shape[0]).buffer);
        const read = permute && heads ? () => permuteRows(widen(), heads, c.headDim, 4) : widen;
        tensors.push({ name: ggName, dtype: 'f32', shape: t.shape, read });
      } else {
        const rowBytes = t.byteLength / t.shape[0];
        const read = permute && heads ? () => permuteRows(file.read(hfName), heads, c.headDim, rowBytes) : () => file.read(hfName);
        tensors.push({ name: ggName, dtype: t.dtype, shape: t.shape, read });
      }
    }
    const result = writeQuantizedGGUF(dst, meta, tensors, type);
    return tokenizer.mismatch ? { ...result, warnings: [`${dir}/tokenizer.json: ${tokenizer.mismatch}`] } : result;
  } finally {
    file.close();
  }
}
