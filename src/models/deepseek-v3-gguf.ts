/**
 * DeepSeek-V2 / V3 / R1 / V3.1 from a llama.cpp GGUF of architecture `deepseek2`: the `deepseek2.*`
 * metadata read into a V3Config, and the tensors by llama.cpp's names as a V3TensorSource for the
 * shared assembly (deepseek-v3-load.ts). Shapes below are row-major (GGUF's ne reversed).
 *
 *   token_embd [vocab, D], output_norm [D], output [vocab, D] (absent: tied to token_embd)
 *   blk.N.attn_norm / ffn_norm [D]
 *   blk.N.attn_q_a [q_lora, D], attn_q_a_norm [q_lora], attn_q_b [H·(nope+rope), q_lora]
 *         or attn_q [H·(nope+rope), D] (q_lora_rank absent or 0: V2-Lite)
 *   blk.N.attn_kv_a_mqa [r + rope, D], attn_kv_a_norm [r]
 *   blk.N.attn_kv_b [H·(nope+V), r]                 (files converted before llama.cpp's MLA split)
 *      or attn_k_b [H, r, nope] (B_kᵀ per head) and attn_v_b [H, V, r]   (current converter; read
 *      in preference where a file holds all three)
 *   blk.N.attn_output [D, H·V]
 *   dense layers (N < leading_dense_block_count): ffn_gate / ffn_up [inter, D], ffn_down [D, inter]
 *   MoE layers: ffn_gate_inp [E, D], exp_probs_b.bias [E] (noaux_tc selection bias, optional),
 *         ffn_gate_exps / ffn_up_exps [E, moe_inter, D], ffn_down_exps [E, D, moe_inter] (all experts
 *         stacked; expert e is the e-th slice), ffn_{gate,up,down}_shexp [S·moe_inter, D] / [D, S·moe_inter]
 *   blk.N for N = block_count − nextn_predict_layers: the MTP block (spec §2.5), loaded when its
 *         nextn.eh_proj is there: the layer's tensors as above (MoE), and llama.cpp's NextN tensors
 *         (src/llama-arch.cpp LLM_TENSOR_NEXTN_*) nextn.eh_proj [D, 2D], nextn.enorm / nextn.hnorm [D],
 *         optional nextn.embed_tokens [vocab, D], nextn.shared_head_norm [D], nextn.shared_head_head
 *         [vocab, D] (absent: token_embd / output_norm / output). Further MTP blocks: accepted, not loaded.
 *
 * Key and value sizes: current files store the MLA-as-MQA sizes in attention.key_length (r + rope) /
 * value_length (r) and the per-head sizes in key_length_mla (nope + rope) / value_length_mla (V);
 * older files have only key_length (nope + rope) / value_length (V).
 *
 * YaRN: the converter writes rope.scaling.yarn_log_multiplier = 0.1 · mscale_all_dim and llama.cpp
 * divides it back (its TAG_DEEPSEEK2_YARN_LOG_MUL_FIX), scaling attention by
 * (1 + 0.1 · mscale_all_dim · ln factor)² — the HF path's m² with mscale = multiplier / 0.1.
 * Without the key llama.cpp's factor is 1 + 0.1 · ln factor, i.e. mscale 1.
 */
import type { GGUFFile, GGUFValue } from '../formats/gguf.js';
import type { DType } from '../tensor/dtype.js';
import { tokenizerFromGGUF } from '../tokenizer/index.js';
import type { V3Config } from './deepseek-v3-config.js';
import { describeV3, type V3LayerRefs, type V3MlpRefs, type V3MtpRefs, type V3Plan, type V3TensorKind, type V3TensorSource, type V3WeightRef } from './deepseek-v3-load.js';
import type { LoadOptions, ModelDescription } from './model.js';

/** GGUF architectures read as DeepSeek-V3 (llama.cpp names V2, V2.5, V3, R1 and V3.1 all `deepseek2`). */
export const GGUF_V3_ARCHITECTURES = ['deepseek2'];

/** llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE values (0 = unset: DeepSeek-V2 files, softmax). */
const GATING: Readonly<Record<number, V3Config['scoring']>> = { 0: 'softmax', 1: 'softmax', 2: 'sigmoid' };

