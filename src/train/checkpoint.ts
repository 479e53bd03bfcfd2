/**
 * What a training run writes to its output directory:
 *
 * - `config.json` + `model.safetensors`: the model in the official DeepSeek-V4 layout (spec §11),
 *   every tensor in the dtype v4Tensors names — FP8 E4M3 with 128×128 E8M0 tiles, routed experts
 *   FP4 E2M1 with E8M0 per 32 inputs (stored I8, two codes a byte), BF16 norms / embedding / head,
 *   F32 mHC and bias tensors, I64 hash tables — so loadModel and `minke run` take it as they take a
 *   released checkpoint. The quantisation is one round to nearest (power-of-two scales from each
 *   tile's amax, as src/tensor/dequantize.ts quantize); training itself keeps f32 master weights.
 * - `train-state.safetensors`: what resuming needs, exactly — the f32 master weights
 *   (`param.<name>`), the hash tables (`hash.<name>`, I32), the optimiser moments
 *   (`opt.<name>.m` / `.v`) and, in the metadata's `minke.train`, the step, sequences consumed,
 *   seed, data id, per-tensor update counts and the model / run settings.
 *
 * Every file is written to a temporary name and renamed into place, so a crash mid-write leaves
 * the previous checkpoint whole. The train state is written last: it is the commit point.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from '../formats/safetensors.js';
import { writeFileAtomically } from '../formats/file-write.js';
import { writeSafetensors, type SafetensorsWriteTensor } from '../formats/safetensors-writer.js';
import { v4ConfigFromHF, v4Tensors } from '../models/deepseek-v4-config.js';
import { quantize } from '../tensor/dequantize.js';
import { FP4_E8M0_32, FP8_BLOCK_E8M0 } from '../tensor/dtype.js';
import { quantizeRow } from '../tensor/quant-gguf.js';
import { type FloatArray, parameter, type Tensor } from './autograd.js';
import type { OptimizerState } from './optim.js';
import { isTrainable, loadV4Params, v4ParamSpecs, type V4TrainParams } from './v4-train-params.js';

export const TRAIN_STATE_FILE = 'train-state.safetensors';
const STATE_KEY = 'minke.train';

/** The keys minke adds to a model's config.json so that it reads as an official V4 checkpoint. */
export function v4HFConfig(model: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['DeepseekV4ForCausalLM'],
    model_type: 'deepseek_v4',
    torch_dtype: 'bfloat16',
    expert_dtype: 'fp4',
    quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', scale_fmt: 'ue8m0', weight_block_size: [128, 128] },
    ...model,
  };
}

/** Writes `text` to `file` through a temporary name. */
export function writeTextAtomically(file: string, text: string): void {
  const bytes = new TextEncoder().encode(text);
  writeFileAtomically(file, bytes.length, (write) => write(bytes, 0));
}

const toF32 = (a: FloatArray): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Copies the tokenizer files of `from` (those it has) into the model directory `to`, unless they are the same files. */
export function copyTokenizerFiles(from: string, to: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    const src = path.join(from, f);
    if (fs.existsSync(src) && path.resolve(src) !== path.resolve(to, f)) fs.copyFileSync(src, path.join(to, f));
  }
}

/**
 * Writes `params` as a DeepSeek-V4 checkpoint in `dir` (config.json from `hfConfig` completed by
 * v4HFConfig, model.safetensors in the official tensor order and dtypes).
 */
