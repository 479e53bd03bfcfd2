/**
 * Test helper: the DeepSeek-V3 tiny fixture (official HF layout, FP8 + weight_scale_inv) exported to
 * a llama.cpp `deepseek2` GGUF the way llama.cpp's converter lays it out (conversion/deepseek.py,
 * DeepseekV2Model): tensors renamed, routed experts stacked into 3-D tensors, kv_b either whole
 * (`attn_kv_b`, files from before llama.cpp's MLA split) or split per head into `attn_k_b`
 * [H, r, nope] (B_k transposed) and `attn_v_b` [H, V, r] (current files), with the matching
 * key/value length keys, and the YaRN mscale as rope.scaling.yarn_log_multiplier = 0.1·mscale_all_dim.
 * Weights are dequantised to f32; routed experts optionally quantised to Q8_0.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GGUFEntry, GGUFWriteSpec, GGUFWriteTensor } from '../../src/formats/gguf-writer.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { dequantize, quantize } from '../../src/tensor/dequantize.js';
import { FP8_BLOCK_F32 } from '../../src/tensor/dtype.js';

export interface V3ExportOptions {
  /** 'whole': attn_kv_b (older files); 'split': attn_k_b + attn_v_b (current converter); 'both': all three. */
  readonly kvB: 'whole' | 'split' | 'both';
  readonly experts: 'f32' | 'q8_0';
  /** Type of attn_k_b / attn_v_b (default f32). */
  readonly kvBType?: 'f32' | 'q8_0';
  /** Also write the MTP layer as blk.{n_layers}.* with nextn_predict_layers 1. */
  readonly mtp?: boolean;
  /** Leave output.weight out (llama.cpp then uses token_embd); only for checkpoints whose lm_head is the embedding. */
  readonly tieOutput?: boolean;
}

/** The vocabulary tokenizer.ggml.* describes: 2 specials, the 256 byte symbols, 254 merges (512 entries). */
export const SPECIALS = ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>'];

/** GPT-2's byte → printable character map (byte-level BPE symbols). */
export function byteSymbols(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + extra++));
}

/** Merges: "Ġ" + each letter, then letter pairs, until the vocabulary has 512 entries. */
export function merges(): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const out = [...letters].map((l) => `Ġ ${l}`);
  for (const a of letters) for (const b of letters) if (out.length < 512 - 258) out.push(`${a} ${b}`);
  return out;
}

function tokenizerMetadata(): [string, GGUFEntry][] {
  const tokens = [...SPECIALS, ...byteSymbols(), ...merges().map((m) => m.replace(' ', ''))];
  return [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'deepseek-v3' }],
    ['tokenizer.ggml.tokens', { type: { array: 'string' }, value: tokens }],
    ['tokenizer.ggml.token_type', { type: { array: 'i32' }, value: tokens.map((_, i) => (i < SPECIALS.length ? 3 : 1)) }],
    ['tokenizer.ggml.merges', { type: { array: 'string' }, value: merges() }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ];
}

/** HF name suffix (after `model.layers.L.`) → llama.cpp's name after `blk.L.`. */
const LAYER_NAMES: readonly [RegExp, string][] = [
  [/^input_layernorm\.weight$/, 'attn_norm.weight'],
  [/^post_attention_layernorm\.weight$/, 'ffn_norm.weight'],
  [/^self_attn\.q_a_proj\.weight$/, 'attn_q_a.weight'],
  [/^self_attn\.q_a_layernorm\.weight$/, 'attn_q_a_norm.weight'],
  [/^self_attn\.q_b_proj\.weight$/, 'attn_q_b.weight'],
  [/^self_attn\.q_proj\.weight$/, 'attn_q.weight'],
  [/^self_attn\.kv_a_proj_with_mqa\.weight$/, 'attn_kv_a_mqa.weight'],
  [/^self_attn\.kv_a_layernorm\.weight$/, 'attn_kv_a_norm.weight'],
  [/^self_attn\.kv_b_proj\.weight$/, 'attn_kv_b.weight'],
  [/^self_attn\.o_proj\.weight$/, 'attn_output.weight'],
  [/^mlp\.(gate|up|down)_proj\.weight$/, 'ffn_$1.weight'],
  [/^mlp\.gate\.weight$/, 'ffn_gate_inp.weight'],
  [/^mlp\.gate\.e_score_correction_bias$/, 'exp_probs_b.bias'],
  [/^mlp\.shared_experts\.(gate|up|down)_proj\.weight$/, 'ffn_$1_shexp.weight'],
  // The MTP block's own tensors, as llama.cpp names NextN layers (src/llama-arch.cpp, LLM_TENSOR_NEXTN_*).
  [/^(embed_tokens|enorm|hnorm|eh_proj)\.weight$/, 'nextn.$1.weight'],
  [/^shared_head\.(norm|head)\.weight$/, 'nextn.shared_head_$1.weight'],
];

