/**
 * The optimiser (src/train/optim.ts) against hand computations: Newton–Schulz maps each singular
 * value σ of G/‖G‖_F to the quintic iterated five times (singular values found here by a Jacobi
 * eigen-solver on the Gram matrices) and so lands in the near-orthogonal band; AdamW and Muon
 * steps against their formulas written out; global-norm clipping; the learning-rate schedules; the
 * routing-bias sign rule, and that it balances a real model's expert loads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { v4ConfigFromHF } from '../../src/models/deepseek-v4-config.js';
import { parameter, Tape, type Tensor } from '../../src/train/autograd.js';
import { v4HFConfig } from '../../src/train/checkpoint.js';
import { clipGradients, decays, learningRate, newtonSchulz, Optimizer, paramGroup, updateRoutingBias } from '../../src/train/optim.js';
import { V4TrainModel } from '../../src/train/v4-train-model.js';
import { initV4Params } from '../../src/train/v4-train-params.js';
import { rng } from '../support/rng.js';
import { progressions, TOY_MODEL } from './toy-v4.js';

/** Eigenvalues of a symmetric [n, n] matrix (cyclic Jacobi rotations), ascending. */
function symmetricEigenvalues(a: Float64Array, n: number): number[] {
  const A = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += A[i * n + j] ** 2;
    if (off < 1e-26) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => A[i * n + i]).sort((x, y) => x - y);
}

/** Singular values of a row-major [rows, cols] matrix, ascending (the min(rows, cols) non-trivial ones). */
function singularValues(g: ArrayLike<number>, rows: number, cols: number): number[] {
  const m = Math.min(rows, cols), gram = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      if (rows <= cols) for (let k = 0; k < cols; k++) s += g[i * cols + k] * g[j * cols + k];
      else for (let k = 0; k < rows; k++) s += g[k * cols + i] * g[k * cols + j];
      gram[i * m + j] = s;
    }
  }
  return symmetricEigenvalues(gram, m).map((x) => Math.sqrt(Math.max(0, x)));
}

/** The quintic 3.4445x − 4.7750x³ + 2.0315x⁵, applied `steps` times. */
function quintic(x: number, steps = 5): number {
  for (let i = 0; i < steps; i++) x = 3.4445 * x - 4.775 * x ** 3 + 2.0315 * x ** 5;
  return x;
}

function gaussian(n: number, seed: number): Float64Array {
  const next = rng(seed);
  return Float64Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
}

describe('Newton–Schulz orthogonalisation', () => {
  for (const [rows, cols] of [[16, 48], [48, 16], [24, 24], [1, 7]]) {
    it(`[${rows}, ${cols}]: singular values become the quintic of σ/‖G‖_F, singular vectors kept`, () => {
      const g = gaussian(rows * cols, rows * 100 + cols);
      const o = newtonSchulz(g, rows, cols);
      const sigma = singularValues(g, rows, cols), fro = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
      const want = sigma.map((s) => quintic(s / (fro + 1e-7))).sort((a, b) => a - b);
      const got = singularValues(o, rows, cols);
      got.forEach((s, i) => assert.ok(Math.abs(s - want[i]) < 1e-8, `σ'[${i}] = ${s}, quintic gives ${want[i]}`));
      // Same singular vectors: O·Gᵀ (or Gᵀ·O) is symmetric positive semi-definite.
      const m = Math.min(rows, cols), prod = new Float64Array(m * m);
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) {
        let s = 0;
        if (rows <= cols) for (let k = 0; k < cols; k++) s += o[i * cols + k] * g[j * cols + k];
        else for (let k = 0; k < rows; k++) s += o[k * cols + i] * g[k * cols + j];
        prod[i * m + j] = s;
      }
      for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) assert.ok(Math.abs(prod[i * m + j] - prod[j * m + i]) < 1e-8, 'O·Gᵀ is symmetric');
      assert.ok(symmetricEigenvalues(prod, m)[0] > -1e-8, 'O·Gᵀ is positive semi-definite');
    });
  }

  it('random matrices come out near-orthogonal: every singular value in [0.6, 1.25]', () => {
    // 5 quintic steps take any σ/‖G‖_F ≥ 0.003 into [0.68, 1.21]; random Gaussian matrices of
    // aspect 1:2 or more have σ_min/‖G‖_F far above that.
    for (const [rows, cols, seed] of [[32, 64, 1], [64, 32, 2], [8, 128, 3], [20, 60, 4]]) {
      const g = gaussian(rows * cols, seed), fro = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
      assert.ok(singularValues(g, rows, cols)[0] / fro > 0.003);
      const s = singularValues(newtonSchulz(g, rows, cols), rows, cols);
      assert.ok(s[0] >= 0.6 && s[s.length - 1] <= 1.25, `[${rows}, ${cols}]: singular values ${s[0]} … ${s[s.length - 1]}`);
    }
  });
});

