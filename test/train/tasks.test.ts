/**
 * The synthetic task generators: hand-worked traces, determinism per seed, every problem re-solved
 * here from its prompt alone (independent little solvers), every equation of every trace
 * re-computed, verifiers that accept the answer and reject a perturbed one, and the V4 rendering
 * of each reasoning mode (checked against the V4 encoder and parser).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeV4Messages, V4_ASSISTANT, V4_BOS, V4_EOS, V4_THINK_END, V4_THINK_MAX_PREFIX, V4_THINK_START } from '../../src/chat/deepseek-v4-encoding.js';
import { parseV4Completion } from '../../src/chat/deepseek-v4-parse.js';
import { additionSteps, multiplicationSteps, subtractionSteps } from '../../src/train/tasks/arithmetic.js';
import { comparisonSteps } from '../../src/train/tasks/compare.js';
import {
  calculate, generateTasks, parseTaskList, renderTaskV4, TASK_GENERATORS, TASK_NAMES, taskMessages, type Task,
} from '../../src/train/tasks/index.js';

const N = 40;
const SEEDS = [1, 2, 777];

/** Arithmetic over digits and + - × * ÷ / with the usual precedence (inputs are checked to be only that). */
function evalArith(expr: string): number {
  const js = expr.replace(/×/g, '*').replace(/÷/g, '/');
  if (!/^[\d\s+\-*/().]+$/.test(js)) throw new Error(`not arithmetic: ${expr}`);
  return Function(`"use strict"; return (${js});`)() as number;
}

const lastNum = (s: string): number | undefined => {
  const all = s.match(/-?\d+(?:\.\d+)?/g);
  return all ? Number(all[all.length - 1]) : undefined;
};

/** Every "A op B … = R" written in a trace holds. */
function checkEquations(task: Task): number {
  let checked = 0;
  for (const m of task.reasoning.matchAll(/(?<![\d.])(\d+(?:\s*[-+×*÷/]\s*\d+)+)\s*=\s*(-?\d+)/g)) {
    assert.equal(evalArith(m[1]), Number(m[2]), `${task.task}: "${m[0]}" in\n${task.reasoning}`);
    checked++;
  }
  return checked;
}

// ---- independent solvers: the answer from the prompt alone ------------------------------------------

function runProgram(code: string): number {
  const lines = code.split('\n');
  const env = new Map<string, number>();
  const val = (t: string): number => (/^\d+$/.test(t) ? Number(t) : env.get(t)!);
  const assign = (line: string): void => {
    const m = /^\s*(\w+) = (\w+) ([-+*]) (\w+)$/.exec(line) ?? /^\s*(\w+) = (\d+)$/.exec(line);
    assert.ok(m, `program line ${JSON.stringify(line)}`);
    if (m.length === 3) { env.set(m[1], Number(m[2])); return; }
    const [l, r] = [val(m[2]), val(m[4])];
    env.set(m[1], m[3] === '+' ? l + r : m[3] === '-' ? l - r : l * r);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m: RegExpExecArray | null;
    if ((m = /^for (\w+) in range\((\d+)\):$/.exec(line))) {
      for (let k = 0; k < Number(m[2]); k++) { env.set(m[1], k); assign(lines[i + 1]); }
      i++;
    } else if ((m = /^if (\w+) > (\w+):$/.exec(line))) {
      assert.equal(lines[i + 2], 'else:');
      assign(env.get(m[1])! > env.get(m[2])! ? lines[i + 1] : lines[i + 3]);
      i += 3;
    } else if ((m = /^print\((\w+)\)$/.exec(line))) {
      return env.get(m[1])!;
    } else {
      assign(line);
    }
  }
  throw new Error('program without print');
}

// Units in a base unit of their quantity.
const BASE: Record<string, number> = {
  kilometer: 1e6, meter: 1e3, centimeter: 10, millimeter: 1, tonne: 1e6, kilogram: 1e3, gram: 1,
  week: 604800, day: 86400, hour: 3600, minute: 60, second: 1, liter: 1000, milliliter: 1,
};
const unitOf = (w: string): string => { const u = w.replace(/s$/, ''); assert.ok(u in BASE, w); return u; };

