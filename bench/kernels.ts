/**
 * `npm run bench -- kernels`: how close each matrix-vector kernel comes to this machine's memory
 * bandwidth. First measures read bandwidth (a WASM SIMD sum over a buffer far bigger than the
 * caches, best of several passes), then times matvec for every weight format of the kernel
 * registry at LLM shapes, for each thread count, and reports GB/s of weight bytes streamed and
 * the fraction of the read bandwidth measured with the same thread count. The machine may be
 * shared: each figure also says how many cores other processes used meanwhile, and
 * `--quiet-wait S` waits up to S seconds before each measurement for them to go quiet (and
 * measures again, up to 3 times, when they did not stay quiet).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { CpuBackend, type CpuTensor } from '../src/kernels/cpu/cpu-backend.js';
import { MATRIX_KERNELS } from '../src/kernels/cpu/registry.js';
import { quantize } from '../src/tensor/dequantize.js';
import { formatName, type WeightFormat } from '../src/tensor/dtype.js';

interface Options {
  threads: number[];
  shapes: [number, number][];
  formats?: string[];
  bandwidthBytes: number;
  json?: string;
  /** Seconds to wait, before each measurement, for the rest of the machine to go quiet. */
  quietWait: number;
}

const DEFAULT_SHAPES: [number, number][] = [[4096, 4096], [4096, 11008], [129280, 4096]];
/** Timed calls: at least MIN_REPS, and until MIN_SECONDS have passed (at most MAX_REPS). */
const MIN_REPS = 6, MAX_REPS = 2000, MIN_SECONDS = 1;

function parseArgs(argv: string[]): Options {
  const o: Options = { threads: [1, 2], shapes: DEFAULT_SHAPES, bandwidthBytes: 2 ** 30, quietWait: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    const need = () => { if (v === undefined) throw new Error(`${a} needs a value`); i++; return v; };
    if (a === '--threads') o.threads = need().split(',').map(Number);
    else if (a === '--shapes') {
      o.shapes = need().split(',').map((s) => {
        const m = /^(\d+)x(\d+)$/.exec(s);
        if (!m) throw new Error(`--shapes: ${s} is not ROWSxK`);
        return [Number(m[1]), Number(m[2])] as [number, number];
      });
    } else if (a === '--formats') o.formats = need().split(',');
    else if (a === '--bandwidth-gib') o.bandwidthBytes = Math.round(Number(need()) * 2 ** 30);
    else if (a === '--json') o.json = need();
    else if (a === '--quiet-wait') o.quietWait = Number(need());
    else throw new Error(`unknown option ${a}`);
  }
  for (const t of o.threads) if (!Number.isInteger(t) || t < 1) throw new Error(`--threads: ${t} is not a thread count`);
  if (!(o.bandwidthBytes >= 2 ** 26)) throw new Error('--bandwidth-gib must be at least 1/16');
  if (!(o.quietWait >= 0)) throw new Error('--quiet-wait must be a number of seconds');
  return o;
}

const progress = (msg: string) => process.stderr.write(`  … ${msg}\n`);

/**
 * Cores other processes kept busy, per second of wall time, from /proc/stat (busy jiffies of the
 * whole machine minus this process's CPU time); undefined where /proc/stat does not exist.
 */
export function otherCores(): () => number | undefined {
  const busy = (): number | undefined => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // user nice system irq softirq steal
    } catch {
      return undefined;
    }
  };
  const b0 = busy(), c0 = process.cpuUsage(), t0 = performance.now();
  return () => {
    const b1 = busy();
    if (b0 === undefined || b1 === undefined) return undefined;
    const own = process.cpuUsage(c0);
    const wall = (performance.now() - t0) / 1000;
    return Math.max(0, (b1 - b0 - (own.user + own.system) / 1e6) / wall);
  };
}

/** Batches of repetitions during which other processes used less than this many cores count as quiet. */
export const QUIET_CORES = 0.25;
/** /proc/stat counts in 10 ms ticks, so load is measured over batches of calls at least this long. */
const BATCH_MS = 100;

export interface Timing { best: number; median: number; reps: number; quietReps: number; other?: number }

/**
 * Times `fn` after two warm-up calls (the first runs V8's baseline code while the optimised code
 * compiles). Calls run in batches of about BATCH_MS; best and median are over the calls of quiet
 * batches when there are any, else over all.
 */
function time(fn: () => void): Timing {
  fn(); fn();
  const batches: { times: number[]; other?: number }[] = [];
  const start = performance.now();
  let calls = 0;
  while (calls < MAX_REPS && (calls < MIN_REPS || performance.now() - start < MIN_SECONDS * 1000)) {
    const load = otherCores();
    const b0 = performance.now();
    const times: number[] = [];
    do {
      const t0 = performance.now();
      fn();
      times.push((performance.now() - t0) / 1000);
      calls++;
    } while (performance.now() - b0 < BATCH_MS && calls < MAX_REPS);
    batches.push({ times, other: load() });
  }
  const quiet = batches.filter((b) => b.other !== undefined && b.other < QUIET_CORES);
  const use = (quiet.length ? quiet : batches).flatMap((b) => b.times).sort((a, b) => a - b);
  const others = batches.map((b) => b.other).filter((o): o is number => o !== undefined);
  return {
    best: use[0], median: use[use.length >> 1], reps: calls, quietReps: quiet.reduce((n, b) => n + b.times.length, 0),
    other: others.length ? others.reduce((a, b) => a + b, 0) / others.length : undefined,
  };
}

