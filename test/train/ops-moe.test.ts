/**
 * The MoE ops: router scores against the inference sqrtSoftplus, expert selection (bias for
 * choice only, ties to the lower expert, hash table), routing weights, the clamped SwiGLU against
 * §7.3, the row gather / weight / scatter, and every backward against finite differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sqrtSoftplus as sqrtSoftplusRef } from '../../src/kernels/deepseek-ops.js';
import { Tape } from '../../src/train/autograd.js';
import { gatherRows, hashExperts, routeWeights, scaleRows, scatterAddRows, selectTopK, sqrtSoftplus, swiglu } from '../../src/train/ops-moe.js';
import { rng } from '../support/rng.js';
import { gradCheck, randomTensor } from './gradcheck.js';

describe('MoE ops', () => {
  const next = rng(31);

  it('sqrtSoftplus matches the inference scorer on both branches', () => {
    const x = randomTensor(next, [6], -5, 5);
    x.data[5] = 23; // softplus(x) = x above 20
    const y = sqrtSoftplus(new Tape('f64', false), x);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(y.data[i] - sqrtSoftplusRef(x.data[i])) < 1e-12);
    gradCheck('sqrtSoftplus', [x], (tp) => sqrtSoftplus(tp, x));
  });

  it('swiglu clamps the gate above and the up side both ways; clamped inputs get no gradient', () => {
    const g = randomTensor(next, [8], -3, 3), u = randomTensor(next, [8], -3, 3);
    g.data[0] = 2.5; u.data[1] = -2.5; u.data[2] = 1.7; g.data[3] = 0.3; u.data[3] = 0.4;
    const L = 1;
    const y = swiglu(new Tape('f64', false), g, u, L);
    for (let i = 0; i < 8; i++) {
      const gi = Math.min(g.data[i], L), ui = Math.min(Math.max(u.data[i], -L), L);
      assert.ok(Math.abs(y.data[i] - (gi / (1 + Math.exp(-gi))) * ui) < 1e-12, `entry ${i}`);
    }
    const away = (v: number) => Math.abs(Math.abs(v) - L) > 1e-3;
    assert.ok([...g.data, ...u.data].every(away), 'test inputs sit on a clamp edge');
    gradCheck('swiglu clamped', [g, u], (tp) => swiglu(tp, g, u, L));
    gradCheck('swiglu unclamped', [g, u], (tp) => swiglu(tp, g, u, 0));
    const tp = new Tape('f64');
    g.zeroGrad(); u.zeroGrad();
    tp.backward(swiglu(tp, g, u, L), new Array(8).fill(1));
    assert.equal(g.grad![0], 0);
    assert.equal(u.grad![1], 0);
  });

  it('selection: the bias only chooses, ties go to the lower expert; hash routing reads the table', () => {
    const scores = Float64Array.from([0.5, 0.9, 0.9, 0.1, /* token 1 */ 0.2, 0.3, 0.4, 0.5]);
    const bias = Float64Array.from([0.5, 0, 0, 0]);
    assert.deepEqual([...selectTopK(scores, bias, 2, 4, 2)], [0, 1, 0, 3]);
    const table = Int32Array.from([3, 1, 0, 2, 2, 1]);
    assert.deepEqual([...hashExperts(table, [2, 0], 2)], [2, 1, 3, 1]);
  });

  it('routeWeights normalise the chosen (unbiased) scores and scale them', () => {
    const s = randomTensor(next, [2, 4], 0.1, 2);
    const chosen = Int32Array.from([1, 3, 0, 2]);
    const w = routeWeights(new Tape('f64', false), s, chosen, 2, 1.5);
    assert.ok(Math.abs(w.data[0] - (1.5 * s.data[1]) / (s.data[1] + s.data[3])) < 1e-12);
    assert.ok(Math.abs(w.data[2] + w.data[3] - 1.5) < 1e-12);
    gradCheck('routeWeights', [s], (tp) => routeWeights(tp, s, chosen, 2, 1.5));
  });

  it('gather, weight and scatter rows route tokens through experts and back', () => {
    const x = randomTensor(next, [3, 2]), w = randomTensor(next, [6]), base = randomTensor(next, [3, 2]);
    const tokens = Int32Array.from([2, 0, 2]), slots = Int32Array.from([5, 0, 4]);
    const xe = gatherRows(new Tape('f64', false), x, tokens, 2);
    assert.deepEqual([...xe.data.subarray(0, 2)], [...x.data.subarray(4, 6)]);
    gradCheck('gatherRows', [x], (tp) => gatherRows(tp, x, tokens, 2));
    const h = randomTensor(next, [3, 2]);
    gradCheck('scaleRows', [h, w], (tp) => scaleRows(tp, h, w, slots));
    const part = randomTensor(next, [3, 2]);
    const y = scatterAddRows(new Tape('f64', false), base, [{ y: part, rows: tokens }], 2);
    assert.ok(Math.abs(y.data[4] - (base.data[4] + part.data[0] + part.data[4])) < 1e-12);
    gradCheck('scatterAddRows', [base, part], (tp) => scatterAddRows(tp, base, [{ y: part, rows: tokens }], 2));
    gradCheck('expert path', [x, w, base], (tp) => scatterAddRows(tp, base, [{ y: scaleRows(tp, gatherRows(tp, x, tokens, 2), w, slots), rows: tokens }], 2));
  });
});