export function exportV4Checkpoint(dir: string, params: V4TrainParams, hfConfig: Record<string, unknown>): void {
  const json = v4HFConfig(hfConfig);
  const c = v4ConfigFromHF(json, path.join(dir, 'config.json'));
  fs.mkdirSync(dir, { recursive: true });
  const scales = new Map<string, Uint8Array>();
  const tensor = (name: string): Tensor => {
    const t = params.tensors.get(name);
    if (!t) throw new Error(`exportV4Checkpoint: no parameter '${name}'`);
    return t;
  };
  const tensors: SafetensorsWriteTensor[] = v4Tensors(c).map((e) => {
    const data = (): Uint8Array => {
      switch (e.dtype) {
        case 'e8m0': {
          const s = scales.get(e.name);
          if (!s) throw new Error(`exportV4Checkpoint: scale '${e.name}' comes before its weight`);
          scales.delete(e.name);
          return s;
        }
        case 'f8_e4m3':
        case 'i8': {
          const t = tensor(e.name), [rows, cols] = t.shape;
          const q = quantize(e.dtype === 'i8' ? FP4_E8M0_32 : FP8_BLOCK_E8M0, toF32(t.data), rows, cols);
          scales.set(e.name.replace(/\.weight$/, '.scale'), q.scale!);
          return q.data;
        }
        case 'bf16': {
          const t = tensor(e.name), out = new Uint8Array(2 * t.size);
          quantizeRow('bf16', toF32(t.data), out, t.size);
          return out;
        }
        case 'f32':
          return bytesOf(toF32(tensor(e.name).data).slice());
        case 'i64': {
          const table = params.hashTables.get(e.name);
          if (!table) throw new Error(`exportV4Checkpoint: no hash table '${e.name}'`);
          return bytesOf(BigInt64Array.from(table, (x) => BigInt(x)));
        }
        default:
          throw new Error(`exportV4Checkpoint: tensor '${e.name}' has dtype ${e.dtype}, which this writer does not produce`);
      }
    };
    return { name: e.name, dtype: e.dtype, shape: e.shape, data };
  });
  writeTextAtomically(path.join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

// ---- train state --------------------------------------------------------------------------------

/** The run's position and settings, stored in the train state's metadata. */
export interface TrainStateMeta {
  /** Optimiser updates taken. */
  readonly step: number;
  /** Sequences read from the source (the data position). */
  readonly consumed: number;
  readonly seed: number;
  /** SequenceSource.id of the data. */
  readonly source: string;
  /** The model's HF config.json object. */
  readonly model: Record<string, unknown>;
  /** Anything else the caller wants back (optimiser and loss settings, batch size). */
  readonly settings: Record<string, unknown>;
}

export interface TrainState {
  readonly meta: TrainStateMeta;
  readonly params: V4TrainParams;
  readonly optimizer: OptimizerState;
}

/** Writes the exact training state to `file` (f32 parameters; an f64 run is refused). */
export function writeTrainState(file: string, params: V4TrainParams, optimizer: OptimizerState, meta: TrainStateMeta): void {
  if (params.precision !== 'f32') throw new Error('writeTrainState: training state is saved from f32 parameters only');
  const tensors: SafetensorsWriteTensor[] = [];
  for (const [name, t] of params.tensors) tensors.push({ name: `param.${name}`, dtype: 'f32', shape: t.shape, data: bytesOf(t.data) });
  for (const [name, table] of params.hashTables) tensors.push({ name: `hash.${name}`, dtype: 'i32', shape: [table.length], data: bytesOf(table) });
  for (const [name, m] of optimizer.moments) tensors.push({ name: `opt.${name}`, dtype: 'f32', shape: [m.length], data: bytesOf(toF32(m)) });
  const state = { version: 1, ...meta, optimizer: { step: optimizer.step, counts: optimizer.counts } };
  writeSafetensors(file, tensors, { [STATE_KEY]: JSON.stringify(state) });
}

/** Reads a train state written by writeTrainState, checking it holds every tensor its model needs. */
export function readTrainState(file: string): TrainState {
  if (!fs.existsSync(file)) throw new Error(`${file}: no training state to resume from`);
  const f = openSafetensors(file);
  try {
    const raw = f.metadata[STATE_KEY];
    if (!raw) throw new Error(`${file}: not a minke training state (no '${STATE_KEY}' metadata)`);
    const { version, optimizer, ...meta } = JSON.parse(raw) as TrainStateMeta & { version: number; optimizer: { step: number; counts: Record<string, number> } };
    if (version !== 1) throw new Error(`${file}: training state version ${version}, this minke reads version 1`);
    const config = v4ConfigFromHF(v4HFConfig(meta.model), `${file} (model config)`);
    const read = <T>(name: string, make: (b: ArrayBuffer) => T): T => {
      if (!f.tensors.has(name)) throw new Error(`${file}: missing tensor '${name}'`);
      return make(f.read(name).slice().buffer);
    };
    const tensors = new Map<string, Tensor>(), hashTables = new Map<string, Int32Array>();
    for (const spec of v4ParamSpecs(config)) {
      if (spec.stored === 'i64') {
        hashTables.set(spec.name, read(`hash.${spec.name}`, (b) => new Int32Array(b)));
        continue;
      }
      const data = read(`param.${spec.name}`, (b) => new Float32Array(b));
      if (data.length !== spec.shape.reduce((a, b) => a * b, 1)) throw new Error(`${file}: 'param.${spec.name}' has ${data.length} values, expected [${spec.shape.join(', ')}]`);
      tensors.set(spec.name, parameter(spec.shape, data, isTrainable(spec.name)));
    }
    const moments = new Map<string, FloatArray>();
    for (const name of f.tensors.keys()) {
      if (name.startsWith('opt.')) moments.set(name.slice(4), read(name, (b) => new Float32Array(b)));
    }
    return {
      meta,
      params: { config, precision: 'f32', tensors, hashTables },
      optimizer: { step: optimizer.step, counts: optimizer.counts, moments },
    };
  } finally {
    f.close();
  }
}

/**
 * The weights to continue from in `dir`: the f32 master weights of its train state when it has
 * one (a minke training run), else the checkpoint's stored weights dequantised.
 */
export function loadTrainedParams(dir: string): V4TrainParams {
  const state = path.join(dir, TRAIN_STATE_FILE);
  return fs.existsSync(state) ? readTrainState(state).params : loadV4Params(dir);
}
