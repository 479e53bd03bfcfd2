/**
 * safetensors writer: single files and HF-style sharded checkpoints with
 * model.safetensors.index.json. Tensors are packed in the order given; the JSON header is padded
 * with spaces to a multiple of 8 bytes so that the data section starts aligned.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { byteSize, dtypeInfo, type DType } from '../tensor/dtype.js';
import { writeFileAtomically } from './file-write.js';
import { SAFETENSORS_INDEX } from './safetensors.js';

export interface SafetensorsWriteTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The tensor's bytes, or a function producing them when the tensor's turn comes. */
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface SafetensorsLayout {
  /** The 8-byte length and the padded JSON: everything before the data section. */
  readonly header: Uint8Array;
  /** Absolute offset of each tensor (in the order given) and its byte length. */
  readonly tensors: readonly { readonly name: string; readonly offset: number; readonly byteLength: number }[];
  readonly size: number;
}

export function layoutSafetensors(tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): SafetensorsLayout {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  const placed: { name: string; begin: number; byteLength: number }[] = [];
  let end = 0;
  for (const t of tensors) {
    const fail = (fault: string): never => { throw new Error(`safetensors writer: tensor '${t.name}': ${fault}`); };
    if (t.name === '__metadata__' || t.name in json) fail('duplicate or reserved name');
    const st = dtypeInfo(t.dtype).safetensors ?? fail(`dtype ${t.dtype} has no safetensors name`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    const byteLength = byteSize(t.dtype, t.shape.reduce((a, b) => a * b, 1)) ?? fail('not a whole number of elements');
    json[t.name] = { dtype: st, shape: t.shape, data_offsets: [end, end + byteLength] };
    placed.push({ name: t.name, begin: end, byteLength });
    end += byteLength;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return {
    header,
    tensors: placed.map(({ name, begin, byteLength }) => ({ name, offset: header.length + begin, byteLength })),
    size: header.length + end,
  };
}

function tensorData(t: SafetensorsWriteTensor, byteLength: number): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  if (data.length !== byteLength) throw new Error(`safetensors writer: tensor '${t.name}' needs ${byteLength} bytes, got ${data.length}`);
  return data;
}

/** Writes one file tensor by tensor to a temporary name, renamed into place when complete. */
export function writeSafetensors(file: string, tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): SafetensorsLayout {
  const layout = layoutSafetensors(tensors, metadata);
  writeFileAtomically(file, layout.size, (write) => {
    write(layout.header, 0);
    tensors.forEach((t, i) => write(tensorData(t, layout.tensors[i].byteLength), layout.tensors[i].offset));
  });
  return layout;
}

/**
 * A sharded checkpoint in `dir`: shard i is model-0000{i+1}-of-0000{n}.safetensors, plus the index
 * (weight_map and metadata.total_size, the sum of tensor bytes).
 */
export function writeShardedSafetensors(dir: string, shards: readonly (readonly SafetensorsWriteTensor[])[], metadata?: Record<string, string>): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const pad = (i: number): string => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  const files = shards.map((tensors, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    const layout = writeSafetensors(path.join(dir, file), tensors, metadata);
    for (const t of layout.tensors) {
      weightMap[t.name] = file;
      total += t.byteLength;
    }
    return file;
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  fs.writeFileSync(path.join(dir, SAFETENSORS_INDEX), JSON.stringify(index, null, 2) + '\n');
  return files;
}

/** The whole file in memory (small files: tests, fixtures). */
export function encodeSafetensors(tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): Uint8Array {
  const layout = layoutSafetensors(tensors, metadata);
  const file = new Uint8Array(layout.size);
  file.set(layout.header);
  tensors.forEach((t, i) => file.set(tensorData(t, layout.tensors[i].byteLength), layout.tensors[i].offset));
  return file;
}
