/**
 * `npm run bench -- webgpu`: decode tokens/s on the WebGPU backend (a real GPU: run it on one),
 * against minke's CPU backend on the same machine, for random-weight models of the sizes people
 * run: a ≈1.1B Llama (TinyLlama's shape) in Q8_0 and Q4_0, and the synthetic DeepSeek-V4 of
 * `bench -- v4`. llama.cpp is not driven here (the dense `bench -- models` does that on the CPU);
 * where a GPU build of it is at hand, run `llama-bench -m FILE -n 64 -p 0` on the same .gguf files.
 *
 * Models are generated once under $MINKE_BENCH_CACHE (default bench/.cache). Each measurement: a
 * 16-token prefill, then --gen greedy decode steps, --reps times after one warm-up; the median.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendKind } from '../src/kernels/create-backend.js';
import { loadModel } from '../src/models/index.js';
import { NANO_MODEL_DIR } from '../src/models/shipped.js';
import { quantizeModel } from '../src/quantize/index.js';
import type { SynthSpec } from '../test/models/synth.js';
import { v4SynthConfig, writeSyntheticV4 } from './synth-v4.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = process.env.MINKE_BENCH_CACHE ?? path.join(REPO, 'bench', '.cache');
const MODELS = ['l1b-q8_0', 'l1b-q4_0', 'v4'] as const;
type ModelName = (typeof MODELS)[number];

/** TinyLlama-1.1B's shape (the `l1b` of `bench -- models`). */
const L1B: SynthSpec = {
  arch: 'llama', dim: 2048, layers: 22, heads: 32, kvHeads: 4, headDim: 64, ffn: 5632, eps: 1e-5, ropeTheta: 10000,
  tied: false, dtype: 'f16', contextLength: 2048, seed: 1,
};

const usage = `usage: npm run bench -- webgpu [--models ${MODELS.join(',')}] [--gen 64] [--reps 3] [--backends webgpu,cpu] [--json FILE]
`;

const progress = (m: string) => process.stderr.write(`  … ${m}\n`);

/** The model file or directory, generated on first use. */
async function modelPath(name: ModelName): Promise<string> {
  fs.mkdirSync(CACHE, { recursive: true });
  if (name === 'v4') {
    const dir = path.join(CACHE, 'v4-bench');
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      progress(`writing the synthetic DeepSeek-V4 checkpoint into ${dir}`);
      writeSyntheticV4(dir, v4SynthConfig('bench'));
    }
    // Token ids are all the bench feeds: minke-nano's tokenizer (a V4 one, smaller vocabulary)
    // spares a GPU machine the full DeepSeek tokenizer package.
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!fs.existsSync(path.join(dir, f))) fs.copyFileSync(path.join(NANO_MODEL_DIR, f), path.join(dir, f));
    }
    return dir;
  }
  const f16 = path.join(CACHE, 'l1b-f16.gguf');
  if (!fs.existsSync(f16)) {
    progress(`writing a random-weight 1.1B Llama (f16) into ${f16}`);
    // The tests' synthetic-model writer (dist/test, present in a repository checkout).
    const { writeGGUFModel, synthWeights } = await import('../test/models/synth.js');
    writeGGUFModel(f16, L1B, synthWeights(L1B));
  }
  const type = name === 'l1b-q8_0' ? 'Q8_0' : 'Q4_0';
  const out = path.join(CACHE, `l1b-${type.toLowerCase()}.gguf`);
  if (!fs.existsSync(out)) {
    progress(`quantizing to ${type}`);
    await quantizeModel(f16, out, type, { kl: false });
  }
  return out;
}

interface Result { model: ModelName; backend: string; adapter?: string; decodeTokensPerSecond: number; reps: number[] }

async function measure(name: ModelName, file: string, kind: BackendKind, gen: number, reps: number): Promise<Result> {
  const model = await loadModel(file, { backendKind: kind, contextLength: 16 + gen + 1, onWarning: (m) => progress(`warning: ${m}`) });
  try {
    if (model.backend.name !== kind) throw new Error(`${kind} backend unavailable (loaded on ${model.backend.name})`);
    const vocab = model.description.vocabSize;
    const prompt = Array.from({ length: 16 }, (_, i) => (i * 7919 + 13) % vocab);
    const times: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const seq = model.newSequence({ contextLength: 16 + gen + 1 });
      let logits = await seq.forward(prompt);
      const t0 = performance.now();
      for (let i = 0; i < gen; i++) {
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
        logits = await seq.forward([best]);
      }
      const s = (performance.now() - t0) / 1000;
      seq.free();
      if (r > 0) times.push(gen / s); // the first is a warm-up (pipelines compile)
      progress(`${name} on ${kind}: ${r === 0 ? 'warm-up' : `rep ${r}`} ${(gen / s).toFixed(2)} tok/s`);
    }
    const sorted = [...times].sort((a, b) => a - b);
    return { model: name, backend: kind, adapter: (model.backend as { adapterName?: string }).adapterName, decodeTokensPerSecond: sorted[Math.floor(sorted.length / 2)], reps: times };
  } finally {
    await model.close();
  }
}

export async function benchWebGpu(argv: string[]): Promise<number> {
  let models: ModelName[] = [...MODELS], backends: BackendKind[] = ['webgpu', 'cpu'], gen = 64, reps = 3, json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = argv[++i];
    if (a === '--help' || a === '-h') { process.stdout.write(usage); return 0; }
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--models') models = v.split(',').map((m) => { if (!(MODELS as readonly string[]).includes(m)) throw new Error(`--models: unknown ${m}`); return m as ModelName; });
    else if (a === '--backends') backends = v.split(',') as BackendKind[];
    else if (a === '--gen') gen = Number(v);
    else if (a === '--reps') reps = Number(v);
    else if (a === '--json') json = v;
    else throw new Error(`unknown option ${a}\n${usage}`);
  }
  const results: Result[] = [];
  for (const m of models) {
    const file = await modelPath(m);
    for (const b of backends) {
      const r = await measure(m, file, b, gen, reps);
      results.push(r);
      if (json) fs.appendFileSync(json, `${JSON.stringify({ bench: 'webgpu', date: new Date().toISOString(), ...r })}\n`);
    }
  }
  const adapter = results.find((r) => r.adapter)?.adapter;
  process.stdout.write(`\ndecode tokens/s (median of ${reps}, ${gen} steps after a 16-token prefill)${adapter ? `; GPU: ${adapter}` : ''}\n`);
  process.stdout.write(`| model | ${backends.join(' | ')} |${backends.length === 2 ? ' webgpu ÷ cpu |' : ''}\n|---|${backends.map(() => '---').join('|')}|${backends.length === 2 ? '---|' : ''}\n`);
  for (const m of models) {
    const row = backends.map((b) => results.find((r) => r.model === m && r.backend === b)!.decodeTokensPerSecond);
    process.stdout.write(`| ${m} | ${row.map((x) => x.toFixed(2)).join(' | ')} |${row.length === 2 ? ` ${(row[0] / row[1]).toFixed(2)} |` : ''}\n`);
  }
  return 0;
}
