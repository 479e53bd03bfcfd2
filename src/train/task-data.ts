/**
 * Training data from the task generators (issue #9 §3–4), as a SequenceSource: sequence(i) is
 * problem ⌊i/T⌋ of task i mod T (T tasks, so every task gets its share), drawn with the training
 * seed, in a reasoning mode picked from the mode mix by (seed, i) — a pure function of the index.
 *
 * - 'chat' (fine-tuning): the V4 conversation of renderTaskV4, tokenized segment by segment (the
 *   segments meet at special tokens, so the pieces tokenize as the whole does), with a mask that
 *   makes the assistant's turns the only targets.
 * - 'text' (pretraining): the problem, its reasoning trace and answer as plain text between BOS and
 *   EOS, no chat format; every token a target.
 *
 * Sequences longer than maxLength are cut to it. The training seed may not be the held-out seed of
 * `minke eval` (EVAL_DEFAULT_SEED): a model trained on those problems would be evaluated on them.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { THINK_MODES, type ThinkMode } from '../chat/format.js';
import { deepseekTokenizer, type Tokenizer } from '../tokenizer/index.js';
import type { MaskedSequence, SequenceSource, TrainingSequence } from './data.js';
import { EVAL_DEFAULT_SEED } from './eval.js';
import { Rng } from './rng.js';
import type { TaskDataSpec } from './train-config.js';
import { generateTasks, renderTaskV4, taskGenerator, type Difficulty, type Task } from './tasks/index.js';

export type TaskDataFormat = 'chat' | 'text';

export interface TaskDataOptions {
  readonly tasks: readonly string[];
  /** Seed of the problems and the mode draws; never EVAL_DEFAULT_SEED. */
  readonly seed: number;
  readonly difficulty?: Difficulty;
  /** Relative weights of the reasoning modes (chat format); default none 1, high 1, max 0. */
  readonly modes?: Partial<Record<ThinkMode, number>>;
  readonly format: TaskDataFormat;
  /** Longest sequence in tokens (longer ones are cut). */
  readonly maxLength: number;
}

/** Refuses the held-out evaluation seed (and non-integers) as a training seed. */
export function checkTrainingSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`task data: the seed must be a whole number ≥ 0, got ${seed}`);
  if (seed === EVAL_DEFAULT_SEED) {
    throw new Error(`task data: seed ${seed} is minke eval's held-out seed (EVAL_DEFAULT_SEED); training on it would leak the evaluation problems — choose another seed`);
  }
}

/** The modes task data is drawn in: `low` is left out, as the V4 task renderer writes it as `high`. */
const DATA_MODES: readonly ThinkMode[] = THINK_MODES.filter((m) => m !== 'low');

/** The mode weights, checked, in DATA_MODES order. */
function modeWeights(modes: Partial<Record<ThinkMode, number>> = { none: 1, high: 1 }): number[] {
  for (const k of Object.keys(modes)) {
    if (!DATA_MODES.includes(k as ThinkMode)) throw new Error(`task data: unknown reasoning mode ${JSON.stringify(k)} (modes: ${DATA_MODES.join(', ')})`);
  }
  const w = DATA_MODES.map((m) => modes[m] ?? 0);
  if (w.some((x) => !(Number.isFinite(x) && x >= 0)) || !w.some((x) => x > 0)) {
    throw new Error(`task data: mode weights must be numbers ≥ 0, at least one positive, got ${JSON.stringify(modes)}`);
  }
  return w;
}

/** The task's trace as plain text: question, any tool round, reasoning, answer. */
export function taskPlainText(task: Task): string {
  const parts = [task.prompt];
  const tu = task.toolUse;
  if (tu) {
    parts.push(tu.callReasoning);
    tu.calls.forEach((c, k) => parts.push(`${c.name}(${Object.values(c.arguments).join(', ')}) = ${tu.results[k]}`));
  }
  parts.push(task.reasoning, task.answer);
  return parts.filter((p) => p !== '').join('\n\n');
}

/** Problem and mode of sequence `index`; shared by the source and the tokenizer corpus. */
class TaskStream {
  readonly weights: number[];
  private readonly total: number;

  constructor(readonly opts: Omit<TaskDataOptions, 'maxLength' | 'format'>) {
    checkTrainingSeed(opts.seed);
    if (!opts.tasks.length) throw new Error('task data: no tasks given');
    for (const t of opts.tasks) taskGenerator(t);
    this.weights = modeWeights(opts.modes);
    this.total = this.weights.reduce((a, b) => a + b, 0);
  }

  task(index: number): Task {
    if (!(Number.isInteger(index) && index >= 0)) throw new Error(`sequence index must be a whole number ≥ 0, got ${index}`);
    const T = this.opts.tasks.length;
    return generateTasks(this.opts.tasks[index % T], this.opts.seed, 1, this.opts.difficulty, Math.floor(index / T))[0];
  }

