// The dense f32 products of training (src/train/matmul.ts): a linear map's forward y = x·Wᵀ and
// its backward dx = dy·W, dW = dyᵀ·x. Operands are row-major f32 in the shared memory; strides are
// in elements. Tiles hold 8 f32x4 accumulators plus their 6 operands: V8 gives wasm 15 vector
// registers, so wider tiles spill.
import { fma, hsum } from './simd';

/**
 * y[t·m + o] = Σ_i x[t·k + i]·w[o·k + i] for tokens t in [row0, row1), o < m: x [n, k], w [m, k]
 * → y [n, m] (overwritten). Two tokens × four outputs per tile, dotted along k four lanes at a time.
 */
export function train_xwt_f32(x: usize, w: usize, y: usize, k: i32, m: i32, row0: i32, row1: i32): void {
  const k4 = k & ~3, rb = <usize>k << 2;
  let t = row0;
  for (; t + 2 <= row1; t += 2) {
    const x0 = x + <usize>t * rb, x1 = x0 + rb, y0 = y + (<usize>t * m << 2), y1 = y0 + (<usize>m << 2);
    let o = 0;
    for (; o + 4 <= m; o += 4) {
      const w0 = w + <usize>o * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
      for (let i = 0; i < k4; i += 4) {
        const off = <usize>i << 2;
        const p = v128.load(x0 + off), q = v128.load(x1 + off);
        const v0 = v128.load(w0 + off), v1 = v128.load(w1 + off), v2 = v128.load(w2 + off), v3 = v128.load(w3 + off);
        a00 = fma(a00, p, v0); a01 = fma(a01, p, v1); a02 = fma(a02, p, v2); a03 = fma(a03, p, v3);
        a10 = fma(a10, q, v0); a11 = fma(a11, q, v1); a12 = fma(a12, q, v2); a13 = fma(a13, q, v3);
      }
      let s00 = hsum(a00), s01 = hsum(a01), s02 = hsum(a02), s03 = hsum(a03);
      let s10 = hsum(a10), s11 = hsum(a11), s12 = hsum(a12), s13 = hsum(a13);
      for (let i = k4; i < k; i++) {
        const off = <usize>i << 2, p = load<f32>(x0 + off), q = load<f32>(x1 + off);
        const v0 = load<f32>(w0 + off), v1 = load<f32>(w1 + off), v2 = load<f32>(w2 + off), v3 = load<f32>(w3 + off);
        s00 += p * v0; s01 += p * v1; s02 += p * v2; s03 += p * v3;
        s10 += q * v0; s11 += q * v1; s12 += q * v2; s13 += q * v3;
      }
      const yo = <usize>o << 2;
      store<f32>(y0 + yo, s00); store<f32>(y0 + yo, s01, 4); store<f32>(y0 + yo, s02, 8); store<f32>(y0 + yo, s03, 12);
      store<f32>(y1 + yo, s10); store<f32>(y1 + yo, s11, 4); store<f32>(y1 + yo, s12, 8); store<f32>(y1 + yo, s13, 12);
    }
    for (; o < m; o++) {
      const wo = w + <usize>o * rb;
      store<f32>(y0 + (<usize>o << 2), dot(x0, wo, k));
      store<f32>(y1 + (<usize>o << 2), dot(x1, wo, k));
    }
  }
  for (; t < row1; t++) {
    const x0 = x + <usize>t * rb, y0 = y + (<usize>t * m << 2);
    for (let o = 0; o < m; o++) store<f32>(y0 + (<usize>o << 2), dot(x0, w + <usize>o * rb, k));
  }
}

