/**
 * One conversation with a loaded model: messages rendered by the chat template (or, raw, each
 * input completed as it is), the sequence's evaluated prefix reused from turn to turn, sampling
 * settings that `/set` can change.
 */
import { chatFormatFor, THINK_MODES, type ChatFormat, type ThinkMode } from '../chat/format.js';
import type { ChatMessage } from '../chat/template.js';
import { promptOpensReasoning } from '../chat/reasoning.js';
import { generateText, type GenerationResult } from '../engine/generate.js';
import { Sampler, DEFAULT_SAMPLING } from '../engine/sampler.js';
import { TrackedSequence } from '../engine/tracked-sequence.js';
import type { LanguageModel } from '../models/model.js';
import { AnswerPrinter, type Out, type ReasoningStats } from './display.js';

/** The sampling options a chat can change, and the answer length. */
export interface Settings {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed: number;
  /** Most tokens per answer; Infinity = until the context is full. */
  maxTokens: number;
}

/** `/set` names (llama.cpp / ollama spelling) → Settings keys. */
const SETTING_NAMES: Record<string, keyof Settings> = {
  temperature: 'temperature', top_k: 'topK', top_p: 'topP', min_p: 'minP',
  repeat_penalty: 'repeatPenalty', seed: 'seed', max_tokens: 'maxTokens',
};

export function defaultSettings(): Settings {
  const d = DEFAULT_SAMPLING;
  return { temperature: d.temperature, topK: d.topK, topP: d.topP, minP: d.minP, repeatPenalty: d.repeatPenalty, seed: d.seed, maxTokens: Infinity };
}

export interface SessionOptions {
  /** Plain completion of each input, no template and no history. */
  readonly raw: boolean;
  readonly settings: Settings;
  readonly stop: readonly string[];
  readonly system?: string;
  readonly contextLength?: number;
  /** Reasoning mode (--think); absent = the chat format's default. */
  readonly think?: ThinkMode;
}

export interface SendOptions {
  /** Fold the reasoning into one line once it ends (the interactive chat on a terminal). */
  readonly fold?: boolean;
  /** Called after each chunk with the answer and reasoning so far (to save them as they stream). */
  readonly onProgress?: (parts: { answer: string; reasoning: string }) => void;
}

/** A generated answer: the generation's numbers, its two parts, and the prompt it answered. */
export interface TurnResult extends GenerationResult, ReasoningStats {
  readonly answer: string;
  readonly reasoning: string;
  /** Tokens of the whole prompt, and how many of them the sequence already held from the last turn. */
  readonly contextTokens: number;
  readonly cachedTokens: number;
}

export class ChatSession {
  readonly tracked: TrackedSequence;
  readonly format: ChatFormat;
  readonly settings: Settings;
  think?: ThinkMode;
  messages: ChatMessage[] = [];
  system?: string;
  last?: TurnResult;
  private sampler: Sampler;

  constructor(readonly model: LanguageModel, private readonly opts: SessionOptions) {
    this.settings = { ...opts.settings };
    this.sampler = new Sampler(this.settings);
    this.system = opts.system;
    this.format = chatFormatFor(model);
    this.think = opts.think;
    this.tracked = new TrackedSequence(model.newSequence({ contextLength: opts.contextLength }));
  }

  /** Prompt ids for `user` after the conversation so far, and whether the output starts inside reasoning. */
  prompt(user: string): { ids: number[]; opensReasoning: boolean; documentStart: boolean } {
    const tok = this.model.tokenizer;
    if (this.opts.raw) return { ids: tok.encode(user, { parseSpecial: true }), opensReasoning: false, documentStart: user === '' };
    const text = this.format.render(this.turn(user), { think: this.think });
    return { ids: this.format.encode(text), opensReasoning: promptOpensReasoning(text), documentStart: text === '' };
  }

