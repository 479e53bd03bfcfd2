// Row-wise and element-wise ops on f32 tensors (ABI: ../README.md, "Ops").
//
// Every op works on rows of `d` f32 values and takes the half-open row range [row0, row1) last,
// so the worker pool can split rows between threads exactly as for the matrix kernels.
// exp/sin/cos come from AssemblyScript's Math (musl ports: correctly rounded to within an ulp),
// except silu's four-lane exp (simd.ts exp4, about 1 ulp).

import { bf16, bf16hi, bf16lo, exp4, f16, f16hi, f16lo, f16scale4, fma, hsum } from './simd';

@inline function rowPtr(base: usize, r: i32, d: i32): usize { return base + <usize>r * (<usize>d << 2); }

/** y[r] = w ⊙ x[r] / sqrt(mean(x[r]²) + eps); `w` = 0 for the weightless form. */
export function rmsnorm_f32(x: usize, w: usize, y: usize, d: i32, eps: f32, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    const xr = rowPtr(x, r, d), yr = rowPtr(y, r, d);
    let a0 = f32x4.splat(0), a1 = a0;
    let j = 0;
    for (; j + 8 <= d; j += 8) {
      const v0 = v128.load(xr + (<usize>j << 2)), v1 = v128.load(xr + (<usize>j << 2), 16);
      a0 = fma(a0, v0, v0); a1 = fma(a1, v1, v1);
    }
    let ss = hsum(f32x4.add(a0, a1));
    for (; j < d; j++) { const v = load<f32>(xr + (<usize>j << 2)); ss += v * v; }
    const inv: f32 = 1.0 / Mathf.sqrt(ss / <f32>d + eps);
    const vinv = f32x4.splat(inv);
    j = 0;
    if (w) {
      for (; j + 4 <= d; j += 4) {
        const o = <usize>j << 2;
        v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), vinv), v128.load(w + o)));
      }
      for (; j < d; j++) {
        const o = <usize>j << 2;
        store<f32>(yr + o, load<f32>(xr + o) * inv * load<f32>(w + o));
      }
    } else {
      for (; j + 4 <= d; j += 4) { const o = <usize>j << 2; v128.store(yr + o, f32x4.mul(v128.load(xr + o), vinv)); }
      for (; j < d; j++) { const o = <usize>j << 2; store<f32>(yr + o, load<f32>(xr + o) * inv); }
    }
  }
}

/**
 * Rotary embedding in place. Token row t holds `heads` heads of `headDim` values; the last
 * `ropeDim` channels of each head rotate by θ_i = f32(pos[t] · freqs[i]), i < ropeDim/2.
 * Pair i is channels (off+2i, off+2i+1) when interleaved, (off+i, off+i+ropeDim/2) when `neox`;
 * off = headDim − ropeDim. `inverse` rotates by −θ.
 */
export function rope_f32(x: usize, freqs: usize, pos: usize, heads: i32, headDim: i32, ropeDim: i32,
  neox: i32, inverse: i32, row0: i32, row1: i32): void {
  const half = ropeDim >> 1, off = headDim - ropeDim, width = heads * headDim;
  const hs = <usize>headDim << 2;
  for (let t = row0; t < row1; t++) {
    const p = <f32>load<i32>(pos + (<usize>t << 2));
    const xt = rowPtr(x, t, width);
    for (let i = 0; i < half; i++) {
      const theta: f32 = p * load<f32>(freqs + (<usize>i << 2));
      const c = <f32>Math.cos(<f64>theta);
      let s = <f32>Math.sin(<f64>theta);
      if (inverse) s = -s;
      const ia = neox ? off + i : off + 2 * i, ib = neox ? ia + half : ia + 1;
      let pa = xt + (<usize>ia << 2), pb = xt + (<usize>ib << 2);
      for (let h = 0; h < heads; h++) {
        const a = load<f32>(pa), b = load<f32>(pb);
        store<f32>(pa, a * c - b * s);
        store<f32>(pb, a * s + b * c);
        pa += hs; pb += hs;
      }
    }
  }
}

/** y[r] = softmax(scale · x[r]). */
export function softmax_f32(x: usize, y: usize, d: i32, scale: f32, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    const xr = rowPtr(x, r, d), yr = rowPtr(y, r, d);
    let m = -Infinity as f32;
    for (let j = 0; j < d; j++) m = max(m, scale * load<f32>(xr + (<usize>j << 2)));
    let sum: f32 = 0;
    for (let j = 0; j < d; j++) {
      const e = Mathf.exp(scale * load<f32>(xr + (<usize>j << 2)) - m);
      store<f32>(yr + (<usize>j << 2), e);
      sum += e;
    }
    const inv: f32 = 1.0 / sum;
    for (let j = 0; j < d; j++) store<f32>(yr + (<usize>j << 2), load<f32>(yr + (<usize>j << 2)) * inv);
  }
}

