/**
 * The JSON file of a `minke train` run:
 *
 *   {
 *     "model": { …a DeepSeek-V4 config.json: vocab_size, hidden_size, num_hidden_layers, … },
 *     "from": "DIR",                       // instead of "model": start from this V4 checkpoint
 *                                          // (a minke run's f32 master weights when it has them)
 *     "data": { "tokens": "train.jsonl" }, // one JSON array of token ids per line, or
 *     "data": { "tasks": {                 // the task generators (task-data.ts)
 *       "tokenizer": "DIR",                //   holding tokenizer.json
 *       "tasks": "all" | ["arithmetic", …], "seed": 1 (default: the run's), "format": "chat" | "text",
 *       "modes": { "none": 1, "high": 1, "max": 0 }, "difficulty": { "digits": 3, "steps": 4 },
 *       "maxLength": 512 (default: the model's context + 1) } },
 *     "steps": 1000, "batch": 8, "seed": 0, "checkpointEvery": 100,
 *     "optimizer": { "lr": 3e-3, "warmup": 20, "schedule": "cosine", … OptimizerConfig but totalSteps },
 *     "loss": { "mtpWeight": 0.3, "indexerWeight": 1 }
 *   }
 *
 * Paths are relative to the file. Unknown keys are errors (a misspelt setting would otherwise be
 * silently ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ThinkMode } from '../chat/format.js';
import type { OptimizerConfig } from './optim.js';
import type { TaskDataFormat } from './task-data.js';
import { parseTaskList, type Difficulty } from './tasks/index.js';
import type { V4LossOptions } from './v4-train-model.js';

export interface TrainRunConfig {
  /** The model's HF config.json object (from "model", or read from "from"/config.json). */
  readonly model: Record<string, unknown>;
  /** A V4 checkpoint directory to start from instead of a random initialisation. */
  readonly from?: string;
  /** The JSON-lines token file (absolute), when the data is one. */
  readonly tokens?: string;
  /** The task generators, when the data is them. */
  readonly tasks?: TaskDataSpec;
  /** Steps of the whole run; 0 when the file leaves it to the command line. */
  readonly steps: number;
  readonly batch: number;
  readonly seed: number;
  readonly checkpointEvery: number;
  readonly optimizer: Omit<OptimizerConfig, 'totalSteps'>;
  readonly loss: V4LossOptions;
}

/** "data.tasks": TaskDataOptions with the tokenizer's directory; unset numbers come from the run. */
export interface TaskDataSpec {
  /** Directory of tokenizer.json (absolute). */
  readonly tokenizer: string;
  readonly tasks: readonly string[];
  readonly seed?: number;
  readonly format: TaskDataFormat;
  readonly modes?: Partial<Record<ThinkMode, number>>;
  readonly difficulty?: Difficulty;
  readonly maxLength?: number;
}

const TASK_KEYS = ['tokenizer', 'tasks', 'seed', 'format', 'modes', 'difficulty', 'maxLength'];

const TOP_KEYS = ['model', 'from', 'data', 'steps', 'batch', 'seed', 'checkpointEvery', 'optimizer', 'loss'];
const OPTIMIZER_KEYS = ['lr', 'warmup', 'schedule', 'minLrRatio', 'decayFraction', 'beta1', 'beta2', 'eps', 'weightDecay', 'momentum', 'nsSteps', 'clip', 'biasRate'];
const LOSS_KEYS = ['mtpWeight', 'indexerWeight'];

/** Default peak learning rate (both groups; Muon's update is scaled to AdamW's RMS). */
export const DEFAULT_LR = 3e-3;

/** A JSON config file's value; an error naming the file when it is missing or not JSON. */
export function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(err as Error).message})`}`);
  }
}

export function readTrainConfig(file: string): TrainRunConfig {
  return parseTrainConfig(readJsonFile(file), file);
}

