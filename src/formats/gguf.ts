/**
 * GGUF v2/v3 (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
 * the metadata key/values, the tensor infos (name, n_dims, ne[n_dims], ggml type, offset), padding
 * to `general.alignment` (default 32), then the tensor data; tensor offsets are relative to it.
 *
 * Metadata values: integers and floats are JS numbers, except u64/i64 values beyond ±(2^53 − 1),
 * which stay bigint; bool is boolean; string is string (valid UTF-8 required); arrays are JS
 * arrays (arrays of arrays nest). `metadataTypes` keeps each key's GGUF type so that a file can be
 * written back unchanged (gguf-writer.ts).
 */
import { byteSize, dtypeFromGgml } from '../tensor/dtype.js';
import { FormatError } from './errors.js';
import { openFileSource, type ByteSource } from './source.js';
import { checkOverlaps, elementCount, tensorReaders, type TensorInfo, type WeightFile } from './weight-file.js';

export type GGUFScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
/** An array's element type; all inner arrays of an array of arrays share one type. */
export type GGUFType = GGUFScalarType | { readonly array: GGUFType };
export type GGUFValue = number | bigint | boolean | string | readonly GGUFValue[];

export interface GGUFTensorInfo extends TensorInfo {
  /** Dimensions in GGUF order (ne[0] = the contiguous one); `shape` is this reversed. */
  readonly ne: readonly number[];
  readonly ggmlType: number;
}

export interface GGUFHeader {
  readonly version: number;
  readonly metadata: Map<string, GGUFValue>;
  readonly metadataTypes: Map<string, GGUFType>;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly tensors: ReadonlyMap<string, GGUFTensorInfo>;
}

export interface GGUFFile extends WeightFile, GGUFHeader {
  readonly tensors: ReadonlyMap<string, GGUFTensorInfo>;
}

/** Value type ids of the GGUF spec; 9 is ARRAY. */
export const GGUF_TYPE_IDS: Readonly<Record<GGUFScalarType | 'array', number>> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const TYPE_BY_ID = Object.fromEntries(Object.entries(GGUF_TYPE_IDS).map(([k, v]) => [v, k])) as Record<number, GGUFScalarType | 'array'>;
/** Fewest bytes one element of each type takes (a string or array header counts its length fields). */
const SCALAR_BYTES: Readonly<Record<Exclude<GGUFScalarType, 'string'>, number>> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8,
};
const MIN_BYTES: Readonly<Record<GGUFScalarType | 'array', number>> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 8, array: 12,
};

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml itself stops at 4; more than 8 is a corrupt file. */
export const GGUF_MAX_DIMS = 8;
const MAX_ARRAY_DEPTH = 8;
// Bytes per tensor info at least: u64 name length, u32 n_dims, u32 type, u64 offset.
const MIN_TENSOR_INFO = 24;
// Bytes per key/value at least: u64 key length, u32 type, one byte of value.
const MIN_KV = 13;
const CHUNK = 1 << 18; // header read-ahead

/** Sequential little-endian reads over a ByteSource, a chunk at a time. */
class Cursor {
  pos = 0;
  private chunk = new Uint8Array(0);
  private view = new DataView(this.chunk.buffer);
  private chunkStart = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(readonly src: ByteSource) {}

  get remaining(): number { return this.src.size - this.pos; }

  fail(fault: string): never { throw new FormatError(this.src.name, fault); }

  /** Makes `n` bytes at pos available and returns their index in `chunk`. */
  private take(n: number, what: string): number {
    if (n > this.remaining) this.fail(`truncated: ${what} at byte ${this.pos} needs ${n} bytes but the file has ${this.src.size}`);
    if (this.pos < this.chunkStart || this.pos + n > this.chunkStart + this.chunk.length) {
      this.chunk = new Uint8Array(Math.min(Math.max(n, CHUNK), this.remaining));
      this.view = new DataView(this.chunk.buffer);
      this.chunkStart = this.pos;
      this.src.read(this.pos, this.chunk);
    }
    const at = this.pos - this.chunkStart;
    this.pos += n;
    return at;
  }

  // take() may replace the chunk, so every read calls it before looking at `view`.
  u32(what: string): number {
    const i = this.take(4, what);
    return this.view.getUint32(i, true);
  }

