/**
 * Causal attention over a KV cache and DeepSeek-V4 sparse attention with sink, in WGSL.
 *
 * One workgroup per (token t, query head h): g = t·heads + h, so q and out rows are g·headDim.
 * The keys are taken in tiles of WG: each invocation scores one key (q · k over the whole head,
 * q held in workgroup memory), then the tile's weights go to workgroup memory and each invocation
 * accumulates the dims l, l + WG, … of the output over the tile, rescaling by the running maximum
 * (online softmax, `softmaxTile`). Two barriers per tile, no tree reductions: every invocation
 * scans the tile's WG scores itself for the maximum and the sum.
 */
import type { KernelSource } from './kernel.js';

const WG = 64;
/** Output dims each invocation keeps in registers. */
const CHUNKS = 16;
/** Largest head width the kernels handle (the register accumulator and the q row in workgroup memory). */
export const ATTENTION_MAX_HEAD_DIM = WG * CHUNKS;

/** Shared declarations: q row, a tile's scores and weights, "no score". */
const COMMON = /* wgsl */ `
const WG: u32 = ${WG}u;
const CHUNKS: u32 = ${CHUNKS}u;
const NONE: f32 = -3.0e38;
var<workgroup> qs: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> zs: array<f32, ${WG}>;
var<workgroup> ws: array<f32, ${WG}>;
var<workgroup> rs: array<i32, ${WG}>;

// The tile's running maximum: m and the first nt scores of zs.
fn tileMax(m: f32, nt: u32) -> f32 {
  var mt = m;
  for (var j = 0u; j < nt; j++) { mt = max(mt, zs[j]); }
  return mt;
}

fn tileSum(nt: u32) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < nt; j++) { s += ws[j]; }
  return s;
}

// One online-softmax step over a tile of nt keys, this invocation's score z of key row \`row\`
// (−1: none): publishes the weights in ws and the rows in rs, moves the running maximum *m and
// sum *s on, and returns the factor the output accumulators are rescaled by. rs is written after
// the first barrier: the previous tile's readers of rs are past it.
fn softmaxTile(z: f32, row: i32, nt: u32, l: u32, m: ptr<function, f32>, s: ptr<function, f32>) -> f32 {
  zs[l] = z;
  workgroupBarrier();
  let mt = tileMax(*m, nt);
  var w = 0.0;
  if (row >= 0) { w = exp(z - mt); }
  ws[l] = w;
  rs[l] = row;
  workgroupBarrier();
  let corr = exp(*m - mt);
  *m = mt;
  *s = *s * corr + tileSum(nt);
  return corr;
}

fn writeOut(g: u32, D: u32, l: u32, acc: ptr<function, array<f32, CHUNKS>>, s: f32) {
  for (var c = 0u; c < CHUNKS; c++) {
    let i = c * WG + l;
    if (i >= D) { break; }
    out_setf(g * D + i, (*acc)[c] / s);
  }
}
`;

export function attentionKernel(cache: 'f32' | 'f16'): KernelSource {
  return {
    name: `attention_${cache}`,
    buffers: [{ name: 'q' }, { name: 'k' }, { name: 'v' }, { name: 'out', write: true }],
    params: ['heads: u32', 'kvHeads: u32', 'headDim: u32', 'start: u32', 'window: u32', 'scale: f32'],
    workgroupSize: WG,
    code: COMMON + /* wgsl */ `
fn run(g: u32, l: u32) {
  let D = p.headDim;
  let t = g / p.heads;
  let h = g % p.heads;
  let kvW = p.kvHeads * D;
  let ko = (h / (p.heads / p.kvHeads)) * D; // this head's slice of a cache row
  let pos = p.start + t;
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window) { lo = pos + 1u - p.window; }
  for (var i = l; i < D; i += WG) { qs[i] = q_f32(g * D + i); }
  workgroupBarrier();
  var m = NONE;
  var s = 0.0;
  var acc: array<f32, CHUNKS>;
  for (var j0 = lo; j0 <= pos; j0 += WG) {
    let nt = min(WG, pos + 1u - j0);
    var row = -1;
    var z = NONE;
    if (l < nt) {
      row = i32(j0 + l);
      let r = (j0 + l) * kvW + ko;
      var dot = 0.0;
      for (var i = 0u; i < D; i++) { dot += qs[i] * k_${cache}(r + i); }
      z = p.scale * dot;
    }
    let corr = softmaxTile(z, row, nt, l, &m, &s); // the first tile always holds position lo
    for (var c = 0u; c < CHUNKS; c++) {
      let i = c * WG + l;
      if (i >= D) { break; }
      var a = acc[c] * corr;
      for (var j = 0u; j < nt; j++) { a += ws[j] * v_${cache}((j0 + j) * kvW + ko + i); }
      acc[c] = a;
    }
  }
  writeOut(g, D, l, &acc, s);
}
`,
  };
}

/**
 * The sink is one more score with a zero value: the running maximum starts at sink[h] and the
 * running sum at exp(0) = 1, so a token without candidates ends with 0 / 1 = 0.
 */
export function sparseAttentionKernel(): KernelSource {
  return {
    name: 'sparse_attention',
    buffers: [{ name: 'q' }, { name: 'kv' }, { name: 'rows' }, { name: 'sink' }, { name: 'out', write: true }],
    params: ['count: u32', 'heads: u32', 'd: u32', 'scale: f32'],
    workgroupSize: WG,
    code: COMMON + /* wgsl */ `
fn run(g: u32, l: u32) {
  let D = p.d;
  let t = g / p.heads;
  let h = g % p.heads;
  for (var i = l; i < D; i += WG) { qs[i] = q_f32(g * D + i); }
  workgroupBarrier();
  var m = sink_f32(h);
  var s = 1.0;
  var acc: array<f32, CHUNKS>;
  for (var c0 = 0u; c0 < p.count; c0 += WG) {
    let nt = min(WG, p.count - c0);
    var row = -1;
    if (l < nt) { row = bitcast<i32>(rows_word(t * p.count + c0 + l)); }
    var z = NONE;
    if (row >= 0) {
      let r = u32(row) * D;
      var dot = 0.0;
      for (var i = 0u; i < D; i++) { dot += qs[i] * kv_f32(r + i); }
      z = p.scale * dot;
    }
    let corr = softmaxTile(z, row, nt, l, &m, &s);
    for (var c = 0u; c < CHUNKS; c++) {
      let i = c * WG + l;
      if (i >= D) { break; }
      var a = acc[c] * corr;
      for (var j = 0u; j < nt; j++) {
        if (rs[j] >= 0) { a += ws[j] * kv_f32(u32(rs[j]) * D + i); }
      }
      acc[c] = a;
    }
  }
  writeOut(g, D, l, &acc, s);
}
`,
  };
}
