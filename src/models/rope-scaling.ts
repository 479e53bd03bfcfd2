/**
 * RoPE frequency tables of the Llama family: f_i = 1 / base^(2i/dim) (kernels/rope-freqs.ts), then
 * - linear scaling: f_i / factor (llama.cpp's freq_scale = 1/factor);
 * - Llama 3 ("llama3" rope_scaling): f_i / r_i with the per-channel factors r_i below. llama.cpp's
 *   converter stores r_i as the GGUF tensor `rope_freqs.weight` and divides by it (ggml's
 *   freq_factors); Hugging Face computes the same from config.json. One function makes r_i, so
 *   both forms of a model rotate by the same angles.
 */
import { ropeFreqs } from '../kernels/rope-freqs.js';

export interface Llama3Scaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  /** Context of the model before the long-context stage (original_max_position_embeddings). */
  readonly originalContext: number;
}

/**
 * r_i: 1 for wavelengths under originalContext / highFreqFactor, `factor` above
 * originalContext / lowFreqFactor, and 1 / ((1 − s)/factor + s) between, with
 * s = (originalContext / wavelength − lowFreqFactor) / (highFreqFactor − lowFreqFactor).
 */
export function llama3Factors(base: number, dim: number, s: Llama3Scaling): Float32Array {
  const fields = { factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalContext };
  for (const [k, v] of Object.entries(fields)) if (!(typeof v === 'number' && v > 0)) throw new Error(`llama3 rope scaling: ${k} ${v} must be a positive number`);
  if (s.highFreqFactor <= s.lowFreqFactor) throw new Error(`llama3 rope scaling: high_freq_factor ${s.highFreqFactor} must exceed low_freq_factor ${s.lowFreqFactor}`);
  const freqs = ropeFreqs(base, dim);
  const highWavelen = s.originalContext / s.highFreqFactor, lowWavelen = s.originalContext / s.lowFreqFactor;
  return freqs.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return 1;
    if (wavelen > lowWavelen) return s.factor;
    const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return 1 / ((1 - smooth) / s.factor + smooth);
  });
}

/** f_i / r_i, rounded to f32 (ggml divides θ by the factor). */
export function divideFreqs(freqs: Float32Array, factors: ArrayLike<number>): Float32Array {
  if (factors.length !== freqs.length) throw new Error(`rope frequency factors: ${factors.length} values for ${freqs.length} frequencies`);
  return freqs.map((f, i) => f / factors[i]);
}

export type RopeScaling =
  | { readonly type: 'none' }
  | { readonly type: 'linear'; readonly factor: number }
  | ({ readonly type: 'llama3' } & Llama3Scaling);

/** The frequency table for `dim` rotated channels, and a one-line summary of the scaling. */
export function ropeTable(base: number, dim: number, scaling: RopeScaling): { freqs: Float32Array; summary: string } {
  const freqs = ropeFreqs(base, dim);
  switch (scaling.type) {
    case 'none':
      return { freqs, summary: 'none' };
    case 'linear':
      if (!(scaling.factor > 0)) throw new Error(`linear rope scaling: factor ${scaling.factor} must be positive`);
      return { freqs: freqs.map((f) => f / scaling.factor), summary: `linear ×${scaling.factor}` };
    case 'llama3':
      return {
        freqs: divideFreqs(freqs, llama3Factors(base, dim, scaling)),
        summary: `llama3 ×${scaling.factor} (low ${scaling.lowFreqFactor}, high ${scaling.highFreqFactor}, original context ${scaling.originalContext})`,
      };
  }
}
