/**
 * `minke info MODEL [--json] [--ctx N] [--tensors]`: what a weight file holds — for a model minke
 * runs, its architecture, parameters, bytes per storage format and the memory a context of N
 * tokens needs (weights + state for N tokens); for any other weight file, the generic listing
 * (metadata, tensors, bytes per storage type). DeepSeek-V4 adds its active parameters and the state
 * each layer kind (sliding-window / CSA / HCA) grows by per 1K tokens of context.
 *
 * Nothing is loaded: the description comes from the config and tensor table (describeModel).
 */
import { openWeights, type TensorInfo, type WeightFile } from '../formats/weights.js';
import type { GGUFFile } from '../formats/gguf.js';
import type { ModelDescription } from '../models/model.js';
import { describeModel } from '../models/index.js';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { formatBytes, formatCount } from './display.js';
import { checkContext, contextOf } from './load.js';
import { modelPathOf } from '../models/shipped.js';

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
DeepSeek-V4 directories also show the parameters one token uses and the state each layer kind
(sliding-window, CSA, HCA) adds per 1K tokens of context.
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

/** The state of one layer kind of a DeepSeek-V4 trunk (§9.2 of the spec). */
export interface LayerKindState {
  readonly layers: number;
  /** Bytes one layer's state grows by per 1024 tokens of context (compressed and indexer keys). */
  readonly bytesPer1KTokens: number;
  /** That growth over every layer of the kind, for the context sized for. */
  readonly bytesForContext: number;
}