  /** A u64 length/count/offset; past 2^53 − 1 it cannot describe anything in a real file. */
  size(what: string, kind?: string): number {
    const i = this.take(8, what);
    const v = this.view.getBigUint64(i, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${kind ? `${what}: ${kind}` : what} ${v} at byte ${this.pos - 8} is impossibly large`);
    return Number(v);
  }

  string(what: string): string {
    const at = this.pos;
    const len = this.size(what, 'string length');
    if (len > this.remaining) this.fail(`${what}: string length ${len} at byte ${at} runs past the end of the file (${this.src.size} bytes)`);
    const i = this.take(len, what);
    const ascii = len <= 32 ? shortAscii(this.chunk, i, i + len) : undefined;
    if (ascii !== undefined) return ascii;
    try {
      return this.utf8.decode(this.chunk.subarray(i, i + len));
    } catch {
      return this.fail(`${what}: string at byte ${at} is not valid UTF-8`);
    }
  }

  scalar(type: GGUFScalarType, what: string): GGUFValue {
    if (type === 'string') return this.string(what);
    return this.decode(type, this.take(SCALAR_BYTES[type], what), what);
  }

  /** The fixed-size value at index `i` of the current chunk. */
  private decode(type: Exclude<GGUFScalarType, 'string'>, i: number, what: string): GGUFValue {
    const v = this.view;
    switch (type) {
      case 'u8': return v.getUint8(i);
      case 'i8': return v.getInt8(i);
      case 'u16': return v.getUint16(i, true);
      case 'i16': return v.getInt16(i, true);
      case 'u32': return v.getUint32(i, true);
      case 'i32': return v.getInt32(i, true);
      case 'f32': return v.getFloat32(i, true);
      case 'f64': return v.getFloat64(i, true);
      case 'u64': return narrow(v.getBigUint64(i, true));
      case 'i64': return narrow(v.getBigInt64(i, true));
      case 'bool': {
        const b = v.getUint8(i);
        if (b > 1) this.fail(`${what}: bool at byte ${this.chunkStart + i} is ${b}, not 0 or 1`);
        return b === 1;
      }
    }
  }

  valueType(what: string): GGUFScalarType | 'array' {
    const at = this.pos;
    const id = this.u32(`type of ${what}`);
    return TYPE_BY_ID[id] ?? this.fail(`${what}: unknown value type ${id} at byte ${at}`);
  }

  /** A value of a type id already read. */
  value(type: GGUFScalarType | 'array', what: string, depth = 0): { type: GGUFType; value: GGUFValue } {
    if (type !== 'array') return { type, value: this.scalar(type, what) };
    if (depth >= MAX_ARRAY_DEPTH) this.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
    const elemType = this.valueType(`elements of ${what}`);
    const at = this.pos;
    const count = this.size(what, 'array length');
    if (count * MIN_BYTES[elemType] > this.remaining) {
      this.fail(`${what}: array of ${count} ${elemType} at byte ${at} needs at least ${count * MIN_BYTES[elemType]} bytes but only ${this.remaining} remain`);
    }
    const out: GGUFValue[] = new Array(count);
    if (elemType === 'string') {
      for (let i = 0; i < count; i++) out[i] = this.string(what);
      return { type: { array: elemType }, value: out };
    }
    if (elemType !== 'array') {
      // Fixed-size elements: bring them all in at once, then decode each from the chunk.
      const width = SCALAR_BYTES[elemType];
      const start = this.take(count * width, what);
      for (let i = 0; i < count; i++) out[i] = this.decode(elemType, start + i * width, what);
      return { type: { array: elemType }, value: out };
    }
    // An empty array of arrays has no inner type in the file; any choice writes the same bytes.
    let inner: GGUFType = { array: 'u8' };
    for (let i = 0; i < count; i++) {
      const v = this.value('array', `${what}[${i}]`, depth + 1);
      if (i === 0) inner = v.type;
      else if (typeKey(v.type) !== typeKey(inner)) {
        this.fail(`${what}: inner arrays of different types (${typeKey(inner)}, then ${typeKey(v.type)}) are not supported`);
      }
      out[i] = v.value;
    }
    return { type: { array: inner }, value: out };
  }
}

/** Short ASCII strings (most vocabulary pieces) without TextDecoder's per-call cost; else undefined. */
function shortAscii(b: Uint8Array, i: number, end: number): string | undefined {
  let s = '';
  for (; i < end; i++) {
    if (b[i] >= 0x80) return undefined;
    s += String.fromCharCode(b[i]);
  }
  return s;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
function narrow(v: bigint): number | bigint {
  return v <= SAFE && v >= -SAFE ? Number(v) : v;
}

export function typeKey(t: GGUFType): string {
  return typeof t === 'string' ? t : `array<${typeKey(t.array)}>`;
}

export function parseGGUF(src: ByteSource): GGUFHeader {
  const c: Cursor = new Cursor(src); // typed, so that c.fail() narrows
  if (src.size < 4) c.fail(`truncated: ${src.size} bytes, too short for the GGUF magic`);
  if (c.u32('magic') !== GGUF_MAGIC) c.fail(`bad magic: not a GGUF file (expected "GGUF" at byte 0)`);
  const version = c.u32('version');
  if (version === 1) c.fail('GGUF v1 is not supported (32-bit counts); convert it again with a current llama.cpp');
  if (version >= 0x10000 && (version & 0xffff) === 0) {
    c.fail(`version field reads 0x${version.toString(16)}: a big-endian GGUF, which minke does not read`);
  }
  if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (minke reads 2 and 3)`);
  const tensorCount = c.size('tensor count');
  const kvCount = c.size('metadata count');
  if (tensorCount * MIN_TENSOR_INFO > c.remaining) {
    c.fail(`tensor count ${tensorCount} is impossible: the tensor infos alone need ${tensorCount * MIN_TENSOR_INFO} bytes but only ${c.remaining} remain`);
  }
  if (kvCount * MIN_KV > c.remaining) {
    c.fail(`metadata count ${kvCount} is impossible: the entries alone need ${kvCount * MIN_KV} bytes but only ${c.remaining} remain`);
  }

  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, GGUFType>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`key of metadata entry ${i}`);
    if (metadata.has(key)) c.fail(`duplicate metadata key '${key}'`);
    const { type, value } = c.value(c.valueType(`'${key}'`), `'${key}'`);
    metadata.set(key, value);
    metadataTypes.set(key, type);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (metadataTypes.get('general.alignment') !== 'u32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      c.fail(`general.alignment must be a u32 power of two, found ${typeKey(metadataTypes.get('general.alignment')!)} ${String(a)}`);
    }
    alignment = a as number;
  }

  const raw: { name: string; ne: number[]; ggmlType: number; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`name of tensor ${i}`);
    if (names.has(name)) c.fail(`duplicate tensor name '${name}'`);
    names.add(name);
    const nDims = c.u32(`n_dims of tensor '${name}'`);
    if (nDims > GGUF_MAX_DIMS) c.fail(`tensor '${name}' has n_dims ${nDims}, more than ${GGUF_MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.size(`ne[${d}] of tensor '${name}'`));
    const ggmlType = c.u32(`type of tensor '${name}'`);
    const rel = c.size(`offset of tensor '${name}'`);
    raw.push({ name, ne, ggmlType, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;

  const tensors = new Map<string, GGUFTensorInfo>();
  for (const { name, ne, ggmlType, rel } of raw) {
    const info = dtypeFromGgml(ggmlType) ?? c.fail(`tensor '${name}' has unknown ggml type ${ggmlType}`);
    const cols = ne.length > 0 ? ne[0] : 1;
    if (cols % info.blockElems !== 0) {
      c.fail(`tensor '${name}': rows of ${cols} elements are not a whole number of ${info.name} blocks (${info.blockElems})`);
    }
    const count = elementCount(ne);
    const bytes = count === undefined ? undefined : byteSize(info.name, count);
    if (bytes === undefined || !Number.isSafeInteger(bytes)) c.fail(`tensor '${name}' has too many elements (ne [${ne.join(', ')}])`);
    if (rel % alignment !== 0) c.fail(`tensor '${name}' offset ${rel} is not a multiple of the alignment ${alignment}`);
    const offset = dataOffset + rel;
    if (offset + bytes > src.size) c.fail(`truncated: tensor '${name}' ends at byte ${offset + bytes} but the file has ${src.size} bytes`);
    tensors.set(name, { name, dtype: info.name, shape: [...ne].reverse(), ne, ggmlType, byteLength: bytes, file: src.name, offset });
  }
  checkOverlaps(src.name, tensors);
  return { version, metadata, metadataTypes, alignment, dataOffset, tensors };
}

export function openGGUF(path: string): GGUFFile {
  const src = openFileSource(path);
  try {
    const header = parseGGUF(src);
    return { path, ...header, ...tensorReaders(path, header.tensors, () => src), close: () => src.close() };
  } catch (e) {
    src.close();
    throw e;
  }
}
