/**
 * `npm run bench -- v4`: DeepSeek-V4 decode against this machine's memory roofline (the V4 issue's
 * acceptance: ≥ 70 % of the roofline with 2 threads), run by decode-roofline.ts.
 *
 * The model is the synthetic 'bench' checkpoint of bench/synth-v4.ts (Flash's layer mix and formats,
 * random weights, ~436 MB). The decode MTP block never runs. The stage table splits attention by
 * layer kind (sliding window, CSA with its indexer, HCA).
 */
import { CpuBackend } from '../src/kernels/cpu/cpu-backend.js';
import { DeepseekV4Model } from '../src/models/deepseek-v4.js';
import { layerKind } from '../src/models/deepseek-v4-config.js';
import type { LanguageModel } from '../src/models/model.js';
import { type DecodeTarget, runDecodeBench } from './decode-roofline.js';
import { v4SynthConfig, writeSyntheticV4 } from './synth-v4.js';

/**
 * Where the block's taps fall (deepseek-v4.ts): each tap ends the stage it names, and the stage
 * runs from the previous tap. Taps not listed here (e.g. hc_attn.y before hc_attn.comb) are skipped.
 */
const STAGE_OF_TAP: [RegExp, string][] = [
  [/^embed$/, 'embedding row'],
  [/\.hc_attn\.comb$/, 'hc_pre (attn): hc_attn_fn + Sinkhorn'],
  [/\.attn_out$/, 'attention'],
  [/\.hc_ffn\.comb$/, 'hc_post (attn) + hc_pre (ffn)'],
  [/\.gate\.weights$/, 'norm + gate + routing'],
  [/\.ffn_out$/, 'experts'],
  [/\.out$/, 'hc_post (ffn)'],
  [/^head\.norm_out$/, 'head mixer + norm'],
];

function v4Target(model: LanguageModel, dir: string): DecodeTarget {
  if (!(model instanceof DeepseekV4Model) || !(model.backend instanceof CpuBackend)) throw new Error(`${dir} did not load as a DeepSeek-V4 model on the CPU backend`);
  const c = model.config, blocks = model.weights.blocks;
  const kinds = new Map(c.compressRatios.slice(0, c.layers).map((r, l) => [`layer${l}`, { sliding: 'sliding-window', csa: 'CSA', hca: 'HCA' }[layerKind(r)]]));
  return {
    backend: model.backend,
    vocab: c.vocab,
    embedRowBytes: 2 * c.dim, // BF16
    summary: `layers ${[...kinds.values()].join(', ')}; dim ${c.dim}, ${c.experts} experts top-${c.topK}`,
    newSequence: (contextLength) => model.newSequence({ contextLength }),
    loadAllExperts: () => Promise.all(blocks.flatMap((b) => Array.from({ length: c.experts }, (_, e) => b.ffn.expert(e)))),
    routedExperts: `${c.layers}×${c.experts}`,
    stageOf(tap) {
      const stage = STAGE_OF_TAP.find(([re]) => re.test(tap))?.[1];
      // Attention splits by layer kind: sliding window, CSA (+ indexer), HCA.
      if (stage === 'attention') return `attention, ${kinds.get(tap.split('.')[0])} layers`;
      return stage === 'experts' ? `experts: shared + ${c.topK} routed` : stage;
    },
  };
}

export function benchV4(argv: string[]): Promise<number> {
  return runDecodeBench({
    name: 'v4', title: 'DeepSeek-V4', config: v4SynthConfig('bench'), write: writeSyntheticV4, target: v4Target,
  }, argv);
}
