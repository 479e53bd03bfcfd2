/** The shapes of the synthetic tasks minke-nano learns from and is evaluated on. */
import type { V4Tool } from '../../chat/deepseek-v4-encoding.js';

/** One problem: what the user asks, the step-by-step trace, the short answer and its checker. */
export interface Task {
  /** The generator's name ('arithmetic', 'units', …). */
  readonly task: string;
  /** The user's message. */
  readonly prompt: string;
  /** The reasoning that reaches the answer (the <think> part). */
  readonly reasoning: string;
  /** The reply after the reasoning. */
  readonly answer: string;
  /** Whether a reply (the text after </think>) answers the problem. */
  readonly verify: (answerText: string) => boolean;
  /** Tool-use examples: calls made before the answer, and what they returned. */
  readonly toolUse?: ToolUse;
}

/** One round of tool calls: reasoning, the calls, their results; `Task.reasoning` follows the results. */
export interface ToolUse {
  readonly tools: readonly V4Tool[];
  readonly callReasoning: string;
  readonly calls: readonly ToolCall[];
  /** One result per call, in order. */
  readonly results: readonly string[];
}

export interface ToolCall {
  readonly name: string;
  /** String-valued arguments (rendered as DSML string parameters). */
  readonly arguments: Readonly<Record<string, string>>;
}

/** Difficulty knobs; each generator says what they mean for it and uses its own defaults. */
export interface Difficulty {
  /** Digits of the numbers involved. */
  readonly digits?: number;
  /** Steps of the problem (statements, operations, conversions, letters). */
  readonly steps?: number;
}

export interface TaskGenerator {
  readonly name: string;
  /** One-line description. */
  readonly description: string;
  /** Needs several reasoning steps (the "multi-step tasks"). */
  readonly multiStep: boolean;
  readonly defaults: Required<Difficulty>;
  /** Builds one problem from a generator already seeded for it. */
  make(rng: TaskRng, difficulty: Required<Difficulty>): Task;
}

/** The random draws generators use. */
export interface TaskRng {
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  /** True with probability p. */
  chance(p: number): boolean;
}
