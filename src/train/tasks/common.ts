/** What the generators share: per-problem seeding, number drawing, and answer checking. */
import { Rng } from '../rng.js';
import type { TaskRng } from './types.js';

/** FNV-1a over the UTF-16 units of `s`: a 32-bit seed from a name, a seed and an index. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The generator of problem `index` of task `name` under `seed`: problem i is the same whatever N
 * is asked for, and other seeds (or tasks) give unrelated streams.
 */
export function taskRng(name: string, seed: number, index: number): TaskRng {
  if (!Number.isSafeInteger(seed)) throw new Error(`task seed must be an integer, got ${seed}`);
  const r = new Rng(hash32(`${name}\u0000${seed}\u0000${index}`));
  const int = (lo: number, hi: number): number => {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi)) throw new Error(`task rng: bad range [${lo}, ${hi}]`);
    return lo + r.int(hi - lo + 1);
  };
  return {
    int,
    pick: (items) => {
      if (items.length === 0) throw new Error('task rng: pick from an empty list');
      return items[r.int(items.length)];
    },
    chance: (p) => r.uniform() < p,
  };
}

/** A number of exactly `digits` digits (one digit: 0–9). */
export function withDigits(rng: TaskRng, digits: number): number {
  if (digits <= 1) return rng.int(0, 9);
  return rng.int(10 ** (digits - 1), 10 ** digits - 1);
}

// An optional minus, digits with optional thousands commas, an optional fraction.
const NUMBER = /-?\d[\d,]*(?:\.\d+)?/g;

/** The last number written in `text` (commas between digits ignored), if any. */
export function lastNumber(text: string): number | undefined {
  const all = text.match(NUMBER);
  if (!all) return undefined;
  const v = Number(all[all.length - 1].replace(/,/g, ''));
  return Number.isFinite(v) ? v : undefined;
}

/** A checker that accepts a reply whose last number is `expected`. */
export function numberVerifier(expected: number): (answerText: string) => boolean {
  return (text) => lastNumber(text) === expected;
}

const PLACES = ['ones', 'tens', 'hundreds', 'thousands', 'ten-thousands', 'hundred-thousands', 'millions',
  'ten-millions', 'hundred-millions', 'billions'];

/** The name of decimal column `i` counted from the right (0 = ones). */
export function placeName(i: number): string {
  return PLACES[i] ?? `10^${i}`;
}

/** The decimal digits of a non-negative integer, least significant first. */
export function digitsLow(n: number): number[] {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new Error(`digitsLow: ${n} is not a non-negative safe integer`);
  return [...String(n)].reverse().map(Number);
}
