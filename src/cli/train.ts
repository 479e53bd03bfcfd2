/**
 * `minke train --config FILE.json --out DIR [--resume] [--steps N] [--seed S]`: trains a
 * DeepSeek-V4-architecture model (src/train) and writes it to DIR as a V4 checkpoint minke runs,
 * with the exact training state beside it so the run can be resumed. With `--phase P` the config
 * is a recipe (src/train/recipe.ts) and DIR/P receives its tokenizer, pretraining or SFT phase.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F32Gemm } from '../kernels/cpu/train-gemm.js';
import { v4ConfigFromHF } from '../models/deepseek-v4-config.js';
import { copyTokenizerFiles, loadTrainedParams, TRAIN_STATE_FILE, v4HFConfig } from '../train/checkpoint.js';
import { type SequenceSource, tokenLinesSource } from '../train/data.js';
import { GrpoTrainer } from '../train/grpo.js';
import { formatDuration, TrainProgress } from '../train/progress.js';
import { isRecipe, phaseConfig, phaseDir, RECIPE_PHASES, type RecipePhase, readRecipe, type Recipe } from '../train/recipe.js';
import { openTaskSource, taskCorpus } from '../train/task-data.js';
import { trainBpe, writeTrainedTokenizer } from '../train/tokenizer-train.js';
import { readTrainConfig, type TrainRunConfig } from '../train/train-config.js';
import { Trainer } from '../train/trainer.js';
import { initV4Params } from '../train/v4-train-params.js';
import { flag, parseArgs, UsageError, type FlagSpec } from './args.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { kind: 'string' },
  out: { kind: 'string', short: 'o' },
  resume: { kind: 'boolean' },
  steps: { kind: 'int', min: 1 },
  seed: { kind: 'int', min: 0 },
  phase: { kind: 'string' },
  threads: { kind: 'int', min: 1 },
  help: { kind: 'boolean', short: 'h' },
};

const USAGE = `usage: minke train --config FILE.json --out DIR [--resume] [--steps N] [--seed S]
       minke train --config RECIPE.json --out DIR --phase tokenizer|pretrain|sft [--resume] [--steps N]
  --config FILE   the run: model, data, steps, batch, optimiser (below)
  --out DIR       where the model (config.json, model.safetensors — the DeepSeek-V4 layout, so
                  \`minke run DIR\` runs it) and train-state.safetensors (the exact state) go;
                  written every checkpointEvery steps and at the end
  --resume        continue the run saved in DIR (same config, seed and data)
  --steps N       train until step N (overrides "steps"; it is also the schedule's length)
  --seed S        initialisation and data-order seed (overrides "seed")
  --threads N     threads for the matrix products (default: MINKE_THREADS, else every core;
                  the result does not depend on it)
  --phase P       RECIPE.json is a recipe (e.g. recipes/minke-nano.json); run its phase P into DIR/P:
                  tokenizer  byte-level BPE on generated task text → DIR/tokenizer/tokenizer.json
                  pretrain   the recipe's model from scratch on plain task text → DIR/pretrain
                  sft        DIR/pretrain fine-tuned on V4 chats, loss on the replies → DIR/sft
                  grpo       DIR/sft improved by GRPO: answers sampled in Think High, rewarded
                             by the task's verifier → DIR/grpo
                  (each phase directory is a model: minke run DIR/sft, minke eval DIR/sft)
Progress (loss, tokens/s, ETA) goes to stderr. Interrupting is safe: checkpoints are written
atomically, and --resume continues bit for bit from the last one.

FILE.json:
  {
    "model": { …a DeepSeek-V4 config.json… },   or  "from": "DIR"  (start from that checkpoint:
                                                  its f32 master weights when it is a minke run)
    "data": { "tokens": "train.jsonl" },          one JSON array of token ids per line, or
    "data": { "tasks": { "tokenizer": "DIR", "tasks": "all", "format": "chat" | "text",
              "seed": 1, "modes": { "none": 1, "high": 1, "max": 0 }, "maxLength": 512,
              "difficulty": { "digits": 3, "steps": 4 } } }
                                                  generated problems (the seed may not be
                                                  minke eval's held-out seed): "chat" trains on
                                                  the assistant's replies only, "text" on
                                                  plain reasoning traces
    "steps": 1000, "batch": 8, "seed": 0, "checkpointEvery": 100,
    "optimizer": { "lr": 0.003, "warmup": 20, "schedule": "cosine" | "wsd" | "constant",
                   "minLrRatio": 0.1, "decayFraction": 0.2, "weightDecay": 0.1, "clip": 1,
                   "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "momentum": 0.95, "nsSteps": 5,
                   "biasRate": 0.001 },
    "loss": { "mtpWeight": 0.3, "indexerWeight": 1 }
  }
Muon trains the hidden matrices, AdamW the embedding, head, norms, biases and mHC scales
(src/train/optim.ts). Paths in FILE.json are relative to it.

RECIPE.json: { "tokenizer": { "vocabSize": 3072, "tasks": "all", "seed": 1, "perTask": 400 },
               "model": {…}, "pretrain": {…a FILE.json without model/from…}, "sft": {…} }
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

  const phase = flag.str(args, 'phase');
  if (phase !== undefined) {
    if (!(RECIPE_PHASES as readonly string[]).includes(phase)) throw new UsageError(`--phase must be one of ${RECIPE_PHASES.join(', ')}, got ${JSON.stringify(phase)}`);
    const recipe = readRecipe(configFile);
    if (phase === 'tokenizer') return trainTokenizer(recipe, out);
    if (phase === 'grpo') return trainGrpo(recipe, out, args);
    return trainRun(phaseConfig(recipe, phase as 'pretrain' | 'sft', out), configFile, phaseDir(out, phase as RecipePhase), args);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch {
    raw = undefined; // readTrainConfig names the problem
  }
  if (isRecipe(raw)) throw new UsageError(`${configFile} is a recipe: give --phase ${RECIPE_PHASES.join('|')}`);
  return trainRun(readTrainConfig(configFile), configFile, out, args);
}

/** The recipe's tokenizer phase: BPE on the generated task corpus, into DIR/tokenizer. */
function trainTokenizer(recipe: Recipe, out: string): number {
  const t = recipe.tokenizer, dir = phaseDir(out, 'tokenizer');
  const docs = taskCorpus({ tasks: t.tasks, seed: t.seed, modes: t.modes, difficulty: t.difficulty }, t.perTask);
  process.stderr.write(`training a ${t.vocabSize}-token BPE tokenizer on ${docs.length} documents (${t.tasks.length} tasks, seed ${t.seed})\n`);
  const trained = trainBpe(docs, { vocabSize: t.vocabSize });
  writeTrainedTokenizer(dir, trained);
  process.stderr.write(`saved ${dir} (${trained.vocabSize} tokens, ${trained.merges.length} merges)\n`);
  return 0;
}