export interface ModelInfo {
  readonly architecture: string;
  readonly parameters: number;
  /** Parameters one token runs through (mixture-of-experts models). */
  readonly activeParameters?: number;
  readonly layers: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly weightBytes: Readonly<Record<string, number>>;
  readonly stateBytesPerToken: number;
  /** The context sized for, and what weights + state for it take. */
  readonly context: number;
  readonly memory: { readonly weights: number; readonly state: number; readonly total: number };
  /** DeepSeek-V4: every layer's fixed window ring, and what each layer kind adds per 1K tokens. */
  readonly windowStateBytesPerLayer?: number;
  readonly stateByLayerKind?: Readonly<Partial<Record<LayerKind, LayerKindState>>>;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Details keys per layer kind (the state it adds per 1K tokens, its layer count) and its label:
 * V4's three kinds; V4.1's window-only layers and the KV sources of its ratio-2 and ratio-1 layers
 * (the layers that reuse their entries add nothing).
 */
const LAYER_KINDS = [
  ['sliding', 'slidingStateBytesPer1KTokens', 'slidingLayers', 'window only'],
  ['csa', 'csaStateBytesPer1KTokens', 'csaLayers', 'CSA'],
  ['hca', 'hcaStateBytesPer1KTokens', 'hcaLayers', 'HCA'],
  ['ratio2', 'ratio2StateBytesPer1KTokens', 'ratio2Layers', 'CSA2 ratio-2 KV sources'],
  ['ratio1', 'ratio1StateBytesPer1KTokens', 'ratio1Layers', 'CSA2 ratio-1 KV sources'],
] as const;
type LayerKind = (typeof LAYER_KINDS)[number][0];

function layerKindState(d: ModelDescription, context: number): ModelInfo['stateByLayerKind'] {
  const out: Partial<Record<LayerKind, LayerKindState>> = {};
  for (const [kind, key, count] of LAYER_KINDS) {
    const perK = d.details[key], layers = d.details[count];
    if (typeof perK !== 'number' || typeof layers !== 'number') continue;
    out[kind] = { layers, bytesPer1KTokens: perK, bytesForContext: Math.round((layers * perK * context) / 1024) };
  }
  return Object.keys(out).length ? out : undefined;
}

export function modelInfo(d: ModelDescription, ctx?: number): ModelInfo {
  checkContext(d, ctx);
  const context = contextOf(d, ctx);
  // Weights read from disk on demand (V4.1's Engram tables) take no memory.
  const weights = Object.entries(d.weightBytes).filter(([k]) => !k.endsWith('(on disk)')).reduce((a, [, b]) => a + b, 0);
  const state = Math.round(d.stateBytesPerToken * context);
  const active = d.details.activeParameters;
  const window = d.details.windowStateBytesPerLayer;
  return {
    architecture: d.architecture, parameters: d.parameters,
    ...(typeof active === 'number' ? { activeParameters: active } : {}),
    layers: d.layers, vocabSize: d.vocabSize,
    contextLength: d.contextLength, weightBytes: d.weightBytes, stateBytesPerToken: d.stateBytesPerToken,
    context, memory: { weights, state, total: weights + state },
    ...(typeof window === 'number' ? { windowStateBytesPerLayer: window, stateByLayerKind: layerKindState(d, context) } : {}),
    details: d.details,
  };
}

/** Details printed on lines of their own, left out of the "details:" line. */
const SHOWN_APART = new Set(['activeParameters', 'windowStateBytesPerLayer', ...LAYER_KINDS.flatMap((k) => [k[1], k[2]])]);

export function formatModelInfo(m: ModelInfo): string {
  const active = m.activeParameters === undefined ? '' : `, active per token ${formatCount(m.activeParameters)} (${m.activeParameters})`;
  const pad = Math.max(9, ...Object.keys(m.weightBytes).map((f) => f.length));
  const out = [
    `architecture: ${m.architecture}`,
    `parameters: ${formatCount(m.parameters)} (${m.parameters})${active}`,
    `layers: ${m.layers}, vocabulary: ${m.vocabSize}, trained context: ${m.contextLength} tokens`,
    `details: ${Object.entries(m.details).filter(([k]) => !SHOWN_APART.has(k)).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    'weights by format:',
    ...Object.entries(m.weightBytes).sort((a, b) => b[1] - a[1]).map(([f, b]) => `  ${f.padEnd(pad)} ${formatBytes(b).padStart(11)}`),
  ];
  if (m.windowStateBytesPerLayer === undefined) {
    out.push(`memory for ${m.context} tokens of context: weights ${formatBytes(m.memory.weights)} + ${m.context} × ${formatBytes(m.stateBytesPerToken)} state = ${formatBytes(m.memory.total)}`);
    return out.join('\n') + '\n';
  }
  // DeepSeek-V4 / V4.1: the state is not a fixed amount per token; say what each layer kind adds.
  out.push(`state per 1K tokens of context, by layer kind (each layer also keeps a window of ${formatBytes(m.windowStateBytesPerLayer)}):`);
  const kindWidth = Math.max(...LAYER_KINDS.filter(([kind]) => m.stateByLayerKind?.[kind]).map(([, , , label]) => label.length));
  for (const [kind, , , label] of LAYER_KINDS) {
    const k = m.stateByLayerKind?.[kind];
    if (!k) continue;
    out.push(`  ${label.padEnd(kindWidth)} ${String(k.layers).padStart(3)} layer${k.layers === 1 ? ' ' : 's'} × ${formatBytes(k.bytesPer1KTokens).padStart(11)} per 1K tokens = ${formatBytes(k.bytesForContext)} for ${m.context} tokens`);
  }
  out.push(`memory for ${m.context} tokens of context: weights ${formatBytes(m.memory.weights)} + state ${formatBytes(m.memory.state)} = ${formatBytes(m.memory.total)}`);
  return out.join('\n') + '\n';
}

export async function infoCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(USAGE); return 0; }
  if (args.positionals.length !== 1) throw new UsageError('info needs exactly one MODEL (minke info --help)');
  const p = modelPathOf(args.positionals[0]);
  const ctx = flag.num(args, 'ctx');
  const json = flag.bool(args, 'json');
  const verbose = flag.bool(args, 'tensors');

  // A model minke runs describes itself; anything else is listed generically.
  let model: ModelInfo | undefined;
  let notRunnable: string | undefined;
  try {
    // Sized for --ctx: a V4 model's state per token depends on the context.
    model = modelInfo(describeModel(p, { contextLength: ctx }), ctx);
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
