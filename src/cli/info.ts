/**
 * `minke info MODEL [--json] [--ctx N] [--tensors]`: what a weight file holds — for a model minke
 * runs, its architecture, parameters, bytes per storage format and the memory a context of N
 * tokens needs (weights + state per token × N); for any other weight file, the generic listing
 * (metadata, tensors, bytes per storage type).
 *
 * The model's description comes from loading it (the model layer has no load-free description yet).
 */
import { openWeights, type TensorInfo, type WeightFile } from '../formats/weights.js';
import type { GGUFFile } from '../formats/gguf.js';
import type { ModelDescription } from '../models/model.js';
import { loadModel } from '../models/index.js';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { formatBytes, formatCount } from './display.js';
import { checkContext, contextOf } from './load.js';

const FLAGS: Record<string, FlagSpec> = {
  json: { kind: 'boolean' },
  ctx: { kind: 'int', min: 1 },
  tensors: { kind: 'boolean', short: 'v' },
  help: { kind: 'boolean', short: 'h' },
};

const USAGE = `usage: minke info MODEL [--json] [--ctx N] [--tensors]
  --json      print it as JSON
  --ctx N     the context to size the memory for (default: the model's default context)
  --tensors   list every tensor
`;

function summariseTensors(tensors: Iterable<TensorInfo>) {
  const byDtype = new Map<string, { tensors: number; elements: number; bytes: number }>();
  let elements = 0;
  let bytes = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const row = byDtype.get(t.dtype) ?? { tensors: 0, elements: 0, bytes: 0 };
    row.tensors++;
    row.elements += n;
    row.bytes += t.byteLength;
    byDtype.set(t.dtype, row);
    elements += n;
    bytes += t.byteLength;
  }
  return { byDtype, elements, bytes };
}

const jsonValue = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

function metadataOf(file: WeightFile): Map<string, unknown> | undefined {
  const gguf = (file as Partial<GGUFFile>).metadata;
  return gguf instanceof Map ? gguf : undefined;
}

function metadataLines(file: WeightFile): string[] {
  const lines: string[] = [];
  for (const [key, value] of metadataOf(file) ?? []) {
    const shown = Array.isArray(value) ? `[${value.length} values]` : JSON.stringify(value, jsonValue);
    lines.push(`  ${key} = ${shown.length > 100 ? shown.slice(0, 97) + '...' : shown}`);
  }
  return lines;
}

/** The generic listing of any weight file. */
export function describe(file: WeightFile, verbose: boolean, header = true): string {
  const out: string[] = header ? [`model: ${file.path}`] : [];
  const meta = metadataLines(file);
  if (meta.length) out.push('metadata:', ...meta);
  const { byDtype, elements, bytes } = summariseTensors(file.tensors.values());
  out.push(`tensors: ${file.tensors.size}, elements ${formatCount(elements)}, weights ${formatBytes(bytes)}`);
  out.push('by storage type:');
  for (const [dtype, row] of [...byDtype].sort((a, b) => b[1].bytes - a[1].bytes)) {
    out.push(`  ${dtype.padEnd(9)} ${String(row.tensors).padStart(6)} tensors  ${formatCount(row.elements).padStart(9)} elements  ${formatBytes(row.bytes).padStart(11)}`);
  }
  if (verbose) {
    out.push('tensor list:');
    for (const t of file.tensors.values()) out.push(`  ${t.name}  ${t.dtype}  [${t.shape.join(', ')}]  ${formatBytes(t.byteLength)}`);
  }
  return out.join('\n') + '\n';
}

export interface ModelInfo {
  readonly architecture: string;
  readonly parameters: number;
  readonly layers: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly weightBytes: Readonly<Record<string, number>>;
  readonly stateBytesPerToken: number;
  /** The context sized for, and what weights + state for it take. */
  readonly context: number;
  readonly memory: { readonly weights: number; readonly state: number; readonly total: number };
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

export function modelInfo(d: ModelDescription, ctx?: number): ModelInfo {
  checkContext(d, ctx);
  const context = contextOf(d, ctx);
  const weights = Object.values(d.weightBytes).reduce((a, b) => a + b, 0);
  const state = d.stateBytesPerToken * context;
  return {
    architecture: d.architecture, parameters: d.parameters, layers: d.layers, vocabSize: d.vocabSize,
    contextLength: d.contextLength, weightBytes: d.weightBytes, stateBytesPerToken: d.stateBytesPerToken,
    context, memory: { weights, state, total: weights + state }, details: d.details,
  };
}

export function formatModelInfo(m: ModelInfo): string {
  const out = [
    `architecture: ${m.architecture}`,
    `parameters: ${formatCount(m.parameters)} (${m.parameters})`,
    `layers: ${m.layers}, vocabulary: ${m.vocabSize}, trained context: ${m.contextLength} tokens`,
    `details: ${Object.entries(m.details).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    'weights by format:',
    ...Object.entries(m.weightBytes).sort((a, b) => b[1] - a[1]).map(([f, b]) => `  ${f.padEnd(9)} ${formatBytes(b).padStart(11)}`),
    `memory for ${m.context} tokens of context: weights ${formatBytes(m.memory.weights)} + ${m.context} × ${formatBytes(m.stateBytesPerToken)} state = ${formatBytes(m.memory.total)}`,
  ];
  return out.join('\n') + '\n';
}

export async function infoCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(USAGE); return 0; }
  if (args.positionals.length !== 1) throw new UsageError('info needs exactly one MODEL (minke info --help)');
  const p = args.positionals[0];
  const ctx = flag.num(args, 'ctx');
  const json = flag.bool(args, 'json');
  const verbose = flag.bool(args, 'tensors');

  // A model minke runs describes itself; anything else is listed generically.
  let model: ModelInfo | undefined;
  let notRunnable: string | undefined;
  try {
    const m = await loadModel(p, { threads: 1 });
    try { model = modelInfo(m.description, ctx); } finally { await m.close(); }
  } catch (e) {
    if (e instanceof Error && /^--ctx/.test(e.message)) throw e;
    notRunnable = e instanceof Error ? e.message : String(e);
  }
  let file: WeightFile | undefined;
  try {
    file = openWeights(p);
  } catch (e) {
    if (!model) throw e; // e.g. a llama2.c checkpoint: the model view is all there is
  }
  try {
    if (json) {
      const generic = file ? genericJson(file, verbose) : undefined;
      process.stdout.write(JSON.stringify({ path: p, ...(model ? { model } : { notRunnable }), ...(generic ? { file: generic } : {}) }, jsonValue) + '\n');
      return 0;
    }
    if (model) process.stdout.write(`model: ${p}\n${formatModelInfo(model)}\n`);
    else process.stdout.write(`(minke cannot run this file: ${notRunnable})\n`);
    if (file) process.stdout.write(describe(file, verbose, !model));
    return 0;
  } finally {
    file?.close();
  }
}

function genericJson(file: WeightFile, verbose: boolean) {
  const { byDtype, elements, bytes } = summariseTensors(file.tensors.values());
  const meta = metadataOf(file);
  return {
    tensors: file.tensors.size, elements, bytes,
    byDtype: Object.fromEntries(byDtype),
    ...(meta ? { metadata: Object.fromEntries([...meta].map(([k, v]) => [k, Array.isArray(v) ? `[${v.length} values]` : v])) } : {}),
    ...(verbose ? { tensorList: [...file.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteLength })) } : {}),
  };
}
