/** `minke quantize` from the command line on the tiny DeepSeek-V4 checkpoint, then `minke info` and `minke logits` on the result. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/deepseek-v4-tiny', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-quantize-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const minke = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, MINKE_DEBUG: '' } });

describe('minke quantize (CLI)', () => {
  it('prints sizes and the KL cost, and info/logits read the result', () => {
    const out = path.join(dir, 'q2');
    const q = minke('quantize', FIXTURE, out, '--type', 'experts-q2', '--kl-tokens', '8', '--threads', '1');
    assert.equal(q.status, 0, q.stderr);
    assert.match(q.stdout, /^quantized .* \(experts-q2\): 2 × q8_0, 120 × q2_0$/m);
    assert.match(q.stdout, /^size: 3\.87 MiB → 3\.33 MiB \(86\.\d %\)$/m);
    assert.match(q.stdout, /^KL\(original ‖ quantized\) of next-token distributions over 8 positions \(seed 1234\): mean [\d.e-]+ nats/m);
    const info = minke('info', out);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /q2_0 \(held as q4_0\)\s+1\.05 MiB/);
    assert.match(info.stdout, /q8_0\s+136\.00 KiB/);
    const logits = minke('logits', out, '--tokens', '1,2,3', '--quiet', '--threads', '1');
    assert.equal(logits.status, 0, logits.stderr);
    const row = JSON.parse(logits.stdout).logits[0] as number[];
    assert.equal(row.length, 512);
    assert.ok(row.every(Number.isFinite));
  });

  it('names a missing --type and an unknown one', () => {
    const a = minke('quantize', FIXTURE, path.join(dir, 'x'));
    assert.equal(a.status, 2);
    assert.match(a.stderr, /quantize needs --type/);
    const b = minke('quantize', FIXTURE, path.join(dir, 'x'), '--type', 'q3');
    assert.equal(b.status, 1);
    assert.match(b.stderr, /--type q3 does not apply to a DeepSeek-V4 checkpoint \(use experts-q4, experts-q2, q8\)/);
  });
});
