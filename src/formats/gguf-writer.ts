/**
 * GGUF v3 writer (little-endian). The header is built in memory (tensor offsets follow from shapes
 * and dtypes), then tensor data is written one tensor at a time, so a tensor's bytes may be produced
 * on demand (`data` as a function) and a quantised model never has to sit in memory whole.
 * Every tensor starts on the alignment and is padded to it, as llama.cpp writes them.
 */
import { byteSize, dtypeInfo, type DType } from '../tensor/dtype.js';
import { writeFileAtomically } from './file-write.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS, GGUF_TYPE_IDS, typeKey,
  type GGUFHeader, type GGUFScalarType, type GGUFType, type GGUFValue,
} from './gguf.js';

export interface GGUFEntry {
  readonly type: GGUFType;
  readonly value: GGUFValue;
}

export interface GGUFWriteTensor {
  readonly name: string;
  readonly dtype: DType;
  /** Row-major, outermost first (written as ne = shape reversed). */
  readonly shape: readonly number[];
  /** The tensor's bytes, or a function producing them when the tensor's turn comes. */
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface GGUFWriteSpec {
  readonly metadata?: Iterable<readonly [string, GGUFEntry]>;
  readonly tensors?: readonly GGUFWriteTensor[];
  /** Default: `general.alignment` from the metadata, else 32; added to the metadata when not 32. */
  readonly alignment?: number;
}

export interface GGUFLayout {
  /** Everything before the first tensor byte, padding included. */
  readonly header: Uint8Array;
  readonly alignment: number;
  /** Absolute offset of each tensor (in spec order) and its byte length. */
  readonly tensors: readonly { readonly name: string; readonly offset: number; readonly byteLength: number }[];
  /** Size of the whole file. */
  readonly size: number;
}

/** The metadata of a parsed file, as entries the writer takes (to copy it into a new file). */
export function metadataEntries(h: Pick<GGUFHeader, 'metadata' | 'metadataTypes'>): [string, GGUFEntry][] {
  return [...h.metadata].map(([k, value]) => [k, { type: h.metadataTypes.get(k)!, value }]);
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Lays out the file: header bytes and where each tensor goes. */
export function layoutGGUF(spec: GGUFWriteSpec): GGUFLayout {
  const entries = [...(spec.metadata ?? [])].map(([k, e]) => [k, e] as [string, GGUFEntry]);
  const metaAlign = entries.find(([k]) => k === 'general.alignment')?.[1];
  if (metaAlign && (metaAlign.type !== 'u32' || metaAlign.value !== (spec.alignment ?? metaAlign.value))) {
    throw new Error(`GGUF writer: general.alignment must be u32 and agree with the alignment option`);
  }
  const alignment = (metaAlign?.value as number | undefined) ?? spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0 || alignment > 0xffffffff) {
    throw new Error(`GGUF writer: alignment ${alignment} is not a power of two`);
  }
  if (!metaAlign && alignment !== GGUF_DEFAULT_ALIGNMENT) entries.push(['general.alignment', { type: 'u32', value: alignment }]);

  const out = new ByteWriter();
  const tensors = spec.tensors ?? [];
  out.u32(GGUF_MAGIC);
  out.u32(3);
  out.u64(tensors.length);
  out.u64(entries.length);
  const keys = new Set<string>();
  for (const [key, { type, value }] of entries) {
    if (keys.has(key)) throw new Error(`GGUF writer: duplicate metadata key '${key}'`);
    keys.add(key);
    out.string(key);
    out.u32(typeof type === 'string' ? GGUF_TYPE_IDS[type] : GGUF_TYPE_IDS.array);
    out.value(type, value, `metadata '${key}'`);
  }

  const placed: { name: string; offset: number; byteLength: number }[] = [];
  const names = new Set<string>();
  let rel = 0;
  for (const t of tensors) {
    const byteLength = tensorBytes(t);
    if (names.has(t.name)) throw new Error(`GGUF writer: duplicate tensor name '${t.name}'`);
    names.add(t.name);
    out.string(t.name);
    out.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) out.u64(t.shape[d]);
    out.u32(dtypeInfo(t.dtype).ggml!);
    out.u64(rel);
    placed.push({ name: t.name, offset: rel, byteLength });
    rel = alignUp(rel + byteLength, alignment);
  }
  const dataOffset = alignUp(out.length, alignment);
  const header = new Uint8Array(dataOffset);
  header.set(out.bytes());
  return {
    header,
    alignment,
    tensors: placed.map((p) => ({ ...p, offset: dataOffset + p.offset })),
    size: dataOffset + rel,
  };
}

