/**
 * A Llama-family Hugging Face directory: config.json (model_type llama, mistral, qwen2, qwen3),
 * safetensors weights by transformers' names, tokenizer.json (+ tokenizer_config.json).
 *
 * RoPE: transformers rotates NeoX halves (i, i + headDim/2) of the unpermuted Q/K rows for every
 * one of these models. (llama.cpp's converter permutes a llama's Q/K rows into adjacent pairs
 * instead; the per-head permutation leaves every q·k, hence the logits, unchanged.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WeightFile } from '../formats/weight-file.js';
import { tokenizerFromHF } from '../tokenizer/index.js';
import type { LlamaSource, LlamaTensorNames, OptionalLayerTensor } from './llama.js';
import { ropeTable, type RopeScaling } from './rope-scaling.js';

type Json = Record<string, unknown>;

/** config.json model types this loader reads. */
export const HF_LLAMA_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3'];

export const HF_LLAMA_NAMES: LlamaTensorNames = {
  embedding: 'model.embed_tokens.weight',
  outputNorm: 'model.norm.weight',
  output: 'lm_head.weight',
  layer: (i) => {
    const b = `model.layers.${i}.`;
    return {
      attnNorm: `${b}input_layernorm.weight`, q: `${b}self_attn.q_proj.weight`, k: `${b}self_attn.k_proj.weight`,
      v: `${b}self_attn.v_proj.weight`, o: `${b}self_attn.o_proj.weight`, ffnNorm: `${b}post_attention_layernorm.weight`,
      gate: `${b}mlp.gate_proj.weight`, up: `${b}mlp.up_proj.weight`, down: `${b}mlp.down_proj.weight`,
      optional: {
        qBias: `${b}self_attn.q_proj.bias`, kBias: `${b}self_attn.k_proj.bias`, vBias: `${b}self_attn.v_proj.bias`,
        oBias: `${b}self_attn.o_proj.bias`, qNorm: `${b}self_attn.q_norm.weight`, kNorm: `${b}self_attn.k_norm.weight`,
      },
    };
  },
};

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A JSON file of the model directory, or undefined when absent and optional. */
export function readJson(dir: string, name: string, required: boolean): Json | undefined {
  const p = path.join(dir, name);
  if (!fs.existsSync(p)) {
    if (required) throw new Error(`${dir}: no ${name}`);
    return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (e) {
    throw new Error(`${p}: invalid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new Error(`${p}: not a JSON object`);
  return v;
}

export function llamaFromHF(dir: string, config: Json, file: WeightFile): LlamaSource {
  const where = path.join(dir, 'config.json');
  const arch = String(config.model_type);
  if (!HF_LLAMA_ARCHITECTURES.includes(arch)) throw new Error(`${where}: model_type '${arch}' is not a Llama-family one (${HF_LLAMA_ARCHITECTURES.join(', ')})`);
  const num = (key: string, fallback?: number): number => {
    const v = config[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new Error(`${where}: ${key} is missing`);
      return fallback;
    }
    if (typeof v !== 'number') throw new Error(`${where}: ${key} must be a number, found ${JSON.stringify(v)}`);
    return v;
  };
  const dim = num('hidden_size'), heads = num('num_attention_heads');
  const kvHeads = num('num_key_value_heads', heads);
  const headDim = num('head_dim', dim / heads);
  if (!Number.isInteger(headDim) || heads % kvHeads !== 0) throw new Error(`${where}: ${heads} heads, ${kvHeads} KV heads and head_dim ${headDim} do not fit together`);
  if (num('partial_rotary_factor', 1) !== 1) throw new Error(`${where}: partial_rotary_factor ${String(config.partial_rotary_factor)} is not supported`);
  const layers = num('num_hidden_layers');

  const params = isObject(config.rope_parameters) ? config.rope_parameters : {};
  const base = num('rope_theta', typeof params.rope_theta === 'number' ? params.rope_theta : 10000);
  const rs = isObject(config.rope_scaling) ? config.rope_scaling : params;
  const table = ropeTable(base, headDim, ropeScaling(where, rs));

  const requires: OptionalLayerTensor[] = arch === 'qwen2' ? ['qBias', 'kBias', 'vBias'] : arch === 'qwen3' ? ['qNorm', 'kNorm'] : [];
  if (config.attention_bias === true) requires.push('qBias', 'kBias', 'vBias', 'oBias');

  const tokenizerJson = readJson(dir, 'tokenizer.json', true)!;
  return {
    file,
    names: HF_LLAMA_NAMES,
    tokenizer: tokenizerFromHF(tokenizerJson, readJson(dir, 'tokenizer_config.json', false) ?? {}),
    config: {
      architecture: arch, dim, layers, heads, kvHeads, headDim,
      ffnDim: num('intermediate_size'),
      eps: num('rms_norm_eps'),
      contextLength: num('max_position_embeddings'),
      ropeLayout: 'neox',
      ropeFreqs: table.freqs,
      windows: windows(where, config, arch, layers),
      requires,
      details: { source: 'huggingface', ropeBase: base, ropeScaling: table.summary },
    },
  };
}

function ropeScaling(where: string, rs: Json): RopeScaling {
  const type = rs.rope_type ?? rs.type ?? 'default';
  const n = (key: string, fallback?: number): number => {
    const v = rs[key] ?? fallback;
    if (typeof v !== 'number') throw new Error(`${where}: rope_scaling.${key} must be a number, found ${JSON.stringify(v)}`);
    return v;
  };
  switch (type) {
    case 'default': return { type: 'none' };
    case 'linear': return { type: 'linear', factor: n('factor') };
    case 'llama3':
      return {
        type: 'llama3', factor: n('factor'), lowFreqFactor: n('low_freq_factor', 1), highFreqFactor: n('high_freq_factor', 4),
        originalContext: n('original_max_position_embeddings', 8192),
      };
    default: throw new Error(`${where}: rope_scaling type '${String(type)}' is not supported (default, linear, llama3)`);
  }
}

/** Each layer's sliding window: mistral's sliding_window; qwen's when use_sliding_window (layers from max_window_layers on). */
function windows(where: string, config: Json, arch: string, layers: number): number[] {
  const sw = config.sliding_window;
  const size = typeof sw === 'number' && sw > 0 ? sw : 0;
  const out = new Array<number>(layers).fill(0);
  if (!size) return out;
  if (Array.isArray(config.layer_types)) {
    if (config.layer_types.length !== layers) throw new Error(`${where}: layer_types has ${config.layer_types.length} entries for ${layers} layers`);
    config.layer_types.forEach((t, i) => { if (t === 'sliding_attention') out[i] = size; });
    return out;
  }
  if (arch === 'mistral') return out.fill(size);
  if (config.use_sliding_window === true) {
    const from = typeof config.max_window_layers === 'number' ? config.max_window_layers : 0;
    for (let i = from; i < layers; i++) out[i] = size;
  }
  return out;
}