export function parseTrainConfig(json: unknown, file: string): TrainRunConfig {
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  const object = (v: unknown, what: string, keys: readonly string[]): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
    const unknown = Object.keys(v as object).filter((k) => !keys.includes(k));
    if (unknown.length) fail(`${what} has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${keys.join(', ')})`);
    return v as Record<string, unknown>;
  };
  const top = object(json, 'the training config', TOP_KEYS);
  const int = (key: string, dflt: number, min: number): number => {
    const v = top[key] ?? dflt;
    if (!(Number.isInteger(v) && (v as number) >= min)) fail(`"${key}" must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const dir = path.dirname(path.resolve(file));
  if (('model' in top) === ('from' in top)) fail('give exactly one of "model" (a DeepSeek-V4 config.json object) and "from" (a checkpoint directory)');
  let model: Record<string, unknown>, from: string | undefined;
  if (typeof top.from === 'string') {
    from = path.resolve(dir, top.from);
    const cfg = path.join(from, 'config.json');
    if (!fs.existsSync(cfg)) fail(`"from": ${cfg} does not exist`);
    model = JSON.parse(fs.readFileSync(cfg, 'utf8')) as Record<string, unknown>;
  } else if ('from' in top) {
    return fail('"from" must be a directory path');
  } else {
    if (typeof top.model !== 'object' || top.model === null || Array.isArray(top.model)) fail('"model" must be a DeepSeek-V4 config.json object');
    model = top.model as Record<string, unknown>;
  }
  const data = object(top.data, '"data"', ['tokens', 'tasks']);
  let tasks: TaskDataSpec | undefined;
  if ('tasks' in data) {
    if ('tokens' in data) fail('"data" takes one of "tokens" and "tasks", not both');
    const t = object(data.tasks, '"data.tasks"', TASK_KEYS);
    if (typeof t.tokenizer !== 'string') fail('"data.tasks.tokenizer" must be the directory of a tokenizer.json');
    const names = t.tasks ?? 'all';
    if (!(typeof names === 'string' || (Array.isArray(names) && names.every((x) => typeof x === 'string')))) fail('"data.tasks.tasks" must be "all", a comma-separated string or an array of task names');
    let list: string[] = [];
    try {
      list = parseTaskList(Array.isArray(names) ? names.join(',') : (names as string));
    } catch (err) {
      fail(`"data.tasks.tasks": ${(err as Error).message}`);
    }
    const format = t.format ?? 'chat';
    if (format !== 'chat' && format !== 'text') fail(`"data.tasks.format" must be "chat" or "text", got ${JSON.stringify(format)}`);
    for (const k of ['seed', 'maxLength'] as const) {
      if (k in t && !(Number.isInteger(t[k]) && (t[k] as number) >= 0)) fail(`"data.tasks.${k}" must be a whole number, got ${JSON.stringify(t[k])}`);
    }
    const numbers = (key: string, keys: readonly string[]) => {
      const o = object(t[key] ?? {}, `"data.tasks.${key}"`, keys);
      for (const [k, v] of Object.entries(o)) if (typeof v !== 'number') fail(`"data.tasks.${key}.${k}" must be a number, got ${JSON.stringify(v)}`);
      return o as Record<string, number>;
    };
    tasks = {
      tokenizer: path.resolve(dir, t.tokenizer as string), tasks: list, format: format as TaskDataFormat,
      seed: t.seed as number | undefined, maxLength: t.maxLength as number | undefined,
      modes: 'modes' in t ? numbers('modes', ['none', 'high', 'max']) : undefined,
      difficulty: numbers('difficulty', ['digits', 'steps']),
    };
  } else if (typeof data.tokens !== 'string') {
    fail('"data.tokens" must be the path of a JSON-lines file of token-id arrays (or give "data.tasks")');
  }
  const optimizer = object(top.optimizer ?? {}, '"optimizer"', OPTIMIZER_KEYS);
  const loss = object(top.loss ?? {}, '"loss"', LOSS_KEYS);
  for (const [what, o] of [['optimizer', optimizer], ['loss', loss]] as const) {
    for (const [k, v] of Object.entries(o)) {
      if (k === 'schedule' ? typeof v !== 'string' : typeof v !== 'number') fail(`"${what}.${k}" must be a ${k === 'schedule' ? 'string' : 'number'}, got ${JSON.stringify(v)}`);
    }
  }
  return {
    model, from,
    tokens: tasks ? undefined : path.resolve(dir, data.tokens as string),
    tasks,
    steps: int('steps', 0, 0),
    batch: int('batch', 8, 1),
    seed: int('seed', 0, 0),
    checkpointEvery: int('checkpointEvery', 100, 0),
    optimizer: { lr: DEFAULT_LR, ...optimizer } as Omit<OptimizerConfig, 'totalSteps'>,
    loss: loss as V4LossOptions,
  };
}
