/**
 * The parameters of a DeepSeek-V4 model for training: every tensor of the official checkpoint
 * layout (deepseek-v4-config.ts v4Tensors) under its checkpoint name, as a float tensor of the
 * logical shape — FP8 and FP4 weights dequantised (noquant: no activation quantisation is
 * simulated in training), `.scale` tensors folded in — plus the hash-routing tables as integers.
 * Loaded from a checkpoint directory, or initialised at random from a seed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from '../formats/safetensors.js';
import { v4ConfigFromHF, v4Tensors, type V4Config } from '../models/deepseek-v4-config.js';
import { dequantize } from '../tensor/dequantize.js';
import { FP4_E8M0_32, FP8_BLOCK_E8M0 } from '../tensor/dtype.js';
import { dequantizeRow } from '../tensor/quant-gguf.js';
import { allocFloats, type FloatArray, parameter, type Precision, sizeOf, type Tensor } from './autograd.js';
import { Rng } from './rng.js';

export interface V4TrainParams {
  readonly config: V4Config;
  readonly precision: Precision;
  /** Checkpoint name → tensor ('layers.0.attn.wq_a.weight' is [q_lora_rank, dim] f32/f64). */
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Hash layers' `ffn.gate.tid2eid` [vocab, K] expert ids. */
  readonly hashTables: ReadonlyMap<string, Int32Array>;
}

export interface ParamSpec {
  readonly name: string;
  /** Logical shape (FP4 experts: [out, in], not the packed [out, in/2]). */
  readonly shape: readonly number[];
  /** Stored format in an official checkpoint. */
  readonly stored: 'fp8' | 'fp4' | 'bf16' | 'f32' | 'i64';
}

/**
 * The tensors of configuration `c`, scales folded into their weights. `ffn.gate.bias` is not
 * trained by gradient (aux-loss-free load balancing updates it by rule), every other float is.
 */
export function v4ParamSpecs(c: V4Config): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const e of v4Tensors(c)) {
    if (e.name.endsWith('.scale')) continue;
    const stored = e.dtype === 'f8_e4m3' ? 'fp8' : e.dtype === 'i8' ? 'fp4' : e.dtype === 'i64' ? 'i64' : e.dtype === 'bf16' ? 'bf16' : 'f32';
    out.push({ name: e.name, shape: stored === 'fp4' ? [e.shape[0], 2 * e.shape[1]] : e.shape, stored });
  }
  return out;
}

export const isTrainable = (name: string): boolean => !name.endsWith('.ffn.gate.bias');

/** Reads a V4 checkpoint directory (config.json + safetensors) into training parameters. */
export function loadV4Params(dir: string, precision: Precision = 'f32'): V4TrainParams {
  const configPath = path.join(dir, 'config.json');
  const config = v4ConfigFromHF(JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>, configPath);
  const file = openSafetensors(dir);
  try {
    const expected = v4Tensors(config);
    const names = new Set(expected.map((e) => e.name));
    for (const e of expected) {
      const t = file.tensors.get(e.name);
      if (!t) throw new Error(`${file.path}: missing tensor '${e.name}' (${e.dtype} [${e.shape.join(', ')}] for this config.json)`);
      if (t.dtype !== e.dtype || t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
        throw new Error(`${file.path}: tensor '${e.name}' is ${t.dtype} [${t.shape.join(', ')}], expected ${e.dtype} [${e.shape.join(', ')}] for this config.json`);
      }
    }
    for (const name of file.tensors.keys()) {
      if (!names.has(name)) throw new Error(`${file.path}: tensor '${name}' is not part of a DeepSeek-V4 checkpoint with this config.json`);
    }
    const tensors = new Map<string, Tensor>(), hashTables = new Map<string, Int32Array>();
    for (const s of v4ParamSpecs(config)) {
      const bytes = file.read(s.name);
      if (s.stored === 'i64') {
        hashTables.set(s.name, expertTable(bytes, config.experts, `${file.path}: tensor '${s.name}'`));
        continue;
      }
      const [rows, cols] = s.shape.length === 2 ? s.shape : [1, s.shape[0]];
      let values: Float32Array;
      if (s.stored === 'fp8' || s.stored === 'fp4') {
        values = dequantize(s.stored === 'fp8' ? FP8_BLOCK_E8M0 : FP4_E8M0_32, bytes, rows, cols, file.read(s.name.replace(/\.weight$/, '.scale')));
      } else {
        values = new Float32Array(sizeOf(s.shape));
        dequantizeRow(s.stored, bytes, values, values.length);
      }
      const data = allocFloats(precision, values.length);
      data.set(values);
      tensors.set(s.name, parameter(s.shape, data, isTrainable(s.name)));
    }
    return { config, precision, tensors, hashTables };
  } finally {
    file.close();
  }
}

