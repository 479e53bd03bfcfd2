// `minke info` and `minke logits` on a DeepSeek-V4 Hugging Face directory (the tiny fixture
// checkpoint), run as a user runs them: `node bin/minke.js …` as a child process. Logits are checked
// against the official reference's goldens; sizes against the checkpoint's own header and config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
const V4 = shared('fixtures/deepseek-v4-tiny');
const STORIES = shared('models/stories260K/stories260K.gguf');
const config = JSON.parse(fs.readFileSync(path.join(V4, 'config.json'), 'utf8')) as Record<string, number & number[]>;

function minke(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, env: { ...process.env, MINKE_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The safetensors header (u64-LE length, then JSON): name → dtype, shape, byte range. */
function safetensorsHeader(file: string): Map<string, { dtype: string; shape: number[]; bytes: number }> {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const json = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, json, 0, json.length, 8);
    const out = new Map<string, { dtype: string; shape: number[]; bytes: number }>();
    for (const [name, t] of Object.entries(JSON.parse(json.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>)) {
      if (name !== '__metadata__') out.set(name, { dtype: t.dtype, shape: t.shape, bytes: t.data_offsets[1] - t.data_offsets[0] });
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

interface Golden { name: string; tokens: number[]; outputs: Record<string, Record<string, { file: string; shape: number[] }>> }
const golden = JSON.parse(fs.readFileSync(path.join(V4, 'golden.json'), 'utf8')) as { cases: Golden[] };
const P3 = golden.cases.find((c) => c.name === 'p3')!;

/** A golden array as rows of `shape[1]` values (raw little-endian f32). */
function goldenRows(mode: string, what: string): number[][] {
  const e = P3.outputs[mode][what];
  const buf = fs.readFileSync(path.join(V4, e.file));
  const a = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  assert.equal(a.length, e.shape[0] * e.shape[1]);
  return Array.from({ length: e.shape[0] }, (_, r) => Array.from(a.subarray(r * e.shape[1], (r + 1) * e.shape[1])));
}

function assertClose(got: number[][], want: number[][], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: rows`);
  for (let r = 0; r < want.length; r++) {
    assert.equal(got[r].length, want[r].length, `${what}: row ${r} length`);
    let worst = 0;
    for (let i = 0; i < want[r].length; i++) worst = Math.max(worst, Math.abs(got[r][i] - want[r][i]));
    assert.ok(worst <= tol, `${what} row ${r}: max |Δ| ${worst} > ${tol}`);
  }
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, r) => row.map((v, i) => Math.abs(v - b[r][i]))));

test('info --json on a V4 directory: parameters, active parameters, formats and per-layer-kind state, no weights loaded', () => {
  const out = minke(['info', V4, '--json', '--ctx', '1024']);
  assert.equal(out.code, 0, out.stderr);
  const info = JSON.parse(out.stdout);
  const m = info.model;
  assert.equal(m.architecture, 'deepseek_v4');
  assert.equal(m.layers, config.num_hidden_layers);
  assert.equal(m.vocabSize, config.vocab_size);
  assert.equal(m.contextLength, config.max_position_embeddings);

  // Parameters: every stored value but the E8M0 scales, FP4 experts unpacked (two codes a byte);
  // one token runs through the non-expert ones and top-k of the routed experts.
  const header = safetensorsHeader(path.join(V4, 'model.safetensors'));
  let total = 0, experts = 0, bytes = 0;
  for (const [name, t] of header) {
    bytes += t.bytes;
    if (name.endsWith('.scale')) continue;
    const n = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'I8' ? 2 : 1);
    total += n;
    if (/\.ffn\.experts\.\d+\./.test(name)) experts += n;
  }
  assert.equal(m.parameters, total);
  assert.equal(m.activeParameters, total - experts + (experts * config.num_experts_per_tok) / config.n_routed_experts);
  assert.ok(m.activeParameters < m.parameters);
  assert.equal(Object.values(m.weightBytes as Record<string, number>).reduce((a, b) => a + b, 0), bytes);
  assert.equal(m.weightBytes.fp4_e2m1, [...header].filter(([n]) => /experts\.\d+\.w\d\.weight$/.test(n)).reduce((s, [, t]) => s + t.bytes, 0));

  // State (spec §9.2, f32): every layer keeps a window ring [W, head_dim]; a ratio-r layer adds
  // ctx/r compressed keys of head_dim, and ratio 4 (CSA) also ctx/4 indexer keys of index_head_dim.
  const W = config.sliding_window, hd = config.head_dim, ihd = config.index_head_dim;
  assert.deepEqual(config.compress_ratios, [0, 4, 16, 4, 0]); // 1 sliding, 2 CSA, 1 HCA (ratio 16) + MTP sliding
  assert.equal(m.windowStateBytesPerLayer, 4 * W * hd);
  assert.deepEqual(m.stateByLayerKind, {
    sliding: { layers: 1, bytesPer1KTokens: 0, bytesForContext: 0 },
    csa: { layers: 2, bytesPer1KTokens: 4 * (1024 / 4) * (hd + ihd), bytesForContext: 2 * 4 * 256 * (hd + ihd) },
    hca: { layers: 1, bytesPer1KTokens: 4 * (1024 / 16) * hd, bytesForContext: 4 * 64 * hd },
  });
  // The whole state for 1024 tokens adds the compressors' partial-block buffers (kv and score,
  // [c2·r, c2·d] each, c2 = 2 for ratio 4) and, for CSA, the indexer compressor's ([8, 2·ihd] ×2).
  const sliding = W * hd;
  const csa = W * hd + 256 * hd + 2 * (8 * 2 * hd) + 256 * ihd + 2 * (8 * 2 * ihd);
  const hca = W * hd + 64 * hd + 2 * (16 * hd);
  const state = 4 * (2 * sliding + 2 * csa + hca);
  assert.equal(m.context, 1024);
  assert.deepEqual(m.memory, { weights: bytes, state, total: bytes + state });
  // The generic view of the directory's file rides along.
  assert.equal(info.file.tensors, header.size);
  assert.equal(info.file.bytes, bytes);
});

test('info (text) on a V4 directory: active parameters, one state line per layer kind, the memory for --ctx', () => {
  const out = minke(['info', V4, '--ctx', '1024']);
  assert.equal(out.code, 0, out.stderr);
  const s = out.stdout;
  assert.match(s, /^architecture: deepseek_v4$/m);
  assert.match(s, /^parameters: 4\.08M \(\d+\), active per token 2\.61M \(\d+\)$/m);
  assert.match(s, /state per 1K tokens of context, by layer kind \(each layer also keeps a window of 8\.00 KiB\):/);
  assert.match(s, /^ {2}window only +1 layer +× +0 B per 1K tokens = 0 B for 1024 tokens$/m);
  assert.match(s, /^ {2}CSA +2 layers × +256\.00 KiB per 1K tokens = 512\.00 KiB for 1024 tokens$/m);
  assert.match(s, /^ {2}HCA +1 layer +× +32\.00 KiB per 1K tokens = 32\.00 KiB for 1024 tokens$/m);
  assert.match(s, /^memory for 1024 tokens of context: weights 3\.83 MiB \+ state 664\.00 KiB = 4\.48 MiB$/m);
  assert.match(s, /^tensors: 427, /m); // the generic listing
  assert.equal(out.stderr, '');
});

test('logits --act-quant off --kv-quant off --mtp --all: the noquant golden logits and MTP logits', () => {
  const out = minke(['logits', V4, '--tokens', P3.tokens.join(','), '--all', '--act-quant', 'off', '--kv-quant', 'off', '--mtp']);
  assert.equal(out.code, 0, out.stderr);
  const json = JSON.parse(out.stdout) as { tokens: number[]; logits: number[][]; mtp_logits: number[][] };
  assert.deepEqual(json.tokens, [70, 67, 408]);
  assertClose(json.logits, goldenRows('noquant', 'logits'), 1e-3, 'noquant logits');
  assertClose(json.mtp_logits, goldenRows('noquant', 'mtp_logits'), 1e-3, 'noquant mtp_logits');
  // What it will need is said before loading, then the progress.
  assert.match(out.stderr, /^deepseek-v4-tiny: deepseek_v4, 4\.08M parameters \(2\.61M active\), 3\.83 MiB weights \+ \d+ tokens × /);
  assert.match(out.stderr, /loading deepseek-v4-tiny 100%/);
});

test('logits default (faithful): the faithful golden; --mtp without --all gives the last MTP row', () => {
  const out = minke(['logits', V4, '--tokens', P3.tokens.join(','), '--mtp', '-q']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, '');
  const json = JSON.parse(out.stdout) as { logits: number[][]; mtp_logits: number[][] };
  assertClose(json.logits, goldenRows('faithful', 'logits').slice(-1), 1e-3, 'faithful last logits');
  assertClose(json.mtp_logits, goldenRows('faithful', 'mtp_logits').slice(-1), 1e-3, 'faithful last mtp_logits');

  const all = JSON.parse(minke(['logits', V4, '--tokens', P3.tokens.join(','), '--all', '-q']).stdout) as { logits: number[][]; mtp_logits?: unknown };
  assertClose(all.logits, goldenRows('faithful', 'logits'), 1e-3, 'faithful logits');
  assert.equal(all.mtp_logits, undefined);
  // The two switches are independent: activation rounding off alone (no_act_quant) is neither setting.
  const noAct = JSON.parse(minke(['logits', V4, '--tokens', P3.tokens.join(','), '--all', '--act-quant', 'off', '-q']).stdout) as { logits: number[][] };
  assert.ok(maxDiff(noAct.logits, goldenRows('faithful', 'logits')) > 1e-2);
  assert.ok(maxDiff(noAct.logits, goldenRows('noquant', 'logits')) > 1e-2);
});

test('logits errors: V4-only flags on a dense model, before loading; malformed values', () => {
  const cases: [string[], number, RegExp][] = [
    [['logits', STORIES, '--tokens', '1,2,3', '--mtp'], 1, /--mtp applies to DeepSeek-V4 models \(llama has no MTP block\)/],
    [['logits', STORIES, '--tokens', '1,2,3', '--act-quant', 'off'], 1, /--act-quant applies to DeepSeek-V4 models/],
    [['logits', STORIES, '--tokens', '1,2,3', '--kv-quant', 'off'], 1, /--kv-quant applies to DeepSeek-V4 models/],
    [['logits', V4, '--tokens', '1,2', '--act-quant', 'maybe'], 2, /--act-quant is on or off, got "maybe"/],
    [['logits', V4, '--tokens', '70', '--mtp'], 2, /--mtp needs at least 2 tokens/],
    [['logits', V4, '--tokens', '70,512'], 1, /token id 512 is outside the vocabulary \[0, 512\)/],
  ];
  for (const [args, code, message] of cases) {
    const out = minke(args);
    assert.equal(out.code, code, `${args.join(' ')}: ${out.stderr}`);
    // No -q: still one line, so the check came before any size or progress line.
    assert.equal(out.stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: ${out.stderr}`);
    assert.match(out.stderr, /^minke: /);
    assert.match(out.stderr, message, args.join(' '));
    assert.equal(out.stdout, '');
  }
  // 'on' is what a dense model does anyway.
  const on = minke(['logits', STORIES, '--tokens', '1,2,3', '--act-quant', 'on', '-q']);
  assert.equal(on.code, 0, on.stderr);
  assert.equal((JSON.parse(on.stdout) as { logits: number[][] }).logits[0].length, 512);
});
