/**
 * DeepSeek-V4.1 configuration and checkpoint layout (../../../shared/spec/deepseek-v41.md §2, §11):
 * the official flat `inference/config.json` (ModelArgs names) or the nested Hugging Face form
 * (`text_config`, `vision_config`) read into the names the forward pass uses, and the exact tensor
 * set an official checkpoint of that configuration holds.
 */
import type { DType } from '../tensor/dtype.js';
import type { EngramConfig } from './engram.js';
import type { DsparkConfig, ExpectedTensor } from './deepseek-v4-config.js';

export interface V41Config {
  readonly vocab: number;
  readonly dim: number;
  readonly layers: number;
  /** DSpark draft stages (`n_mtp_layers`). */
  readonly stages: number;
  readonly heads: number;
  readonly headDim: number;
  readonly ropeDim: number;
  readonly qLoraRank: number;
  readonly oGroups: number;
  readonly oLoraRank: number;
  readonly window: number;
  /** One per main layer, then one per draft stage: 0 = window only, 2 or 1 = CSA2 (§6.3). */
  readonly compressRatios: readonly number[];
  readonly kvSourceLayers: readonly number[];
  readonly indexSourceLayers: readonly number[];
  readonly candidate: { readonly layer: number; readonly topBlocks: number; readonly blockSize: number };
  readonly ropeTheta: number;
  readonly compressRopeTheta: number;
  readonly yarn: { readonly factor: number; readonly originalContext: number; readonly betaFast: number; readonly betaSlow: number };
  readonly indexHeads: number;
  readonly indexHeadDim: number;
  readonly indexTopk: number;
  readonly experts: number;
  readonly topK: number;
  readonly moeInter: number;
  readonly routeScale: number;
  readonly gateTemp: number;
  readonly swigluLimit: number;
  readonly hcMult: number;
  readonly hcIters: number;
  readonly hcEps: number;
  readonly eps: number;
  readonly engram: EngramConfig;
  readonly dspark: DsparkConfig;
  /**
   * The vision tower's layer count (0 = text only). The tower is not implemented: its weights are
   * checked to be there but not read, and the image-span routing bias is loaded for when it is.
   */
  readonly visionLayers: number;
  readonly imageTokenId: number;
  readonly contextLength: number;
  readonly bos: number;
  readonly eos: number;
}

/** Flat ModelArgs key ← Hugging Face key, where they differ (§2). */
const HF_NAMES: Record<string, string> = {
  dim: 'hidden_size', n_layers: 'num_hidden_layers', n_heads: 'num_attention_heads', rope_head_dim: 'qk_rope_head_dim',
  n_activated_experts: 'num_experts_per_tok', moe_inter_dim: 'moe_intermediate_size', score_func: 'scoring_func',
  route_scale: 'routed_scaling_factor', norm_eps: 'rms_norm_eps', window_size: 'sliding_window',
  kv_source_layers: 'kv_source_layer_ids', index_source_layers: 'index_source_layer_ids',
  candidate_source_layer: 'candidate_source_layer_id', engram_pad_id: 'engram_pad_token_id',
  n_mtp_layers: 'num_nextn_predict_layers', dspark_n_activated_experts: 'dspark_num_experts_per_tok',
  max_seq_len: 'max_position_embeddings',
};
const ROPE_SCALING: Record<string, string> = {
  rope_factor: 'factor', original_seq_len: 'original_max_position_embeddings', beta_fast: 'beta_fast', beta_slow: 'beta_slow',
};

/**
 * Tensors of the vision path that text-only inference does not read (§9A, §11): the tower, the
 * aligner, the image delimiter vectors, and the draft stages' image routing bias.
 */
export function isVisionOnly(name: string): boolean {
  return /^(vision\.|aligner\.|image_(start|end|newline)$)|^mtp\.\d+\.ffn\.gate\.bias_vl$/.test(name);
}

/** Whether a config.json object is DeepSeek-V4.1's, in either form. */
export function isV41Config(json: Record<string, unknown>): boolean {
  const text = (json.text_config ?? json) as Record<string, unknown>;
  return ('kv_source_layers' in text || 'kv_source_layer_ids' in text) && ('engram_layer_ids' in text || 'dspark_block_size' in text);
}

