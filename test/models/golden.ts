/**
 * The official-reference golden sets of shared/fixtures/deepseek-v{3,4}-tiny, read the same way
 * by every test that checks a model against them: cases (prefill or greedy decode) with logits
 * stored as raw f32 files.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LanguageModel } from '../../src/models/index.js';
import { argmax } from './util.js';

export interface ArrayEntry { file: string; dtype: 'f32' | 'i32'; shape: number[] }

export interface GoldenCase {
  name: string;
  kind: 'prefill' | 'decode';
  tokens: number[];
  steps?: number;
  generated?: Record<string, number[]>;
  outputs: Record<string, Record<string, ArrayEntry>>;
}

export function readGolden(dir: string): { cases: GoldenCase[] } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8'));
}

export function readArray(dir: string, e: ArrayEntry): Float32Array | Int32Array {
  const b = fs.readFileSync(path.join(dir, e.file));
  const copy = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return e.dtype === 'i32' ? new Int32Array(copy) : new Float32Array(copy);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Runs case `c` on `model` and checks mode `mode`'s logits within `tol` (a prefill's every
 * position, or each greedy step of a decode) and the greedy tokens; `rows` limits the compared
 * positions / steps (a known rounding flip after them).
 */
export async function checkGoldenCase(model: LanguageModel, dir: string, c: GoldenCase, mode: string, vocab: number, tol = 1e-3, rows = Infinity): Promise<void> {
  const out = c.outputs[mode];
  const seq = model.newSequence();
  try {
    if (c.kind === 'prefill') {
      const logits = await seq.forward(c.tokens, { allLogits: true });
      const n = Math.min(rows, c.tokens.length) * vocab;
      const d = maxAbsDiff(logits.subarray(0, n), readArray(dir, out.logits).subarray(0, n));
      assert.ok(d <= tol, `${c.name}: logits differ by ${d}`);
      return;
    }
    const want = readArray(dir, out.step_logits) as Float32Array;
    const tokens: number[] = [];
    let worst = 0;
    let logits = await seq.forward(c.tokens);
    for (let i = 0; i < c.steps!; i++) {
      if (i > 0) logits = await seq.forward([tokens[i - 1]]);
      if (i < rows) worst = Math.max(worst, maxAbsDiff(logits, want.subarray(i * vocab, (i + 1) * vocab)));
      tokens.push(argmax(logits));
    }
    if (c.generated?.[mode] && rows === Infinity) assert.deepEqual(tokens, c.generated[mode], `${c.name}: greedy tokens differ`);
    assert.ok(worst <= tol, `${c.name}: step logits differ by ${worst}`);
  } finally {
    seq.free();
  }
}
