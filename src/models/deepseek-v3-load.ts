/**
 * Loads DeepSeek-V3 / R1 / V3.1 / V3.2 weights into a DeepseekV3Model. The assembly (loadV3) is shared by
 * every checkpoint layout: a V3TensorSource names, per role, which tensor of the file holds each
 * weight and in what format, and loadV3 reads them. Two sources exist:
 *
 * - the official Hugging Face directory (this file: config.json + sharded safetensors, FP8 E4M3
 *   weights with f32 `weight_scale_inv` 128×128 tiles, one tensor per expert);
 * - llama.cpp's `deepseek2` GGUF (deepseek-v3-gguf.ts: experts stacked in 3-D tensors, kv_b whole
 *   or split into k_b / v_b, any GGUF dtype).
 *
 * Weights stay in their stored format; routed experts are read from disk the first time a token is
 * routed to them. The first MTP layer (spec §2.5) is loaded with the rest when the file holds it
 * (its routed experts lazily too); further MTP layers are accepted and not loaded.
 */
import * as path from 'node:path';
import { type Backend, numel, type Tensor, type WeightSource } from '../kernels/backend.js';
import { yarnFreqs, ropeFreqs } from '../kernels/rope-freqs.js';
import type { WeightFile } from '../formats/weight-file.js';
import { openSafetensors } from '../formats/safetensors.js';
import { FP8_BLOCK_F32, type WeightFormat } from '../tensor/dtype.js';
import { dequantize } from '../tensor/dequantize.js';
import { deepseekTokenizer } from '../tokenizer/deepseek.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { DeepseekV3Model, type MlpWeights, type V3LayerWeights, type V3MtpWeights, type V3Weights, v3StateBytesPerToken } from './deepseek-v3.js';
import { readVector } from './host-linear.js';
import { type V3Config, v3ConfigFromHF, v3LayerPrefix, v3Tensors } from './deepseek-v3-config.js';
import type { ExpectedTensor } from './deepseek-v4-config.js';
import { DEFAULT_CONTEXT } from './llama.js';
import { kernelDtype, memoryBytes, memoryFormat, storedSource } from '../quantize/block-format.js';
import type { LoadOptions, ModelDescription } from './model.js';

export const HF_V3_ARCHITECTURES = ['deepseek_v3', 'deepseek_v32'];

/** A matrix weight [rows, cols] in a file; `byteOffset` picks a slice of the tensor (one expert of a stacked tensor). */
export interface V3WeightRef {
  readonly name: string;
  readonly format: WeightFormat;
  readonly rows: number;
  readonly cols: number;
  readonly scaleName?: string;
  readonly byteOffset?: number;
  /** Where to read it from when not the file itself (a minke q2_0 expert, widened at load). */
  readonly source?: WeightSource;
}

export interface V3MlpRefs {
  readonly gate: V3WeightRef;
  readonly up: V3WeightRef;
  readonly down: V3WeightRef;
}

/**
 * kv_b whole ([H·(nope+V), r], rows per head: nope key rows then V value rows), or split as
 * llama.cpp writes it now: k [H·r, nope] (head h's rows are B_k(h)ᵀ) and v [H·V, r].
 */
export type V3KvB = { readonly whole: V3WeightRef } | { readonly k: V3WeightRef; readonly v: V3WeightRef };

/** Tensor names (vectors) and weight refs (matrices) of one decoder layer. */
export interface V3LayerRefs {
  readonly attnNorm: string;
  readonly ffnNorm: string;
  /** Absent when q is one plain projection (qB is then that projection). */
  readonly qA?: V3WeightRef;
  readonly qNorm?: string;
  readonly qB: V3WeightRef;
  readonly kvA: V3WeightRef;
  readonly kvNorm: string;
  readonly kvB: V3KvB;
  readonly o: V3WeightRef;
  /** V3.2's lightning indexer (§4). */
  readonly indexer?: {
    readonly wqB: V3WeightRef;
    readonly wk: V3WeightRef;
    readonly kNorm: string;
    readonly kNormBias: string;
    readonly weightsProj: V3WeightRef;
  };
  readonly mlp?: V3MlpRefs;
  readonly moe?: {
    readonly gate: V3WeightRef;
    readonly bias?: string;
    readonly expert: (e: number) => V3MlpRefs;
    readonly shared?: V3MlpRefs;
  };
}

