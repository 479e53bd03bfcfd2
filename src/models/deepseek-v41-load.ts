/**
 * Loads an official DeepSeek-V4.1 directory (config.json in the flat `inference/` form or the
 * nested Hugging Face form + sharded safetensors, spec §2, §11) into a DeepseekV41Model. As for
 * V4: the checkpoint is checked tensor by tensor against the layout its config implies, non-expert
 * weights are read into backend memory in their stored format (FP8 with 32×32 E8M0 blocks, BF16,
 * F32), routed experts on first use. Engram tables (≈203 GB in Flash) are never loaded: their
 * rows are read from the files on demand through a bounded cache (engram.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Backend, type Tensor, numel } from '../kernels/backend.js';
import type { WeightFile } from '../formats/weight-file.js';
import { openSafetensors } from '../formats/safetensors.js';
import { FP4_E8M0_32, FP8_BLOCK32_E8M0, type WeightFormat } from '../tensor/dtype.js';
import { deepseekTokenizer } from '../tokenizer/deepseek.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { isRoutedExpert, type ExpectedTensor } from './deepseek-v4-config.js';
import { v4RopeFreqs } from './deepseek-v4.js';
import { checkTensorSet } from './deepseek-v4-load.js';
import type { ExpertWeights, MoeWeights } from './deepseek-moe.js';
import { DeepseekV41Model, V41_SLACK, type DsparkWeights, type EngramWeights, type V41Attention, type V41Block, type V41Weights } from './deepseek-v41.js';
import { isVisionOnly, v41ConfigFromJson, v41Tensors, type V41Config } from './deepseek-v41-config.js';
import { EngramTable, engramTokenMap } from './engram.js';
import { readVector } from './host-linear.js';
import { DEFAULT_CONTEXT } from './llama.js';
import type { LoadOptions, ModelDescription } from './model.js';

export { isV41Config } from './deepseek-v41-config.js';

/** Rows each Engram table keeps decoded in memory (LRU; 48 rows are read per token in Flash). */
export const ENGRAM_CACHE_ROWS = 1 << 16;

export interface V41Plan {
  readonly config: V41Config;
  readonly file: WeightFile;
  readonly expected: readonly ExpectedTensor[];
  readonly description: ModelDescription;
}

const isEngramTable = (name: string) => name.includes('.engram.embed.');

/** Opens `dir`, checks its tensors against the config, and describes it. The caller owns `file`. */
export function planV41(dir: string, json: Record<string, unknown>, opts: LoadOptions = {}): V41Plan {
  const config = v41ConfigFromJson(json, path.join(dir, 'config.json'));
  const file = openSafetensors(dir);
  try {
    const expected = v41Tensors(config);
    checkTensorSet(file, expected, 'a DeepSeek-V4.1 checkpoint with this config.json', (name) => config.visionLayers > 0 && isVisionOnly(name));
    return { config, file, expected, description: describe(config, file, expected, opts) };
  } catch (err) {
    file.close();
    throw err;
  }
}

/** State bytes of one sequence of `capacity` tokens: window rings, compressed entries, index keys. */
export function v41StateBytes(c: V41Config, capacity: number): number {
  let floats = (c.layers + c.stages) * (c.window + V41_SLACK) * c.headDim;
  for (const l of c.kvSourceLayers) {
    const r = c.compressRatios[l], entries = Math.floor(capacity / r);
    floats += entries * (c.headDim + (c.indexSourceLayers.includes(l) ? c.indexHeadDim : 0)) + (r === 2 ? (V41_SLACK + 2) * 2 * c.headDim : 0);
  }
  return 4 * floats;
}

