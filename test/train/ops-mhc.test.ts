/**
 * The hyper-connection ops: the Sinkhorn split against the inference host kernel hcSplitSinkhorn,
 * the mixing and stream ops against the spec's formulas (§5), every backward against finite
 * differences — the Sinkhorn gradient through all 20 iterations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hcSplitSinkhorn } from '../../src/kernels/deepseek-ops.js';
import { Tape } from '../../src/train/autograd.js';
import { divideByRms, hcCollapse, hcExpand, hcHeadWeights, hcSinkhorn, repeatStreams } from '../../src/train/ops-mhc.js';
import { rng } from '../support/rng.js';
import { gradCheck, randomTensor } from './gradcheck.js';

describe('mHC ops', () => {
  const next = rng(11);

  it('hcSinkhorn equals hcSplitSinkhorn and its gradient runs through every iteration', () => {
    for (const [hc, iters] of [[4, 20], [3, 2]]) {
      const mix = (2 + hc) * hc, n = 2;
      const m = randomTensor(next, [n, mix], -2, 2), s = randomTensor(next, [3], 0.5, 2), b = randomTensor(next, [mix], -1, 1);
      const out = hcSinkhorn(new Tape('f64', false), m, s, b, hc, iters, 1e-6);
      for (let t = 0; t < n; t++) {
        const pre = new Float32Array(hc), post = new Float32Array(hc), comb = new Float32Array(hc * hc);
        hcSplitSinkhorn(Float32Array.from(m.data), t * mix, Float32Array.from(s.data), Float32Array.from(b.data), hc, iters, 1e-6, pre, post, comb);
        const near = (a: ArrayLike<number>, o: number, ref: Float32Array, what: string) => {
          for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(a[o + i] - ref[i]) < 2e-6, `${what}[${i}] ${a[o + i]} vs ${ref[i]}`);
        };
        near(out.pre.data, t * hc, pre, 'pre');
        near(out.post.data, t * hc, post, 'post');
        near(out.comb.data, t * hc * hc, comb, 'comb');
      }
      // Doubly stochastic up to eps: columns sum to ~1 after the last (column) step.
      for (let k = 0; k < hc; k++) {
        let sum = 0;
        for (let j = 0; j < hc; j++) sum += out.comb.data[j * hc + k];
        assert.ok(Math.abs(sum - 1) < 1e-5, `column ${k} sums to ${sum}`);
      }
      gradCheck(`hcSinkhorn hc ${hc}, ${iters} iterations`, [m, s, b], (tp) => {
        const o = hcSinkhorn(tp, m, s, b, hc, iters, 1e-6);
        return [o.pre, o.post, o.comb];
      });
    }
    assert.throws(() => hcSinkhorn(new Tape(), randomTensor(next, [1, 24]), randomTensor(next, [3]), randomTensor(next, [24]), 4, 0, 1e-6), /iterations/);
  });

  it('divideByRms scales mixing logits by 1/rms of the flattened streams', () => {
    const m = randomTensor(next, [2, 5]), X = randomTensor(next, [2, 3, 4]);
    const y = divideByRms(new Tape('f64', false), m, X, 1e-6);
    let ss = 0;
    for (let i = 12; i < 24; i++) ss += X.data[i] ** 2;
    assert.ok(Math.abs(y.data[7] - m.data[7] / Math.sqrt(ss / 12 + 1e-6)) < 1e-12);
    gradCheck('divideByRms', [m, X], (tp) => divideByRms(tp, m, X, 1e-6));
  });

  it('head weights, collapse, expand and stream repetition follow §5.3–5.4', () => {
    const n = 2, hc = 3, D = 4;
    const m = randomTensor(next, [n, hc]), s = randomTensor(next, [1], 0.5, 1.5), b = randomTensor(next, [hc]);
    const pre = hcHeadWeights(new Tape('f64', false), m, s, b, 1e-6);
    assert.ok(Math.abs(pre.data[4] - (1 / (1 + Math.exp(-(m.data[4] * s.data[0] + b.data[1]))) + 1e-6)) < 1e-12);
    gradCheck('hcHeadWeights', [m, s, b], (tp) => hcHeadWeights(tp, m, s, b, 1e-6));

    const w = randomTensor(next, [n, hc]), X = randomTensor(next, [n, hc, D]);
    const x = hcCollapse(new Tape('f64', false), w, X, D);
    const want = w.data[3] * X.data[12 + 2] + w.data[4] * X.data[16 + 2] + w.data[5] * X.data[20 + 2];
    assert.ok(Math.abs(x.data[4 + 2] - want) < 1e-12);
    gradCheck('hcCollapse', [w, X], (tp) => hcCollapse(tp, w, X, D));

    const f = randomTensor(next, [n, D]), post = randomTensor(next, [n, hc]), comb = randomTensor(next, [n, hc, hc]);
    const Y = hcExpand(new Tape('f64', false), f, X, post, comb);
    // X'[t=1, k=2, i=3] = post[1,2]·f[1,3] + Σ_j C[1][j][2]·X[1,j,3]
    let e = post.data[5] * f.data[7];
    for (let j = 0; j < hc; j++) e += comb.data[9 + j * hc + 2] * X.data[(3 + j) * D + 3];
    assert.ok(Math.abs(Y.data[(3 + 2) * D + 3] - e) < 1e-12);
    gradCheck('hcExpand', [f, X, post, comb], (tp) => hcExpand(tp, f, X, post, comb));

    const r = repeatStreams(new Tape('f64', false), f, hc, D);
    assert.deepEqual([...r.data.subarray(20, 24)], [...f.data.subarray(4, 8)]);
    gradCheck('repeatStreams', [f], (tp) => repeatStreams(tp, f, hc, D));
  });
});
