/**
 * The decode-against-the-roofline benchmark that bench/v3.ts and bench/v4.ts run on their synthetic
 * 'bench' checkpoints (the issues' acceptance: ≥ 70 % of the roofline with 2 threads).
 *
 * The checkpoint is generated once into $MINKE_BENCH_CACHE/NAME-bench (default
 * bench/.cache/NAME-bench) and again whenever its config changes. After loading, a prefill of random
 * tokens routes to the experts (routed experts load on first use), and the bench loads any left on
 * disk. Then, after waiting for the machine to go quiet: read bandwidth with the model's own worker
 * pool (kernels.ts), and --reps decodes of --gen tokens one at a time, feeding back the argmax.
 *
 * Roofline fraction = bytes read per token × tokens/s ÷ read bandwidth, where bytes per token are the
 * weight bytes the matrix products streamed (the sequence's weightBytesRead) plus the embedding row;
 * the attention state read per token is not counted. A last few decode steps run with a probe that
 * timestamps the model's stages: the per-stage table.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argmax } from '../src/engine/sampler.js';
import type { CpuBackend } from '../src/kernels/cpu/cpu-backend.js';
import { loadModel } from '../src/models/index.js';
import type { LanguageModel } from '../src/models/model.js';
import { otherCores, QUIET_CORES, readBandwidth, waitQuiet } from './kernels.js';
import type { SyntheticOptions } from './synth-checkpoint.js';

/** A decoding sequence with the byte counter and probe both DeepSeek sequences have. */
export interface ProbedSequence {
  forward(tokens: readonly number[]): Promise<Float32Array>;
  readonly weightBytesRead: number;
  probe?: { tap?(name: string, data: Float32Array | Int32Array): void };
  free(): void;
}

/** What the bench needs of a loaded model. */
export interface DecodeTarget {
  readonly backend: CpuBackend;
  readonly vocab: number;
  /** Bytes a decoded token reads outside the matrix products: its embedding row. */
  readonly embedRowBytes: number;
  /** The model's shape for the report's title, e.g. 'dim 1024, 32 experts top-8'. */
  readonly summary: string;
  newSequence(contextLength: number): ProbedSequence;
  /** Loads every routed expert still on disk (those loaded already are returned as they are). */
  loadAllExperts(): Promise<unknown>;
  /** Count of routed experts over all layers, for the report. */
  readonly routedExperts: string;
  /** The stage a probe tap ends (the stage runs from the previous tap); undefined: no boundary. */
  stageOf(tap: string): string | undefined;
}

