/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`, then the data;
 * offsets are relative to the first byte after the header. Single files and HF sharded checkpoints
 * (model.safetensors.index.json with a weight_map from tensor name to shard file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { byteSize, dtypeFromSafetensors } from '../tensor/dtype.js';
import { FormatError } from './errors.js';
import { openFileSource, type ByteSource } from './source.js';
import { checkOverlaps, elementCount, tensorReaders, type TensorInfo, type WeightFile } from './weight-file.js';

export interface SafetensorsHeader {
  /** Byte offset of the data section (8 + header length). */
  readonly dataOffset: number;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Record<string, string>;
}

export type SafetensorsFile = WeightFile & { readonly metadata: Record<string, string> };

/** The reference implementation refuses larger headers too; real ones are a few MB at most. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseSafetensorsHeader(src: ByteSource): SafetensorsHeader {
  const fail: (fault: string) => never = (fault) => { throw new FormatError(src.name, fault); };
  if (src.size < 8) fail(`truncated: ${src.size} bytes, too short for the 8-byte header length`);
  const lenBytes = new Uint8Array(8);
  src.read(0, lenBytes);
  const len = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (len > BigInt(src.size - 8)) fail(`header length ${len} runs past the end of the file (${src.size} bytes)`);
  if (len > BigInt(MAX_HEADER_BYTES)) fail(`header length ${len} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLength = Number(len);
  const dataOffset = 8 + headerLength;
  const raw = new Uint8Array(headerLength);
  src.read(8, raw);
  if (raw[0] !== 0x7b) fail(`header does not start with '{' (not a safetensors file?)`);

  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(raw));
  } catch (e) {
    fail(`invalid header JSON: ${(e as Error).message}`);
  }
  if (!isObject(json)) fail('invalid header JSON: not an object');

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(src.name, entry);
      continue;
    }
    tensors.set(name, parseEntry(src, dataOffset, name, entry));
  }
  checkOverlaps(src.name, tensors);
  return { dataOffset, tensors, metadata };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (!isObject(entry)) throw new FormatError(file, '__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new FormatError(file, `__metadata__ value of '${k}' is not a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(src: ByteSource, dataOffset: number, name: string, entry: unknown): TensorInfo {
  const fail: (fault: string) => never = (fault) => { throw new FormatError(src.name, `tensor '${name}': ${fault}`); };
  if (!isObject(entry)) fail('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') fail('dtype is missing or not a string');
  const info = dtypeFromSafetensors(dtype as string) ?? fail(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they start`);
  const dims = shape as number[];
  const count = elementCount(dims);
  const bytes = count === undefined ? undefined : byteSize(info.name, count);
  if (bytes !== end - begin) {
    fail(`shape [${dims.join(', ')}] of ${dtype} is ${bytes ?? 'too many'} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  if (dataOffset + end > src.size) {
    throw new FormatError(src.name, `truncated: tensor '${name}' ends at byte ${dataOffset + end} but the file has ${src.size} bytes`);
  }
  return { name, dtype: info.name, shape: dims, byteLength: end - begin, file: src.name, offset: dataOffset + begin };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/** A .safetensors file, a model.safetensors.index.json, or a directory holding either. */
export function openSafetensors(pathOrDir: string): SafetensorsFile {
  if (fs.statSync(pathOrDir).isDirectory()) {
    const index = path.join(pathOrDir, SAFETENSORS_INDEX);
    if (fs.existsSync(index)) return openSharded(index);
    const single = path.join(pathOrDir, 'model.safetensors');
    if (fs.existsSync(single)) return openSingle(single);
    throw new FormatError(pathOrDir, `directory has neither ${SAFETENSORS_INDEX} nor model.safetensors`);
  }
  return pathOrDir.endsWith('.json') ? openSharded(pathOrDir) : openSingle(pathOrDir);
}

function openSingle(file: string): SafetensorsFile {
  const src = openFileSource(file);
  try {
    const { tensors, metadata } = parseSafetensorsHeader(src);
    return { path: file, tensors, metadata, ...tensorReaders(file, tensors, () => src), close: () => src.close() };
  } catch (e) {
    src.close();
    throw e;
  }
}

/** Shard headers are parsed up front (names, shapes, dtypes); shard files are opened on first read. */
function openSharded(indexPath: string): SafetensorsFile {
  const fail: (fault: string) => never = (fault) => { throw new FormatError(indexPath, fault); };
  let index: unknown;
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e;
    fail(`invalid JSON: ${(e as Error).message}`);
  }
  if (!isObject(index) || !isObject(index.weight_map)) fail('has no "weight_map" object');
  const weightMap = (index as { weight_map: Record<string, unknown> }).weight_map;
  const metadata: Record<string, string> = {};
  const indexMeta = (index as Record<string, unknown>).metadata;
  if (isObject(indexMeta)) for (const [k, v] of Object.entries(indexMeta)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);

  const dir = path.dirname(indexPath);
  const shardTables = new Map<string, ReadonlyMap<string, TensorInfo>>();
  const tensors = new Map<string, TensorInfo>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
      fail(`tensor '${name}' is mapped to ${JSON.stringify(shard)}, not a file name inside the checkpoint directory`);
    }
    const shardPath = path.join(dir, shard as string);
    let table = shardTables.get(shardPath);
    if (!table) {
      if (!fs.existsSync(shardPath)) fail(`shard '${shard}' (holding tensor '${name}') is missing`);
      const src = openFileSource(shardPath);
      try {
        table = parseSafetensorsHeader(src).tensors;
      } finally {
        src.close();
      }
      shardTables.set(shardPath, table);
    }
    const info = table.get(name) ?? fail(`tensor '${name}' is mapped to shard '${shard}' but that shard has no such tensor`);
    tensors.set(name, info);
  }
  if (tensors.size === 0) fail('weight_map lists no tensors');

  const open = new Map<string, ByteSource>();
  const sourceOf = (t: TensorInfo): ByteSource => {
    let src = open.get(t.file);
    if (!src) open.set(t.file, (src = openFileSource(t.file)));
    return src;
  };
  const close = (): void => {
    for (const src of open.values()) src.close();
    open.clear();
  };
  return { path: indexPath, tensors, metadata, ...tensorReaders(indexPath, tensors, sourceOf), close };
}
