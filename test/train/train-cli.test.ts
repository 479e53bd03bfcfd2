/**
 * `minke train` as a user runs it (node bin/minke.js as a child process): progress on stderr, the
 * checkpoint in --out, refusing to overwrite a run, --resume continuing it, and the result read by
 * `minke logits` — with noquant numerics equal to the training forward, and with minke's default
 * numerics (FP8 activations, KV round trips) on a config whose widths those need.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tape } from '../../src/train/autograd.js';
import { V4TrainModel } from '../../src/train/v4-train-model.js';
import { loadV4Params } from '../../src/train/v4-train-params.js';
import { progressions, RUNNABLE_MODEL, TOY_MODEL, TOY_VOCAB } from './toy-v4.js';

const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-train-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function minke(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, MINKE_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A run config (and its data) in the test directory. */
function runConfig(name: string, model: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  fs.writeFileSync(path.join(dir, 'train.jsonl'), progressions(32, 16, 9).map((s) => JSON.stringify(s)).join('\n') + '\n');
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ model, data: { tokens: 'train.jsonl' }, steps: 3, batch: 2, checkpointEvery: 2, optimizer: { lr: 0.01 }, ...extra }));
  return file;
}

function logits(model: string, tokens: number[], quant: 'on' | 'off'): number[][] {
  const r = minke(['logits', model, '--tokens', tokens.join(','), '--all', '--threads', '1', '--act-quant', quant, '--kv-quant', quant, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { logits: number[][] }).logits;
}

describe('minke train', () => {
  it('trains, checkpoints, refuses to overwrite, resumes; minke logits reads the result', () => {
    const cfg = runConfig('toy', TOY_MODEL), out = path.join(dir, 'toy');
    const first = minke(['train', '--config', cfg, '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /^training a DeepSeek-V4 model of 0\.\d+M parameters \(2 layers \+ 1 MTP, dim 32, 4 experts; \d+% Muon\) on token lines \(32 sequences, sha256 [0-9a-f]{16}, seed 0\), from step 0 → 3\n/);
    assert.match(first.stderr, /\nstep 1\/3 {2}loss \d+\.\d{4} \(ce \d+\.\d{4} mtp \d+\.\d{4} idx \d+\.\d{4}\) {2}lr [\d.]+e-\d {2}\|g\| [\d.]+ {2}\d+ tok\/s {2}ETA \S+\n/);
    assert.match(first.stderr, /\nstep 3\/3 .*\nsaved .*toy \(step 3\): minke run .*toy\n$/);
    for (const f of ['config.json', 'model.safetensors', 'train-state.safetensors']) assert.ok(fs.existsSync(path.join(out, f)), f);

    const again = minke(['train', '--config', cfg, '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a training run: pass --resume/);

    const more = minke(['train', '--config', cfg, '--out', out, '--resume', '--steps', '5']);
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stderr, /resuming at step 3 → 5\n/);
    assert.match(more.stderr, /\nstep 5\/5 /);
    assert.doesNotMatch(more.stderr, /step 3\/5/);

    // A follow-up run (fine-tuning) starting from this one's weights.
    fs.writeFileSync(path.join(dir, 'next.json'), JSON.stringify({ from: 'toy', data: { tokens: 'train.jsonl' }, steps: 1, batch: 2 }));
    const next = minke(['train', '--config', path.join(dir, 'next.json'), '--out', path.join(dir, 'next')]);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /from step 0 → 1\n/);

    const tokens = [3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23];
    const got = logits(out, tokens, 'off');
    const want = new V4TrainModel(loadV4Params(out)).forward(new Tape('f32', false), tokens).logits.data;
    assert.equal(got.length, tokens.length);
    got.forEach((row, t) => row.forEach((v, i) => assert.ok(Math.abs(v - want[t * TOY_VOCAB + i]) <= 1e-4, `logit [${t}, ${i}]: ${v} vs ${want[t * TOY_VOCAB + i]}`)));
  });

  it('a model with 128-wide products runs under minke\'s default numerics (FP8 activations, KV round trips)', () => {
    const out = path.join(dir, 'runnable');
    const r = minke(['train', '--config', runConfig('runnable', RUNNABLE_MODEL, { steps: 1, batch: 1 }), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const tokens = [3, 5, 7, 9, 11, 13, 15, 17, 19];
    const quant = logits(out, tokens, 'on'), exact = logits(out, tokens, 'off');
    let d = 0, range = 0;
    quant.forEach((row, t) => row.forEach((v, i) => {
      assert.ok(Number.isFinite(v));
      d = Math.max(d, Math.abs(v - exact[t][i]));
      range = Math.max(range, Math.abs(exact[t][i]));
    }));
    assert.ok(d > 0 && d < 0.1 * range, `default numerics move the logits by ${d} (largest |logit| ${range})`);
  });

  it('usage: --help, required flags, bad config', () => {
    const help = minke(['train', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: minke train --config FILE\.json --out DIR \[--resume\] \[--steps N\] \[--seed S\]/);
    assert.match(minke(['--help']).stdout, /minke train --config FILE --out DIR/);
    const noOut = minke(['train', '--config', 'x.json']);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /--out DIR is required/);
    const bad = minke(['train', '--config', runConfig('bad', TOY_MODEL, { optimiser: {} }), '--out', path.join(dir, 'bad')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.json: the training config has unknown key "optimiser"/);
    const badModel = minke(['train', '--config', runConfig('badmodel', { ...TOY_MODEL, hidden_size: 30 }), '--out', path.join(dir, 'bm')]);
    assert.equal(badModel.code, 1);
    assert.match(badModel.stderr, /hidden_size 30 .* must be multiples of 32/);
  });
});
