/**
 * A toy DeepSeek-V4 configuration for training tests — every layer kind (CSA with indexer, HCA,
 * sliding window), hash and score routing, hyper-connections and an MTP block, at tiny sizes — and
 * a learnable synthetic pattern for it.
 */
import { rng } from '../support/rng.js';

/** HF config.json fields (the format keys come from v4HFConfig). */
export const TOY_MODEL: Record<string, unknown> = {
  vocab_size: 64, hidden_size: 32, moe_intermediate_size: 32,
  num_hidden_layers: 2, num_hash_layers: 1, num_nextn_predict_layers: 1,
  num_attention_heads: 2, head_dim: 32, qk_rope_head_dim: 16, q_lora_rank: 32, o_groups: 1, o_lora_rank: 32,
  sliding_window: 8, compress_ratios: [4, 8, 0], compress_rope_theta: 160000, rope_theta: 10000,
  index_n_heads: 2, index_head_dim: 32, index_topk: 2,
  n_routed_experts: 4, num_experts_per_tok: 2, routed_scaling_factor: 1.5, swiglu_limit: 10,
  hc_mult: 2, hc_sinkhorn_iters: 10, hc_eps: 1e-6, rms_norm_eps: 1e-6, max_position_embeddings: 256,
  bos_token_id: 0, eos_token_id: 1,
};

export const TOY_VOCAB = 64;

/**
 * Arithmetic progressions mod the vocabulary: a random start and a random stride 1, 2 or 3 per
 * sequence. The first token says nothing about the stride, so a model that looks at the previous
 * token alone cannot beat ln 3 ≈ 1.10 nats per token; one that reads the context (attention) can
 * predict every token after the second exactly.
 */
export function progressions(count: number, length: number, seed: number): number[][] {
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    const start = Math.floor(next() * TOY_VOCAB), stride = 1 + Math.floor(next() * 3);
    return Array.from({ length }, (_, j) => (start + stride * j) % TOY_VOCAB);
  });
}

/**
 * TOY_MODEL widened so that minke's default inference numerics (FP8 activation rounding in blocks
 * of 128 before every FP8/FP4 product, the KV round trips in blocks of 64) apply: every product's
 * input width a multiple of 128, head_dim − rope dim a multiple of 64.
 */
export const RUNNABLE_MODEL: Record<string, unknown> = {
  ...TOY_MODEL,
  hidden_size: 128, moe_intermediate_size: 128, head_dim: 128, qk_rope_head_dim: 64, q_lora_rank: 128,
  o_lora_rank: 128, index_head_dim: 128,
};
