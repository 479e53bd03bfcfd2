/**
 * loadModel: any model file or directory minke runs, as a LanguageModel (model.ts).
 *
 * - a `.gguf` file (or a directory holding one): the architecture from `general.architecture`
 *   (`deepseek2` loads as DeepSeek-V3);
 * - a Hugging Face directory (config.json + safetensors + tokenizer.json), or one of its
 *   .safetensors files: the architecture from config.json's `model_type`;
 * - a llama2.c `.bin` checkpoint, with its tokenizer.bin / tok*.bin beside it (or `tokenizerPath`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { createBackend } from '../kernels/create-backend.js';
import { openGGUF } from '../formats/gguf.js';
import { openLlama2c } from '../formats/llama2c.js';
import { openSafetensors } from '../formats/safetensors.js';
import { describeLlama, loadLlama, type LlamaSource } from './llama.js';
import { GGUF_LLAMA_ARCHITECTURES, llamaFromGGUF } from './llama-gguf.js';
import { HF_LLAMA_ARCHITECTURES, llamaFromHF, readJson } from './llama-hf.js';
import { findLlama2cTokenizer, llamaFromLlama2c } from './llama-llama2c.js';
import { HF_V4_ARCHITECTURES, loadV4, planV4, v4Description } from './deepseek-v4-load.js';
import { isV41Config, loadV41, planV41 } from './deepseek-v41-load.js';
import { HF_V3_ARCHITECTURES, loadV3, planV3, type V3Plan } from './deepseek-v3-load.js';
import { GGUF_V3_ARCHITECTURES, planV3GGUF } from './deepseek-v3-gguf.js';
import type { LanguageModel, LoadOptions, ModelDescription } from './model.js';

export type { LanguageModel, LoadOptions, ModelDescription, Sequence } from './model.js';
export { LlamaModel } from './llama.js';

export async function loadModel(p: string, opts: LoadOptions = {}): Promise<LanguageModel> {
  const ds = deepseekDir(p);
  if (ds) return loadDeepseek(ds, opts);
  const src = openSource(p, opts);
  if (isV3(src)) return loadV3Plan(src, opts);
  let backend: Backend | undefined = opts.backend;
  try {
    backend ??= await createBackend(opts.backendKind, opts);
    return await loadLlama(src, backend, opts, opts.backend === undefined);
  } catch (err) {
    if (backend && !opts.backend) await backend.close();
    throw err;
  } finally {
    // Everything is in backend memory now (or failed to get there).
    src.file.close();
  }
}

/**
 * What the model at `p` is and needs (parameters, bytes per format, state per token) from its
 * config and tensor table alone — no weights are read. `minke info` and the pre-load summary use it.
 */
export function describeModel(p: string, opts: LoadOptions = {}): ModelDescription {
  const ds = deepseekDir(p);
  if (ds) {
    if (ds.kind === 'v41') {
      const plan = planV41(ds.dir, ds.config, opts);
      plan.file.close();
      return plan.description;
    }
    const plan = ds.kind === 'v4' ? planV4(ds.dir, ds.config, opts) : planV3(ds.dir, ds.config, opts);
    plan.file.close();
    return 'expected' in plan ? v4Description(plan, opts) : plan.description;
  }
  const src = openSource(p, opts);
  if (isV3(src)) {
    src.file.close();
    return src.description;
  }
  try {
    return describeLlama(src, opts);
  } finally {
    src.file.close();
  }
}

interface DeepseekDir {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly kind: 'v3' | 'v4' | 'v41';
}

/** The directory and config of `p` when it is (a file of) a DeepSeek-V3/V4 Hugging Face directory. */
function deepseekDir(p: string): DeepseekDir | undefined {
  if (!fs.existsSync(p)) return undefined;
  const dir = fs.statSync(p).isDirectory() ? p : (p.endsWith('.safetensors') || p.endsWith('.json')) ? path.dirname(p) : undefined;
  if (!dir || !fs.existsSync(path.join(dir, 'config.json'))) return undefined;
  const config = readJson(dir, 'config.json', true)!;
  const type = config.model_type as string;
  // V4.1's official flat config has no model_type; its keys say what it is.
  if (isV41Config(config)) return { dir, config, kind: 'v41' };
  if (HF_V4_ARCHITECTURES.includes(type)) return { dir, config, kind: 'v4' };
  if (HF_V3_ARCHITECTURES.includes(type)) return { dir, config, kind: 'v3' };
  return undefined;
}

