/**
 * Simple word problems: someone starts with some items, then gets, gives away, buys in bags or
 * doubles them, a few times over; the trace takes the events one at a time.
 */
import { numberVerifier, withDigits } from './common.js';
import type { Task, TaskGenerator, TaskRng } from './types.js';

const PEOPLE: readonly (readonly [string, 'She' | 'He'])[] = [
  ['Mia', 'She'], ['Leo', 'He'], ['Ava', 'She'], ['Sam', 'He'], ['Zoe', 'She'], ['Eli', 'He'], ['Ada', 'She'],
  ['Omar', 'He'], ['Lena', 'She'], ['Noah', 'He'], ['Iris', 'She'], ['Ravi', 'He'],
];
const ITEMS = ['apples', 'marbles', 'stickers', 'books', 'coins', 'cookies', 'pencils', 'shells', 'cards', 'stamps'];

interface Event {
  /** The sentence of the story. */
  readonly story: string;
  /** The trace line, given the count before. */
  readonly step: string;
  readonly after: number;
}

function event(rng: TaskRng, have: number, digits: number, he: string, other: string, items: string): Event {
  const small = (): number => Math.max(1, withDigits(rng, rng.int(1, digits)));
  const kind = rng.int(0, have > 0 ? 3 : 2);
  if (kind === 0) {
    const k = small();
    return { story: `${he} finds ${k} more ${items}.`, step: `${he} finds ${k}: ${have} + ${k} = ${have + k}.`, after: have + k };
  }
  if (kind === 1) {
    const bags = rng.int(2, 5), per = rng.int(2, 9);
    return {
      story: `${he} buys ${bags} bags with ${per} ${items} in each.`,
      step: `${he} buys ${bags} bags of ${per}: ${bags} × ${per} = ${bags * per}, so ${have} + ${bags * per} = ${have + bags * per}.`,
      after: have + bags * per,
    };
  }
  if (kind === 2) {
    return { story: `Then the number of ${items} ${he.toLowerCase()} has doubles.`, step: `It doubles: ${have} × 2 = ${have * 2}.`, after: have * 2 };
  }
  const k = rng.int(1, have);
  return { story: `${he} gives ${k} ${items} to ${other}.`, step: `${he} gives away ${k}: ${have} - ${k} = ${have - k}.`, after: have - k };
}

export const wordProblems: TaskGenerator = {
  name: 'word',
  description: 'word problems: a count of items changed by a few events',
  multiStep: true,
  // steps: events after the start; digits: digits of the start and of the amounts.
  defaults: { digits: 2, steps: 2 },
  make(rng, { steps, digits }): Task {
    const [person, he] = rng.pick(PEOPLE);
    const other = rng.pick(PEOPLE.filter(([p]) => p !== person))[0];
    const items = rng.pick(ITEMS);
    let have = Math.max(1, withDigits(rng, rng.int(1, digits)));
    const story = [`${person} has ${have} ${items}.`];
    const trace = [`${person} starts with ${have} ${items}.`];
    const n = rng.int(1, Math.max(1, steps));
    for (let i = 0; i < n; i++) {
      const e = event(rng, have, digits, he, other, items);
      story.push(e.story);
      trace.push(e.step);
      have = e.after;
    }
    trace.push(`${person} has ${have} ${items} now.`);
    const question = `How many ${items} does ${person} have now?`;
    return { task: 'word', prompt: `${story.join(' ')} ${question}`, reasoning: trace.join('\n'), answer: String(have), verify: numberVerifier(have) };
  },
};
