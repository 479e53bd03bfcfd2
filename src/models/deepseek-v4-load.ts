/**
 * Loads an official DeepSeek-V4 Hugging Face directory (config.json + sharded safetensors, spec
 * §11) into a DeepseekV4Model. No conversion: the checkpoint is checked tensor by tensor against
 * the layout its config implies, then every non-expert weight is read into backend memory in its
 * stored format (FP8 tiles, BF16, F32). Routed experts (~95 % of the bytes) are read from disk the
 * first time a token is routed to them, so the model starts in seconds and a machine with less RAM
 * than the checkpoint still runs — the experts that are never used never leave the disk.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Backend, type Tensor, numel } from '../kernels/backend.js';
import type { WeightFile } from '../formats/weight-file.js';
import { openSafetensors } from '../formats/safetensors.js';
import { FP4_E8M0_32, FP8_BLOCK_E8M0, type WeightFormat } from '../tensor/dtype.js';
import { deepseekTokenizer } from '../tokenizer/deepseek.js';
import {
  DeepseekV4Model, type AttentionWeights, type BlockWeights, type CompressorWeights, type DsparkV4Weights, type ExpertWeights,
  type HcWeights, type HeadMixer, type MoeWeights, type V4Weights, v4LayerStateBytes, v4RopeFreqs,
} from './deepseek-v4.js';
import { readVector } from './host-linear.js';
import { type ExpectedTensor, isRoutedExpert, layerKind, v4ConfigFromHF, v4Tensors, v4WithDsparkStages, type V4Config } from './deepseek-v4-config.js';
import { DEFAULT_CONTEXT } from './llama.js';
import { kernelDtype, memoryBytes, memoryFormat, storedSource } from '../quantize/block-format.js';
import type { LoadOptions, ModelDescription } from './model.js';

export const HF_V4_ARCHITECTURES = ['deepseek_v4'];

/** What a V4 checkpoint holds, worked out from config.json and the tensor table alone (no weights read). */
export interface V4Plan {
  readonly config: V4Config;
  readonly file: WeightFile;
  readonly expected: readonly ExpectedTensor[];
  readonly description: Omit<ModelDescription, 'stateBytesPerToken'>;
}

/** Opens `dir`, checks its tensors against the config, and describes it. The caller owns `file`. */
export function planV4(dir: string, json: Record<string, unknown>, opts: LoadOptions = {}): V4Plan {
  const where = path.join(dir, 'config.json');
  let config = v4ConfigFromHF(json, where);
  const file = openSafetensors(dir);
  try {
    if (config.dspark) config = dsparkFromTensors(config, file, where);
    const expected = v4Tensors(config);
    checkTensors(file, config, expected);
    return { config, file, expected, description: describe(config, file, expected, opts) };
  } catch (err) {
    file.close();
    throw err;
  }
}

/** The full description of a planned checkpoint, state per token sized for the default context. */
export function v4Description(plan: V4Plan, opts: LoadOptions): ModelDescription {
  const ctx = plan.description.details.defaultContext as number;
  return { ...plan.description, stateBytesPerToken: v4StateBytes(plan.config, ctx) / ctx };
}

/** State bytes of one sequence of `capacity` tokens, over every layer incl. MTP. */
export function v4StateBytes(c: V4Config, capacity: number): number {
  return c.compressRatios.reduce((s, r) => s + v4LayerStateBytes(c, r, capacity), 0);
}

/**
 * A V4-DSpark config with the checkpoint's own stage count (the mtp.N blocks: num_nextn_predict_layers
 * may stay 1, §8.2) and the stages' expert count (their gate's rows).
 */
function dsparkFromTensors(c: V4Config, file: WeightFile, where: string): V4Config {
  const stages = new Set<number>();
  for (const name of file.tensors.keys()) {
    const m = /^mtp\.(\d+)\./.exec(name);
    if (m) stages.add(Number(m[1]));
  }
  const gate = file.tensors.get('mtp.0.ffn.gate.weight');
  return v4WithDsparkStages(c, stages.size ? Math.max(...stages) + 1 : 0, gate?.shape[0] ?? c.dspark!.experts, where);
}

