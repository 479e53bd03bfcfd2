/**
 * Manifold-constrained hyper-connections (spec §5) as differentiable ops: the Hc residual streams,
 * the mixing logits scaled by 1/rms of the flattened streams, the pre/post/comb split with the
 * Sinkhorn–Knopp normalisation differentiated through every iteration, the stream collapse
 * x = Σ_j pre_j X_j, the stream update X'_k = post_k·f + Σ_j C_jk·X_j, and the head mixer weights.
 * Streams are [n, Hc, D] row-major (token, stream, channel).
 */
import { expectShape, rowsOf, type Tape, type Tensor } from './autograd.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** [n, D] → [n, Hc, D]: the token embedding copied into every stream (§4 step 2). */
export function repeatStreams(tp: Tape, e: Tensor, hc: number, D: number): Tensor {
  const n = rowsOf('repeatStreams', 'input', e, D);
  const y = tp.output([n, hc, D], e);
  for (let t = 0; t < n; t++) for (let j = 0; j < hc; j++) y.data.set(e.data.subarray(t * D, (t + 1) * D), (t * hc + j) * D);
  tp.record(y, () => {
    const g = y.grad!, ge = e.gradient();
    for (let t = 0; t < n; t++) for (let j = 0; j < hc; j++) for (let i = 0; i < D; i++) ge[t * D + i] += g[(t * hc + j) * D + i];
  });
  return y;
}

/** y[t] = m[t] / sqrt(mean(X[t]²) + eps): mixing logits over the rms of the token's flattened streams. */
export function divideByRms(tp: Tape, m: Tensor, X: Tensor, eps: number): Tensor {
  const n = m.shape[0], mw = m.size / n;
  if (!(n > 0) || X.size % n) throw new Error(`divideByRms: streams of ${X.size} values are not ${n} rows`);
  const sw = X.size / n;
  const y = tp.output(m.shape, m, X);
  const inv = new Float64Array(n), xd = X.data, md = m.data;
  for (let t = 0; t < n; t++) {
    let ss = 0;
    for (let i = t * sw; i < (t + 1) * sw; i++) ss += xd[i] * xd[i];
    inv[t] = 1 / Math.sqrt(ss / sw + eps);
    for (let i = t * mw; i < (t + 1) * mw; i++) y.data[i] = md[i] * inv[t];
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gm = m.requiresGrad ? m.gradient() : null, gx = X.requiresGrad ? X.gradient() : null;
    for (let t = 0; t < n; t++) {
      let dot = 0;
      for (let i = t * mw; i < (t + 1) * mw; i++) {
        dot += g[i] * md[i];
        if (gm) gm[i] += g[i] * inv[t];
      }
      // d inv / dX_i = −inv³ · X_i / sw.
      if (gx) {
        const c = (-dot * inv[t] ** 3) / sw;
        for (let i = t * sw; i < (t + 1) * sw; i++) gx[i] += c * xd[i];
      }
    }
  });
  return y;
}

export interface HcSplit {
  readonly pre: Tensor; // [n, Hc]
  readonly post: Tensor; // [n, Hc]
  readonly comb: Tensor; // [n, Hc, Hc], comb[j][k]: stream j → stream k
}

/**
 * §5.2 step 3 per token: pre = σ(m·s0 + b) + eps, post = 2σ(m·s1 + b), C = row softmax of
 * m·s2 + b plus eps, then column, (row, column)×(iters−1) normalisations. The backward walks the
 * stored normalisation steps in reverse.
 */
