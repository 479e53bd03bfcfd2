/**
 * Unit conversions within one quantity (length, mass, time, volume), one or more steps along a
 * chain of units, each step written as the factor and the product or quotient. Values are chosen
 * so that every result is a whole number.
 */
import { numberVerifier, withDigits } from './common.js';
import type { Task, TaskGenerator } from './types.js';

interface Unit {
  readonly one: string;
  readonly many: string;
}

/** Units from large to small; `factors[k]` small units make one of unit k. */
interface Chain {
  readonly units: readonly Unit[];
  readonly factors: readonly number[];
}

const u = (one: string, many = `${one}s`): Unit => ({ one, many });

const CHAINS: readonly Chain[] = [
  { units: [u('kilometer'), u('meter'), u('centimeter'), u('millimeter')], factors: [1000, 100, 10] },
  { units: [u('tonne'), u('kilogram'), u('gram')], factors: [1000, 1000] },
  { units: [u('week'), u('day'), u('hour'), u('minute'), u('second')], factors: [7, 24, 60, 60] },
  { units: [u('liter'), u('milliliter')], factors: [1000] },
];

const name = (unit: Unit, n: number): string => (n === 1 ? unit.one : unit.many);

export const units: TaskGenerator = {
  name: 'units',
  description: 'unit conversions (length, mass, time, volume) over one or more steps',
  multiStep: true,
  // steps: most conversions chained; digits: digits of the amount in the larger unit.
  defaults: { digits: 2, steps: 2 },
  make(rng, { steps, digits }): Task {
    const chain = rng.pick(CHAINS);
    const span = rng.int(1, Math.min(steps, chain.factors.length));
    const top = rng.int(0, chain.factors.length - span);
    const down = rng.chance(0.6);
    // The amount in the larger unit; going up it is the result, so the start is a whole multiple.
    const big = Math.max(1, withDigits(rng, rng.int(1, digits)));
    const factors = chain.factors.slice(top, top + span);
    const amounts = [big];
    for (const f of factors) amounts.push(amounts[amounts.length - 1] * f);
    const path = chain.units.slice(top, top + span + 1);
    if (!down) { path.reverse(); amounts.reverse(); factors.reverse(); }
    const from = path[0], to = path[path.length - 1];
    const lines = factors.map((f, k) => {
      const [a, b] = [amounts[k], amounts[k + 1]];
      return down
        ? `1 ${path[k].one} = ${f} ${path[k + 1].many}, so ${a} ${name(path[k], a)} = ${a} × ${f} = ${b} ${name(path[k + 1], b)}.`
        : `${f} ${path[k].many} = 1 ${path[k + 1].one}, so ${a} ${name(path[k], a)} = ${a} ÷ ${f} = ${b} ${name(path[k + 1], b)}.`;
    });
    const start = amounts[0], result = amounts[amounts.length - 1];
    const prompt = rng.pick([
      `Convert ${start} ${name(from, start)} to ${to.many}.`,
      `How many ${to.many} are in ${start} ${name(from, start)}?`,
      `${start} ${name(from, start)} is how many ${to.many}?`,
    ]);
    return {
      task: 'units', prompt, reasoning: lines.join('\n'),
      answer: `${result} ${name(to, result)}`, verify: numberVerifier(result),
    };
  },
};