/**
 * Waits up to `seconds` until other processes used < QUIET_CORES cores over three 0.5 s windows in a
 * row; false if they did not (true without /proc/stat, where load cannot be seen).
 */
export async function waitQuiet(seconds: number): Promise<boolean> {
  const until = performance.now() + seconds * 1000;
  let calm = 0;
  while (calm < 3 && performance.now() < until) {
    const load = otherCores();
    await new Promise((r) => setTimeout(r, 500));
    const other = load();
    if (other === undefined) return true;
    calm = other < QUIET_CORES ? calm + 1 : 0;
  }
  return calm >= 3;
}

/**
 * time(fn) after waiting for quiet; with --quiet-wait, retried (up to 3 times) while no batch was
 * quiet, so one burst of someone else's work does not decide a figure.
 */
async function measure(fn: () => void, quietWait: number): Promise<Timing> {
  let r: Timing | undefined;
  for (let attempt = 0; attempt < (quietWait > 0 ? 3 : 1); attempt++) {
    await waitQuiet(quietWait);
    const t = time(fn);
    if (!r || (t.quietReps > 0 && (r.quietReps === 0 || t.best < r.best))) r = t;
    if (r.quietReps > 0) break;
  }
  return r!;
}

/** Read bandwidth for each thread count: rowsum_f32 over `bytes`, best of the quiet passes. */
export async function readBandwidth(be: CpuBackend, bytes: number, threads: number[], quietWait: number): Promise<Map<number, { bytesPerSecond: number; timing: Timing }>> {
  const d = 1 << 16; // f32 per row: 256 KiB a row
  const rows = Math.floor(bytes / (4 * d));
  const x = be.heap.alloc(rows * d * 4, 'bandwidth buffer');
  const y = be.heap.alloc(rows * 4, 'bandwidth sums');
  new Float32Array(be.heap.buffer, x, rows * d).fill(1); // also faults every page in before timing
  const out = new Map<number, { bytesPerSecond: number; timing: Timing }>();
  for (const t of threads) {
    progress(`read bandwidth: ${(rows * d * 4 / 2 ** 30).toFixed(2)} GiB, ${t} thread${t > 1 ? 's' : ''}`);
    const r = await measure(() => be.pool.run('rowsum_f32', [x, y, d], rows, 1, t), quietWait);
    out.set(t, { bytesPerSecond: (rows * d * 4) / r.best, timing: r });
  }
  be.heap.free(x);
  be.heap.free(y);
  return out;
}

/** Fast xorshift32 uniform values in [-0.5, 0.5). */
function randomValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    out[i] = (s >>> 0) / 2 ** 32 - 0.5;
  }
  return out;
}

/** Copies the first `filled` bytes of `b` over the rest of it, doubling each time. */
function tile(b: Uint8Array, filled: number): void {
  while (filled < b.length) {
    const n = Math.min(filled, b.length - filled);
    b.copyWithin(filled, 0, n);
    filled += n;
  }
}

/**
 * A [rows, k] weight of valid random values: one block of 128 rows quantised by the tensor layer's
 * reference quantiser, repeated down the matrix (with its scales). Streaming speed does not depend
 * on the values, and quantising 500M values in TypeScript would take minutes. Loaded as the models
 * load their matrices (loadWeight, matrixOnly), so it is laid out as theirs are (f16/bf16 column panels).
 */
async function randomWeight(be: CpuBackend, format: WeightFormat, rows: number, k: number): Promise<CpuTensor> {
  const block = Math.min(rows, 128);
  const q = quantize(format, randomValues(block * k, 12345), block, k);
  const name = `bench ${formatName(format)} [${rows}, ${k}]`;
  const source = {
    read(what: string, dst: Uint8Array) {
      const data = what === name ? q.data : q.scale!;
      dst.set(data);
      tile(dst, data.length);
    },
  };
  return await be.loadWeight(source, { name, format, shape: [rows, k], scaleName: format.scale ? `${name} scales` : undefined, matrixOnly: true }) as CpuTensor;
}

interface Result {
  format: string; rows: number; k: number; threads: number; bytes: number;
  best_s: number; median_s: number; reps: number; gbps: number; gbps_median: number; bandwidth_gbps: number; fraction: number;
  quiet_reps: number; other_cores?: number;
}

/** How busy the rest of the machine was while a figure was measured. */
function loadFields(r: Timing): { quiet_reps: number; other_cores?: number } {
  return { quiet_reps: r.quietReps, ...(r.other !== undefined ? { other_cores: +r.other.toFixed(2) } : {}) };
}

