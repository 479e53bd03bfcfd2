/**
 * Synthetic DeepSeek-V3 checkpoints in the official Hugging Face layout (../../shared/spec/deepseek-v3.md
 * §1, §3, §5): config.json, model-0000N-of-0000M.safetensors shards and model.safetensors.index.json
 * with the tensors of v3Tensors (FP8 E4M3 projections with f32 `weight_scale_inv` 128×128 tiles, BF16
 * embedding / head / norms / router, f32 correction bias) plus the MTP layers `model.layers.{L…}.*`
 * that the official checkpoints carry (§2.5; BF16 eh_proj as in the tiny fixture) in the last
 * shard(s). Random but sane values, so that a forward pass stays finite and non-trivial. Used by the
 * V3 decode benchmark (bench/v3.ts).
 *
 * Values: every FP8 projection dequantises to elements of rms ≈ 1/sqrt(in) (unit-rms inputs give
 * unit-rms outputs): Gaussian codes of rms 64 times per-tile scales 2^-6/sqrt(in)·u, u uniform in
 * [0.5, 1.5) / sqrt(13/12) (E[u²] = 1; scales differ from tile to tile, so tile indexing matters);
 * BF16 norms ≈ 1, embeddings rms 1, other BF16 matrices rms 1/sqrt(in); correction bias ≈ 0.
 */
import { v3ConfigFromHF, v3LayerPrefix, v3Tensors, type V3Config } from '../src/models/deepseek-v3-config.js';
import type { ExpectedTensor } from '../src/models/deepseek-v4-config.js';
import {
  bf16Gaussian, elementCount, f32Gaussian, fp8Codes, type Rng, type SyntheticOptions, writeSyntheticCheckpoint,
} from './synth-checkpoint.js';

export type V3SynthPreset = 'bench' | 'v3';

// ---- configuration ------------------------------------------------------------------------------

/** DeepSeek-V3 (671B) as an HF config.json object (spec §1). */
function v3Config(): Record<string, unknown> {
  return {
    architectures: ['DeepseekV3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    aux_loss_alpha: 0.001,
    bos_token_id: 0,
    eos_token_id: 1,
    ep_size: 1,
    first_k_dense_replace: 3,
    hidden_act: 'silu',
    hidden_size: 7168,
    initializer_range: 0.02,
    intermediate_size: 18432,
    kv_lora_rank: 512,
    max_position_embeddings: 163840,
    model_type: 'deepseek_v3',
    moe_intermediate_size: 2048,
    moe_layer_freq: 1,
    n_group: 8,
    n_routed_experts: 256,
    n_shared_experts: 1,
    norm_topk_prob: true,
    num_attention_heads: 128,
    num_experts_per_tok: 8,
    num_hidden_layers: 61,
    num_key_value_heads: 128,
    num_nextn_predict_layers: 1,
    q_lora_rank: 1536,
    qk_nope_head_dim: 128,
    qk_rope_head_dim: 64,
    quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] },
    rms_norm_eps: 1e-6,
    rope_scaling: {
      beta_fast: 32, beta_slow: 1, factor: 40, mscale: 1.0, mscale_all_dim: 1.0, original_max_position_embeddings: 4096, type: 'yarn',
    },
    rope_theta: 10000,
    routed_scaling_factor: 2.5,
    scoring_func: 'sigmoid',
    seq_aux: true,
    tie_word_embeddings: false,
    topk_group: 4,
    topk_method: 'noaux_tc',
    torch_dtype: 'bfloat16',
    use_cache: true,
    v_head_dim: 128,
    vocab_size: 129280,
  };
}

/**
 * An HF config.json object. 'v3': the released model (for v3Tensors, not for generating). 'bench':
 * V3's shape in 491 MB — MLA's real per-head dims (qk_nope 128, qk_rope 64, v 128, kv_lora_rank 512)
 * with 16 heads, hidden 1024, q_lora_rank 512; 8 layers, the first dense (intermediate 2048), then
 * 32 routed experts top-8 in 4 groups (top-2 groups), moe_intermediate 512 (hidden/2, V3 has
 * hidden/3.5), 1 shared; vocab 16384; sigmoid + noaux_tc routing and V3's YaRN. No MTP layer: the
 * loader skips it, so it would only cost disk.
 */
export function v3SynthConfig(preset: V3SynthPreset): Record<string, unknown> {
  const v3 = v3Config();
  switch (preset) {
    case 'v3':
      return v3;
    case 'bench':
      return {
        ...v3,
        vocab_size: 16384, hidden_size: 1024, intermediate_size: 2048, moe_intermediate_size: 512,
        num_hidden_layers: 8, first_k_dense_replace: 1, num_nextn_predict_layers: 0,
        num_attention_heads: 16, num_key_value_heads: 16, q_lora_rank: 512,
        n_routed_experts: 32, n_group: 4, topk_group: 2,
      };
    default:
      throw new Error(`unknown synthetic V3 preset ${JSON.stringify(preset)} (bench, v3)`);
  }
}

/**
 * `config` made a DeepSeek-V3.2 config (spec §1, §4): model_type deepseek_v32 and the lightning
 * indexer's keys (V3.2: 64 heads × 128, top-2048), so writeSyntheticV3 adds the indexer tensors
 * `model.layers.L.self_attn.indexer.*` to every layer.
 */
