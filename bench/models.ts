/**
 * `npm run bench -- models`: minke against its peers on whole models — native llama.cpp
 * (node-llama-cpp) and llama.cpp in WebAssembly (wllama) — on the synthetic random-weight Llama
 * GGUFs of shared/bench (the dense-models issue's acceptance bars).
 *
 * For each model × thread count all engines hold the same file at once (minke in this process,
 * each peer in a child process: bench/peers/*-runner.mjs) and take turns, repetition by repetition,
 * so that a busy spell on this shared machine hits them alike. One repetition: a 128-token prompt
 * (BOS + pseudo-random ids) prefilled on an empty context, then 128 single-token decode steps (64 for
 * l1b) feeding back the argmax. One warm-up repetition first. Before each repetition the bench waits
 * for the machine to go quiet; each records the cores other processes kept busy meanwhile
 * (/proc/stat minus the engine's own CPU time), and only repetitions with fewer than --max-other
 * such cores count (the rest are kept in the JSON lines).
 *
 * The same thread count everywhere; minke gets an f16 KV cache, as llama.cpp's default.
 * The models are built on first use (shared/bench/build-synth-models.sh, needs python3-numpy) under
 * $HOME/.cache/minke-bench/models; the peers are installed into bench/peers/node_modules on first
 * use (`npm ci --prefix bench/peers`): they are dev tools of this bench, not dependencies of minke.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { argmax } from '../src/engine/sampler.js';
import { quantizeDenseGGUF } from '../src/quantize/gguf-dense.js';
import { loadModel, type LanguageModel } from '../src/models/index.js';

const usage = `usage: npm run bench -- models [--models DIR] [--configs s110m,l1b] [--types F16,Q8_0,Q4_0]
                                 [--threads 1,2] [--reps 3] [--prompt 128] [--gen N] [--engines minke,llamacpp,wllama]
                                 [--quiet-wait SECONDS] [--max-other 0.3] [--json FILE]
  --types: F32, F16, Q8_0, Q4_0 (the shared generator), Q4_K (quantised from the F16 file by minke, head Q6_K)
  --gen defaults to 128 (64 for l1b); --json defaults to $HOME/.cache/minke-bench/results/models-<time>.jsonl
`;

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // from dist/bench/
const SHARED_BENCH = path.join(REPO, '..', 'shared', 'bench');
const PEERS = path.join(REPO, 'bench', 'peers');
const CACHE = path.join(homedir(), '.cache', 'minke-bench');
const CONFIGS = ['s15m', 's110m', 'l1b'];
const TYPES = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'];
/** Types the shared generator makes; the others are quantised from its F16 file by minke (Q4_K: the head Q6_K, as in Q4_K_M). */
const GENERATED = ['F32', 'F16', 'Q8_0', 'Q4_0'];
const ENGINES = ['minke', 'llamacpp', 'wllama'] as const;
type EngineName = (typeof ENGINES)[number];
/** wllama's compat build is wasm32: a model file must leave room in its 4 GiB (it refuses above 2 GiB). */
const WLLAMA_MAX_BYTES = 2 ** 31;

interface Options {
  models: string; configs: string[]; types: string[]; threads: number[]; reps: number; prompt: number;
  gen?: number; engines: EngineName[]; quietWait: number; maxOther: number; json: string;
}

function parseArgs(argv: string[]): Options | undefined {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const o: Options = {
    models: path.join(CACHE, 'models'), configs: ['s110m'], types: ['F16', 'Q8_0', 'Q4_0'], threads: [1, 2], reps: 3,
    prompt: 128, engines: [...ENGINES], quietWait: 300, maxOther: 0.3, json: path.join(CACHE, 'results', `models-${stamp}.jsonl`),
  };
  const list = (v: string, name: string, known: readonly string[]) => {
    const xs = v.split(',').filter(Boolean);
    for (const x of xs) if (!known.includes(x)) throw new Error(`${name}: unknown ${JSON.stringify(x)} (known: ${known.join(', ')})`);
    if (!xs.length) throw new Error(`${name} needs at least one value`);
    return xs;
  };
  const int = (v: string, name: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return undefined;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--models') o.models = v;
    else if (a === '--configs') o.configs = list(v, a, CONFIGS);
    else if (a === '--types') o.types = list(v, a, TYPES);
    else if (a === '--threads') o.threads = v.split(',').map((t) => int(t, a, 1));
    else if (a === '--reps') o.reps = int(v, a, 1);
    else if (a === '--prompt') o.prompt = int(v, a, 2);
    else if (a === '--gen') o.gen = int(v, a, 1);
    else if (a === '--engines') o.engines = list(v, a, ENGINES) as EngineName[];
    else if (a === '--quiet-wait') o.quietWait = int(v, a, 0);
    else if (a === '--max-other') { o.maxOther = Number(v); if (!(o.maxOther >= 0)) throw new Error(`${a} must be a number of cores ≥ 0`); }
    else if (a === '--json') o.json = v;
    else throw new Error(`unknown option ${JSON.stringify(a)}\n${usage}`);
  }
  return o;
}

