/**
 * Element and block types of every weight format minke reads.
 *
 * A dtype is stored either element by element (f32, bf16, f8_e4m3, …) or in fixed blocks of
 * `blockElems` elements taking `blockBytes` bytes (the GGUF quantisations, MXFP4, packed FP4).
 * Shapes everywhere in minke are row-major, outermost dimension first (as in safetensors and
 * PyTorch); the last dimension is the one that blocks run along.
 */

export type DType =
  | 'f64' | 'f32' | 'f16' | 'bf16'
  | 'f8_e4m3' | 'f8_e5m2' | 'e8m0'
  | 'i64' | 'i32' | 'i16' | 'i8' | 'u64' | 'u32' | 'u16' | 'u8' | 'bool'
  /** FP4 E2M1, two codes per byte (low nibble = even element); scales live in a separate tensor. */
  | 'fp4_e2m1'
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q8_1'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k'
  | 'mxfp4';

export interface DTypeInfo {
  readonly name: DType;
  /** Elements per block (1 for element types). */
  readonly blockElems: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** GGUF `ggml_type` id, where GGUF has this type. */
  readonly ggml?: number;
  /** safetensors dtype string, where safetensors has this type. */
  readonly safetensors?: string;
}

const table: DTypeInfo[] = [
  { name: 'f64', blockElems: 1, blockBytes: 8, ggml: 28, safetensors: 'F64' },
  { name: 'f32', blockElems: 1, blockBytes: 4, ggml: 0, safetensors: 'F32' },
  { name: 'f16', blockElems: 1, blockBytes: 2, ggml: 1, safetensors: 'F16' },
  { name: 'bf16', blockElems: 1, blockBytes: 2, ggml: 30, safetensors: 'BF16' },
  { name: 'f8_e4m3', blockElems: 1, blockBytes: 1, safetensors: 'F8_E4M3' },
  { name: 'f8_e5m2', blockElems: 1, blockBytes: 1, safetensors: 'F8_E5M2' },
  { name: 'e8m0', blockElems: 1, blockBytes: 1, safetensors: 'F8_E8M0' },
  { name: 'i64', blockElems: 1, blockBytes: 8, ggml: 27, safetensors: 'I64' },
  { name: 'i32', blockElems: 1, blockBytes: 4, ggml: 26, safetensors: 'I32' },
  { name: 'i16', blockElems: 1, blockBytes: 2, ggml: 25, safetensors: 'I16' },
  { name: 'i8', blockElems: 1, blockBytes: 1, ggml: 24, safetensors: 'I8' },
  { name: 'u64', blockElems: 1, blockBytes: 8, safetensors: 'U64' },
  { name: 'u32', blockElems: 1, blockBytes: 4, safetensors: 'U32' },
  { name: 'u16', blockElems: 1, blockBytes: 2, safetensors: 'U16' },
  { name: 'u8', blockElems: 1, blockBytes: 1, safetensors: 'U8' },
  { name: 'bool', blockElems: 1, blockBytes: 1, safetensors: 'BOOL' },
  { name: 'fp4_e2m1', blockElems: 2, blockBytes: 1 },
  // GGUF block types (ggml-common.h layouts).
  { name: 'q4_0', blockElems: 32, blockBytes: 18, ggml: 2 },   // f16 d, 16 B nibbles
  { name: 'q4_1', blockElems: 32, blockBytes: 20, ggml: 3 },   // f16 d, f16 m, 16 B nibbles
  { name: 'q5_0', blockElems: 32, blockBytes: 22, ggml: 6 },   // f16 d, u32 high bits, 16 B nibbles
  { name: 'q5_1', blockElems: 32, blockBytes: 24, ggml: 7 },   // f16 d, f16 m, u32 high bits, 16 B
  { name: 'q8_0', blockElems: 32, blockBytes: 34, ggml: 8 },   // f16 d, 32 × i8
  { name: 'q8_1', blockElems: 32, blockBytes: 36, ggml: 9 },   // f16 d, f16 s = d·Σq, 32 × i8
  { name: 'q2_k', blockElems: 256, blockBytes: 84, ggml: 10 },
  { name: 'q3_k', blockElems: 256, blockBytes: 110, ggml: 11 },
  { name: 'q4_k', blockElems: 256, blockBytes: 144, ggml: 12 },
  { name: 'q5_k', blockElems: 256, blockBytes: 176, ggml: 13 },
  { name: 'q6_k', blockElems: 256, blockBytes: 210, ggml: 14 },
  { name: 'q8_k', blockElems: 256, blockBytes: 292, ggml: 15 }, // f32 d, 256 × i8, 16 × i16 bsums
  { name: 'mxfp4', blockElems: 32, blockBytes: 17, ggml: 39 },  // e8m0 scale, 16 B of E2M1 nibbles
];

