/**
 * `minke train --config FILE.json --out DIR [--resume] [--steps N] [--seed S]`: trains a
 * DeepSeek-V4-architecture model (src/train) and writes it to DIR as a V4 checkpoint minke runs,
 * with the exact training state beside it so the run can be resumed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { v4ConfigFromHF } from '../models/deepseek-v4-config.js';
import { loadTrainedParams, TRAIN_STATE_FILE, v4HFConfig } from '../train/checkpoint.js';
import { tokenLinesSource } from '../train/data.js';
import { TrainProgress } from '../train/progress.js';
import { readTrainConfig } from '../train/train-config.js';
import { Trainer } from '../train/trainer.js';
import { initV4Params } from '../train/v4-train-params.js';
import { flag, parseArgs, UsageError, type FlagSpec } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { kind: 'string' },
  out: { kind: 'string', short: 'o' },
  resume: { kind: 'boolean' },
  steps: { kind: 'int', min: 1 },
  seed: { kind: 'int', min: 0 },
  help: { kind: 'boolean', short: 'h' },
};

const USAGE = `usage: minke train --config FILE.json --out DIR [--resume] [--steps N] [--seed S]
  --config FILE   the run: model, data, steps, batch, optimiser (below)
  --out DIR       where the model (config.json, model.safetensors — the DeepSeek-V4 layout, so
                  \`minke run DIR\` runs it) and train-state.safetensors (the exact state) go;
                  written every checkpointEvery steps and at the end
  --resume        continue the run saved in DIR (same config, seed and data)
  --steps N       train until step N (overrides "steps"; it is also the schedule's length)
  --seed S        initialisation and data-order seed (overrides "seed")
Progress (loss, tokens/s, ETA) goes to stderr. Interrupting is safe: checkpoints are written
atomically, and --resume continues bit for bit from the last one.

FILE.json:
  {
    "model": { …a DeepSeek-V4 config.json… },   or  "from": "DIR"  (start from that checkpoint:
                                                  its f32 master weights when it is a minke run)
    "data": { "tokens": "train.jsonl" },          one JSON array of token ids per line
    "steps": 1000, "batch": 8, "seed": 0, "checkpointEvery": 100,
    "optimizer": { "lr": 0.003, "warmup": 20, "schedule": "cosine" | "wsd" | "constant",
                   "minLrRatio": 0.1, "decayFraction": 0.2, "weightDecay": 0.1, "clip": 1,
                   "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "momentum": 0.95, "nsSteps": 5,
                   "biasRate": 0.001 },
    "loss": { "mtpWeight": 0.3, "indexerWeight": 1 }
  }
Muon trains the hidden matrices, AdamW the embedding, head, norms, biases and mHC scales
(src/train/optim.ts). Paths in FILE.json are relative to it.
`;

export async function trainCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])} (minke train --help)`);
  const configFile = flag.str(args, 'config'), out = flag.str(args, 'out');
  if (!configFile) throw new UsageError('--config FILE.json is required (minke train --help)');
  if (!out) throw new UsageError('--out DIR is required (minke train --help)');

  const run = readTrainConfig(configFile);
  const steps = flag.num(args, 'steps') ?? run.steps, seed = flag.num(args, 'seed') ?? run.seed;
  if (!steps) throw new UsageError(`${configFile} has no "steps": give --steps N`);
  const model = v4HFConfig(run.model), config = v4ConfigFromHF(model, `${configFile} (model)`);
  const source = tokenLinesSource(run.tokens, config.vocab, seed, config.contextLength + 1);
  const options = { model, optimizer: { ...run.optimizer, totalSteps: steps }, source, batch: run.batch, seed, loss: run.loss };

  const resuming = flag.bool(args, 'resume'), statePath = path.join(out, TRAIN_STATE_FILE);
  if (!resuming && fs.existsSync(statePath)) throw new Error(`${out} already holds a training run: pass --resume to continue it, or choose another --out`);
  const trainer = resuming
    ? Trainer.resume(out, options)
    : new Trainer({ ...options, params: run.from ? loadTrainedParams(run.from) : initV4Params(config, seed) });
  if (trainer.step >= steps) {
    process.stderr.write(`${out} is already at step ${trainer.step} (of ${steps}); nothing to do\n`);
    return 0;
  }
  process.stderr.write(`training ${describe(trainer)} on ${source.id}, ${resuming ? `resuming at step ${trainer.step}` : 'from step 0'} → ${steps}\n`);
  const progress = new TrainProgress(process.stderr, steps);
  trainer.run(steps, { onStep: (r) => progress.report(r), checkpointDir: out, checkpointEvery: run.checkpointEvery });
  progress.finish();
  process.stderr.write(`saved ${out} (step ${trainer.step}): minke run ${out}\n`);
  return 0;
}

function describe(t: Trainer): string {
  let n = 0, muon = 0;
  const groups = t.optimizer.groups();
  for (const [name, p] of t.options.params.tensors) {
    n += p.size;
    if (groups.get(name) === 'muon') muon += p.size;
  }
  const c = t.model.config;
  return `a DeepSeek-V4 model of ${(n / 1e6).toFixed(2)}M parameters (${c.layers} layers + ${c.mtpLayers} MTP, dim ${c.dim}, ${c.experts} experts; ${Math.round((100 * muon) / n)}% Muon)`;
}
