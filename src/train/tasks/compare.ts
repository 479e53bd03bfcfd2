/**
 * Comparison (which of two numbers is larger / smaller: digit counts first, then digit by digit
 * from the left) and counting (a letter in a word, list entries above a threshold), each with the
 * walk written out.
 */
import { numberVerifier, withDigits } from './common.js';
import type { Task, TaskGenerator, TaskRng } from './types.js';

/** Why the larger of a ≠ b is larger. */
export function comparisonSteps(a: number, b: number): string[] {
  const sa = String(a), sb = String(b);
  const big = Math.max(a, b), small = Math.min(a, b);
  if (sa.length !== sb.length) {
    return [`${sa} has ${sa.length} digit${sa.length > 1 ? 's' : ''} and ${sb} has ${sb.length} digit${sb.length > 1 ? 's' : ''}.`,
      `The one with more digits is larger: ${big} > ${small}.`];
  }
  const walk: string[] = [];
  for (let i = 0; i < sa.length; i++) {
    if (sa[i] === sb[i]) { walk.push(`${sa[i]} = ${sb[i]}`); continue; }
    walk.push(`${sa[i]} ${sa[i] > sb[i] ? '>' : '<'} ${sb[i]}`);
    break;
  }
  return [`Both have ${sa.length} digit${sa.length > 1 ? 's' : ''}. Compare digit by digit from the left: ${walk.join(', ')}.`,
    `So ${big} > ${small}.`];
}

/** A second number: often the first with one digit changed (a close call), else any of that size. */
function rival(rng: TaskRng, a: number, digits: number): number {
  for (;;) {
    let b: number;
    if (rng.chance(0.5) && a >= 10) {
      const s = [...String(a)];
      const i = rng.int(0, s.length - 1);
      s[i] = String(rng.int(i === 0 ? 1 : 0, 9));
      b = Number(s.join(''));
    } else {
      b = withDigits(rng, rng.int(1, digits));
    }
    if (b !== a) return b;
  }
}

export const compare: TaskGenerator = {
  name: 'compare',
  description: 'which of two numbers is larger or smaller',
  multiStep: false,
  // digits: most digits of a number.
  defaults: { digits: 4, steps: 1 },
  make(rng, { digits }): Task {
    const a = withDigits(rng, rng.int(Math.max(1, digits - 1), digits));
    const b = rival(rng, a, digits);
    const larger = rng.chance(0.5);
    const want = larger ? Math.max(a, b) : Math.min(a, b);
    const word = larger ? 'larger' : 'smaller';
    const prompt = rng.pick([
      `Which is ${word}: ${a} or ${b}?`,
      `Which number is ${word}, ${a} or ${b}?`,
      `Of ${a} and ${b}, which is ${word}?`,
    ]);
    const lines = comparisonSteps(a, b);
    lines.push(`The ${word} number is ${want}.`);
    return { task: 'compare', prompt, reasoning: lines.join('\n'), answer: String(want), verify: numberVerifier(want) };
  },
};

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** Letter counting: every letter listed, the running count at each match. */
function letterTask(rng: TaskRng, length: number): Task {
  const target = rng.pick([...LETTERS]);
  const letters: string[] = [];
  for (let i = 0; i < length; i++) letters.push(rng.chance(0.3) ? target : rng.pick([...LETTERS]));
  const word = letters.join('');
  let n = 0;
  const walk = letters.map((c) => (c === target ? `${c} (${++n})` : c));
  const prompt = rng.pick([
    `How many times does the letter "${target}" appear in "${word}"?`,
    `Count the letter "${target}" in "${word}".`,
    `How many "${target}"s are in "${word}"?`,
  ]);
  const reasoning = `Go through the letters of "${word}" and count each "${target}": ${walk.join(', ')}.\n` +
    `The letter "${target}" appears ${n} time${n === 1 ? '' : 's'}.`;
  return { task: 'count', prompt, reasoning, answer: String(n), verify: numberVerifier(n) };
}

/** List counting: each entry judged against the threshold, the running count at each yes. */
function listTask(rng: TaskRng, length: number): Task {
  const limit = rng.int(2, 9) * 10;
  const items = Array.from({ length }, () => rng.int(0, 99));
  let n = 0;
  const walk = items.map((v) => (v > limit ? `${v} yes (${++n})` : `${v} no`));
  const prompt = rng.pick([
    `How many numbers in this list are greater than ${limit}: ${items.join(', ')}?`,
    `Count the numbers above ${limit} in: ${items.join(', ')}.`,
  ]);
  const reasoning = `Check each number against ${limit}: ${walk.join(', ')}.\n` +
    `Numbers greater than ${limit}: ${n}.`;
  return { task: 'count', prompt, reasoning, answer: String(n), verify: numberVerifier(n) };
}

export const count: TaskGenerator = {
  name: 'count',
  description: 'counting a letter in a word, or list entries above a threshold',
  multiStep: false,
  // steps: letters of the word / entries of the list.
  defaults: { digits: 2, steps: 8 },
  make(rng, { steps }): Task {
    const length = rng.int(Math.max(2, Math.ceil(steps / 2)), Math.max(2, steps));
    return rng.chance(0.5) ? letterTask(rng, length) : listTask(rng, length);
  },
};