async function trainRun(run: TrainRunConfig, configFile: string, out: string, args: ReturnType<typeof parseArgs>): Promise<number> {
  const steps = flag.num(args, 'steps') ?? run.steps, seed = flag.num(args, 'seed') ?? run.seed;
  if (!steps) throw new UsageError(`${configFile} has no "steps": give --steps N`);
  const model = v4HFConfig(run.model), config = v4ConfigFromHF(model, `${configFile} (model)`);
  const source: SequenceSource = run.tasks
    ? openTaskSource(run.tasks, config.vocab, config.contextLength, seed)
    : tokenLinesSource(run.tokens!, config.vocab, seed, config.contextLength + 1);
  const options = { model, optimizer: { ...run.optimizer, totalSteps: steps }, source, batch: run.batch, seed, loss: run.loss };

  await F32Gemm.start(flag.num(args, 'threads'));
  const resuming = flag.bool(args, 'resume'), statePath = path.join(out, TRAIN_STATE_FILE);
  if (!resuming && fs.existsSync(statePath)) throw new Error(`${out} already holds a training run: pass --resume to continue it, or choose another --out`);
  const trainer = resuming
    ? Trainer.resume(out, options)
    : new Trainer({ ...options, params: run.from ? loadTrainedParams(run.from) : initV4Params(config, seed) });
  if (trainer.step >= steps) {
    process.stderr.write(`${out} is already at step ${trainer.step} (of ${steps}); nothing to do\n`);
    return 0;
  }
  if (run.tasks) {
    // The model directory carries its tokenizer, so minke run / eval read it.
    fs.mkdirSync(out, { recursive: true });
    copyTokenizerFiles(run.tasks.tokenizer, out);
  }
  process.stderr.write(`training ${describe(trainer)} on ${source.id}, ${resuming ? `resuming at step ${trainer.step}` : 'from step 0'} → ${steps}\n`);
  const progress = new TrainProgress(process.stderr, steps);
  try {
    trainer.run(steps, { onStep: (r) => progress.report(r), checkpointDir: out, checkpointEvery: run.checkpointEvery });
  } finally {
    await F32Gemm.stop();
  }
  progress.finish();
  process.stderr.write(`saved ${out} (step ${trainer.step}): minke run ${out}\n`);
  return 0;
}

