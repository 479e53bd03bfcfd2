/**
 * DeepSeek-V4 checkpoint → a checkpoint directory of the same official layout whose routed experts
 * are stored in one of minke's block schemes and whose embedding and output head are Q8_0
 * (block-format.ts, README.md). Every other tensor is copied byte for byte: attention, the shared
 * expert and the MTP projections stay FP8 (E4M3 with E8M0 128×128 tile scales) as shipped; norms,
 * compressors, router and the small mixers stay BF16/F32. The minke V4 loader reads the result
 * directly (config.json `expert_dtype`, `embed_dtype`).
 */
import * as path from 'node:path';
import { openSafetensors } from '../formats/safetensors.js';
import type { SafetensorsWriteTensor } from '../formats/safetensors-writer.js';
import { v4ConfigFromHF, v4Tensors } from '../models/deepseek-v4-config.js';
import { readJson } from '../models/llama-hf.js';
import { dequantize, quantize } from '../tensor/dequantize.js';
import { FP4_E8M0_32 } from '../tensor/dtype.js';
import type { ExpertScheme, StoredBlock } from './block-format.js';
import { writeCheckpoint } from './files.js';
import { encodeQ2_0 } from './q2-0.js';

/** `--type` values for DeepSeek checkpoints and the expert scheme each writes (embeddings: Q8_0 in all). */
export const MOE_TYPES: Readonly<Record<string, ExpertScheme>> = { 'experts-q4': 'mxfp4', 'experts-q2': 'q2_k', q8: 'q8_0' };

/**
 * The official FP4 expert ([rows, cols/2] bytes, element 2j in the low nibble of byte j; E8M0
 * scales [rows, cols/32]) as GGUF MXFP4 blocks: per 32 elements the same scale byte, then 16
 * bytes with element j in the low and element j + 16 in the high nibble. The codes and scales
 * are the same numbers, so this is exact.
 */
export function fp4ToMxfp4(data: Uint8Array, scale: Uint8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array((rows * cols / 32) * 17);
  const code = (i: number) => (data[i >>> 1] >>> ((i & 1) * 4)) & 15;
  for (let b = 0; b < rows * cols / 32; b++) {
    const o = b * 17, e0 = b * 32;
    out[o] = scale[b]; // blocks run along rows, so block b of the row-major matrix is scale b
    for (let j = 0; j < 16; j++) out[o + 1 + j] = code(e0 + j) | (code(e0 + j + 16) << 4);
  }
  return out;
}

/** Encodes f32 values [rows, cols] as stored rows of `block`. */
export function encodeBlocks(block: StoredBlock, values: Float32Array, rows: number, cols: number): Uint8Array {
  return block === 'q2_0' ? encodeQ2_0(values) : quantize({ dtype: block }, values, rows, cols).data;
}

export interface MoeQuantizeResult {
  /** Stored block type → number of matrices written in it. */
  readonly blocks: Readonly<Record<string, number>>;
}

export function quantizeV4Checkpoint(srcDir: string, dstDir: string, type: string): MoeQuantizeResult {
  const scheme = MOE_TYPES[type];
  if (!scheme) throw new Error(`--type ${type} does not apply to DeepSeek-V4 checkpoints (use ${Object.keys(MOE_TYPES).join(', ')})`);
  const json = readJson(srcDir, 'config.json', true)!;
  const where = path.join(srcDir, 'config.json');
  const config = v4ConfigFromHF(json, where);
  if (config.expertDtype) throw new Error(`${where}: the experts are already quantised (expert_dtype ${config.expertDtype}); quantize the original FP4 checkpoint`);
  const file = openSafetensors(srcDir);
  try {
    const blocks: Record<string, number> = {};
    const tensors: { shard: string; tensor: SafetensorsWriteTensor }[] = [];
    for (const e of v4Tensors({ ...config, expertDtype: scheme, embedDtype: 'q8_0' })) {
      const info = file.tensors.get(e.name) ?? (() => { throw new Error(`${file.path}: missing tensor '${e.name}'`); })();
      let tensor: SafetensorsWriteTensor;
      if (e.blocks) {
        const { block, rows, cols } = e.blocks;
        const scale = e.name.replace(/\.weight$/, '.scale');
        const values = () => info.dtype === 'bf16'
          ? dequantize({ dtype: 'bf16' }, file.read(e.name), rows, cols)
          : dequantize(FP4_E8M0_32, file.read(e.name), rows, cols, file.read(scale));
        blocks[block] = (blocks[block] ?? 0) + 1;
        const data = block === 'mxfp4' ? () => fp4ToMxfp4(file.read(e.name), file.read(scale), rows, cols) : () => encodeBlocks(block, values(), rows, cols);
        tensor = { name: e.name, dtype: 'u8', shape: e.shape, data };
      } else {
        if (info.dtype !== e.dtype) throw new Error(`${file.path}: tensor '${e.name}' is ${info.dtype}, expected ${e.dtype}`);
        tensor = { name: e.name, dtype: info.dtype, shape: info.shape, data: () => file.read(e.name) };
      }
      tensors.push({ shard: info.file, tensor });
    }
    writeCheckpoint(srcDir, dstDir, tensors, { ...json, expert_dtype: scheme, embed_dtype: 'q8_0', minke_quantization: { type, source: path.basename(path.resolve(srcDir)) } });
    return { blocks };
  } finally {
    file.close();
  }
}