const f32Bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** The GGUF (metadata + tensors) of the fixture checkpoint at `fixture` in the chosen layout. */
export function v3GGUFSpec(fixture: string, opts: V3ExportOptions): GGUFWriteSpec {
  const raw = JSON.parse(fs.readFileSync(path.join(fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
  const cfg = raw as Record<string, number>; // the numeric keys (q_lora_rank may be null)
  const H = cfg.num_attention_heads, r = cfg.kv_lora_rank, nope = cfg.qk_nope_head_dim, V = cfg.v_head_dim, E = cfg.n_routed_experts;
  const layers = cfg.num_hidden_layers + (opts.mtp ? cfg.num_nextn_predict_layers : 0);
  const file = openSafetensors(fixture);
  try {
    /** Any stored tensor as f32, FP8 through its tile scales. */
    const f32 = (name: string): { values: Float32Array; shape: number[] } => {
      const t = file.tensors.get(name)!;
      const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
      const scale = `${name}_scale_inv`;
      const values = file.tensors.has(scale)
        ? dequantize(FP8_BLOCK_F32, file.read(name), rows, cols, file.read(scale))
        : dequantize({ dtype: t.dtype }, file.read(name), rows, cols);
      return { values, shape: [...t.shape] };
    };
    const tensors: GGUFWriteTensor[] = [];
    const add = (name: string, shape: number[], values: Float32Array) => tensors.push({ name, dtype: 'f32', shape, data: f32Bytes(values) });
    add('token_embd.weight', [cfg.vocab_size, cfg.hidden_size], f32('model.embed_tokens.weight').values);
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}.`, b = `blk.${l}.`;
      for (const name of file.tensors.keys()) {
        if (!name.startsWith(p) || name.endsWith('_scale_inv') || name.includes('.experts.')) continue;
        const rule = LAYER_NAMES.find(([re]) => re.test(name.slice(p.length)));
        if (!rule) throw new Error(`export: no GGUF name for ${name}`);
        const { values, shape } = f32(name);
        if (name.endsWith('kv_b_proj.weight') && opts.kvB !== 'whole') {
          // kv_b rows per head: nope key rows then V value rows, each of r inputs.
          const kb = new Float32Array(H * r * nope), vb = new Float32Array(H * V * r);
          for (let h = 0; h < H; h++) {
            for (let j = 0; j < nope; j++) for (let i = 0; i < r; i++) kb[h * r * nope + i * nope + j] = values[(h * (nope + V) + j) * r + i];
            for (let j = 0; j < V; j++) for (let i = 0; i < r; i++) vb[h * V * r + j * r + i] = values[(h * (nope + V) + nope + j) * r + i];
          }
          const kvType = opts.kvBType ?? 'f32';
          for (const [name, shape, v] of [[`${b}attn_k_b.weight`, [H, r, nope], kb], [`${b}attn_v_b.weight`, [H, V, r], vb]] as const) {
            if (kvType === 'f32') add(name, [...shape], v);
            else tensors.push({ name, dtype: kvType, shape, data: quantize({ dtype: kvType }, v, shape[0] * shape[1], shape[2]).data });
          }
          if (opts.kvB === 'split') continue;
        }
        add(b + name.slice(p.length).replace(rule[0], rule[1]), shape, values);
      }
      if (!file.tensors.has(`${p}mlp.experts.0.gate_proj.weight`)) continue;
      for (const w of ['gate', 'up', 'down']) {
        const per = Array.from({ length: E }, (_, e) => f32(`${p}mlp.experts.${e}.${w}_proj.weight`));
        const [rows, cols] = per[0].shape;
        const stacked = new Float32Array(E * rows * cols);
        per.forEach((x, e) => stacked.set(x.values, e * rows * cols));
        const name = `${b}ffn_${w}_exps.weight`, shape = [E, rows, cols];
        if (opts.experts === 'q8_0') tensors.push({ name, dtype: 'q8_0', shape, data: quantize({ dtype: 'q8_0' }, stacked, E * rows, cols).data });
        else add(name, shape, stacked);
      }
    }
    add('output_norm.weight', [cfg.hidden_size], f32('model.norm.weight').values);
    if (!opts.tieOutput) add('output.weight', [cfg.vocab_size, cfg.hidden_size], f32('lm_head.weight').values);

    const rs = raw.rope_scaling as Record<string, number>;
    const u32 = (value: number): GGUFEntry => ({ type: 'u32', value });
    const f32v = (value: number): GGUFEntry => ({ type: 'f32', value });
    const a = 'deepseek2';
    const metadata: [string, GGUFEntry][] = [
      ['general.architecture', { type: 'string', value: a }],
      ['general.name', { type: 'string', value: 'deepseek-v3-tiny' }],
      [`${a}.block_count`, u32(layers)],
      [`${a}.context_length`, u32(cfg.max_position_embeddings)],
      [`${a}.embedding_length`, u32(cfg.hidden_size)],
      [`${a}.feed_forward_length`, u32(cfg.intermediate_size)],
      [`${a}.attention.head_count`, u32(H)],
      [`${a}.attention.head_count_kv`, u32(1)],
      [`${a}.rope.freq_base`, f32v(cfg.rope_theta)],
      [`${a}.attention.layer_norm_rms_epsilon`, f32v(cfg.rms_norm_eps)],
      [`${a}.expert_used_count`, u32(cfg.num_experts_per_tok)],
      ...(cfg.n_group ? [[`${a}.expert_group_count`, u32(cfg.n_group)], [`${a}.expert_group_used_count`, u32(cfg.topk_group)]] as [string, GGUFEntry][] : []),
      [`${a}.expert_gating_func`, u32(raw.scoring_func === 'sigmoid' ? 2 : 1)],
      [`${a}.leading_dense_block_count`, u32(cfg.first_k_dense_replace)],
      [`${a}.vocab_size`, u32(cfg.vocab_size)],
      ...(cfg.q_lora_rank ? [[`${a}.attention.q_lora_rank`, u32(cfg.q_lora_rank)]] as [string, GGUFEntry][] : []),
      [`${a}.attention.kv_lora_rank`, u32(r)],
      ...(opts.kvB !== 'whole' ? [
        [`${a}.attention.key_length`, u32(r + cfg.qk_rope_head_dim)],
        [`${a}.attention.value_length`, u32(r)],
        [`${a}.attention.key_length_mla`, u32(nope + cfg.qk_rope_head_dim)],
        [`${a}.attention.value_length_mla`, u32(V)],
      ] as [string, GGUFEntry][] : [
        [`${a}.attention.key_length`, u32(nope + cfg.qk_rope_head_dim)],
        [`${a}.attention.value_length`, u32(V)],
      ] as [string, GGUFEntry][]),
      [`${a}.expert_feed_forward_length`, u32(cfg.moe_intermediate_size)],
      [`${a}.expert_count`, u32(E)],
      [`${a}.expert_shared_count`, u32(cfg.n_shared_experts)],
      [`${a}.expert_weights_scale`, f32v(cfg.routed_scaling_factor)],
      ...(cfg.norm_topk_prob ? [[`${a}.expert_weights_norm`, { type: 'bool', value: true }]] as [string, GGUFEntry][] : []),
      [`${a}.rope.dimension_count`, u32(cfg.qk_rope_head_dim)],
      [`${a}.rope.scaling.type`, { type: 'string', value: 'yarn' }],
      [`${a}.rope.scaling.factor`, f32v(rs.factor)],
      [`${a}.rope.scaling.original_context_length`, u32(rs.original_max_position_embeddings)],
      [`${a}.rope.scaling.yarn_log_multiplier`, f32v(0.1 * rs.mscale_all_dim)],
      ...(opts.mtp ? [[`${a}.nextn_predict_layers`, u32(cfg.num_nextn_predict_layers)]] as [string, GGUFEntry][] : []),
      ...tokenizerMetadata(),
    ];
    return { metadata, tensors };
  } finally {
    file.close();
  }
}