export function hcSinkhorn(tp: Tape, m: Tensor, scale: Tensor, base: Tensor, hc: number, iters: number, eps: number): HcSplit {
  const mix = (2 + hc) * hc, hh = hc * hc;
  const n = rowsOf('hcSinkhorn', 'mixes', m, mix);
  expectShape('hcSinkhorn', 'scale', scale, [3]);
  expectShape('hcSinkhorn', 'base', base, [mix]);
  if (!(Number.isInteger(iters) && iters >= 1)) throw new Error(`hcSinkhorn: iterations must be ≥ 1, got ${iters}`);
  const pre = tp.output([n, hc], m, scale, base), post = tp.output([n, hc], m, scale, base), comb = tp.output([n, hc, hc], m, scale, base);
  const steps = 2 * iters - 1; // column, then (row, column) × (iters − 1)
  const sig = new Float64Array(n * 2 * hc), soft = new Float64Array(n * hh);
  const states = new Float64Array(n * (steps + 1) * hh); // input of every step, then the result
  const md = m.data, s = scale.data, b = base.data;
  for (let t = 0; t < n; t++) {
    const mo = t * mix;
    for (let j = 0; j < hc; j++) {
      const a = sigmoid(md[mo + j] * s[0] + b[j]), p = sigmoid(md[mo + hc + j] * s[1] + b[hc + j]);
      sig[t * 2 * hc + j] = a;
      sig[t * 2 * hc + hc + j] = p;
      pre.data[t * hc + j] = a + eps;
      post.data[t * hc + j] = 2 * p;
    }
    const C = states.subarray(t * (steps + 1) * hh);
    for (let j = 0; j < hc; j++) {
      let max = -Infinity;
      for (let k = 0; k < hc; k++) max = Math.max(max, md[mo + 2 * hc + j * hc + k] * s[2] + b[2 * hc + j * hc + k]);
      let sum = 0;
      for (let k = 0; k < hc; k++) sum += Math.exp(md[mo + 2 * hc + j * hc + k] * s[2] + b[2 * hc + j * hc + k] - max);
      for (let k = 0; k < hc; k++) {
        const p = Math.exp(md[mo + 2 * hc + j * hc + k] * s[2] + b[2 * hc + j * hc + k] - max) / sum;
        soft[t * hh + j * hc + k] = p;
        C[j * hc + k] = p + eps;
      }
    }
    for (let st = 0; st < steps; st++) normalise(C, st * hh, (st + 1) * hh, hc, eps, st % 2 === 0);
    for (let i = 0; i < hh; i++) comb.data[t * hh + i] = C[steps * hh + i];
  }
  tp.record([pre, post, comb], () => {
    const gm = m.requiresGrad ? m.gradient() : null, gs = scale.requiresGrad ? scale.gradient() : null, gb = base.requiresGrad ? base.gradient() : null;
    const dC = new Float64Array(hh), dX = new Float64Array(hh), dz = new Float64Array(mix);
    const ds = [0, 0, 0], db = new Float64Array(mix);
    for (let t = 0; t < n; t++) {
      // dz: gradient of the affine logits z = m·s + b, split as pre | post | comb.
      dz.fill(0);
      for (let j = 0; j < hc; j++) {
        const a = sig[t * 2 * hc + j], p = sig[t * 2 * hc + hc + j];
        if (pre.grad) dz[j] = pre.grad[t * hc + j] * a * (1 - a);
        if (post.grad) dz[hc + j] = 2 * post.grad[t * hc + j] * p * (1 - p);
      }
      if (comb.grad) {
        for (let i = 0; i < hh; i++) dC[i] = comb.grad[t * hh + i];
        const C = states.subarray(t * (steps + 1) * hh);
        for (let st = steps - 1; st >= 0; st--) {
          normaliseBackward(C, st * hh, dC, dX, hc, eps, st % 2 === 0);
          dC.set(dX);
        }
        // Softmax rows: dz = p ⊙ (dC − Σ p·dC).
        for (let j = 0; j < hc; j++) {
          let dot = 0;
          for (let k = 0; k < hc; k++) dot += soft[t * hh + j * hc + k] * dC[j * hc + k];
          for (let k = 0; k < hc; k++) dz[2 * hc + j * hc + k] = soft[t * hh + j * hc + k] * (dC[j * hc + k] - dot);
        }
      }
      const mo = t * mix;
      for (let i = 0; i < mix; i++) {
        const which = i < hc ? 0 : i < 2 * hc ? 1 : 2;
        if (gm) gm[mo + i] += dz[i] * s[which];
        ds[which] += dz[i] * md[mo + i];
        db[i] += dz[i];
      }
    }
    if (gs) for (let i = 0; i < 3; i++) gs[i] += ds[i];
    if (gb) for (let i = 0; i < mix; i++) gb[i] += db[i];
  });
  return { pre, post, comb };
}

/** C[out] = C[in] with each column (or row) divided by its sum + eps. */
function normalise(C: Float64Array, src: number, dst: number, hc: number, eps: number, columns: boolean): void {
  for (let a = 0; a < hc; a++) {
    let sum = 0;
    for (let b = 0; b < hc; b++) sum += C[src + (columns ? b * hc + a : a * hc + b)];
    const inv = sum + eps;
    for (let b = 0; b < hc; b++) {
      const i = columns ? b * hc + a : a * hc + b;
      C[dst + i] = C[src + i] / inv;
    }
  }
}

/** dX of one normalisation step whose input sits at C[src]: dX = dY/(S+eps) − Σ(dY·X)/(S+eps)² per line. */
function normaliseBackward(C: Float64Array, src: number, dY: Float64Array, dX: Float64Array, hc: number, eps: number, columns: boolean): void {
  for (let a = 0; a < hc; a++) {
    let sum = 0, dot = 0;
    for (let b = 0; b < hc; b++) {
      const i = columns ? b * hc + a : a * hc + b;
      sum += C[src + i];
      dot += dY[i] * C[src + i];
    }
    const d = sum + eps;
    for (let b = 0; b < hc; b++) {
      const i = columns ? b * hc + a : a * hc + b;
      dX[i] = dY[i] / d - dot / (d * d);
    }
  }
}