/** The MTP layer (spec §2.5): its own tensors and a decoder layer; absent copies fall back to the main ones. */
export interface V3MtpRefs {
  /** The MTP copy of the embedding table; absent: the main one. */
  readonly embed?: string;
  readonly enorm: string;
  readonly hnorm: string;
  /** [D, 2D]: columns 0 … D−1 take the normalised embedding, D … 2D−1 the normalised hidden state. */
  readonly ehProj: V3WeightRef;
  readonly layer: V3LayerRefs;
  /** shared_head.norm / shared_head.head; absent: the main output norm / head. */
  readonly norm?: string;
  readonly head?: V3WeightRef;
}

/** Where each weight of a checkpoint is, by role: all that differs between the HF and GGUF layouts. */
export interface V3TensorSource {
  /** The embedding table (any dtype the backend's embedding reads). */
  readonly embed: string;
  readonly norm: string;
  readonly head: V3WeightRef;
  layer(l: number): V3LayerRefs;
  /** The first MTP layer, when the file holds one. */
  readonly mtp?: V3MtpRefs;
  /** Bytes read at load (everything but routed experts and MTP layers not loaded), for onProgress. */
  readonly eagerBytes: number;
}

export interface V3Plan {
  readonly config: V3Config;
  /** Owned by the plan until loadV3 hands it to the model (close it if the plan is dropped). */
  readonly file: WeightFile;
  readonly source: V3TensorSource;
  readonly description: ModelDescription;
  readonly tokenizer: () => Tokenizer;
  /** FP8 weights: the `actQuant` option (the reference's fp8_gemm) applies. */
  readonly fp8: boolean;
}

/**
 * What a tensor of a checkpoint is, for the description's counts: 'mtp' is any tensor of the MTP
 * layer that is loaded (in the weight bytes, not in the model's parameters), 'unused' one of an
 * MTP layer that is not.
 */
export type V3TensorKind = 'weight' | 'scale' | 'expert' | 'mtp' | 'unused';

/** Opens `dir`, checks its tensors against the config, and describes it. The caller owns `file`. */
export function planV3(dir: string, json: Record<string, unknown>, opts: LoadOptions = {}): V3Plan {
  const config = v3ConfigFromHF(json, path.join(dir, 'config.json'));
  const file = openSafetensors(dir);
  try {
    const mtp = checkTensors(file, config);
    return {
      config, file, fp8: true,
      source: hfSource(file, config, mtp),
      description: describeV3(config, file, opts, (name) => hfKind(config, name, mtp), config.index ? 'deepseek_v32' : 'deepseek_v3'),
      tokenizer: () => deepseekTokenizer('v3', dir),
    };
  } catch (err) {
    file.close();
    throw err;
  }
}

const layerOf = (name: string): number | undefined => {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
};
const isMtp = (c: V3Config, name: string) => (layerOf(name) ?? -1) >= c.layers;

function hfKind(c: V3Config, name: string, withMtp: boolean): V3TensorKind {
  if (isMtp(c, name)) return withMtp && layerOf(name) === c.layers ? 'mtp' : 'unused';
  if (name.endsWith('weight_scale_inv')) return 'scale';
  return name.includes('.mlp.experts.') ? 'expert' : 'weight';
}

/**
 * Checks the tensors against the config; true when the first MTP layer is there to load (its
 * eh_proj present: the rest of the layer must be too). Other MTP tensors are accepted unread.
 */
