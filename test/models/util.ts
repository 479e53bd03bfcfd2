/** Helpers shared by the model tests. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LanguageModel } from '../../src/models/index.js';

/** A path under <repo>/../shared (tests run from dist/test/models/). */
export function sharedPath(rel: string): string {
  return fileURLToPath(new URL(`../../../../shared/${rel}`, import.meta.url));
}

export const STORIES_GGUF = sharedPath('models/stories260K/stories260K.gguf');
export const STORIES_BIN = sharedPath('models/stories260K/stories260K.bin');
export const STORIES_TOK = sharedPath('models/stories260K/tok512.bin');

export interface GreedyStep { readonly token: number; readonly top5: readonly { readonly id: number; readonly p: number }[] }
export interface GreedyCase {
  readonly prompt: string;
  readonly prompt_tokens: readonly number[];
  readonly input_ids: readonly number[];
  readonly generated_ids: readonly number[];
  readonly steps: readonly GreedyStep[];
}

/** llama.cpp's greedy references for stories260K (fixtures/stories260K/README.md). */
export function greedyCases(): GreedyCase[] {
  return JSON.parse(fs.readFileSync(sharedPath('fixtures/stories260K/greedy.json'), 'utf8')).results;
}

/** softmax in f64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]);
  const p = Float64Array.from(logits as ArrayLike<number>, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

/** Index of the largest value (first on ties). */
export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Largest |p(id) − reference p| over a step's top-5. */
export function top5Error(probs: Float64Array, step: GreedyStep): number {
  return Math.max(...step.top5.map((t) => Math.abs(probs[t.id] - t.p)));
}

/**
 * One stories260K case against llama.cpp: the prompt's ids, 64 greedy tokens and every step's
 * top-5 probabilities within 1e-4.
 */
export async function checkGreedyCase(model: LanguageModel, c: GreedyCase): Promise<void> {
  const ids = model.tokenizer.encode(c.prompt);
  assert.deepEqual(ids, c.input_ids);
  const seq = model.newSequence({ contextLength: 512 });
  let logits = await seq.forward(ids);
  const out: number[] = [];
  let worst = 0;
  for (let i = 0; i < c.generated_ids.length; i++) {
    worst = Math.max(worst, top5Error(softmax(logits), c.steps[i]));
    out.push(argmax(logits));
    logits = await seq.forward([out[i]]);
  }
  assert.deepEqual(out, c.generated_ids);
  assert.ok(worst <= 1e-4, `top-5 probabilities differ from llama.cpp's by up to ${worst}`);
  assert.equal(seq.length, ids.length + out.length);
  seq.free();
}
