/**
 * A training recipe: the phases of a model trained from nothing on the task generators, run one at
 * a time by `minke train --config RECIPE.json --out DIR --phase P`, each phase in DIR/P:
 *
 *   {
 *     "tokenizer": { "vocabSize": 3072, "tasks": "all", "seed": 1, "perTask": 400,
 *                    "modes": { "none": 1, "high": 1, "max": 1 }, "difficulty": { … } },
 *     "model": { …a DeepSeek-V4 config.json (vocab_size ≥ the tokenizer's)… },
 *     "pretrain": { …a run config (train-config.ts) without "model"/"from"… },
 *     "sft":      { …the same, started from DIR/pretrain… },
 *     "grpo":     { "tasks": "arithmetic,…", "seed": 4, "prompts": 8, "group": 8, "temperature": 1,
 *                   "maxTokens": 320, "think": "high", "steps": 40, "checkpointEvery": 5,
 *                   "optimizer": { … default lr 5e-4, constant, no weight decay } }
 *                 (optional; started from DIR/sft, src/train/grpo.ts)
 *   }
 *
 * tokenizer: byte-level BPE trained on task text (taskCorpus) → DIR/tokenizer. pretrain: "model"
 * from a random start on that tokenizer's data. sft: from DIR/pretrain's weights. A "data.tasks"
 * without "tokenizer" reads DIR/tokenizer. Every phase directory gets the tokenizer files, so each
 * is a model minke runs and evaluates.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTrainConfig, readJsonFile, type TrainRunConfig } from './train-config.js';
import { THINK_MODES, type ThinkMode } from '../chat/format.js';
import type { GrpoSettings } from './grpo.js';
import type { OptimizerConfig } from './optim.js';
import { parseTaskList, type Difficulty } from './tasks/index.js';

export const RECIPE_PHASES = ['tokenizer', 'pretrain', 'sft', 'grpo'] as const;
export type RecipePhase = (typeof RECIPE_PHASES)[number];

export interface TokenizerRecipe {
  readonly vocabSize: number;
  readonly tasks: readonly string[];
  readonly seed: number;
  /** Problems per task in the corpus. */
  readonly perTask: number;
  readonly modes?: Partial<Record<ThinkMode, number>>;
  readonly difficulty?: Difficulty;
}

export interface Recipe {
  readonly file: string;
  readonly tokenizer: TokenizerRecipe;
  readonly model: Record<string, unknown>;
  /** The raw phase objects; phaseConfig turns one into a run config for an output directory. */
  readonly phases: Readonly<Record<'pretrain' | 'sft', Record<string, unknown>>>;
  /** The GRPO phase, when the recipe has one. */
  readonly grpo?: GrpoRecipe;
}

export interface GrpoRecipe {
  readonly settings: GrpoSettings;
  readonly steps: number;
  readonly checkpointEvery: number;
  readonly optimizer: OptimizerConfig;
}

const KEYS = ['tokenizer', 'model', 'pretrain', 'sft'];
const GRPO_KEYS = ['tasks', 'seed', 'difficulty', 'prompts', 'group', 'temperature', 'maxTokens', 'think', 'steps', 'checkpointEvery', 'optimizer'];
const TOKENIZER_KEYS = ['vocabSize', 'tasks', 'seed', 'perTask', 'modes', 'difficulty'];

export function isRecipe(json: unknown): boolean {
  return typeof json === 'object' && json !== null && ('pretrain' in json || 'sft' in json || 'tokenizer' in json);
}

export function readRecipe(file: string): Recipe {
  return parseRecipe(readJsonFile(file), file);
}

export function parseRecipe(json: unknown, file: string): Recipe {
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  const object = (v: unknown, what: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
    return v as Record<string, unknown>;
  };
  const top = object(json, 'the recipe');
  const unknown = Object.keys(top).filter((k) => !KEYS.includes(k) && k !== 'grpo');
  if (unknown.length) fail(`the recipe has unknown key ${JSON.stringify(unknown[0])} (known: ${[...KEYS, 'grpo'].join(', ')})`);
  for (const k of KEYS) if (!(k in top)) fail(`the recipe needs "${k}"`);
  const tk = object(top.tokenizer, '"tokenizer"');
  const { int, tasks } = section(tk, 'tokenizer', TOKENIZER_KEYS, fail);
  const model = object(top.model, '"model"');
  const vocabSize = int('vocabSize');
  if (typeof model.vocab_size === 'number' && model.vocab_size < vocabSize) fail(`"model.vocab_size" ${model.vocab_size} is smaller than "tokenizer.vocabSize" ${vocabSize}`);
  for (const p of ['pretrain', 'sft'] as const) {
    const o = object(top[p], `"${p}"`);
    if ('model' in o || 'from' in o) fail(`"${p}" takes no "model" or "from": the recipe decides where each phase starts`);
  }
  return {
    file, model,
    tokenizer: {
      vocabSize, seed: int('seed', 1), perTask: int('perTask', 200),
      tasks: tasks(),
      modes: tk.modes as TokenizerRecipe['modes'], difficulty: tk.difficulty as Difficulty | undefined,
    },
    phases: { pretrain: top.pretrain as Record<string, unknown>, sft: top.sft as Record<string, unknown> },
    grpo: top.grpo === undefined ? undefined : parseGrpo(object(top.grpo, '"grpo"'), fail),
  };
}

