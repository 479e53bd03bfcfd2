/**
 * DeepSeek-V4 configuration and checkpoint layout (spec §2, §10.2, §11): the HF `config.json`
 * read into the names the forward pass uses, and the exact tensor set an official checkpoint of
 * that configuration holds (name, dtype, shape). The loader checks a checkpoint against this list
 * before reading a byte, so a missing tensor, a wrong shape or a scale of the wrong size is named.
 */
import type { DType } from '../tensor/dtype.js';
import { EMBED_DTYPES, expertScheme, storedBlock, storedRowBytes, type EmbedDtype, type ExpertScheme, type StoredBlock } from '../quantize/block-format.js';

export interface V4Config {
  readonly vocab: number;
  readonly dim: number;
  readonly layers: number;
  readonly mtpLayers: number;
  readonly hashLayers: number;
  readonly heads: number;
  readonly headDim: number;
  readonly ropeDim: number;
  readonly qLoraRank: number;
  readonly oGroups: number;
  readonly oLoraRank: number;
  readonly window: number;
  /** One per main layer, then one per MTP layer: 0 = sliding window only, 4 = CSA, else HCA. */
  readonly compressRatios: readonly number[];
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
  readonly swigluLimit: number;
  readonly hcMult: number;
  readonly hcIters: number;
  readonly hcEps: number;
  readonly eps: number;
  readonly contextLength: number;
  readonly bos: number;
  readonly eos: number;
  /** How routed experts are stored: official FP4 (absent), or a minke quantisation (src/quantize). */
  readonly expertDtype?: ExpertScheme;
  /** How embed.weight and head.weight are stored: BF16 as shipped (absent), or minke's Q8_0. */
  readonly embedDtype?: EmbedDtype;
  /** The V4-DSpark form (deepseek-v41.md §8.2): DSpark draft stages in place of the MTP block (mtpLayers 0). */
  readonly dspark?: V4Dspark;
}

/**
 * DSpark draft stages of a V4-DSpark checkpoint (deepseek-v41.md §8.2, from a public port's notes;
 * not verified against official code). The stages are V4 blocks with window-only attention.
 */
export interface V4Dspark extends DsparkConfig {
  /** Stages `mtp.0 … mtp.S−1`: counted from the checkpoint's tensor names (v4WithDsparkStages). */
  readonly stages: number;
}

/** A DSpark draft head's settings (`dspark_*` keys), in V4.1 and in the V4-DSpark form. */
export interface DsparkConfig {
  /** γ: tokens per draft block. */
  readonly blockSize: number;
  readonly noiseToken: number;
  /** Main layers whose streams (mean over them) feed main_proj: block inputs in V4.1, outputs in V4-DSpark. */
  readonly targetLayers: readonly number[];
  readonly markovRank: number;
  /** Routed experts of each stage and how many a token takes. */
  readonly experts: number;
  readonly topK: number;
}

/** Keys of later revisions (V4.1) whose meaning this forward pass does not implement (§15). */
const LATER_REVISION_KEYS = ['kv_source_layer_ids', 'index_source_layer_ids', 'engram_layer_ids', 'engram_config', 'vision_config'];
/** Keys of the V4-DSpark form (deepseek-v41.md §8.2): any one of them makes the checkpoint one. */
const DSPARK_KEYS = ['dspark_block_size', 'dspark_noise_token_id', 'dspark_target_layer_ids', 'dspark_markov_rank'];

