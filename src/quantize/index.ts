/**
 * `minke quantize` as a library: rewrite a checkpoint with smaller weights and measure what it
 * cost. Dense models (GGUF, or a Hugging Face directory via hf-gguf.ts) → a GGUF of one block
 * type (gguf-dense.ts); DeepSeek-V4 / V3 checkpoints → a checkpoint directory with low-bit
 * routed experts (deepseek-v4.ts, deepseek-v3.ts; the scheme in README.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoadOptions } from '../models/model.js';
import { HF_LLAMA_ARCHITECTURES, readJson } from '../models/llama-hf.js';
import { quantizeV4Checkpoint, MOE_TYPES } from './deepseek-v4.js';
import { quantizeV3Checkpoint, V3_TYPES } from './deepseek-v3.js';
import { HF_V3_ARCHITECTURES } from '../models/deepseek-v3-load.js';
import { weightFileBytes } from './files.js';
import { DENSE_TYPES, quantizeDenseGGUF } from './gguf-dense.js';
import { quantizeHFDense } from './hf-gguf.js';
import { nextTokenKL, type KLReport } from './kl.js';

export { DENSE_TYPES } from './gguf-dense.js';
export { MOE_TYPES } from './deepseek-v4.js';
export { V3_TYPES } from './deepseek-v3.js';
export { fixedTokens, klOfLogits, nextTokenKL, type KLReport } from './kl.js';

export interface QuantizeReport {
  readonly kind: 'dense-gguf' | 'dense-hf' | 'deepseek-v4' | 'deepseek-v3';
  readonly type: string;
  /** Bytes of the weight files before and after. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** Stored type → how many tensors (dense) or expert matrices (DeepSeek) use it. */
  readonly formats: Readonly<Record<string, number>>;
  readonly warnings: readonly string[];
  /** Absent with `kl: false`. */
  readonly kl?: KLReport;
}

export interface QuantizeOptions {
  /** Measure the KL divergence (runs both models; default true). */
  readonly kl?: boolean;
  /** Positions of the KL measurement (default 64) and the seed of its token ids (default 1234). */
  readonly klTokens?: number;
  readonly seed?: number;
  readonly load?: LoadOptions;
}

/** What `src` is, for choosing the quantizer. */
function kindOf(src: string): { kind: 'dense-gguf'; file: string } | { kind: 'dense-hf' | 'deepseek-v4' | 'deepseek-v3' } {
  if (!fs.existsSync(src)) throw new Error(`${src}: no such file or directory`);
  if (fs.statSync(src).isDirectory()) {
    if (fs.existsSync(path.join(src, 'config.json'))) {
      const type = String(readJson(src, 'config.json', true)!.model_type);
      if (type === 'deepseek_v4') return { kind: 'deepseek-v4' };
      if (HF_V3_ARCHITECTURES.includes(type)) return { kind: 'deepseek-v3' };
      if (HF_LLAMA_ARCHITECTURES.includes(type)) return { kind: 'dense-hf' };
      throw new Error(`${src}: minke quantize handles DeepSeek-V3/V4 and Llama-family models, not model_type '${type}'`);
    }
    const ggufs = fs.readdirSync(src).filter((f) => f.endsWith('.gguf'));
    if (ggufs.length !== 1) throw new Error(`${src}: ${ggufs.length ? 'several .gguf files: name one' : 'neither a checkpoint directory (config.json) nor a .gguf inside'}`);
    return { kind: 'dense-gguf', file: path.join(src, ggufs[0]) };
  }
  if (!src.endsWith('.gguf')) throw new Error(`${src}: minke quantize reads a .gguf file or a model directory`);
  return { kind: 'dense-gguf', file: src };
}

export async function quantizeModel(src: string, dst: string, type: string, opts: QuantizeOptions = {}): Promise<QuantizeReport> {
  const what = kindOf(src);
  let formats: Readonly<Record<string, number>>;
  let warnings: readonly string[] = [];
  let original: string;
  if (what.kind === 'dense-gguf' || what.kind === 'dense-hf') {
    if (!(type in DENSE_TYPES)) throw new Error(`--type ${type} does not apply to a dense model (use ${Object.keys(DENSE_TYPES).join(', ')})`);
    if (fs.existsSync(dst) && fs.statSync(dst).isDirectory()) throw new Error(`${dst} is a directory; a dense model is written as one .gguf file`);
    original = what.kind === 'dense-gguf' ? what.file : src;
    if (path.resolve(dst) === path.resolve(original)) throw new Error(`the output ${dst} is the source file itself`);
    const r = what.kind === 'dense-gguf' ? quantizeDenseGGUF(original, dst, type) : quantizeHFDense(src, dst, type);
    formats = r.types;
    warnings = r.warnings ?? [];
  } else {
    const types = what.kind === 'deepseek-v4' ? MOE_TYPES : V3_TYPES;
    if (!(type in types)) throw new Error(`--type ${type} does not apply to a ${what.kind === 'deepseek-v4' ? 'DeepSeek-V4' : 'DeepSeek-V3'} checkpoint (use ${Object.keys(types).join(', ')})`);
    formats = (what.kind === 'deepseek-v4' ? quantizeV4Checkpoint(src, dst, type) : quantizeV3Checkpoint(src, dst, type)).blocks;
    original = src;
  }
  const report = { kind: what.kind, type, bytesBefore: weightFileBytes(original), bytesAfter: weightFileBytes(dst), formats, warnings };
  if (opts.kl === false) return report;
  return { ...report, kl: await nextTokenKL(original, dst, { ...opts.load, tokens: opts.klTokens, seed: opts.seed }) };
}
