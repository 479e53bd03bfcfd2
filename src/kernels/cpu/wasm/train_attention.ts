// Training's sparse attention with a sink (src/train/ops-attention.ts sparseAttention, spec §6.6):
// the forward, which also keeps the softmax probabilities, and the backward from them. One work row
// is one (token, head) pair r = t·heads + h; token t's candidates are the table rows
// rows[t·count + c] (i32; −1 = padding), each row both key and value:
//   z_c = scale·(q[r]·v_c),  p = softmax(z_0 .. z_{count−1}, sink[h]),  o[r] = Σ_c p_c·v_c.
// Pointers are byte offsets into the shared memory, values f32, the row range [row0, row1) last.
// The backward scatters into the table's gradient rows that many tokens share: one thread only.
// Also the indexer's scores and their backward (below).
import { fma, hsum } from './simd';

/** a · b over d f32 values. */
@inline function dot(a: usize, b: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; acc = fma(acc, v128.load(a + o), v128.load(b + o)); }
  let s = hsum(acc);
  for (; j < d; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

/**
 * o[r] = Σ_c p_c·v_c and prob[r·(count+1) + c] = p_c (c < count; 0 for padding), then the sink's
 * probability at c = count: q [n·heads, d], table [T, d], rows [n, count], sink [heads] → out
 * [n·heads, d], prob [n·heads, count + 1] (both overwritten).
 */
export function train_sparse_attn_fwd_f32(q: usize, table: usize, rows: usize, count: i32, sink: usize, out: usize, prob: usize,
  heads: i32, d: i32, scale: f32, row0: i32, row1: i32): void {
  const rb = <usize>d << 2;
  for (let r = row0; r < row1; r++) {
    const t = r / heads, h = r - t * heads;
    const qr = q + <usize>r * rb, orow = out + <usize>r * rb, pr = prob + (<usize>r * (count + 1) << 2), cand = rows + (<usize>t * count << 2);
    const sk = load<f32>(sink + (<usize>h << 2));
    let m = sk;
    for (let c = 0; c < count; c++) {
      const row = load<i32>(cand + (<usize>c << 2));
      if (row < 0) continue;
      const z = scale * dot(qr, table + <usize>row * rb, d);
      store<f32>(pr + (<usize>c << 2), z);
      if (z > m) m = z;
    }
    let sum = Mathf.exp(sk - m);
    store<f32>(pr + (<usize>count << 2), sum);
    for (let c = 0; c < count; c++) {
      const at = pr + (<usize>c << 2);
      if (load<i32>(cand + (<usize>c << 2)) < 0) { store<f32>(at, 0); continue; }
      const e = Mathf.exp(load<f32>(at) - m);
      store<f32>(at, e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    for (let c = 0; c <= count; c++) store<f32>(pr + (<usize>c << 2), load<f32>(pr + (<usize>c << 2)) * inv);
    // The weighted values, 32 channels in registers at a time over all candidates.
    let j = 0;
    for (; j + 32 <= d; j += 32) {
      const jo = <usize>j << 2;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (let c = 0; c < count; c++) {
        const row = load<i32>(cand + (<usize>c << 2));
        if (row < 0) continue;
        const p = v128.load32_splat(pr + (<usize>c << 2)), v = table + <usize>row * rb + jo;
        a0 = fma(a0, p, v128.load(v)); a1 = fma(a1, p, v128.load(v, 16)); a2 = fma(a2, p, v128.load(v, 32)); a3 = fma(a3, p, v128.load(v, 48));
        a4 = fma(a4, p, v128.load(v, 64)); a5 = fma(a5, p, v128.load(v, 80)); a6 = fma(a6, p, v128.load(v, 96)); a7 = fma(a7, p, v128.load(v, 112));
      }
      const o = orow + jo;
      v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
      v128.store(o, a4, 64); v128.store(o, a5, 80); v128.store(o, a6, 96); v128.store(o, a7, 112);
    }
    for (; j + 4 <= d; j += 4) {
      const jo = <usize>j << 2;
      let a = f32x4.splat(0);
      for (let c = 0; c < count; c++) {
        const row = load<i32>(cand + (<usize>c << 2));
        if (row >= 0) a = fma(a, v128.load32_splat(pr + (<usize>c << 2)), v128.load(table + <usize>row * rb + jo));
      }
      v128.store(orow + jo, a);
    }
    for (; j < d; j++) {
      const jo = <usize>j << 2;
      let a: f32 = 0;
      for (let c = 0; c < count; c++) {
        const row = load<i32>(cand + (<usize>c << 2));
        if (row >= 0) a += load<f32>(pr + (<usize>c << 2)) * load<f32>(table + <usize>row * rb + jo);
      }
      store<f32>(orow + jo, a);
    }
  }
}

/**
 * The backward of train_sparse_attn_fwd_f32 from its output `out` and `prob`, given g = dL/do
 * [n·heads, d]: with dp_c = g·v_c and g·o = Σ_c p_c·dp_c, dz_c = p_c·(dp_c − g·o) and the sink's
 * logit gets −p_sink·(g·o) (its value is zero). Adds dq[r] += scale·Σ_c dz_c·v_c,
 * dtable[row_c] += p_c·g[r] + scale·dz_c·q[r], dsink[h] += −p_sink·(g·o). A gradient pointer of 0
 * skips that gradient (its tensor needs none).
 */
export function train_sparse_attn_bwd_f32(g: usize, out: usize, prob: usize, q: usize, table: usize, rows: usize, count: i32,
  dq: usize, dtable: usize, dsink: usize, heads: i32, d: i32, scale: f32, row0: i32, row1: i32): void {
  const rb = <usize>d << 2;
  for (let r = row0; r < row1; r++) {
    const t = r / heads, h = r - t * heads;
    const off = <usize>r * rb, gr = g + off, qr = q + off, dqr = dq + off;
    const pr = prob + (<usize>r * (count + 1) << 2), cand = rows + (<usize>t * count << 2);
    const gO = dot(gr, out + off, d);
    if (dsink) {
      const at = dsink + (<usize>h << 2);
      store<f32>(at, load<f32>(at) - load<f32>(pr + (<usize>count << 2)) * gO);
    }
    for (let c = 0; c < count; c++) {
      const row = load<i32>(cand + (<usize>c << 2));
      if (row < 0) continue;
      const v = table + <usize>row * rb, p = load<f32>(pr + (<usize>c << 2));
      const z = scale * (p * (dot(gr, v, d) - gO));
      const zs = f32x4.splat(z), ps = f32x4.splat(p);
      if (dq) {
        let j = 0;
        for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(dqr + o, fma(v128.load(dqr + o), zs, v128.load(v + o))); }
        for (; j < d; j++) { const o = <usize>j << 2; store<f32>(dqr + o, load<f32>(dqr + o) + z * load<f32>(v + o)); }
      }
      if (dtable) {
        const dv = dtable + <usize>row * rb;
        let j = 0;
        for (; j + 4 <= d; j += 4) {
          const o = <usize>j << 2;
          v128.store(dv + o, fma(fma(v128.load(dv + o), ps, v128.load(gr + o)), zs, v128.load(qr + o)));
        }
        for (; j < d; j++) { const o = <usize>j << 2; store<f32>(dv + o, load<f32>(dv + o) + p * load<f32>(gr + o) + z * load<f32>(qr + o)); }
      }
    }
  }
}

// The indexer's scores (ops-attention.ts indexerScores, spec §6.5), one work row per token t:
//   I[t, c] = Σ_h w[t, h]·relu(q[t, h]·k_c) for c < visible[t], 0 past it.

/**
 * q [n, heads·d], keys [E, d], w [n, heads], visible [n] (i32, each ≤ E) → out [n, E] and the
 * dots [n, heads, E] the backward's ReLU gates need (both overwritten; dots past visible[t] are 0).
 */
export function train_indexer_fwd_f32(q: usize, keys: usize, w: usize, visible: usize, out: usize, dots: usize, E: i32, heads: i32, d: i32,
  row0: i32, row1: i32): void {
  const rb = <usize>d << 2, eb = <usize>E << 2;
  for (let t = row0; t < row1; t++) {
    const vis = load<i32>(visible + (<usize>t << 2)), orow = out + <usize>t * eb;
    for (let c = 0; c < E; c++) {
      let s: f32 = 0;
      for (let h = 0; h < heads; h++) {
        const th = <usize>t * heads + h, at = dots + th * eb + (<usize>c << 2);
        if (c >= vis) { store<f32>(at, 0); continue; }
        const x = dot(q + th * rb, keys + <usize>c * rb, d);
        store<f32>(at, x);
        if (x > 0) s += load<f32>(w + (th << 2)) * x;
      }
      store<f32>(orow + (<usize>c << 2), s);
    }
  }
}

/**
 * The backward of train_indexer_fwd_f32 from its dots, given g = dL/dI [n, E]: for c < visible[t]
 * and each head with a positive dot x, dw[t, h] += g·x, dq[t, h] += g·w[t, h]·k_c and
 * dkeys[c] += g·w[t, h]·q[t, h]. A gradient pointer of 0 skips that gradient. One thread only
 * (the key rows are shared by all tokens).
 */
export function train_indexer_bwd_f32(g: usize, dots: usize, q: usize, keys: usize, w: usize, visible: usize, dq: usize, dkeys: usize, dw: usize,
  E: i32, heads: i32, d: i32, row0: i32, row1: i32): void {
  const rb = <usize>d << 2, eb = <usize>E << 2;
  for (let t = row0; t < row1; t++) {
    const vis = load<i32>(visible + (<usize>t << 2));
    for (let c = 0; c < vis; c++) {
      const dI = load<f32>(g + <usize>t * eb + (<usize>c << 2));
      if (dI == 0) continue;
      const k = keys + <usize>c * rb, dk = dkeys + <usize>c * rb;
      for (let h = 0; h < heads; h++) {
        const th = <usize>t * heads + h, x = load<f32>(dots + th * eb + (<usize>c << 2));
        if (!(x > 0)) continue;
        if (dw) store<f32>(dw + (th << 2), load<f32>(dw + (th << 2)) + dI * x);
        const a = dI * load<f32>(w + (th << 2)), as = f32x4.splat(a), qr = q + th * rb;
        if (dq) {
          const dqr = dq + th * rb;
          let j = 0;
          for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(dqr + o, fma(v128.load(dqr + o), as, v128.load(k + o))); }
          for (; j < d; j++) { const o = <usize>j << 2; store<f32>(dqr + o, load<f32>(dqr + o) + a * load<f32>(k + o)); }
        }
        if (dkeys) {
          let j = 0;
          for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(dk + o, fma(v128.load(dk + o), as, v128.load(qr + o))); }
          for (; j < d; j++) { const o = <usize>j << 2; store<f32>(dk + o, load<f32>(dk + o) + a * load<f32>(qr + o)); }
        }
      }
    }
  }
}
