/**
 * The generation loop: prompt tokens → one prefill forward → sample, decode step by step, until an
 * end-of-generation token, the token limit, a stop string, a full context or an abort.
 * Text comes out as whole UTF-8 characters (the tokenizer's StreamDecoder) and never contains any
 * part of a stop string.
 */
import type { Sequence } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { Sampler, type SamplingOptions } from './sampler.js';
import { StopMatcher } from './stop.js';

/**
 * eog: an end-of-generation token; length: maxTokens reached; stop: a stop string appeared;
 * context: the sequence is full; aborted: the AbortSignal fired.
 */
export type FinishReason = 'eog' | 'length' | 'stop' | 'context' | 'aborted';

export interface GenerateOptions {
  /** Most tokens to generate (default: until the context is full). */
  readonly maxTokens?: number;
  readonly stop?: readonly string[];
  /** A sampler to draw with (keeps its random stream across calls); else one made from `sampling`. */
  readonly sampler?: Sampler;
  readonly sampling?: SamplingOptions;
  readonly signal?: AbortSignal;
  /** Render control tokens as nothing (default true, as llama.cpp's CLI without --special). */
  readonly skipSpecial?: boolean;
  /** Drop the SentencePiece space of the first generated piece (for text that starts a document). */
  readonly stripLeadingSpace?: boolean;
  /** Tokens already in the sequence before `prompt`, seen by the repetition penalties. */
  readonly history?: readonly number[];
}

export interface GenerationStats {
  /** Tokens evaluated by the prefill. */
  readonly promptTokens: number;
  /** Tokens sampled and kept (an end-of-generation token is not counted). */
  readonly generatedTokens: number;
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  readonly finishReason: FinishReason;
}

export interface GenerationResult extends GenerationStats {
  /** The generated token ids (without a final end-of-generation token). */
  readonly tokens: number[];
  /** The emitted text (what the stream yielded, joined). */
  readonly text: string;
}

/**
 * Yields text chunks as they become final and returns the result. Tokens are appended to `seq`
 * after whatever it holds; the last sampled token is not evaluated (the sequence then holds
 * prompt + all generated tokens but the last).
 */
export async function* generate(seq: Sequence, tokenizer: Tokenizer, prompt: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<string, GenerationResult, void> {
  if (prompt.length === 0) throw new Error('nothing to generate from: the prompt has no tokens');
  if (seq.length + prompt.length > seq.capacity) {
    const used = seq.length ? ` (${seq.length} already in use)` : '';
    throw new Error(`the prompt is ${prompt.length} tokens but the context holds ${seq.capacity}${used}: use a larger context (--ctx) or a shorter prompt`);
  }
  const maxTokens = opts.maxTokens ?? Infinity;
  if (!(maxTokens >= 0)) throw new Error(`max tokens must be ≥ 0, got ${maxTokens}`);
  const sampler = opts.sampler ?? new Sampler(opts.sampling);
  const decoder = tokenizer.decoder({ skipSpecial: opts.skipSpecial ?? true, stripLeadingSpace: opts.stripLeadingSpace ?? false });
  const stops = new StopMatcher(opts.stop ?? []);
  const history = [...(opts.history ?? []), ...prompt];
  const tokens: number[] = [];
  let text = '';
  let finish: FinishReason | undefined;
  let prefillSeconds = 0;
  let prefilled = false;

  const t0 = performance.now();
  let tPrefill = t0;
  if (opts.signal?.aborted) finish = 'aborted';
  else if (maxTokens === 0) finish = 'length';
  else {
    let logits = await seq.forward(prompt);
    prefilled = true;
    tPrefill = performance.now();
    prefillSeconds = (tPrefill - t0) / 1000;
    for (;;) {
      const id = sampler.sample(logits, history);
      if (tokenizer.eog.has(id)) { finish = 'eog'; break; }
      tokens.push(id);
      history.push(id);
      const out = stops.push(decoder.push(id));
      if (out.text) { text += out.text; yield out.text; }
      if (out.stopped) { finish = 'stop'; break; }
      if (tokens.length >= maxTokens) { finish = 'length'; break; }
      if (seq.length >= seq.capacity) { finish = 'context'; break; }
      // Let signal handlers (Ctrl-C) run between tokens even when forward finishes synchronously.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (opts.signal?.aborted) { finish = 'aborted'; break; }
      logits = await seq.forward([id]);
    }
  }
  if (finish !== 'stop') {
    const rest = stops.push(decoder.flush()).text + stops.flush();
    if (rest) { text += rest; yield rest; }
  }
  const decodeSeconds = tokens.length ? (performance.now() - tPrefill) / 1000 : 0;
  return {
    promptTokens: prefilled ? prompt.length : 0,
    generatedTokens: tokens.length,
    prefillSeconds,
    decodeSeconds,
    prefillTokensPerSecond: rate(prompt.length, prefillSeconds),
    decodeTokensPerSecond: rate(tokens.length, decodeSeconds),
    finishReason: finish!,
    tokens,
    text,
  };
}

/** Runs `generate` to the end, handing each chunk to `onText`. */
export async function generateText(seq: Sequence, tokenizer: Tokenizer, prompt: readonly number[], opts: GenerateOptions = {}, onText?: (text: string) => void): Promise<GenerationResult> {
  const it = generate(seq, tokenizer, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    onText?.(r.value);
  }
}

function rate(n: number, seconds: number): number {
  return seconds > 0 ? n / seconds : 0;
}
