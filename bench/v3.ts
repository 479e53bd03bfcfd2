/**
 * `npm run bench -- v3`: DeepSeek-V3 decode against this machine's memory roofline (the V3 issue's
 * acceptance: ≥ 70 % of the roofline with 2 threads), run by decode-roofline.ts.
 *
 * The model is the synthetic 'bench' checkpoint of bench/synth-v3.ts (V3's MLA per-head dims, FP8
 * with f32 tile scales, 32 experts top-8, random weights, ~490 MB). Attention runs in the absorbed
 * form, whose per-head kv_b halves (B_kᵀ, B_v) the loader keeps as f32 matrices: they are part of
 * the bytes per token.
 */
import { CpuBackend } from '../src/kernels/cpu/cpu-backend.js';
import { DeepseekV3Model } from '../src/models/deepseek-v3.js';
import type { LanguageModel } from '../src/models/model.js';
import { type DecodeTarget, runDecodeBench } from './decode-roofline.js';
import { v3SynthConfig, writeSyntheticV3 } from './synth-v3.js';

function v3Target(model: LanguageModel, dir: string): DecodeTarget {
  if (!(model instanceof DeepseekV3Model) || !(model.backend instanceof CpuBackend)) throw new Error(`${dir} did not load as a DeepSeek-V3 model on the CPU backend`);
  const c = model.config, moe = model.weights.layers.flatMap((L) => (L.moe ? [L.moe] : []));
  return {
    backend: model.backend,
    vocab: c.vocab,
    embedRowBytes: 2 * c.dim, // BF16
    summary: `${c.layers} layers (${c.denseLayers} dense); dim ${c.dim}, ${c.heads} heads, kv_lora_rank ${c.kvLoraRank}; ` +
      `${c.experts} experts top-${c.topK} in ${c.groups} groups`,
    newSequence: (contextLength) => model.newSequence({ contextLength }),
    loadAllExperts: () => Promise.all(moe.flatMap((m) => Array.from({ length: c.experts }, (_, e) => m.expert(e)))),
    routedExperts: `${moe.length}×${c.experts}`,
    /** The taps of deepseek-v3.ts; a layer's residual add ('.out') falls into the next stage. */
    stageOf(tap) {
      if (tap === 'embed') return 'embedding row';
      if (tap === 'head.norm_out') return 'final norm';
      const [layer, what] = tap.split(/\.(.*)/);
      if (what === 'attn_out') return 'attention (MLA, absorbed)';
      if (what === 'gate.weights') return 'norm + gate + routing';
      if (what !== 'ffn_out') return undefined;
      return Number(layer.slice('layer'.length)) < c.denseLayers ? 'dense MLP (+ its norm)' : `experts: shared + ${c.topK} routed`;
    },
  };
}

export function benchV3(argv: string[]): Promise<number> {
  return runDecodeBench({
    name: 'v3', title: 'DeepSeek-V3', config: v3SynthConfig('bench'), write: writeSyntheticV3, target: v3Target,
  }, argv);
}
