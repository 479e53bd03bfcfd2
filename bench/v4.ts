/**
 * `npm run bench -- v4`: DeepSeek-V4 decode against this machine's memory roofline (the V4 issue's
 * acceptance: ≥ 70 % of the roofline with 2 threads).
 *
 * The model is the synthetic 'bench' checkpoint of bench/synth-v4.ts (Flash's layer mix and formats,
 * random weights, ~436 MB), generated once into $MINKE_BENCH_CACHE/v4-bench (default
 * bench/.cache/v4-bench) and again whenever its config changes. After loading, a prefill of random
 * tokens routes to every expert (routed experts load on first use), and the bench makes sure none is
 * left on disk. Then, after waiting for the machine to go quiet: read bandwidth with the model's own
 * worker pool (kernels.ts), and --reps decodes of --gen tokens one at a time, feeding back the argmax.
 *
 * Roofline fraction = bytes read per token × tokens/s ÷ read bandwidth, where bytes per token are the
 * weight bytes the matrix products streamed (DeepseekV4Sequence.weightBytesRead) plus the embedding
 * row; the attention state read per token (≤ 128-entry window + compressed entries) is not counted.
 * A last few decode steps run with a probe that timestamps the block's stages: the per-stage table.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argmax } from '../src/engine/sampler.js';
import { CpuBackend } from '../src/kernels/cpu/cpu-backend.js';
import { DeepseekV4Model, type DeepseekV4Sequence } from '../src/models/deepseek-v4.js';
import { layerKind } from '../src/models/deepseek-v4-config.js';
import { loadModel } from '../src/models/index.js';
import { otherCores, QUIET_CORES, readBandwidth, waitQuiet } from './kernels.js';
import { v4SynthConfig, writeSyntheticV4 } from './synth-v4.js';

const usage = `usage: npm run bench -- v4 [--threads 2] [--gen 64] [--reps 3] [--warmup 256] [--bandwidth-gib 1]
                             [--quiet-wait 120] [--dir DIR] [--regenerate] [--json FILE]
  --dir defaults to $MINKE_BENCH_CACHE/v4-bench, else bench/.cache/v4-bench; --json appends one line
`;

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // from dist/bench/
/** The roofline fraction the V4 issue asks of 2-thread decode. */
const GOAL = 0.7;
/** Weight values of the cached checkpoint (a different seed would be a different model). */
const SEED = 1;
/** Decode steps run with the stage probe after the timed ones. */
const PROBE_STEPS = 8;

interface Options {
  threads: number; gen: number; reps: number; warmup: number; bandwidthBytes: number; quietWait: number;
  dir: string; regenerate: boolean; json?: string;
}

function parseArgs(argv: string[]): Options | undefined {
  const cache = process.env.MINKE_BENCH_CACHE;
  const o: Options = {
    threads: 2, gen: 64, reps: 3, warmup: 256, bandwidthBytes: 2 ** 30, quietWait: 120,
    dir: cache ? path.join(cache, 'v4-bench') : path.join(REPO, 'bench', '.cache', 'v4-bench'), regenerate: false,
  };
  const int = (v: string, name: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
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
    else throw new Error(`unknown option ${JSON.stringify(a)}\n${usage}`);
  }
  return o;
}

