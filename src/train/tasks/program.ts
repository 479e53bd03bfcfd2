/**
 * Program tracing: a few lines of Python-like code (assignments, a short `for` loop, an `if`) and
 * the value it prints, with every executed statement traced with the values substituted.
 */
import { numberVerifier, withDigits } from './common.js';
import type { Task, TaskGenerator, TaskRng } from './types.js';

type Operand = { readonly kind: 'var'; readonly name: string } | { readonly kind: 'const'; readonly value: number };
type BinOp = '+' | '-' | '*';

/** `target = left op right` */
interface Assign { readonly kind: 'assign'; readonly target: string; readonly left: Operand; readonly op: BinOp; readonly right: Operand }
/** `for i in range(count): body` */
interface Loop { readonly kind: 'loop'; readonly count: number; readonly body: Assign }
/** `if a > b: then else: otherwise` */
interface If { readonly kind: 'if'; readonly a: string; readonly b: string; readonly then: Assign; readonly otherwise: Assign }
type Stmt = Assign | Loop | If;

const VARS = ['x', 'y', 'z'];
const LOOP_VAR = 'i';

const show = (o: Operand): string => (o.kind === 'var' ? o.name : String(o.value));

function source(s: Stmt, indent = ''): string[] {
  switch (s.kind) {
    case 'assign': return [`${indent}${s.target} = ${show(s.left)} ${s.op} ${show(s.right)}`];
    case 'loop': return [`${indent}for ${LOOP_VAR} in range(${s.count}):`, ...source(s.body, indent + '    ')];
    case 'if': return [`${indent}if ${s.a} > ${s.b}:`, ...source(s.then, indent + '    '), `${indent}else:`, ...source(s.otherwise, indent + '    ')];
  }
}

type Env = Map<string, number>;

function value(o: Operand, env: Env): number {
  if (o.kind === 'const') return o.value;
  const v = env.get(o.name);
  if (v === undefined) throw new Error(`program: ${o.name} read before assignment`);
  return v;
}

function apply(op: BinOp, l: number, r: number): number {
  return op === '+' ? l + r : op === '-' ? l - r : l * r;
}

/** Runs one assignment, writing its trace line (`prefix`: where in the loop / branch it runs). */
function run(s: Assign, env: Env, trace: string[], prefix: string): void {
  const l = value(s.left, env), r = value(s.right, env);
  const v = apply(s.op, l, r);
  const plain = s.left.kind === 'const' && s.right.kind === 'const';
  const subst = plain ? '' : ` = ${l} ${s.op} ${r}`;
  trace.push(`${prefix}${s.target} = ${show(s.left)} ${s.op} ${show(s.right)}${subst} = ${v}`);
  env.set(s.target, v);
}

function execute(program: readonly Stmt[], env: Env, trace: string[]): void {
  for (const s of program) {
    if (s.kind === 'assign') run(s, env, trace, '');
    else if (s.kind === 'loop') {
      for (let i = 0; i < s.count; i++) {
        env.set(LOOP_VAR, i);
        run(s.body, env, trace, `loop ${LOOP_VAR} = ${i}: `);
      }
    } else {
      const a = env.get(s.a)!, b = env.get(s.b)!;
      const taken = a > b;
      trace.push(`${s.a} > ${s.b} is ${a} > ${b}: ${taken ? 'true, run the if branch' : 'false, run the else branch'}`);
      run(taken ? s.then : s.otherwise, env, trace, '');
    }
  }
}

/** One statement reading only `defined` variables. */
function statement(rng: TaskRng, defined: readonly string[]): Stmt {
  const variable = (): Operand => ({ kind: 'var', name: rng.pick(defined) });
  const constant = (lo: number, hi: number): Operand => ({ kind: 'const', value: rng.int(lo, hi) });
  const target = (): string => (rng.chance(0.7) ? rng.pick(defined) : rng.pick(VARS));
  const assign = (): Assign => {
    const op = rng.pick<BinOp>(['+', '+', '-', '*']);
    const right = op === '*' ? constant(2, 3) : rng.chance(0.5) ? variable() : constant(1, 9);
    return { kind: 'assign', target: target(), left: variable(), op, right };
  };
  const roll = rng.int(0, 9);
  if (roll < 2) {
    // A loop body only adds, so that values stay small and non-negative.
    const right = rng.chance(0.5) ? { kind: 'var', name: LOOP_VAR } as const : rng.chance(0.5) ? variable() : constant(1, 9);
    return { kind: 'loop', count: rng.int(2, 4), body: { kind: 'assign', target: target(), left: variable(), op: '+', right } };
  }
  if (roll < 4 && defined.length >= 2) {
    const a = rng.pick(defined);
    return { kind: 'if', a, b: rng.pick(defined.filter((v) => v !== a)), then: assign(), otherwise: assign() };
  }
  return assign();
}

/** Initial values and `steps` statements that keep every value in [0, 10^max(6, digits + 3)): a statement that would not is drawn again. */
function makeProgram(rng: TaskRng, steps: number, digits: number): { program: Stmt[]; init: [string, number][] } {
  const init: [string, number][] = VARS.slice(0, rng.int(2, 3)).map((n) => [n, withDigits(rng, rng.int(1, digits))]);
  const limit = 10 ** Math.max(6, digits + 3);
  const env: Env = new Map(init);
  const program: Stmt[] = [];
  while (program.length < steps) {
    const s = statement(rng, [...env.keys()].filter((v) => v !== LOOP_VAR));
    const trial = new Map(env);
    execute([s], trial, []);
    if ([...trial.values()].some((v) => v < 0 || v >= limit)) continue;
    program.push(s);
    for (const [k, v] of trial) env.set(k, v);
  }
  return { program, init };
}

export const program: TaskGenerator = {
  name: 'program',
  description: 'the value a few lines of code print, traced statement by statement',
  multiStep: true,
  // steps: statements after the initial assignments; digits: digits of the initial values.
  defaults: { digits: 1, steps: 4 },
  make(rng, { steps, digits }): Task {
    const { program: body, init } = makeProgram(rng, steps, digits);
    const env: Env = new Map();
    const trace: string[] = [];
    for (const [n, v] of init) { env.set(n, v); trace.push(`${n} = ${v}`); }
    execute(body, env, trace);
    const printed = rng.pick([...env.keys()].filter((v) => v !== LOOP_VAR));
    const result = env.get(printed)!;
    const code = [...init.map(([n, v]) => `${n} = ${v}`), ...body.flatMap((s) => source(s)), `print(${printed})`];
    trace.push(`print(${printed}) prints ${result}.`);
    const prompt = `${rng.pick(['What does this program print?', 'What is the output of this code?', 'Trace this program. What does it print?'])}\n\n${code.join('\n')}`;
    return { task: 'program', prompt, reasoning: trace.join('\n'), answer: String(result), verify: numberVerifier(result) };
  },
};