/** Every expected tensor present with its dtype and shape, and nothing the config does not explain. */
function checkTensors(file: WeightFile, c: V4Config, expected: readonly ExpectedTensor[]): void {
  const extra = c.dspark ? `${c.dspark.stages} DSpark stages` : `${c.mtpLayers} MTP`;
  checkTensorSet(file, expected, `a DeepSeek-V4 checkpoint with this config.json (${c.layers} layers, ${c.experts} experts, ${extra})`);
}

/**
 * Every expected tensor present with its dtype and shape, and nothing else the file holds unless
 * `tolerated` says so; `what` names the checkpoint kind in the error for a surplus tensor.
 */
export function checkTensorSet(file: WeightFile, expected: readonly ExpectedTensor[], what: string, tolerated: (name: string) => boolean = () => false): void {
  const names = new Set<string>();
  for (const e of expected) {
    names.add(e.name);
    const t = file.tensors.get(e.name);
    if (!t) throw new Error(`${file.path}: missing tensor '${e.name}' (${e.dtype} [${e.shape.join(', ')}] for this config.json)`);
    const sameShape = t.shape.length === e.shape.length && t.shape.every((d, i) => d === e.shape[i]);
    if (t.dtype !== e.dtype || !sameShape) {
      throw new Error(`${file.path}: tensor '${e.name}' is ${t.dtype} [${t.shape.join(', ')}], expected ${e.dtype} [${e.shape.join(', ')}] for this config.json`);
    }
  }
  for (const name of file.tensors.keys()) {
    if (!names.has(name) && !tolerated(name)) throw new Error(`${file.path}: tensor '${name}' is not part of ${what} — config and weights disagree`);
  }
}

function describe(c: V4Config, file: WeightFile, expected: readonly ExpectedTensor[], opts: LoadOptions) {
  const bytesByFormat: Record<string, number> = {};
  let parameters = 0, expertParameters = 0;
  for (const e of expected) {
    const t = file.tensors.get(e.name)!;
    const fmt = e.name.endsWith('.scale') ? 'e8m0 scales' : e.blocks ? memoryFormat(e.blocks.block) : isRoutedExpert(e.name) ? 'fp4_e2m1' : t.dtype;
    bytesByFormat[fmt] = (bytesByFormat[fmt] ?? 0) + (e.blocks ? memoryBytes(e.blocks) : t.byteLength);
    if (e.name.endsWith('.scale')) continue;
    // Two FP4 codes per I8; quantised matrices are u8 rows of blocks.
    const count = e.blocks ? e.blocks.rows * e.blocks.cols : isRoutedExpert(e.name) ? 2 * numel(e.shape) : numel(e.shape);
    parameters += count;
    if (isRoutedExpert(e.name)) expertParameters += count;
  }
  const active = parameters - expertParameters + (expertParameters * c.topK) / c.experts;
  const kinds = c.compressRatios.slice(0, c.layers).map(layerKind);
  const count = (k: string) => kinds.filter((x) => x === k).length;
  // State bytes per 1024 tokens of context beyond the fixed windows (§9.2), by layer kind.
  const perK = (ratio: number) => ratio === 0 ? 0 : 4 * (1024 / ratio) * (c.headDim + (ratio === 4 ? c.indexHeadDim : 0));
  const ratioOf = (k: string) => c.compressRatios.find((r, i) => i < c.layers && layerKind(r) === k) ?? 0;
  const defaultContext = Math.min(opts.contextLength ?? DEFAULT_CONTEXT, c.contextLength);
  return {
    architecture: 'deepseek_v4',
    parameters,
    weightBytes: bytesByFormat,
    contextLength: c.contextLength,
    layers: c.layers,
    vocabSize: c.vocab,
    mtpLayers: c.mtpLayers,
    ...(c.dspark ? { dsparkStages: c.dspark.stages } : {}),
    details: {
      activeParameters: Math.round(active),
      dim: c.dim, heads: c.heads, headDim: c.headDim, ropeDim: c.ropeDim, qLoraRank: c.qLoraRank,
      oGroups: c.oGroups, oLoraRank: c.oLoraRank, window: c.window,
      layerKinds: `${count('sliding')} sliding-window, ${count('csa')} CSA (ratio 4 + indexer top-${c.indexTopk}), ${count('hca')} HCA`,
      experts: `${c.experts} routed (top-${c.topK}, ${c.hashLayers} hash-routed layers) + 1 shared, inner ${c.moeInter}`,
      hyperConnections: `${c.hcMult} streams, ${c.hcIters} Sinkhorn iterations`,
      mtpBlocks: c.mtpLayers,
      ...(c.dspark ? {
        dspark: `${c.dspark.stages} stages (V4-DSpark form), block ${c.dspark.blockSize}, taps of layers ${c.dspark.targetLayers.join(', ')}, ${c.dspark.experts} experts top-${c.dspark.topK}, Markov rank ${c.dspark.markovRank}`,
      } : {}),
      slidingLayers: count('sliding'), csaLayers: count('csa'), hcaLayers: count('hca'),
      windowStateBytesPerLayer: 4 * c.window * c.headDim,
      csaStateBytesPer1KTokens: perK(ratioOf('csa') || 4),
      hcaStateBytesPer1KTokens: perK(ratioOf('hca') || 128),
      slidingStateBytesPer1KTokens: 0,
      defaultContext,
    },
  };
}