async function loadDeepseek(ds: DeepseekDir, opts: LoadOptions): Promise<LanguageModel> {
  if (ds.kind === 'v3') return loadV3Plan(planV3(ds.dir, ds.config, opts), opts);
  if (ds.kind === 'v41') {
    const plan = planV41(ds.dir, ds.config, opts);
    return withBackend(opts, plan.file, (backend, owns) => loadV41(ds.dir, plan, backend, opts, owns));
  }
  const plan = planV4(ds.dir, ds.config, opts);
  return withBackend(opts, plan.file, (backend, owns) => loadV4(ds.dir, plan, backend, opts, owns));
}

/** A DeepSeek-V3 plan (HF directory or `deepseek2` GGUF) loaded; the model owns the plan's file. */
async function loadV3Plan(plan: V3Plan, opts: LoadOptions): Promise<LanguageModel> {
  return withBackend(opts, plan.file, (backend, owns) => loadV3(plan, backend, opts, owns));
}

/** Runs `load` with the given backend or a new CPU one; `file` is closed if no backend can be made. */
async function withBackend<T>(opts: LoadOptions, file: { close(): void }, load: (backend: Backend, owns: boolean) => Promise<T>): Promise<T> {
  let backend: Backend;
  try {
    backend = opts.backend ?? await createBackend(opts.backendKind, opts);
  } catch (err) {
    file.close();
    throw err;
  }
  return load(backend, opts.backend === undefined);
}

const isV3 = (src: LlamaSource | V3Plan): src is V3Plan => 'source' in src;

/** Opens the weights behind `p` and reads its configuration, or says clearly what it is not. */
function openSource(p: string, opts: LoadOptions): LlamaSource | V3Plan {
  if (!fs.existsSync(p)) throw new Error(`${p}: no such file or directory`);
  const dir = fs.statSync(p).isDirectory() ? p : undefined;
  if (dir) {
    if (fs.existsSync(path.join(dir, 'config.json'))) return fromHF(dir);
    const ggufs = fs.readdirSync(dir).filter((f) => f.endsWith('.gguf'));
    if (ggufs.length === 1) return fromGGUF(path.join(dir, ggufs[0]), opts);
    throw new Error(`${dir}: ${ggufs.length ? `several .gguf files (${ggufs.join(', ')}): name one` : 'neither a Hugging Face model (config.json) nor a .gguf inside'}`);
  }
  if (p.endsWith('.safetensors') || p.endsWith('.json')) return fromHF(path.dirname(p));
  if (p.endsWith('.bin')) {
    const file = openLlama2c(p);
    try {
      return llamaFromLlama2c(file, opts.tokenizerPath ?? findLlama2cTokenizer(p));
    } catch (err) {
      file.close();
      throw err;
    }
  }
  return fromGGUF(p, opts);
}

function fromGGUF(p: string, opts: LoadOptions): LlamaSource | V3Plan {
  const file = openGGUF(p);
  try {
    const arch = file.metadata.get('general.architecture');
    if (typeof arch !== 'string') throw new Error(`${p}: general.architecture is missing`);
    if (GGUF_V3_ARCHITECTURES.includes(arch)) return planV3GGUF(file, opts);
    if (!GGUF_LLAMA_ARCHITECTURES.includes(arch)) throw unknownArchitecture(p, arch, [...GGUF_LLAMA_ARCHITECTURES, ...GGUF_V3_ARCHITECTURES]);
    return llamaFromGGUF(file);
  } catch (err) {
    file.close();
    throw err;
  }
}

function fromHF(dir: string): LlamaSource {
  const config = readJson(dir, 'config.json', true)!;
  const arch = config.model_type;
  if (typeof arch !== 'string') throw new Error(`${path.join(dir, 'config.json')}: model_type is missing`);
  if (!HF_LLAMA_ARCHITECTURES.includes(arch)) throw unknownArchitecture(path.join(dir, 'config.json'), arch, [...HF_LLAMA_ARCHITECTURES, ...HF_V3_ARCHITECTURES, ...HF_V4_ARCHITECTURES]);
  const file = openSafetensors(dir);
  try {
    return llamaFromHF(dir, config, file);
  } catch (err) {
    file.close();
    throw err;
  }
}

function unknownArchitecture(where: string, arch: string, known: readonly string[]): Error {
  return new Error(`${where}: unknown architecture '${arch}' (minke runs ${known.join(', ')})`);
}