export interface V3FromGGUF {
  readonly config: V3Config;
  readonly source: V3TensorSource;
  /** What each tensor of the file is, for describeV3. */
  readonly kind: (name: string) => V3TensorKind;
}

const blockOf = (name: string): number | undefined => {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** Reads the config from the metadata and checks every tensor against it. */
export function v3FromGGUF(file: GGUFFile): V3FromGGUF {
  const fail = (msg: string): never => { throw new Error(`${file.path}: ${msg}`); };
  const arch = file.metadata.get('general.architecture');
  if (typeof arch !== 'string' || !GGUF_V3_ARCHITECTURES.includes(arch)) fail(`architecture '${String(arch)}' is not ${GGUF_V3_ARCHITECTURES.join(', ')}`);
  const get = (key: string): GGUFValue | undefined => file.metadata.get(`${arch}.${key}`);
  const num = (key: string, fallback?: number): number => {
    const v = get(key);
    if (v === undefined) return fallback ?? fail(`metadata ${arch}.${key} is missing`);
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`metadata ${arch}.${key} must be a number, found ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`);
    return v;
  };
  const int = (key: string, fallback?: number): number => {
    const v = num(key, fallback);
    if (!Number.isInteger(v) || v < 0) fail(`metadata ${arch}.${key} must be a non-negative integer, found ${v}`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') return fail(`metadata ${arch}.${key} must be a bool, found ${JSON.stringify(v)}`);
    return v;
  };

  const mtpLayers = int('nextn_predict_layers', 0);
  const blocks = int('block_count');
  if (mtpLayers >= blocks) fail(`nextn_predict_layers ${mtpLayers} leaves no decoder layers of block_count ${blocks}`);
  const ropeDim = int('rope.dimension_count');
  const kvLoraRank = int('attention.kv_lora_rank');
  const mlaK = int('attention.key_length_mla', 0), mlaV = int('attention.value_length_mla', 0);
  const qk = mlaK || int('attention.key_length'), vDim = mlaV || int('attention.value_length');
  if (qk <= ropeDim) fail(`key length ${qk} must exceed rope.dimension_count ${ropeDim} (nope + rope dims per head)`);
  if (ropeDim % 2) fail(`rope.dimension_count ${ropeDim} must be even`);
  const experts = int('expert_count', 0);
  if (experts === 0) fail(`${arch}.expert_count is missing or 0: ${arch} models without routed experts are not supported`);
  const gating = int('expert_gating_func', 0);
  const scoring = GATING[gating] ?? fail(`expert_gating_func ${gating} is not supported (1 softmax, 2 sigmoid)`);
  const groups = int('expert_group_count', 0) || 1;
  const scalingType = get('rope.scaling.type') ?? 'none';
  if (scalingType !== 'yarn' && scalingType !== 'none') fail(`rope.scaling.type ${JSON.stringify(scalingType)} is not supported (DeepSeek uses yarn)`);
  const logMul = num('rope.scaling.yarn_log_multiplier', 0);
  const embed = file.tensors.get('token_embd.weight') ?? fail(`missing tensor 'token_embd.weight'`);
  const denseLayers = int('leading_dense_block_count', 0);
  const special = (key: string, fallback: number): number => {
    const v = file.metadata.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' ? v : fallback;
  };

  const c: V3Config = {
    vocab: int('vocab_size', embed.shape[0]),
    dim: int('embedding_length'),
    interDim: int('feed_forward_length', denseLayers ? undefined : 0),
    moeInter: int('expert_feed_forward_length'),
    layers: blocks - mtpLayers,
    denseLayers,
    mtpLayers,
    heads: int('attention.head_count'),
    qLoraRank: int('attention.q_lora_rank', 0),
    kvLoraRank,
    nopeDim: qk - ropeDim,
    ropeDim,
    vDim,
    experts,
    sharedExperts: int('expert_shared_count', 0),
    topK: int('expert_used_count'),
    groups,
    topkGroups: int('expert_group_used_count', 0) || groups,
    scoring,
    // llama.cpp: 0 or absent means the weights are not scaled.
    routeScale: num('expert_weights_scale', 0) || 1,
    normTopk: bool('expert_weights_norm', false),
    selectionBias: file.tensors.has(`blk.${denseLayers}.exp_probs_b.bias`),
    eps: num('attention.layer_norm_rms_epsilon'),
    ropeTheta: num('rope.freq_base', 10000),
    yarn: scalingType === 'yarn' ? {
      factor: num('rope.scaling.factor'),
      originalContext: int('rope.scaling.original_context_length'),
      betaFast: num('rope.scaling.yarn_beta_fast', 32),
      betaSlow: num('rope.scaling.yarn_beta_slow', 1),
      // f32 division, as llama.cpp undoes the converter's 0.1 (so 0.1f·1 gives exactly 1).
      mscale: logMul ? Math.fround(logMul / Math.fround(0.1)) : 1,
    } : undefined,
    contextLength: int('context_length'),
    ue8m0: false,
    bos: special('bos_token_id', 0),
    eos: special('eos_token_id', 1),
  };
  if (c.experts % c.groups) fail(`expert_count ${c.experts} is not a multiple of expert_group_count ${c.groups}`);
  if (c.topkGroups > c.groups) fail(`expert_group_used_count ${c.topkGroups} exceeds expert_group_count ${c.groups}`);
  if (c.topK === 0 || c.topK > c.experts) fail(`expert_used_count ${c.topK} must be 1 … expert_count ${c.experts}`);
  if (c.denseLayers > c.layers) fail(`leading_dense_block_count ${c.denseLayers} exceeds the ${c.layers} decoder layers`);
  if (c.yarn && !(c.yarn.factor > 0)) fail(`rope.scaling.factor ${c.yarn.factor} must be positive`);

  const withMtp = c.mtpLayers > 0 && file.tensors.has(`blk.${c.layers}.nextn.eh_proj.weight`);
  const source = ggufSource(file, c, withMtp);
  const kind = (name: string): V3TensorKind => {
    const b = blockOf(name);
    if (b !== undefined && b >= c.layers) return withMtp && b === c.layers ? 'mtp' : 'unused';
    return /_exps\.weight$/.test(name) ? 'expert' : 'weight';
  };
  checkTensors(file, c, source);
  return { config: c, source, kind };
}

/** v3FromGGUF plus the description and tokenizer: what loadV3 takes. The caller owns `file`. */
export function planV3GGUF(file: GGUFFile, opts: LoadOptions = {}): V3Plan {
  const { config, source, kind } = v3FromGGUF(file);
  const tokenizer = tokenizerFromGGUF(file.metadata);
  return {
    config, file, source, fp8: false,
    description: withSource(describeV3(config, file, opts, kind, 'deepseek2')),
    tokenizer: () => tokenizer,
  };
}

const withSource = (d: ModelDescription): ModelDescription => ({ ...d, details: { ...d.details, source: 'gguf' } });

function ggufSource(file: GGUFFile, c: V3Config, withMtp: boolean): V3TensorSource {
  const ref = (name: string): V3WeightRef => {
    const t = file.tensors.get(name);
    if (!t) throw new Error(`${file.path}: missing tensor '${name}'`);
    return { name, format: { dtype: t.dtype }, rows: t.shape[0], cols: t.shape[1] };
  };
  /** Expert e of a stacked [E, rows, cols] tensor: the e-th of E equal byte ranges. */
  const expert = (name: string, e: number): V3WeightRef => {
    const t = file.tensors.get(name)!;
    return { name, format: { dtype: t.dtype }, rows: t.shape[1], cols: t.shape[2], byteOffset: e * (t.byteLength / c.experts) };
  };
  const mlp = (b: string, suffix: '' | '_shexp'): V3MlpRefs => ({
    gate: ref(`${b}ffn_gate${suffix}.weight`), up: ref(`${b}ffn_up${suffix}.weight`), down: ref(`${b}ffn_down${suffix}.weight`),
  });
  // A file with k_b / v_b may keep kv_b as well; the split pair is read, kv_b left alone.
  const split = (name: string) => name.endsWith('.attn_kv_b.weight') && file.tensors.has(name.replace('attn_kv_b', 'attn_k_b'));
  /** Read at load: of the MTP blocks only the first, when loaded. */
  const loaded = (name: string) => {
    const b = blockOf(name) ?? -1;
    return b < c.layers || (withMtp && b === c.layers);
  };
  const has = (name: string) => file.tensors.has(name);
  const n = `blk.${c.layers}.nextn.`;
  const layer = (l: number): V3LayerRefs => {
    const b = `blk.${l}.`;
    return {
      attnNorm: `${b}attn_norm.weight`,
      ffnNorm: `${b}ffn_norm.weight`,
      ...(c.qLoraRank ? { qA: ref(`${b}attn_q_a.weight`), qNorm: `${b}attn_q_a_norm.weight`, qB: ref(`${b}attn_q_b.weight`) } : { qB: ref(`${b}attn_q.weight`) }),
      kvA: ref(`${b}attn_kv_a_mqa.weight`),
      kvNorm: `${b}attn_kv_a_norm.weight`,
      // k_b [H, r, nope] and v_b [H, V, r] read as the matrices [H·r, nope] and [H·V, r].
      kvB: file.tensors.has(`${b}attn_k_b.weight`) ? {
        k: { ...ref(`${b}attn_k_b.weight`), rows: c.heads * c.kvLoraRank, cols: c.nopeDim },
        v: { ...ref(`${b}attn_v_b.weight`), rows: c.heads * c.vDim, cols: c.kvLoraRank },
      } : { whole: ref(`${b}attn_kv_b.weight`) },
      o: ref(`${b}attn_output.weight`),
      ...(l < c.denseLayers ? { mlp: mlp(b, '') } : {
        moe: {
          gate: ref(`${b}ffn_gate_inp.weight`),
          bias: c.selectionBias ? `${b}exp_probs_b.bias` : undefined,
          expert: (e: number) => ({ gate: expert(`${b}ffn_gate_exps.weight`, e), up: expert(`${b}ffn_up_exps.weight`, e), down: expert(`${b}ffn_down_exps.weight`, e) }),
          shared: c.sharedExperts ? mlp(b, '_shexp') : undefined,
        },
      }),
    };
  };
  const mtp: V3MtpRefs | undefined = withMtp ? {
    embed: has(`${n}embed_tokens.weight`) ? `${n}embed_tokens.weight` : undefined,
    enorm: `${n}enorm.weight`,
    hnorm: `${n}hnorm.weight`,
    ehProj: ref(`${n}eh_proj.weight`),
    layer: layer(c.layers),
    norm: has(`${n}shared_head_norm.weight`) ? `${n}shared_head_norm.weight` : undefined,
    head: has(`${n}shared_head_head.weight`) ? ref(`${n}shared_head_head.weight`) : undefined,
  } : undefined;
  return {
    embed: 'token_embd.weight',
    norm: 'output_norm.weight',
    head: ref(file.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight'),
    eagerBytes: [...file.tensors.values()]
      .filter((t) => !/_exps\.weight$/.test(t.name) && loaded(t.name) && !split(t.name))
      .reduce((s, t) => s + t.byteLength, 0),
    layer,
    mtp,
  };
}

const VECTOR_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/** Every tensor the config implies, with its shape; no others but those of MTP blocks. */
function checkTensors(file: GGUFFile, c: V3Config, src: V3TensorSource): void {
  const D = c.dim, H = c.heads, qk = c.nopeDim + c.ropeDim, r = c.kvLoraRank, E = c.experts, F = c.moeInter;
  const expected = new Map<string, { shape: number[]; vector?: boolean }>();
  const vec = (name: string, n: number) => expected.set(name, { shape: [n], vector: true });
  const mat = (name: string, ...shape: number[]) => expected.set(name, { shape });
  mat('token_embd.weight', c.vocab, D);
  vec('output_norm.weight', D);
  if (file.tensors.has('output.weight')) mat('output.weight', c.vocab, D);
  if (src.mtp) {
    const n = `blk.${c.layers}.nextn.`;
    mat(`${n}eh_proj.weight`, D, 2 * D);
    vec(`${n}enorm.weight`, D);
    vec(`${n}hnorm.weight`, D);
    if (src.mtp.embed) mat(src.mtp.embed, c.vocab, D);
    if (src.mtp.norm) vec(src.mtp.norm, D);
    if (src.mtp.head) mat(src.mtp.head.name, c.vocab, D);
  }
  // The MTP block's decoder layer has a main (MoE) layer's tensors.
  for (let l = 0; l < c.layers + (src.mtp ? 1 : 0); l++) {
    const b = `blk.${l}.`;
    vec(`${b}attn_norm.weight`, D);
    vec(`${b}ffn_norm.weight`, D);
    if (c.qLoraRank) {
      mat(`${b}attn_q_a.weight`, c.qLoraRank, D);
      vec(`${b}attn_q_a_norm.weight`, c.qLoraRank);
      mat(`${b}attn_q_b.weight`, H * qk, c.qLoraRank);
    } else {
      mat(`${b}attn_q.weight`, H * qk, D);
    }
    mat(`${b}attn_kv_a_mqa.weight`, r + c.ropeDim, D);
    vec(`${b}attn_kv_a_norm.weight`, r);
    if ('whole' in src.layer(l).kvB || file.tensors.has(`${b}attn_kv_b.weight`)) mat(`${b}attn_kv_b.weight`, H * (c.nopeDim + c.vDim), r);
    if (!('whole' in src.layer(l).kvB)) {
      mat(`${b}attn_k_b.weight`, H, r, c.nopeDim);
      mat(`${b}attn_v_b.weight`, H, c.vDim, r);
    }
    mat(`${b}attn_output.weight`, D, H * c.vDim);
    if (l < c.denseLayers) {
      mat(`${b}ffn_gate.weight`, c.interDim, D);
      mat(`${b}ffn_up.weight`, c.interDim, D);
      mat(`${b}ffn_down.weight`, D, c.interDim);
      continue;
    }
    mat(`${b}ffn_gate_inp.weight`, E, D);
    if (c.selectionBias) vec(`${b}exp_probs_b.bias`, E);
    mat(`${b}ffn_gate_exps.weight`, E, F, D);
    mat(`${b}ffn_up_exps.weight`, E, F, D);
    mat(`${b}ffn_down_exps.weight`, E, D, F);
    if (c.sharedExperts) {
      mat(`${b}ffn_gate_shexp.weight`, F * c.sharedExperts, D);
      mat(`${b}ffn_up_shexp.weight`, F * c.sharedExperts, D);
      mat(`${b}ffn_down_shexp.weight`, D, F * c.sharedExperts);
    }
  }
  for (const [name, e] of expected) {
    const t = file.tensors.get(name);
    if (!t) {
      const fused = name.endsWith('ffn_gate_exps.weight') && file.tensors.has(name.replace('ffn_gate_exps', 'ffn_gate_up_exps'));
      throw new Error(`${file.path}: missing tensor '${name}' ([${e.shape.join(', ')}] for this file's ${GGUF_V3_ARCHITECTURES[0]} metadata)${fused ? '; fused ffn_gate_up_exps experts are not supported' : ''}`);
    }
    if (t.shape.length !== e.shape.length || !t.shape.every((d, i) => d === e.shape[i])) {
      throw new Error(`${file.path}: tensor '${name}' is [${t.shape.join(', ')}], expected [${e.shape.join(', ')}] for this file's metadata`);
    }
    if (e.vector && !VECTOR_DTYPES.includes(t.dtype)) throw new Error(`${file.path}: tensor '${name}' is ${t.dtype}; norm and bias vectors must be ${VECTOR_DTYPES.join(', ')}`);
  }
  for (const name of file.tensors.keys()) {
    if (!expected.has(name) && !((blockOf(name) ?? -1) >= c.layers)) {
      throw new Error(`${file.path}: tensor '${name}' is not part of a ${GGUF_V3_ARCHITECTURES[0]} model with this metadata (${c.layers} layers, ${c.denseLayers} dense, ${E} experts) — metadata and tensors disagree`);
    }
  }
}
