/**
 * DeepSeek-V3 / R1 / V3.1 / V3.2 configuration and checkpoint layout (../../../shared/spec/deepseek-v3.md
 * §1, §5): the HF `config.json` read into the names the forward pass uses, and the tensors of the
 * official HF checkpoint (`model.` prefix, FP8 E4M3 with f32 `weight_scale_inv` 128×128 tiles).
 */
import type { DType } from '../tensor/dtype.js';
import type { ExpectedTensor } from './deepseek-v4-config.js';
import { expertScheme, storedBlock, storedRowBytes, type ExpertScheme } from '../quantize/block-format.js';

export interface V3Config {
  readonly vocab: number;
  readonly dim: number;
  readonly interDim: number;
  readonly moeInter: number;
  readonly layers: number;
  readonly denseLayers: number;
  readonly mtpLayers: number;
  readonly heads: number;
  /** 0 = a plain q projection (V2-Lite), else the low-rank q_a / q_b pair. */
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly nopeDim: number;
  readonly ropeDim: number;
  readonly vDim: number;
  readonly experts: number;
  readonly sharedExperts: number;
  readonly topK: number;
  readonly groups: number;
  readonly topkGroups: number;
  readonly scoring: 'sigmoid' | 'softmax';
  readonly routeScale: number;
  readonly normTopk: boolean;
  /** `topk_method: noaux_tc`: a selection bias (`e_score_correction_bias`) per expert. */
  readonly selectionBias: boolean;
  readonly eps: number;
  readonly ropeTheta: number;
  readonly yarn?: { readonly factor: number; readonly originalContext: number; readonly betaFast: number; readonly betaSlow: number; readonly mscale: number };
  readonly contextLength: number;
  /** V3.1+: activation scales are powers of two (`scale_fmt: ue8m0`). */
  readonly ue8m0: boolean;
  readonly bos: number;
  readonly eos: number;
  /** V3.2 (§4): the lightning indexer's heads, head width and keys kept per query; absent before V3.2. */
  readonly index?: { readonly heads: number; readonly headDim: number; readonly topk: number };
  /** How routed experts are stored: official FP8 (absent), or a minke quantisation (src/quantize). */
  readonly expertDtype?: ExpertScheme;
}

export function v3ConfigFromHF(json: Record<string, unknown>, where: string): V3Config {
  const fail = (msg: string): never => { throw new Error(`${where}: ${msg}`); };
  const int = (key: string, dflt?: number): number => {
    const v = json[key] ?? dflt;
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0)) fail(`${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (obj: Record<string, unknown>, key: string, dflt?: number): number => {
    const v = obj[key] ?? dflt;
    if (!(typeof v === 'number' && Number.isFinite(v))) fail(`${key} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const scoring = json.scoring_func ?? 'softmax';
  if (scoring !== 'sigmoid' && scoring !== 'softmax') fail(`scoring_func ${JSON.stringify(scoring)} is not sigmoid or softmax`);
  const rs = json.rope_scaling as Record<string, unknown> | null | undefined;
  const q = json.quantization_config as Record<string, unknown> | undefined;
  const expertDtype = expertScheme(json.expert_dtype, 'fp8', fail);
  const c: V3Config = {
    ...(expertDtype ? { expertDtype } : {}),
    vocab: int('vocab_size'),
    dim: int('hidden_size'),
    interDim: int('intermediate_size'),
    moeInter: int('moe_intermediate_size'),
    layers: int('num_hidden_layers'),
    denseLayers: int('first_k_dense_replace', 0),
    mtpLayers: int('num_nextn_predict_layers', 0),
    heads: int('num_attention_heads'),
    qLoraRank: json.q_lora_rank == null ? 0 : int('q_lora_rank'),
    kvLoraRank: int('kv_lora_rank'),
    nopeDim: int('qk_nope_head_dim'),
    ropeDim: int('qk_rope_head_dim'),
    vDim: int('v_head_dim'),
    experts: int('n_routed_experts'),
    sharedExperts: int('n_shared_experts', 0),
    topK: int('num_experts_per_tok'),
    groups: int('n_group', 1),
    topkGroups: int('topk_group', 1),
    scoring: scoring as 'sigmoid' | 'softmax',
    routeScale: num(json, 'routed_scaling_factor', 1),
    normTopk: json.norm_topk_prob !== false,
    selectionBias: json.topk_method === 'noaux_tc',
    eps: num(json, 'rms_norm_eps', 1e-6),
    ropeTheta: num(json, 'rope_theta', 10000),
    yarn: rs && rs.type === 'yarn' ? {
      factor: num(rs, 'factor'), originalContext: num(rs, 'original_max_position_embeddings'),
      betaFast: num(rs, 'beta_fast', 32), betaSlow: num(rs, 'beta_slow', 1), mscale: num(rs, 'mscale', 1),
    } : undefined,
    contextLength: int('max_position_embeddings'),
    ue8m0: q?.scale_fmt === 'ue8m0',
    bos: int('bos_token_id', 0),
    eos: int('eos_token_id', 1),
    ...('index_topk' in json || json.model_type === 'deepseek_v32'
      ? { index: { heads: int('index_n_heads'), headDim: int('index_head_dim'), topk: int('index_topk') } }
      : {}),
  };
  if (rs && rs.type !== 'yarn') fail(`rope_scaling type ${JSON.stringify(rs.type)} is not supported (DeepSeek-V3 uses yarn)`);
  if (c.experts % c.groups) fail(`n_routed_experts ${c.experts} is not a multiple of n_group ${c.groups}`);
  if (c.topkGroups > c.groups) fail(`topk_group ${c.topkGroups} exceeds n_group ${c.groups}`);
  if (c.topK > c.experts || c.topK === 0) fail(`num_experts_per_tok ${c.topK} must be 1 … n_routed_experts ${c.experts}`);
  if (c.denseLayers > c.layers) fail(`first_k_dense_replace ${c.denseLayers} exceeds num_hidden_layers ${c.layers}`);
  if (c.ropeDim % 2) fail(`qk_rope_head_dim ${c.ropeDim} must be even`);
  if (c.index) {
    const i = c.index;
    if (!c.qLoraRank) fail('DeepSeek-V3.2 needs q_lora_rank: the indexer reads the normalised q_a output');
    // The reference's fp8_index kernel takes one FP8 scale per 128-value head vector (§4).
    if (i.headDim !== 128) fail(`index_head_dim ${i.headDim} is not 128 (one FP8 block and one 128-point Hadamard per indexer head)`);
    if (c.ropeDim > i.headDim) fail(`qk_rope_head_dim ${c.ropeDim} exceeds index_head_dim ${i.headDim}`);
    if (i.heads === 0 || i.topk === 0) fail(`index_n_heads and index_topk must be positive, got ${i.heads} and ${i.topk}`);
  }
  return c;
}

