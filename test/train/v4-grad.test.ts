/**
 * Gradient check of the whole tiny V4 (spec testdata/tiny_v4: SWA, CSA with indexer, ratio-8
 * compressed and CSA layers, hash and score routing, clamped experts, MTP) in f64 against central
 * finite differences of the training loss, on a 17-token input (longer than its 16-token window,
 * more compressed entries than index_topk).
 *
 * The checkpoint has 3.9M parameters, so instead of every entry the check takes directional
 * derivatives: per family of parameter groups (a group = one tensor name across layers/experts)
 * one direction v made of, per group, (ĝ + r̂/2)/‖g‖ (ĝ the analytic gradient's direction, r̂ a
 * random one), so every group adds ≈ 1 to g·v and an error in any group shows; plus a seeded
 * random sample of single entries. MINKE_SLOW=1 checks every group on its own and more entries.
 *
 * The language-model loss (next token + MTP) is checked for every parameter but the indexer's,
 * with the indexer loss off (its target is a detached function of the main attention, so its
 * gradient is not the loss's full derivative there); the indexer's parameters are checked on the
 * full loss, whose only dependence on them is the indexer KL.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Tape, type Tensor } from '../../src/train/autograd.js';
import { V4TrainModel, type V4LossOptions } from '../../src/train/v4-train-model.js';
import { loadV4Params } from '../../src/train/v4-train-params.js';
import { sharedPath } from '../models/util.js';
import { rng } from '../support/rng.js';

const SLOW = process.env.MINKE_SLOW === '1';
const SEQUENCE = Array.from({ length: 18 }, (_, i) => (i * 97 + 5) % 512);
const LM_ONLY: V4LossOptions = { mtpWeight: 0.3, indexerWeight: 0 };
const FULL: V4LossOptions = { mtpWeight: 0.3, indexerWeight: 1 };

/** Families of parameter groups, each checked along one direction (first match wins). */
const FAMILIES: [string, RegExp, V4LossOptions][] = [
  ['indexer', /\.attn\.indexer\./, FULL],
  ['compressor', /\.attn\.compressor\./, LM_ONLY],
  ['hyper-connections', /hc_(attn|ffn)_/, LM_ONLY],
  ['attention', /\.attn\.|attn_norm/, LM_ONLY],
  ['MoE', /\.ffn\.|ffn_norm/, LM_ONLY],
  ['embedding, heads, MTP input', /^(embed|head|norm)\.weight$|hc_head_|^mtp\.0\.(e_proj|h_proj|enorm|hnorm|norm)\./, LM_ONLY],
];

const groupOf = (name: string) => name.replace(/^layers\.\d+\./, 'layers.N.').replace(/experts\.\d+\./, 'experts.E.');

