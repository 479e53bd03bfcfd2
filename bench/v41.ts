/**
 * `npm run bench -- v41`: DeepSeek-V4.1 decoding through the serving engine (src/engine/engine.ts)
 * with and without speculative decoding by its DSpark draft head (deepseek-v41.md §8), on a
 * synthetic checkpoint of bench/synth-v41.ts (random weights), at temperature 0:
 *
 *   (a) plain decode: one forward pass per token;
 *   (b) DSpark: each pass verifies a drafted block along with the next token. Random weights draft
 *       ~never the right token, so this measures what drafting and verifying cost;
 *   (c) DSpark with an oracle draft head: the first k ids of every block are the true greedy
 *       continuation (from run a) and the confidences say so (the engine verifies exactly k), the
 *       rest wrong — the speed-up a trained draft head that is right k tokens ahead buys.
 *
 * All runs should produce the same tokens (the verification keeps only what the trunk picks); the
 * report says whether they did, and from which token a run leaves (a). With the QAT round trips on
 * (the default, the checkpoints' own numerics) a verify pass of several tokens (matmul) and a decode
 * step (matvec) round differently in the last float bits, which a Q8/Q4 rounding midpoint can turn
 * into another token; --no-qat shows whether the speculative path is exact otherwise. Also: one
 * forward pass of 1+ℓ tokens (a verify pass) and one draft round against one decode step, with the
 * weight bytes each streams, and the hit rate of the Engram row caches.
 *
 * The checkpoint is generated once into $MINKE_BENCH_CACHE/v41-PRESET (default
 * bench/.cache/v41-PRESET) and again whenever its config changes (decode-roofline.ts). Each timed
 * run waits for the machine to go quiet first (--quiet-wait); runs that did not are starred.
 */
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, type EngineOptions } from '../src/engine/engine.js';
import { DeepseekV41Model } from '../src/models/deepseek-v41.js';
import { loadModel } from '../src/models/index.js';
import { ensureCheckpoint, randomIds } from './decode-roofline.js';
import { otherCores, QUIET_CORES, waitQuiet } from './kernels.js';
import { oracleModel, v41SynthConfig, type V41SynthPreset, writeSyntheticV41 } from './synth-v41.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // from dist/bench/
/** Weight values of the cached checkpoint (a different seed would be a different model). */
const SEED = 1;
/** Tokens each run's warm-up generates (V8 optimises the decode and verify paths). */
const WARMUP_TOKENS = 6;
/** The oracle's right drafts per block. */
const ORACLE_K = [1, 2, 4];

const USAGE = `usage: npm run bench -- v41 [--threads 2] [--gen 32] [--prompt 64] [--preset bench|tiny] [--reps 5]
                             [--quiet-wait 15] [--no-qat] [--dir DIR] [--regenerate] [--json FILE]
  --reps: of each pass-cost measurement; --no-qat runs without the QAT round trips (activations, KV);
  --dir defaults to $MINKE_BENCH_CACHE/v41-PRESET, else bench/.cache/v41-PRESET; --json appends one line
`;

interface Options {
  threads: number; gen: number; prompt: number; preset: V41SynthPreset; reps: number; quietWait: number;
  dir?: string; regenerate: boolean; qat: boolean; json?: string;
}

function parseArgs(argv: string[]): Options | undefined {
  const o: Options = { threads: 2, gen: 32, prompt: 64, preset: 'bench', reps: 5, quietWait: 15, regenerate: false, qat: true };
  const int = (v: string, opt: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${opt} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return undefined;
    if (a === '--regenerate') { o.regenerate = true; continue; }
    if (a === '--no-qat') { o.qat = false; continue; }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--threads') o.threads = int(v, a, 1);
    else if (a === '--gen') o.gen = int(v, a, 2);
    else if (a === '--prompt') o.prompt = int(v, a, 1);
    else if (a === '--reps') o.reps = int(v, a, 1);
    else if (a === '--quiet-wait') o.quietWait = int(v, a, 0);
    else if (a === '--dir') o.dir = path.resolve(v);
    else if (a === '--json') o.json = v;
    else if (a === '--preset') {
      if (v !== 'bench' && v !== 'tiny') throw new Error(`--preset must be bench or tiny (flash is too big to generate), got ${JSON.stringify(v)}`);
      o.preset = v;
    } else throw new Error(`unknown option ${JSON.stringify(a)}\n${USAGE}`);
  }
  return o;
}

