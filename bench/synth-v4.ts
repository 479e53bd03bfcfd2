/**
 * Synthetic DeepSeek-V4 checkpoints in the official Hugging Face layout (spec §2, §10.2, §11):
 * config.json, model-0000N-of-0000M.safetensors shards and model.safetensors.index.json, with the
 * official tensor names, dtypes and shapes (FP8 E4M3 + E8M0 128×128 tile scales, packed FP4 experts
 * + E8M0 1×32 scales, BF16 / F32 / I64 elsewhere) and random but sane values, so that a forward pass
 * stays finite and non-trivial. Used by the V4 decode benchmark and by tests that need checkpoints
 * to corrupt.
 *
 * Values: every quantised linear dequantises to elements of rms ≈ 1/sqrt(in) (unit-rms inputs give
 * unit-rms outputs); norm weights ≈ 1; hc_*_fn ≈ 1e-2, hc_*_base / attn_sink / gate.bias ≈ 0,
 * hc_*_scale ≈ 1, compressor.ape small; tid2eid rows hold distinct expert ids. Each tensor has its
 * own generator seeded from (seed, name), so its bytes do not depend on the sharding.
 *
 * A config with the dspark_* keys gives the V4-DSpark form (deepseek-v41.md §8.2): DSpark stages in
 * place of the MTP block, as many as `dsparkStages` says (the official config keeps
 * num_nextn_predict_layers 1); the Markov embedding has rms ≈ 1 like the token embedding.
 */
import { v4ConfigFromHF, v4Tensors, v4WithDsparkStages, type ExpectedTensor, type V4Config } from '../src/models/deepseek-v4-config.js';
import {
  elementCount, generateValues, type Rng, type SyntheticOptions, type ValueInit, writeSyntheticCheckpoint,
} from './synth-checkpoint.js';

export interface SyntheticV4Options extends SyntheticOptions {
  /** V4-DSpark configs: the number of DSpark stages (mtp.0 …) to write (default num_nextn_predict_layers). */
  readonly dsparkStages?: number;
}

export type V4SynthPreset = 'bench' | 'flash' | 'pro';

// ---- configuration ------------------------------------------------------------------------------

/** The Flash column of spec §2 as an HF config.json object. */
function flashConfig(): Record<string, unknown> {
  return {
    architectures: ['DeepseekV4ForCausalLM'],
    model_type: 'deepseek_v4',
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 1,
    hc_eps: 1e-6,
    hc_mult: 4,
    hc_sinkhorn_iters: 20,
    head_dim: 512,
    hidden_act: 'silu',
    hidden_size: 4096,
    index_head_dim: 128,
    index_n_heads: 64,
    index_topk: 512,
    initializer_range: 0.02,
    max_position_embeddings: 1048576,
    moe_intermediate_size: 2048,
    n_routed_experts: 256,
    n_shared_experts: 1,
    norm_topk_prob: true,
    num_attention_heads: 64,
    num_experts_per_tok: 6,
    num_hidden_layers: 43,
    num_hash_layers: 3,
    num_key_value_heads: 1,
    num_nextn_predict_layers: 1,
    o_groups: 8,
    o_lora_rank: 1024,
    q_lora_rank: 1024,
    qk_rope_head_dim: 64,
    quantization_config: {
      activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', scale_fmt: 'ue8m0', weight_block_size: [128, 128],
    },
    expert_dtype: 'fp4',
    rms_norm_eps: 1e-6,
    rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 16, original_max_position_embeddings: 65536, type: 'yarn' },
    rope_theta: 10000,
    routed_scaling_factor: 1.5,
    scoring_func: 'sqrtsoftplus',
    sliding_window: 128,
    swiglu_limit: 10.0,
    tie_word_embeddings: false,
    topk_method: 'noaux_tc',
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: 129280,
    compress_rope_theta: 160000,
    // Layers 0, 1 sliding window; then CSA (4) and HCA (128) alternate; the MTP layer is SWA.
    compress_ratios: [0, 0, ...Array.from({ length: 41 }, (_, i) => (i % 2 ? 128 : 4)), 0],
  };
}

/**
 * An HF config.json object. 'flash' / 'pro': the released models (spec §2; for v4Tensors, not for
 * generating). 'bench': Flash's layer mix and formats in 436 MB — 8 layers SWA, SWA, CSA, HCA, …
 * + an SWA MTP layer, head_dim 512 and 64 rope dims, experts hidden/2 wide as in Flash. 32 experts
 * and vocab 16384 keep it under 500 MB while a decoded token still reads the BF16 head, routed
 * experts and the rest in proportions near Flash's (head 18 % / experts 22 %; Flash 9 % / 31 %).
 */