function checkTensors(file: WeightFile, c: V3Config): boolean {
  const expected = v3Tensors(c);
  const p = v3LayerPrefix(c.layers);
  const mtp = c.mtpLayers > 0 && file.tensors.has(`${p}.eh_proj.weight`);
  const D = c.dim;
  const shapes = new Map<string, number[]>();
  if (mtp) {
    // The decoder layer exactly as a main layer; the MTP's own tensors in whatever dtype they come.
    expected.push(...v3Tensors({ ...c, layers: c.layers + 1 }).filter((t) => t.name.startsWith(`${p}.`)));
    for (const [name, shape] of [['enorm', [D]], ['hnorm', [D]], ['eh_proj', [D, 2 * D]]] as const) shapes.set(`${p}.${name}.weight`, [...shape]);
    for (const [name, shape] of [['embed_tokens', [c.vocab, D]], ['shared_head.norm', [D]], ['shared_head.head', [c.vocab, D]]] as const) {
      if (file.tensors.has(`${p}.${name}.weight`)) shapes.set(`${p}.${name}.weight`, [...shape]);
    }
  }
  const names = new Set(expected.map((e) => e.name));
  const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  for (const e of expected) {
    const t = file.tensors.get(e.name);
    if (!t) throw new Error(`${file.path}: missing tensor '${e.name}' (${e.dtype} [${e.shape.join(', ')}] for this config.json)`);
    // The indexer's norm and head weights: any float type (the references keep them in f32 or bf16).
    const loose = /\.indexer\.(k_norm\.(weight|bias)|weights_proj\.weight)$/.test(e.name) && ['bf16', 'f16', 'f32'].includes(t.dtype);
    if ((t.dtype !== e.dtype && !loose) || !sameShape(t.shape, e.shape)) {
      throw new Error(`${file.path}: tensor '${e.name}' is ${t.dtype} [${t.shape.join(', ')}], expected ${e.dtype} [${e.shape.join(', ')}] for this config.json`);
    }
  }
  for (const [name, shape] of shapes) {
    const t = file.tensors.get(name);
    if (!t) throw new Error(`${file.path}: missing tensor '${name}' ([${shape.join(', ')}]) of the MTP layer`);
    if (!sameShape(t.shape, shape)) throw new Error(`${file.path}: tensor '${name}' is [${t.shape.join(', ')}], expected [${shape.join(', ')}] for this config.json`);
  }
  for (const name of file.tensors.keys()) {
    if (!names.has(name) && !isMtp(c, name)) {
      throw new Error(`${file.path}: tensor '${name}' is not part of a DeepSeek-V3 checkpoint with this config.json (${c.layers} layers, ${c.experts} experts) — config and weights disagree`);
    }
  }
  return mtp;
}

/** Routed experts minke quantize stored as u8 rows of blocks, by tensor name (none in an official checkpoint). */
function storedMatrices(c: V3Config): Map<string, NonNullable<ExpectedTensor['blocks']>> {
  if (!c.expertDtype) return new Map();
  return new Map(v3Tensors({ ...c, layers: c.layers + c.mtpLayers }).filter((e) => e.blocks).map((e) => [e.name, e.blocks!]));
}