describe('tiny V4 whole-model gradient (f64, finite differences)', () => {
  let model: V4TrainModel;
  const grads = new Map<V4LossOptions, Map<Tensor, Float64Array>>();
  const trainable: [string, Tensor][] = [];

  const lossAt = (opts: V4LossOptions) => model.loss(new Tape('f64', false), SEQUENCE, opts).loss.data[0];
  /** Analytic gradients of the loss under `opts` (computed once per setting). */
  const gradientsFor = (opts: V4LossOptions): Map<Tensor, Float64Array> => {
    let g = grads.get(opts);
    if (!g) {
      for (const [, t] of trainable) t.zeroGrad();
      const tp = new Tape('f64');
      tp.backward(model.loss(tp, SEQUENCE, opts).loss);
      g = new Map(trainable.map(([, t]) => [t, Float64Array.from(t.grad ?? new Float64Array(t.size))]));
      grads.set(opts, g);
    }
    return g;
  };

  /** Central difference of the loss along v (per tensor) against Σ g·v; returns both. */
  const directional = (tensors: readonly Tensor[], v: readonly Float64Array[], opts: V4LossOptions) => {
    const g = gradientsFor(opts);
    let analytic = 0, norm = 0;
    tensors.forEach((t, j) => { for (let i = 0; i < t.size; i++) { analytic += g.get(t)![i] * v[j][i]; norm += v[j][i] ** 2; } });
    const h = 1e-5 / Math.sqrt(norm);
    const orig = tensors.map((t) => t.data.slice());
    const shift = (s: number) => tensors.forEach((t, j) => { for (let i = 0; i < t.size; i++) t.data[i] = orig[j][i] + s * v[j][i]; });
    shift(h);
    const up = lossAt(opts);
    shift(-h);
    const down = lossAt(opts);
    tensors.forEach((t, j) => t.data.set(orig[j]));
    return { analytic, numeric: (up - down) / (2 * h) };
  };

  /** The direction Σ_groups (ĝ + r̂/2)/‖g‖ over `names`; returns tensors, direction and group count. */
  const familyDirection = (names: readonly string[], opts: V4LossOptions, next: () => number) => {
    const g = gradientsFor(opts);
    const byGroup = new Map<string, Tensor[]>();
    for (const name of names) {
      const key = groupOf(name);
      if (!byGroup.has(key)) byGroup.set(key, []);
      byGroup.get(key)!.push(model.p(name));
    }
    const tensors: Tensor[] = [], v: Float64Array[] = [];
    for (const [key, ts] of byGroup) {
      let gn = 0, rn = 0;
      const r = ts.map((t) => Float64Array.from({ length: t.size }, () => next() - 0.5));
      ts.forEach((t, j) => { for (let i = 0; i < t.size; i++) { gn += g.get(t)![i] ** 2; rn += r[j][i] ** 2; } });
      gn = Math.sqrt(gn);
      rn = Math.sqrt(rn);
      assert.ok(gn > 0, `group ${key} has a zero gradient`);
      ts.forEach((t, j) => {
        tensors.push(t);
        v.push(Float64Array.from({ length: t.size }, (_, i) => (g.get(t)![i] / gn + r[j][i] / (2 * rn)) / gn));
      });
    }
    return { tensors, v, groups: byGroup.size };
  };

  before(() => {
    model = new V4TrainModel(loadV4Params(sharedPath('spec/testdata/tiny_v4'), 'f64'));
    for (const [name, t] of model.params.tensors) if (t.requiresGrad) trainable.push([name, t]);
  });

  it('every trainable tensor belongs to a checked family, and the loss has all its parts', () => {
    for (const [name] of trainable) assert.ok(FAMILIES.some(([, re]) => re.test(name)), `${name} is in no family`);
    const l = model.loss(new Tape('f64', false), SEQUENCE, FULL);
    assert.ok(l.ce > 0 && l.mtp > 0, `ce ${l.ce}, mtp ${l.mtp}`);
    const withGrad = model.loss(new Tape('f64'), SEQUENCE, FULL);
    assert.equal(withGrad.forward.indexerLosses.length, 2, 'both CSA layers contribute an indexer loss');
    assert.ok(withGrad.indexer > 0);
  });

  for (const [family, re, opts] of FAMILIES) {
    it(`directional derivative: ${family}`, () => {
      const names = trainable.map(([n]) => n).filter((n) => re.test(n) && FAMILIES.find(([, r]) => r.test(n))![0] === family);
      const next = rng(family.length * 7919);
      const runs = SLOW ? [...new Set(names.map(groupOf))].map((gr) => names.filter((n) => groupOf(n) === gr)) : [names];
      for (const subset of runs) {
        const { tensors, v, groups } = familyDirection(subset, opts, next);
        const { analytic, numeric } = directional(tensors, v, opts);
        const what = SLOW ? groupOf(subset[0]) : family;
        assert.ok(Math.abs(analytic - numeric) <= 1e-6 * groups, `${what}: g·v ${analytic}, finite difference ${numeric}`);
      }
    });
  }

  it(`single entries (${SLOW ? 64 : 4}, seeded)`, () => {
    const next = rng(99);
    for (let k = 0; k < (SLOW ? 64 : 4); k++) {
      const [name, t] = trainable[Math.floor(next() * trainable.length)];
      const opts = name.includes('.indexer.') ? FULL : LM_ONLY;
      const g = gradientsFor(opts).get(t)!;
      // Prefer an entry with a gradient (many expert rows see no token).
      let i = Math.floor(next() * t.size);
      for (let tries = 0; tries < 50 && g[i] === 0; tries++) i = Math.floor(next() * t.size);
      const v = new Float64Array(t.size);
      v[i] = 1;
      const { analytic, numeric } = directional([t], [v], opts);
      assert.ok(Math.abs(analytic - numeric) <= 1e-6 * Math.max(1, Math.abs(numeric)), `${name}[${i}]: analytic ${analytic}, finite difference ${numeric}`);
    }
  });
});
