// `minke info` and `minke logits` on a DeepSeek-V4.1 directory (the tiny fixture checkpoint, which
// has no tokenizer: its Engram token map comes from --engram-map), run as a user runs them. Logits
// and the DSpark draft are checked against the official reference's goldens. `minke run` and
// `minke bench` on the same weights given a tokenizer of their vocabulary size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenMapOf } from '../../src/models/deepseek-v41-load.js';
import { tokenizerFromHF } from '../../src/tokenizer/from-hf.js';
import { trainBpe, writeTrainedTokenizer } from '../../src/train/tokenizer-train.js';

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

test('minke run and minke bench on a V4.1 directory with its own tokenizer (Engram map from it)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v41-cli-'));
  try {
    // A byte-level BPE of the fixture's 512 ids with V4's special tokens, and the weights beside it.
    const words = Array.from({ length: 3000 }, (_, i) => (i * 7919).toString(36));
    const trained = trainBpe(words.map((w, i) => `${w} plus ${i} is ${w.length}. Hello there!`).join('\n'), { vocabSize: 512 });
    assert.equal(trained.vocabSize, 512, 'the tokenizer covers the model vocabulary');
    writeTrainedTokenizer(dir, trained);
    fs.symlinkSync(path.join(V41, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const tok = tokenizerFromHF(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')), {});
    const config = JSON.parse(fs.readFileSync(path.join(V41, 'config.json'), 'utf8'));
    const distinct = Math.max(...tokenMapOf(tok, { vocab: config.vocab_size, engram: {} })) + 1;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, engram_compressed_vocab_size: distinct }));

    const run = minke(['run', dir, '2 plus 5 is', '--raw', '--temperature', '0', '--max-tokens', '6']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.length > 0, 'some text was generated');
    assert.match(run.stderr, /deepseek_v41|loaded in/);
    const chat = minke(['run', dir, 'Hello', '--think', 'low', '--temperature', '0', '--max-tokens', '4']);
    assert.equal(chat.code, 0, chat.stderr);

    const bench = minke(['bench', dir, '--prompt', '16', '--gen', '4', '--reps', '1']);
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stdout, /^pp16 +[\d.]+ ±/m);
    assert.match(bench.stdout, /^tg4 +[\d.]+ ±/m);
    assert.match(bench.stdout, /^Engram row cache: [\d.]+ % hits \(\d+ hits, \d+ rows read from disk\)$/m);

    // A config whose compressed vocabulary does not fit the tokenizer: the counts are named.
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, engram_compressed_vocab_size: distinct + 1 }));
    const bad = minke(['run', dir, 'x', '--raw', '--max-tokens', '1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, new RegExp(`has ${distinct} distinct normalised keys but engram_compressed_vocab_size is ${distinct + 1}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
