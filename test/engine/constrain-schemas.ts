/**
 * Random JSON schemas for the property test (seeded): nested objects (required subsets,
 * additionalProperties false / absent / a schema), arrays (items, min/max, prefixItems), enum and
 * const over awkward values, anyOf, type lists, $defs + $ref, recursion.
 */
import type { Rng } from '../../src/engine/sampler.js';

type Schema = Record<string, unknown>;

// Names that share prefixes, need escapes, are empty or not ASCII.
const NAMES = ['a', 'ab', 'abc', 'b', 'name', 'name2', 'id', 'x y', 'q"t', 'back\\slash', 'ünï', '日本', 'emoji😀', 'tab\tkey', '', 'A_B-c'];
const STRINGS = ['', 'a', 'red', 'x y', 'q"t', 'é', '日本語', '😀', 'line\nbreak', 'back\\', '\u0001ctl', '/', 'ab', 'abc'];
const NUMBERS = [0, 1, -1, 7, 10, 2.5, -0.125, 1e21, 123456789];
const LEAVES = ['string', 'number', 'integer', 'boolean', 'null', 'enum', 'const', 'types'];
const NODES = [...LEAVES, 'object', 'object', 'object', 'array', 'array', 'anyOf'];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng.next() * (hi - lo + 1));

function value(rng: Rng, depth: number): unknown {
  switch (int(rng, 0, depth > 0 ? 6 : 4)) {
    case 0: return pick(rng, STRINGS);
    case 1: return pick(rng, NUMBERS);
    case 2: return rng.next() < 0.5;
    case 3: return null;
    case 4: return pick(rng, STRINGS);
    case 5: return Array.from({ length: int(rng, 0, 2) }, () => value(rng, depth - 1));
    default: return Object.fromEntries(Array.from({ length: int(rng, 0, 2) }, () => [pick(rng, NAMES), value(rng, depth - 1)]));
  }
}

function uniqueValues(rng: Rng, n: number, make: () => unknown): unknown[] {
  const seen = new Map<string, unknown>();
  for (let i = 0; i < n; i++) { const v = make(); seen.set(JSON.stringify(v), v); }
  return [...seen.values()];
}

export function randomSchema(rng: Rng, depth: number): Schema {
  switch (pick(rng, depth > 0 ? NODES : LEAVES)) {
    case 'string': return { type: 'string' };
    case 'number': return { type: 'number' };
    case 'integer': return { type: 'integer' };
    case 'boolean': return { type: 'boolean' };
    case 'null': return { type: 'null' };
    case 'enum':
      if (rng.next() < 0.3) return { type: 'string', enum: uniqueValues(rng, int(rng, 1, 4), () => pick(rng, STRINGS)) };
      return { enum: uniqueValues(rng, int(rng, 1, 4), () => value(rng, 1)) };
    case 'const': return { const: value(rng, 1) };
    case 'types': {
      const t = uniqueValues(rng, 2, () => pick(rng, ['string', 'number', 'integer', 'boolean', 'null']));
      return { type: t.length === 1 ? t[0] : t };
    }
    case 'object': {
      const names = uniqueValues(rng, int(rng, 0, 4), () => pick(rng, NAMES)) as string[];
      const properties = Object.fromEntries(names.map((n) => [n, randomSchema(rng, depth - 1)]));
      const s: Schema = { type: 'object', properties, required: names.filter(() => rng.next() < 0.5) };
      const r = rng.next();
      if (r < 0.55) s.additionalProperties = false;
      else if (r < 0.8) s.additionalProperties = randomSchema(rng, 0);
      return s;
    }
    case 'array': {
      const s: Schema = { type: 'array' };
      if (rng.next() < 0.2) {
        s.prefixItems = Array.from({ length: int(rng, 1, 2) }, () => randomSchema(rng, depth - 1));
        s.items = rng.next() < 0.5 ? false : randomSchema(rng, depth - 1);
      } else s.items = randomSchema(rng, depth - 1);
      const min = rng.next() < 0.4 ? int(rng, 0, 2) : 0;
      if (min > 0 && s.items !== false) s.minItems = min;
      if (rng.next() < 0.4) s.maxItems = min + int(rng, 0, 3);
      return s;
    }
    default:
      return { anyOf: Array.from({ length: int(rng, 2, 3) }, () => randomSchema(rng, depth - 1)) };
  }
}

/** A top-level schema: mostly plain, sometimes behind $defs / $ref, sometimes recursive. */
export function randomRootSchema(rng: Rng): Schema {
  const r = rng.next();
  if (r < 0.1) return { $defs: { d: randomSchema(rng, 2) }, $ref: '#/$defs/d' };
  if (r < 0.16) {
    const node = {
      type: 'object',
      properties: { v: randomSchema(rng, 0), kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } },
      required: ['v'], additionalProperties: false,
    };
    return { $defs: { node }, $ref: '#/$defs/node' };
  }
  return randomSchema(rng, 3);
}
