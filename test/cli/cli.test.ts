// The `minke` command line as a user runs it: `node bin/minke.js …` as a child process on the real
// stories260K model, checked against llama.cpp's greedy references and the model's README.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
const MODEL = shared('models/stories260K/stories260K.gguf');

interface Step { token: number; top5: { id: number; p: number }[] }
interface Ref { prompt: string; input_ids: number[]; generated_ids: number[]; full_text: string; steps: Step[] }
const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')) as { results: Ref[] };
const ref = (prompt: string): Ref => greedy.results.find((r) => r.prompt === prompt)!;

/** What llama.cpp's text after the prompt is: the full detokenization minus the prompt. */
const continuation = (r: Ref): string => {
  assert.ok(r.full_text.startsWith(r.prompt));
  return r.full_text.slice(r.prompt.length);
};

function minke(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, MINKE_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const GREEDY = ['--raw', '--temperature', '0', '--threads', '1'];

test('run --raw --temperature 0 writes exactly llama.cpp\'s greedy continuation to stdout', () => {
  const r = ref('Once upon a time');
  const out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', 'Once upon a time']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, continuation(r));
  assert.ok(out.stdout.startsWith(', there was a little girl named Lily.'));
  // Sizes, progress and statistics went to stderr.
  assert.match(out.stderr, /loading stories260K\.gguf 100%/);
  assert.match(out.stderr, /prompt 5 tokens .* generated 64 tokens .* finish: max tokens/);
});

test('every fixture prompt: the greedy continuation, including the empty prompt (a document start) and a multi-line one', () => {
  for (const r of greedy.results) {
    const out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', '-q', '--', r.prompt]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, r.prompt === '' ? r.full_text : continuation(r), JSON.stringify(r.prompt));
    assert.equal(out.stderr, '');
  }
});

test('the prompt can come from stdin (its final newline dropped)', () => {
  const r = ref('Once upon a time');
  const out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', '-q'], 'Once upon a time\n');
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, continuation(r));
});

test('stop strings: the text ends right before the first one, none of it printed; escapes work', () => {
  const text = continuation(ref('Once upon a time'));
  let out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', '-q', '--stop', 'Lily', 'Once upon a time']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, text.slice(0, text.indexOf('Lily')));
  out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', '--stop', 'ball', '--stop', '\\n', 'Once upon a time']);
  assert.equal(out.stdout, text.slice(0, text.indexOf('ball')));
  assert.match(out.stderr, /finish: stop string/);
  out = minke(['run', MODEL, ...GREEDY, '--max-tokens', '64', '-q', '--stop', '\\n', 'Once upon a time']);
  assert.equal(out.stdout, text.slice(0, text.indexOf('\n')));
});

test('sampling with a seed: the same seed gives the same text, another seed another text', () => {
  const run = (seed: string) => minke(['run', MODEL, '--raw', '--temperature', '1', '--seed', seed, '--max-tokens', '40', '-q', 'Once upon a time']);
  const a = run('42'), b = run('42'), c = run('7');
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.notEqual(a.stdout, c.stdout);
  assert.ok(a.stdout.length > 0);
});

test('logits: the last position by default, every one with --all; argmax and probabilities match llama.cpp', () => {
  const r = ref('Once upon a time');
  const out = minke(['logits', MODEL, '--tokens', r.input_ids.join(','), '-q']);
  assert.equal(out.code, 0, out.stderr);
  const json = JSON.parse(out.stdout) as { tokens: number[]; logits: number[][] };
  assert.deepEqual(json.tokens, r.input_ids);
  assert.equal(json.logits.length, 1);
  assert.equal(json.logits[0].length, 512);
  assert.equal(argmax(json.logits[0]), r.generated_ids[0]);
  const p = softmax(json.logits[0]);
  for (const t of r.steps[0].top5) assert.ok(Math.abs(p[t.id] - t.p) < 1e-4, `token ${t.id}: ${p[t.id]} vs ${t.p}`);

  // --all into a file: row i predicts token i+1. The empty prompt's greedy story begins with this
  // very prompt ("Once upon a time"), so its generated ids give rows 0–3 and this prompt's gives row 4.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'minke-')), 'logits.json');
  const all = minke(['logits', MODEL, '--tokens', r.input_ids.join(','), '--all', '--out', file, '-q']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, '');
  const rows = (JSON.parse(fs.readFileSync(file, 'utf8')) as { logits: number[][] }).logits;
  assert.equal(rows.length, 5);
  const empty = ref('');
  assert.deepEqual(empty.generated_ids.slice(0, 4), r.input_ids.slice(1));
  assert.deepEqual(rows.map(argmax), [...empty.generated_ids.slice(0, 4), r.generated_ids[0]]);
  assert.deepEqual(rows[4], json.logits[0]);
});