const progress = (msg: string) => process.stderr.write(`  … ${msg}\n`);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Run {
  name: string; tokens: number[]; tps: number; drafts: number; accepted: number; passes: number;
  hits: number; misses: number; otherCores?: number; quiet: boolean;
}

export async function benchV41(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (!o) { process.stdout.write(USAGE); return 0; }
  const config = v41SynthConfig(o.preset);
  const dir = o.dir ?? path.join(process.env.MINKE_BENCH_CACHE ?? path.join(REPO, 'bench', '.cache'), `v41-${o.preset}`);
  ensureCheckpoint({ config, write: writeSyntheticV41 }, dir, o.regenerate, `the synthetic '${o.preset}' DeepSeek-V4.1 checkpoint`);

  const t0 = performance.now();
  let shown = -1;
  const loaded = await loadModel(dir, {
    threads: o.threads, actQuant: o.qat, kvQuant: o.qat,
    onProgress: (done, total) => {
      const tenth = Math.floor((10 * done) / total);
      if (tenth !== shown) progress(`loading: ${mb(done)} of ${mb(total)} (non-expert weights)`);
      shown = tenth;
    },
  });
  try {
    if (!(loaded instanceof DeepseekV41Model)) throw new Error(`${dir} did not load as a DeepSeek-V4.1 model`);
    const model = loaded, c = model.config, gamma = c.dspark.blockSize;
    // No tokenizer.json: any map into the compressed vocabulary drives the Engram hashes.
    model.setEngramTokenMap(Int32Array.from({ length: c.vocab }, (_, i) => i % c.engram.compressedVocab));
    const stages = model.weights.dspark?.stages ?? [];
    await Promise.all([
      ...model.weights.blocks.flatMap((b) => Array.from({ length: c.experts }, (_, e) => b.ffn.expert(e))),
      ...stages.flatMap((b) => Array.from({ length: c.dspark.experts }, (_, e) => b.ffn.expert(e))),
    ]);
    progress(`loaded with every routed expert in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const prompt = randomIds(o.prompt, c.vocab);
    const request = (maxTokens: number, p = prompt) => ({ prompt: p, maxTokens, sampling: { temperature: 0 } });

    // Warm-up on another prompt (no n-gram of it in the measured runs' Engram caches): plain and speculative steps.
    const warm = prompt.map((t) => (7 * t + 1) % c.vocab);
    for (const opts of [{ speculative: false }, { draftThreshold: 0 }]) {
      const engine = new Engine(model, opts);
      await engine.submit(request(WARMUP_TOKENS, warm)).result;
      await engine.close();
    }

    const runs: Run[] = [];
    const run = async (name: string, m: DeepseekV41Model, opts: EngineOptions): Promise<Run> => {
      const quiet = await waitQuiet(o.quietWait);
      const load = otherCores();
      const e0 = model.engramCacheStats;
      const engine = new Engine(m, opts);
      const r = await engine.submit(request(o.gen)).result;
      await engine.close();
      const other = load(), e1 = model.engramCacheStats;
      const out: Run = {
        name, tokens: r.tokens, tps: (r.tokens.length - 1) / r.decodeSeconds,
        drafts: r.drafts, accepted: r.draftsAccepted, passes: r.verifySteps,
        hits: e1.hits - e0.hits, misses: e1.misses - e0.misses,
        otherCores: other, quiet: quiet && other !== undefined && other < QUIET_CORES,
      };
      progress(`${name}: ${out.tps.toFixed(2)} tok/s, ${r.tokens.length} tokens` +
        (out.passes ? `, ${out.accepted} of ${out.drafts} drafts accepted in ${out.passes} verify passes` : '') +
        `, other cores ${other?.toFixed(2) ?? '?'}`);
      runs.push(out);
      return out;
    };

    const plain = await run('(a) plain decode', model, { speculative: false });
    await run('(b) DSpark, threshold 0.25', model, { draftThreshold: 0.25 });
    await run(`(b) DSpark, whole block (${gamma})`, model, { draftThreshold: 0 });
    const truth = [...prompt, ...plain.tokens];
    for (const k of ORACLE_K) await run(`(c) oracle, ${k} right per block`, oracleModel(model, truth, k), { draftThreshold: 0.25 });

    // One forward pass of 1+ℓ tokens after the prompt, then rolled back; and one draft round.
    progress(`pass costs: ${o.reps} reps of a forward of 1 … ${1 + gamma} tokens, and of a draft round`);
    await waitQuiet(o.quietWait);
    const seq = model.newSequence({ contextLength: prompt.length + gamma + 2 });
    await seq.forward(prompt);
    const next = plain.tokens[0];
    const passMs: number[] = [], passBytes: number[] = [];
    for (let l = 0; l <= gamma; l++) {
      const tokens = truth.slice(prompt.length, prompt.length + 1 + l);
      const ms: number[] = [];
      for (let r = 0; r < o.reps; r++) {
        const t = performance.now(), b = seq.weightBytesRead;
        await seq.forward(tokens, { allLogits: l > 0 });
        ms.push(performance.now() - t);
        if (r === 0) passBytes.push(seq.weightBytesRead - b);
        seq.truncate(prompt.length);
      }
      passMs.push(median(ms));
    }
    const draftMs: number[] = [];
    let draftBytes = 0;
    for (let r = 0; r < o.reps; r++) {
      const t = performance.now(), b = seq.weightBytesRead;
      await seq.dspark(next);
      draftMs.push(performance.now() - t);
      draftBytes = seq.weightBytesRead - b;
    }
    seq.free();
    const draftRound = median(draftMs);

    // ---- report ----------------------------------------------------------------------------------
    // The first token where a run's output leaves (a)'s, or −1.
    const divergence = (r: Run) => {
      const n = Math.max(r.tokens.length, plain.tokens.length);
      for (let i = 0; i < n; i++) if (r.tokens[i] !== plain.tokens[i]) return i;
      return -1;
    };
    const same = runs.filter((r) => divergence(r) >= 0);
    const d = model.description, E = c.engram;
    const out = process.stdout;
    out.write(`\nDeepSeek-V4.1 decode with DSpark speculative decoding, synthetic '${o.preset}' checkpoint ` +
      `(${c.layers} layers + ${c.stages} DSpark stages, dim ${c.dim}, ${c.experts} experts top-${c.topK}, ` +
      `Engram ${E.layerIds.length} × ${E.numEmbeddings.map((n) => (n >= 1e4 ? `${(n / 1000).toFixed(0)}K` : String(n))).join('/')} rows × ${E.headDim}, ` +
      `block ${gamma}, vocab ${c.vocab}; ${(Object.values(d.weightBytes).reduce((a, b) => a + b, 0) / 1e9).toFixed(2)} GB), ` +
      `${o.threads} thread${o.threads > 1 ? 's' : ''}, ${o.qat ? 'QAT round trips on' : 'no QAT round trips (--no-qat)'}, prompt ${o.prompt}, ${o.gen} tokens, temperature 0:\n`);
    out.write(`  ${'run'.padEnd(34)} ${'tok/s'.padStart(7)} ${'vs (a)'.padStart(7)} ${'accepted'.padStart(10)} ${'tok/pass'.padStart(8)} ${'passes'.padStart(6)} ${'Engram hits'.padStart(11)}  output\n`);
    for (const r of runs) {
      const star = r.quiet ? ' ' : '*';
      const acc = r.drafts ? `${r.accepted}/${r.drafts}` : '—';
      const perPass = r.passes ? ((r.accepted + r.passes) / r.passes).toFixed(2) : '1.00';
      const hit = r.hits + r.misses ? `${((100 * r.hits) / (r.hits + r.misses)).toFixed(1)} %` : '—';
      out.write(`  ${r.name.padEnd(34)} ${r.tps.toFixed(2).padStart(6)}${star} ${(r.tps / plain.tps).toFixed(2).padStart(6)}× ${acc.padStart(10)} ` +
        `${perPass.padStart(8)} ${(r.passes ? String(r.passes) : '—').padStart(6)} ${hit.padStart(11)}  ${r === plain ? `${r.tokens.length} tokens` : divergence(r) < 0 ? '= (a)' : `≠ (a) from token ${divergence(r)}`}\n`);
    }
    out.write(`  outputs at temperature 0: ${same.length ? `DIFFER from (a) in ${same.length} of ${runs.length - 1} runs` : `identical in all ${runs.length} runs (${plain.tokens.length} tokens each)`}\n`);
    out.write(`  (tok/s: tokens after the first ÷ seconds after the first; accepted: drafts accepted / drafts checked (a pass stops at the ` +
      `first wrong one); tok/pass: tokens per verify pass = accepted + 1; *: other processes used ≥ ${QUIET_CORES} cores during the run)\n`);

    out.write(`\none forward pass after the ${o.prompt}-token prompt (median of ${o.reps}):\n`);
    out.write(`  ${'pass'.padEnd(36)} ${'ms'.padStart(8)} ${'× decode step'.padStart(14)} ${'weights MB'.padStart(11)}\n`);
    const passLine = (name: string, ms: number, bytes: number) =>
      out.write(`  ${name.padEnd(36)} ${ms.toFixed(1).padStart(8)} ${(ms / passMs[0]).toFixed(2).padStart(13)}× ${(bytes / 1e6).toFixed(1).padStart(11)}\n`);
    passMs.forEach((ms, l) => passLine(l ? `verify: 1 + ${l} draft${l > 1 ? 's' : ''} (all logits)` : 'decode step: 1 token', ms, passBytes[l]));
    passLine(`DSpark draft round (${c.stages} stages × ${gamma} rows)`, draftRound, draftBytes);
    out.write(`  (weights MB: bytes the matrix products streamed, routed experts of every token included)\n`);

    const all = model.engramCacheStats;
    out.write(`\nEngram row caches (${E.layerIds.length} layers × ${(E.maxNgram - 1) * E.heads} rows per token): ` +
      `${all.hits} hits, ${all.misses} misses over the whole bench (${((100 * all.hits) / Math.max(1, all.hits + all.misses)).toFixed(1)} % hits; ` +
      `per run in the table: a run re-reads the n-grams of the prompt and of earlier runs' identical output)\n`);

    const line = JSON.stringify({
      bench: 'v41', preset: o.preset, threads: o.threads, gen: o.gen, prompt: o.prompt, checkpoint: dir,
      qat: o.qat, identical: same.length === 0,
      runs: runs.map((r) => ({
        name: r.name, tps: +r.tps.toFixed(3), diverges_at: divergence(r), speedup: +(r.tps / plain.tps).toFixed(3), drafts: r.drafts, accepted: r.accepted,
        verify_passes: r.passes, engram_hits: r.hits, engram_misses: r.misses, other_cores: r.otherCores === undefined ? null : +r.otherCores.toFixed(2),
      })),
      pass_ms: passMs.map((ms) => +ms.toFixed(2)), pass_weight_bytes: passBytes, draft_round_ms: +draftRound.toFixed(2), draft_round_weight_bytes: draftBytes,
    });
    out.write(`\n${line}\n`);
    if (o.json) appendFileSync(o.json, line + '\n');
    return 0;
  } finally {
    await loaded.close();
  }
}
