/**
 * How answers and numbers look on the terminal.
 *
 * Reasoning (`<think>…</think>`): when stdout is a terminal it is shown there, dimmed, between
 * "Thinking..." and "...done thinking." (as ollama does), and the answer follows; when stdout is
 * a pipe or file, reasoning goes to stderr and stdout receives the answer alone.
 */
import { ReasoningSplitter } from '../chat/reasoning.js';
import type { GenerationStats } from '../engine/generate.js';

export interface Out {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

const DIM = '\x1b[2m';
const UNDIM = '\x1b[22m';

export class AnswerPrinter {
  private readonly splitter?: ReasoningSplitter;
  private thinking = false;
  private answer = '';
  private reasoning = '';

  /** `splitReasoning` false: the text is written as it comes (raw completions). */
  constructor(private readonly out: Out, private readonly err: Out, opts: { splitReasoning: boolean; startInReasoning?: boolean }) {
    if (opts.splitReasoning) this.splitter = new ReasoningSplitter({ startInReasoning: opts.startInReasoning });
  }

  write(text: string): void {
    if (!this.splitter) { this.answer += text; this.out.write(text); return; }
    this.show(this.splitter.push(text));
  }

  /** Ends the answer; returns its two parts. */
  end(): { answer: string; reasoning: string } {
    if (this.splitter) this.show(this.splitter.flush());
    this.closeThinking();
    return { answer: this.answer, reasoning: this.reasoning };
  }

  private show(p: { reasoning: string; answer: string }): void {
    if (p.reasoning) {
      const sink = this.reasoningSink();
      if (!this.thinking) { this.thinking = true; sink.write(this.dim(sink, 'Thinking...\n')); }
      this.reasoning += p.reasoning;
      sink.write(this.dim(sink, p.reasoning));
    }
    if (p.answer) {
      this.closeThinking();
      this.answer += p.answer;
      this.out.write(p.answer);
    }
  }

  private closeThinking(): void {
    if (!this.thinking) return;
    this.thinking = false;
    const sink = this.reasoningSink();
    sink.write(this.dim(sink, '\n...done thinking.\n\n'));
  }

  private reasoningSink(): Out { return this.out.isTTY ? this.out : this.err; }

  private dim(sink: Out, text: string): string { return sink.isTTY ? DIM + text + UNDIM : text; }
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