/** The V4 config from an HF `config.json` object; `where` names the file in errors. */
export function v4ConfigFromHF(json: Record<string, unknown>, where: string): V4Config {
  const fail = (msg: string): never => { throw new Error(`${where}: ${msg}`); };
  const later = LATER_REVISION_KEYS.filter((k) => k in json);
  if (later.length) fail(`has ${later.join(', ')}: a later DeepSeek revision (V4.1) that this DeepSeek-V4 implementation does not run`);
  const int = (key: string, dflt?: number): number => {
    const v = json[key] ?? dflt;
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0)) fail(`${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  // Sizes the tensor layout multiplies or divides by.
  const pos = (key: string): number => {
    const v = int(key);
    if (v === 0) fail(`${key} must be at least 1, got 0`);
    return v;
  };
  const num = (obj: Record<string, unknown>, key: string, dflt?: number): number => {
    const v = obj[key] ?? dflt;
    if (!(typeof v === 'number' && Number.isFinite(v))) fail(`${key} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const str = (key: string, want: string) => {
    if (key in json && json[key] !== want) fail(`${key} is ${JSON.stringify(json[key])}; DeepSeek-V4 uses '${want}'`);
  };
  str('scoring_func', 'sqrtsoftplus');
  str('hidden_act', 'silu');
  const expertDtype = expertScheme(json.expert_dtype, 'fp4', fail);
  const embedDtype = (json.embed_dtype ?? 'bf16') as EmbedDtype;
  if (!EMBED_DTYPES.includes(embedDtype)) fail(`embed_dtype ${JSON.stringify(json.embed_dtype)} is not supported (${EMBED_DTYPES.join(', ')})`);
  if (int('n_shared_experts', 1) !== 1) fail('n_shared_experts must be 1');

  const layers = pos('num_hidden_layers');
  const nextn = int('num_nextn_predict_layers', 1);
  const ratios = json.compress_ratios;
  if (!Array.isArray(ratios) || ratios.length !== layers + nextn || !ratios.every((r) => Number.isInteger(r) && r >= 0)) {
    fail(`compress_ratios must list ${layers + nextn} non-negative integers (${layers} layers + ${nextn} MTP), got ${JSON.stringify(ratios)}`);
  }
  // V4-DSpark keeps num_nextn_predict_layers (1) while its mtp.* blocks are DSpark stages (§8.2).
  const isDspark = DSPARK_KEYS.some((k) => k in json);
  const mtpLayers = isDspark ? 0 : nextn;
  const rs = (json.rope_scaling ?? {}) as Record<string, unknown>;
  const c: V4Config = {
    vocab: pos('vocab_size'),
    dim: pos('hidden_size'),
    layers,
    mtpLayers,
    hashLayers: int('num_hash_layers', 0),
    heads: pos('num_attention_heads'),
    headDim: pos('head_dim'),
    ropeDim: pos('qk_rope_head_dim'),
    qLoraRank: pos('q_lora_rank'),
    oGroups: pos('o_groups'),
    oLoraRank: pos('o_lora_rank'),
    window: int('sliding_window'),
    compressRatios: ratios as number[],
    ropeTheta: num(json, 'rope_theta', 10000),
    // The reference's dataclass default (40000) is not the released value: always read it.
    compressRopeTheta: num(json, 'compress_rope_theta'),
    yarn: {
      factor: num(rs, 'factor', 1),
      originalContext: num(rs, 'original_max_position_embeddings', 0),
      betaFast: num(rs, 'beta_fast', 32),
      betaSlow: num(rs, 'beta_slow', 1),
    },
    indexHeads: pos('index_n_heads'),
    indexHeadDim: pos('index_head_dim'),
    indexTopk: int('index_topk'),
    experts: pos('n_routed_experts'),
    topK: int('num_experts_per_tok'),
    moeInter: pos('moe_intermediate_size'),
    routeScale: num(json, 'routed_scaling_factor', 1),
    swigluLimit: num(json, 'swiglu_limit', 0),
    hcMult: int('hc_mult'),
    hcIters: int('hc_sinkhorn_iters'),
    hcEps: num(json, 'hc_eps', 1e-6),
    eps: num(json, 'rms_norm_eps', 1e-6),
    contextLength: int('max_position_embeddings'),
    bos: int('bos_token_id', 0),
    eos: int('eos_token_id', 1),
    ...(expertDtype ? { expertDtype } : {}),
    ...(embedDtype !== 'bf16' ? { embedDtype } : {}),
  };
  if (c.ropeDim % 2 || c.ropeDim > c.headDim || c.ropeDim > c.indexHeadDim) fail(`qk_rope_head_dim ${c.ropeDim} must be even and fit head_dim ${c.headDim} and index_head_dim ${c.indexHeadDim}`);
  if (c.heads % c.oGroups) fail(`num_attention_heads ${c.heads} is not a multiple of o_groups ${c.oGroups}`);
  if (c.topK > c.experts || c.topK === 0) fail(`num_experts_per_tok ${c.topK} must be 1 … n_routed_experts ${c.experts}`);
  if (c.hashLayers > c.layers) fail(`num_hash_layers ${c.hashLayers} exceeds num_hidden_layers ${c.layers}`);
  if ((c.indexHeadDim & (c.indexHeadDim - 1)) !== 0) fail(`index_head_dim ${c.indexHeadDim} must be a power of two (Hadamard rotation)`);
  if ((ratios as number[]).some((r, i) => i >= layers && r !== 0)) fail('compress_ratios of MTP layers must be 0');
  if (c.hcMult < 1) fail('hc_mult must be at least 1');
  // FP4 experts: two codes per byte and one scale per 32 inputs along both of their input widths.
  if (c.dim % 32 || c.moeInter % 32) fail(`hidden_size ${c.dim} and moe_intermediate_size ${c.moeInter} must be multiples of 32 (FP4 scale blocks)`);
  if (isDspark) {
    const missing = DSPARK_KEYS.filter((k) => !(k in json));
    if (missing.length) fail(`has DSpark keys but not ${missing.join(', ')}`);
    const targets = json.dspark_target_layer_ids;
    if (!Array.isArray(targets) || targets.length === 0 || !targets.every((l) => Number.isInteger(l) && l >= 0 && l < layers) || new Set(targets).size !== targets.length) {
      fail(`dspark_target_layer_ids must list distinct main layers 0 … ${layers - 1}, got ${JSON.stringify(targets)}`);
    }
    const dspark: V4Dspark = {
      stages: Math.max(nextn, 1),
      blockSize: pos('dspark_block_size'),
      noiseToken: int('dspark_noise_token_id'),
      targetLayers: targets as number[],
      markovRank: pos('dspark_markov_rank'),
      // The stages route like the main layers unless the config says otherwise (§8.2: 256 top-6).
      experts: int('dspark_n_routed_experts', c.experts),
      topK: int('dspark_num_experts_per_tok', int('dspark_n_activated_experts', c.topK)),
    };
    if (dspark.noiseToken >= c.vocab) fail(`dspark_noise_token_id ${dspark.noiseToken} is outside the vocabulary (${c.vocab})`);
    return v4WithDsparkStages({ ...c, dspark }, dspark.stages, dspark.experts, where);
  }
  return c;
}