/** Head mixer weights (§5.4): pre = σ(m·scale[0] + base) + eps, m [n, Hc]. */
export function hcHeadWeights(tp: Tape, m: Tensor, scale: Tensor, base: Tensor, eps: number): Tensor {
  const hc = base.size, n = rowsOf('hcHeadWeights', 'mixes', m, hc);
  expectShape('hcHeadWeights', 'scale', scale, [1]);
  const y = tp.output([n, hc], m, scale, base);
  const sig = new Float64Array(n * hc);
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < hc; j++) {
      const a = (sig[t * hc + j] = sigmoid(m.data[t * hc + j] * scale.data[0] + base.data[j]));
      y.data[t * hc + j] = a + eps;
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gm = m.requiresGrad ? m.gradient() : null, gb = base.requiresGrad ? base.gradient() : null;
    let ds = 0;
    for (let i = 0; i < n * hc; i++) {
      const d = g[i] * sig[i] * (1 - sig[i]);
      if (gm) gm[i] += d * scale.data[0];
      if (gb) gb[i % hc] += d;
      ds += d * m.data[i];
    }
    if (scale.requiresGrad) scale.gradient()[0] += ds;
  });
  return y;
}

/** x[t] = Σ_j pre[t, j] · X[t, j]: [n, Hc] weights, [n, Hc, D] streams → [n, D]. */
export function hcCollapse(tp: Tape, pre: Tensor, X: Tensor, D: number): Tensor {
  const hc = pre.shape[1], n = pre.shape[0];
  expectShape('hcCollapse', 'streams', X, [n, hc, D]);
  const y = tp.output([n, D], pre, X);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let j = 0; j < hc; j++) s += pre.data[t * hc + j] * X.data[(t * hc + j) * D + i];
      y.data[t * D + i] = s;
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gp = pre.requiresGrad ? pre.gradient() : null, gx = X.requiresGrad ? X.gradient() : null;
    for (let t = 0; t < n; t++) {
      for (let j = 0; j < hc; j++) {
        const o = (t * hc + j) * D, p = pre.data[t * hc + j];
        let dot = 0;
        for (let i = 0; i < D; i++) {
          dot += g[t * D + i] * X.data[o + i];
          if (gx) gx[o + i] += p * g[t * D + i];
        }
        if (gp) gp[t * hc + j] += dot;
      }
    }
  });
  return y;
}

/** hc_post (§5.3): X'[t, k] = post[t, k]·f[t] + Σ_j comb[t, j, k]·R[t, j]. */
export function hcExpand(tp: Tape, f: Tensor, R: Tensor, post: Tensor, comb: Tensor): Tensor {
  const [n, hc] = post.shape, D = f.size / n;
  expectShape('hcExpand', 'residual streams', R, [n, hc, D]);
  expectShape('hcExpand', 'comb', comb, [n, hc, hc]);
  const y = tp.output([n, hc, D], f, R, post, comb);
  const fd = f.data, rd = R.data, pd = post.data, cd = comb.data;
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < hc; k++) {
      const o = (t * hc + k) * D, pk = pd[t * hc + k];
      for (let i = 0; i < D; i++) {
        let s = pk * fd[t * D + i];
        for (let j = 0; j < hc; j++) s += cd[(t * hc + j) * hc + k] * rd[(t * hc + j) * D + i];
        y.data[o + i] = s;
      }
    }
  }
  tp.record(y, () => {
    const g = y.grad!;
    const gf = f.requiresGrad ? f.gradient() : null, gr = R.requiresGrad ? R.gradient() : null;
    const gp = post.requiresGrad ? post.gradient() : null, gc = comb.requiresGrad ? comb.gradient() : null;
    for (let t = 0; t < n; t++) {
      for (let k = 0; k < hc; k++) {
        const o = (t * hc + k) * D, pk = pd[t * hc + k];
        let dp = 0;
        for (let i = 0; i < D; i++) {
          dp += g[o + i] * fd[t * D + i];
          if (gf) gf[t * D + i] += pk * g[o + i];
        }
        if (gp) gp[t * hc + k] += dp;
        for (let j = 0; j < hc; j++) {
          const r = (t * hc + j) * D, cjk = cd[(t * hc + j) * hc + k];
          let dc = 0;
          for (let i = 0; i < D; i++) {
            dc += g[o + i] * rd[r + i];
            if (gr) gr[r + i] += cjk * g[o + i];
          }
          if (gc) gc[(t * hc + j) * hc + k] += dc;
        }
      }
    }
  });
  return y;
}