// ---- machine load ----------------------------------------------------------------------------

/** CPU seconds the whole machine has been busy (/proc/stat counts in 1/100 s). */
function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // user nice system irq softirq steal
}

/** shared/bench/wait-quiet.sh: up to `seconds` for three 1-second samples in a row under 0.10 busy cores. */
async function waitQuiet(seconds: number): Promise<string> {
  const until = performance.now() + seconds * 1000;
  let calm = 0;
  let cores = 0;
  while (performance.now() < until) {
    const b0 = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1000));
    cores = machineBusySeconds() - b0;
    calm = cores < 0.1 ? calm + 1 : 0;
    if (calm >= 3) return `quiet (${cores.toFixed(2)} busy cores)`;
  }
  return `NOT quiet after ${seconds} s (${cores.toFixed(2)} busy cores)`;
}

// ---- setup: models and peers -----------------------------------------------------------------

const modelFile = (dir: string, config: string, type: string) => path.join(dir, `synth-${config}-${type}.gguf`);

function ensureModels(o: Options): void {
  for (const config of o.configs) {
    const absent = (t: string) => !existsSync(modelFile(o.models, config, t));
    const derived = o.types.filter((t) => !GENERATED.includes(t) && absent(t));
    const missing = [...new Set([...o.types.filter((t) => GENERATED.includes(t)), ...(derived.length ? ['F16'] : [])])].filter(absent);
    if (missing.length) {
      const script = path.join(SHARED_BENCH, 'build-synth-models.sh');
      if (!existsSync(script)) throw new Error(`${script} not found: it builds the synthetic models`);
      if (spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status !== 0) {
        throw new Error('building the synthetic models needs python3 with numpy (Debian: apt-get install -y python3-numpy)');
      }
      log(`building ${missing.map((t) => `synth-${config}-${t}.gguf`).join(', ')} in ${o.models}: ${script} ${o.models} ${config}`);
      const r = spawnSync(script, [o.models, config], { stdio: ['ignore', 2, 2], env: { ...process.env, TYPES: missing.join(' ') } });
      if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status ?? r.signal})`);
    }
    for (const t of derived) {
      const src = modelFile(o.models, config, 'F16'), dst = modelFile(o.models, config, t);
      log(`quantizing ${path.basename(src)} → ${path.basename(dst)} (minke quantize)`);
      quantizeDenseGGUF(src, dst, t.toLowerCase());
    }
  }
}

function ensurePeers(engines: EngineName[]): void {
  const need = [...(engines.includes('llamacpp') ? ['node-llama-cpp'] : []), ...(engines.includes('wllama') ? ['@wllama/wllama', '@wllama/wllama-compat'] : [])];
  if (need.every((p) => existsSync(path.join(PEERS, 'node_modules', p, 'package.json')))) return;
  log(`installing the peer engines (pinned in bench/peers/package-lock.json): npm ci --prefix ${PEERS} --no-audit --no-fund`);
  const r = spawnSync('npm', ['ci', '--prefix', PEERS, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`npm ci --prefix ${PEERS} failed (exit ${r.status ?? r.signal})`);
}

// ---- engines ---------------------------------------------------------------------------------

interface Rep { prefill_tps: number; decode_tps: number; other_cores: number; seconds: number }

interface Engine {
  readonly name: EngineName;
  /** Facts to record (engine version, load time, …). */
  readonly facts: Record<string, unknown>;
  /** One repetition; `warmup` ones are not recorded. */
  rep(warmup: boolean): Promise<Rep>;
  close(): Promise<void>;
}

/** minke in this process. */
async function startMinke(file: string, threads: number, prompt: number[], gen: number, model: LanguageModel, loadMs: number): Promise<Engine> {
  const ctx = prompt.length + gen;
  return {
    name: 'minke',
    facts: { engine: `minke (WebAssembly SIMD, ${model.backend.threads} threads, f16 KV cache)`, load_ms: Math.round(loadMs) },
    async rep() {
      const b0 = machineBusySeconds(), c0 = process.cpuUsage(), t0 = performance.now();
      const seq = model.newSequence({ contextLength: ctx });
      let t1: number, t2: number;
      try {
        let logits = await seq.forward(prompt);
        t1 = performance.now();
        for (let i = 0; i < gen; i++) logits = await seq.forward([argmax(logits)]);
        t2 = performance.now();
      } finally {
        seq.free();
      }
      const seconds = (performance.now() - t0) / 1000;
      const own = process.cpuUsage(c0);
      const other = Math.max(0, (machineBusySeconds() - b0 - (own.user + own.system) / 1e6) / seconds);
      return {
        prefill_tps: round2(prompt.length / ((t1 - t0) / 1000)), decode_tps: round2(gen / ((t2 - t1) / 1000)),
        other_cores: round2(other), seconds: round2(seconds),
      };
    },
    close: () => model.close(),
  };
}

/** A peer in a child process, spoken to over the line protocol of bench/peers/runner.mjs. */
class PeerEngine implements Engine {
  facts: Record<string, unknown> = {};
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly replies: Record<string, unknown>[] = [];
  private waiter?: () => void;
  private exited = false;

  constructor(readonly name: EngineName, script: string, cfg: object) {
    this.child = spawn(process.execPath, [path.join(PEERS, script)], { cwd: PEERS, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (line.startsWith('@@bench ')) { this.replies.push(JSON.parse(line.slice(8))); this.waiter?.(); }
      else if (line.trim()) process.stderr.write(`  [${name}] ${line}\n`);
    });
    createInterface({ input: this.child.stderr }).on('line', (line) => { if (line.trim()) process.stderr.write(`  [${name}] ${line}\n`); });
    this.child.on('exit', () => { this.exited = true; this.waiter?.(); });
    this.child.stdin.on('error', () => {}); // a runner that died is reported by next()
    this.send(cfg);
  }

  private send(o: object): void {
    if (!this.exited) this.child.stdin.write(JSON.stringify(o) + '\n');
  }

  /** The next reply, or an Error naming why none came. */
  private async next(timeoutS: number): Promise<Record<string, unknown>> {
    const until = performance.now() + timeoutS * 1000;
    while (!this.replies.length && !this.exited && performance.now() < until) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, until - performance.now()));
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
    }
    this.waiter = undefined;
    const r = this.replies.shift();
    if (r === undefined) throw new Error(`${this.name}: ${this.exited ? `runner exited (code ${this.child.exitCode})` : `no answer in ${timeoutS} s`}`);
    if (typeof r.error === 'string') throw new Error(`${this.name}: ${r.error}`);
    return r;
  }

  async ready(): Promise<this> {
    const { ready: _, ...facts } = await this.next(1800);
    this.facts = facts;
    return this;
  }

  async rep(warmup: boolean): Promise<Rep> {
    this.send({ rep: warmup ? -1 : 0 });
    return (await this.next(1800)) as unknown as Rep;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    this.child.stdin.end();
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const t = setTimeout(() => this.child.kill(), 30_000);
    await done;
    clearTimeout(t);
  }
}

// ---- one model × thread count ----------------------------------------------------------------

/** BOS, then ids from an xorshift32 stream in [3, vocab): the same prompt for every engine. */
function promptIds(n: number, vocab: number, bos: number | undefined): number[] {
  const ids = bos === undefined ? [] : [bos];
  let x = 2463534242;
  while (ids.length < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    ids.push(3 + (x % (vocab - 3)));
  }
  return ids;
}

interface EngineResult {
  facts?: Record<string, unknown>;
  error?: string;
  prefill_tps: number[]; decode_tps: number[]; other_cores: number[];
  /** Medians over the quiet repetitions, or over all of them where none was quiet (quiet: false). */
  prefill?: number; decode?: number; kept?: number; quiet?: boolean;
}

interface Ratio { value: number; quiet: boolean }

interface Row {
  model: string; config: string; type: string; threads: number; prompt: number; gen: number; reps: number;
  max_other: number; engines: Partial<Record<EngineName, EngineResult>>;
  ratios: { prefill_vs_llamacpp: Ratio | null; decode_vs_llamacpp: Ratio | null; decode_vs_wllama: Ratio | null };
  /** pass: null where a side is missing or had no quiet repetition. */
  bars: { name: string; need: number; ratio: number | null; pass: boolean | null }[];
}

async function measure(o: Options, config: string, type: string, threads: number): Promise<Row> {
  const file = modelFile(o.models, config, type);
  const gen = o.gen ?? (config === 'l1b' ? 64 : 128);
  const results: Partial<Record<EngineName, EngineResult>> = {};
  const fail = (name: EngineName, err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    log(`${name} failed: ${msg}`);
    (results[name] ??= { prefill_tps: [], decode_tps: [], other_cores: [] }).error = msg;
  };

  // minke loads first: its tokenizer gives the vocabulary for the prompt.
  const t0 = performance.now();
  const model = await loadModel(file, { threads, kvType: 'f16', contextLength: o.prompt + gen });
  const loadMs = performance.now() - t0;
  const prompt = promptIds(o.prompt, model.tokenizer.vocabSize, model.tokenizer.addBos ? model.tokenizer.bos : undefined);
  const cfg = { model: file, threads, prompt, gen };
  const engines: Engine[] = [];
  if (o.engines.includes('minke')) engines.push(await startMinke(file, threads, prompt, gen, model, loadMs));
  else await model.close();
  const peers: [EngineName, string][] = [];
  if (o.engines.includes('llamacpp')) peers.push(['llamacpp', 'llamacpp-runner.mjs']);
  if (o.engines.includes('wllama')) {
    if (statSync(file).size > WLLAMA_MAX_BYTES) fail('wllama', 'skipped: the file is over 2 GiB, more than the wasm32 build holds');
    else peers.push(['wllama', 'wllama-runner.mjs']);
  }
  // The peers load side by side (loading is not measured).
  await Promise.all(peers.map(async ([name, script]) => {
    const peer = new PeerEngine(name, script, cfg);
    try {
      engines.push(await peer.ready());
    } catch (err) {
      fail(name, err);
      await peer.close();
    }
  }));
  engines.sort((a, b) => ENGINES.indexOf(a.name) - ENGINES.indexOf(b.name));
  for (const e of engines) results[e.name] = { facts: e.facts, prefill_tps: [], decode_tps: [], other_cores: [] };

  try {
    // Repetition -1 is the warm-up; the engines' order rotates from one repetition to the next.
    for (let rep = -1; rep < o.reps; rep++) {
      const order = engines.map((_, i) => engines[(i + rep + 1) % engines.length]);
      for (const e of order) {
        const r = results[e.name]!;
        if (r.error) continue;
        const quiet = await waitQuiet(o.quietWait);
        try {
          const m = await e.rep(rep < 0);
          log(`${path.basename(file)} ${threads}t ${rep < 0 ? 'warm-up' : `rep ${rep + 1}/${o.reps}`} ${e.name.padEnd(8)} ` +
            `prefill ${fmt(m.prefill_tps).padStart(7)} decode ${fmt(m.decode_tps).padStart(6)} tok/s, other cores ${m.other_cores.toFixed(2)}; waited: ${quiet}`);
          if (rep < 0) continue;
          r.prefill_tps.push(m.prefill_tps);
          r.decode_tps.push(m.decode_tps);
          r.other_cores.push(m.other_cores);
        } catch (err) {
          fail(e.name, err);
        }
      }
    }
  } finally {
    for (const e of engines) await e.close();
  }

  for (const r of Object.values(results)) {
    if (!r.decode_tps.length) continue;
    let keep = r.other_cores.map((c, i) => (c < o.maxOther ? i : -1)).filter((i) => i >= 0);
    r.kept = keep.length;
    r.quiet = keep.length > 0;
    if (!r.quiet) keep = r.other_cores.map((_, i) => i);
    r.prefill = round2(median(keep.map((i) => r.prefill_tps[i])));
    r.decode = round2(median(keep.map((i) => r.decode_tps[i])));
  }
  const m = results.minke, l = results.llamacpp, w = results.wllama;
  const ratio = (a: EngineResult | undefined, b: EngineResult | undefined, key: 'prefill' | 'decode'): Ratio | null =>
    a?.[key] && b?.[key] ? { value: +(a[key]! / b[key]!).toFixed(3), quiet: !!(a.quiet && b.quiet) } : null;
  const ratios = {
    prefill_vs_llamacpp: ratio(m, l, 'prefill'),
    decode_vs_llamacpp: ratio(m, l, 'decode'),
    decode_vs_wllama: ratio(m, w, 'decode'),
  };
  const bar = (name: string, need: number, r: Ratio | null) => ({ name, need, ratio: r?.value ?? null, pass: r?.quiet ? r.value >= need : null });
  // The issue's bars are set for its generated types; Q4_K is measured, not judged.
  const bars = GENERATED.includes(type) ? [
    bar('decode ≥ ×llama.cpp', type === 'Q4_0' ? 0.5 : 0.8, ratios.decode_vs_llamacpp),
    bar('decode ≥ ×wllama', 2, ratios.decode_vs_wllama),
    bar('prefill ≥ ×llama.cpp', 0.3, ratios.prefill_vs_llamacpp),
  ] : [];
  return { model: path.basename(file), config, type, threads, prompt: o.prompt, gen, reps: o.reps, max_other: o.maxOther, engines: results, ratios, bars };
}

// ---- report ----------------------------------------------------------------------------------

const round2 = (x: number) => +x.toFixed(2);
const fmt = (x: number | undefined) => (x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
/** A figure, starred where it comes from busy repetitions only. */
const fmtEngine = (r: EngineResult | undefined, key: 'prefill' | 'decode') => fmt(r?.[key]) + (r?.[key] !== undefined && !r.quiet ? '*' : '');
const fmtRatio = (x: Ratio | null) => (x === null ? '—' : x.value.toFixed(2) + (x.quiet ? '' : '*'));
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
function log(msg: string): void {
  process.stderr.write(`  … ${msg}\n`);
}

const COLUMNS: [string, number][] = [
  ['model', 12], ['thr', 3], ['minke pp', 8], ['minke tg', 8], ['llama pp', 8], ['llama tg', 8], ['wllama tg', 9],
  ['pp m/l', 6], ['tg m/l', 6], ['tg m/w', 6], ['kept m/l/w', 10], ['bars', 0],
];
const line = (cells: string[]) => cells.map((c, i) => (i ? c.padStart(COLUMNS[i][1]) : c.padEnd(COLUMNS[i][1]))).join('  ').trimEnd() + '\n';

function tableRow(r: Row): string {
  const e = r.engines;
  const kept = (x?: EngineResult) => (x === undefined ? '-' : x.error && !x.kept ? 'x' : `${x.kept}`);
  const verdict = (b: Row['bars'][number]) => (b.pass !== null ? (b.pass ? 'PASS' : 'FAIL') : b.ratio === null ? 'n/a' : 'busy');
  const bars = r.bars.map((b) => `${b.name.replace('≥ ×', `≥${b.need}×`)} ${verdict(b)}`).join('; ');
  return line([
    `${r.config}-${r.type}`, String(r.threads), fmtEngine(e.minke, 'prefill'), fmtEngine(e.minke, 'decode'), fmtEngine(e.llamacpp, 'prefill'),
    fmtEngine(e.llamacpp, 'decode'), fmtEngine(e.wllama, 'decode'), fmtRatio(r.ratios.prefill_vs_llamacpp), fmtRatio(r.ratios.decode_vs_llamacpp), fmtRatio(r.ratios.decode_vs_wllama),
    `${kept(e.minke)}/${kept(e.llamacpp)}/${kept(e.wllama)}`, bars,
  ]);
}

export async function benchModels(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (!o) { process.stdout.write(usage); return 0; }
  ensureModels(o);
  ensurePeers(o.engines);
  mkdirSync(path.dirname(o.json), { recursive: true });
  log(`results (JSON lines): ${o.json}`);
  process.stdout.write(`tok/s, medians of the repetitions with other cores < ${o.maxOther} (*: none was; median of all, not judged);\n` +
    `pp: prefill of ${o.prompt} tokens, tg: decode; m/l, m/w: minke ÷ llama.cpp, minke ÷ wllama; kept: quiet repetitions of each\n`);
  process.stdout.write(line(COLUMNS.map(([h]) => h)));
  const rows: Row[] = [];
  for (const config of o.configs) {
    for (const type of o.types) {
      for (const threads of o.threads) {
        let row: Row;
        try {
          row = await measure(o, config, type, threads);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          log(`${config}-${type} ${threads} threads failed: ${msg}`);
          appendFileSync(o.json, JSON.stringify({ model: path.basename(modelFile(o.models, config, type)), threads, error: msg }) + '\n');
          continue;
        }
        rows.push(row);
        appendFileSync(o.json, JSON.stringify(row) + '\n');
        process.stdout.write(tableRow(row));
      }
    }
  }
  const judged = rows.flatMap((r) => r.bars).filter((b) => b.pass !== null);
  process.stdout.write(`bars: ${judged.filter((b) => b.pass).length} of ${judged.length} judged pass` +
    ` (decode ≥ 0.8× llama.cpp on F16/Q8_0, ≥ 0.5× on Q4_0; decode ≥ 2× wllama; prefill ≥ 0.3× llama.cpp)\n`);
  return 0;
}
