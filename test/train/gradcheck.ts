/**
 * Gradient checks for the training ops: the analytic gradient of L = Σ_outputs Σ r·y (r a fixed
 * random projection) against central finite differences in f64, entry by entry.
 */
import assert from 'node:assert/strict';
import { parameter, Tape, type Tensor } from '../../src/train/autograd.js';
import { rng } from '../support/rng.js';

/** An f64 trainable tensor of `shape` with entries uniform in [lo, hi). */
export function randomTensor(next: () => number, shape: readonly number[], lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return parameter(shape, Float64Array.from({ length: n }, () => lo + (hi - lo) * next()));
}

const H = 1e-6;
/** Allowed |analytic − numeric| / max(1, |numeric|). */
const TOL = 1e-6;

/** Checks ∂L/∂input, entry by entry, for every trainable input of `build` (which runs the op(s) on a tape and returns the output(s)). */
export function gradCheck(what: string, inputs: readonly Tensor[], build: (tp: Tape) => Tensor | readonly Tensor[]): void {
  const next = rng(1234);
  const outputsOf = (tp: Tape) => { const o = build(tp); return Array.isArray(o) ? o as readonly Tensor[] : [o as Tensor]; };
  const outs = outputsOf(new Tape('f64', false));
  const r = outs.map((o) => Float64Array.from({ length: o.size }, () => next() * 2 - 1));
  const lossOf = (os: readonly Tensor[]) => {
    let s = 0;
    os.forEach((o, k) => { for (let i = 0; i < o.size; i++) s += r[k][i] * o.data[i]; });
    return s;
  };

  for (const t of inputs) t.zeroGrad();
  const tp = new Tape('f64');
  const live = outputsOf(tp);
  tp.backwardFrom(live.map((o, k) => [o, r[k]] as const).filter(([o]) => o.requiresGrad));

  let compared = 0;
  inputs.forEach((t, ti) => {
    if (!t.requiresGrad) return;
    const analytic = t.grad ?? new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const v = t.data[i];
      t.data[i] = v + H;
      const up = lossOf(outputsOf(new Tape('f64', false)));
      t.data[i] = v - H;
      const down = lossOf(outputsOf(new Tape('f64', false)));
      t.data[i] = v;
      const numeric = (up - down) / (2 * H);
      const err = Math.abs(analytic[i] - numeric) / Math.max(1, Math.abs(numeric));
      assert.ok(err <= TOL, `${what}: input ${ti} entry ${i}: analytic ${analytic[i]}, numeric ${numeric} (error ${err.toExponential(2)})`);
      compared++;
    }
  });
  assert.ok(compared > 0, `${what}: nothing to compare`);
}
