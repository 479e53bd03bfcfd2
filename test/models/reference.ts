/**
 * A float64 Llama-family forward pass in plain loops, written from the equations of the Hugging
 * Face modelling code (LlamaForCausalLM, MistralForCausalLM, Qwen2/Qwen3ForCausalLM) over the
 * Hugging Face layout: RMSNorm, q/k/v (+bias), per-head q/k RMSNorm (qwen3), NeoX RoPE with
 * the default or Llama 3 inverse frequencies, causal GQA attention with an optional sliding
 * window, SwiGLU, final norm, lm_head (or the embedding when tied).
 */
import type { SynthSpec, SynthWeights } from './synth.js';

/** y = W x for W [rows, cols]. */
function matvec(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => x[i] * inv * w[i]);
}

/** transformers' inverse frequencies: default, or _compute_llama3_parameters. */
export function inverseFrequencies(s: SynthSpec): Float64Array {
  const d = s.headDim, llama3 = s.llama3;
  return Float64Array.from({ length: d / 2 }, (_, i) => {
    const f = 1 / s.ropeTheta ** ((2 * i) / d);
    if (!llama3) return f;
    const { factor, lowFreqFactor: lf, highFreqFactor: hf, originalContext: old } = llama3;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / hf) return f;
    if (wavelen > old / lf) return f / factor;
    const smooth = (old / wavelen - lf) / (hf - lf);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** Rotates each head of x in place: channel i pairs with i + headDim/2. */
function ropeNeox(x: Float64Array, heads: number, d: number, pos: number, invFreq: Float64Array): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      const a = h * d + i, b = a + d / 2;
      const c = Math.cos(pos * invFreq[i]), s = Math.sin(pos * invFreq[i]);
      const x0 = x[a], x1 = x[b];
      x[a] = x0 * c - x1 * s;
      x[b] = x1 * c + x0 * s;
    }
  }
}

/** Logits [vocab] after each of `tokens`, run from position 0. */
export function referenceLogits(s: SynthSpec, w: SynthWeights, tokens: readonly number[], invFreq = inverseFrequencies(s)): Float64Array[] {
  const { dim, heads, kvHeads, headDim: d, ffn, eps } = s;
  const qDim = heads * d, kvDim = kvHeads * d, group = heads / kvHeads;
  const K: Float64Array[][] = w.layers.map(() => []), V: Float64Array[][] = w.layers.map(() => []);
  const out: Float64Array[] = [];
  tokens.forEach((tok, pos) => {
    let x = Float64Array.from(w.embed.subarray(tok * dim, (tok + 1) * dim));
    w.layers.forEach((L, l) => {
      const h = rmsnorm(x, L.attnNorm, eps);
      const q = matvec(L.q, h, qDim, dim), k = matvec(L.k, h, kvDim, dim), v = matvec(L.v, h, kvDim, dim);
      if (L.qBias) for (let i = 0; i < qDim; i++) q[i] += L.qBias[i];
      if (L.kBias) for (let i = 0; i < kvDim; i++) k[i] += L.kBias[i];
      if (L.vBias) for (let i = 0; i < kvDim; i++) v[i] += L.vBias[i];
      if (L.qNorm) for (let hh = 0; hh < heads; hh++) q.set(rmsnorm(q.subarray(hh * d, (hh + 1) * d), L.qNorm, eps), hh * d);
      if (L.kNorm) for (let g = 0; g < kvHeads; g++) k.set(rmsnorm(k.subarray(g * d, (g + 1) * d), L.kNorm, eps), g * d);
      ropeNeox(q, heads, d, pos, invFreq);
      ropeNeox(k, kvHeads, d, pos, invFreq);
      K[l].push(k); V[l].push(v);
      const first = s.window ? Math.max(0, pos - s.window + 1) : 0;
      const att = new Float64Array(qDim);
      for (let hh = 0; hh < heads; hh++) {
        const g = Math.floor(hh / group);
        const scores: number[] = [];
        for (let j = first; j <= pos; j++) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += q[hh * d + i] * K[l][j][g * d + i];
          scores.push(dot / Math.sqrt(d));
        }
        const m = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = first; j <= pos; j++) {
          for (let i = 0; i < d; i++) att[hh * d + i] += (e[j - first] / sum) * V[l][j][g * d + i];
        }
      }
      const o = matvec(L.o, att, dim, qDim);
      x = x.map((xi, i) => xi + o[i]);
      const h2 = rmsnorm(x, L.ffnNorm, eps);
      const gate = matvec(L.gate, h2, ffn, dim), up = matvec(L.up, h2, ffn, dim);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matvec(L.down, act, dim, ffn);
      x = x.map((xi, i) => xi + down[i]);
    });
    out.push(matvec(w.lmHead ?? w.embed, rmsnorm(x, w.norm, eps), w.vocab, dim));
  });
  return out;
}