/** int64 expert ids → Int32Array, each checked to name an expert. */
function expertTable(bytes: Uint8Array, experts: number, what: string): Int32Array {
  const v = new BigInt64Array(bytes.slice().buffer);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const e = Number(v[i]);
    if (!(e >= 0 && e < experts)) throw new Error(`${what} routes to expert ${e}, but the config has ${experts} experts`);
    out[i] = e;
  }
  return out;
}

/**
 * Random parameters for configuration `c` from `seed`. Linear maps [out, in] are N(0, 1/in), the
 * residual-writing ones (attention wo_b, expert w2) further scaled by 1/sqrt(2·blocks); the
 * embedding is N(0, 1); RMSNorm weights and hc scales are 1; hc mixing projections are small
 * (N(0, 0.01/(Hc·D))) so every stream starts near pre = 1/2, post = 1, C = uniform; biases, sinks
 * and compressor position biases start at 0; each token's hash experts are K distinct random ones.
 */
export function initV4Params(c: V4Config, seed: number, precision: Precision = 'f32'): V4TrainParams {
  const rng = new Rng(seed);
  const tensors = new Map<string, Tensor>(), hashTables = new Map<string, Int32Array>();
  const blocks = c.layers + c.mtpLayers;
  for (const s of v4ParamSpecs(c)) {
    if (s.stored === 'i64') {
      hashTables.set(s.name, randomExperts(rng, c.vocab, c.experts, c.topK));
      continue;
    }
    const data = allocFloats(precision, sizeOf(s.shape));
    fill(data, s.name, s.shape, blocks, rng);
    tensors.set(s.name, parameter(s.shape, data, isTrainable(s.name)));
  }
  return { config: c, precision, tensors, hashTables };
}

function fill(data: FloatArray, name: string, shape: readonly number[], blocks: number, rng: Rng): void {
  const normal = (std: number) => { for (let i = 0; i < data.length; i++) data[i] = std * rng.normal(); };
  if (/hc_(attn|ffn|head)_fn$/.test(name)) return normal(0.1 / Math.sqrt(shape[1]));
  if (/(hc_(attn|ffn|head)_scale|norm\.weight)$/.test(name)) return void data.fill(1);
  if (name === 'embed.weight') return normal(1);
  if (shape.length === 2 && name.endsWith('.weight')) {
    const residual = /(attn\.wo_b|\.w2)\.weight$/.test(name);
    return normal((residual ? 1 / Math.sqrt(2 * blocks) : 1) / Math.sqrt(shape[1]));
  }
  // hc bases, attn_sink, ape, gate.bias: zero.
}

function randomExperts(rng: Rng, vocab: number, experts: number, K: number): Int32Array {
  const out = new Int32Array(vocab * K), pool = Int32Array.from({ length: experts }, (_, i) => i);
  for (let t = 0; t < vocab; t++) {
    // A partial Fisher–Yates shuffle: the first K of the pool are K distinct experts.
    for (let k = 0; k < K; k++) {
      const j = k + rng.int(experts - k);
      [pool[k], pool[j]] = [pool[j], pool[k]];
      out[t * K + k] = pool[k];
    }
  }
  return out;
}