/** The official HF layout: `model.layers.L.*`, FP8 projections with `weight_scale_inv`. */
function hfSource(file: WeightFile, c: V3Config, withMtp: boolean): V3TensorSource {
  const quantised = storedMatrices(c);
  const ref = (p: string): V3WeightRef => {
    const q = quantised.get(`${p}.weight`);
    if (q) return { name: `${p}.weight`, format: { dtype: kernelDtype(q.block) }, rows: q.rows, cols: q.cols, source: storedSource(file, q.block, q.rows, q.cols) };
    const t = file.tensors.get(`${p}.weight`)!;
    const scaled = file.tensors.has(`${p}.weight_scale_inv`);
    return {
      name: `${p}.weight`, format: scaled ? FP8_BLOCK_F32 : { dtype: t.dtype }, rows: t.shape[0], cols: t.shape[1],
      scaleName: scaled ? `${p}.weight_scale_inv` : undefined,
    };
  };
  const mlp = (p: string): V3MlpRefs => ({ gate: ref(`${p}.gate_proj`), up: ref(`${p}.up_proj`), down: ref(`${p}.down_proj`) });
  const has = (name: string) => file.tensors.has(name);
  const m = v3LayerPrefix(c.layers);
  /** Read at load: all but routed experts, and of the MTP layers only the first, when loaded. */
  const eager = (name: string) => !name.includes('.mlp.experts.') && (!isMtp(c, name) || (withMtp && layerOf(name) === c.layers));
  const layer = (l: number): V3LayerRefs => {
    const p = v3LayerPrefix(l), a = `${p}.self_attn`;
    return {
      attnNorm: `${p}.input_layernorm.weight`,
      ffnNorm: `${p}.post_attention_layernorm.weight`,
      ...(c.qLoraRank ? { qA: ref(`${a}.q_a_proj`), qNorm: `${a}.q_a_layernorm.weight`, qB: ref(`${a}.q_b_proj`) } : { qB: ref(`${a}.q_proj`) }),
      kvA: ref(`${a}.kv_a_proj_with_mqa`),
      kvNorm: `${a}.kv_a_layernorm.weight`,
      kvB: { whole: ref(`${a}.kv_b_proj`) },
      o: ref(`${a}.o_proj`),
      indexer: c.index ? {
        wqB: ref(`${a}.indexer.wq_b`), wk: ref(`${a}.indexer.wk`),
        kNorm: `${a}.indexer.k_norm.weight`, kNormBias: `${a}.indexer.k_norm.bias`,
        weightsProj: ref(`${a}.indexer.weights_proj`),
      } : undefined,
      ...(l < c.denseLayers ? { mlp: mlp(`${p}.mlp`) } : {
        moe: {
          gate: ref(`${p}.mlp.gate`),
          bias: c.selectionBias ? `${p}.mlp.gate.e_score_correction_bias` : undefined,
          expert: (e: number) => mlp(`${p}.mlp.experts.${e}`),
          shared: c.sharedExperts ? mlp(`${p}.mlp.shared_experts`) : undefined,
        },
      }),
    };
  };
  return {
    embed: 'model.embed_tokens.weight',
    norm: 'model.norm.weight',
    head: ref('lm_head'),
    eagerBytes: [...file.tensors.values()].filter((t) => eager(t.name)).reduce((s, t) => s + t.byteLength, 0),
    layer,
    mtp: withMtp ? {
      embed: has(`${m}.embed_tokens.weight`) ? `${m}.embed_tokens.weight` : undefined,
      enorm: `${m}.enorm.weight`,
      hnorm: `${m}.hnorm.weight`,
      ehProj: ref(`${m}.eh_proj`),
      layer: layer(c.layers),
      norm: has(`${m}.shared_head.norm.weight`) ? `${m}.shared_head.norm.weight` : undefined,
      head: has(`${m}.shared_head.head.weight`) ? ref(`${m}.shared_head.head`) : undefined,
    } : undefined,
  };
}