export function v4SynthConfig(preset: V4SynthPreset): Record<string, unknown> {
  const flash = flashConfig();
  switch (preset) {
    case 'flash':
      return flash;
    case 'pro':
      return {
        ...flash,
        hidden_size: 7168, moe_intermediate_size: 3072, num_hidden_layers: 61, num_attention_heads: 128,
        n_routed_experts: 384, routed_scaling_factor: 2.5, q_lora_rank: 1536, o_groups: 16, index_topk: 1024,
        // Layers 0, 1 and every odd layer HCA, even layers from 2 CSA; the MTP layer is SWA.
        compress_ratios: [128, 128, ...Array.from({ length: 59 }, (_, i) => (i % 2 ? 128 : 4)), 0],
      };
    case 'bench':
      return {
        ...flash,
        vocab_size: 16384, hidden_size: 1024, moe_intermediate_size: 512, num_hidden_layers: 8,
        num_attention_heads: 16, n_routed_experts: 32, q_lora_rank: 512, o_groups: 4, o_lora_rank: 256,
        index_n_heads: 16, index_topk: 64,
        compress_ratios: [0, 0, 4, 128, 4, 128, 4, 128, 0],
      };
    default:
      throw new Error(`unknown synthetic V4 preset ${JSON.stringify(preset)} (bench, flash, pro)`);
  }
}

// ---- tensor layout (spec §11.2) ------------------------------------------------------------------

/** How a tensor's values are drawn (synth-checkpoint.ts), or the hash-routing table. */
type Init = ValueInit | { kind: 'tid2eid'; experts: number };

interface Planned extends ExpectedTensor { readonly init: Init }

const NORM: Init = { kind: 'bf16', mean: 1, std: 0.05 };

/** Every tensor of config `c` (v4Tensors, spec §11.2) with how its values are drawn. */
function plan(c: V4Config): Planned[] {
  const tensors = v4Tensors(c);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const init = ({ name, dtype, shape }: ExpectedTensor): Init => {
    switch (dtype) {
      case 'f8_e4m3': return { kind: 'fp8', in: shape[1] };
      case 'i8': return { kind: 'fp4' };
      case 'e8m0': {
        // Scales of FP8 tiles are [ceil(out/128), ceil(in/128)]: the width comes from the weight.
        const w = byName.get(name.replace(/scale$/, 'weight'))!;
        return w.dtype === 'i8' ? { kind: 'fp4-scale', in: 2 * w.shape[1] } : { kind: 'fp8-scale', in: w.shape[1] };
      }
      case 'i64': return { kind: 'tid2eid', experts: c.experts };
      case 'bf16':
        if (name === 'embed.weight' || name.endsWith('markov_head.markov_w1.weight')) return { kind: 'bf16', mean: 0, std: 1 };
        return name.endsWith('norm.weight') ? NORM : { kind: 'bf16', mean: 0, std: 1 / Math.sqrt(shape[1]) };
      case 'f32':
        if (/hc_\w+_scale$/.test(name)) return { kind: 'f32', mean: 1, std: 0.05 };
        if (/hc_\w+_(fn|base)$/.test(name) || name.endsWith('gate.bias')) return { kind: 'f32', mean: 0, std: 1e-2 };
        if (name.endsWith('.ape')) return { kind: 'f32', mean: 0, std: 0.02 };
        if (name.endsWith('attn_sink')) return { kind: 'f32', mean: 0, std: 0.05 };
    }
    throw new Error(`synthetic V4: no value rule for ${dtype} tensor '${name}'`);
  };
  return tensors.map((t) => ({ ...t, init: init(t) }));
}

// ---- values ------------------------------------------------------------------------------------

function generate(t: Planned, rng: Rng): Uint8Array {
  const init = t.init;
  if (init.kind !== 'tid2eid') return generateValues(init, elementCount(t), rng);
  // Row = a partial Fisher–Yates shuffle of the expert ids: topK distinct ids in [0, E).
  const [rows, k] = t.shape;
  const perm = Int32Array.from({ length: init.experts }, (_, i) => i);
  const out = new Uint32Array(rows * k * 2); // little-endian i64: low word, high word 0
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const s = j + (rng.u32() % (init.experts - j));
      const id = perm[s];
      perm[s] = perm[j];
      perm[j] = id;
      out[(r * k + j) * 2] = id;
    }
  }
  return new Uint8Array(out.buffer);
}

// ---- writing -------------------------------------------------------------------------------------

/**
 * Writes config.json, the shards and model.safetensors.index.json into `dir` (created; must be
 * empty). As in the official checkpoints, the MTP tensors fill the last shard(s) and embed opens
 * the first. Memory: one tensor at a time.
 */
export function writeSyntheticV4(dir: string, config: object, opts: SyntheticV4Options = {}): void {
  writeSyntheticCheckpoint('writeSyntheticV4', dir, config, opts, (where) => {
    let c = v4ConfigFromHF(config as Record<string, unknown>, where);
    if (opts.dsparkStages !== undefined) {
      if (!c.dspark) throw new Error(`writeSyntheticV4: dsparkStages given, but ${where} has no dspark_* keys`);
      c = v4WithDsparkStages(c, opts.dsparkStages, c.dspark.experts, where);
    }
    const tensors = plan(c);
    const isMtp = (t: Planned) => t.name.startsWith('mtp.');
    return { parts: [tensors.filter((t) => !isMtp(t)), tensors.filter(isMtp)], generate };
  });
}