function describe(c: V41Config, file: WeightFile, expected: readonly ExpectedTensor[], opts: LoadOptions): ModelDescription {
  const bytesByFormat: Record<string, number> = {};
  let parameters = 0, expertParameters = 0, engramParameters = 0;
  for (const e of expected) {
    const t = file.tensors.get(e.name)!;
    const fmt = e.name.endsWith('.scale') ? 'e8m0 scales' : isRoutedExpert(e.name) ? 'fp4_e2m1' : isEngramTable(e.name) ? 'engram f8_e4m3 (on disk)' : t.dtype;
    bytesByFormat[fmt] = (bytesByFormat[fmt] ?? 0) + t.byteLength;
    if (e.name.endsWith('.scale')) continue;
    const count = isRoutedExpert(e.name) ? 2 * numel(e.shape) : numel(e.shape);
    parameters += count;
    if (isRoutedExpert(e.name) && e.name.startsWith('layers.')) expertParameters += count;
    if (isEngramTable(e.name)) engramParameters += count;
  }
  // Per token: the routed experts it is sent to; Engram reads (N−1)·heads rows per layer.
  const engramActive = c.engram.layerIds.length * (c.engram.maxNgram - 1) * c.engram.heads * c.engram.headDim;
  const active = parameters - expertParameters - engramParameters + (expertParameters * c.topK) / c.experts + engramActive;
  const defaultContext = Math.min(opts.contextLength ?? DEFAULT_CONTEXT, c.contextLength);
  const ratio = (r: number) => c.compressRatios.slice(0, c.layers).filter((x) => x === r).length;
  // Only KV-source layers grow with the context (compressed entries + index keys, §9); the layers
  // that reuse them keep just their window.
  const sources = (r: number) => c.kvSourceLayers.filter((l) => c.compressRatios[l] === r);
  const perK = (r: number) => {
    const l = sources(r)[0];
    return l === undefined ? 0 : 4 * (1024 / r) * (c.headDim + (c.indexSourceLayers.includes(l) ? c.indexHeadDim : 0));
  };
  return {
    architecture: 'deepseek_v41',
    parameters,
    weightBytes: bytesByFormat,
    contextLength: c.contextLength,
    stateBytesPerToken: v41StateBytes(c, defaultContext) / defaultContext,
    layers: c.layers,
    vocabSize: c.vocab,
    dsparkStages: c.stages,
    details: {
      activeParameters: Math.round(active),
      engramParameters,
      dim: c.dim, heads: c.heads, headDim: c.headDim, ropeDim: c.ropeDim, qLoraRank: c.qLoraRank,
      oGroups: c.oGroups, oLoraRank: c.oLoraRank, window: c.window,
      layerKinds: `${ratio(0)} window-only, ${ratio(2)} ratio-2, ${ratio(1)} ratio-1 (CSA2: KV sources ${c.kvSourceLayers.join('/')}, indexers ${c.indexSourceLayers.join('/')}, top-${c.indexTopk})`,
      experts: `${c.experts} routed (top-${c.topK}) + 1 shared, inner ${c.moeInter}`,
      hyperConnections: `${c.hcMult} streams, ${c.hcIters} Sinkhorn iterations, single pass`,
      engram: `before blocks ${c.engram.layerIds.join(', ')}: ${c.engram.maxNgram - 1} n-gram orders × ${c.engram.heads} heads × ${c.engram.headDim}, rows read from disk`,
      dspark: c.stages ? `${c.stages} stages, block ${c.dspark.blockSize}, ${c.dspark.experts} experts top-${c.dspark.topK}` : 'none',
      windowStateBytesPerLayer: 4 * (c.window + V41_SLACK) * c.headDim,
      slidingLayers: c.layers - sources(2).length - sources(1).length, slidingStateBytesPer1KTokens: 0,
      ratio2Layers: sources(2).length, ratio2StateBytesPer1KTokens: perK(2),
      ratio1Layers: sources(1).length, ratio1StateBytesPer1KTokens: perK(1),
      defaultContext,
    },
  };
}

