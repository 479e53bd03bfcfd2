/** File-level helpers of `minke quantize`: weight bytes on disk, the files a checkpoint carries besides its weights, writing one. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, writeShardedSafetensors, type SafetensorsWriteTensor } from '../formats/safetensors-writer.js';

/** Bytes of the weight files at `p`: a file's size, or a directory's .safetensors / .gguf files. */
export function weightFileBytes(p: string): number {
  if (!fs.statSync(p).isDirectory()) return fs.statSync(p).size;
  return fs.readdirSync(p)
    .filter((f) => f.endsWith('.safetensors') || f.endsWith('.gguf'))
    .reduce((s, f) => s + fs.statSync(path.join(p, f)).size, 0);
}

/** Tokenizer and generation files a Hugging Face directory carries beside config.json and the weights. */
const CARRIED = /^(tokenizer.*|generation_config\.json|special_tokens_map\.json|chat_template\..*|.*\.jinja|vocab\..*|merges\.txt|encoding\/.*)$/;

/** Copies the tokenizer/generation files of `src` into `dst` (not config.json, not the weights). */
export function copyCarriedFiles(src: string, dst: string): string[] {
  const copied: string[] = [];
  for (const f of fs.readdirSync(src)) {
    const from = path.join(src, f);
    if (!CARRIED.test(f) || !fs.statSync(from).isFile()) continue;
    fs.copyFileSync(from, path.join(dst, f));
    copied.push(f);
  }
  return copied;
}

/** Refuses to write over the source or into a non-empty directory that is not a previous output. */
export function prepareOutputDir(src: string, dst: string): void {
  if (path.resolve(src) === path.resolve(dst)) throw new Error(`the output ${dst} is the source checkpoint itself`);
  if (fs.existsSync(dst)) {
    if (!fs.statSync(dst).isDirectory()) throw new Error(`${dst} exists and is not a directory`);
    const left = fs.readdirSync(dst);
    if (left.length && !left.includes('config.json')) throw new Error(`${dst} is a non-empty directory that is not a checkpoint; choose a new path`);
    for (const f of left) if (f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.rmSync(path.join(dst, f));
  }
  fs.mkdirSync(dst, { recursive: true });
}

/**
 * Writes a rewritten checkpoint into `dstDir`: each tensor into the shard its source tensor was in
 * (`model.safetensors` when there was one file), `config` as config.json, and the tokenizer files.
 */
export function writeCheckpoint(srcDir: string, dstDir: string, tensors: readonly { readonly shard: string; readonly tensor: SafetensorsWriteTensor }[], config: object): void {
  const shards = new Map<string, SafetensorsWriteTensor[]>();
  for (const { shard, tensor } of tensors) {
    const list = shards.get(shard) ?? [];
    list.push(tensor);
    shards.set(shard, list);
  }
  prepareOutputDir(srcDir, dstDir);
  const groups = [...shards.values()];
  if (groups.length === 1) writeSafetensors(path.join(dstDir, 'model.safetensors'), groups[0]);
  else writeShardedSafetensors(dstDir, groups);
  fs.writeFileSync(path.join(dstDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  copyCarriedFiles(srcDir, dstDir);
}