const progress = (msg: string) => process.stderr.write(`  … ${msg}\n`);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The 'bench' checkpoint in `dir`, generated (into a sibling, then renamed) unless it is there with this config. */
function ensureCheckpoint(dir: string, regenerate: boolean): void {
  const config = v4SynthConfig('bench');
  const text = JSON.stringify(config, null, 2) + '\n';
  const configFile = path.join(dir, 'config.json');
  if (!regenerate && existsSync(configFile) && readFileSync(configFile, 'utf8') === text) return;
  progress(existsSync(dir) ? `${dir}: ${regenerate ? '--regenerate' : 'another config'}, generating again` : `generating the synthetic 'bench' checkpoint in ${dir}`);
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  let shown = -1;
  const t0 = performance.now();
  writeSyntheticV4(tmp, config, {
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
function randomIds(n: number, vocab: number): number[] {
  const ids: number[] = [];
  let x = 2463534242;
  while (ids.length < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    ids.push(x % vocab);
  }
  return ids;
}

// ---- stage probe -----------------------------------------------------------------------------

/**
 * Where the block's taps fall (deepseek-v4.ts): each tap ends the stage it names, and the stage
 * runs from the previous tap. Taps not listed here (e.g. hc_attn.y before hc_attn.comb) are skipped.
 */
const STAGE_OF_TAP: [RegExp, string][] = [
  [/^embed$/, 'embedding row'],
  [/\.hc_attn\.comb$/, 'hc_pre (attn): hc_attn_fn + Sinkhorn'],
  [/\.attn_out$/, 'attention (by kind below)'],
  [/\.hc_ffn\.comb$/, 'hc_post (attn) + hc_pre (ffn)'],
  [/\.gate\.weights$/, 'norm + gate + routing'],
  [/\.ffn_out$/, 'experts: shared + 6 routed'],
  [/\.out$/, 'hc_post (ffn)'],
  [/^head\.norm_out$/, 'head mixer + norm'],
];

interface Stage { ms: number; bytes: number }

/** Times `steps` decode steps stage by stage (ms and weight bytes per step). */
async function stageProfile(seq: DeepseekV4Sequence, token: number, steps: number, kinds: Map<string, string>) {
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
      const stage = STAGE_OF_TAP.find(([re]) => re.test(name))?.[1];
      if (!stage) return;
      // Attention splits by layer kind: sliding window, CSA (+ indexer), HCA.
      mark(stage.startsWith('attention') ? `attention, ${kinds.get(name.split('.')[0])} layers` : stage);
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

// ---- the run ---------------------------------------------------------------------------------

interface Rep { tps: number; bytesPerToken: number; otherCores?: number; quiet: boolean }

export async function benchV4(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (!o) { process.stdout.write(usage); return 0; }
  ensureCheckpoint(o.dir, o.regenerate);

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
    if (!(model instanceof DeepseekV4Model) || !(model.backend instanceof CpuBackend)) throw new Error(`${o.dir} did not load as a DeepSeek-V4 model on the CPU backend`);
    const be = model.backend, c = model.config;
    progress(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${be.threads} threads`);
    const seq = model.newSequence({ contextLength: o.warmup + 4 + o.reps * o.gen + PROBE_STEPS });

    // Warm-up: a prefill that routes every token to 6 of the 32 experts of each layer, then a few
    // decode steps (V8 optimises the single-token path); the decode MTP block never runs.
    progress(`warm-up: prefill of ${o.warmup} random tokens (loads the routed experts)`);
    let t1 = performance.now();
    let logits = await seq.forward(randomIds(o.warmup, c.vocab));
    progress(`warm-up: prefill took ${((performance.now() - t1) / 1000).toFixed(1)} s; 4 decode steps`);
    for (let i = 0; i < 4; i++) logits = await seq.forward([argmax(logits)]);
    // Any expert still on disk loads now (expert(e) returns the weights of one already loaded).
    const inUse0 = be.heap.stats().inUse;
    await Promise.all(model.weights.blocks.flatMap((b) => Array.from({ length: c.experts }, (_, e) => b.ffn.expert(e))));
    const late = be.heap.stats().inUse - inUse0;
    const expertsNote = late ? `the warm-up left ${mb(late)} of experts on disk: loaded them now` : `all ${c.layers}×${c.experts} routed experts were loaded by the warm-up`;
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
        bytesPerToken: (seq.weightBytesRead - bytes0) / o.gen + 2 * c.dim, // + the BF16 embedding row
        otherCores: other, quiet: other !== undefined && other < QUIET_CORES,
      };
      reps.push(rep);
      progress(`decode rep ${r + 1}/${o.reps}: ${rep.tps.toFixed(2)} tok/s, other cores ${other?.toFixed(2) ?? '?'}` +
        `${quiet ? '' : ` (NOT quiet after ${o.quietWait} s of waiting)`}`);
    }

    const kinds = new Map(c.compressRatios.slice(0, c.layers).map((r, l) => [`layer${l}`, { sliding: 'sliding-window', csa: 'CSA', hca: 'HCA' }[layerKind(r)]]));
    progress(`stage profile: ${PROBE_STEPS} decode steps with timestamps`);
    const stages = await stageProfile(seq, argmax(logits), PROBE_STEPS, kinds);
    seq.free();

    // The figure: median of the quiet repetitions (all of them, starred, where none was quiet).
    const kept = reps.filter((r) => r.quiet);
    const use = (kept.length ? kept : reps).map((r) => r.tps).sort((a, b) => a - b);
    const tps = use.length % 2 ? use[use.length >> 1] : (use[use.length / 2 - 1] + use[use.length / 2]) / 2;
    const bytesPerToken = reps[0].bytesPerToken;
    const fraction = (bytesPerToken * tps) / bw.bytesPerSecond;
    const star = kept.length ? '' : '*';

    const out = process.stdout;
    out.write(`\nDeepSeek-V4 decode, synthetic 'bench' checkpoint (layers ${[...kinds.values()].join(', ')}; dim ${c.dim}, ` +
      `${c.experts} experts top-${c.topK}), ${o.threads} thread${o.threads > 1 ? 's' : ''}, context ${o.warmup + 4} → ${o.warmup + 4 + o.reps * o.gen}:\n`);
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
      bench: 'v4', threads: o.threads, gen: o.gen, warmup: o.warmup, checkpoint: o.dir,
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
