// `minke info` and `minke logits` on a DeepSeek-V4.1 directory (the tiny fixture checkpoint, which
// has no tokenizer: its Engram token map comes from --engram-map), run as a user runs them. Logits
// and the DSpark draft are checked against the official reference's goldens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
const V41 = fileURLToPath(new URL('../../../../shared/fixtures/deepseek-v41-tiny', import.meta.url));
interface Entry { file: string; shape: number[] }
const golden = JSON.parse(fs.readFileSync(path.join(V41, 'golden.json'), 'utf8')) as {
  engram: { token_map: Entry };
  cases: { name: string; tokens: number[]; prefill_len: number; outputs: { noquant: Record<string, Entry> & { dspark_anchor_ids: number[] } } }[];
};
const MAP = path.join(V41, golden.engram.token_map.file);

function minke(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function f32(e: Entry): Float32Array {
  const b = fs.readFileSync(path.join(V41, e.file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('minke info: CSA2 layer kinds, Engram on disk (not in memory), DSpark stages', () => {
  const r = minke(['info', V41]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^architecture: deepseek_v41$/m);
  assert.match(r.stdout, /^ {2}engram f8_e4m3 \(on disk\) +23\.94 KiB$/m);
  assert.match(r.stdout, /^ {2}CSA2 ratio-2 KV sources +2 layers × +512\.00 KiB per 1K tokens/m);
  assert.match(r.stdout, /^ {2}CSA2 ratio-1 KV sources +1 layer  × +1\.00 MiB per 1K tokens/m);
  assert.match(r.stdout, /dspark 3 stages, block 4/);
});

test('minke logits --all --dspark (noquant) equals the reference: every position, then the draft after the last', () => {
  const c = golden.cases[1], o = c.outputs.noquant, V = 512;
  const r = minke(['logits', V41, '--tokens', c.tokens.join(','), '--all', '--dspark', '--act-quant', 'off', '--kv-quant', 'off', '--engram-map', MAP, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { logits: number[][]; dspark: { ids: number[]; logits: number[][]; confidence: number[] } };
  assert.ok(maxDiff(out.logits.flat(), f32(o.logits)) <= 1e-3);
  // The last decode step of the golden run is position n−1: its draft is the last DSpark row.
  const k = c.tokens.length - 1 - c.prefill_len, gamma = 4;
  const ids = fs.readFileSync(path.join(V41, o.dspark_output_ids.file));
  assert.deepEqual(out.dspark.ids, Array.from(new Int32Array(ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.byteLength))).slice(k * (gamma + 1), (k + 1) * (gamma + 1)));
  assert.ok(maxDiff(out.dspark.logits.flat(), f32(o.dspark_logits).subarray(k * gamma * V, (k + 1) * gamma * V)) <= 1e-3);
  assert.ok(maxDiff(out.dspark.confidence, f32(o.dspark_confidence).subarray(k * gamma, (k + 1) * gamma)) <= 1e-3);
});

test('minke logits on V4.1 without a tokenizer or --engram-map: one clear line', () => {
  const r = minke(['logits', V41, '--tokens', '0,5,9', '--quiet']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no Engram token map: its directory needs the tokenizer\.json/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
