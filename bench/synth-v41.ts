/**
 * Synthetic DeepSeek-V4.1 checkpoints in the official layout (deepseek-v41.md §2, §10, §11): the
 * flat `inference/config.json` (ModelArgs keys, as in shared/fixtures/deepseek-v41-tiny),
 * model-0000N-of-0000M.safetensors shards and model.safetensors.index.json, with exactly the tensors
 * of v41Tensors (FP8 E4M3 + E8M0 32×32 block scales, packed FP4 experts + E8M0 1×32 scales, Engram
 * tables E4M3 [rows, headDim] + E8M0 [rows, headDim/32], BF16 / F32 elsewhere) and random but sane
 * values, so that a forward pass and a DSpark draft stay finite and non-trivial. Used by the V4.1
 * speculative-decoding benchmark (v41.ts) and its test.
 *
 * Values as in synth-v4.ts (synth-checkpoint.ts's ValueInit): every quantised linear dequantises to
 * elements of rms ≈ 1/sqrt(in); Engram table rows and the Markov embedding have rms ≈ 1 like the
 * token embedding; norm weights and Engram q/k weights ≈ 1; hc_*_fn ≈ 1e-2, hc_*_base / attn_sink /
 * gate.bias ≈ 0, hc_*_scale ≈ 1. Each tensor has its own generator seeded from (seed, name).
 */
import { v41ConfigFromJson, v41Tensors, type V41Config } from '../src/models/deepseek-v41-config.js';
import type { ExpectedTensor } from '../src/models/deepseek-v4-config.js';
import type { DeepseekV41Model } from '../src/models/deepseek-v41.js';
import { engramPrimeSearch } from '../src/models/engram.js';
import { elementCount, generateValues, type Rng, type SyntheticOptions, type ValueInit, writeSyntheticCheckpoint } from './synth-checkpoint.js';

export type V41SynthPreset = 'flash' | 'bench' | 'tiny';

// ---- configuration ------------------------------------------------------------------------------

/** engram_num_embeddings of an Engram configuration: per layer, the sum of its primes (§6A.3). */
export function engramRowCounts(layers: number, vocabSize: number, maxNgram: number, heads: number): number[] {
  return engramPrimeSearch(layers, vocabSize, maxNgram, heads).map((layer) => layer.flat().reduce((a, b) => a + b, 0));
}

/** A config.json object with engram_num_embeddings computed from its Engram keys (last, as in the fixture). */
function withRowCounts(c: Record<string, unknown>): Record<string, unknown> {
  const layers = (c.engram_layer_ids as number[]).length;
  const rows = engramRowCounts(layers, c.engram_vocab_size as number, c.engram_max_ngram_size as number, c.engram_n_heads as number);
  return { ...c, engram_num_embeddings: rows };
}

/** The Flash column of spec §2 in the flat `inference/config.json` form, keys in the fixture's order; text only. */
function flashConfig(): Record<string, unknown> {
  return {
    vocab_size: 129280,
    dim: 5120,
    moe_inter_dim: 2304,
    n_layers: 40,
    n_mtp_layers: 3,
    dspark_block_size: 5,
    dspark_noise_token_id: 128799,
    dspark_target_layer_ids: [37, 38, 39],
    dspark_markov_rank: 256,
    dspark_n_routed_experts: 128,
    dspark_n_activated_experts: 3,
    n_heads: 64,
    n_routed_experts: 384,
    n_shared_experts: 1,
    n_activated_experts: 6,
    score_func: 'sqrtsoftplus',
    route_scale: 1.5,
    swiglu_limit: 10.0,
    q_lora_rank: 1280,
    head_dim: 512,
    rope_head_dim: 64,
    norm_eps: 1e-20,
    o_groups: 8,
    o_lora_rank: 1024,
    window_size: 128,
    kv_source_layers: [2, 8, 14, 20],
    index_source_layers: [2, 8, 14, 20, 24, 28, 32, 36],
    original_seq_len: 65536,
    rope_theta: 10000,
    rope_factor: 16,
    beta_fast: 32,
    beta_slow: 1,
    index_n_heads: 32,
    index_head_dim: 128,
    index_topk: 512,
    candidate_source_layer: 20,
    candidate_topk_blocks: 2048,
    candidate_block_size: 8,
    hc_mult: 4,
    hc_sinkhorn_iters: 20,
    hc_eps: 1e-6,
    engram_layer_ids: [1, 14],
    engram_vocab_size: 16_000_000,
    engram_max_ngram_size: 4,
    engram_n_heads: 8,
    engram_head_dim: 256,
    engram_pad_id: 2,
    dtype: 'fp8',
    expert_dtype: 'fp4',
    compress_rope_theta: 160000,
    // Layers 0, 1 window only; 2–19 ratio 2; 20–39 ratio 1; the three draft stages window only.
    compress_ratios: [0, 0, ...new Array<number>(18).fill(2), ...new Array<number>(20).fill(1), 0, 0, 0],
    // Flash has a 32-layer vision tower; minke runs the text path only (§9A).
    vision_n_layers: 0,
    image_token_id: 129264,
    engram_compressed_vocab_size: 99092,
  };
}

