import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Sampler, argmax } from '../../src/engine/sampler.js';

const logits = () => Float32Array.from([1, 3, 2, 3, -1]);

test('greedy takes the first maximum', () => {
  assert.equal(argmax(logits()), 1);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits()), 1);
});

test('same seed, same tokens; other seed, other stream', () => {
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed });
    return Array.from({ length: 50 }, () => s.sample(logits()));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('draw frequencies follow softmax(logits / T)', () => {
  const T = 0.7;
  const s = new Sampler({ temperature: T, topK: 0, topP: 1, minP: 0, seed: 1 });
  const n = 40000;
  const counts = new Array(5).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits())]++;
  const e = [1, 3, 2, 3, -1].map((l) => Math.exp(l / T));
  const z = e.reduce((a, b) => a + b);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(counts[i] / n - e[i] / z) < 0.01, `token ${i}: ${counts[i] / n} vs ${e[i] / z}`);
});

test('top-k, top-p and min-p keep only the allowed tokens', () => {
  const seen = (opts: ConstructorParameters<typeof Sampler>[0]) => {
    const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 3, ...opts });
    const set = new Set<number>();
    for (let i = 0; i < 3000; i++) set.add(s.sample(logits()));
    return [...set].sort();
  };
  assert.deepEqual(seen({ topK: 2 }), [1, 3]);
  // p(1) = p(3) = e^3 / (e + 2e^3 + e^2 + e^-1) ≈ 0.391 each: the two of them reach 0.78.
  assert.deepEqual(seen({ topP: 0.75 }), [1, 3]);
  assert.deepEqual(seen({ topP: 0.8 }), [1, 2, 3]);
  // min-p 0.3: e^(2−3) = 0.37 ≥ 0.3 stays, e^(1−3) = 0.135 goes.
  assert.deepEqual(seen({ minP: 0.3 }), [1, 2, 3]);
  assert.deepEqual(seen({ minP: 0.5 }), [1, 3]);
});

test('penalties: repeat divides positive and multiplies negative logits, presence and frequency subtract', () => {
  const l = Float32Array.from([2, -2, 1]);
  new Sampler({ temperature: 0, repeatPenalty: 2 }).sample(l, [0, 1]);
  assert.deepEqual([...l], [1, -4, 1]);
  const m = Float32Array.from([2, 2, 2]);
  new Sampler({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.25 }).sample(m, [0, 0, 1]);
  assert.deepEqual([...m], [2 - 0.5 - 0.5, 2 - 0.5 - 0.25, 2]);
});

test('bad options are clear errors', () => {
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler({ topP: 0 }), /top_p/);
});

test('rng is uniform enough', () => {
  const r = new Rng(42);
  let sum = 0;
  for (let i = 0; i < 10000; i++) { const v = r.next(); assert.ok(v >= 0 && v < 1); sum += v; }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});