test('info --json: architecture, parameters, formats and memory from the model README\'s hyperparameters', () => {
  const out = minke(['info', MODEL, '--json', '--ctx', '512']);
  assert.equal(out.code, 0, out.stderr);
  const info = JSON.parse(out.stdout);
  const m = info.model;
  assert.equal(m.architecture, 'llama');
  assert.equal(m.parameters, 292800); // GGUF tensor elements (README)
  assert.equal(m.layers, 5);
  assert.equal(m.vocabSize, 512);
  assert.equal(m.contextLength, 2048);
  assert.deepEqual(m.weightBytes, { f32: 292800 * 4 });
  // K and V per layer: 4 KV heads × head dim 8, f32.
  assert.equal(m.stateBytesPerToken, 5 * 2 * 4 * 8 * 4);
  assert.equal(m.context, 512);
  assert.deepEqual(m.memory, { weights: 1171200, state: 512 * 1280, total: 1171200 + 512 * 1280 });
  // The generic view of the file rides along.
  assert.equal(info.file.tensors, 48);
  assert.equal(info.file.metadata['general.architecture'], 'llama');
  // The text form says the same.
  const text = minke(['info', MODEL, '--ctx', '512']);
  assert.match(text.stdout, /architecture: llama/);
  assert.match(text.stdout, /memory for 512 tokens of context/);
});

test('info on a file minke cannot run still lists it', () => {
  const out = minke(['info', shared('models/llama-cpp-vocab/ggml-vocab-gpt-2.gguf'), '--json']);
  assert.equal(out.code, 0, out.stderr);
  const info = JSON.parse(out.stdout);
  assert.match(info.notRunnable, /unknown architecture 'gpt2'/);
  assert.equal(info.file.metadata['tokenizer.ggml.model'], 'gpt2');
});

test('errors: one clear line on stderr and a non-zero exit', () => {
  const cases: [string[], number, RegExp][] = [
    [['run', '/no/such/model.gguf', 'hi'], 1, /no such file or directory/],
    [['run', MODEL, '--bogus', 'hi'], 2, /unknown flag --bogus/],
    [['run', MODEL, '--temperature', 'hot', 'hi'], 2, /--temperature needs a number, got "hot"/],
    [['run', MODEL, '--max-tokens'], 2, /--max-tokens needs a value/],
    [['run', MODEL, '-q', '--ctx', '99999', 'hi'], 1, /--ctx 99999 is longer than the model's context of 2048 tokens/],
    [['run', MODEL, '-q', '--ctx', '4', '--raw', 'Once upon a time, there was'], 1, /the prompt is \d+ tokens but the context holds 4/],
    [['run', shared('models/llama-cpp-vocab/ggml-vocab-gpt-2.gguf'), 'hi'], 1, /unknown architecture 'gpt2'/],
    [['logits', MODEL, '-q', '--tokens', '1,x'], 2, /--tokens needs comma-separated token ids/],
    [['logits', MODEL, '-q', '--tokens', '1,999'], 1, /token id 999 is outside the vocabulary \[0, 512\)/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
  ];
  for (const [args, code, message] of cases) {
    const out = minke(args);
    assert.equal(out.code, code, `${args.join(' ')}: ${out.stderr}`);
    const lines = out.stderr.trimEnd().split('\n');
    assert.match(lines.at(-1)!, /^minke: /, args.join(' '));
    assert.match(lines.at(-1)!, message, args.join(' '));
    if (args.includes('-q') || code === 2) assert.equal(lines.length, 1, `${args.join(' ')}: ${out.stderr}`);
    assert.equal(out.stdout, '', args.join(' '));
  }
});

test('bench MODEL: prefill and decode speed and peak memory; bench kernels still dispatches', () => {
  const out = minke(['bench', MODEL, '--prompt', '16', '--gen', '8', '--reps', '2', '--threads', '1', '--json']);
  assert.equal(out.code, 0, out.stderr);
  const r = JSON.parse(out.stdout);
  assert.equal(r.prompt, 16);
  assert.equal(r.gen, 8);
  assert.equal(r.threads, 1);
  assert.equal(r.prefill.length, 2);
  assert.equal(r.decode.length, 2);
  for (const v of [...r.prefill, ...r.decode]) assert.ok(v > 0 && Number.isFinite(v));
  assert.ok(r.peakRssBytes > 1171200); // at least the weights
  assert.ok(r.peakBackendBytes >= 1171200);
  const k = minke(['bench', 'frob']);
  assert.equal(k.code, 1);
  assert.match(k.stderr, /frob: no such file or directory/);
  // `bench kernels` reaches bench/kernels.ts (its own flag check answers).
  const kernels = minke(['bench', 'kernels', '--shapes', 'oops']);
  assert.equal(kernels.code, 1);
  assert.match(kernels.stderr, /--shapes: oops is not ROWSxK/);
});

function argmax(v: number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}
