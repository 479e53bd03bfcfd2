// DeepSeek-V4 sparse attention with an attention sink (spec §6.6), over one KV head shared by all
// query heads (MQA: every row of `kv` is both key and value). Same conventions as the ops
// (../README.md): pointers into the shared memory, f32, the work-row range [row0, row1) last.
// Backend op: sparseAttention() (../../backend.ts).
//
// One work row is one (token, head) pair r = t · heads + h. Token t's candidates are the kv rows
// rows[t · count + i] (i32; −1 = skip). For head h:
//   z_i = scale · (q[r] · kv[row_i]),  o = Σ_i exp(z_i) · kv[row_i] / (Σ_i exp(z_i) + exp(sink[h]))
// and o = 0 when no candidate is valid. The sink is a logit whose value vector is zero, so the
// running maximum starts at sink[h] with a running sum of exp(0) = 1.
//
// Candidates go in tiles of up to TILE (any count works): the tile's scores and row pointers are
// staged in the thread's scratch, a new maximum rescales what was summed so far (the online
// softmax), and the value rows are accumulated in registers, so each output channel is loaded and
// stored once per tile. Heads go four at a time where the row range holds four heads of one token:
// all heads share the candidate rows, so each load of a row serves four heads, and the scores take
// two rows at a time so each load of a query serves two rows too (the kernel is bound by loads,
// not by memory: gathering 40 distinct rows or 2000 costs about the same; this took a 64-head,
// 640-candidate decode step from 5.5 to 2.2 ms on one thread). Other heads go one at a time;
// without scratch room for one tile, one candidate at a time.

import { scratchBytes, scratchPtr } from './scratch';
import { hsum } from './simd';

/** Candidates per tile: up to 20 KiB of scores and row pointers. */
const TILE: i32 = 1024;
/** Heads attended together. */
const GROUP: i32 = 4;
/** Scratch bytes before the four-head tile: the heads' running maxima, sums and tile maxima. */
const STATS: usize = 64;

/**
 * acc + a·b, rounded twice in both builds: relaxed_madd (simd.ts `fma`) measured no faster here
 * (the kernel is bound by loads), and unfused products give the same bits on every CPU and build
 * (relaxed_madd may or may not fuse) — attention outputs feed FP8 round trips whose midpoint
 * flips (spec §10.6) would otherwise differ between machines.
 */
@inline function madd(acc: v128, a: v128, b: v128): v128 { return f32x4.add(acc, f32x4.mul(a, b)); }

// Every score is summed in the same order whichever path computes it (one f32x4 accumulator
// over 4-channel steps, then the lanes, then the tail), and the values are accumulated channel by
// channel in candidate order on every path: a (token, head) row's output does not depend on how
// the rows were split between threads or grouped, so prefill and decode agree bit for bit.

/** scale · (a · b) over d f32 values. */
@inline function dot(a: usize, b: usize, d: i32, scale: f32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; acc = madd(acc, v128.load(a + o), v128.load(b + o)); }
  let s = hsum(acc);
  for (; j < d; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return scale * s;
}

/** dst[g] = scale · (q_g · v) for the four query rows q_g = q + g · qs; v is read once. */
@inline function dot4(q: usize, qs: usize, v: usize, d: i32, scale: f32, dst: usize): void {
  const q1 = q + qs, q2 = q1 + qs, q3 = q2 + qs;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let j = 0;
  for (; j + 4 <= d; j += 4) {
    const o = <usize>j << 2, v0 = v128.load(v + o);
    a0 = madd(a0, v128.load(q + o), v0); a1 = madd(a1, v128.load(q1 + o), v0);
    a2 = madd(a2, v128.load(q2 + o), v0); a3 = madd(a3, v128.load(q3 + o), v0);
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; j < d; j++) {
    const o = <usize>j << 2, x = load<f32>(v + o);
    s0 += load<f32>(q + o) * x; s1 += load<f32>(q1 + o) * x; s2 += load<f32>(q2 + o) * x; s3 += load<f32>(q3 + o) * x;
  }
  store<f32>(dst, scale * s0); store<f32>(dst, scale * s1, 4); store<f32>(dst, scale * s2, 8); store<f32>(dst, scale * s3, 12);
}

