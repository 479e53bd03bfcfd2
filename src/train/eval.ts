/**
 * Evaluation on the task generators (issue #9 §6): N problems per task from a seed, each asked as
 * a chat in one reasoning mode, answered greedily, the reply (the text after </think>) checked by
 * the task's own verifier. A calculator call made by the model is run and its result fed back,
 * as a tool-using client would, for a few rounds.
 */
import { parseV4Completion } from '../chat/deepseek-v4-parse.js';
import { chatFormatFor, type ChatFormat, type ThinkMode } from '../chat/format.js';
import { promptOpensReasoning, splitReasoning } from '../chat/reasoning.js';
import type { ChatMessage } from '../chat/template.js';
import { generateText } from '../engine/generate.js';
import { Sampler } from '../engine/sampler.js';
import type { LanguageModel, Sequence } from '../models/model.js';
import { calculate, generateTasks, type Difficulty, type Task } from './tasks/index.js';

/** The default held-out seed of `minke eval`; training must not draw problems with it. */
export const EVAL_DEFAULT_SEED = 424242;

export interface EvalOptions {
  readonly tasks: readonly string[];
  readonly seed: number;
  /** Problems per task. */
  readonly n: number;
  readonly think: ThinkMode;
  readonly difficulty?: Difficulty;
  /** Most tokens per generation (default 512). */
  readonly maxTokens?: number;
  /** Context of the sequence (default: the model's, at most 4096). */
  readonly contextLength?: number;
  /** After each problem: the task, problems done, of n, correct so far. */
  readonly onProgress?: (task: string, done: number, n: number, correct: number) => void;
}

export interface TaskScore {
  /** Fraction correct, 0–1. */
  readonly accuracy: number;
  readonly n: number;
}

/** What `minke eval --json` prints. */
export interface EvalReport {
  readonly tasks: Record<string, TaskScore>;
  /** Correct over all problems, 0–1. */
  readonly overall: number;
}

export interface Attempt {
  /** The final reply (after the reasoning). */
  readonly reply: string;
  readonly reasoning: string;
  readonly correct: boolean;
  /** Generations it took (more than one when tools were called). */
  readonly rounds: number;
}

const MAX_ROUNDS = 3;

/** Runs one tool call; errors come back as the tool's result, as a client would report them. */
function runTool(name: string, args: string): string {
  if (name !== 'calculator') return `error: unknown tool ${JSON.stringify(name)}`;
  try {
    const parsed = JSON.parse(args) as unknown;
    const expr = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).expression : undefined;
    if (typeof expr !== 'string' && typeof expr !== 'number') return 'error: calculator needs an "expression" argument';
    return calculate(String(expr));
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

interface Parsed {
  readonly reasoning: string;
  readonly content: string;
  readonly toolCalls: readonly { name: string; arguments: string }[];
}

/** The reasoning, reply and tool calls of a completion of `prompt`. */
export function parseReply(format: ChatFormat, prompt: string, text: string, think: ThinkMode): Parsed {
  if (format.kind === 'deepseek-v4' || format.kind === 'deepseek-v4.1') {
    return parseV4Completion(text, { thinking: think !== 'none', strict: false, version: format.kind === 'deepseek-v4' ? 'v4' : 'v4.1' });
  }
  const parts = splitReasoning(text, { startInReasoning: promptOpensReasoning(prompt) });
  return { reasoning: parts.reasoning, content: parts.answer, toolCalls: [] };
}

/** Asks `task` of the model (greedy) and checks the reply; `seq` is emptied before each generation. */
export async function attemptTask(model: LanguageModel, format: ChatFormat, seq: Sequence, task: Task, think: ThinkMode, maxTokens = 512): Promise<Attempt> {
  const tools = task.toolUse?.tools;
  const messages: ChatMessage[] = [{ role: 'user', content: task.prompt }];
  let parsed: Parsed = { reasoning: '', content: '', toolCalls: [] };
  let rounds = 0;
  while (rounds < MAX_ROUNDS) {
    rounds++;
    const prompt = format.render(messages, { think, tools });
    seq.truncate(0);
    const result = await generateText(seq, model.tokenizer, format.encode(prompt), { maxTokens, sampler: new Sampler({ temperature: 0 }) });
    parsed = parseReply(format, prompt, result.text, think);
    if (parsed.toolCalls.length === 0 || !tools) break;
    const calls = parsed.toolCalls.map((c, k) => ({ id: `call_${rounds}_${k}`, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    messages.push({ role: 'assistant', content: parsed.content, ...(think !== 'none' ? { reasoning_content: parsed.reasoning } : {}), tool_calls: calls });
    for (const c of calls) messages.push({ role: 'tool', tool_call_id: c.id, content: runTool(c.function.name, c.function.arguments) });
  }
  return { reply: parsed.content, reasoning: parsed.reasoning, correct: task.verify(parsed.content), rounds };
}

/** Accuracy per task and overall. */
export async function evaluateModel(model: LanguageModel, opts: EvalOptions): Promise<EvalReport> {
  if (!(Number.isInteger(opts.n) && opts.n >= 1)) throw new Error(`eval: n must be a whole number ≥ 1, got ${opts.n}`);
  if (opts.tasks.length === 0) throw new Error('eval: no tasks given');
  const format = chatFormatFor(model);
  const contextLength = Math.min(model.description.contextLength, opts.contextLength ?? 4096);
  const seq = model.newSequence({ contextLength });
  const tasks: Record<string, TaskScore> = {};
  let correctAll = 0, total = 0;
  try {
    for (const name of opts.tasks) {
      const problems = generateTasks(name, opts.seed, opts.n, opts.difficulty);
      let correct = 0;
      for (let i = 0; i < problems.length; i++) {
        const a = await attemptTask(model, format, seq, problems[i], opts.think, opts.maxTokens);
        if (a.correct) correct++;
        opts.onProgress?.(name, i + 1, problems.length, correct);
      }
      tasks[name] = { accuracy: correct / problems.length, n: problems.length };
      correctAll += correct;
      total += problems.length;
    }
  } finally {
    seq.free();
  }
  return { tasks, overall: correctAll / total };
}