@inline function silu(v: f32): f32 { return v / (1.0 + Mathf.exp(-v)); }

/**
 * silu of four lanes: v · σ(v) with t = e^−|v| (exp4's argument stays ≤ 0), σ = 1/(1+t) for v ≥ 0
 * and t/(1+t) below; within a few ulp of the scalar form (the swiglu of a 5632-wide FFN was 25 µs
 * with a scalar exp per element).
 */
@inline function silu4(v: v128): v128 {
  const t = exp4(f32x4.neg(f32x4.abs(v)));
  const num = v128.bitselect(f32x4.splat(1), t, f32x4.ge(v, f32x4.splat(0)));
  return f32x4.div(f32x4.mul(v, num), f32x4.add(f32x4.splat(1), t));
}

/** y = x · sigmoid(x). */
export function silu_f32(x: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  let p = rowPtr(x, row0, d), q = rowPtr(y, row0, d);
  const end = rowPtr(x, row1, d), end4 = p + ((end - p) & ~15);
  for (; p < end4; p += 16, q += 16) v128.store(q, silu4(v128.load(p)));
  for (; p < end; p += 4, q += 4) store<f32>(q, silu(load<f32>(p)));
}

/** y = silu(min(g, L)) · clamp(u, −L, L); no clamp when L ≤ 0 (DeepSeek-V4 §7.3). */
export function swiglu_f32(g: usize, u: usize, y: usize, d: i32, limit: f32, row0: i32, row1: i32): void {
  const o0 = rowPtr(0, row0, d), o1 = rowPtr(0, row1, d), end4 = o0 + ((o1 - o0) & ~15);
  const hi = f32x4.splat(limit), lo = f32x4.splat(-limit), clamp = limit > 0;
  let o = o0;
  for (; o < end4; o += 16) {
    let gv = v128.load(g + o), uv = v128.load(u + o);
    if (clamp) { gv = f32x4.min(gv, hi); uv = f32x4.max(f32x4.min(uv, hi), lo); }
    v128.store(y + o, f32x4.mul(silu4(gv), uv));
  }
  for (; o < o1; o += 4) {
    let gv = load<f32>(g + o), uv = load<f32>(u + o);
    if (clamp) { gv = min(gv, limit); uv = max(min(uv, limit), -limit); }
    store<f32>(y + o, silu(gv) * uv);
  }
}

// op: 0 = add, 1 = mul. Row r of `b` starts `bstep` elements after row r−1 (0 broadcasts one row).
@inline function binary(op: i32, a: usize, b: usize, y: usize, d: i32, bstep: i32, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    const ar = rowPtr(a, r, d), br = rowPtr(b, r, bstep), yr = rowPtr(y, r, d);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      const va = v128.load(ar + o), vb = v128.load(br + o);
      v128.store(yr + o, op == 0 ? f32x4.add(va, vb) : f32x4.mul(va, vb));
    }
    for (; j < d; j++) {
      const o = <usize>j << 2;
      const va = load<f32>(ar + o), vb = load<f32>(br + o);
      store<f32>(yr + o, op == 0 ? va + vb : va * vb);
    }
  }
}

/** y[r] = a[r] + b[r] (b row stride `bstep` elements). */
export function add_f32(a: usize, b: usize, y: usize, d: i32, bstep: i32, row0: i32, row1: i32): void {
  binary(0, a, b, y, d, bstep, row0, row1);
}

/** y[r] = a[r] ⊙ b[r] (b row stride `bstep` elements). */
export function mul_f32(a: usize, b: usize, y: usize, d: i32, bstep: i32, row0: i32, row1: i32): void {
  binary(1, a, b, y, d, bstep, row0, row1);
}

// ---- embedding gather: y[t] = table[ids[t]] widened to f32 ---------------------------------------

export function embed_f32(table: usize, ids: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  const rb = <usize>d << 2;
  for (let t = row0; t < row1; t++) {
    memory.copy(y + <usize>t * rb, table + <usize>load<i32>(ids + (<usize>t << 2)) * rb, rb);
  }
}