/** dot4 for two rows v and w at once: dst[0..4) for v, dst[4..8) for w; each q load serves both. */
@inline function dot4x2(q: usize, qs: usize, v: usize, w: usize, d: i32, scale: f32, dst: usize): void {
  const q1 = q + qs, q2 = q1 + qs, q3 = q2 + qs;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  let j = 0;
  for (; j + 4 <= d; j += 4) {
    const o = <usize>j << 2;
    const v0 = v128.load(v + o), w0 = v128.load(w + o);
    let x = v128.load(q + o); a0 = madd(a0, x, v0); b0 = madd(b0, x, w0);
    x = v128.load(q1 + o); a1 = madd(a1, x, v0); b1 = madd(b1, x, w0);
    x = v128.load(q2 + o); a2 = madd(a2, x, v0); b2 = madd(b2, x, w0);
    x = v128.load(q3 + o); a3 = madd(a3, x, v0); b3 = madd(b3, x, w0);
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  let t0 = hsum(b0), t1 = hsum(b1), t2 = hsum(b2), t3 = hsum(b3);
  for (; j < d; j++) {
    const o = <usize>j << 2, x = load<f32>(v + o), y = load<f32>(w + o);
    let c = load<f32>(q + o); s0 += c * x; t0 += c * y;
    c = load<f32>(q1 + o); s1 += c * x; t1 += c * y;
    c = load<f32>(q2 + o); s2 += c * x; t2 += c * y;
    c = load<f32>(q3 + o); s3 += c * x; t3 += c * y;
  }
  store<f32>(dst, scale * s0); store<f32>(dst, scale * s1, 4); store<f32>(dst, scale * s2, 8); store<f32>(dst, scale * s3, 12);
  store<f32>(dst, scale * t0, 16); store<f32>(dst, scale * t1, 20); store<f32>(dst, scale * t2, 24); store<f32>(dst, scale * t3, 28);
}

/** y *= c. */
@inline function scaleRow(y: usize, c: f32, d: i32): void {
  const vc = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(y + o, f32x4.mul(v128.load(y + o), vc)); }
  for (; j < d; j++) { const o = <usize>j << 2; store<f32>(y + o, load<f32>(y + o) * c); }
}

/** y += e · v (the one-candidate path). */
@inline function axpy(y: usize, e: f32, v: usize, d: i32): void {
  const ve = f32x4.splat(e);
  let j = 0;
  for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(y + o, madd(v128.load(y + o), v128.load(v + o), ve)); }
  for (; j < d; j++) { const o = <usize>j << 2; store<f32>(y + o, load<f32>(y + o) + e * load<f32>(v + o)); }
}

/** y += Σ_i e[i] · row_i over n gathered rows (pointers at `ptrs`), channels in registers. */
@inline function accumulate(y: usize, e: usize, ptrs: usize, n: i32, d: i32): void {
  let c = 0;
  for (; c + 32 <= d; c += 32) {
    const yc = y + (<usize>c << 2), off = <usize>c << 2;
    let a0 = v128.load(yc), a1 = v128.load(yc, 16), a2 = v128.load(yc, 32), a3 = v128.load(yc, 48);
    let a4 = v128.load(yc, 64), a5 = v128.load(yc, 80), a6 = v128.load(yc, 96), a7 = v128.load(yc, 112);
    for (let i = 0; i < n; i++) {
      const w = v128.load32_splat(e + (<usize>i << 2));
      const vp = <usize>load<u32>(ptrs + (<usize>i << 2)) + off;
      a0 = madd(a0, v128.load(vp), w); a1 = madd(a1, v128.load(vp, 16), w);
      a2 = madd(a2, v128.load(vp, 32), w); a3 = madd(a3, v128.load(vp, 48), w);
      a4 = madd(a4, v128.load(vp, 64), w); a5 = madd(a5, v128.load(vp, 80), w);
      a6 = madd(a6, v128.load(vp, 96), w); a7 = madd(a7, v128.load(vp, 112), w);
    }
    v128.store(yc, a0); v128.store(yc, a1, 16); v128.store(yc, a2, 32); v128.store(yc, a3, 48);
    v128.store(yc, a4, 64); v128.store(yc, a5, 80); v128.store(yc, a6, 96); v128.store(yc, a7, 112);
  }
  for (; c + 4 <= d; c += 4) {
    const yc = y + (<usize>c << 2), off = <usize>c << 2;
    let a0 = v128.load(yc);
    for (let i = 0; i < n; i++) {
      a0 = madd(a0, v128.load(<usize>load<u32>(ptrs + (<usize>i << 2)) + off), v128.load32_splat(e + (<usize>i << 2)));
    }
    v128.store(yc, a0);
  }
  for (; c < d; c++) {
    const off = <usize>c << 2;
    let a = load<f32>(y + off);
    for (let i = 0; i < n; i++) a += load<f32>(e + (<usize>i << 2)) * load<f32>(<usize>load<u32>(ptrs + (<usize>i << 2)) + off);
    store<f32>(y + off, a);
  }
}