/** A parameter with a gradient already accumulated. */
function withGrad(shape: number[], values: number[], grad: number[]): Tensor {
  const t = parameter(shape, Float32Array.from(values));
  t.gradient().set(grad);
  return t;
}

describe('AdamW and Muon steps', () => {
  it('AdamW: two steps of a norm weight (no decay) and of the embedding (decoupled decay), by hand', () => {
    const lr = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    const norm = withGrad([3], [1, 2, 3], [0.5, -1, 0]), embed = withGrad([1, 2], [1, -2], [2, 0.25]);
    const opt = new Optimizer(new Map([['norm.weight', norm], ['embed.weight', embed]]),
      { lr, totalSteps: 10, schedule: 'constant', beta1: b1, beta2: b2, eps, weightDecay: wd, clip: 0 });
    const grads = [[[0.5, -1, 0], [2, 0.25]], [[0.25, 1, 2], [-1, 0.5]]];
    // Hand-written AdamW, f64.
    const p = [[1, 2, 3], [1, -2]], m = [[0, 0, 0], [0, 0]], v = [[0, 0, 0], [0, 0]];
    for (let t = 1; t <= 2; t++) {
      if (t === 2) { norm.gradient().set(grads[1][0]); embed.gradient().set(grads[1][1]); }
      opt.update();
      for (const k of [0, 1]) {
        for (let i = 0; i < p[k].length; i++) {
          const g = grads[t - 1][k][i];
          m[k][i] = b1 * m[k][i] + (1 - b1) * g;
          v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
          if (k === 1) p[k][i] *= 1 - lr * wd;
          p[k][i] -= (lr * m[k][i] / (1 - b1 ** t)) / (Math.sqrt(v[k][i] / (1 - b2 ** t)) + eps);
        }
      }
      [norm, embed].forEach((tensor, k) => p[k].forEach((x, i) => assert.ok(Math.abs(tensor.data[i] - x) < 1e-6, `step ${t} tensor ${k}[${i}]: ${tensor.data[i]} vs ${x}`)));
      assert.equal(norm.grad, null, 'gradients are released after the update');
    }
  });

  it('Muon: a rank-1 gradient a·bᵀ moves W by −lr·0.2·√max(r, c)·q(1)·â·b̂ᵀ − lr·wd·W', () => {
    const lr = 0.02, wd = 0.1, a = [1, -2, 2, 0], b = [3, 0, -4, 0, 0, 0];
    const W0 = Array.from({ length: 24 }, (_, i) => Math.sin(i + 1));
    const w = withGrad([4, 6], W0, a.flatMap((x) => b.map((y) => x * y)));
    const opt = new Optimizer(new Map([['layers.0.attn.wq_a.weight', w]]), { lr, totalSteps: 10, schedule: 'constant', weightDecay: wd, clip: 0 });
    opt.update();
    // ‖a‖ = 3, ‖b‖ = 5: the normalised gradient is â·b̂ᵀ with its one singular value 1 → q(1).
    const k = lr * 0.2 * Math.sqrt(6) * quintic(1);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 6; j++) {
      const want = W0[i * 6 + j] * (1 - lr * wd) - k * (a[i] / 3) * (b[j] / 5);
      assert.ok(Math.abs(w.data[i * 6 + j] - want) < 1e-6, `W[${i}, ${j}] = ${w.data[i * 6 + j]}, want ${want}`);
    }
  });

  it('a tensor without a gradient this step is left alone (moments and weights)', () => {
    const used = withGrad([2], [1, 1], [1, 1]), idle = parameter([2], Float32Array.from([5, 5]));
    const opt = new Optimizer(new Map([['a.weight', used], ['b.weight', idle]]), { lr: 0.1, totalSteps: 5, clip: 0 });
    opt.update();
    assert.deepEqual([...idle.data], [5, 5]);
    assert.equal(opt.state().counts['b.weight'], 0);
    assert.equal(opt.state().counts['a.weight'], 1);
  });

  it('groups: Muon for block matrices, experts, router and hc_*_fn; AdamW for embed, head, vectors and ape', () => {
    const muon = ['layers.0.attn.wq_a.weight', 'layers.1.ffn.experts.3.w2.weight', 'layers.0.ffn.gate.weight', 'layers.0.hc_attn_fn',
      'mtp.0.e_proj.weight', 'layers.1.attn.indexer.weights_proj.weight', 'layers.1.attn.compressor.wkv.weight'];
    for (const n of muon) assert.equal(paramGroup(n, [8, 16]), 'muon', n);
    for (const [n, shape] of [['embed.weight', [64, 32]], ['head.weight', [64, 32]], ['layers.1.attn.compressor.ape', [4, 64]],
      ['norm.weight', [32]], ['layers.0.attn.attn_sink', [2]], ['layers.0.hc_ffn_base', [8]]] as const) {
      assert.equal(paramGroup(n, shape), 'adamw', n);
    }
    assert.ok(decays('embed.weight', [64, 32]) && decays('layers.0.hc_attn_fn', [8, 64]));
    assert.ok(!decays('norm.weight', [32]) && !decays('layers.1.attn.compressor.ape', [4, 64]));
  });
});

