/**
 * Loads an official DeepSeek-V3 / R1 / V3.1 Hugging Face directory (config.json + sharded
 * safetensors, FP8 E4M3 weights with f32 `weight_scale_inv` 128×128 tiles) into a DeepseekV3Model.
 * Weights stay FP8 in memory; routed experts are read from disk the first time a token is routed
 * to them. The MTP layer (`model.layers.{n_layers}.*`) is accepted and not loaded.
 */
import * as path from 'node:path';
import { type Backend, numel, type Tensor } from '../kernels/backend.js';
import { yarnFreqs, ropeFreqs } from '../kernels/rope-freqs.js';
import type { WeightFile } from '../formats/weight-file.js';
import { openSafetensors } from '../formats/safetensors.js';
import { FP8_BLOCK_F32, type WeightFormat } from '../tensor/dtype.js';
import { dequantize } from '../tensor/dequantize.js';
import { dequantizeRow } from '../tensor/quant-gguf.js';
import { deepseekTokenizer } from '../tokenizer/deepseek.js';
import { DeepseekV3Model, type MlpWeights, type V3LayerWeights, type V3Weights, v3StateBytesPerToken } from './deepseek-v3.js';
import { type V3Config, v3ConfigFromHF, v3LayerPrefix, v3Tensors } from './deepseek-v3-config.js';
import { DEFAULT_CONTEXT } from './llama.js';
import type { LoadOptions, ModelDescription } from './model.js';

export const HF_V3_ARCHITECTURES = ['deepseek_v3', 'deepseek_v32'];

export interface V3Plan {
  readonly config: V3Config;
  readonly file: WeightFile;
  readonly description: ModelDescription;
}

/** Opens `dir`, checks its tensors against the config, and describes it. The caller owns `file`. */
export function planV3(dir: string, json: Record<string, unknown>, opts: LoadOptions = {}): V3Plan {
  const config = v3ConfigFromHF(json, path.join(dir, 'config.json'));
  const file = openSafetensors(dir);
  try {
    checkTensors(file, config);
    return { config, file, description: describeV3(config, file, opts) };
  } catch (err) {
    file.close();
    throw err;
  }
}

const isExpert = (name: string) => name.includes('.mlp.experts.');
const isMtp = (c: V3Config, name: string) => /^model\.layers\.(\d+)\./.test(name) && Number(/^model\.layers\.(\d+)\./.exec(name)![1]) >= c.layers;

function checkTensors(file: WeightFile, c: V3Config): void {
  const expected = v3Tensors(c);
  const names = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const t = file.tensors.get(e.name);
    if (!t) throw new Error(`${file.path}: missing tensor '${e.name}' (${e.dtype} [${e.shape.join(', ')}] for this config.json)`);
    const sameShape = t.shape.length === e.shape.length && t.shape.every((d, i) => d === e.shape[i]);
    if (t.dtype !== e.dtype || !sameShape) {
      throw new Error(`${file.path}: tensor '${e.name}' is ${t.dtype} [${t.shape.join(', ')}], expected ${e.dtype} [${e.shape.join(', ')}] for this config.json`);
    }
  }
  for (const name of file.tensors.keys()) {
    if (!names.has(name) && !isMtp(c, name)) {
      throw new Error(`${file.path}: tensor '${name}' is not part of a DeepSeek-V3 checkpoint with this config.json (${c.layers} layers, ${c.experts} experts) — config and weights disagree`);
    }
  }
}

