/**
 * A Sequence together with the token ids it holds, so that a new prompt sharing a prefix with what
 * is already evaluated (the next turn of a chat) only evaluates the part that differs.
 */
import type { Sequence } from '../models/model.js';

export class TrackedSequence {
  private held: number[] = [];

  constructor(readonly seq: Sequence) {}

  /** The ids whose state the sequence holds, oldest first. */
  get tokens(): readonly number[] { return this.held; }

  /**
   * Truncates the sequence to its longest common prefix with `prompt` and returns the tokens of
   * `prompt` still to evaluate — at least one, since generation needs the logits of the last.
   */
  prepare(prompt: readonly number[]): number[] {
    let common = 0;
    while (common < this.held.length && common < prompt.length && this.held[common] === prompt[common]) common++;
    if (common === prompt.length && common > 0) common--;
    this.seq.truncate(common);
    this.held.length = common;
    return prompt.slice(common);
  }

  /** Records that `evaluated` was appended; the sequence's length says how many of them it kept. */
  commit(evaluated: readonly number[]): void {
    this.held = [...this.held, ...evaluated].slice(0, this.seq.length);
  }

  /** Forgets everything. */
  clear(): void {
    this.seq.truncate(0);
    this.held = [];
  }
}