function solveUnits(prompt: string): number {
  const m = /(\d+) (\w+)/.exec(prompt)!;
  const from = unitOf(m[2]);
  const words = [...prompt.matchAll(/[a-z]+/g)].map((x) => x[0].replace(/s$/, '')).filter((w) => w in BASE);
  const to = words.find((w) => w !== from)!;
  return (Number(m[1]) * BASE[from]) / BASE[to];
}

function solveWord(prompt: string): number {
  let have = Number(/^\w+ has (\d+)/.exec(prompt)![1]);
  for (const s of prompt.split(/(?<=\.) /).slice(1)) {
    let m: RegExpExecArray | null;
    if ((m = /finds (\d+) more/.exec(s))) have += Number(m[1]);
    else if ((m = /buys (\d+) bags with (\d+)/.exec(s))) have += Number(m[1]) * Number(m[2]);
    else if (/doubles/.test(s)) have *= 2;
    else if ((m = /gives (\d+)/.exec(s))) have -= Number(m[1]);
    else assert.match(s, /How many/);
  }
  return have;
}

function solveCount(prompt: string): number {
  const quoted = [...prompt.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  if (quoted.length === 2) return [...quoted[1]].filter((c) => c === quoted[0]).length;
  const limit = Number(/(?:than|above) (\d+)/.exec(prompt)![1]);
  const list = prompt.slice(prompt.indexOf(':') + 1).match(/\d+/g)!.map(Number);
  return list.filter((v) => v > limit).length;
}

function solve(task: Task): number | undefined {
  const p = task.prompt;
  switch (task.task) {
    case 'arithmetic': return evalArith(/(\d+ [-+×*] \d+)/.exec(p)![1]);
    case 'calculator': return evalArith(/((?:\(\d+ \+ \d+\)|\d+) [-+×*] \d+)/.exec(p)![1]);
    case 'compare': {
      const [a, b] = p.match(/\d+/g)!.map(Number);
      return /larger/.test(p) ? Math.max(a, b) : Math.min(a, b);
    }
    case 'count': return solveCount(p);
    case 'program': return runProgram(p.slice(p.indexOf('\n\n') + 2));
    case 'units': return solveUnits(p);
    case 'word': return solveWord(p);
    default: return undefined;
  }
}

/** A wrong reply: a numeric answer with its last number off by one, else an unrelated reply. */
function perturb(task: Task): string {
  const m = [...task.answer.matchAll(/-?\d+/g)].pop();
  if (!m || task.task === 'chat') return 'Sorry, I have no idea.';
  return task.answer.slice(0, m.index) + String(Number(m[0]) + 1) + task.answer.slice(m.index! + m[0].length);
}

const fields = (t: Task) => JSON.stringify({ p: t.prompt, r: t.reasoning, a: t.answer, u: t.toolUse });

describe('hand-worked traces', () => {
  it('column addition with carries', () => {
    assert.deepEqual(additionSteps(478, 356), [
      '478 + 356, column by column from the right:',
      'ones: 8 + 6 = 14, write 4, carry 1',
      'tens: 7 + 5 + 1 = 13, write 3, carry 1',
      'hundreds: 4 + 3 + 1 = 8, write 8',
      'So 478 + 356 = 834.',
    ]);
    assert.deepEqual(additionSteps(95, 7).slice(1), [
      'ones: 5 + 7 = 12, write 2, carry 1',
      'tens: 9 + 0 + 1 = 10, write 0, carry 1',
      'hundreds: the carry 1, write 1',
      'So 95 + 7 = 102.',
    ]);
  });

  it('column subtraction with borrows', () => {
    assert.deepEqual(subtractionSteps(5203, 1768), [
      '5203 - 1768, column by column from the right:',
      'ones: 3 - 8 is below zero, borrow 10: 13 - 8 = 5, borrow 1',
      'tens: 0 - 6 - 1 is below zero, borrow 10: 10 - 6 - 1 = 3, borrow 1',
      'hundreds: 2 - 7 - 1 is below zero, borrow 10: 12 - 7 - 1 = 4, borrow 1',
      'thousands: 5 - 1 - 1 = 3',
      'So 5203 - 1768 = 3435.',
    ]);
    assert.deepEqual(subtractionSteps(1000, 1).slice(-3), ['thousands: 1 - 0 - 1 = 0', 'The digits read 0999, which is 999.', 'So 1000 - 1 = 999.']);
  });

  it('long multiplication', () => {
    assert.deepEqual(multiplicationSteps(478, 36), [
      '478 × 36: multiply 478 by each digit of 36, from the right.',
      '478 × 6: 8 × 6 = 48, write 8 carry 4; 7 × 6 + 4 = 46, write 6 carry 4; 4 × 6 + 4 = 28, write 28 → 2868',
      '478 × 3 (tens): 8 × 3 = 24, write 4 carry 2; 7 × 3 + 2 = 23, write 3 carry 2; 4 × 3 + 2 = 14, write 14 → 1434, shifted: 14340',
      '2868 + 14340 = 17208',
      'So 478 × 36 = 17208.',
    ]);
  });

  it('comparison', () => {
    assert.deepEqual(comparisonSteps(4721, 4712), ['Both have 4 digits. Compare digit by digit from the left: 4 = 4, 7 = 7, 2 > 1.', 'So 4721 > 4712.']);
    assert.deepEqual(comparisonSteps(98, 1002), ['98 has 2 digits and 1002 has 4 digits.', 'The one with more digits is larger: 1002 > 98.']);
  });

  it('the calculator', () => {
    assert.equal(calculate('2 + 3 * 4'), '14');
    assert.equal(calculate('(2 + 3) × 4'), '20');
    assert.equal(calculate('7 / 2'), '3.5');
    assert.equal(calculate('1 ÷ 3'), '0.333333333333');
    assert.equal(calculate('-3 - -2'), '-1');
    assert.equal(calculate('1,000 * 3'), '3000');
    assert.throws(() => calculate('2 +'), /calculator: unexpected end/);
    assert.throws(() => calculate('2 / (1 - 1)'), /division by zero/);
    assert.throws(() => calculate('2 + x'), /unexpected "x"/);
    assert.throws(() => calculate('(2'), /missing "\)"/);
  });
});

describe('every generator', () => {
  it('lists the tasks and parses task lists', () => {
    assert.deepEqual(TASK_NAMES, ['arithmetic', 'compare', 'count', 'program', 'units', 'word', 'chat', 'calculator']);
    assert.deepEqual(parseTaskList('all'), TASK_NAMES);
    assert.deepEqual(parseTaskList('units, arithmetic,units'), ['units', 'arithmetic']);
    assert.throws(() => parseTaskList('arithmetic,poetry'), /unknown task "poetry"/);
    assert.throws(() => generateTasks('arithmetic', 1, 1, { digits: 0 }), /digits must be a whole number in 1\.\.9/);
    assert.throws(() => generateTasks('arithmetic', 1.5, 1), /seed must be an integer/);
  });

  for (const g of TASK_GENERATORS) {
    describe(g.name, () => {
      it('gives the same problems for a seed, other problems for other seeds, independent of N', () => {
        const a = generateTasks(g.name, 11, N).map(fields);
        assert.deepEqual(generateTasks(g.name, 11, N).map(fields), a);
        assert.deepEqual(generateTasks(g.name, 11, 5).map(fields), a.slice(0, 5));
        assert.deepEqual(generateTasks(g.name, 11, 5, {}, 7).map(fields), a.slice(7, 12));
        const b = generateTasks(g.name, 12, N).map(fields);
        assert.notDeepEqual(b, a);
        // Most problems differ (chat's space of conversations is small).
        const distinct = new Set(a).size;
        assert.ok(distinct >= (g.name === 'chat' ? 10 : N - 2), `${distinct} distinct of ${N}`);
      });

      it('has traces that reach the answer, verified independently', () => {
        let equations = 0;
        for (const seed of SEEDS) {
          for (const t of generateTasks(g.name, seed, N)) {
            assert.equal(t.task, g.name);
            assert.ok(t.prompt.length > 0 && t.reasoning.length > 0 && t.answer.length > 0);
            assert.equal(t.verify(t.answer), true, `verify(${JSON.stringify(t.answer)})`);
            assert.equal(t.verify(perturb(t)), false, `verify(${JSON.stringify(perturb(t))}) for ${t.prompt}`);
            const want = solve(t);
            if (want !== undefined) {
              assert.equal(lastNum(t.answer), want, t.prompt);
              assert.equal(lastNum(t.reasoning), want, `${t.prompt}\n${t.reasoning}`);
            }
            equations += checkEquations(t);
          }
        }
        if (g.multiStep || g.name === 'calculator') assert.ok(equations > 0);
      });

      it('scales with its difficulty knobs', () => {
        const small = generateTasks(g.name, 3, 20, { digits: 1, steps: 1 });
        const big = generateTasks(g.name, 3, 20, { digits: 6, steps: 8 });
        for (const t of [...small, ...big]) assert.equal(t.verify(t.answer), true);
        if (g.name !== 'chat') {
          const len = (ts: Task[]) => ts.reduce((s, t) => s + t.prompt.length + t.reasoning.length, 0);
          assert.ok(len(big) > len(small), `${len(big)} vs ${len(small)}`);
        }
      });
    });
  }
});

describe('chat and tool use', () => {
  it('chat replies say what they must', () => {
    for (const t of generateTasks('chat', 5, 30)) assert.equal(t.verify('Sorry, I have no idea.'), false);
    const ask = generateTasks('chat', 5, 60).find((t) => /Who are you|What are you|minke-nano\?|your name|yourself/.test(t.prompt))!;
    assert.match(ask.answer, /minke-nano/);
  });

  it('calculator examples call the tool with the expression and answer with its result', () => {
    for (const t of generateTasks('calculator', 8, 10)) {
      const tu = t.toolUse!;
      assert.equal(tu.calls.length, 1);
      assert.equal(tu.calls[0].name, 'calculator');
      assert.equal(tu.results[0], String(evalArith(tu.calls[0].arguments.expression)));
      assert.equal(t.answer, tu.results[0]);
      for (const mode of ['none', 'high'] as const) {
        const ex = renderTaskV4(t, mode);
        const trained = ex.segments.filter((s) => s.train);
        assert.equal(trained.length, 2);
        // The first assistant turn is a well-formed DSML call, as the official parser reads it.
        const call = parseV4Completion(trained[0].text, { thinking: mode !== 'none' });
        assert.deepEqual(call.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), [['calculator', { expression: tu.calls[0].arguments.expression }]]);
        assert.equal(call.reasoning, mode === 'none' ? '' : tu.callReasoning);
        assert.ok(ex.text.includes(`<tool_result>${tu.results[0]}</tool_result>`));
        assert.equal(parseV4Completion(trained[1].text, { thinking: mode !== 'none' }).content, t.answer);
      }
    }
  });
});