/** Parameters, bytes per format and state per token from the tensor table; `kind` sorts the tensors. */
export function describeV3(c: V3Config, file: WeightFile, opts: LoadOptions, kind: (name: string) => V3TensorKind, architecture: string): ModelDescription {
  const weightBytes: Record<string, number> = {};
  let parameters = 0, expertParameters = 0, mtpParameters = 0;
  const quantised = storedMatrices(c);
  for (const t of file.tensors.values()) {
    const k = kind(t.name);
    if (k === 'unused') continue;
    const scale = k === 'scale' || t.name.endsWith('_scale_inv');
    const q = quantised.get(t.name);
    const fmt = scale ? 'f32 scales' : q ? memoryFormat(q.block) : t.dtype;
    weightBytes[fmt] = (weightBytes[fmt] ?? 0) + (q ? memoryBytes(q) : t.byteLength);
    if (scale) continue;
    const count = q ? q.rows * q.cols : numel(t.shape);
    if (k === 'mtp') {
      mtpParameters += count;
      continue;
    }
    parameters += count;
    if (k === 'expert') expertParameters += count;
  }
  const defaultContext = Math.min(opts.contextLength ?? DEFAULT_CONTEXT, c.contextLength);
  const perToken = v3StateBytesPerToken(c);
  // What plain multi-head attention would cache per token: keys (nope + rope) and values per head.
  const mhaPerToken = 4 * c.layers * c.heads * (c.nopeDim + c.ropeDim + c.vDim);
  return {
    architecture,
    parameters,
    weightBytes,
    contextLength: c.contextLength,
    stateBytesPerToken: perToken,
    layers: c.layers,
    vocabSize: c.vocab,
    mtpLayers: mtpParameters > 0 ? 1 : 0,
    details: {
      activeParameters: Math.round(parameters - expertParameters + (expertParameters * c.topK) / c.experts),
      dim: c.dim, heads: c.heads, qLoraRank: c.qLoraRank, kvLoraRank: c.kvLoraRank,
      qkNopeDim: c.nopeDim, qkRopeDim: c.ropeDim, vDim: c.vDim,
      experts: `${c.experts} routed (top-${c.topK}, ${c.groups} groups, top-${c.topkGroups} groups) + ${c.sharedExperts} shared; ${c.denseLayers} dense layers`,
      // The loaded MTP layer (its weights are in weightBytes; its latent cache is one layer more per token).
      mtpParameters,
      latentCacheBytesPer1KTokens: perToken * 1024,
      mhaCacheBytesPer1KTokens: mhaPerToken * 1024,
      // V3.2: the indexer's share of the state (an FP8 key and its f32 scale per layer and token), in latentCacheBytesPer1KTokens too.
      ...(c.index ? {
        indexer: `${c.index.heads} heads × ${c.index.headDim}, top-${c.index.topk} keys per query`,
        indexerCacheBytesPer1KTokens: c.layers * (c.index.headDim + 4) * 1024,
      } : {}),
      defaultContext,
    },
  };
}

/** RoPE frequencies and the softmax scale (with YaRN's mscale² when YaRN is on, §2.1). */
function ropeAndScale(c: V3Config): { freqs: Float32Array; softmaxScale: number } {
  const base = 1 / Math.sqrt(c.nopeDim + c.ropeDim);
  if (!c.yarn) return { freqs: ropeFreqs(c.ropeTheta, c.ropeDim), softmaxScale: base };
  const y = c.yarn;
  const freqs = yarnFreqs({ base: c.ropeTheta, dim: c.ropeDim, originalSeqLen: y.originalContext, factor: y.factor, betaFast: y.betaFast, betaSlow: y.betaSlow });
  const m = y.factor > 1 ? 0.1 * y.mscale * Math.log(y.factor) + 1 : 1;
  return { freqs, softmaxScale: base * m * m };
}

/** kv_b [H·(nope+V), r] split per head for the absorbed form: B_kᵀ [H·r, nope] and B_v [H·V, r]. */
export function absorbedFromKvB(B: Float32Array, c: V3Config): { ukT: Float32Array; uv: Float32Array } {
  const H = c.heads, r = c.kvLoraRank, nope = c.nopeDim, V = c.vDim, kvw = nope + V;
  if (B.length !== H * kvw * r) throw new Error(`kv_b has ${B.length} values, expected ${H * kvw * r} ([${H * kvw}, ${r}])`);
  const ukT = new Float32Array(H * r * nope), uv = new Float32Array(H * V * r);
  for (let h = 0; h < H; h++) {
    for (let j = 0; j < nope; j++) for (let i = 0; i < r; i++) ukT[(h * r + i) * nope + j] = B[(h * kvw + j) * r + i];
    uv.set(B.subarray((h * kvw + nope) * r, (h * kvw + kvw) * r), h * V * r);
  }
  return { ukT, uv };
}

