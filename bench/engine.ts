/**
 * `npm run bench -- engine`: aggregate decode throughput of the serving engine with 1, 4, 16, …
 * requests decoding at once on the same model (continuous batching: one pass over the weights per
 * step serves every running request). Prints tokens/s per batch size and its ratio to batch 1.
 *
 * Default model: the synthetic 110M Llama of ../shared/bench (`npm run bench -- models` builds it
 * under ~/.cache/minke-bench/models); any GGUF with --model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../src/engine/engine.js';
import { loadModel } from '../src/models/index.js';
import { waitQuiet } from './kernels.js';

const USAGE = `usage: npm run bench -- engine [--model FILE.gguf] [--batches 1,4,16] [--gen 64] [--prompt 32] [--threads 2] [--quiet-wait 120]
`;

export async function benchEngine(argv: string[]): Promise<number> {
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
  };
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE); return 0; }
  const file = opt('model', path.join(os.homedir(), '.cache/minke-bench/models/synth-s110m-Q8_0.gguf'));
  if (!fs.existsSync(file)) {
    process.stderr.write(`bench engine: ${file} not found — run \`npm run bench -- models --configs s110m\` first (it builds the synthetic models), or pass --model\n`);
    return 1;
  }
  const batches = opt('batches', '1,4,16').split(',').map(Number);
  const gen = Number(opt('gen', '64')), promptLen = Number(opt('prompt', '32')), threads = Number(opt('threads', '2'));
  const model = await loadModel(file, { threads, contextLength: promptLen + gen + 8 });
  try {
    process.stderr.write(`engine bench: ${path.basename(file)}, ${threads} threads, prompt ${promptLen}, ${gen} tokens per request\n`);
    const vocab = model.description.vocabSize;
    const rows: { batch: number; tps: number }[] = [];
    for (const batch of batches) {
      const quiet = await waitQuiet(Number(opt('quiet-wait', '120')));
      const engine = new Engine(model, { maxSequences: batch, prefillChunk: batch * promptLen });
      // Prefill every request first, then time the decode steps they share.
      const handles = Array.from({ length: batch }, (_, i) => engine.submit({
        prompt: Array.from({ length: promptLen }, (_, t) => 3 + ((i * 7919 + t * 104729) % (vocab - 3))),
        maxTokens: gen, sampling: { temperature: 0 },
      }));
      // Decode is timed from the moment every request has its first token (its prefill is done).
      let started = 0, first = 0, tokens = 0;
      await Promise.all(handles.map(async (h) => {
        let own = 0;
        for await (const e of h) {
          if (e.token < 0) continue;
          if (++own === 1 && ++started === batch) first = performance.now();
          else if (first) tokens++;
        }
      }));
      const seconds = (performance.now() - first) / 1000;
      const tps = tokens / seconds;
      rows.push({ batch, tps });
      process.stdout.write(`batch ${String(batch).padStart(3)}: ${tps.toFixed(1).padStart(8)} tok/s aggregate  (${(tps / batch).toFixed(1)} per request)${quiet ? '' : '  [machine busy]'}\n`);
      await engine.close();
    }
    const base = rows.find((r) => r.batch === 1)?.tps;
    if (base) for (const r of rows) process.stdout.write(`batch ${r.batch} ÷ batch 1: ${(r.tps / base).toFixed(2)}×\n`);
    return 0;
  } finally {
    await model.close();
  }
}