/** The recipe's GRPO phase: from DIR/sft into DIR/grpo. */
async function trainGrpo(recipe: Recipe, out: string, args: ReturnType<typeof parseArgs>): Promise<number> {
  const g = recipe.grpo;
  if (!g) throw new UsageError(`${recipe.file} has no "grpo" phase`);
  const from = phaseDir(out, 'sft'), dir = phaseDir(out, 'grpo');
  if (!fs.existsSync(path.join(from, 'config.json'))) throw new Error(`the grpo phase starts from ${from}, which holds no model yet: run --phase sft first`);
  const steps = flag.num(args, 'steps') ?? g.steps;
  const options = { model: v4HFConfig(recipe.model), tokenizerDir: from, optimizer: { ...g.optimizer, totalSteps: steps }, settings: g.settings };
  const resuming = flag.bool(args, 'resume');
  if (!resuming && fs.existsSync(path.join(dir, TRAIN_STATE_FILE))) throw new Error(`${dir} already holds a training run: pass --resume to continue it`);
  await F32Gemm.start(flag.num(args, 'threads'));
  const trainer = resuming ? GrpoTrainer.resume(dir, options) : new GrpoTrainer({ ...options, params: loadTrainedParams(from) });
  const s = g.settings;
  process.stderr.write(`GRPO on ${s.tasks.join(', ')} (seed ${s.seed}): ${s.prompts} problems × ${s.group} answers per step in think ${s.think}, step ${trainer.step} → ${steps}\n`);
  const t0 = performance.now(), start = trainer.step;
  let sampled = 0;
  try {
    while (trainer.step < steps) {
      const r = await trainer.trainStep();
      sampled += r.sampled;
      const seconds = (performance.now() - t0) / 1000, done = r.step - start;
      process.stderr.write(`step ${r.step}/${steps}  reward ${r.reward.toFixed(3)}  groups ${r.informative}/${s.prompts}  lr ${r.lr.toExponential(2)}  |g| ${r.gradNorm.toFixed(3)}  ` +
        `${Math.round(sampled / seconds)} sampled tok/s  ETA ${formatDuration((seconds / done) * (steps - r.step))}\n`);
      if (r.step >= steps || r.step % g.checkpointEvery === 0) trainer.save(dir);
    }
  } finally {
    trainer.dispose();
    await F32Gemm.stop();
  }
  process.stderr.write(`saved ${dir} (step ${trainer.step}): minke eval ${dir}\n`);
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
