/**
 * Repos for the fake hub, made at test time from the shared fixtures (never committed): the tiny
 * DeepSeek-V4 checkpoint split into two safetensors shards with an index, and stories260K as GGUF
 * quants.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FakeRepo } from './fake-hub.js';

export const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));

const encoder = new TextEncoder();
const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v, null, 2) + '\n');

interface Entry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** A safetensors file's tensors, each with its bytes. */
function readSafetensors(bytes: Buffer): { name: string; entry: Entry; data: Buffer }[] {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Record<string, Entry>;
  return Object.entries(header).filter(([k]) => k !== '__metadata__')
    .map(([name, entry]) => ({ name, entry, data: bytes.subarray(8 + n + entry.data_offsets[0], 8 + n + entry.data_offsets[1]) }));
}

function encodeSafetensors(tensors: { name: string; entry: Entry; data: Buffer }[]): Buffer {
  const header: Record<string, Entry> = {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.entry.dtype, shape: t.entry.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  const text = Buffer.from(JSON.stringify(header));
  const padded = Buffer.alloc(Math.ceil(text.length / 8) * 8, 0x20);
  text.copy(padded);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([len, padded, ...tensors.map((t) => t.data)]);
}

export const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];

/** deepseek-v4-tiny as the hub would serve it: config, generation config, index and two shards. */
export function tinyV4Repo(commit = 'a'.repeat(40)): FakeRepo {
  const dir = shared('fixtures/deepseek-v4-tiny');
  const tensors = readSafetensors(fs.readFileSync(`${dir}/model.safetensors`));
  const half = tensors.length >> 1;
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => s.forEach((t) => { weightMap[t.name] = SHARDS[i]; }));
  const total = tensors.reduce((a, t) => a + t.data.length, 0);
  return {
    commit,
    files: new Map<string, Uint8Array>([
      ['.gitattributes', encoder.encode('*.safetensors filter=lfs diff=lfs merge=lfs -text\n')],
      ['README.md', encoder.encode('# tiny\n')],
      ['config.json', fs.readFileSync(`${dir}/config.json`)],
      ['generation_config.json', json({ bos_token_id: 0, eos_token_id: 1 })],
      ['model.safetensors.index.json', json({ metadata: { total_size: total }, weight_map: weightMap })],
      [SHARDS[0], encodeSafetensors(shards[0])],
      [SHARDS[1], encodeSafetensors(shards[1])],
    ]),
  };
}

export const STORIES_GGUF = (): Buffer => fs.readFileSync(shared('models/stories260K/stories260K.gguf'));

/** A GGUF repo with two quants (the same stories260K bytes under two names) and a README. */
export function ggufRepo(commit = 'b'.repeat(40)): FakeRepo {
  const bytes = STORIES_GGUF();
  return {
    commit,
    files: new Map<string, Uint8Array>([
      ['README.md', encoder.encode('# stories GGUF\n')],
      ['stories260K-Q4_K_M.gguf', bytes],
      ['stories260K-Q8_0.gguf', bytes],
    ]),
  };
}