export async function benchKernels(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const be = await CpuBackend.create({ threads: Math.max(...o.threads) });
  const lines: string[] = [];
  const emit = (obj: object) => {
    const line = JSON.stringify({ bench: 'kernels', ...obj });
    lines.push(line);
    if (o.json) appendFileSync(o.json, line + '\n');
  };
  if (o.json) writeFileSync(o.json, '');
  try {
    const load0 = loadavg()[0];
    process.stderr.write(`kernels bench: ${be.pool.threads} threads available, load average ${load0.toFixed(2)}\n`);
    const bw = await readBandwidth(be, o.bandwidthBytes, o.threads, o.quietWait);
    for (const [t, b] of bw) {
      emit({ kind: 'read_bandwidth', threads: t, bytes: o.bandwidthBytes, gbps: +(b.bytesPerSecond / 1e9).toFixed(2), ...loadFields(b.timing) });
    }

    const kernels = MATRIX_KERNELS.filter((kn) => !o.formats || o.formats.includes(formatName(kn.format)) || o.formats.includes(kn.format.dtype));
    const results: Result[] = [];
    let step = 0;
    const steps = kernels.length * o.shapes.length;
    for (const kernel of kernels) {
      const fname = formatName(kernel.format) + (kernel.variant ? ` (${kernel.variant})` : '');
      be.setFastActivations(kernel.variant === 'int8-act'); // matvec then runs this kernel
      for (const [rows, k] of o.shapes) {
        step++;
        progress(`[${step}/${steps}] ${fname} ${rows}×${k}: filling`);
        let w: CpuTensor;
        try {
          w = await randomWeight(be, kernel.format, rows, k);
        } catch (err) {
          progress(`[${step}/${steps}] ${fname} ${rows}×${k}: skipped (${(err as Error).message})`);
          continue;
        }
        const x = be.alloc('f32', [k]), y = be.alloc('f32', [rows]);
        be.upload(x, randomValues(k, 777));
        const bytes = w.byteLength + (w.scale ? (w.scale.tensor as CpuTensor).byteLength : 0);
        for (const t of o.threads) {
          progress(`[${step}/${steps}] ${fname} ${rows}×${k}: ${t} thread${t > 1 ? 's' : ''}`);
          be.setThreads(t);
          const r = await measure(() => be.matvec(w, x, y), o.quietWait);
          const gbps = bytes / r.best / 1e9, bwt = bw.get(t)!.bytesPerSecond / 1e9;
          const res: Result = {
            format: fname, rows, k, threads: t, bytes, best_s: +r.best.toPrecision(4), median_s: +r.median.toPrecision(4), reps: r.reps,
            gbps: +gbps.toFixed(2), gbps_median: +(bytes / r.median / 1e9).toFixed(2), bandwidth_gbps: +bwt.toFixed(2),
            fraction: +(gbps / bwt).toFixed(3), ...loadFields(r),
          };
          results.push(res);
          emit({ kind: 'matvec', ...res });
        }
        be.setThreads(be.pool.threads);
        be.free(w); be.free(x); be.free(y);
      }
    }
    const out = process.stdout;
    out.write(`\nread bandwidth (rowsum_f32 over ${(o.bandwidthBytes / 2 ** 30).toFixed(2)} GiB, best pass):\n`);
    for (const [t, b] of bw) {
      out.write(`  ${t} thread${t > 1 ? 's' : ' '}  ${(b.bytesPerSecond / 1e9).toFixed(1).padStart(6)} GB/s  other cores ${b.timing.other?.toFixed(2) ?? '?'}\n`);
    }
    out.write('\nmatvec, GB/s of weight bytes (best / median of the timed runs), % of read bandwidth at the same thread count:\n');
    out.write(`  ${'format'.padEnd(30)} ${'rows×k'.padEnd(13)} ${'MB'.padStart(7)} thr ${'best'.padStart(7)} ${'median'.padStart(7)}   % bw  other cores\n`);
    for (const r of results) {
      out.write(`  ${r.format.padEnd(30)} ${`${r.rows}×${r.k}`.padEnd(13)} ${(r.bytes / 1e6).toFixed(1).padStart(7)} ${String(r.threads).padStart(3)} ` +
        `${r.gbps.toFixed(1).padStart(7)} ${r.gbps_median.toFixed(1).padStart(7)} ${(r.fraction * 100).toFixed(0).padStart(5)}%  ` +
        `${r.other_cores?.toFixed(2) ?? '?'}${r.quiet_reps ? '' : ' (no quiet rep)'}\n`);
    }
    out.write(`\nbest and median are over calls in batches while other processes used < ${QUIET_CORES} cores (all, if none was);\n` +
      `"other cores" is their average use. Load average ${load0.toFixed(2)} → ${loadavg()[0].toFixed(2)}.\n\n`);
    for (const line of lines) out.write(line + '\n');
  } finally {
    await be.close();
  }
  return 0;
}
