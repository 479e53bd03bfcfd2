// DeepSeek-V4 lightning-indexer scores (spec §6.5). Same conventions as the ops (../README.md):
// pointers into the shared memory, f32, the work-row range [row0, row1) last.
// Backend op: indexerScores() (../../backend.ts).
//
// One work row is one output element r = t · cols + e, so the pool can split a single decode
// token's entries over threads. For e < visible[t]:
//   out[t, e] = Σ_h w[t, h] · max(0, q[t, h] · keys[e])
// and −Infinity for visible[t] ≤ e < cols. Each dot sums d in one fixed order (four lanes of
// j mod 4 over the whole fours, lanes added (0 + 1) + (2 + 3), then the tail in order) with
// unfused products, and heads are accumulated in order, so the plain-TypeScript twin
// (../twin/indexer.ts) gives the same bits. Entries go four at a time where four visible ones
// lie in the row range: each load of a query vector then serves four keys (the loop is bound by
// loads, and q[t] is reread per entry group).

import { hsum } from './simd';

/** Entries scored together. */
const GROUP: i32 = 4;

@inline function madd(acc: v128, a: v128, b: v128): v128 { return f32x4.add(acc, f32x4.mul(a, b)); }

/** s + Σ_{j ≥ j0} a[j] · b[j], in order. */
@inline function tail(s: f32, a: usize, b: usize, j0: i32, d: i32): f32 {
  for (let j = j0; j < d; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

/** The score of one key k for token t's heads (qt [heads, d], wt [heads]). */
function score1(qt: usize, wt: usize, k: usize, heads: i32, d: i32): f32 {
  const rowBytes = <usize>d << 2, d4 = d & ~3;
  let s: f32 = 0;
  for (let h = 0; h < heads; h++) {
    const qh = qt + <usize>h * rowBytes;
    let acc = f32x4.splat(0);
    for (let j = 0; j < d4; j += 4) { const o = <usize>j << 2; acc = madd(acc, v128.load(qh + o), v128.load(k + o)); }
    const x = tail(hsum(acc), qh, k, d4, d);
    if (x > 0) s += load<f32>(wt + (<usize>h << 2)) * x;
  }
  return s;
}

/** The scores of four consecutive keys from k (rows of d) into o[0..3]. */
function score4(qt: usize, wt: usize, k: usize, o: usize, heads: i32, d: i32): void {
  const rowBytes = <usize>d << 2, d4 = d & ~3;
  const k1 = k + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let h = 0; h < heads; h++) {
    const qh = qt + <usize>h * rowBytes;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let j = 0; j < d4; j += 4) {
      const off = <usize>j << 2, qv = v128.load(qh + off);
      a0 = madd(a0, qv, v128.load(k + off));
      a1 = madd(a1, qv, v128.load(k1 + off));
      a2 = madd(a2, qv, v128.load(k2 + off));
      a3 = madd(a3, qv, v128.load(k3 + off));
    }
    const wh = load<f32>(wt + (<usize>h << 2));
    const x0 = tail(hsum(a0), qh, k, d4, d), x1 = tail(hsum(a1), qh, k1, d4, d);
    const x2 = tail(hsum(a2), qh, k2, d4, d), x3 = tail(hsum(a3), qh, k3, d4, d);
    if (x0 > 0) s0 += wh * x0;
    if (x1 > 0) s1 += wh * x1;
    if (x2 > 0) s2 += wh * x2;
    if (x3 > 0) s3 += wh * x3;
  }
  store<f32>(o, s0);
  store<f32>(o, s1, 4);
  store<f32>(o, s2, 8);
  store<f32>(o, s3, 12);
}

/**
 * out[t, e] = Σ_h w[t, h] · max(0, q[t, h] · keys[e]) for e < visible[t], −Infinity up to cols:
 * q [n, heads · d], w [n, heads], keys [·, d], out [n, cols] f32, visible [n] i32; elements
 * r = t · cols + e in [row0, row1).
 */
export function indexer_scores_f32(q: usize, w: usize, keys: usize, visible: usize, out: usize,
  heads: i32, d: i32, cols: i32, row0: i32, row1: i32): void {
  const rowBytes = <usize>d << 2;
  for (let r = row0; r < row1;) {
    const t = r / cols, base = t * cols;
    const vis = load<i32>(visible + (<usize>t << 2));
    const stop = min(row1 - base, cols), seen = min(vis, stop);
    const qt = q + <usize>t * <usize>heads * rowBytes, wt = w + (<usize>t * heads << 2), ot = out + (<usize>base << 2);
    let e = r - base;
    for (; e + GROUP <= seen; e += GROUP) score4(qt, wt, keys + <usize>e * rowBytes, ot + (<usize>e << 2), heads, d);
    for (; e < seen; e++) store<f32>(ot + (<usize>e << 2), score1(qt, wt, keys + <usize>e * rowBytes, heads, d));
    for (; e < stop; e++) store<f32>(ot + (<usize>e << 2), -Infinity);
    r = base + stop;
  }
}