export interface DecodeBench {
  /** 'v3', 'v4': the bench's name, cache folder NAME-bench. */
  readonly name: string;
  /** 'DeepSeek-V3'. */
  readonly title: string;
  /** The 'bench' preset's config.json object and its generator. */
  readonly config: Record<string, unknown>;
  readonly write: (dir: string, config: object, opts: SyntheticOptions) => void;
  /** The loaded model as the bench sees it; throws if `model` is not of the expected kind. */
  readonly target: (model: LanguageModel, dir: string) => DecodeTarget;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // from dist/bench/
/** The roofline fraction the issues ask of 2-thread decode. */
const GOAL = 0.7;
/** Weight values of the cached checkpoint (a different seed would be a different model). */
const SEED = 1;
/** Decode steps run with the stage probe after the timed ones. */
const PROBE_STEPS = 8;

const usageOf = (name: string) => `usage: npm run bench -- ${name} [--threads 2] [--gen 64] [--reps 3] [--warmup 256] [--bandwidth-gib 1]
                             [--quiet-wait 120] [--dir DIR] [--regenerate] [--json FILE]
  --dir defaults to $MINKE_BENCH_CACHE/${name}-bench, else bench/.cache/${name}-bench; --json appends one line
`;

interface Options {
  threads: number; gen: number; reps: number; warmup: number; bandwidthBytes: number; quietWait: number;
  dir: string; regenerate: boolean; json?: string;
}

function parseArgs(name: string, argv: string[]): Options | undefined {
  const cache = process.env.MINKE_BENCH_CACHE;
  const o: Options = {
    threads: 2, gen: 64, reps: 3, warmup: 256, bandwidthBytes: 2 ** 30, quietWait: 120,
    dir: path.join(cache ?? path.join(REPO, 'bench', '.cache'), `${name}-bench`), regenerate: false,
  };
  const int = (v: string, opt: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${opt} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return undefined;
    if (a === '--regenerate') { o.regenerate = true; continue; }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--threads') o.threads = int(v, a, 1);
    else if (a === '--gen') o.gen = int(v, a, 1);
    else if (a === '--reps') o.reps = int(v, a, 1);
    else if (a === '--warmup') o.warmup = int(v, a, 1);
    else if (a === '--bandwidth-gib') { o.bandwidthBytes = Math.round(Number(v) * 2 ** 30); if (!(o.bandwidthBytes >= 2 ** 26)) throw new Error(`${a} must be at least 1/16`); }
    else if (a === '--quiet-wait') o.quietWait = int(v, a, 0);
    else if (a === '--dir') o.dir = path.resolve(v);
    else if (a === '--json') o.json = v;
    else throw new Error(`unknown option ${JSON.stringify(a)}\n${usageOf(name)}`);
  }
  return o;
}

const progress = (msg: string) => process.stderr.write(`  … ${msg}\n`);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The 'bench' checkpoint in `dir` (`what` in messages), generated (into a sibling, then renamed) unless it is there with this config. */
export function ensureCheckpoint(b: Pick<DecodeBench, 'config' | 'write'>, dir: string, regenerate: boolean, what = "the synthetic 'bench' checkpoint"): void {
  const text = JSON.stringify(b.config, null, 2) + '\n';
  const configFile = path.join(dir, 'config.json');
  if (!regenerate && existsSync(configFile) && readFileSync(configFile, 'utf8') === text) return;
  progress(existsSync(dir) ? `${dir}: ${regenerate ? '--regenerate' : 'another config'}, generating again` : `generating ${what} in ${dir}`);
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  let shown = -1;
  const t0 = performance.now();
  b.write(tmp, b.config, {
    seed: SEED,
    onProgress: (done, total) => {
      const tenth = Math.floor((10 * done) / total);
      if (tenth === shown) return;
      shown = tenth;
      progress(`generating: ${mb(done)} of ${mb(total)} (${(performance.now() - t0) / 1000 | 0} s)`);
    },
  });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** BOS-free ids from an xorshift32 stream in [0, vocab): the same warm-up prompt every run. */
export function randomIds(n: number, vocab: number): number[] {
  const ids: number[] = [];
  let x = 2463534242;
  while (ids.length < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    ids.push(x % vocab);
  }
  return ids;
}

interface Stage { ms: number; bytes: number }

/** Times `steps` decode steps stage by stage (ms and weight bytes per step). */
async function stageProfile(seq: ProbedSequence, target: DecodeTarget, token: number, steps: number): Promise<Map<string, Stage>> {
  const stages = new Map<string, Stage>();
  let t = 0, b = 0;
  const mark = (name: string) => {
    const now = performance.now(), bytes = seq.weightBytesRead;
    const s = stages.get(name) ?? { ms: 0, bytes: 0 };
    s.ms += (now - t) / steps;
    s.bytes += (bytes - b) / steps;
    stages.set(name, s);
    t = now;
    b = bytes;
  };
  seq.probe = {
    tap(name) {
      const stage = target.stageOf(name);
      if (stage) mark(stage);
    },
  };
  try {
    for (let i = 0; i < steps; i++) {
      t = performance.now();
      b = seq.weightBytesRead;
      const logits = await seq.forward([token]);
      mark('head (BF16 logits)');
      token = argmax(logits);
    }
  } finally {
    seq.probe = undefined;
  }
  return stages;
}

interface Rep { tps: number; bytesPerToken: number; otherCores?: number; quiet: boolean }

export async function runDecodeBench(bench: DecodeBench, argv: string[]): Promise<number> {
  const o = parseArgs(bench.name, argv);
  if (!o) { process.stdout.write(usageOf(bench.name)); return 0; }
  ensureCheckpoint(bench, o.dir, o.regenerate);

  const t0 = performance.now();
  let shown = -1;
  const model = await loadModel(o.dir, {
    threads: o.threads,
    onProgress: (done, total) => {
      const tenth = Math.floor((10 * done) / total);
      if (tenth !== shown) progress(`loading: ${mb(done)} of ${mb(total)} (non-expert weights)`);
      shown = tenth;
    },
  });
  try {
    const target = bench.target(model, o.dir), be = target.backend;
    progress(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${be.threads} threads`);
    const seq = target.newSequence(o.warmup + 4 + o.reps * o.gen + PROBE_STEPS);

    // Warm-up: a prefill that routes every token to top-k of each layer's experts, then a few
    // decode steps (V8 optimises the single-token path).
    progress(`warm-up: prefill of ${o.warmup} random tokens (loads the routed experts)`);
    let t1 = performance.now();
    let logits = await seq.forward(randomIds(o.warmup, target.vocab));
    progress(`warm-up: prefill took ${((performance.now() - t1) / 1000).toFixed(1)} s; 4 decode steps`);
    for (let i = 0; i < 4; i++) logits = await seq.forward([argmax(logits)]);
    const inUse0 = be.heap.stats().inUse;
    await target.loadAllExperts();
    const late = be.heap.stats().inUse - inUse0;
    const expertsNote = late ? `the warm-up left ${mb(late)} of experts on disk: loaded them now` : `all ${target.routedExperts} routed experts were loaded by the warm-up`;
    progress(expertsNote);

    const quietBw = await waitQuiet(o.quietWait);
    progress(`read bandwidth (${quietBw ? 'quiet' : `NOT quiet after ${o.quietWait} s`})`);
    const bw = (await readBandwidth(be, o.bandwidthBytes, [o.threads], 0)).get(o.threads)!;

    const reps: Rep[] = [];
    for (let r = 0; r < o.reps; r++) {
      const quiet = await waitQuiet(o.quietWait);
      const load = otherCores();
      const bytes0 = seq.weightBytesRead;
      t1 = performance.now();
      for (let i = 0; i < o.gen; i++) logits = await seq.forward([argmax(logits)]);
      const seconds = (performance.now() - t1) / 1000;
      const other = load();
      const rep: Rep = {
        tps: o.gen / seconds,
        bytesPerToken: (seq.weightBytesRead - bytes0) / o.gen + target.embedRowBytes,
        otherCores: other, quiet: other !== undefined && other < QUIET_CORES,
      };
      reps.push(rep);
      progress(`decode rep ${r + 1}/${o.reps}: ${rep.tps.toFixed(2)} tok/s, other cores ${other?.toFixed(2) ?? '?'}` +
        `${quiet ? '' : ` (NOT quiet after ${o.quietWait} s of waiting)`}`);
    }

    progress(`stage profile: ${PROBE_STEPS} decode steps with timestamps`);
    const stages = await stageProfile(seq, target, argmax(logits), PROBE_STEPS);
    seq.free();

    // The figure: median of the quiet repetitions (all of them, starred, where none was quiet).
    const kept = reps.filter((r) => r.quiet);
    const use = (kept.length ? kept : reps).map((r) => r.tps).sort((a, b) => a - b);
    const tps = use.length % 2 ? use[use.length >> 1] : (use[use.length / 2 - 1] + use[use.length / 2]) / 2;
    const bytesPerToken = reps[0].bytesPerToken;
    const fraction = (bytesPerToken * tps) / bw.bytesPerSecond;
    const star = kept.length ? '' : '*';

    const out = process.stdout;
    out.write(`\n${bench.title} decode, synthetic 'bench' checkpoint (${target.summary}), ${o.threads} thread${o.threads > 1 ? 's' : ''}, ` +
      `context ${o.warmup + 4} → ${o.warmup + 4 + o.reps * o.gen}:\n`);
    out.write(`  read bandwidth   ${(bw.bytesPerSecond / 1e9).toFixed(2).padStart(7)} GB/s  (rowsum_f32 over ${(o.bandwidthBytes / 2 ** 30).toFixed(2)} GiB, best pass; other cores ${bw.timing.other?.toFixed(2) ?? '?'})\n`);
    out.write(`  bytes per token  ${mb(bytesPerToken).padStart(10)}  (weights the matrix products streamed + the embedding row)\n`);
    out.write(`  decode           ${tps.toFixed(2).padStart(7)}${star} tok/s (median of ${kept.length || reps.length} of ${reps.length} reps of ${o.gen} tokens: ${reps.map((r) => r.tps.toFixed(2) + (r.quiet ? '' : '*')).join(', ')})\n`);
    out.write(`  streamed         ${((bytesPerToken * tps) / 1e9).toFixed(2).padStart(7)} GB/s\n`);
    out.write(`  roofline         ${(fraction * 100).toFixed(1).padStart(6)}%${star} of the read bandwidth — goal ≥ ${GOAL * 100}% with 2 threads: ` +
      `${o.threads !== 2 ? 'not judged (not 2 threads)' : kept.length ? (fraction >= GOAL ? 'PASS' : 'FAIL') : 'not judged (no quiet rep)'}\n`);
    out.write(`  (*: other processes used ≥ ${QUIET_CORES} cores during the rep; ${expertsNote})\n`);

    const stepMs = [...stages.values()].reduce((s, x) => s + x.ms, 0);
    out.write(`\none decode step by stage (mean of ${PROBE_STEPS} steps, all layers; GB/s of weight bytes, % of read bandwidth):\n`);
    out.write(`  ${'stage'.padEnd(40)} ${'ms'.padStart(7)} ${'%'.padStart(5)} ${'MB'.padStart(7)} ${'GB/s'.padStart(6)} ${'% bw'.padStart(5)}\n`);
    for (const [name, s] of [...stages].sort((a, b) => b[1].ms - a[1].ms)) {
      const gbps = s.bytes / (s.ms / 1000) / 1e9;
      out.write(`  ${name.padEnd(40)} ${s.ms.toFixed(2).padStart(7)} ${((100 * s.ms) / stepMs).toFixed(1).padStart(5)} ${(s.bytes / 1e6).toFixed(1).padStart(7)} ` +
        `${s.bytes ? gbps.toFixed(1).padStart(6) : '—'.padStart(6)} ${s.bytes ? ((100 * gbps * 1e9) / bw.bytesPerSecond).toFixed(0).padStart(5) : ''}\n`);
    }
    out.write(`  ${'step'.padEnd(40)} ${stepMs.toFixed(2).padStart(7)}\n`);

    const line = JSON.stringify({
      bench: bench.name, threads: o.threads, gen: o.gen, warmup: o.warmup, checkpoint: o.dir,
      bandwidth_gbps: +(bw.bytesPerSecond / 1e9).toFixed(2), bytes_per_token: Math.round(bytesPerToken),
      decode_tps: +tps.toFixed(3), roofline: +fraction.toFixed(3), quiet_reps: kept.length,
      reps: reps.map((r) => ({ tps: +r.tps.toFixed(3), other_cores: r.otherCores === undefined ? null : +r.otherCores.toFixed(2) })),
      stages: Object.fromEntries([...stages].map(([k, s]) => [k, { ms: +s.ms.toFixed(3), bytes: Math.round(s.bytes) }])),
    });
    out.write(`\n${line}\n`);
    if (o.json) appendFileSync(o.json, line + '\n');
  } finally {
    await model.close();
  }
  return 0;
}