describe('clipping and schedule', () => {
  it('global-norm clipping scales all gradients by max/‖g‖ and reports the norm before', () => {
    const a = withGrad([2], [0, 0], [3, 0]), b = withGrad([1, 1], [0], [4]);
    assert.equal(clipGradients([a, b], 10), 5);
    assert.deepEqual([...a.grad!, ...b.grad!], [3, 0, 4]);
    assert.equal(clipGradients([a, b], 1), 5);
    assert.deepEqual([...a.grad!, ...b.grad!].map((x) => Math.round(x * 1e6) / 1e6), [0.6, 0, 0.8]);
    b.grad![0] = NaN;
    assert.throws(() => clipGradients([a, b], 1), /gradient norm is NaN — the loss diverged/);
  });

  it('warmup, cosine and WSD learning rates', () => {
    const base = { lr: 1, totalSteps: 110, warmup: 10, minLrRatio: 0.1 };
    assert.equal(learningRate(base, 0), 0.1);
    assert.equal(learningRate(base, 9), 1);
    assert.ok(Math.abs(learningRate(base, 10) - 1) < 1e-12);
    assert.ok(Math.abs(learningRate(base, 60) - 0.55) < 1e-12, 'halfway through the cosine: (peak + min)/2');
    assert.ok(Math.abs(learningRate(base, 110) - 0.1) < 1e-12);
    const wsd = { ...base, schedule: 'wsd' as const, decayFraction: 0.2 };
    assert.equal(learningRate(wsd, 87), 1);
    assert.ok(Math.abs(learningRate(wsd, 88) - (1 - 0.9 / 22)) < 1e-12);
    assert.ok(Math.abs(learningRate(wsd, 109) - 0.1) < 1e-12);
    assert.throws(() => new Optimizer(new Map(), { lr: -1, totalSteps: 1 }), /lr must be a positive number/);
    assert.throws(() => new Optimizer(new Map(), { lr: 1, totalSteps: 1, schedule: 'linear' as never }), /schedule must be/);
  });
});

describe('aux-loss-free load balancing', () => {
  it('b_e += γ·sign(mean load − load_e)', () => {
    const bias = parameter([4], Float32Array.from([0, 0.5, -0.25, 0]), false);
    updateRoutingBias(new Map([['layers.1.ffn.gate.bias', bias]]), new Map([['layers.1', [5, 1, 3, 3]]]), 0.125);
    assert.deepEqual([...bias.data], [-0.125, 0.625, -0.25, 0]);
    assert.throws(() => updateRoutingBias(new Map(), new Map([['layers.2', [1]]]), 0.1), /no parameter 'layers\.2\.ffn\.gate\.bias'/);
  });

  it('bias updates alone even out the expert loads of a model that starts unbalanced', () => {
    const params = initV4Params(v4ConfigFromHF(v4HFConfig(TOY_MODEL), 'toy'), 3), model = new V4TrainModel(params);
    // Skew the router: expert 0 gets every token's attention at first.
    for (const name of ['layers.1.ffn.gate.bias', 'mtp.0.ffn.gate.bias']) params.tensors.get(name)!.data[0] = 1;
    const batch = progressions(4, 24, 7);
    const imbalance = () => {
      const total = new Map<string, number[]>();
      for (const s of batch) {
        for (const [block, load] of model.forward(new Tape('f32', false), s.slice(0, -1), { mtpIds: s.slice(1) }).expertLoad) {
          total.set(block, (total.get(block) ?? [0, 0, 0, 0]).map((x, e) => x + load[e]));
        }
      }
      const worst = Math.max(...[...total.values()].map((l) => Math.max(...l) / (l.reduce((a, b) => a + b, 0) / l.length)));
      return { total, worst };
    };
    const before = imbalance().worst;
    for (let i = 0; i < 40; i++) updateRoutingBias(params.tensors, imbalance().total, 0.05);
    const after = imbalance().worst;
    assert.ok(before >= 1.9, `the skewed router starts unbalanced (max/mean ${before})`);
    assert.ok(after < 1.4, `after 40 bias updates the busiest expert has ${after}× the mean load (was ${before}×)`);
  });
});