/** HF names of one decoder layer's tensors, `model.layers.L.` prefix included. */
export function v3LayerPrefix(l: number): string {
  return `model.layers.${l}`;
}

/** The tensors of an official HF V3 checkpoint of configuration `c`; `fp8` lists which are FP8 + weight_scale_inv. */
export function v3Tensors(c: V3Config): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, dtype: DType, shape: number[]) => out.push({ name, dtype, shape });
  const fp8 = (name: string, rows: number, cols: number) => {
    add(`${name}.weight`, 'f8_e4m3', [rows, cols]);
    add(`${name}.weight_scale_inv`, 'f32', [Math.ceil(rows / 128), Math.ceil(cols / 128)]);
  };
  const D = c.dim, H = c.heads, qk = c.nopeDim + c.ropeDim;
  const mlp = (p: string, inter: number) => {
    fp8(`${p}.gate_proj`, inter, D);
    fp8(`${p}.up_proj`, inter, D);
    fp8(`${p}.down_proj`, D, inter);
  };
  // Routed experts minke quantize stored as u8 rows of blocks (src/quantize/block-format.ts).
  const stored = (name: string, scheme: ExpertScheme, rows: number, cols: number) => {
    const block = storedBlock(scheme, cols);
    out.push({ name, dtype: 'u8', shape: [rows, storedRowBytes(block, cols)], blocks: { block, rows, cols } });
  };
  const expertMlp = (p: string, scheme: ExpertScheme) => {
    stored(`${p}.gate_proj.weight`, scheme, c.moeInter, D);
    stored(`${p}.up_proj.weight`, scheme, c.moeInter, D);
    stored(`${p}.down_proj.weight`, scheme, D, c.moeInter);
  };
  const layer = (l: number) => {
    const p = v3LayerPrefix(l);
    add(`${p}.input_layernorm.weight`, 'bf16', [D]);
    add(`${p}.post_attention_layernorm.weight`, 'bf16', [D]);
    const a = `${p}.self_attn`;
    if (c.qLoraRank) {
      fp8(`${a}.q_a_proj`, c.qLoraRank, D);
      add(`${a}.q_a_layernorm.weight`, 'bf16', [c.qLoraRank]);
      fp8(`${a}.q_b_proj`, H * qk, c.qLoraRank);
    } else {
      fp8(`${a}.q_proj`, H * qk, D);
    }
    fp8(`${a}.kv_a_proj_with_mqa`, c.kvLoraRank + c.ropeDim, D);
    add(`${a}.kv_a_layernorm.weight`, 'bf16', [c.kvLoraRank]);
    fp8(`${a}.kv_b_proj`, H * (c.nopeDim + c.vDim), c.kvLoraRank);
    fp8(`${a}.o_proj`, D, H * c.vDim);
    if (c.index) {
      const i = c.index;
      fp8(`${a}.indexer.wq_b`, i.heads * i.headDim, c.qLoraRank);
      fp8(`${a}.indexer.wk`, i.headDim, D);
      add(`${a}.indexer.k_norm.weight`, 'bf16', [i.headDim]);
      add(`${a}.indexer.k_norm.bias`, 'bf16', [i.headDim]);
      add(`${a}.indexer.weights_proj.weight`, 'bf16', [i.heads, D]);
    }
    if (l < c.denseLayers) {
      mlp(`${p}.mlp`, c.interDim);
    } else {
      add(`${p}.mlp.gate.weight`, 'bf16', [c.experts, D]);
      if (c.selectionBias) add(`${p}.mlp.gate.e_score_correction_bias`, 'f32', [c.experts]);
      for (let e = 0; e < c.experts; e++) {
        if (c.expertDtype) expertMlp(`${p}.mlp.experts.${e}`, c.expertDtype);
        else mlp(`${p}.mlp.experts.${e}`, c.moeInter);
      }
      if (c.sharedExperts) mlp(`${p}.mlp.shared_experts`, c.moeInter * c.sharedExperts);
    }
  };
  add('model.embed_tokens.weight', 'bf16', [c.vocab, D]);
  for (let l = 0; l < c.layers; l++) layer(l);
  add('model.norm.weight', 'bf16', [D]);
  add('lm_head.weight', 'bf16', [c.vocab, D]);
  return out;
}
