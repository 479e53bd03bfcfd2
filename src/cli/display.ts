/**
 * How answers and numbers look on the terminal.
 *
 * Reasoning (`<think>…</think>`): when stdout is a terminal it is shown there, dimmed, between
 * "Thinking..." and "...done thinking." (as ollama does), and the answer follows; when stdout is
 * a pipe or file, reasoning goes to stderr and stdout receives the answer alone.
 *
 * Folded (the interactive chat on a terminal): the reasoning streams dimmed under "Thinking...",
 * and once it ends the block is erased — the cursor moves back up the rows it took — and replaced
 * by one dimmed line, "▸ Thought for 3.2 s (45 tokens) — /show to expand". When the block has
 * grown taller than the screen (its top has scrolled away) it stays, and the line follows it.
 */
import { ReasoningSplitter } from '../chat/reasoning.js';
import type { GenerationStats } from '../engine/generate.js';
import { RowTracker } from './terminal-rows.js';

export interface Out {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
  readonly rows?: number;
}

export const DIM = '\x1b[2m';
export const UNDIM = '\x1b[22m';

export interface PrinterOptions {
  /** false: the text is written as it comes (raw completions). */
  readonly splitReasoning: boolean;
  readonly startInReasoning?: boolean;
  /** Fold the reasoning into a one-line summary once it ends (only when `out` is a terminal of known size). */
  readonly fold?: boolean;
}

/** How long (from the printer's start) and how many tokens the reasoning took. */
export interface ReasoningStats {
  readonly reasoningTokens: number;
  readonly reasoningSeconds: number;
}

export class AnswerPrinter {
  private readonly splitter?: ReasoningSplitter;
  private readonly fold: boolean;
  private readonly t0 = performance.now();
  private thinking = false;
  private answer = '';
  private reasoning = '';
  private reasoningTokens = 0;
  private reasoningSeconds = 0;
  private chunks = 0;
  /** The rows the folded reasoning block covers so far. */
  private block?: RowTracker;

  constructor(private readonly out: Out, private readonly err: Out, opts: PrinterOptions) {
    if (opts.splitReasoning) this.splitter = new ReasoningSplitter({ startInReasoning: opts.startInReasoning });
    this.fold = opts.fold === true && out.isTTY === true && (out.columns ?? 0) >= 2;
  }

  /** `generated`: tokens generated so far, this chunk's included (default: one per chunk). */
  write(text: string, generated?: number): void {
    this.chunks++;
    if (!this.splitter) { this.answer += text; this.out.write(text); return; }
    this.show(this.splitter.push(text), generated ?? this.chunks);
  }

  /** The answer and the reasoning so far. */
  get parts(): { answer: string; reasoning: string } {
    return { answer: this.answer, reasoning: this.reasoning };
  }

  /** Ends the answer (`generated`: tokens generated in all); returns its two parts. */
  end(generated?: number): { answer: string; reasoning: string } {
    if (this.splitter) this.show(this.splitter.flush(), generated ?? this.chunks);
    this.closeThinking(generated ?? this.chunks, false);
    return this.parts;
  }

  /** Known once the reasoning has ended (zeros when there was none). */
  get reasoningStats(): ReasoningStats {
    return { reasoningTokens: this.reasoningTokens, reasoningSeconds: this.reasoningSeconds };
  }

  private show(p: { reasoning: string; answer: string }, generated: number): void {
    if (p.reasoning) {
      const sink = this.reasoningSink();
      if (!this.thinking) {
        this.thinking = true;
        if (this.fold) this.block = new RowTracker(this.out.columns!);
        sink.write(this.dim(sink, this.track('Thinking...\n')));
      }
      this.reasoning += p.reasoning;
      sink.write(this.dim(sink, this.track(p.reasoning)));
    }
    if (p.answer) {
      this.closeThinking(generated, true);
      this.answer += p.answer;
      this.out.write(p.answer);
    }
  }

  private closeThinking(generated: number, answerFollows: boolean): void {
    if (!this.thinking) return;
    this.thinking = false;
    this.reasoningTokens = generated;
    this.reasoningSeconds = (performance.now() - this.t0) / 1000;
    const sink = this.reasoningSink();
    if (!this.fold) { sink.write(this.dim(sink, '\n...done thinking.\n\n')); return; }
    const block = this.block!;
    this.block = undefined;
    const summary = formatThought(this.reasoningSeconds, this.reasoningTokens);
    const eol = answerFollows ? '\n' : '';
    // The block's first row is still on screen: erase from it down, and print the summary there.
    if (block.row < (this.out.rows ?? 0) && block.columns === this.out.columns) {
      const up = block.row > 0 ? `\x1b[${block.row}A` : '';
      this.out.write(`\r${up}\x1b[J${DIM}${summary} — /show to expand${UNDIM}${eol}`);
    } else {
      this.out.write(`${block.col > 0 ? '\n' : ''}${DIM}${summary}${UNDIM}${eol}`);
    }
  }

  /** Text of the folded block as printed, its rows counted. */
  private track(text: string): string { return this.block ? this.block.write(text) : text; }

  private reasoningSink(): Out { return this.out.isTTY ? this.out : this.err; }

  private dim(sink: Out, text: string): string { return sink.isTTY ? DIM + text + UNDIM : text; }
}

/** "▸ Thought for 3.2 s (45 tokens)"; either number may be unknown. */
export function formatThought(seconds?: number, tokens?: number): string {
  const time = seconds === undefined ? '' : ` for ${seconds.toFixed(1)} s`;
  const count = tokens === undefined ? '' : ` (${tokens} token${tokens === 1 ? '' : 's'})`;
  return `▸ Thought${time}${count}`;
}

export function formatStats(s: GenerationStats): string {
  const f = (x: number) => x.toFixed(x >= 100 ? 1 : 2);
  return `prompt ${s.promptTokens} tokens in ${f(s.prefillSeconds)} s (${f(s.prefillTokensPerSecond)} tok/s), ` +
    `generated ${s.generatedTokens} tokens in ${f(s.decodeSeconds)} s (${f(s.decodeTokensPerSecond)} tok/s), finish: ${finishText(s.finishReason)}`;
}

function finishText(r: GenerationStats['finishReason']): string {
  switch (r) {
    case 'eog': return 'end of text';
    case 'length': return 'max tokens';
    case 'stop': return 'stop string';
    case 'context': return 'context full';
    case 'aborted': return 'interrupted';
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}
