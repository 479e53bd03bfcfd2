/**
 * R1-style reasoning: output `<think>reasoning</think>answer` split into its two parts while it
 * streams. Tags split across chunks are held back until they are whole; whitespace around the
 * reasoning and at the start of the answer is dropped. When the prompt already opened `<think>`
 * (R1-distill templates end with `<｜Assistant｜><think>\n`), the output starts inside reasoning.
 */

export interface ReasoningParts {
  readonly reasoning: string;
  readonly answer: string;
}

export interface ReasoningOptions {
  /** The output starts inside the reasoning (the prompt ended with the opening tag). */
  readonly startInReasoning?: boolean;
  readonly open?: string;
  readonly close?: string;
}

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';

type State = 'start' | 'reasoning' | 'answer';

export class ReasoningSplitter {
  private state: State;
  private buf = '';
  /** Leading whitespace of the current part is still to be dropped. */
  private trimLead = true;
  private readonly open: string;
  private readonly close: string;

  constructor(opts: ReasoningOptions = {}) {
    this.open = opts.open ?? THINK_OPEN;
    this.close = opts.close ?? THINK_CLOSE;
    this.state = opts.startInReasoning ? 'reasoning' : 'start';
  }

  /** True once the reasoning has ended (or there was none) and text goes to the answer. */
  get inAnswer(): boolean { return this.state === 'answer'; }

  /** True inside the reasoning block. */
  get inReasoning(): boolean { return this.state === 'reasoning'; }

  push(text: string): ReasoningParts {
    this.buf += text;
    let reasoning = '';
    let answer = '';
    for (;;) {
      if (this.state === 'start') {
        // Only an opening tag at the very start (after whitespace) begins reasoning.
        const s = this.buf.trimStart();
        if (s.startsWith(this.open)) {
          this.buf = s.slice(this.open.length);
          this.state = 'reasoning';
          this.trimLead = true;
          continue;
        }
        if (this.open.startsWith(s)) break; // still possibly the tag: wait
        this.state = 'answer';
        this.trimLead = false; // no reasoning: the text is the answer as it is
        continue;
      }
      if (this.state === 'reasoning') {
        if (this.trimLead) { this.buf = this.buf.trimStart(); this.trimLead = this.buf === ''; }
        const end = this.buf.indexOf(this.close);
        if (end >= 0) {
          reasoning += this.buf.slice(0, end).trimEnd();
          this.buf = this.buf.slice(end + this.close.length);
          this.state = 'answer';
          this.trimLead = true;
          continue;
        }
        // Hold back a partial closing tag and the whitespace before it (dropped if the tag follows).
        let keep = partialSuffix(this.buf, this.close);
        const body = this.buf.slice(0, this.buf.length - keep);
        keep += body.length - body.trimEnd().length;
        reasoning += this.buf.slice(0, this.buf.length - keep);
        this.buf = this.buf.slice(this.buf.length - keep);
        break;
      }
      if (this.trimLead) { this.buf = this.buf.trimStart(); this.trimLead = this.buf === ''; }
      answer += this.buf;
      this.buf = '';
      break;
    }
    return { reasoning, answer };
  }

  /** The end of the output: whatever was held back goes where it was headed. */
  flush(): ReasoningParts {
    const rest = this.buf;
    this.buf = '';
    if (this.state === 'reasoning') return { reasoning: rest.trimEnd(), answer: '' };
    if (this.state === 'start') return { reasoning: '', answer: rest };
    return { reasoning: '', answer: '' };
  }
}

/** Splits a complete output. */
export function splitReasoning(text: string, opts: ReasoningOptions = {}): ReasoningParts {
  const s = new ReasoningSplitter(opts);
  const a = s.push(text);
  const b = s.flush();
  return { reasoning: a.reasoning + b.reasoning, answer: a.answer + b.answer };
}

/** Whether a rendered prompt ends inside an opened reasoning block (its output starts there). */
export function promptOpensReasoning(prompt: string, open = THINK_OPEN, close = THINK_CLOSE): boolean {
  const i = prompt.lastIndexOf(open);
  return i >= 0 && prompt.indexOf(close, i) < 0 && prompt.slice(i + open.length).trim() === '';
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
export function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}
