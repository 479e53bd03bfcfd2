/**
 * DeepSeek-V4 lightning-indexer scores (spec §6.5) in WGSL: Backend.indexerScores.
 *
 * One workgroup per (token t, tile of WG entries): g = t·tiles + tile, and invocation l scores
 * entry e = tile·WG + l. Head by head, the query row goes through workgroup memory in slices of
 * WG values (any d works), each invocation adding its slice of q · keys[e] in order; then
 * relu · w[t, h] is added to its score. Entries at or past visible[t] get −Infinity (the loops
 * run in every invocation: the barriers need uniform control flow).
 */
import type { KernelSource } from './kernel.js';

const WG = 64;
/** Entries per workgroup. */
export const INDEXER_TILE = WG;

export function indexerScoresKernel(): KernelSource {
  return {
    name: 'indexer_scores',
    buffers: [{ name: 'q' }, { name: 'w' }, { name: 'keys' }, { name: 'visible' }, { name: 'out', write: true }],
    params: ['heads: u32', 'd: u32', 'cols: u32', 'tiles: u32'],
    workgroupSize: WG,
    code: /* wgsl */ `
const WG: u32 = ${WG}u;
const NEG_INF: u32 = 0xff800000u; // −Infinity's bits (WGSL has no infinite constants)
var<workgroup> qs: array<f32, ${WG}>;

fn run(g: u32, l: u32) {
  let t = g / p.tiles;
  let e = (g % p.tiles) * WG + l;
  let vis = u32(max(bitcast<i32>(visible_word(t)), 0));
  let live = e < vis;
  let D = p.d;
  var s = 0.0;
  for (var h = 0u; h < p.heads; h++) {
    let qo = (t * p.heads + h) * D;
    var x = 0.0;
    for (var i0 = 0u; i0 < D; i0 += WG) {
      if (i0 + l < D) { qs[l] = q_f32(qo + i0 + l); }
      workgroupBarrier();
      if (live) {
        let m = min(WG, D - i0);
        for (var i = 0u; i < m; i++) { x += qs[i] * keys_f32(e * D + i0 + i); }
      }
      workgroupBarrier();
    }
    if (x > 0.0) { s += w_f32(t * p.heads + h) * x; }
  }
  if (live) { out_setf(t * p.cols + e, s); }
  else if (e < p.cols) { out_setw(t * p.cols + e, NEG_INF); }
}
`,
  };
}