/**
 * Eight main layers holding every CSA2 role once or more (§6.3), then three window-only DSpark
 * stages: 0 window only; 1 ratio-2 KV + index source; 2 ratio-2 reuser; 3 ratio-1 KV + index +
 * candidate source; 4 ratio-1 reuser; 5 ratio-1 re-indexer; 6, 7 ratio-1 reusers. Engram before
 * layers 1 and 4, DSpark taps on 5, 6, 7.
 */
const ROLES = {
  n_layers: 8,
  n_mtp_layers: 3,
  compress_ratios: [0, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0],
  kv_source_layers: [1, 3],
  index_source_layers: [1, 3, 5],
  candidate_source_layer: 3,
  engram_layer_ids: [1, 4],
  dspark_target_layer_ids: [5, 6, 7],
};

/**
 * A flat config.json object. 'flash': the released model (for v41Tensors, not for generating: the
 * Engram tables alone are ~200 GB). 'bench': Flash's formats, head shapes (64 rope dims of 512,
 * 4 streams), Engram (2 tables of ~306K rows × 256, 8 heads × 3 n-gram orders) and a 5-token DSpark
 * block in ~0.7 GB: dim 1024, 32 experts top-6 (draft MoE 16 top-3), vocab 16384. 'tiny': the same
 * layer roles at fixture sizes, for tests (~1.5 MB).
 */
export function v41SynthConfig(preset: V41SynthPreset): Record<string, unknown> {
  const flash = flashConfig();
  switch (preset) {
    case 'flash':
      return withRowCounts(flash);
    case 'bench':
      return withRowCounts({
        ...flash, ...ROLES,
        vocab_size: 16384, dim: 1024, moe_inter_dim: 512, n_heads: 16, q_lora_rank: 512, o_groups: 4, o_lora_rank: 256,
        n_routed_experts: 32, dspark_n_routed_experts: 16, dspark_noise_token_id: 16000,
        index_n_heads: 16, index_topk: 64, candidate_topk_blocks: 16,
        engram_vocab_size: 12_500, engram_compressed_vocab_size: 12_288,
      });
    case 'tiny':
      return withRowCounts({
        ...flash, ...ROLES,
        vocab_size: 512, dim: 128, moe_inter_dim: 64, n_heads: 4, head_dim: 64, rope_head_dim: 32, q_lora_rank: 64,
        o_groups: 2, o_lora_rank: 32, window_size: 8, n_routed_experts: 8, n_activated_experts: 2,
        dspark_block_size: 4, dspark_noise_token_id: 500, dspark_markov_rank: 32, dspark_n_routed_experts: 4,
        index_n_heads: 4, index_head_dim: 64, index_topk: 4, candidate_topk_blocks: 3, candidate_block_size: 2,
        engram_vocab_size: 40, engram_n_heads: 2, engram_head_dim: 32, engram_compressed_vocab_size: 100,
      });
    default:
      throw new Error(`unknown synthetic V4.1 preset ${JSON.stringify(preset)} (flash, bench, tiny)`);
  }
}

// ---- tensor layout (§11) -------------------------------------------------------------------------