function describeV3(c: V3Config, file: WeightFile, opts: LoadOptions): ModelDescription {
  const weightBytes: Record<string, number> = {};
  let parameters = 0, expertParameters = 0;
  for (const t of file.tensors.values()) {
    if (isMtp(c, t.name)) continue;
    const fmt = t.name.endsWith('weight_scale_inv') ? 'f32 scales' : t.dtype;
    weightBytes[fmt] = (weightBytes[fmt] ?? 0) + t.byteLength;
    if (t.name.endsWith('weight_scale_inv')) continue;
    parameters += numel(t.shape);
    if (isExpert(t.name)) expertParameters += numel(t.shape);
  }
  const defaultContext = Math.min(opts.contextLength ?? DEFAULT_CONTEXT, c.contextLength);
  const perToken = v3StateBytesPerToken(c);
  // What plain multi-head attention would cache per token: keys (nope + rope) and values per head.
  const mhaPerToken = 4 * c.layers * c.heads * (c.nopeDim + c.ropeDim + c.vDim);
  return {
    architecture: 'deepseek_v3',
    parameters,
    weightBytes,
    contextLength: c.contextLength,
    stateBytesPerToken: perToken,
    layers: c.layers,
    vocabSize: c.vocab,
    details: {
      activeParameters: Math.round(parameters - expertParameters + (expertParameters * c.topK) / c.experts),
      dim: c.dim, heads: c.heads, qLoraRank: c.qLoraRank, kvLoraRank: c.kvLoraRank,
      qkNopeDim: c.nopeDim, qkRopeDim: c.ropeDim, vDim: c.vDim,
      experts: `${c.experts} routed (top-${c.topK}, ${c.groups} groups, top-${c.topkGroups} groups) + ${c.sharedExperts} shared; ${c.denseLayers} dense layers`,
      latentCacheBytesPer1KTokens: perToken * 1024,
      mhaCacheBytesPer1KTokens: mhaPerToken * 1024,
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

export async function loadV3(dir: string, plan: V3Plan, backend: Backend, opts: LoadOptions, ownsBackend: boolean): Promise<DeepseekV3Model> {
  const { config: c, file } = plan;
  const loaded: Tensor[] = [];
  let done = 0;
  const total = [...file.tensors.values()].filter((t) => !isExpert(t.name) && !isMtp(c, t.name)).reduce((s, t) => s + t.byteLength, 0);
  const progress = (name: string) => {
    if (isExpert(name)) return;
    done += file.tensors.get(name)!.byteLength;
    opts.onProgress?.(done, total);
  };
  const release = async () => {
    for (const t of loaded) backend.free(t);
    loaded.length = 0;
    if (ownsBackend) await backend.close();
  };
  const vector = (name: string): Float32Array => {
    const t = file.tensors.get(name)!;
    const out = new Float32Array(numel(t.shape));
    dequantizeRow(t.dtype, file.read(name), out, out.length);
    progress(name);
    return out;
  };
  /** A projection in its stored format: FP8 with its tile scales, or a plain float matrix. */
  const matrix = async (name: string): Promise<Tensor> => {
    const t = file.tensors.get(`${name}.weight`)!;
    const scaled = file.tensors.has(`${name}.weight_scale_inv`);
    const format: WeightFormat = scaled ? FP8_BLOCK_F32 : { dtype: t.dtype };
    const w = await backend.loadWeight(file, { name: `${name}.weight`, format, shape: [t.shape[0], t.shape[1]], scaleName: scaled ? `${name}.weight_scale_inv` : undefined });
    loaded.push(w);
    progress(`${name}.weight`);
    if (scaled) progress(`${name}.weight_scale_inv`);
    return w;
  };
  const f32Matrix = (rows: number, cols: number, values: Float32Array, what: string): Tensor => {
    const t = backend.allocWeight({ dtype: 'f32' }, [rows, cols], what);
    backend.upload(t, values);
    loaded.push(t);
    return t;
  };
  const mlp = async (p: string): Promise<MlpWeights> => ({ w1: await matrix(`${p}.gate_proj`), w2: await matrix(`${p}.down_proj`), w3: await matrix(`${p}.up_proj`) });

  /** kv_b split per head for the absorbed form: B_kᵀ [H·r, nope] and B_v [H·v, r], dequantised to f32. */
  const absorbed = (name: string): { ukT: Tensor; uv: Tensor } => {
    const H = c.heads, r = c.kvLoraRank, nope = c.nopeDim, V = c.vDim, kvw = nope + V;
    const t = file.tensors.get(`${name}.weight`)!;
    const B = file.tensors.has(`${name}.weight_scale_inv`)
      ? dequantize(FP8_BLOCK_F32, file.read(`${name}.weight`), H * kvw, r, file.read(`${name}.weight_scale_inv`))
      : dequantize({ dtype: t.dtype }, file.read(`${name}.weight`), H * kvw, r);
    const ukT = new Float32Array(H * r * nope), uv = new Float32Array(H * V * r);
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < nope; j++) for (let i = 0; i < r; i++) ukT[(h * r + i) * nope + j] = B[(h * kvw + j) * r + i];
      uv.set(B.subarray((h * kvw + nope) * r, (h * kvw + kvw) * r), h * V * r);
    }
    return { ukT: f32Matrix(H * r, nope, ukT, `${name} (absorbed k)`), uv: f32Matrix(H * V, r, uv, `${name} (absorbed v)`) };
  };

  try {
    const embedInfo = file.tensors.get('model.embed_tokens.weight')!;
    const embed = await backend.load(file, 'model.embed_tokens.weight', embedInfo.dtype, embedInfo.shape);
    loaded.push(embed);
    progress('model.embed_tokens.weight');
    const layers: V3LayerWeights[] = [];
    for (let l = 0; l < c.layers; l++) {
      const p = v3LayerPrefix(l), a = `${p}.self_attn`;
      const experts = new Map<number, Promise<MlpWeights>>();
      layers.push({
        attnNorm: vector(`${p}.input_layernorm.weight`),
        ffnNorm: vector(`${p}.post_attention_layernorm.weight`),
        ...(c.qLoraRank
          ? { wqA: await matrix(`${a}.q_a_proj`), qNorm: vector(`${a}.q_a_layernorm.weight`), wqB: await matrix(`${a}.q_b_proj`) }
          : { wqB: await matrix(`${a}.q_proj`) }),
        wkvA: await matrix(`${a}.kv_a_proj_with_mqa`),
        kvNorm: vector(`${a}.kv_a_layernorm.weight`),
        wkvB: await matrix(`${a}.kv_b_proj`),
        ...absorbed(`${a}.kv_b_proj`),
        wo: await matrix(`${a}.o_proj`),
        ...(l < c.denseLayers ? { mlp: await mlp(`${p}.mlp`) } : {
          moe: {
            gate: await matrix(`${p}.mlp.gate`),
            bias: c.selectionBias ? vector(`${p}.mlp.gate.e_score_correction_bias`) : undefined,
            expert: (e: number) => {
              let w = experts.get(e);
              if (!w) experts.set(e, (w = mlp(`${p}.mlp.experts.${e}`)));
              return w;
            },
            shared: c.sharedExperts ? await mlp(`${p}.mlp.shared_experts`) : undefined,
          },
        }),
      });
    }
    const weights: V3Weights = {
      embed, layers, norm: vector('model.norm.weight'), head: await matrix('lm_head'), ...ropeAndScale(c),
    };
    const numerics = { fp8Gemm: opts.actQuant ?? false, attention: opts.mlaForm ?? 'absorb' } as const;
    return new DeepseekV3Model(c, weights, deepseekTokenizer('v3', dir), backend, numerics, plan.description, release, file);
  } catch (err) {
    await release();
    file.close();
    throw err;
  }
}