/**
 * A V4-DSpark config with `stages` draft stages of `experts` routed experts each: the checkpoint's
 * own counts (planV4 takes them from its tensor names), since num_nextn_predict_layers may stay 1.
 * The stages' compress ratios are 0 (window only).
 */
export function v4WithDsparkStages(c: V4Config, stages: number, experts: number, where: string): V4Config {
  const d = c.dspark;
  if (!d) throw new Error(`${where}: not a V4-DSpark config`);
  if (stages < 1) throw new Error(`${where}: a V4-DSpark config (dspark_* keys) but no DSpark stage (mtp.0 …) in the checkpoint`);
  if (d.topK === 0 || d.topK > experts) throw new Error(`${where}: DSpark stages route to top-${d.topK} of ${experts} experts`);
  const main = c.compressRatios.slice(0, c.layers);
  return { ...c, compressRatios: [...main, ...new Array<number>(stages).fill(0)], dspark: { ...d, stages, experts } };
}

export type LayerKind = 'sliding' | 'csa' | 'hca';

export function layerKind(ratio: number): LayerKind {
  return ratio === 0 ? 'sliding' : ratio === 4 ? 'csa' : 'hca';
}

export interface ExpectedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** A matrix minke quantize stored as u8 rows of blocks: the block type and [rows, cols] in elements. */
  readonly blocks?: { readonly block: StoredBlock; readonly rows: number; readonly cols: number };
}

const ceil128 = (n: number) => Math.ceil(n / 128);

/**
 * The tensors of one official checkpoint of configuration `c` (§11.2), in the order the official
 * files store them (embed, layers, MTP, then hc_head_*, head, norm). Files may order tensors
 * differently (spec testdata tiny_v4 is alphabetical): match by name.
 */