/**
 * y_g += Σ_i e[i, g] · row_i for the four output rows y_g = y + g · ys, e [n, 4]: each row segment
 * is loaded once for the four heads.
 */
@inline function accumulate4(y: usize, ys: usize, e: usize, ptrs: usize, n: i32, d: i32): void {
  const y1 = y + ys, y2 = y1 + ys, y3 = y2 + ys;
  let c = 0;
  for (; c + 8 <= d; c += 8) {
    const off = <usize>c << 2;
    let a0 = v128.load(y + off), b0 = v128.load(y + off, 16), a1 = v128.load(y1 + off), b1 = v128.load(y1 + off, 16);
    let a2 = v128.load(y2 + off), b2 = v128.load(y2 + off, 16), a3 = v128.load(y3 + off), b3 = v128.load(y3 + off, 16);
    for (let i = 0; i < n; i++) {
      const vp = <usize>load<u32>(ptrs + (<usize>i << 2)) + off, ei = e + (<usize>i << 4);
      const v0 = v128.load(vp), v1 = v128.load(vp, 16);
      let w = v128.load32_splat(ei); a0 = madd(a0, v0, w); b0 = madd(b0, v1, w);
      w = v128.load32_splat(ei, 4); a1 = madd(a1, v0, w); b1 = madd(b1, v1, w);
      w = v128.load32_splat(ei, 8); a2 = madd(a2, v0, w); b2 = madd(b2, v1, w);
      w = v128.load32_splat(ei, 12); a3 = madd(a3, v0, w); b3 = madd(b3, v1, w);
    }
    v128.store(y + off, a0); v128.store(y + off, b0, 16); v128.store(y1 + off, a1); v128.store(y1 + off, b1, 16);
    v128.store(y2 + off, a2); v128.store(y2 + off, b2, 16); v128.store(y3 + off, a3); v128.store(y3 + off, b3, 16);
  }
  for (; c < d; c++) {
    const off = <usize>c << 2;
    for (let g = 0; g < GROUP; g++) {
      const yg = y + <usize>g * ys + off;
      let a = load<f32>(yg);
      for (let i = 0; i < n; i++) a += load<f32>(e + (<usize>(i * GROUP + g) << 2)) * load<f32>(<usize>load<u32>(ptrs + (<usize>i << 2)) + off);
      store<f32>(yg, a);
    }
  }
}

/** One head: q row qr, output row o, running maximum from the sink logit `sink`. */
@inline function oneHead(qr: usize, kv: usize, cand: usize, count: i32, sink: f32, o: usize, d: i32, scale: f32): void {
  const rowBytes = <usize>d << 2;
  const tile = min(TILE, <i32>(scratchBytes >> 3));
  const scores = scratchPtr, ptrs = scratchPtr + (<usize>max(tile, 0) << 2);
  memory.fill(o, 0, rowBytes);
  let m = sink, sum: f32 = 1;
  let any = false;
  if (tile > 0) {
    for (let i0 = 0; i0 < count; i0 += tile) {
      const end = min(count, i0 + tile);
      let n = 0, tmax = -Infinity as f32;
      for (let i = i0; i < end; i++) {
        const row = load<i32>(cand + (<usize>i << 2));
        if (row < 0) continue;
        const vp = kv + <usize>row * rowBytes;
        const z = dot(qr, vp, d, scale);
        store<f32>(scores + (<usize>n << 2), z);
        store<u32>(ptrs + (<usize>n << 2), <u32>vp);
        tmax = max(tmax, z);
        n++;
      }
      if (n == 0) continue;
      if (tmax > m) {
        const c = Mathf.exp(m - tmax);
        sum *= c;
        if (any) scaleRow(o, c, d);
        m = tmax;
      }
      for (let i = 0; i < n; i++) {
        const e = Mathf.exp(load<f32>(scores + (<usize>i << 2)) - m);
        store<f32>(scores + (<usize>i << 2), e);
        sum += e;
      }
      accumulate(o, scores, ptrs, n, d);
      any = true;
    }
  } else {
    for (let i = 0; i < count; i++) {
      const row = load<i32>(cand + (<usize>i << 2));
      if (row < 0) continue;
      const vp = kv + <usize>row * rowBytes;
      const z = dot(qr, vp, d, scale);
      if (z > m) { const c = Mathf.exp(m - z); sum *= c; if (any) scaleRow(o, c, d); m = z; }
      const e = Mathf.exp(z - m);
      sum += e;
      axpy(o, e, vp, d);
      any = true;
    }
  }
  if (any) scaleRow(o, <f32>1.0 / sum, d);
}