/** Loads a planned V4 checkpoint into `backend`. Takes ownership of plan.file. */
export async function loadV4(dir: string, plan: V4Plan, backend: Backend, opts: LoadOptions, ownsBackend: boolean): Promise<DeepseekV4Model> {
  const { config: c, file } = plan;
  const loaded: Tensor[] = [];
  const progressTotal = plan.expected.filter((e) => !isRoutedExpert(e.name)).reduce((s, e) => s + file.tensors.get(e.name)!.byteLength, 0);
  let progressDone = 0;
  const progress = (name: string) => {
    progressDone += file.tensors.get(name)!.byteLength;
    opts.onProgress?.(progressDone, progressTotal);
  };
  const track = (name: string, t: Tensor): Tensor => {
    loaded.push(t);
    if (!isRoutedExpert(name)) {
      progress(name);
      if (name.endsWith('.weight') && file.tensors.has(name.replace(/\.weight$/, '.scale'))) progress(name.replace(/\.weight$/, '.scale'));
    }
    return t;
  };
  const release = async () => {
    for (const t of loaded) backend.free(t);
    loaded.length = 0;
    if (ownsBackend) await backend.close();
  };

  const totalBytes = Object.values(plan.description.weightBytes).reduce((a, b) => a + b, 0);
  if (totalBytes > os.totalmem()) {
    opts.onWarning?.(`this checkpoint (${(totalBytes / 2 ** 30).toFixed(1)} GiB) is larger than this machine's memory (${(os.totalmem() / 2 ** 30).toFixed(1)} GiB): routed experts are read from disk when first used and stay in memory after; expect slow first tokens and paging once many experts are in use`);
  }

  const vector = (name: string): Float32Array => {
    const out = readVector(file, name);
    progress(name);
    return out;
  };
  const matrix = async (name: string, format: WeightFormat, shape: [number, number]): Promise<Tensor> =>
    track(`${name}.weight`, await backend.loadWeight(file, { name: `${name}.weight`, format, shape, scaleName: format.scale ? `${name}.scale` : undefined }));
  const fp8 = (name: string) => {
    const [rows, cols] = file.tensors.get(`${name}.weight`)!.shape;
    return matrix(name, FP8_BLOCK_E8M0, [rows, cols]);
  };
  // Matrices minke quantize stored as u8 rows of blocks (src/quantize/block-format.ts).
  const quantised = new Map(plan.expected.filter((e) => e.blocks).map((e) => [e.name, e.blocks!]));
  const blocks = async (name: string): Promise<Tensor | undefined> => {
    const q = quantised.get(name);
    if (!q) return undefined;
    const src = storedSource(file, q.block, q.rows, q.cols);
    return track(name, await backend.loadWeight(src, { name, format: { dtype: kernelDtype(q.block) }, shape: [q.rows, q.cols] }));
  };
  const fp4 = async (name: string): Promise<Tensor> => {
    const q = await blocks(`${name}.weight`);
    if (q) return q;
    const [rows, half] = file.tensors.get(`${name}.weight`)!.shape;
    return matrix(name, FP4_E8M0_32, [rows, 2 * half]);
  };
  const plain = async (name: string): Promise<Tensor> => {
    const q = await blocks(name);
    if (q) return q;
    const t = file.tensors.get(name)!;
    return track(name, await backend.loadWeight(file, { name, format: { dtype: t.dtype }, shape: [t.shape[0], t.shape[1]] }));
  };

  const hc = async (p: string): Promise<HcWeights> => ({ fn: await plain(`${p}_fn`), base: vector(`${p}_base`), scale: vector(`${p}_scale`) });
  const compressor = async (p: string, ratio: number, width: number): Promise<CompressorWeights> => ({
    ratio, width, overlap: ratio === 4,
    wkv: await plain(`${p}.wkv.weight`), wgate: await plain(`${p}.wgate.weight`),
    ape: vector(`${p}.ape`), norm: vector(`${p}.norm.weight`),
  });
  const expertSet = (p: string) => Promise.all([fp4(`${p}.w1`), fp4(`${p}.w2`), fp4(`${p}.w3`)]).then(([w1, w2, w3]) => ({ w1, w2, w3 }));
  const sharedSet = (p: string) => Promise.all([fp8(`${p}.w1`), fp8(`${p}.w2`), fp8(`${p}.w3`)]).then(([w1, w2, w3]) => ({ w1, w2, w3 }));

  const block = async (p: string, index: number, name: string): Promise<BlockWeights> => {
    const ratio = c.compressRatios[index];
    const woA = await fp8(`${p}.attn.wo_a`);
    const Ro = c.oLoraRank;
    const attn: AttentionWeights = {
      ratio, kind: layerKind(ratio), freqs: v4RopeFreqs(c, ratio),
      wqA: await fp8(`${p}.attn.wq_a`), qNorm: vector(`${p}.attn.q_norm.weight`),
      wqB: await fp8(`${p}.attn.wq_b`), wkv: await fp8(`${p}.attn.wkv`), kvNorm: vector(`${p}.attn.kv_norm.weight`),
      // Per-group views when the 128-row tiles split along group boundaries (every released model).
      woA: Ro % 128 === 0 ? Array.from({ length: c.oGroups }, (_, g) => backend.rows(woA, g * Ro, (g + 1) * Ro)) : [woA],
      woB: await fp8(`${p}.attn.wo_b`),
      sink: vector(`${p}.attn.attn_sink`),
      compressor: ratio > 0 ? await compressor(`${p}.attn.compressor`, ratio, c.headDim) : undefined,
      indexer: ratio === 4 ? {
        wqB: await fp8(`${p}.attn.indexer.wq_b`),
        weightsProj: await plain(`${p}.attn.indexer.weights_proj.weight`),
        compressor: await compressor(`${p}.attn.indexer.compressor`, ratio, c.indexHeadDim),
      } : undefined,
    };
    const experts = new Map<number, Promise<ExpertWeights>>();
    const ffn: MoeWeights = {
      gate: await plain(`${p}.ffn.gate.weight`),
      bias: index < c.hashLayers ? undefined : vector(`${p}.ffn.gate.bias`),
      tid2eid: index < c.hashLayers ? hashTable(file, `${p}.ffn.gate.tid2eid`, c.experts, progress) : undefined,
      expert: (e) => {
        let w = experts.get(e);
        if (!w) experts.set(e, (w = expertSet(`${p}.ffn.experts.${e}`)));
        return w;
      },
      shared: await sharedSet(`${p}.ffn.shared_experts`),
    };
    return {
      name, attn, ffn,
      attnNorm: vector(`${p}.attn_norm.weight`), ffnNorm: vector(`${p}.ffn_norm.weight`),
      hcAttn: await hc(`${p}.hc_attn`), hcFfn: await hc(`${p}.hc_ffn`),
    };
  };
  const headMixer = async (p: string, norm: string): Promise<HeadMixer> => ({
    fn: await plain(`${p}hc_head_fn`), base: vector(`${p}hc_head_base`), scale: vector(`${p}hc_head_scale`), norm: vector(norm),
  });

  // V4-DSpark stages (deepseek-v41.md §8.2): V4 blocks, main_proj on the first, the heads on the last.
  const dsparkWeights = async (S: number): Promise<DsparkV4Weights> => {
    const stages: BlockWeights[] = [];
    for (let s = 0; s < S; s++) stages.push(await block(`mtp.${s}`, c.layers + s, `dspark${s}`));
    const last = `mtp.${S - 1}`;
    return {
      stages,
      mainProj: await fp8('mtp.0.main_proj'), mainNorm: vector('mtp.0.main_norm.weight'),
      head: await headMixer(`${last}.`, `${last}.norm.weight`),
      markovEmbed: await plain(`${last}.markov_head.markov_w1.weight`),
      markovHead: await plain(`${last}.markov_head.markov_w2.weight`),
      confidence: vector(`${last}.confidence_head.proj.weight`),
    };
  };

  try {
    const embedQ = quantised.get('embed.weight');
    const embed = track('embed.weight', embedQ
      ? await backend.load(file, 'embed.weight', kernelDtype(embedQ.block), [embedQ.rows, embedQ.cols])
      : await backend.load(file, 'embed.weight', 'bf16', file.tensors.get('embed.weight')!.shape));
    const blocks: BlockWeights[] = [];
    for (let l = 0; l < c.layers; l++) blocks.push(await block(`layers.${l}`, l, `layer${l}`));
    const weights: V4Weights = {
      embed, blocks,
      head: await plain('head.weight'),
      headMixer: await headMixer('', 'norm.weight'),
      mtp: await Promise.all(Array.from({ length: c.mtpLayers }, async (_, m) => {
        const p = `mtp.${m}`;
        return {
          block: await block(p, c.layers + m, `mtp${m}`),
          eProj: await fp8(`${p}.e_proj`), hProj: await fp8(`${p}.h_proj`),
          enorm: vector(`${p}.enorm.weight`), hnorm: vector(`${p}.hnorm.weight`),
          head: await headMixer(`${p}.`, `${p}.norm.weight`),
        };
      })),
      dspark: c.dspark && await dsparkWeights(c.dspark.stages),
    };
    const numerics = { actQuant: opts.actQuant ?? true, kvQuant: opts.kvQuant ?? true };
    const tokenizer = deepseekTokenizer('v4', dir);
    // The model's own tokenizer must fit its embedding (a smaller one only leaves rows unused).
    // Without one, the packaged V4 tokenizer stands in and small test configs are driven by ids.
    if (fs.existsSync(path.join(dir, 'tokenizer.json')) && tokenizer.vocabSize > c.vocab) {
      throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${c.vocab}; the model cannot embed the tokenizer's ids`);
    }
    return new DeepseekV4Model(c, weights, tokenizer, backend, numerics, v4Description(plan, opts), release, file);
  } catch (err) {
    await release();
    file.close();
    throw err;
  }
}

/** The hash-routing table [vocab, K] as int32, every id checked to be an expert. */
function hashTable(file: WeightFile, name: string, experts: number, progress: (name: string) => void): Int32Array {
  const bytes = file.read(name);
  const v = new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const e = Number(v[i]);
    if (!(e >= 0 && e < experts)) throw new Error(`${file.path}: tensor '${name}' routes to expert ${e}, but the config has ${experts} experts`);
    out[i] = e;
  }
  progress(name);
  return out;
}

