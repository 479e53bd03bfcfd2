/**
 * `minke bench MODEL`: prefill and decode speed of a model, as llama-bench's pp/tg tests —
 * a prompt of --prompt tokens in one prefill, then --gen single-token decode steps (each feeding
 * back the argmax), on a fresh sequence per repetition after one warm-up — and the peak memory:
 * the process's resident set and the backend's heap.
 */
import { argmax } from '../engine/sampler.js';
import type { LanguageModel } from '../models/model.js';
import { TokenType } from '../tokenizer/index.js';
import { parseArgs, flag, UsageError, type FlagSpec } from './args.js';
import { formatBytes } from './display.js';
import { loadForCli, summary } from './load.js';
import { modelPathOf } from '../models/shipped.js';

export const BENCH_USAGE = `usage: minke bench MODEL [--prompt 128] [--gen 128] [--reps 3] [--threads N] [--backend cpu|webgpu] [--json]
       minke bench kernels [options]     kernel throughput (minke bench kernels --help)
`;

const FLAGS: Record<string, FlagSpec> = {
  prompt: { kind: 'int', min: 1, short: 'p' },
  gen: { kind: 'int', min: 1, short: 'n' },
  reps: { kind: 'int', min: 1, short: 'r' },
  threads: { kind: 'int', min: 1, short: 't' },
  backend: { kind: 'string' },
  json: { kind: 'boolean' },
  help: { kind: 'boolean', short: 'h' },
};

export interface BenchResult {
  readonly prompt: number;
  readonly gen: number;
  readonly threads: number;
  /** Tokens per second, one per repetition. */
  readonly prefill: number[];
  readonly decode: number[];
  readonly peakRssBytes: number;
  /** Peak bytes in use in the backend's own heap, where the backend tells. */
  readonly peakBackendBytes?: number;
  /** DeepSeek-V4.1: the Engram row cache over the whole run (rows read from disk = misses). */
  readonly engramCache?: { readonly hits: number; readonly misses: number; readonly hitRate: number };
}

export async function benchModelCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(BENCH_USAGE); return 0; }
  const [modelArg, ...extra] = args.positionals;
  const modelPath = modelArg === undefined ? undefined : modelPathOf(modelArg);
  if (modelPath === undefined) throw new UsageError('bench needs a MODEL or "kernels" (minke bench --help)');
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const prompt = flag.num(args, 'prompt') ?? 128;
  const gen = flag.num(args, 'gen') ?? 128;
  const reps = flag.num(args, 'reps') ?? 3;
  const json = flag.bool(args, 'json');
  const model = await loadForCli(modelPath, { threads: flag.num(args, 'threads'), backend: flag.backend(args), contextLength: prompt + gen, log: process.stderr });
  try {
    const r = await benchModel(model, prompt, gen, reps);
    if (json) process.stdout.write(JSON.stringify({ model: modelPath, ...r }) + '\n');
    else process.stdout.write(report(modelPath, model, r));
    return 0;
  } finally {
    await model.close();
  }
}

export async function benchModel(model: LanguageModel, prompt: number, gen: number, reps: number): Promise<BenchResult> {
  const ids = promptIds(model, prompt);
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let rep = -1; rep < reps; rep++) {
    const seq = model.newSequence({ contextLength: prompt + gen });
    try {
      const t0 = performance.now();
      let logits = await seq.forward(ids);
      const t1 = performance.now();
      for (let i = 0; i < gen; i++) logits = await seq.forward([argmax(logits)]);
      const t2 = performance.now();
      if (rep < 0) continue; // warm-up
      prefill.push(prompt / ((t1 - t0) / 1000));
      decode.push(gen / ((t2 - t1) / 1000));
    } finally {
      seq.free();
    }
  }
  const heap = (model.backend as { heap?: { stats?: () => { peak: number } } }).heap;
  const engram = (model as { engramCacheStats?: { hits: number; misses: number } }).engramCacheStats;
  return {
    prompt, gen, threads: model.backend.threads, prefill, decode,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    ...(heap?.stats ? { peakBackendBytes: heap.stats().peak } : {}),
    ...(engram && engram.hits + engram.misses > 0 ? { engramCache: { ...engram, hitRate: engram.hits / (engram.hits + engram.misses) } } : {}),
  };
}

/** BOS (when the model uses one), then ordinary tokens in turn: text-like input without special tokens. */
function promptIds(model: LanguageModel, n: number): number[] {
  const tok = model.tokenizer;
  const normal: number[] = [];
  // Test checkpoints may have fewer embedding rows than their tokenizer has ids.
  const vocab = Math.min(tok.vocabSize, model.description.vocabSize);
  for (let id = 0; id < vocab && normal.length < 1000; id++) if (tok.tokenType(id) === TokenType.NORMAL) normal.push(id);
  if (normal.length === 0) throw new Error('the vocabulary has no ordinary tokens to build a prompt from');
  const ids = tok.addBos && tok.bos !== undefined ? [tok.bos] : [];
  for (let i = 0; ids.length < n; i++) ids.push(normal[(i * 7919) % normal.length]);
  return ids;
}

function report(modelPath: string, model: LanguageModel, r: BenchResult): string {
  const row = (test: string, v: number[]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length - 1));
    return `${test.padEnd(8)} ${mean.toFixed(2).padStart(12)} ± ${sd.toFixed(2).padEnd(10)} tok/s`;
  };
  const lines = [
    `model: ${modelPath}`,
    `        ${summary(model.description, r.prompt + r.gen)}`,
    `threads: ${r.threads}, repetitions: ${r.prefill.length} (after one warm-up)`,
    row(`pp${r.prompt}`, r.prefill),
    row(`tg${r.gen}`, r.decode),
    `peak memory: process RSS ${formatBytes(r.peakRssBytes)}` + (r.peakBackendBytes !== undefined ? `, backend heap ${formatBytes(r.peakBackendBytes)}` : ''),
    ...(r.engramCache ? [`Engram row cache: ${(100 * r.engramCache.hitRate).toFixed(1)} % hits (${r.engramCache.hits} hits, ${r.engramCache.misses} rows read from disk)`] : []),
  ];
  return lines.join('\n') + '\n';
}