/** Σ_i a[i]·b[i] over k f32 values. */
@inline function dot(a: usize, b: usize, k: i32): f32 {
  const k4 = k & ~3;
  let acc = f32x4.splat(0);
  for (let i = 0; i < k4; i += 4) acc = fma(acc, v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2)));
  let s = hsum(acc);
  for (let i = k4; i < k; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/**
 * out[a·k + j] += Σ_b g[b·gs + a·ga]·v[b·k + j] for rows a in [row0, row1), b < B, j < k: the
 * backward products dx = dy·W (a = token, b = output, gs = 1, ga = m) and dW = dyᵀ·x (a = output,
 * b = token, gs = m, ga = 1). Four rows of `out` × eight columns per tile: each step splats four
 * g values against two vectors of one v row.
 */
export function train_accum_rows_f32(g: usize, gs: i32, ga: i32, v: usize, out: usize, B: i32, k: i32, row0: i32, row1: i32): void {
  const rb = <usize>k << 2, gsb = <usize>gs << 2, gab = <usize>ga << 2;
  let a = row0;
  for (; a + 4 <= row1; a += 4) {
    const g0 = g + <usize>a * gab, g1 = g0 + gab, g2 = g1 + gab, g3 = g2 + gab;
    const o0 = out + <usize>a * rb, o1 = o0 + rb, o2 = o1 + rb, o3 = o2 + rb;
    let j = 0;
    for (; j + 8 <= k; j += 8) {
      const jo = <usize>j << 2;
      let c00 = v128.load(o0 + jo), c01 = v128.load(o0 + jo, 16), c10 = v128.load(o1 + jo), c11 = v128.load(o1 + jo, 16);
      let c20 = v128.load(o2 + jo), c21 = v128.load(o2 + jo, 16), c30 = v128.load(o3 + jo), c31 = v128.load(o3 + jo, 16);
      let vp = v + jo, go: usize = 0;
      for (let b = 0; b < B; b++) {
        const p = v128.load(vp), q = v128.load(vp, 16);
        const s0 = v128.load32_splat(g0 + go), s1 = v128.load32_splat(g1 + go);
        const s2 = v128.load32_splat(g2 + go), s3 = v128.load32_splat(g3 + go);
        c00 = fma(c00, s0, p); c01 = fma(c01, s0, q);
        c10 = fma(c10, s1, p); c11 = fma(c11, s1, q);
        c20 = fma(c20, s2, p); c21 = fma(c21, s2, q);
        c30 = fma(c30, s3, p); c31 = fma(c31, s3, q);
        vp += rb; go += gsb;
      }
      v128.store(o0 + jo, c00); v128.store(o0 + jo, c01, 16); v128.store(o1 + jo, c10); v128.store(o1 + jo, c11, 16);
      v128.store(o2 + jo, c20); v128.store(o2 + jo, c21, 16); v128.store(o3 + jo, c30); v128.store(o3 + jo, c31, 16);
    }
    for (; j < k; j++) {
      const jo = <usize>j << 2;
      let s0 = load<f32>(o0 + jo), s1 = load<f32>(o1 + jo), s2 = load<f32>(o2 + jo), s3 = load<f32>(o3 + jo);
      let vp = v + jo, go: usize = 0;
      for (let b = 0; b < B; b++) {
        const p = load<f32>(vp);
        s0 += load<f32>(g0 + go) * p; s1 += load<f32>(g1 + go) * p;
        s2 += load<f32>(g2 + go) * p; s3 += load<f32>(g3 + go) * p;
        vp += rb; go += gsb;
      }
      store<f32>(o0 + jo, s0); store<f32>(o1 + jo, s1); store<f32>(o2 + jo, s2); store<f32>(o3 + jo, s3);
    }
  }
  for (; a < row1; a++) {
    const g0 = g + <usize>a * gab, o0 = out + <usize>a * rb;
    let j = 0;
    for (; j + 4 <= k; j += 4) {
      const jo = <usize>j << 2;
      let c = v128.load(o0 + jo), vp = v + jo, go: usize = 0;
      for (let b = 0; b < B; b++) {
        c = fma(c, v128.load32_splat(g0 + go), v128.load(vp));
        vp += rb; go += gsb;
      }
      v128.store(o0 + jo, c);
    }
    for (; j < k; j++) {
      const jo = <usize>j << 2;
      let s = load<f32>(o0 + jo), vp = v + jo, go: usize = 0;
      for (let b = 0; b < B; b++) {
        s += load<f32>(g0 + go) * load<f32>(vp);
        vp += rb; go += gsb;
      }
      store<f32>(o0 + jo, s);
    }
  }
}
