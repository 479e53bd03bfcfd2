/**
 * Training data as a pure function of a position: a SequenceSource hands out the index-th training
 * sequence, the same one every time it is asked, so a run's data position is one counter (the
 * sequences consumed) and a resumed run reads exactly what the uninterrupted one would have.
 * Sources: a JSON-lines file of token-id sequences, reshuffled each epoch from the seed; the task
 * generators plug in through the same interface.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Rng } from './rng.js';

/**
 * Token ids with the targets that count: `mask[t]` is 1 when token t (t ≥ 1) is predicted in the
 * loss (the assistant's reply in fine-tuning), 0 when it is only read (the prompt).
 */
export interface MaskedSequence {
  readonly ids: readonly number[];
  readonly mask: Uint8Array;
}

/** A plain sequence (every next token a target, as in pretraining) or a masked one. */
export type TrainingSequence = readonly number[] | MaskedSequence;

export const sequenceIds = (s: TrainingSequence): readonly number[] => ('ids' in s ? s.ids : s);
export const sequenceMask = (s: TrainingSequence): Uint8Array | undefined => ('ids' in s ? s.mask : undefined);

/** How many next-token targets of `s` count. */
export function countedTargets(s: TrainingSequence): number {
  const mask = sequenceMask(s), n = sequenceIds(s).length;
  if (!mask) return Math.max(0, n - 1);
  let k = 0;
  for (let t = 1; t < n; t++) k += mask[t] ? 1 : 0;
  return k;
}

export interface SequenceSource {
  /** Names the data and its order; a resumed run refuses a source whose id changed. */
  readonly id: string;
  /** The index-th training sequence (≥ 2 token ids); a pure function of the source and index. */
  sequence(index: number): TrainingSequence;
}

/**
 * Reads a JSON-lines file: one JSON array of token ids per line (blank lines skipped). Every id
 * must be a whole number below `vocab`, every sequence at least 2 and at most `maxLength` tokens.
 */
export function readTokenLines(file: string, vocab: number, maxLength = Infinity): number[][] {
  const text = fs.readFileSync(file, 'utf8');
  const out: number[][] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new Error(`${where}: not JSON (each line must be an array of token ids)`);
    }
    if (!Array.isArray(v)) throw new Error(`${where}: expected an array of token ids, got ${typeof v}`);
    if (v.length < 2) throw new Error(`${where}: a training sequence needs at least 2 tokens, got ${v.length}`);
    if (v.length > maxLength) throw new Error(`${where}: ${v.length} tokens, more than the ${maxLength} allowed`);
    const bad = v.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
    if (bad >= 0) throw new Error(`${where}: token ${JSON.stringify(v[bad])} at index ${bad} is not an id below the vocabulary size ${vocab}`);
    out.push(v as number[]);
  });
  if (!out.length) throw new Error(`${file}: no sequences`);
  return out;
}

/**
 * Finite data, visited in a fresh random order each epoch: sequence(i) is item perm_e[i mod N] of
 * epoch e = ⌊i/N⌋, the permutation drawn from (seed, e).
 */
export class ShuffledSequences implements SequenceSource {
  readonly id: string;
  private epoch = -1;
  private order: Int32Array = new Int32Array(0);

  constructor(private readonly items: readonly (readonly number[])[], private readonly seed: number, name: string) {
    if (!items.length) throw new Error(`${name}: no sequences`);
    const hash = crypto.createHash('sha256');
    for (const s of items) hash.update(Int32Array.from(s)).update('\n');
    this.id = `${name} (${items.length} sequences, sha256 ${hash.digest('hex').slice(0, 16)}, seed ${seed})`;
  }

  sequence(index: number): readonly number[] {
    if (!(Number.isInteger(index) && index >= 0)) throw new Error(`sequence index must be a whole number ≥ 0, got ${index}`);
    const n = this.items.length, epoch = Math.floor(index / n);
    if (epoch !== this.epoch) {
      this.order = permutation(n, new Rng((Math.imul(this.seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0));
      this.epoch = epoch;
    }
    return this.items[this.order[index % n]];
  }
}

/** A JSON-lines token file as a shuffled source. */
export function tokenLinesSource(file: string, vocab: number, seed: number, maxLength?: number): ShuffledSequences {
  return new ShuffledSequences(readTokenLines(file, vocab, maxLength), seed, 'token lines');
}

function permutation(n: number, rng: Rng): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