export const DTYPES: ReadonlyMap<DType, DTypeInfo> = new Map(table.map((t) => [t.name, t]));
const byGgml = new Map(table.filter((t) => t.ggml !== undefined).map((t) => [t.ggml!, t]));
const bySafetensors = new Map(table.filter((t) => t.safetensors).map((t) => [t.safetensors!, t]));

export function dtypeInfo(dtype: DType): DTypeInfo {
  const info = DTYPES.get(dtype);
  if (!info) throw new Error(`unknown dtype ${JSON.stringify(dtype)}`);
  return info;
}

/** The dtype of a GGUF `ggml_type` id, or undefined when minke does not know it. */
export function dtypeFromGgml(id: number): DTypeInfo | undefined {
  return byGgml.get(id);
}

/** The dtype of a safetensors dtype string ("BF16", "F8_E4M3", …), or undefined. */
export function dtypeFromSafetensors(name: string): DTypeInfo | undefined {
  return bySafetensors.get(name);
}

/**
 * Bytes taken by `count` consecutive elements. For block types `count` must be a whole number of
 * blocks; returns undefined when it is not (callers turn that into an error naming the tensor).
 */
export function byteSize(dtype: DType, count: number): number | undefined {
  const { blockElems, blockBytes } = dtypeInfo(dtype);
  if (count % blockElems !== 0) return undefined;
  return (count / blockElems) * blockBytes;
}

/** Bytes in one row of `cols` elements (rows of block types are whole blocks). */
export function rowBytes(dtype: DType, cols: number): number {
  const n = byteSize(dtype, cols);
  if (n === undefined) throw new Error(`a row of ${cols} elements is not a whole number of ${dtype} blocks`);
  return n;
}

/**
 * How a 2-D weight is stored for the matrix kernels: its element/block dtype, plus optional block
 * scales kept in a second tensor (DeepSeek FP8: one scale per 128×128 tile, E8M0 in V4 `.scale`,
 * f32 in V3 `weight_scale_inv`, or one E8M0 scale per 32×32 block in V4.1; V4 FP4 experts: one
 * E8M0 scale per row per 32 inputs).
 */
export interface WeightFormat {
  readonly dtype: DType;
  readonly scale?: { readonly dtype: 'e8m0' | 'f32'; readonly rows: number; readonly cols: number };
}

export const FP8_BLOCK_E8M0: WeightFormat = { dtype: 'f8_e4m3', scale: { dtype: 'e8m0', rows: 128, cols: 128 } };
export const FP8_BLOCK32_E8M0: WeightFormat = { dtype: 'f8_e4m3', scale: { dtype: 'e8m0', rows: 32, cols: 32 } };
export const FP8_BLOCK_F32: WeightFormat = { dtype: 'f8_e4m3', scale: { dtype: 'f32', rows: 128, cols: 128 } };
export const FP4_E8M0_32: WeightFormat = { dtype: 'fp4_e2m1', scale: { dtype: 'e8m0', rows: 1, cols: 32 } };

export function formatName(f: WeightFormat): string {
  return f.scale ? `${f.dtype}+${f.scale.dtype}/${f.scale.rows}x${f.scale.cols}` : f.dtype;
}