/** Loads a planned V4.1 checkpoint into `backend`. Takes ownership of plan.file. */
export async function loadV41(dir: string, plan: V41Plan, backend: Backend, opts: LoadOptions, ownsBackend: boolean): Promise<DeepseekV41Model> {
  const { config: c, file } = plan;
  const loaded: Tensor[] = [];
  const eager = plan.expected.filter((e) => !isRoutedExpert(e.name) && !isEngramTable(e.name));
  const progressTotal = eager.reduce((s, e) => s + file.tensors.get(e.name)!.byteLength, 0);
  let progressDone = 0;
  const progress = (name: string) => {
    progressDone += file.tensors.get(name)!.byteLength;
    opts.onProgress?.(progressDone, progressTotal);
  };
  const release = async () => {
    for (const t of loaded) backend.free(t);
    loaded.length = 0;
    if (ownsBackend) await backend.close();
  };
  if (c.visionLayers) opts.onWarning?.(`this checkpoint has a ${c.visionLayers}-layer vision tower; minke runs its text path only (images are not supported yet)`);
  const resident = Object.entries(plan.description.weightBytes).filter(([k]) => !k.startsWith('engram')).reduce((a, [, b]) => a + b, 0);
  if (resident > os.totalmem()) {
    opts.onWarning?.(`this checkpoint's weights without Engram tables (${(resident / 2 ** 30).toFixed(1)} GiB) are larger than this machine's memory (${(os.totalmem() / 2 ** 30).toFixed(1)} GiB): routed experts are read from disk when first used; expect slow first tokens and paging`);
  }

  const vector = (name: string): Float32Array => {
    const out = readVector(file, name);
    progress(name);
    return out;
  };
  const weight = async (name: string, format: WeightFormat, shape: [number, number]): Promise<Tensor> => {
    const t = await backend.loadWeight(file, { name: `${name}.weight`, format, shape, scaleName: format.scale ? `${name}.scale` : undefined });
    loaded.push(t);
    if (!isRoutedExpert(name)) {
      progress(`${name}.weight`);
      if (format.scale) progress(`${name}.scale`);
    }
    return t;
  };
  const fp8 = (name: string) => {
    const [rows, cols] = file.tensors.get(`${name}.weight`)!.shape;
    return weight(name, FP8_BLOCK32_E8M0, [rows, cols]);
  };
  const fp4 = (name: string) => {
    const [rows, half] = file.tensors.get(`${name}.weight`)!.shape;
    return weight(name, FP4_E8M0_32, [rows, 2 * half]);
  };
  const plain = async (name: string): Promise<Tensor> => {
    const t = file.tensors.get(name)!;
    const w = await backend.loadWeight(file, { name, format: { dtype: t.dtype }, shape: [t.shape[0], t.shape[1]] });
    loaded.push(w);
    progress(name);
    return w;
  };
  const has = (name: string) => file.tensors.has(name);

  const block = async (p: string, index: number, name: string): Promise<V41Block> => {
    const ratio = c.compressRatios[index], Ro = c.oLoraRank;
    const woA = await fp8(`${p}.attn.wo_a`);
    const attn: V41Attention = {
      ratio, freqs: v4RopeFreqs(c, ratio),
      wqA: await fp8(`${p}.attn.wq_a`), qNorm: vector(`${p}.attn.q_norm.weight`),
      wqB: await fp8(`${p}.attn.wq_b`), wkv: await fp8(`${p}.attn.wkv`), kvNorm: vector(`${p}.attn.kv_norm.weight`),
      woA: Ro % 32 === 0 ? Array.from({ length: c.oGroups }, (_, g) => backend.rows(woA, g * Ro, (g + 1) * Ro)) : [woA],
      woB: await fp8(`${p}.attn.wo_b`),
      sink: vector(`${p}.attn.attn_sink`),
      compressor: has(`${p}.attn.compressor.wkv.weight`) ? {
        wkv: await plain(`${p}.attn.compressor.wkv.weight`),
        wgate: has(`${p}.attn.compressor.wgate.weight`) ? await plain(`${p}.attn.compressor.wgate.weight`) : undefined,
        norm: vector(`${p}.attn.compressor.norm.weight`),
      } : undefined,
      indexer: has(`${p}.attn.indexer.wq_b.weight`) ? {
        wqB: await fp8(`${p}.attn.indexer.wq_b`),
        weightsProj: await plain(`${p}.attn.indexer.weights_proj.weight`),
        wk: has(`${p}.attn.indexer.wk.weight`) ? await plain(`${p}.attn.indexer.wk.weight`) : undefined,
        kNorm: has(`${p}.attn.indexer.k_norm.weight`) ? vector(`${p}.attn.indexer.k_norm.weight`) : undefined,
      } : undefined,
    };
    const experts = new Map<number, Promise<ExpertWeights>>();
    const ffn: MoeWeights = {
      gate: await plain(`${p}.ffn.gate.weight`),
      bias: vector(`${p}.ffn.gate.bias`),
      ...(has(`${p}.ffn.gate.bias_vl`) && index < c.layers ? { biasImage: vector(`${p}.ffn.gate.bias_vl`) } : {}),
      expert: (e) => {
        let w = experts.get(e);
        if (!w) {
          const q = `${p}.ffn.experts.${e}`;
          experts.set(e, (w = Promise.all([fp4(`${q}.w1`), fp4(`${q}.w2`), fp4(`${q}.w3`)]).then(([w1, w2, w3]) => ({ w1, w2, w3 }))));
        }
        return w;
      },
      shared: await Promise.all([fp8(`${p}.ffn.shared_experts.w1`), fp8(`${p}.ffn.shared_experts.w2`), fp8(`${p}.ffn.shared_experts.w3`)])
        .then(([w1, w2, w3]) => ({ w1, w2, w3 })),
    };
    let engram: EngramWeights | undefined;
    const e = index < c.layers ? c.engram.layerIds.indexOf(index) : -1;
    if (e >= 0) {
      const qw = vector(`${p}.engram.q_weight`), kw = vector(`${p}.engram.k_weight`);
      engram = {
        table: new EngramTable(file, `${p}.engram.embed`, c.engram.numEmbeddings[e], c.engram.headDim, ENGRAM_CACHE_ROWS),
        wkv: await fp8(`${p}.engram.wkv`),
        qk: qw.map((v, i) => v * kw[i]),
      };
    }
    return {
      name, attn, ffn, engram,
      attnNorm: vector(`${p}.attn_norm.weight`), ffnNorm: vector(`${p}.ffn_norm.weight`),
      hcAttn: await hcWeights(`${p}.hc_attn`), hcFfn: await hcWeights(`${p}.hc_ffn`),
    };
  };
  const hcWeights = async (p: string) => ({ fn: await plain(`${p}_fn`), base: vector(`${p}_base`), scale: vector(`${p}_scale`) });

  try {
    const embed = await plain('embed.weight');
    const blocks: V41Block[] = [];
    for (let l = 0; l < c.layers; l++) blocks.push(await block(`layers.${l}`, l, `layer${l}`));
    let dspark: DsparkWeights | undefined;
    if (c.stages) {
      const stages: V41Block[] = [];
      for (let s = 0; s < c.stages; s++) stages.push(await block(`mtp.${s}`, c.layers + s, `stage${s}`));
      const last = `mtp.${c.stages - 1}`;
      dspark = {
        stages,
        mainProj: await fp8('mtp.0.main_proj'), mainNorm: vector('mtp.0.main_norm.weight'),
        norm: vector(`${last}.norm.weight`),
        markovEmbed: await plain(`${last}.markov_head.embed.weight`),
        markovHead: await plain(`${last}.markov_head.head.weight`),
        confidence: vector(`${last}.confidence_head.proj.weight`),
      };
    }
    const weights: V41Weights = { embed, blocks, dspark, head: await plain('head.weight'), norm: vector('norm.weight') };
    const numerics = { actQuant: opts.actQuant ?? true, kvQuant: opts.kvQuant ?? true };
    const own = fs.existsSync(path.join(dir, 'tokenizer.json'));
    const tokenizer = deepseekTokenizer('v4', dir);
    if (own && tokenizer.vocabSize > c.vocab) {
      throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${c.vocab}; the model cannot embed the tokenizer's ids`);
    }
    const model = new DeepseekV41Model(c, weights, tokenizer, backend, numerics, plan.description, release, file);
    // The Engram map comes from the model's own tokenizer, or a file (checkpoints driven by ids).
    if (opts.engramMapPath) model.setEngramTokenMap(readInt32File(opts.engramMapPath));
    else if (own && c.engram.layerIds.length) model.setEngramTokenMap(tokenMapOf(tokenizer, c));
    return model;
  } catch (err) {
    await release();
    file.close();
    throw err;
  }
}

function readInt32File(file: string): Int32Array {
  const b = fs.readFileSync(file);
  if (b.length % 4) throw new Error(`${file}: ${b.length} bytes is not a whole number of int32 values`);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** §6A.2 from a tokenizer: every id decoded alone, and its raw token string (checked against the config's count when given). */
export function tokenMapOf(tok: Tokenizer, c: Pick<V41Config, 'vocab'> & { engram: { compressedVocab?: number } }): Int32Array {
  const decoded: string[] = [], raw: string[] = [];
  for (let id = 0; id < c.vocab; id++) {
    const inVocab = id < tok.vocabSize;
    decoded.push(inVocab ? tok.decode([id]) : '');
    raw.push(inVocab ? tok.tokenText(id) : '');
  }
  return engramTokenMap(decoded, raw, c.engram.compressedVocab);
}