/**
 * Four heads of one token: q rows from qr, output rows from o (consecutive, d apart), sinks at
 * `sink`. Scratch: the four running maxima, sums and tile maxima (STATS bytes), then the tile's
 * scores [tile, 4] and row pointers [tile].
 */
@inline function fourHeads(qr: usize, kv: usize, cand: usize, count: i32, sink: usize, o: usize, d: i32, scale: f32, tile: i32): void {
  const rowBytes = <usize>d << 2;
  const ms = scratchPtr, sums = ms + 16, tmax = ms + 32;
  const scores = scratchPtr + STATS, ptrs = scores + (<usize>tile << 4);
  memory.fill(o, 0, rowBytes * GROUP);
  for (let g = 0; g < GROUP; g++) {
    store<f32>(ms + (<usize>g << 2), load<f32>(sink + (<usize>g << 2)));
    store<f32>(sums + (<usize>g << 2), 1);
  }
  let any = false;
  for (let i0 = 0; i0 < count; i0 += tile) {
    const end = min(count, i0 + tile);
    let n = 0;
    for (let i = i0; i < end; i++) {
      const row = load<i32>(cand + (<usize>i << 2));
      if (row >= 0) { store<u32>(ptrs + (<usize>n << 2), <u32>(kv + <usize>row * rowBytes)); n++; }
    }
    if (n == 0) continue;
    let i = 0;
    for (; i + 2 <= n; i += 2) {
      dot4x2(qr, rowBytes, <usize>load<u32>(ptrs + (<usize>i << 2)), <usize>load<u32>(ptrs + (<usize>i << 2), 4), d, scale, scores + (<usize>i << 4));
    }
    if (i < n) dot4(qr, rowBytes, <usize>load<u32>(ptrs + (<usize>i << 2)), d, scale, scores + (<usize>i << 4));
    v128.store(tmax, v128.load(scores));
    for (let i = 1; i < n; i++) v128.store(tmax, f32x4.max(v128.load(tmax), v128.load(scores + (<usize>i << 4))));
    for (let g = 0; g < GROUP; g++) {
      const mg = ms + (<usize>g << 2), sg = sums + (<usize>g << 2), t = load<f32>(tmax + (<usize>g << 2)), m = load<f32>(mg);
      if (t > m) {
        const c = Mathf.exp(m - t);
        store<f32>(sg, load<f32>(sg) * c);
        if (any) scaleRow(o + <usize>g * rowBytes, c, d);
        store<f32>(mg, t);
      }
    }
    for (let g = 0; g < GROUP; g++) {
      const m = load<f32>(ms + (<usize>g << 2));
      let sum = load<f32>(sums + (<usize>g << 2));
      for (let i = 0; i < n; i++) {
        const p = scores + (<usize>(i * GROUP + g) << 2);
        const e = Mathf.exp(load<f32>(p) - m);
        store<f32>(p, e);
        sum += e;
      }
      store<f32>(sums + (<usize>g << 2), sum);
    }
    accumulate4(o, rowBytes, scores, ptrs, n, d);
    any = true;
  }
  if (any) for (let g = 0; g < GROUP; g++) scaleRow(o + <usize>g * rowBytes, <f32>1.0 / load<f32>(sums + (<usize>g << 2)), d);
}

/**
 * out[t, h] = Σ_i exp(z_i) · kv[row_i] / (Σ_i exp(z_i) + exp(sink[h])), z_i = scale · q[t, h] · kv[row_i],
 * over token t's valid candidates row_i = rows[t · count + i] ≥ 0; q and out [n, heads · d] f32,
 * kv [·, d] f32, rows [n, count] i32, sink [heads] f32; rows r of the n · heads (token, head) pairs
 * in [row0, row1).
 */
export function sparse_attention_f32(q: usize, kv: usize, rows: usize, count: i32, sink: usize, out: usize,
  heads: i32, d: i32, scale: f32, row0: i32, row1: i32): void {
  const rowBytes = <usize>d << 2;
  const tile4 = scratchBytes > STATS ? min(TILE, <i32>((scratchBytes - STATS) / 20)) : 0;
  for (let r = row0; r < row1;) {
    const t = r / heads, h = r % heads;
    const cand = rows + (<usize>(t * count) << 2);
    const qr = q + <usize>r * rowBytes, o = out + <usize>r * rowBytes;
    if (tile4 > 0 && h + GROUP <= heads && r + GROUP <= row1) {
      fourHeads(qr, kv, cand, count, sink + (<usize>h << 2), o, d, scale, tile4);
      r += GROUP;
    } else {
      oneHead(qr, kv, cand, count, load<f32>(sink + (<usize>h << 2)), o, d, scale);
      r++;
    }
  }
}