/** The V4.1 config from either form of config.json; `where` names the file in errors. */
export function v41ConfigFromJson(json: Record<string, unknown>, where: string): V41Config {
  const fail = (msg: string): never => { throw new Error(`${where}: ${msg}`); };
  const text = (json.text_config ?? json) as Record<string, unknown>;
  const rs = (text.rope_scaling ?? {}) as Record<string, unknown>;
  const raw = (key: string): unknown => {
    if (key in text) return text[key];
    if (HF_NAMES[key] && HF_NAMES[key] in text) return text[HF_NAMES[key]];
    if (ROPE_SCALING[key] && ROPE_SCALING[key] in rs) return rs[ROPE_SCALING[key]];
    if (key in json) return json[key];
    return undefined;
  };
  const num = (key: string, dflt?: number): number => {
    const v = raw(key) ?? dflt;
    if (!(typeof v === 'number' && Number.isFinite(v))) fail(`${key} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const int = (key: string, dflt?: number): number => {
    const v = num(key, dflt);
    if (!(Number.isInteger(v) && v >= 0)) fail(`${key} must be a non-negative integer, got ${v}`);
    return v;
  };
  const pos = (key: string, dflt?: number): number => {
    const v = int(key, dflt);
    if (v === 0) fail(`${key} must be at least 1, got 0`);
    return v;
  };
  const ints = (key: string): number[] => {
    const v = raw(key);
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) fail(`${key} must be a list of non-negative integers, got ${JSON.stringify(v)}`);
    return v as number[];
  };
  const score = raw('score_func') ?? 'sqrtsoftplus';
  if (score !== 'sqrtsoftplus') fail(`score_func is ${JSON.stringify(score)}; DeepSeek-V4.1 uses 'sqrtsoftplus'`);
  if (int('n_shared_experts', 1) !== 1) fail('n_shared_experts must be 1');
  for (const [key, want] of [['dtype', 'fp8'], ['expert_dtype', 'fp4']] as const) {
    const v = raw(key);
    if (v !== undefined && v !== want) fail(`${key} is ${JSON.stringify(v)}; only the released ${want} checkpoints are supported`);
  }

  const layers = pos('n_layers'), stages = int('n_mtp_layers', 0);
  const ratios = ints('compress_ratios');
  if (ratios.length < layers + stages) fail(`compress_ratios lists ${ratios.length} layers, fewer than ${layers} main + ${stages} draft stages`);
  const c: V41Config = {
    vocab: pos('vocab_size'),
    dim: pos('dim'),
    layers,
    stages,
    heads: pos('n_heads'),
    headDim: pos('head_dim'),
    ropeDim: pos('rope_head_dim'),
    qLoraRank: pos('q_lora_rank'),
    oGroups: pos('o_groups'),
    oLoraRank: pos('o_lora_rank'),
    window: pos('window_size'),
    compressRatios: ratios.slice(0, layers + stages),
    kvSourceLayers: ints('kv_source_layers'),
    indexSourceLayers: ints('index_source_layers'),
    candidate: { layer: int('candidate_source_layer'), topBlocks: pos('candidate_topk_blocks'), blockSize: pos('candidate_block_size') },
    ropeTheta: num('rope_theta', 10000),
    compressRopeTheta: num('compress_rope_theta'),
    yarn: { factor: num('rope_factor', 1), originalContext: num('original_seq_len', 0), betaFast: num('beta_fast', 32), betaSlow: num('beta_slow', 1) },
    indexHeads: pos('index_n_heads'),
    indexHeadDim: pos('index_head_dim'),
    indexTopk: pos('index_topk'),
    experts: pos('n_routed_experts'),
    topK: pos('n_activated_experts'),
    moeInter: pos('moe_inter_dim'),
    routeScale: num('route_scale', 1),
    gateTemp: num('gate_temp', 1),
    swigluLimit: num('swiglu_limit', 0),
    hcMult: pos('hc_mult'),
    hcIters: pos('hc_sinkhorn_iters'),
    hcEps: num('hc_eps', 1e-6),
    eps: num('norm_eps', 1e-20),
    engram: {
      layerIds: ints('engram_layer_ids'),
      vocabSize: pos('engram_vocab_size'),
      numEmbeddings: ints('engram_num_embeddings'),
      maxNgram: pos('engram_max_ngram_size'),
      heads: pos('engram_n_heads'),
      headDim: pos('engram_head_dim'),
      padId: int('engram_pad_id'),
      compressedVocab: pos('engram_compressed_vocab_size'),
    },
    dspark: {
      blockSize: stages ? pos('dspark_block_size') : 0,
      noiseToken: stages ? int('dspark_noise_token_id') : 0,
      targetLayers: stages ? ints('dspark_target_layer_ids') : [],
      markovRank: stages ? pos('dspark_markov_rank') : 0,
      experts: stages ? pos('dspark_n_routed_experts') : 0,
      topK: stages ? pos('dspark_n_activated_experts') : 0,
    },
    visionLayers: int('vision_n_layers', 0) || int('num_hidden_layers_vision', 0),
    imageTokenId: int('image_token_id', 129264),
    contextLength: pos('max_seq_len', 1 << 20),
    bos: int('bos_token_id', 0),
    eos: int('eos_token_id', 1),
  };
  checkConfig(c, fail);
  return c;
}

function checkConfig(c: V41Config, fail: (msg: string) => never): void {
  const main = (what: string, ids: readonly number[]) => {
    for (const l of ids) if (l >= c.layers) fail(`${what} names layer ${l}, but the model has ${c.layers} main layers`);
  };
  main('kv_source_layers', c.kvSourceLayers);
  main('index_source_layers', c.indexSourceLayers);
  main('engram_layer_ids', c.engram.layerIds);
  main('dspark_target_layer_ids', c.dspark.targetLayers);
  for (let l = 0; l < c.layers; l++) {
    const r = c.compressRatios[l];
    if (r > 2) fail(`compress_ratios[${l}] is ${r}; CSA2 layers have ratio 0, 1 or 2`);
    if (r === 0) continue;
    const kv = kvSourceOf(c, l), idx = indexSourceOf(c, l);
    if (kv < 0) fail(`layer ${l} (ratio ${r}) has no KV-source layer at or before it`);
    if (idx < 0) fail(`layer ${l} (ratio ${r}) has no index-source layer at or before it`);
    if (c.compressRatios[kv] !== r) fail(`layer ${l} has ratio ${r} but its KV source, layer ${kv}, has ratio ${c.compressRatios[kv]}`);
  }
  for (const l of c.indexSourceLayers) {
    if (c.compressRatios[l] === 0) fail(`index-source layer ${l} has compress ratio 0`);
    if (kvSourceOf(c, l) < c.candidate.layer && l > c.candidate.layer && c.compressRatios[l] === 1) fail(`re-index layer ${l} reads keys before the candidate source`);
  }
  for (let s = c.layers; s < c.layers + c.stages; s++) if (c.compressRatios[s] !== 0) fail(`compress_ratios[${s}] of a draft stage must be 0`);
  if (c.ropeDim % 2 || c.ropeDim > c.headDim || c.ropeDim > c.indexHeadDim) fail(`rope_head_dim ${c.ropeDim} must be even and fit head_dim ${c.headDim} and index_head_dim ${c.indexHeadDim}`);
  if (c.heads % c.oGroups) fail(`n_heads ${c.heads} is not a multiple of o_groups ${c.oGroups}`);
  if (c.topK > c.experts) fail(`n_activated_experts ${c.topK} exceeds n_routed_experts ${c.experts}`);
  if (c.stages && c.dspark.topK > c.dspark.experts) fail(`dspark_n_activated_experts ${c.dspark.topK} exceeds dspark_n_routed_experts ${c.dspark.experts}`);
  if (c.engram.numEmbeddings.length !== c.engram.layerIds.length) fail(`engram_num_embeddings lists ${c.engram.numEmbeddings.length} tables for ${c.engram.layerIds.length} Engram layers`);
  // 32-wide blocks: FP8 activation rounding, FP4 expert scales, Q4e (16) of the compressed KV.
  if (c.dim % 32 || c.moeInter % 32 || c.headDim % 32 || c.indexHeadDim % 32 || c.engram.headDim % 32) {
    fail(`dim ${c.dim}, moe_inter_dim ${c.moeInter}, head_dim ${c.headDim}, index_head_dim ${c.indexHeadDim} and engram_head_dim ${c.engram.headDim} must be multiples of 32`);
  }
}

/** The most recent layer ≤ l of `ids` (−1 when none). */
function latest(ids: readonly number[], l: number): number {
  let best = -1;
  for (const i of ids) if (i <= l && i > best) best = i;
  return best;
}

/** The KV-source layer whose compressed entries layer l attends (§6.3). */
export const kvSourceOf = (c: V41Config, l: number): number => latest(c.kvSourceLayers, l);
/** The index-source layer whose top-k layer l uses (§6.3). */
export const indexSourceOf = (c: V41Config, l: number): number => latest(c.indexSourceLayers, l);

/** The tensors of one official V4.1 checkpoint of configuration `c` (§11). */
export function v41Tensors(c: V41Config): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, dtype: DType, shape: number[]) => out.push({ name, dtype, shape });
  const c32 = (n: number) => Math.ceil(n / 32);
  const fp8 = (name: string, rows: number, cols: number) => {
    add(`${name}.weight`, 'f8_e4m3', [rows, cols]);
    add(`${name}.scale`, 'e8m0', [c32(rows), c32(cols)]);
  };
  const fp4 = (name: string, rows: number, cols: number) => {
    add(`${name}.weight`, 'i8', [rows, cols / 2]);
    add(`${name}.scale`, 'e8m0', [rows, cols / 32]);
  };
  const D = c.dim, hcD = c.hcMult * D, mix = (2 + c.hcMult) * c.hcMult;
  const block = (p: string, index: number, experts: number) => {
    const ratio = c.compressRatios[index], main = index < c.layers;
    for (const s of ['attn', 'ffn']) {
      add(`${p}.hc_${s}_fn`, 'f32', [mix, hcD]);
      add(`${p}.hc_${s}_base`, 'f32', [mix]);
      add(`${p}.hc_${s}_scale`, 'f32', [3]);
    }
    add(`${p}.attn.attn_sink`, 'f32', [c.heads]);
    fp8(`${p}.attn.wq_a`, c.qLoraRank, D);
    add(`${p}.attn.q_norm.weight`, 'bf16', [c.qLoraRank]);
    fp8(`${p}.attn.wq_b`, c.heads * c.headDim, c.qLoraRank);
    fp8(`${p}.attn.wkv`, c.headDim, D);
    add(`${p}.attn.kv_norm.weight`, 'bf16', [c.headDim]);
    fp8(`${p}.attn.wo_a`, c.oGroups * c.oLoraRank, (c.heads / c.oGroups) * c.headDim);
    fp8(`${p}.attn.wo_b`, D, c.oGroups * c.oLoraRank);
    if (main && ratio > 0) {
      if (c.kvSourceLayers.includes(index)) {
        add(`${p}.attn.compressor.wkv.weight`, 'bf16', [c.headDim, D]);
        add(`${p}.attn.compressor.norm.weight`, 'bf16', [c.headDim]);
        if (ratio > 1) add(`${p}.attn.compressor.wgate.weight`, 'bf16', [c.headDim, D]);
      }
      if (c.indexSourceLayers.includes(index)) {
        fp8(`${p}.attn.indexer.wq_b`, c.indexHeads * c.indexHeadDim, c.qLoraRank);
        add(`${p}.attn.indexer.weights_proj.weight`, 'bf16', [c.indexHeads, D]);
        if (c.kvSourceLayers.includes(index)) {
          add(`${p}.attn.indexer.wk.weight`, 'bf16', [c.indexHeadDim, c.headDim]);
          add(`${p}.attn.indexer.k_norm.weight`, 'bf16', [c.indexHeadDim]);
        }
      }
    }
    add(`${p}.attn_norm.weight`, 'bf16', [D]);
    add(`${p}.ffn_norm.weight`, 'bf16', [D]);
    add(`${p}.ffn.gate.weight`, 'bf16', [experts, D]);
    add(`${p}.ffn.gate.bias`, 'f32', [experts]);
    if (c.visionLayers && main) add(`${p}.ffn.gate.bias_vl`, 'f32', [experts]);
    for (let e = 0; e < experts; e++) {
      fp4(`${p}.ffn.experts.${e}.w1`, c.moeInter, D);
      fp4(`${p}.ffn.experts.${e}.w2`, D, c.moeInter);
      fp4(`${p}.ffn.experts.${e}.w3`, c.moeInter, D);
    }
    fp8(`${p}.ffn.shared_experts.w1`, c.moeInter, D);
    fp8(`${p}.ffn.shared_experts.w2`, D, c.moeInter);
    fp8(`${p}.ffn.shared_experts.w3`, c.moeInter, D);
    const e = c.engram.layerIds.indexOf(index);
    if (main && e >= 0) {
      const E = c.engram, cols = (E.maxNgram - 1) * E.heads * E.headDim;
      add(`${p}.engram.embed.weight`, 'f8_e4m3', [E.numEmbeddings[e], E.headDim]);
      add(`${p}.engram.embed.scale`, 'e8m0', [E.numEmbeddings[e], E.headDim / 32]);
      fp8(`${p}.engram.wkv`, D * (c.hcMult + 1), cols);
      add(`${p}.engram.q_weight`, 'bf16', [c.hcMult, D]);
      add(`${p}.engram.k_weight`, 'bf16', [c.hcMult, D]);
    }
  };
  add('embed.weight', 'bf16', [c.vocab, D]);
  for (let l = 0; l < c.layers; l++) block(`layers.${l}`, l, c.experts);
  for (let s = 0; s < c.stages; s++) {
    const p = `mtp.${s}`;
    block(p, c.layers + s, c.dspark.experts);
    if (s === 0) {
      fp8(`${p}.main_proj`, D, D * c.dspark.targetLayers.length);
      add(`${p}.main_norm.weight`, 'bf16', [D]);
    }
    if (s === c.stages - 1) {
      add(`${p}.norm.weight`, 'bf16', [D]);
      add(`${p}.markov_head.embed.weight`, 'bf16', [c.vocab, c.dspark.markovRank]);
      add(`${p}.markov_head.head.weight`, 'bf16', [c.vocab, c.dspark.markovRank]);
      add(`${p}.confidence_head.proj.weight`, 'bf16', [1, D + c.dspark.markovRank]);
    }
  }
  add('norm.weight', 'bf16', [D]);
  add('head.weight', 'bf16', [c.vocab, D]);
  return out;
}
