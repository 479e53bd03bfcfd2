/**
 * Multi-digit addition, subtraction and multiplication, worked the way it is taught: column by
 * column from the right with every carry and borrow written down; multiplication by one digit of
 * the multiplier at a time, then the shifted partial products summed.
 */
import { digitsLow, numberVerifier, placeName, withDigits } from './common.js';
import type { Task, TaskGenerator, TaskRng } from './types.js';

/** Column addition of a + b. */
export function additionSteps(a: number, b: number): string[] {
  const da = digitsLow(a), db = digitsLow(b);
  const lines = [`${a} + ${b}, column by column from the right:`];
  let carry = 0;
  const out: number[] = [];
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const x = da[i] ?? 0, y = db[i] ?? 0;
    const s = x + y + carry;
    const terms = carry ? `${x} + ${y} + ${carry}` : `${x} + ${y}`;
    carry = s >= 10 ? 1 : 0;
    out.push(s % 10);
    lines.push(`${placeName(i)}: ${terms} = ${s}, write ${s % 10}${carry ? ', carry 1' : ''}`);
  }
  if (carry) { out.push(1); lines.push(`${placeName(out.length - 1)}: the carry 1, write 1`); }
  lines.push(`So ${a} + ${b} = ${a + b}.`);
  return lines;
}

/** Column subtraction of a − b (a ≥ b), borrowing from the next column. */
export function subtractionSteps(a: number, b: number): string[] {
  if (a < b) throw new Error(`subtractionSteps: ${a} < ${b}`);
  const da = digitsLow(a), db = digitsLow(b);
  const lines = [`${a} - ${b}, column by column from the right:`];
  let borrow = 0;
  const out: number[] = [];
  for (let i = 0; i < da.length; i++) {
    const x = da[i], y = db[i] ?? 0;
    const minus = borrow ? `${y} - ${borrow}` : `${y}`;
    const need = y + borrow;
    if (x < need) {
      const r = x + 10 - need;
      lines.push(`${placeName(i)}: ${x} - ${minus} is below zero, borrow 10: ${x + 10} - ${minus} = ${r}, borrow 1`);
      out.push(r);
      borrow = 1;
    } else {
      const r = x - need;
      lines.push(`${placeName(i)}: ${x} - ${minus} = ${r}`);
      out.push(r);
      borrow = 0;
    }
  }
  const written = out.slice().reverse().join('');
  const result = a - b;
  if (written !== String(result)) lines.push(`The digits read ${written}, which is ${result}.`);
  lines.push(`So ${a} - ${b} = ${result}.`);
  return lines;
}

/** a × d for one digit d, digit by digit with carries: the line and the product. */
function singleDigitProduct(a: number, d: number): string {
  const da = digitsLow(a);
  const parts: string[] = [];
  let carry = 0;
  for (let i = 0; i < da.length; i++) {
    const p = da[i] * d + carry;
    const expr = carry ? `${da[i]} × ${d} + ${carry} = ${p}` : `${da[i]} × ${d} = ${p}`;
    carry = Math.floor(p / 10);
    const last = i === da.length - 1;
    parts.push(last ? `${expr}, write ${p}` : `${expr}, write ${p % 10}${carry ? ` carry ${carry}` : ''}`);
  }
  return parts.join('; ');
}

/** Long multiplication of a × b. */
export function multiplicationSteps(a: number, b: number): string[] {
  const db = digitsLow(b);
  const lines = [`${a} × ${b}: multiply ${a} by each digit of ${b}, from the right.`];
  const partials: number[] = [];
  db.forEach((d, i) => {
    const p = a * d;
    const shifted = p * 10 ** i;
    partials.push(shifted);
    const place = i === 0 ? '' : ` (${placeName(i)})`;
    lines.push(`${a} × ${d}${place}: ${singleDigitProduct(a, d)} → ${p}${i > 0 ? `, shifted: ${shifted}` : ''}`);
  });
  if (partials.length > 1) {
    let sum = partials[0];
    for (const p of partials.slice(1)) {
      lines.push(`${sum} + ${p} = ${sum + p}`);
      sum += p;
    }
  }
  lines.push(`So ${a} × ${b} = ${a * b}.`);
  return lines;
}

type Op = '+' | '-' | '×';

const PROMPTS: readonly ((expr: string) => string)[] = [
  (e) => `What is ${e}?`,
  (e) => `Compute ${e}.`,
  (e) => `Calculate ${e}.`,
  (e) => `${e} = ?`,
  (e) => `Work out ${e}.`,
];

export const arithmetic: TaskGenerator = {
  name: 'arithmetic',
  description: 'multi-digit addition, subtraction and multiplication with every carry and borrow shown',
  multiStep: true,
  // digits: most digits of an operand (a multiplier has at most half as many, rounded up).
  defaults: { digits: 3, steps: 1 },
  make(rng: TaskRng, { digits }): Task {
    const op = rng.pick<Op>(['+', '-', '×']);
    let a = withDigits(rng, rng.int(1, digits));
    let b = withDigits(rng, op === '×' ? rng.int(1, Math.ceil(digits / 2)) : rng.int(1, digits));
    // A product by 0 or 1 teaches nothing.
    if (op === '×') { a = Math.max(2, a); b = Math.max(2, b); }
    if (op === '-' && a < b) [a, b] = [b, a];
    const result = op === '+' ? a + b : op === '-' ? a - b : a * b;
    const lines = op === '+' ? additionSteps(a, b) : op === '-' ? subtractionSteps(a, b) : multiplicationSteps(a, b);
    const expr = `${a} ${op === '×' ? rng.pick(['×', '*']) : op} ${b}`;
    return {
      task: 'arithmetic',
      prompt: rng.pick(PROMPTS)(expr),
      reasoning: lines.join('\n'),
      answer: String(result),
      verify: numberVerifier(result),
    };
  },
};