export function withV32Indexer(config: Record<string, unknown>, index: { heads?: number; headDim?: number; topk?: number } = {}): Record<string, unknown> {
  return {
    ...config,
    architectures: ['DeepseekV32ForCausalLM'],
    model_type: 'deepseek_v32',
    index_n_heads: index.heads ?? 64,
    index_head_dim: index.headDim ?? 128,
    index_topk: index.topk ?? 2048,
  };
}

// ---- tensor layout ------------------------------------------------------------------------------

/**
 * The MTP layers of an official checkpoint (spec §2.5), `model.layers.{layers + i}.*`: embed_tokens,
 * enorm, hnorm, eh_proj [D, 2D], a full MoE decoder layer, shared_head.norm and shared_head.head.
 * eh_proj is BF16 here as in the tiny fixture (spec §3 lists it among the FP8 tensors).
 */
export function v3MtpTensors(c: V3Config): ExpectedTensor[] {
  const D = c.dim;
  const withMtp = v3Tensors({ ...c, layers: c.layers + c.mtpLayers });
  return Array.from({ length: c.mtpLayers }, (_, i) => {
    const p = v3LayerPrefix(c.layers + i);
    return [
      { name: `${p}.embed_tokens.weight`, dtype: 'bf16', shape: [c.vocab, D] },
      { name: `${p}.enorm.weight`, dtype: 'bf16', shape: [D] },
      { name: `${p}.hnorm.weight`, dtype: 'bf16', shape: [D] },
      { name: `${p}.eh_proj.weight`, dtype: 'bf16', shape: [D, 2 * D] },
      ...withMtp.filter((t) => t.name.startsWith(`${p}.`)),
      { name: `${p}.shared_head.norm.weight`, dtype: 'bf16', shape: [D] },
      { name: `${p}.shared_head.head.weight`, dtype: 'bf16', shape: [c.vocab, D] },
    ] satisfies ExpectedTensor[];
  }).flat();
}

/** How a tensor's values are drawn. `in` is the input width of the projection it belongs to. */
type Init =
  | { kind: 'fp8' } | { kind: 'fp8-scale'; in: number }
  | { kind: 'bf16' | 'f32'; mean: number; std: number };

interface Planned extends ExpectedTensor { readonly init: Init }

function init({ name, dtype, shape }: ExpectedTensor, widthOf: (weight: string) => number): Init {
  switch (dtype) {
    case 'f8_e4m3': return { kind: 'fp8' };
    case 'bf16':
      if (name.endsWith('norm.weight')) return { kind: 'bf16', mean: 1, std: 0.05 };
      if (name.endsWith('.indexer.k_norm.bias')) return { kind: 'bf16', mean: 0, std: 0.05 };
      if (name.endsWith('embed_tokens.weight')) return { kind: 'bf16', mean: 0, std: 1 };
      return { kind: 'bf16', mean: 0, std: 1 / Math.sqrt(shape[1]) }; // router, heads, eh_proj
    case 'f32':
      // Tile scales [ceil(out/128), ceil(in/128)]: the input width comes from the weight.
      if (name.endsWith('.weight_scale_inv')) return { kind: 'fp8-scale', in: widthOf(name.replace(/_scale_inv$/, '')) };
      if (name.endsWith('.e_score_correction_bias')) return { kind: 'f32', mean: 0, std: 1e-2 };
  }
  throw new Error(`synthetic V3: no value rule for ${dtype} tensor '${name}'`);
}

/** FP8 codes have rms 2^6; a tile's scale is 2^-6/sqrt(in)·u with E[u²] = 1. */
const FP8_CODE_RMS = 64;
const U_RMS = Math.sqrt(13 / 12); // rms of u uniform in [0.5, 1.5)

function generate(t: Planned, rng: Rng): Uint8Array {
  const count = elementCount(t), init = t.init;
  switch (init.kind) {
    case 'fp8':
      return fp8Codes(rng, count, FP8_CODE_RMS);
    case 'fp8-scale': {
      const base = 1 / (FP8_CODE_RMS * Math.sqrt(init.in) * U_RMS);
      return new Uint8Array(Float32Array.from({ length: count }, () => base * (0.5 + rng.uniform())).buffer);
    }
    case 'bf16':
      return bf16Gaussian(rng, count, init.mean, init.std);
    case 'f32':
      return f32Gaussian(rng, count, init.mean, init.std);
  }
}

// ---- writing -------------------------------------------------------------------------------------

/**
 * Writes config.json, the shards and model.safetensors.index.json into `dir` (created; must be
 * empty): the main model's tensors (v3Tensors: embedding first, head last), then the MTP layers in
 * shard(s) of their own. Memory: one tensor at a time.
 */
export function writeSyntheticV3(dir: string, config: object, opts: SyntheticOptions = {}): void {
  writeSyntheticCheckpoint('writeSyntheticV3', dir, config, opts, (where) => {
    const c = v3ConfigFromHF(config as Record<string, unknown>, where);
    const main = v3Tensors(c), mtp = v3MtpTensors(c);
    const widths = new Map([...main, ...mtp].map((t) => [t.name, t.shape[1]]));
    const plan = (l: ExpectedTensor[]): Planned[] => l.map((t) => ({ ...t, init: init(t, (w) => widths.get(w)!) }));
    return { parts: [plan(main), plan(mtp)], generate };
  });
}
