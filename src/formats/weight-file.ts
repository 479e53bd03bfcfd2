/** The common shape of every weight file (GGUF, safetensors, sharded safetensors). */
import type { DType } from '../tensor/dtype.js';
import { FormatError } from './errors.js';
import type { ByteSource } from './source.js';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  /** Row-major, outermost dimension first (GGUF's ne[] reversed). */
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** The file holding the bytes (a shard's path for sharded checkpoints). */
  readonly file: string;
  /** Absolute byte offset of the first byte in `file`. */
  readonly offset: number;
}

export interface WeightFile {
  readonly path: string;
  /** In file order (GGUF, safetensors) or index order (sharded). */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /**
   * The tensor's bytes, read into `dst` (e.g. a view of the kernels' WebAssembly memory; at least
   * byteLength long, the returned view is its first byteLength bytes) or into a new array.
   */
  read(name: string, dst?: Uint8Array): Uint8Array;
  /** `dst.length` bytes of the tensor starting `byteOffset` bytes into it (one row, one expert, …). */
  readRange(name: string, byteOffset: number, dst: Uint8Array): Uint8Array;
  close(): void;
}

/** read/readRange over a tensor table, given how to find the source of a tensor. */
export function tensorReaders(
  path: string,
  tensors: ReadonlyMap<string, TensorInfo>,
  sourceOf: (t: TensorInfo) => ByteSource,
): Pick<WeightFile, 'read' | 'readRange'> {
  const lookup = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new FormatError(path, `no tensor named '${name}'`);
    return t;
  };
  const readRange = (name: string, byteOffset: number, dst: Uint8Array): Uint8Array => {
    const t = lookup(name);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + dst.length > t.byteLength) {
      throw new RangeError(`${path}: bytes [${byteOffset}, ${byteOffset + dst.length}) are outside tensor '${name}' (${t.byteLength} bytes)`);
    }
    sourceOf(t).read(t.offset + byteOffset, dst);
    return dst;
  };
  const read = (name: string, dst?: Uint8Array): Uint8Array => {
    const t = lookup(name);
    if (dst && dst.length < t.byteLength) {
      throw new RangeError(`${path}: tensor '${name}' has ${t.byteLength} bytes but the destination holds ${dst.length}`);
    }
    const out = dst ? dst.subarray(0, t.byteLength) : new Uint8Array(t.byteLength);
    return readRange(name, 0, out);
  };
  return { read, readRange };
}

/** Product of the dimensions, or undefined when it is not a safe integer. */
export function elementCount(shape: readonly number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** Throws when two tensors share bytes (a corrupt or hand-edited header). */
export function checkOverlaps(file: string, tensors: ReadonlyMap<string, TensorInfo>): void {
  const byStart = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byStart.length; i++) {
    const a = byStart[i - 1], b = byStart[i];
    if (b.offset < a.offset + a.byteLength) {
      throw new FormatError(file, `tensors '${a.name}' (bytes ${a.offset}..${a.offset + a.byteLength}) and '${b.name}' (bytes ${b.offset}..${b.offset + b.byteLength}) overlap`);
    }
  }
}