  /**
   * Generates the answer to `user`, printing it through an AnswerPrinter on `out`/`err`, and
   * records the turn (only the answer part; templates drop earlier reasoning anyway).
   */
  async send(user: string, out: Out, err: Out, signal?: AbortSignal, opts: SendOptions = {}): Promise<TurnResult> {
    const { ids, opensReasoning, documentStart } = this.prompt(user);
    const printer = new AnswerPrinter(out, err, { splitReasoning: !this.opts.raw, startInReasoning: opensReasoning, fold: opts.fold });
    const todo = this.tracked.prepare(ids);
    const history = this.tracked.tokens.slice();
    // The sequence holds the whole prompt once it is evaluated, then one more token per step.
    const promptEnd = history.length + todo.length;
    let result: GenerationResult;
    try {
      result = await generateText(this.tracked.seq, this.model.tokenizer, todo, {
        sampler: this.sampler,
        maxTokens: this.settings.maxTokens,
        stop: this.opts.stop,
        signal,
        history,
        stripLeadingSpace: documentStart,
      }, (t) => {
        printer.write(t, this.tracked.seq.length - promptEnd + 1);
        opts.onProgress?.(printer.parts);
      });
    } catch (e) {
      // A failed turn leaves no partial state behind.
      this.tracked.clear();
      throw e;
    }
    const parts = printer.end(result.generatedTokens);
    this.tracked.commit([...todo, ...result.tokens]);
    if (!this.opts.raw) {
      this.messages = [...this.turn(user).filter((m) => m.role !== 'system'),
        { role: 'assistant', content: parts.answer, ...(parts.reasoning ? { reasoning_content: parts.reasoning } : {}) }];
    }
    this.last = { ...result, ...parts, ...printer.reasoningStats, contextTokens: ids.length, cachedTokens: ids.length - todo.length };
    return this.last;
  }

  /** Continues a saved conversation: its messages (user, and assistant with `reasoning_content`) and system prompt. */
  restore(messages: ChatMessage[], system: string | undefined): void {
    this.clear();
    this.messages = messages;
    this.system = system;
    this.last = undefined;
  }

  /** The reasoning of the last answer that had one. */
  lastReasoning(): string | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const r = this.messages[i].reasoning_content;
      if (this.messages[i].role === 'assistant' && typeof r === 'string' && r) return r;
    }
    return undefined;
  }

  clear(): void {
    this.messages = [];
    this.tracked.clear();
  }

  /** `/set NAME VALUE`; returns the line to show. */
  set(name: string, value: string): string {
    if (name === 'think') {
      if (!THINK_MODES.includes(value as ThinkMode)) throw new Error(`think is one of ${THINK_MODES.join(', ')}, got ${JSON.stringify(value)}`);
      this.think = value as ThinkMode;
      return `think = ${value}`;
    }
    const key = SETTING_NAMES[name];
    if (!key) throw new Error(`unknown setting ${JSON.stringify(name)}: one of ${[...Object.keys(SETTING_NAMES), 'think'].join(', ')}`);
    const v = value === 'inf' || value === 'none' ? Infinity : Number(value);
    if (value.trim() === '' || Number.isNaN(v) || (key !== 'maxTokens' && !Number.isFinite(v))) throw new Error(`${name} needs a number, got ${JSON.stringify(value)}`);
    const next = { ...this.settings, [key]: v };
    this.sampler = new Sampler(next); // validates
    this.settings[key] = v;
    return `${name} = ${v}`;
  }

  describeSettings(): string {
    return Object.entries(SETTING_NAMES).map(([n, k]) => `  ${n} = ${this.settings[k]}`).join('\n') + `\n  think = ${this.think ?? 'default'}\n`;
  }

  close(): void {
    this.tracked.seq.free();
  }

  private turn(user: string): ChatMessage[] {
    const sys: ChatMessage[] = this.system ? [{ role: 'system', content: this.system }] : [];
    return [...sys, ...this.messages, { role: 'user', content: user }];
  }
}
