/**
 * RoPE frequency tables, computed in fp32 exactly as the DeepSeek reference does
 * (`precompute_freqs_cis`; DeepSeek-V4 spec §3.4): f_i = 1 / base^(2i/dim), i < dim/2, then for
 * YaRN a linear ramp between the "correction" channels of beta_fast and beta_slow that moves
 * each frequency from f_i (below `low`) to f_i / factor (from `high` on).
 */

const f32 = Math.fround;

/** f_i = 1 / base^(2i/dim) for i < dim/2, each step rounded to f32. */
export function ropeFreqs(base: number, dim: number): Float32Array {
  if (!(base > 1) || !Number.isInteger(dim) || dim < 2 || dim % 2) {
    throw new Error(`rope frequencies need base > 1 and an even dim, got base ${base}, dim ${dim}`);
  }
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f32(1 / f32(Math.pow(base, f32((2 * i) / dim))));
  return out;
}

export interface YarnParams {
  readonly base: number;
  /** Rotated channels (V4: 64). */
  readonly dim: number;
  /** Context length the model was pre-trained at (V4: 65536). */
  readonly originalSeqLen: number;
  readonly factor: number;
  readonly betaFast: number;
  readonly betaSlow: number;
}

/** The channel range of the YaRN ramp: [low, high] (V4 compressed layers: 15, 25). */
export function yarnRange(p: YarnParams): { low: number; high: number } {
  const corr = (rotations: number) =>
    (p.dim * Math.log(p.originalSeqLen / (rotations * 2 * Math.PI))) / (2 * Math.log(p.base));
  return { low: Math.max(Math.floor(corr(p.betaFast)), 0), high: Math.min(Math.ceil(corr(p.betaSlow)), p.dim - 1) };
}

/** YaRN-corrected frequencies (spec §3.4). The ramp runs over i < dim/2 while `high` clamps to dim − 1, as in the reference. */
export function yarnFreqs(p: YarnParams): Float32Array {
  const freqs = ropeFreqs(p.base, p.dim);
  const { low } = yarnRange(p);
  let { high } = yarnRange(p);
  if (low === high) high += 0.001;
  for (let i = 0; i < freqs.length; i++) {
    const ramp = Math.min(Math.max(f32((i - low) / f32(high - low)), 0), 1);
    const smooth = f32(1 - ramp);
    // freqs / factor · (1 − smooth) + freqs · smooth, each product rounded as torch does in fp32.
    freqs[i] = f32(f32(f32(freqs[i] / p.factor) * f32(1 - smooth)) + f32(freqs[i] * smooth));
  }
  return freqs;
}
