/**
 * The attention ops: sparse attention with sink against the inference host kernel, the compressor
 * pooling against the spec's per-channel softmax (§6.4, both modes), the grouped output and the
 * indexer scores against their formulas, the indexer's target, and every backward against finite
 * differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sparseAttentionWithSink } from '../../src/kernels/deepseek-ops.js';
import { Tape } from '../../src/train/autograd.js';
import { addPositionBias, compressPool, groupedLinear, indexerScores, indexerTarget, sparseAttention } from '../../src/train/ops-attention.js';
import { rng } from '../support/rng.js';
import { gradCheck, randomTensor } from './gradcheck.js';

describe('attention ops', () => {
  const next = rng(23);

  it('sparseAttention equals sparseAttentionWithSink, padding and empty rows included', () => {
    const H = 2, Dh = 4, n = 3, count = 3;
    const q = randomTensor(next, [n, H * Dh]), table = randomTensor(next, [5, Dh]), sink = randomTensor(next, [H]);
    const rows = Int32Array.from([0, 3, -1, 1, 1, 4, -1, -1, -1]); // row 1 sees table row 1 twice; row 2 sees nothing
    const o = sparseAttention(new Tape('f64', false), q, table, rows, count, sink, 0.7);
    for (let t = 0; t < n; t++) {
      const ref = new Float32Array(H * Dh);
      sparseAttentionWithSink(Float32Array.from(q.data), t * H * Dh, H, Dh, Float32Array.from(table.data), rows.subarray(t * count, (t + 1) * count), count,
        Float32Array.from(sink.data), 0.7, ref, 0);
      for (let i = 0; i < H * Dh; i++) assert.ok(Math.abs(o.data[t * H * Dh + i] - ref[i]) < 1e-6, `query ${t} [${i}]`);
    }
    gradCheck('sparseAttention', [q, table, sink], (tp) => sparseAttention(tp, q, table, rows, count, sink, 0.7));
    assert.throws(() => sparseAttention(new Tape(), q, table, Int32Array.from([0, 5, 1, 0, 0, 0, 0, 0, 0]), 3, sink, 1), /not a row/);
  });

  it('compressPool is the per-channel softmax pooling of §6.4 (overlap: lane A of the previous block + lane B)', () => {
    for (const [ratio, overlap] of [[2, true], [3, false]] as const) {
      const d = 3, cw = (overlap ? 2 : 1) * d, n = 7;
      const a = randomTensor(next, [n, cw]), g = randomTensor(next, [n, cw], -2, 2);
      const y = compressPool(new Tape('f64', false), a, g, ratio, d, overlap);
      const E = Math.floor(n / ratio);
      assert.deepEqual(y.shape, [E, d]);
      for (let c = 0; c < E; c++) {
        for (let ch = 0; ch < d; ch++) {
          const cand: [number, number][] = []; // (logit, value)
          for (let i = 0; i < ratio; i++) {
            const own = (c * ratio + i) * cw + (overlap ? d : 0) + ch;
            cand.push([g.data[own], a.data[own]]);
            if (overlap && c > 0) {
              const prev = ((c - 1) * ratio + i) * cw + ch;
              cand.push([g.data[prev], a.data[prev]]);
            }
          }
          const z = cand.reduce((s, [l]) => s + Math.exp(l), 0);
          const want = cand.reduce((s, [l, v]) => s + (Math.exp(l) / z) * v, 0);
          assert.ok(Math.abs(y.data[c * d + ch] - want) < 1e-12, `ratio ${ratio} entry ${c} channel ${ch}`);
        }
      }
      gradCheck(`compressPool ratio ${ratio} overlap ${overlap}`, [a, g], (tp) => compressPool(tp, a, g, ratio, d, overlap));
    }
  });

  it('addPositionBias adds ape[t mod r]', () => {
    const g = randomTensor(next, [5, 2]), ape = randomTensor(next, [3, 2]);
    const y = addPositionBias(new Tape('f64', false), g, ape);
    assert.ok(Math.abs(y.data[9] - (g.data[9] + ape.data[3])) < 1e-15); // t = 4 → ape row 1
    gradCheck('addPositionBias', [g, ape], (tp) => addPositionBias(tp, g, ape));
  });

  it('groupedLinear maps each group of heads through its own rows of wo_a', () => {
    const G = 2, gw = 3, Ro = 2, n = 2;
    const o = randomTensor(next, [n, G * gw]), w = randomTensor(next, [G * Ro, gw]);
    const z = groupedLinear(new Tape('f64', false), o, w, G);
    // z[t=1, g=1, r=0] = w[2] · o[1, 3..6]
    const want = w.data[6] * o.data[9] + w.data[7] * o.data[10] + w.data[8] * o.data[11];
    assert.ok(Math.abs(z.data[1 * G * Ro + 2] - want) < 1e-12);
    gradCheck('groupedLinear', [o, w], (tp) => groupedLinear(tp, o, w, G));
  });

  it('indexerScores is Σ_h w_h·relu(q_h·k_c) over visible entries only', () => {
    const Hi = 3, Di = 4, n = 3, E = 3;
    const qi = randomTensor(next, [n, Hi * Di]), keys = randomTensor(next, [E, Di]), w = randomTensor(next, [n, Hi]);
    const visible = [0, 2, 3];
    const I = indexerScores(new Tape('f64', false), qi, keys, w, visible);
    let want = 0;
    for (let h = 0; h < Hi; h++) {
      let d = 0;
      for (let i = 0; i < Di; i++) d += qi.data[(2 * Hi + h) * Di + i] * keys.data[Di + i];
      want += w.data[2 * Hi + h] * Math.max(d, 0);
    }
    assert.ok(Math.abs(I.data[2 * E + 1] - want) < 1e-12);
    assert.deepEqual([...I.data.subarray(0, 3)], [0, 0, 0]);
    gradCheck('indexerScores', [qi, keys, w], (tp) => indexerScores(tp, qi, keys, w, visible));
  });

  it('indexerTarget is the heads-summed attention mass on the visible compressed entries, normalised', () => {
    // One head, window 1: query t = 1 sees table row 1 (itself), compressed entries 0 and 1 (rows 2, 3), and the sink.
    const q = Float64Array.from([1, 0, 0, 2]), table = Float64Array.from([0, 0, 1, 1, 2, 0, 0, 1]);
    const target = indexerTarget({ q, table, sink: Float64Array.from([0.5]), n: 2, heads: 1, headDim: 2, window: 1, entries: 2, visible: [0, 2], scale: 1 });
    const e0 = Math.exp(0), e1 = Math.exp(2); // q_1 = (0, 2) against entries (2, 0) and (0, 1); one head, so window and sink cancel
    assert.deepEqual([...target.subarray(0, 2)], [0, 0]);
    assert.ok(Math.abs(target[2] - e0 / (e0 + e1)) < 1e-12 && Math.abs(target[3] - e1 / (e0 + e1)) < 1e-12);
  });
});