/** A section's key check and its readers of whole numbers ≥ 1 and of the task list ("all" or names). */
function section(o: Record<string, unknown>, name: string, keys: readonly string[], fail: (msg: string) => never) {
  const bad = Object.keys(o).filter((k) => !keys.includes(k));
  if (bad.length) fail(`"${name}" has unknown key ${JSON.stringify(bad[0])} (known: ${keys.join(', ')})`);
  const int = (k: string, dflt?: number): number => {
    const v = o[k] ?? dflt;
    if (!(Number.isInteger(v) && (v as number) >= 1)) fail(`"${name}.${k}" must be a whole number ≥ 1, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const tasks = (): string[] => {
    const names = o.tasks ?? 'all';
    if (!(typeof names === 'string' || Array.isArray(names))) fail(`"${name}.tasks" must be "all" or a list of task names`);
    return parseTaskList(Array.isArray(names) ? names.join(',') : (names as string));
  };
  return { int, tasks };
}

function parseGrpo(g: Record<string, unknown>, fail: (msg: string) => never): GrpoRecipe {
  const { int, tasks } = section(g, 'grpo', GRPO_KEYS, fail);
  const temperature = g.temperature ?? 1;
  if (!(typeof temperature === 'number' && temperature > 0)) fail(`"grpo.temperature" must be a number > 0, got ${JSON.stringify(temperature)}`);
  const think = g.think ?? 'high';
  if (!THINK_MODES.includes(think as ThinkMode)) fail(`"grpo.think" must be one of ${THINK_MODES.join(', ')}, got ${JSON.stringify(think)}`);
  const optimizer = g.optimizer ?? {};
  if (typeof optimizer !== 'object' || optimizer === null || Array.isArray(optimizer)) fail('"grpo.optimizer" must be an object');
  return {
    steps: int('steps'), checkpointEvery: int('checkpointEvery', 5),
    // Small constant steps: each update follows one batch of samples.
    optimizer: { lr: 5e-4, warmup: 0, schedule: 'constant', weightDecay: 0, ...(optimizer as Partial<OptimizerConfig>) } as OptimizerConfig,
    settings: {
      tasks: tasks(), seed: int('seed'), difficulty: g.difficulty as Difficulty | undefined,
      prompts: int('prompts', 8), group: int('group', 8), temperature: temperature as number,
      maxTokens: int('maxTokens', 320), think: think as ThinkMode,
    },
  };
}

/** Where phase `phase` of a run into `out` writes. */
export const phaseDir = (out: string, phase: RecipePhase): string => path.join(out, phase);

/** The run config of a training phase writing under `out`. */
export function phaseConfig(recipe: Recipe, phase: 'pretrain' | 'sft', out: string): TrainRunConfig {
  const raw = recipe.phases[phase];
  const data = raw.data as Record<string, unknown> | undefined;
  const tasks = data?.tasks as Record<string, unknown> | undefined;
  const withTokenizer = tasks && !('tokenizer' in tasks)
    ? { ...raw, data: { ...data, tasks: { ...tasks, tokenizer: path.resolve(phaseDir(out, 'tokenizer')) } } }
    : raw;
  const start = phase === 'pretrain' ? { model: recipe.model } : { from: path.resolve(phaseDir(out, 'pretrain')) };
  if (phase === 'sft' && !fs.existsSync(path.join(start.from!, 'config.json'))) {
    throw new Error(`${recipe.file}: the sft phase starts from ${start.from}, which holds no model yet: run --phase pretrain first`);
  }
  return parseTrainConfig({ ...withTokenizer, ...start }, `${recipe.file} ("${phase}")`);
}