/** The inverse of absorbedFromKvB: kv_b [H·(nope+V), r] from B_kᵀ [H·r, nope] and B_v [H·V, r]. */
export function kvBFromAbsorbed(ukT: Float32Array, uv: Float32Array, c: V3Config): Float32Array {
  const H = c.heads, r = c.kvLoraRank, nope = c.nopeDim, V = c.vDim, kvw = nope + V;
  if (ukT.length !== H * r * nope || uv.length !== H * V * r) throw new Error(`k_b / v_b have ${ukT.length} / ${uv.length} values, expected ${H * r * nope} / ${H * V * r}`);
  const B = new Float32Array(H * kvw * r);
  for (let h = 0; h < H; h++) {
    for (let j = 0; j < nope; j++) for (let i = 0; i < r; i++) B[(h * kvw + j) * r + i] = ukT[(h * r + i) * nope + j];
    B.set(uv.subarray(h * V * r, (h + 1) * V * r), (h * kvw + nope) * r);
  }
  return B;
}

/** Reads every weight the plan's source names into `backend` and returns the model, which owns plan.file. */
export async function loadV3(plan: V3Plan, backend: Backend, opts: LoadOptions, ownsBackend: boolean): Promise<DeepseekV3Model> {
  const { config: c, file, source: src } = plan;
  const attention = opts.mlaForm ?? 'absorb';
  const loaded: Tensor[] = [];
  const counted = new Set<string>();
  let done = 0;
  /** Counts a tensor read at load once (routed experts, read later, never come here). */
  const progress = (name: string | undefined) => {
    if (name === undefined || counted.has(name)) return;
    counted.add(name);
    done += file.tensors.get(name)!.byteLength;
    opts.onProgress?.(done, src.eagerBytes);
  };
  const release = async () => {
    for (const t of loaded) backend.free(t);
    loaded.length = 0;
    if (ownsBackend) await backend.close();
  };
  const vector = (name: string): Float32Array => {
    const out = readVector(file, name);
    progress(name);
    return out;
  };
  /** `byteOffset` bytes into the file's tensors: one expert of a stacked tensor. */
  const slice = (byteOffset: number): WeightSource => ({ read: (name, dst) => file.readRange(name, byteOffset, dst) });
  const matrix = async (ref: V3WeightRef, eager = true): Promise<Tensor> => {
    const w = await backend.loadWeight(ref.source ?? (ref.byteOffset === undefined ? file : slice(ref.byteOffset)), {
      name: ref.name, format: ref.format, shape: [ref.rows, ref.cols], scaleName: ref.scaleName,
    });
    loaded.push(w);
    if (eager) {
      progress(ref.name);
      progress(ref.scaleName);
    }
    return w;
  };
  /** A whole-tensor weight decoded to f32. */
  const values = (ref: V3WeightRef): Float32Array => {
    const out = dequantize(ref.format, file.read(ref.name), ref.rows, ref.cols, ref.scaleName ? file.read(ref.scaleName) : undefined);
    progress(ref.name);
    progress(ref.scaleName);
    return out;
  };
  const f32Matrix = (rows: number, cols: number, data: Float32Array, what: string): Tensor => {
    const t = backend.allocWeight({ dtype: 'f32' }, [rows, cols], what);
    backend.upload(t, data);
    loaded.push(t);
    return t;
  };
  const mlp = async (m: V3MlpRefs, eager = true): Promise<MlpWeights> => ({ w1: await matrix(m.gate, eager), w2: await matrix(m.down, eager), w3: await matrix(m.up, eager) });

  const H = c.heads, r = c.kvLoraRank, nope = c.nopeDim, V = c.vDim;
  const kvB = async (kv: V3KvB, what: string): Promise<Pick<V3LayerWeights, 'wkvB' | 'ukT' | 'uv'>> => {
    if ('whole' in kv) {
      // Splitting kv_b per head transposes B_k, which no block format survives: f32.
      const { ukT, uv } = absorbedFromKvB(values(kv.whole), c);
      return { wkvB: await matrix(kv.whole), ukT: f32Matrix(H * r, nope, ukT, `${what} (absorbed k)`), uv: f32Matrix(H * V, r, uv, `${what} (absorbed v)`) };
    }
    // Split files hold B_kᵀ and B_v as the absorbed form uses them, in their stored format. Only
    // the naive form reads kv_b whole: rebuilt in f32 for it alone.
    const wkvB = attention === 'naive' ? f32Matrix(H * (nope + V), r, kvBFromAbsorbed(values(kv.k), values(kv.v), c), `${what} (kv_b rebuilt)`) : undefined;
    return { wkvB, ukT: await matrix(kv.k), uv: await matrix(kv.v) };
  };

  /** A decoder layer: everything read now but the routed experts, read on first use. */
  const layer = async (L: V3LayerRefs, what: string): Promise<V3LayerWeights> => {
    const experts = new Map<number, Promise<MlpWeights>>();
    return {
      attnNorm: vector(L.attnNorm),
      ffnNorm: vector(L.ffnNorm),
      ...(L.qA ? { wqA: await matrix(L.qA), qNorm: vector(L.qNorm!) } : {}),
      wqB: await matrix(L.qB),
      wkvA: await matrix(L.kvA),
      kvNorm: vector(L.kvNorm),
      ...await kvB(L.kvB, `${what} kv_b`),
      wo: await matrix(L.o),
      ...(L.indexer ? {
        indexer: {
          wqB: await matrix(L.indexer.wqB), wk: await matrix(L.indexer.wk),
          kNorm: vector(L.indexer.kNorm), kNormBias: vector(L.indexer.kNormBias),
          weightsProj: await matrix(L.indexer.weightsProj),
        },
      } : {}),
      ...(L.mlp ? { mlp: await mlp(L.mlp) } : {
        moe: {
          gate: await matrix(L.moe!.gate),
          bias: L.moe!.bias ? vector(L.moe!.bias) : undefined,
          expert: (e: number) => {
            let w = experts.get(e);
            if (!w) experts.set(e, (w = mlp(L.moe!.expert(e), false)));
            return w;
          },
          shared: L.moe!.shared ? await mlp(L.moe!.shared) : undefined,
        },
      }),
    };
  };
  const table = async (name: string): Promise<Tensor> => {
    const info = file.tensors.get(name)!;
    const t = await backend.load(file, name, info.dtype, info.shape);
    loaded.push(t);
    progress(name);
    return t;
  };

  try {
    const embed = await table(src.embed);
    const layers: V3LayerWeights[] = [];
    for (let l = 0; l < c.layers; l++) layers.push(await layer(src.layer(l), `layer ${l}`));
    const norm = vector(src.norm), head = await matrix(src.head);
    const m = src.mtp;
    const mtp: V3MtpWeights | undefined = m && {
      embed: m.embed ? await table(m.embed) : embed,
      enorm: vector(m.enorm),
      hnorm: vector(m.hnorm),
      ehProj: await matrix(m.ehProj),
      layer: await layer(m.layer, 'MTP layer'),
      norm: m.norm ? vector(m.norm) : norm,
      head: m.head ? await matrix(m.head) : head,
    };
    const weights: V3Weights = { embed, layers, norm, head, mtp, ...ropeAndScale(c) };
    const numerics = { fp8Gemm: plan.fp8 && (opts.actQuant ?? false), attention } as const;
    return new DeepseekV3Model(c, weights, plan.tokenizer(), backend, numerics, plan.description, release, file);
  } catch (err) {
    await release();
    file.close();
    throw err;
  }
}