  mode(index: number): ThinkMode {
    const rng = new Rng((Math.imul(this.opts.seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
    let u = rng.uniform() * this.total;
    for (let m = 0; m < DATA_MODES.length; m++) {
      if (u < this.weights[m]) return DATA_MODES[m];
      u -= this.weights[m];
    }
    return DATA_MODES[this.weights.map((w) => w > 0).lastIndexOf(true)]; // rounding at the top end
  }
}

export class TaskSequences implements SequenceSource {
  readonly id: string;
  private readonly stream: TaskStream;

  /** `tokenizerId` names the tokenizer in the source id (e.g. a hash of its file), so a resumed run notices a new one. */
  constructor(private readonly tokenizer: Tokenizer, readonly opts: TaskDataOptions, tokenizerId = `${tokenizer.vocabSize} tokens`) {
    this.stream = new TaskStream(opts);
    if (opts.format !== 'chat' && opts.format !== 'text') throw new Error(`task data: format must be "chat" or "text", got ${JSON.stringify(opts.format)}`);
    if (!(Number.isInteger(opts.maxLength) && opts.maxLength >= 2)) throw new Error(`task data: maxLength must be a whole number ≥ 2, got ${opts.maxLength}`);
    if (tokenizer.bos === undefined || tokenizer.eos === undefined) throw new Error('task data: the tokenizer needs BOS and EOS tokens');
    const modes = DATA_MODES.map((m, k) => `${m} ${this.stream.weights[k]}`).join(', ');
    const digest = crypto.createHash('sha256').update(JSON.stringify({ ...opts, tokenizerId })).digest('hex').slice(0, 16);
    this.id = `tasks ${opts.tasks.join(',')} (${opts.format}${opts.format === 'chat' ? `, modes ${modes}` : ''}, seed ${opts.seed}, ≤ ${opts.maxLength} tokens, sha256 ${digest})`;
  }

  /** The problem behind sequence `index` and the mode it is rendered in. */
  example(index: number): { task: Task; mode: ThinkMode } {
    return { task: this.stream.task(index), mode: this.stream.mode(index) };
  }

  sequence(index: number): TrainingSequence {
    const { task, mode } = this.example(index), max = this.opts.maxLength, tok = this.tokenizer;
    if (this.opts.format === 'text') {
      const ids = [tok.bos!, ...tok.encode(taskPlainText(task), { addBos: false, addEos: false }), tok.eos!];
      return ids.slice(0, max);
    }
    const ids: number[] = [], mask: number[] = [];
    for (const s of renderTaskV4(task, mode).segments) {
      for (const id of tok.encode(s.text, { addBos: false, addEos: false, parseSpecial: true })) {
        ids.push(id);
        mask.push(s.train ? 1 : 0);
      }
    }
    const n = Math.min(max, ids.length);
    const out: MaskedSequence = { ids: ids.slice(0, n), mask: Uint8Array.from(mask.slice(0, n)) };
    return out;
  }
}

/**
 * Documents for tokenizer training: problems 0 … perTask·T − 1 of the stream, each in the chat
 * rendering of its drawn mode and as plain text, so both formats' words are in the vocabulary.
 */
export function taskCorpus(opts: Omit<TaskDataOptions, 'maxLength' | 'format'>, perTask: number): string[] {
  if (!(Number.isInteger(perTask) && perTask >= 1)) throw new Error(`task corpus: perTask must be a whole number ≥ 1, got ${perTask}`);
  const stream = new TaskStream(opts), docs: string[] = [];
  for (let i = 0; i < perTask * opts.tasks.length; i++) {
    const task = stream.task(i);
    docs.push(renderTaskV4(task, stream.mode(i)).text, taskPlainText(task));
  }
  return docs;
}

/** The tokenizer.json (and tokenizer_config.json) of `dir`, loaded; an error when there is none. */
export function readTokenizerDir(dir: string): { tokenizer: Tokenizer; sha256: string } {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new Error(`task data: ${file} does not exist (train one first: minke train --phase tokenizer)`);
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return { tokenizer: deepseekTokenizer('v4', dir), sha256 };
}

/**
 * The source a run config's "data.tasks" describes, for a model of `vocab` ids and `context`
 * positions: the tokenizer may not have more ids than the model embeds; sequences are cut to
 * context + 1 tokens at most; the problems' seed defaults to the run's.
 */
export function openTaskSource(spec: TaskDataSpec, vocab: number, context: number, runSeed: number): TaskSequences {
  const { tokenizer, sha256 } = readTokenizerDir(spec.tokenizer);
  if (tokenizer.vocabSize > vocab) throw new Error(`task data: the tokenizer in ${spec.tokenizer} has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${vocab}`);
  return new TaskSequences(tokenizer, {
    tasks: spec.tasks, seed: spec.seed ?? runSeed, difficulty: spec.difficulty, modes: spec.modes, format: spec.format,
    maxLength: Math.min(spec.maxLength ?? Infinity, context + 1),
  }, `tokenizer sha256 ${sha256.slice(0, 16)}`);
}
