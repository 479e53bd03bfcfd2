/**
 * Row and element-wise ops in WGSL, with the semantics of the CPU twins (cpu/twin/ops.ts): f32
 * rows, reductions over a workgroup per row.
 */
import type { DType } from '../../tensor/dtype.js';
import type { KernelSource } from './kernel.js';
import { decodeWgsl } from './wgsl-matrix.js';

/** Invocations of the one-workgroup-per-row reductions. */
const ROW = 256;

/** `var<workgroup> red: array<f32, ROW>` reduced to red[0] by sum (`op` = '+') or max. */
function reduce(op: 'sum' | 'max'): string {
  const combine = op === 'sum' ? 'red[l] + red[l + s]' : 'max(red[l], red[l + s])';
  return `
  workgroupBarrier();
  for (var s = ${ROW / 2}u; s > 0u; s >>= 1u) {
    if (l < s) { red[l] = ${combine}; }
    workgroupBarrier();
  }`;
}

export const RMSNORM: KernelSource = {
  name: 'rmsnorm', workgroupSize: ROW,
  buffers: [{ name: 'x' }, { name: 'w' }, { name: 'y', write: true }],
  params: ['d: u32', 'eps: f32', 'weighted: u32'],
  code: `
var<workgroup> red: array<f32, ${ROW}>;
fn run(g: u32, l: u32) {
  let base = g * p.d;
  var ss = 0.0;
  for (var j = l; j < p.d; j += ${ROW}u) { let v = x_f32(base + j); ss += v * v; }
  red[l] = ss;${reduce('sum')}
  let inv = 1.0 / sqrt(red[0] / f32(p.d) + p.eps);
  for (var j = l; j < p.d; j += ${ROW}u) {
    var v = x_f32(base + j) * inv;
    if (p.weighted != 0u) { v *= w_f32(j); }
    y_setf(base + j, v);
  }
}`,
};

/**
 * Rotates pairs of x in place by the host's cos/sin table cs [n, ropeDim/2, 2] (computed in f64 on
 * the host, as the CPU twin does: GPU sin/cos lose accuracy at the large angles of long contexts).
 * One invocation per (token, head, pair).
 */
export const ROPE: KernelSource = {
  name: 'rope', workgroupSize: 64,
  buffers: [{ name: 'x', write: true }, { name: 'cs' }],
  params: ['heads: u32', 'headDim: u32', 'ropeDim: u32', 'neox: u32', 'pairs: u32', 'count: u32'],
  code: `
fn run(g: u32, l: u32) {
  let id = g * 64u + l;
  if (id >= p.count) { return; }
  let half = p.ropeDim / 2u;
  let t = id / p.pairs;
  let h = (id % p.pairs) / half;
  let i = id % half;
  let off = p.headDim - p.ropeDim;
  var ia = off + 2u * i;
  var ib = ia + 1u;
  if (p.neox != 0u) { ia = off + i; ib = ia + half; }
  let base = t * p.heads * p.headDim + h * p.headDim;
  let c = cs_f32(2u * (t * half + i));
  let s = cs_f32(2u * (t * half + i) + 1u);
  let a = x_f32(base + ia);
  let b = x_f32(base + ib);
  x_setf(base + ia, a * c - b * s);
  x_setf(base + ib, a * s + b * c);
}`,
};

export const SOFTMAX: KernelSource = {
  name: 'softmax', workgroupSize: ROW,
  buffers: [{ name: 'x' }, { name: 'y', write: true }],
  params: ['d: u32', 'scale: f32'],
  code: `
var<workgroup> red: array<f32, ${ROW}>;
fn run(g: u32, l: u32) {
  let base = g * p.d;
  var m = bitcast<f32>(0xFF7FFFFFu); // −max f32 (no infinite literals in WGSL)
  for (var j = l; j < p.d; j += ${ROW}u) { m = max(m, p.scale * x_f32(base + j)); }
  red[l] = m;${reduce('max')}
  m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = l; j < p.d; j += ${ROW}u) { sum += exp(p.scale * x_f32(base + j) - m); }
  red[l] = sum;${reduce('sum')}
  let inv = 1.0 / red[0];
  for (var j = l; j < p.d; j += ${ROW}u) { y_setf(base + j, exp(p.scale * x_f32(base + j) - m) * inv); }
}`,
};

/** Kernels with one invocation per element i < p.count. */
function elementwise(name: string, buffers: KernelSource['buffers'], params: string[], body: string, helpers = ''): KernelSource {
  return {
    name, buffers, params: [...params, 'count: u32'], workgroupSize: 64,
    code: `${helpers}
fn silu(v: f32) -> f32 { return v / (1.0 + exp(-v)); }
fn run(g: u32, l: u32) {
  let i = g * 64u + l;
  if (i >= p.count) { return; }
  ${body}
}`,
  };
}

