/** A Sequence whose next token is scripted: logits are one-hot at script[i] for the i-th generated step. */
import type { Sequence } from '../../src/models/model.js';

export class ScriptedSequence implements Sequence {
  readonly tokens: number[] = [];
  /** Every forward call's tokens, in order. */
  readonly calls: number[][] = [];
  private promptLength = -1;

  constructor(private readonly script: readonly number[], readonly capacity: number, private readonly vocab = 512, private readonly fallback = 2) {}

  get length(): number { return this.tokens.length; }

  async forward(tokens: readonly number[]): Promise<Float32Array> {
    if (this.length + tokens.length > this.capacity) throw new Error('past capacity');
    if (this.promptLength < 0) this.promptLength = this.length + tokens.length;
    this.calls.push([...tokens]);
    this.tokens.push(...tokens);
    const logits = new Float32Array(this.vocab);
    logits[this.script[this.length - this.promptLength] ?? this.fallback] = 1;
    return logits;
  }

  truncate(n: number): void {
    if (n > this.length) throw new Error('truncate past length');
    this.tokens.length = n;
  }

  free(): void {}
}