describe('V4 rendering for SFT', () => {
  const [task] = generateTasks('arithmetic', 21, 1);

  it('answers directly in non-think mode', () => {
    const ex = renderTaskV4(task, 'none');
    assert.equal(ex.text, encodeV4Messages(taskMessages(task, 'none'), { thinking: false }));
    assert.deepEqual(ex.segments, [
      { text: `${V4_BOS}<｜User｜>${task.prompt}${V4_ASSISTANT}${V4_THINK_END}`, train: false },
      { text: `${task.answer}${V4_EOS}`, train: true },
    ]);
  });

  it('reasons inside <think> in Think High', () => {
    const ex = renderTaskV4(task, 'high');
    assert.deepEqual(ex.segments, [
      { text: `${V4_BOS}<｜User｜>${task.prompt}${V4_ASSISTANT}${V4_THINK_START}`, train: false },
      { text: `${task.reasoning}${V4_THINK_END}${task.answer}${V4_EOS}`, train: true },
    ]);
  });

  it('adds the Think-Max prompt in Think Max', () => {
    const ex = renderTaskV4(task, 'max');
    assert.deepEqual(ex.segments, [
      { text: `${V4_BOS}${V4_THINK_MAX_PREFIX}<｜User｜>${task.prompt}${V4_ASSISTANT}${V4_THINK_START}`, train: false },
      { text: `${task.reasoning}${V4_THINK_END}${task.answer}${V4_EOS}`, train: true },
    ]);
  });

  it('cuts every task of every mode into segments that make up the text', () => {
    for (const name of TASK_NAMES) {
      for (const t of generateTasks(name, 4, 3)) {
        for (const mode of ['none', 'high', 'max'] as const) {
          const ex = renderTaskV4(t, mode);
          assert.equal(ex.segments.map((s) => s.text).join(''), ex.text);
          assert.equal(ex.segments[ex.segments.length - 1].train, true);
          assert.ok(ex.text.endsWith(`${t.answer}${V4_EOS}`));
        }
      }
    }
    assert.throws(() => renderTaskV4(task, 'medium' as never), /reasoning mode must be one of none, low, high, max/);
  });
});