interface Planned extends ExpectedTensor { readonly init: ValueInit }

const NORM: ValueInit = { kind: 'bf16', mean: 1, std: 0.05 };
const isEngramTable = (name: string) => name.includes('.engram.embed.');

/** Every tensor of config `c` (v41Tensors) with how its values are drawn. */
function plan(c: V41Config): Planned[] {
  const tensors = v41Tensors(c);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const init = ({ name, dtype, shape }: ExpectedTensor): ValueInit => {
    switch (dtype) {
      // Engram rows are looked up, not multiplied: rms 1 like embeddings (as a linear of width 1).
      case 'f8_e4m3': return { kind: 'fp8', in: isEngramTable(name) ? 1 : shape[1] };
      case 'i8': return { kind: 'fp4' };
      case 'e8m0': {
        // FP8 block scales are [ceil(out/32), ceil(in/32)], Engram's [rows, headDim/32]: the width comes from the weight.
        const w = byName.get(name.replace(/scale$/, 'weight'))!;
        if (w.dtype === 'i8') return { kind: 'fp4-scale', in: 2 * w.shape[1] };
        return { kind: 'fp8-scale', in: isEngramTable(name) ? 1 : w.shape[1] };
      }
      case 'bf16':
        if (name === 'embed.weight' || name.endsWith('markov_head.embed.weight')) return { kind: 'bf16', mean: 0, std: 1 };
        if (name.endsWith('norm.weight') || /engram\.[qk]_weight$/.test(name)) return NORM;
        return { kind: 'bf16', mean: 0, std: 1 / Math.sqrt(shape[1]) };
      case 'f32':
        if (/hc_\w+_scale$/.test(name)) return { kind: 'f32', mean: 1, std: 0.05 };
        if (/hc_\w+_(fn|base)$/.test(name) || name.endsWith('gate.bias')) return { kind: 'f32', mean: 0, std: 1e-2 };
        if (name.endsWith('attn_sink')) return { kind: 'f32', mean: 0, std: 0.05 };
    }
    throw new Error(`synthetic V4.1: no value rule for ${dtype} tensor '${name}'`);
  };
  return tensors.map((t) => ({ ...t, init: init(t) }));
}

const generate = (t: Planned, rng: Rng): Uint8Array => generateValues(t.init, elementCount(t), rng);

// ---- writing -------------------------------------------------------------------------------------

/**
 * Writes config.json, the shards and model.safetensors.index.json into `dir` (created; must be
 * empty). The DSpark stages (mtp.*) fill the last shard(s), as the MTP block does in V4. Memory: one
 * tensor at a time.
 */
export function writeSyntheticV41(dir: string, config: object, opts: SyntheticOptions = {}): void {
  writeSyntheticCheckpoint('writeSyntheticV41', dir, config, opts, (where) => {
    const tensors = plan(v41ConfigFromJson(config as Record<string, unknown>, where));
    const isStage = (t: Planned) => t.name.startsWith('mtp.');
    return { parts: [tensors.filter((t) => !isStage(t)), tensors.filter(isStage)], generate };
  });
}

/**
 * `model` whose sequences draft like an oracle: the first k ids of every block after the anchor are
 * `truth` (the tokens at those positions), the others wrong, and the confidences are high for the
 * right ones and low after, so the engine's threshold cuts the block after k.
 */
export function oracleModel(model: DeepseekV41Model, truth: readonly number[], k: number): DeepseekV41Model {
  const oracle = Object.create(model) as DeepseekV41Model;
  oracle.newSequence = (opts) => {
    const seq = model.newSequence(opts);
    const dspark = seq.dspark.bind(seq);
    seq.dspark = async (anchor, pick) => {
      const block = await dspark(anchor, pick);
      const p = seq.length; // the anchor's position
      // A wrong id: anything but the truth (ids past the known continuation may be right by chance).
      const ids = block.ids.map((id, i) => i === 0 ? id : i <= k && p + i < truth.length ? truth[p + i] : (truth[p + i] ?? id) ^ 1);
      const confidence = block.confidence.map((_, i) => (i < k ? 20 : -20));
      return { ...block, ids, confidence };
    };
    return seq;
  };
  return oracle;
}
