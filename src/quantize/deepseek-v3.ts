/**
 * DeepSeek-V3 (V3, R1, V3.1, V3.2) official checkpoint → a checkpoint directory of the same layout
 * whose routed experts are stored in one of minke's block schemes (block-format.ts, README.md):
 * each expert `*.weight` becomes u8 rows of blocks and its `weight_scale_inv` goes. Everything else
 * — attention, shared experts, dense MLPs, MTP projections (FP8 + f32 128×128 tile scales),
 * embedding and head (BF16) — is copied byte for byte. The V3 loader reads the result directly
 * (config.json `expert_dtype`).
 */
import * as path from 'node:path';
import { openSafetensors } from '../formats/safetensors.js';
import type { SafetensorsWriteTensor } from '../formats/safetensors-writer.js';
import { v3ConfigFromHF, v3Tensors } from '../models/deepseek-v3-config.js';
import { readJson } from '../models/llama-hf.js';
import { dequantize } from '../tensor/dequantize.js';
import { FP8_BLOCK_F32 } from '../tensor/dtype.js';
import { storedRowBytes, type ExpertScheme } from './block-format.js';
import { encodeBlocks, type MoeQuantizeResult } from './deepseek-v4.js';
import { writeCheckpoint } from './files.js';

/** `--type` values for DeepSeek-V3 checkpoints (FP8 experts) and the expert scheme each writes. */
export const V3_TYPES: Readonly<Record<string, ExpertScheme>> = { 'experts-q4': 'q4', 'experts-q2': 'q2_k', q8: 'q8_0' };

export function quantizeV3Checkpoint(srcDir: string, dstDir: string, type: string): MoeQuantizeResult {
  const scheme = V3_TYPES[type];
  if (!scheme) throw new Error(`--type ${type} does not apply to DeepSeek-V3 checkpoints (use ${Object.keys(V3_TYPES).join(', ')})`);
  const json = readJson(srcDir, 'config.json', true)!;
  const where = path.join(srcDir, 'config.json');
  const config = v3ConfigFromHF(json, where);
  if (config.expertDtype) throw new Error(`${where}: the experts are already quantised (expert_dtype ${config.expertDtype}); quantize the original FP8 checkpoint`);
  const stored = new Map(v3Tensors({ ...config, expertDtype: scheme, layers: config.layers + config.mtpLayers }).filter((e) => e.blocks).map((e) => [e.name, e.blocks!]));
  const file = openSafetensors(srcDir);
  try {
    const blocks: Record<string, number> = {};
    const tensors: { shard: string; tensor: SafetensorsWriteTensor }[] = [];
    for (const t of file.tensors.values()) {
      const base = t.name.replace(/\.weight(_scale_inv)?$/, '');
      const q = stored.get(`${base}.weight`);
      if (q && t.name.endsWith('_scale_inv')) continue; // the blocks carry their scales
      let tensor: SafetensorsWriteTensor = { name: t.name, dtype: t.dtype, shape: t.shape, data: () => file.read(t.name) };
      if (q) {
        const { block, rows, cols } = q;
        const scale = `${base}.weight_scale_inv`;
        if (t.dtype !== 'f8_e4m3' || !file.tensors.has(scale)) throw new Error(`${file.path}: expert tensor '${t.name}' is ${t.dtype}${file.tensors.has(scale) ? '' : ' without weight_scale_inv'}, expected FP8 with scales`);
        blocks[block] = (blocks[block] ?? 0) + 1;
        tensor = {
          name: t.name, dtype: 'u8', shape: [rows, storedRowBytes(block, cols)],
          data: () => encodeBlocks(block, dequantize(FP8_BLOCK_F32, file.read(t.name), rows, cols, file.read(scale)), rows, cols),
        };
      }
      tensors.push({ shard: t.file, tensor });
    }
    writeCheckpoint(srcDir, dstDir, tensors, { ...json, expert_dtype: scheme, minke_quantization: { type, source: path.basename(path.resolve(srcDir)) } });
    return { blocks };
  } finally {
    file.close();
  }
}
