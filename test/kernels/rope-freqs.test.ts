/** RoPE frequency tables against the fp32 values dumped from the DeepSeek reference (spec testdata). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ropeFreqs, yarnFreqs, yarnRange } from '../../src/kernels/rope-freqs.js';

interface Table {
  rope_dim: number; base: number; original_seq_len: number; factor: number; beta_fast: number; beta_slow: number;
  ramp_low: number | null; ramp_high: number | null; freqs_f32: number[];
}
const tables = JSON.parse(readFileSync(new URL('../../../../shared/spec/testdata/yarn_freqs.json', import.meta.url), 'utf8')) as Record<string, Table>;

/**
 * Largest distance in units in the last place between two positive f32 arrays. The reference's
 * fp32 `base ** e` is torch's vectorised pow, good to about an ulp but not correctly rounded;
 * 1/p and YaRN's mixing carry that into up to 2 ulp of the result. Math.pow is correctly rounded.
 */
function maxUlps(a: Float32Array, b: readonly number[]): number {
  const ua = new Uint32Array(a.buffer), ub = new Uint32Array(Float32Array.from(b).buffer);
  assert.equal(ua.length, ub.length);
  return Math.max(...Array.from(ua, (v, i) => Math.abs(v - ub[i])));
}

const params = (t: Table) => ({
  base: t.base, dim: t.rope_dim, originalSeqLen: t.original_seq_len, factor: t.factor, betaFast: t.beta_fast, betaSlow: t.beta_slow,
});

describe('rope frequency tables', () => {
  for (const name of ['v4_compressed_layers', 'v3_mla']) {
    it(`YaRN ${name}: ramp channels match and all 32 fp32 frequencies are within 2 ulp of the reference`, () => {
      const t = tables[name];
      assert.deepEqual(yarnRange(params(t)), { low: t.ramp_low, high: t.ramp_high });
      assert.ok(maxUlps(yarnFreqs(params(t)), t.freqs_f32) <= 2);
    });
  }

  it('plain v4_window_only_layers table (base 10000, no YaRN) is within 2 ulp of the reference', () => {
    const t = tables.v4_window_only_layers;
    assert.ok(maxUlps(ropeFreqs(t.base, t.rope_dim), t.freqs_f32) <= 2);
  });

  it('YaRN keeps channels up to low and divides channels from high on by the factor', () => {
    const p = params(tables.v4_compressed_layers);
    const plain = ropeFreqs(p.base, p.dim), yarn = yarnFreqs(p);
    assert.equal(yarn[15], plain[15]);
    assert.equal(yarn[25], Math.fround(plain[25] / 16));
    assert.ok(yarn[20] < plain[20] && yarn[20] > plain[20] / 16);
  });

  it('rejects an odd dimension', () => {
    assert.throws(() => ropeFreqs(10000, 63), /even dim/);
  });
});