// bf: 0 = f16, 1 = bf16.
@inline function embedHalf(bf: i32, table: usize, ids: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  const sc = f16scale4();
  for (let t = row0; t < row1; t++) {
    let src = table + <usize>load<i32>(ids + (<usize>t << 2)) * (<usize>d << 1);
    let dst = rowPtr(y, t, d);
    const end8 = src + (<usize>(d & ~7) << 1);
    while (src < end8) {
      const v = v128.load(src);
      v128.store(dst, bf ? bf16lo(v) : f16lo(v, sc));
      v128.store(dst, bf ? bf16hi(v) : f16hi(v, sc), 16);
      src += 16; dst += 32;
    }
    for (let j = d & 7; j > 0; j--) {
      const h = load<u16>(src);
      store<f32>(dst, bf ? bf16(h) : f16(h));
      src += 2; dst += 4;
    }
  }
}

export function embed_f16(table: usize, ids: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  embedHalf(0, table, ids, y, d, row0, row1);
}

export function embed_bf16(table: usize, ids: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  embedHalf(1, table, ids, y, d, row0, row1);
}

// ---- selection and reduction ------------------------------------------------------------------

/** out[r] = index of the largest value of row r (first on ties, NaN skipped; 0 if none). */
export function argmax_f32(x: usize, d: i32, out: usize, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    const xr = rowPtr(x, r, d);
    // Pass 1: the maximum (pmax keeps the accumulator when the new lane is NaN).
    let m4 = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= d; j += 4) m4 = f32x4.pmax(m4, v128.load(xr + (<usize>j << 2)));
    let m = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
    for (; j < d; j++) { const v = load<f32>(xr + (<usize>j << 2)); if (v > m) m = v; }
    // Pass 2: its first position.
    let idx = 0;
    const vm = f32x4.splat(m);
    j = 0;
    for (; j + 4 <= d; j += 4) if (v128.any_true(f32x4.eq(v128.load(xr + (<usize>j << 2)), vm))) break;
    for (; j < d; j++) if (load<f32>(xr + (<usize>j << 2)) == m) { idx = j; break; }
    store<i32>(out + (<usize>r << 2), idx);
  }
}

/**
 * The k largest values of each row, largest first, earlier index first on ties, NaN skipped:
 * vals[r·k + i], idx[r·k + i]. Slots left over when a row has fewer than k numbers get −∞ and −1.
 */
export function topk_f32(x: usize, d: i32, k: i32, vals: usize, idx: usize, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    const xr = rowPtr(x, r, d), vr = rowPtr(vals, r, k), ir = rowPtr(idx, r, k);
    const last = vr + (<usize>(k - 1) << 2);
    let count = 0;
    let j = 0;
    while (j < d) {
      // Once full, skip 4 at a time while no lane beats the current k-th value.
      if (count == k && j + 4 <= d &&
        !v128.any_true(f32x4.gt(v128.load(xr + (<usize>j << 2)), f32x4.splat(load<f32>(last))))) { j += 4; continue; }
      const v = load<f32>(xr + (<usize>j << 2));
      if (v == v) {
        let p = -1;
        if (count < k) p = count++;
        else if (v > load<f32>(last)) p = k - 1;
        if (p >= 0) {
          while (p > 0 && v > load<f32>(vr + (<usize>(p - 1) << 2))) {
            store<f32>(vr + (<usize>p << 2), load<f32>(vr + (<usize>(p - 1) << 2)));
            store<i32>(ir + (<usize>p << 2), load<i32>(ir + (<usize>(p - 1) << 2)));
            p--;
          }
          store<f32>(vr + (<usize>p << 2), v);
          store<i32>(ir + (<usize>p << 2), j);
        }
      }
      j++;
    }
    for (let p = count; p < k; p++) {
      store<f32>(vr + (<usize>p << 2), -Infinity);
      store<i32>(ir + (<usize>p << 2), -1);
    }
  }
}

/** y[r] = Σ x[r]; eight accumulators, so one thread streams memory at full speed (bench uses it). */
export function rowsum_f32(x: usize, y: usize, d: i32, row0: i32, row1: i32): void {
  for (let r = row0; r < row1; r++) {
    let p = rowPtr(x, r, d);
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const end32 = p + (<usize>(d & ~31) << 2);
    while (p < end32) {
      a0 = f32x4.add(a0, v128.load(p)); a1 = f32x4.add(a1, v128.load(p, 16));
      a2 = f32x4.add(a2, v128.load(p, 32)); a3 = f32x4.add(a3, v128.load(p, 48));
      a4 = f32x4.add(a4, v128.load(p, 64)); a5 = f32x4.add(a5, v128.load(p, 80));
      a6 = f32x4.add(a6, v128.load(p, 96)); a7 = f32x4.add(a7, v128.load(p, 112));
      p += 128;
    }
    let s = hsum(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))));
    for (let j = d & 31; j > 0; j--) { s += load<f32>(p); p += 4; }
    store<f32>(y + (<usize>r << 2), s);
  }
}