function tensorBytes(t: GGUFWriteTensor): number {
  const fail = (fault: string): never => { throw new Error(`GGUF writer: tensor '${t.name}': ${fault}`); };
  const info = dtypeInfo(t.dtype);
  if (info.ggml === undefined) fail(`dtype ${t.dtype} has no GGUF type`);
  if (t.shape.length > GGUF_MAX_DIMS) fail(`${t.shape.length} dimensions, more than ${GGUF_MAX_DIMS}`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
  const cols = t.shape.length ? t.shape[t.shape.length - 1] : 1;
  if (cols % info.blockElems !== 0) fail(`rows of ${cols} elements are not a whole number of ${t.dtype} blocks (${info.blockElems})`);
  const bytes = byteSize(t.dtype, t.shape.reduce((a, b) => a * b, 1));
  if (bytes === undefined || !Number.isSafeInteger(bytes)) return fail('too many elements');
  return bytes;
}

function tensorData(t: GGUFWriteTensor, byteLength: number): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  if (data.length !== byteLength) throw new Error(`GGUF writer: tensor '${t.name}' needs ${byteLength} bytes of ${t.dtype} data, got ${data.length}`);
  return data;
}

/** The whole file in memory (small files: tests, fixtures). */
export function encodeGGUF(spec: GGUFWriteSpec): Uint8Array {
  const layout = layoutGGUF(spec);
  const file = new Uint8Array(layout.size);
  file.set(layout.header);
  (spec.tensors ?? []).forEach((t, i) => file.set(tensorData(t, layout.tensors[i].byteLength), layout.tensors[i].offset));
  return file;
}

/** Writes the file tensor by tensor to a temporary name, renamed into place when complete. */
export function writeGGUF(path: string, spec: GGUFWriteSpec): GGUFLayout {
  const layout = layoutGGUF(spec);
  writeFileAtomically(path, layout.size, (write) => {
    write(layout.header, 0);
    (spec.tensors ?? []).forEach((t, i) => write(tensorData(t, layout.tensors[i].byteLength), layout.tensors[i].offset));
  });
  return layout;
}

const INT_RANGE: Partial<Record<GGUFScalarType, [number, number]>> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};

/** A growing little-endian byte buffer. */
class ByteWriter {
  length = 0;
  private buf = new Uint8Array(1 << 16);
  private readonly utf8 = new TextEncoder();

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  /** A view of n new bytes (reserved before the buffer is read: room() may replace it). */
  private at(n: number): DataView {
    const start = this.room(n);
    return new DataView(this.buf.buffer, start, n);
  }

  bytes(): Uint8Array { return this.buf.subarray(0, this.length); }
  u32(v: number): void { this.at(4).setUint32(0, v, true); }
  u64(v: number | bigint): void { this.at(8).setBigUint64(0, BigInt(v), true); }

  string(s: string): void {
    const b = this.utf8.encode(s);
    this.u64(b.length);
    const at = this.room(b.length); // first: room() may replace this.buf
    this.buf.set(b, at);
  }

  value(type: GGUFType, value: GGUFValue, what: string): void {
    if (typeof type !== 'string') {
      if (!Array.isArray(value)) throw new Error(`GGUF writer: ${what}: ${typeKey(type)} needs an array`);
      const elem = type.array;
      this.u32(typeof elem === 'string' ? GGUF_TYPE_IDS[elem] : GGUF_TYPE_IDS.array);
      this.u64(value.length);
      value.forEach((v, i) => this.value(elem, v, `${what}[${i}]`));
      return;
    }
    const bad = (): never => { throw new Error(`GGUF writer: ${what}: ${String(value)} is not a valid ${type}`); };
    const range = INT_RANGE[type];
    if (range) {
      if (!Number.isInteger(value) || (value as number) < range[0] || (value as number) > range[1]) bad();
    }
    const v = value as number;
    switch (type) {
      case 'u8': this.at(1).setUint8(0, v); break;
      case 'i8': this.at(1).setInt8(0, v); break;
      case 'u16': this.at(2).setUint16(0, v, true); break;
      case 'i16': this.at(2).setInt16(0, v, true); break;
      case 'u32': this.at(4).setUint32(0, v, true); break;
      case 'i32': this.at(4).setInt32(0, v, true); break;
      case 'f32': if (typeof value !== 'number') bad(); this.at(4).setFloat32(0, v, true); break;
      case 'f64': if (typeof value !== 'number') bad(); this.at(8).setFloat64(0, v, true); break;
      case 'bool': if (typeof value !== 'boolean') bad(); this.at(1).setUint8(0, value ? 1 : 0); break;
      case 'string': if (typeof value !== 'string') bad(); this.string(value as string); break;
      case 'u64': case 'i64': {
        if (typeof value !== 'bigint' && !Number.isSafeInteger(value)) bad();
        const b = BigInt(value as number | bigint);
        const ok = type === 'u64' ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
        if (!ok) bad();
        if (type === 'u64') this.at(8).setBigUint64(0, b, true);
        else this.at(8).setBigInt64(0, b, true);
        break;
      }
    }
  }
}
