// The two merge loops on hand-made vocabularies: order, ties, and pairs gone stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codePoints, mergeByRank, mergeByScore } from '../../src/tokenizer/merge.js';

const ranks = (merges: string[]) => (l: string, r: string): number | undefined => {
  const i = merges.indexOf(`${l} ${r}`);
  return i < 0 ? undefined : i;
};
const scores = (table: Record<string, number>) => (t: string): number | undefined => table[t];

test('rank merging: lowest rank first, leftmost on ties, a pair of a merged symbol is stale', () => {
  assert.deepEqual(mergeByRank([...'aaa'], ranks(['a a'])), ['aa', 'a']);
  assert.deepEqual(mergeByRank([...'abc'], ranks(['b c', 'a b'])), ['a', 'bc']);
  assert.deepEqual(mergeByRank([...'abc'], ranks(['a b', 'b c', 'ab c'])), ['abc']);
  assert.deepEqual(mergeByRank([...'aaaa'], ranks(['a a', 'aa aa'])), ['aaaa']);
  assert.deepEqual(mergeByRank(['x'], ranks(['x x'])), ['x']);
});

test('score merging: any pair that is a token, highest score first, leftmost on ties', () => {
  assert.deepEqual(mergeByScore([...'abc'], scores({ ab: -2, bc: -1 })), ['a', 'bc']);
  assert.deepEqual(mergeByScore([...'abc'], scores({ ab: -1, bc: -1 })), ['ab', 'c']);
  assert.deepEqual(mergeByScore([...'abc'], scores({ ab: -1, bc: -1, abc: -5 })), ['abc']);
  assert.deepEqual(mergeByScore([...'abab'], scores({ ab: 0, abab: -9, ba: 1 })), ['a', 'ba', 'b']);
});

test('code points keep surrogate pairs together', () => {
  assert.deepEqual(codePoints('a🦙b'), ['a', '🦙', 'b']);
});
