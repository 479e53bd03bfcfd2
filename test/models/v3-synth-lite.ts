/**
 * Test helper: a small random checkpoint in the official DeepSeek-V3 HF layout (FP8 projections with
 * f32 weight_scale_inv tiles, BF16 embedding / head / norms / router) shaped like DeepSeek-V2-Lite's
 * configuration — no q low rank (one plain q_proj), softmax routing without a correction bias or
 * expert groups (no n_group key, as older GGUFs have no expert_group_count), unnormalised top-k
 * weights, two shared experts, YaRN with mscale 0.707 — and lm_head equal to the embedding, so that
 * a GGUF with the output tied to token_embd is the same model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, type SafetensorsWriteTensor } from '../../src/formats/safetensors-writer.js';
import { quantize } from '../../src/tensor/dequantize.js';
import { FP8_BLOCK_F32 } from '../../src/tensor/dtype.js';
import { f32ToBf16 } from '../../src/tensor/float.js';
import { rng } from '../support/rng.js';

export const LITE_CONFIG = {
  architectures: ['DeepseekV3ForCausalLM'],
  model_type: 'deepseek_v3',
  vocab_size: 512,
  hidden_size: 64,
  intermediate_size: 96,
  moe_intermediate_size: 32,
  num_hidden_layers: 2,
  first_k_dense_replace: 1,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  q_lora_rank: null,
  kv_lora_rank: 64,
  qk_nope_head_dim: 32,
  qk_rope_head_dim: 16,
  v_head_dim: 32,
  n_routed_experts: 4,
  n_shared_experts: 2,
  num_experts_per_tok: 2,
  scoring_func: 'softmax',
  topk_method: 'greedy',
  norm_topk_prob: false,
  routed_scaling_factor: 1.0,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 0.707, mscale_all_dim: 0.707 },
  max_position_embeddings: 163840,
  bos_token_id: 0,
  eos_token_id: 1,
  tie_word_embeddings: false,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] },
};

/** Writes config.json and model.safetensors of the V2-Lite-shaped model into `dir`. */
export function writeLiteCheckpoint(dir: string, seed = 5): void {
  const c = LITE_CONFIG, rand = rng(seed);
  const gauss = (n: number, rms: number) => Float32Array.from({ length: n }, () => rms * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
  const tensors: SafetensorsWriteTensor[] = [];
  const bf16 = (name: string, shape: number[], values: Float32Array) => {
    const bits = Uint16Array.from(values, (v) => f32ToBf16(v));
    tensors.push({ name, dtype: 'bf16', shape, data: new Uint8Array(bits.buffer) });
  };
  const fp8 = (name: string, rows: number, cols: number) => {
    const { data, scale } = quantize(FP8_BLOCK_F32, gauss(rows * cols, 1 / Math.sqrt(cols)), rows, cols);
    tensors.push({ name: `${name}.weight`, dtype: 'f8_e4m3', shape: [rows, cols], data });
    tensors.push({ name: `${name}.weight_scale_inv`, dtype: 'f32', shape: [Math.ceil(rows / 128), Math.ceil(cols / 128)], data: scale! });
  };
  const norm = (name: string, n: number) => bf16(name, [n], Float32Array.from(gauss(n, 0.1), (v) => 1 + v));
  const mlp = (p: string, inter: number) => {
    fp8(`${p}.gate_proj`, inter, c.hidden_size);
    fp8(`${p}.up_proj`, inter, c.hidden_size);
    fp8(`${p}.down_proj`, c.hidden_size, inter);
  };
  const D = c.hidden_size, H = c.num_attention_heads;
  const embed = gauss(c.vocab_size * D, 1);
  bf16('model.embed_tokens.weight', [c.vocab_size, D], embed);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`, a = `${p}.self_attn`;
    norm(`${p}.input_layernorm.weight`, D);
    norm(`${p}.post_attention_layernorm.weight`, D);
    fp8(`${a}.q_proj`, H * (c.qk_nope_head_dim + c.qk_rope_head_dim), D);
    fp8(`${a}.kv_a_proj_with_mqa`, c.kv_lora_rank + c.qk_rope_head_dim, D);
    norm(`${a}.kv_a_layernorm.weight`, c.kv_lora_rank);
    fp8(`${a}.kv_b_proj`, H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
    fp8(`${a}.o_proj`, D, H * c.v_head_dim);
    if (l < c.first_k_dense_replace) {
      mlp(`${p}.mlp`, c.intermediate_size);
      continue;
    }
    bf16(`${p}.mlp.gate.weight`, [c.n_routed_experts, D], gauss(c.n_routed_experts * D, 1 / Math.sqrt(D)));
    for (let e = 0; e < c.n_routed_experts; e++) mlp(`${p}.mlp.experts.${e}`, c.moe_intermediate_size);
    mlp(`${p}.mlp.shared_experts`, c.moe_intermediate_size * c.n_shared_experts);
  }
  norm('model.norm.weight', D);
  bf16('lm_head.weight', [c.vocab_size, D], embed);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c, null, 1));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}
