/**
 * The synthetic task generators (issue #9 §3): seeded, so that the seed decides the problems — a
 * seed never used in training is a held-out set.
 */
import { arithmetic } from './arithmetic.js';
import { calculator } from './calculator.js';
import { chat } from './chat.js';
import { taskRng } from './common.js';
import { compare, count } from './compare.js';
import { program } from './program.js';
import type { Difficulty, Task, TaskGenerator } from './types.js';
import { units } from './units.js';
import { wordProblems } from './word-problems.js';

export type { Difficulty, Task, TaskGenerator, ToolCall, ToolUse } from './types.js';
export { calculate, CALCULATOR_TOOL } from './calculator.js';
export { renderTaskV4, taskMessages, type SftExample, type SftSegment } from './render.js';

/** Every generator, by name, in a fixed order. */
export const TASK_GENERATORS: readonly TaskGenerator[] = [arithmetic, compare, count, program, units, wordProblems, chat, calculator];

export const TASK_NAMES: readonly string[] = TASK_GENERATORS.map((g) => g.name);

export function taskGenerator(name: string): TaskGenerator {
  const g = TASK_GENERATORS.find((t) => t.name === name);
  if (!g) throw new Error(`unknown task ${JSON.stringify(name)} (tasks: ${TASK_NAMES.join(', ')})`);
  return g;
}

/** 'all' or a comma-separated list → generator names, checked. */
export function parseTaskList(spec: string): string[] {
  if (spec.trim() === 'all') return [...TASK_NAMES];
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error('no task named (give all or a comma-separated list)');
  for (const n of names) taskGenerator(n);
  return [...new Set(names)];
}

// Bounds that keep every number a safe integer.
const LIMITS: Required<Difficulty> = { digits: 9, steps: 32 };

function checkDifficulty(name: string, d: Required<Difficulty>): void {
  for (const k of ['digits', 'steps'] as const) {
    const v = d[k];
    if (!(Number.isInteger(v) && v >= 1 && v <= LIMITS[k])) throw new Error(`task ${name}: ${k} must be a whole number in 1..${LIMITS[k]}, got ${v}`);
  }
}

/**
 * Problems `first` … `first + n − 1` of task `name` under `seed` (problem i does not depend on n or
 * first, so sets can be extended or sliced). Knobs left out take the generator's defaults.
 */
export function generateTasks(name: string, seed: number, n: number, difficulty: Difficulty = {}, first = 0): Task[] {
  const g = taskGenerator(name);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`task count must be a whole number, got ${n}`);
  if (!(Number.isInteger(first) && first >= 0)) throw new Error(`first task index must be a whole number, got ${first}`);
  const d: Required<Difficulty> = {
    digits: difficulty.digits ?? g.defaults.digits,
    steps: difficulty.steps ?? g.defaults.steps,
  };
  checkDifficulty(name, d);
  return Array.from({ length: n }, (_, k) => g.make(taskRng(name, seed, first + k), d));
}