export function v4Tensors(c: V4Config): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, dtype: DType, shape: number[]) => out.push({ name, dtype, shape });
  const stored = (name: string, block: StoredBlock, rows: number, cols: number) => {
    out.push({ name, dtype: 'u8', shape: [rows, storedRowBytes(block, cols)], blocks: { block, rows, cols } });
  };
  const embedding = (name: string) => (c.embedDtype === 'q8_0' ? stored(name, 'q8_0', c.vocab, D) : add(name, 'bf16', [c.vocab, D]));
  const fp8 = (name: string, rows: number, cols: number) => {
    add(`${name}.weight`, 'f8_e4m3', [rows, cols]);
    add(`${name}.scale`, 'e8m0', [ceil128(rows), ceil128(cols)]);
  };
  const fp4 = (name: string, rows: number, cols: number) => {
    const q = c.expertDtype;
    if (q) return stored(`${name}.weight`, storedBlock(q, cols), rows, cols);
    add(`${name}.weight`, 'i8', [rows, cols / 2]);
    add(`${name}.scale`, 'e8m0', [rows, cols / 32]);
  };
  const D = c.dim, hcD = c.hcMult * D, mix = (2 + c.hcMult) * c.hcMult;
  // Output width d: head_dim for attention, index_head_dim for the indexer; ratio 4 overlaps (§6.4).
  const compressor = (p: string, ratio: number, d: number) => {
    const c2 = ratio === 4 ? 2 : 1;
    add(`${p}.ape`, 'f32', [ratio, c2 * d]);
    add(`${p}.norm.weight`, 'bf16', [d]);
    add(`${p}.wgate.weight`, 'bf16', [c2 * d, D]);
    add(`${p}.wkv.weight`, 'bf16', [c2 * d, D]);
  };
  const block = (p: string, index: number, experts = c.experts) => {
    const ratio = c.compressRatios[index];
    for (const s of ['attn', 'ffn']) {
      add(`${p}.hc_${s}_fn`, 'f32', [mix, hcD]);
      add(`${p}.hc_${s}_base`, 'f32', [mix]);
      add(`${p}.hc_${s}_scale`, 'f32', [3]);
    }
    add(`${p}.attn.attn_sink`, 'f32', [c.heads]);
    fp8(`${p}.attn.wq_a`, c.qLoraRank, D);
    fp8(`${p}.attn.wq_b`, c.heads * c.headDim, c.qLoraRank);
    add(`${p}.attn.q_norm.weight`, 'bf16', [c.qLoraRank]);
    fp8(`${p}.attn.wkv`, c.headDim, D);
    add(`${p}.attn.kv_norm.weight`, 'bf16', [c.headDim]);
    fp8(`${p}.attn.wo_a`, c.oGroups * c.oLoraRank, (c.heads / c.oGroups) * c.headDim);
    fp8(`${p}.attn.wo_b`, D, c.oGroups * c.oLoraRank);
    if (ratio > 0) compressor(`${p}.attn.compressor`, ratio, c.headDim);
    if (ratio === 4) {
      fp8(`${p}.attn.indexer.wq_b`, c.indexHeads * c.indexHeadDim, c.qLoraRank);
      add(`${p}.attn.indexer.weights_proj.weight`, 'bf16', [c.indexHeads, D]);
      compressor(`${p}.attn.indexer.compressor`, ratio, c.indexHeadDim);
    }
    add(`${p}.attn_norm.weight`, 'bf16', [D]);
    add(`${p}.ffn_norm.weight`, 'bf16', [D]);
    add(`${p}.ffn.gate.weight`, 'bf16', [experts, D]);
    // Hash routing in the first num_hash_layers main layers; MTP layers always score-route (§7.2).
    if (index < c.hashLayers) add(`${p}.ffn.gate.tid2eid`, 'i64', [c.vocab, c.topK]);
    else add(`${p}.ffn.gate.bias`, 'f32', [experts]);
    for (let e = 0; e < experts; e++) {
      fp4(`${p}.ffn.experts.${e}.w1`, c.moeInter, D);
      fp4(`${p}.ffn.experts.${e}.w2`, D, c.moeInter);
      fp4(`${p}.ffn.experts.${e}.w3`, c.moeInter, D);
    }
    fp8(`${p}.ffn.shared_experts.w1`, c.moeInter, D);
    fp8(`${p}.ffn.shared_experts.w2`, D, c.moeInter);
    fp8(`${p}.ffn.shared_experts.w3`, c.moeInter, D);
  };
  const head = (p: string) => {
    add(`${p}hc_head_fn`, 'f32', [c.hcMult, hcD]);
    add(`${p}hc_head_base`, 'f32', [c.hcMult]);
    add(`${p}hc_head_scale`, 'f32', [1]);
  };
  embedding('embed.weight');
  for (let l = 0; l < c.layers; l++) block(`layers.${l}`, l);
  for (let m = 0; m < c.mtpLayers; m++) {
    const p = `mtp.${m}`;
    block(p, c.layers + m);
    fp8(`${p}.e_proj`, D, D);
    fp8(`${p}.h_proj`, D, D);
    add(`${p}.enorm.weight`, 'bf16', [D]);
    add(`${p}.hnorm.weight`, 'bf16', [D]);
    add(`${p}.norm.weight`, 'bf16', [D]);
    head(`${p}.`);
  }
  // V4-DSpark stages (deepseek-v41.md §8.2): V4 blocks without MTP's e_proj/h_proj/enorm/hnorm;
  // main_proj on the first, the final norm, Markov head, confidence head and head mixer on the last.
  const S = c.dspark?.stages ?? 0;
  for (let s = 0; s < S; s++) {
    const p = `mtp.${s}`, d = c.dspark!;
    block(p, c.layers + s, d.experts);
    if (s === 0) {
      fp8(`${p}.main_proj`, D, d.targetLayers.length * D);
      add(`${p}.main_norm.weight`, 'bf16', [D]);
    }
    if (s === S - 1) {
      add(`${p}.norm.weight`, 'bf16', [D]);
      add(`${p}.markov_head.markov_w1.weight`, 'bf16', [c.vocab, d.markovRank]);
      add(`${p}.markov_head.markov_w2.weight`, 'bf16', [c.vocab, d.markovRank]);
      add(`${p}.confidence_head.proj.weight`, 'bf16', [1, D + d.markovRank]);
      head(`${p}.`);
    }
  }
  head('');
  embedding('head.weight');
  add('norm.weight', 'bf16', [D]);
  return out;
}

/** Whether a tensor is a routed expert's (read lazily, counted K/E towards active parameters). */
export function isRoutedExpert(name: string): boolean {
  return name.includes('.ffn.experts.');
}
