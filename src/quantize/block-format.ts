/**
 * How minke stores quantised matrices of DeepSeek-V4 checkpoints (README.md). Two config.json keys
 * name the schemes: `expert_dtype` for the routed experts and `embed_dtype` for `embed.weight` and
 * `head.weight`. Each such matrix `X.weight` [rows, cols] is a safetensors `U8` tensor
 * [rows, rowBytes] of blocks along each row and has no `.scale` tensor (the blocks carry scales):
 *
 *   mxfp4  GGUF MXFP4 (32 elements, 17 B: E8M0 scale + E2M1 nibbles; 4.25 bits/weight). The
 *          official FP4 experts (E2M1 codes, one E8M0 scale per 32) in GGUF's block order: exact.
 *   q8_0   GGUF Q8_0 (32, 34 B: f16 scale + 32 × i8; 8.5 bits)
 *   q4     GGUF Q4_K (256, 144 B; 4.5 bits) when cols is a multiple of 256, else Q4_0 (32, 18 B;
 *          4.5 bits) — for sources whose experts are not FP4 already (DeepSeek-V3's FP8)
 *   q2_k   GGUF Q2_K (256, 84 B; 2.625 bits) when cols is a multiple of 256, else minke's q2_0
 *          (32, 10 B; 2.5 bits; q2-0.ts), widened exactly to Q4_0 in memory at load
 */
import type { WeightSource } from '../kernels/backend.js';
import type { WeightFile } from '../formats/weight-file.js';
import { rowBytes, type DType } from '../tensor/dtype.js';
import { Q2_0_BLOCK_BYTES, Q2_0_BLOCK_ELEMS, widenQ2_0ToQ4_0 } from './q2-0.js';

/** `expert_dtype` values: the official FP4 (V4) / FP8 (V3) and minke's block schemes. */
export type ExpertDtype = 'fp4' | 'fp8' | 'mxfp4' | 'q8_0' | 'q4' | 'q2_k';
export type ExpertScheme = Exclude<ExpertDtype, 'fp4' | 'fp8'>;
export const EXPERT_SCHEMES: readonly ExpertScheme[] = ['mxfp4', 'q8_0', 'q4', 'q2_k'];
/** `embed_dtype` values: as shipped (BF16) or Q8_0. */
export type EmbedDtype = 'bf16' | 'q8_0';
export const EMBED_DTYPES: readonly EmbedDtype[] = ['bf16', 'q8_0'];

/** The block type of one stored row ('q2_0' is minke's, the rest GGUF's). */
export type StoredBlock = 'mxfp4' | 'q8_0' | 'q4_k' | 'q4_0' | 'q2_k' | 'q2_0';

/** The block type rows of `cols` elements are stored in under a scheme. */
export function storedBlock(scheme: ExpertScheme, cols: number): StoredBlock {
  if (cols % 32 !== 0) throw new Error(`rows of ${cols} elements are not a whole number of 32-element blocks (${scheme} needs them)`);
  const k = cols % 256 === 0;
  return scheme === 'q2_k' ? (k ? 'q2_k' : 'q2_0') : scheme === 'q4' ? (k ? 'q4_k' : 'q4_0') : scheme;
}

/** A config.json `expert_dtype` read: the official `official` (absent) or one of minke's schemes. */
export function expertScheme(value: unknown, official: 'fp4' | 'fp8', fail: (msg: string) => never): ExpertScheme | undefined {
  if (value === undefined || value === official) return undefined;
  if (!EXPERT_SCHEMES.includes(value as ExpertScheme)) fail(`expert_dtype ${JSON.stringify(value)} is not supported (${official} as the official checkpoints, or minke quantize's ${EXPERT_SCHEMES.join(', ')})`);
  return value as ExpertScheme;
}

/** Bytes of one stored row of `cols` elements. */
export function storedRowBytes(block: StoredBlock, cols: number): number {
  return block === 'q2_0' ? (cols / Q2_0_BLOCK_ELEMS) * Q2_0_BLOCK_BYTES : rowBytes(block, cols);
}

/** The dtype the kernels run a stored block type as (q2_0 widens exactly to q4_0). */
export function kernelDtype(block: StoredBlock): DType {
  return block === 'q2_0' ? 'q4_0' : block;
}

/** Where the backend reads a stored matrix from: the file itself, or a widening view for q2_0. */
export function storedSource(file: WeightFile, block: StoredBlock, rows: number, cols: number): WeightSource {
  if (block !== 'q2_0') return file;
  return { read: (name, dst) => widenQ2_0ToQ4_0(file.read(name), rows * cols, dst) };
}

/** How `minke info` names a stored block type: q2_0 is held widened to Q4_0 in memory. */
export function memoryFormat(block: StoredBlock): string {
  return block === 'q2_0' ? 'q2_0 (held as q4_0)' : block;
}

/** Bytes a stored matrix takes in memory once loaded. */
export function memoryBytes(m: { readonly block: StoredBlock; readonly rows: number; readonly cols: number }): number {
  return m.rows * rowBytes(kernelDtype(m.block), m.cols);
}
