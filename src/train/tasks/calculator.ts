/**
 * The calculator tool: its OpenAI function schema, a safe evaluator of + − × ÷ and parentheses (what
 * `minke eval` runs when the model calls it), and tool-call examples: the assistant calls
 * `calculator` with the expression, reads the result, and answers with it.
 */
import type { V4Tool } from '../../chat/deepseek-v4-encoding.js';
import { numberVerifier, withDigits } from './common.js';
import type { Task, TaskGenerator } from './types.js';

export const CALCULATOR_TOOL: V4Tool = {
  type: 'function',
  function: {
    name: 'calculator',
    description: 'Evaluates an arithmetic expression with +, -, *, / and parentheses and returns the result.',
    parameters: {
      type: 'object',
      properties: { expression: { type: 'string', description: 'The expression, e.g. 12 * (3 + 4)' } },
      required: ['expression'],
    },
  },
};

/**
 * The value of `expression` (numbers, + - * / × ÷, unary minus, parentheses), written as a plain
 * number: whole numbers exactly, others to 12 significant digits. Throws a clear error on anything else.
 */
export function calculate(expression: string): string {
  const src = expression.replace(/×/g, '*').replace(/÷/g, '/');
  let i = 0;
  const fail = (what: string): never => { throw new Error(`calculator: ${what} at position ${i} of ${JSON.stringify(expression)}`); };
  const skip = (): void => { while (i < src.length && /\s/.test(src[i])) i++; };
  const primary = (): number => {
    skip();
    if (src[i] === '(') {
      i++;
      const v = sum();
      skip();
      if (src[i] !== ')') fail('missing ")"');
      i++;
      return v;
    }
    if (src[i] === '-') { i++; return -primary(); }
    if (src[i] === '+') { i++; return primary(); }
    const m = /^(?:\d[\d,]*(?:\.\d*)?|\.\d+)/.exec(src.slice(i));
    if (!m) return fail(i < src.length ? `unexpected ${JSON.stringify(src[i])}` : 'unexpected end');
    i += m[0].length;
    return Number(m[0].replace(/,/g, ''));
  };
  const product = (): number => {
    let v = primary();
    for (;;) {
      skip();
      const op = src[i];
      if (op !== '*' && op !== '/') return v;
      i++;
      const r = primary();
      if (op === '/' && r === 0) fail('division by zero');
      v = op === '*' ? v * r : v / r;
    }
  };
  const sum = (): number => {
    let v = product();
    for (;;) {
      skip();
      const op = src[i];
      if (op !== '+' && op !== '-') return v;
      i++;
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
  };
  const v = sum();
  skip();
  if (i < src.length) fail(`unexpected ${JSON.stringify(src[i])}`);
  if (!Number.isFinite(v)) fail('result is not finite');
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
}

export const calculator: TaskGenerator = {
  name: 'calculator',
  description: 'tool use: big arithmetic handed to the calculator tool, whose result is the answer',
  multiStep: false,
  // digits: digits of the larger operands.
  defaults: { digits: 4, steps: 1 },
  make(rng, { digits }): Task {
    const big = (): number => withDigits(rng, rng.int(Math.max(1, digits - 1), digits));
    const a = big(), b = withDigits(rng, rng.int(1, digits));
    const form = rng.int(0, 3);
    const expression = form === 0 ? `${a} * ${b}` : form === 1 ? `${a} + ${b}` : form === 2 ? `${a} - ${b}` : `(${a} + ${b}) * ${rng.int(2, 99)}`;
    const result = calculate(expression);
    const shown = expression.replace(/\*/g, '×');
    const prompt = rng.pick([
      `Use the calculator to work out ${shown}.`,
      `What is ${expression}? Use the calculator tool.`,
      `Please calculate ${shown} with the calculator.`,
    ]);
    return {
      task: 'calculator',
      prompt,
      reasoning: `The calculator returned ${result}, so ${shown} = ${result}.`,
      answer: result,
      verify: numberVerifier(Number(result)),
      toolUse: {
        tools: [CALCULATOR_TOOL],
        callReasoning: `This needs exact arithmetic, so I call the calculator with ${expression}.`,
        calls: [{ name: 'calculator', arguments: { expression } }],
        results: [result],
      },
    };
  },
};