export const SILU = elementwise('silu', [{ name: 'x' }, { name: 'y', write: true }], [], 'y_setf(i, silu(x_f32(i)));');
export const SWIGLU = elementwise('swiglu', [{ name: 'g' }, { name: 'u' }, { name: 'y', write: true }], ['limit: f32'], `
  var a = g_f32(i);
  var b = u_f32(i);
  if (p.limit > 0.0) { a = min(a, p.limit); b = clamp(b, -p.limit, p.limit); }
  y_setf(i, silu(a) * b);`);
const binary = (name: string, op: string) => elementwise(name, [{ name: 'a' }, { name: 'b' }, { name: 'y', write: true }], ['d: u32', 'bstep: u32'],
  `let bi = (i / p.d) * p.bstep + i % p.d;\n  y_setf(i, a_f32(i) ${op} b_f32(bi));`);
export const ADD = binary('add', '+');
export const MUL = binary('mul', '*');
export const COPY_F32 = elementwise('copy_f32', [{ name: 'x' }, { name: 'y', write: true }], [], 'y_setf(i, x_f32(i));');
/** f32 → f16 bits, round to nearest even (pack2x16float leaves the rounding to the implementation). */
const F16_BITS = `
fn f16bits(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) { return sign | 0x7E00u; }          // NaN
  if (a >= 0x477FF000u) { return sign | 0x7C00u; }         // rounds past 65504: infinity
  if (a < 0x38800000u) { return sign | u32(round(bitcast<f32>(a) * 16777216.0)); } // subnormal (exact scaling, ties to even)
  let r = a - 0x38000000u;                                 // rebias 127 → 15
  return sign | ((r + 0xFFFu + ((r >> 13u) & 1u)) >> 13u);
}`;

/**
 * f32 → f16 in whole words: invocation i writes halves 2i − lead and 2i + 1 − lead of y (lead = 1
 * when y starts in the high half of a word), so no two invocations share a word.
 */
export const COPY_F16 = elementwise('copy_f16', [{ name: 'x' }, { name: 'y', write: true }], ['total: u32', 'lead: u32'], `
  let e0 = i32(2u * i) - i32(p.lead);
  for (var e = e0; e < e0 + 2; e++) {
    if (e >= 0 && u32(e) < p.total) { y_set16(u32(e), f16bits(x_f32(u32(e)))); }
  }`, F16_BITS);

/** First index of each row's largest value, NaN skipped (0 for an all-NaN row). */
export const ARGMAX: KernelSource = {
  name: 'argmax', workgroupSize: ROW,
  buffers: [{ name: 'x' }, { name: 'out', write: true }],
  params: ['d: u32'],
  code: `
var<workgroup> bv: array<f32, ${ROW}>;
var<workgroup> bi: array<u32, ${ROW}>;
const NONE = 0xFFFFFFFFu;
fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
  if (j == NONE) { return i != NONE; }
  if (i == NONE) { return false; }
  return v > w || (v == w && i < j);
}
fn run(g: u32, l: u32) {
  let base = g * p.d;
  var v = 0.0;
  var idx = NONE;
  for (var j = l; j < p.d; j += ${ROW}u) {
    let x = x_f32(base + j);
    if (x == x && (idx == NONE || x > v)) { v = x; idx = j; }
  }
  bv[l] = v;
  bi[l] = idx;
  workgroupBarrier();
  for (var s = ${ROW / 2}u; s > 0u; s >>= 1u) {
    if (l < s && better(bv[l + s], bi[l + s], bv[l], bi[l])) { bv[l] = bv[l + s]; bi[l] = bi[l + s]; }
    workgroupBarrier();
  }
  if (l == 0u) { out_setw(g, select(bi[0], 0u, bi[0] == NONE)); }
}`,
};

const embeddings = new Map<DType, KernelSource>();

/** y[t] = row ids[t] of a table of any unscaled dtype; one workgroup per token. */
export function embeddingKernel(dtype: DType): KernelSource {
  let k = embeddings.get(dtype);
  if (!k) {
    k = {
      name: `embedding_${dtype}`, workgroupSize: 64,
      buffers: [{ name: 'table' }, { name: 'ids' }, { name: 'y', write: true }],
      params: ['d: u32', 'rowBytes: u32'],
      code: `${decodeWgsl(dtype, 'table')}
fn run(g: u32, l: u32) {
  let rb = ids_word(g) * p.rowBytes;
  for (var j = l; j < p.d; j += 64u) { y_setf(g * p.d + j, table_elem(rb, j)); }
}`,
    };
    embeddings.set(dtype, k);
  }
  return k;
}
