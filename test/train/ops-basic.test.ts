/**
 * The general training ops: forward values against hand formulas and the inference host kernels
 * (deepseek-ops.ts, host-linear.ts), and every backward against central finite differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hadamard, ropeTail } from '../../src/kernels/deepseek-ops.js';
import { rmsnormRows } from '../../src/models/host-linear.js';
import { parameter, Tape } from '../../src/train/autograd.js';
import {
  add, concatRows, crossEntropy, detach, embedding, hadamardRows, klDivergence, linear, mul, rmsnorm, rope, scale, softmax,
} from '../../src/train/ops-basic.js';
import { rng } from '../support/rng.js';
import { gradCheck, randomTensor } from './gradcheck.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

describe('tape', () => {
  it('accumulates gradients over uses and refuses bad roots', () => {
    const x = parameter([2], Float64Array.from([3, -2]));
    const tp = new Tape('f64');
    const y = add(tp, mul(tp, x, x), x); // y = x² + x
    tp.backward(y, [1, 1]);
    assert.deepEqual([...x.grad!], [7, -3]);
    assert.throws(() => new Tape('f64').backward(mul(new Tape('f64'), x, x)), /seed/);
    const c = new Tape('f64').constant([1], [2]);
    assert.throws(() => new Tape('f64').backward(c), /does not depend/);
  });

  it('records nothing without gradients, and detach cuts the graph', () => {
    const x = parameter([2], Float64Array.from([1, 2]));
    assert.equal(scale(new Tape('f64', false), x, 2).requiresGrad, false);
    const tp = new Tape('f64');
    const y = add(tp, scale(tp, detach(x), 5), x);
    tp.backward(y, [1, 1]);
    assert.deepEqual([...x.grad!], [1, 1]);
  });
});

describe('basic ops', () => {
  const next = rng(7);

  it('embedding gathers rows and scatters gradients (repeated ids add up)', () => {
    const table = randomTensor(next, [5, 3]);
    const ids = [4, 0, 4, 2];
    const y = embedding(new Tape('f64', false), table, ids);
    close(y.data.subarray(0, 3), table.data.subarray(12, 15), 0, 'row 0');
    gradCheck('embedding', [table], (tp) => embedding(tp, table, ids));
    assert.throws(() => embedding(new Tape(), table, [5]), /outside/);
  });

  it('linear is x·Wᵀ (blocked and tail outputs) with exact gradients', () => {
    for (const [n, k, m] of [[3, 7, 6], [2, 5, 4], [1, 3, 1]]) {
      const x = randomTensor(next, [n, k]), W = randomTensor(next, [m, k]);
      const y = linear(new Tape('f64', false), x, W);
      const want: number[] = [];
      for (let t = 0; t < n; t++) for (let o = 0; o < m; o++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += x.data[t * k + i] * W.data[o * k + i];
        want.push(s);
      }
      close(y.data, want, 1e-12, `linear ${n}×${k}→${m}`);
      gradCheck(`linear ${n}×${k}→${m}`, [x, W], (tp) => linear(tp, x, W));
    }
    assert.throws(() => linear(new Tape(), randomTensor(next, [2, 3]), randomTensor(next, [4, 5])), /rows of 5/);
  });

  it('add, mul, scale and concatRows', () => {
    const a = randomTensor(next, [2, 3]), b = randomTensor(next, [2, 3]), c = randomTensor(next, [1, 3]);
    gradCheck('add', [a, b], (tp) => add(tp, a, b));
    gradCheck('mul', [a, b], (tp) => mul(tp, a, b));
    gradCheck('scale', [a], (tp) => scale(tp, a, -1.5));
    const cat = concatRows(new Tape('f64', false), a, c, 3);
    assert.deepEqual(cat.shape, [3, 3]);
    close(cat.data.subarray(6), c.data, 0, 'concat tail');
    gradCheck('concatRows', [a, c], (tp) => concatRows(tp, a, c, 3));
    assert.throws(() => add(new Tape(), a, c), /6 and 3 values/);
  });

  it('rmsnorm equals the inference rmsnormRows, weighted and weightless', () => {
    const x = randomTensor(next, [3, 8]), w = randomTensor(next, [8], 0.5, 1.5);
    const ref = rmsnormRows(Float32Array.from(x.data), 8, Float32Array.from(w.data), 1e-6, new Float32Array(24));
    close(rmsnorm(new Tape('f64', false), x, w, 8, 1e-6).data, ref, 1e-6, 'weighted');
    const bare = rmsnormRows(Float32Array.from(x.data), 4, null, 1e-6, new Float32Array(24));
    close(rmsnorm(new Tape('f64', false), x, null, 4, 1e-6).data, bare, 1e-6, 'weightless');
    gradCheck('rmsnorm', [x, w], (tp) => rmsnorm(tp, x, w, 8, 1e-6));
    gradCheck('rmsnorm weightless', [x], (tp) => rmsnorm(tp, x, null, 4, 1e-6));
  });

  it('rope rotates the interleaved tail as ropeTail does; the inverse undoes it', () => {
    const freqs = Float32Array.from([1, 0.3, 0.05]);
    const heads = 2, width = 10, ropeDim = 6, positions = [0, 3, 17];
    const x = randomTensor(next, [3, heads * width]);
    for (const inverse of [false, true]) {
      const ref = Float32Array.from(x.data);
      positions.forEach((p, t) => ropeTail(ref, t * heads * width, heads, width, ropeDim, freqs, p, inverse));
      close(rope(new Tape('f64', false), x, { heads, width, ropeDim, freqs, positions, inverse }).data, ref, 1e-6, `inverse ${inverse}`);
      gradCheck(`rope inverse ${inverse}`, [x], (tp) => rope(tp, x, { heads, width, ropeDim, freqs, positions, inverse }));
    }
    const tp = new Tape('f64', false);
    const back = rope(tp, rope(tp, x, { heads, width, ropeDim, freqs, positions }), { heads, width, ropeDim, freqs, positions, inverse: true });
    close(back.data, x.data, 1e-6, 'round trip');
  });

  it('hadamardRows equals the inference Walsh–Hadamard transform', () => {
    const x = randomTensor(next, [2, 8]);
    const ref = Float32Array.from(x.data);
    hadamard(ref, 0, 8);
    hadamard(ref, 8, 8);
    close(hadamardRows(new Tape('f64', false), x, 8).data, ref, 1e-6, 'hadamard');
    gradCheck('hadamardRows', [x], (tp) => hadamardRows(tp, x, 8));
    assert.throws(() => hadamardRows(new Tape(), randomTensor(next, [6]), 6), /power of two/);
  });

  it('softmax over valid prefixes; KL divergence to a fixed target', () => {
    const x = randomTensor(next, [3, 4]);
    const valid = [4, 2, 0];
    const p = softmax(new Tape('f64', false), x, 4, valid);
    const e0 = Math.exp(x.data[4]), e1 = Math.exp(x.data[5]);
    close(p.data.subarray(4, 8), [e0 / (e0 + e1), e1 / (e0 + e1), 0, 0], 1e-12, 'row 1');
    close(p.data.subarray(8), [0, 0, 0, 0], 0, 'empty row');
    gradCheck('softmax', [x], (tp) => softmax(tp, x, 4, valid));

    const target = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0, 0, 0, 0, 0, 0];
    const kl = klDivergence(new Tape('f64', false), target, p, 4, [0, 1]);
    let want = 0;
    for (let i = 0; i < 8; i++) if (target[i] > 0) want += target[i] * Math.log(target[i] / p.data[i]);
    assert.ok(Math.abs(kl.data[0] - want / 2) < 1e-12);
    gradCheck('softmax → KL', [x], (tp) => klDivergence(tp, target, softmax(tp, x, 4, valid), 4, [0, 1]));
  });

  it('cross-entropy is the mean −log softmax of the targets, ignoring negative targets', () => {
    const logits = randomTensor(next, [3, 5], -3, 3);
    const targets = [2, -1, 4];
    const ce = crossEntropy(new Tape('f64', false), logits, targets);
    let want = 0;
    for (const t of [0, 2]) {
      let s = 0;
      for (let i = 0; i < 5; i++) s += Math.exp(logits.data[t * 5 + i]);
      want += Math.log(s) - logits.data[t * 5 + targets[t]];
    }
    assert.ok(Math.abs(ce.data[0] - want / 2) < 1e-12);
    gradCheck('crossEntropy', [logits], (tp) => crossEntropy(tp, logits, targets));
    assert.throws(() => crossEntropy(new Tape(), logits, [0, 5, 1]), /outside/);
  });
});
