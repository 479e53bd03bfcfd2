// R1-style reasoning split: whole outputs checked by hand, and streaming at every chunk boundary
// must give the same parts as the whole text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReasoningSplitter, splitReasoning, promptOpensReasoning, type ReasoningOptions } from '../../src/chat/reasoning.js';

/** Feeds `text` in pieces cut at `cuts`, collecting what each part received. */
function stream(text: string, cuts: number[], opts: ReasoningOptions = {}) {
  const s = new ReasoningSplitter(opts);
  let reasoning = '';
  let answer = '';
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    const p = s.push(text.slice(prev, c));
    reasoning += p.reasoning;
    answer += p.answer;
    prev = c;
  }
  const p = s.flush();
  return { reasoning: reasoning + p.reasoning, answer: answer + p.answer };
}

const cases: [string, string, ReasoningOptions, { reasoning: string; answer: string }][] = [
  ['R1 output', '<think>\nFirst, 2+2.\nThat is 4.\n</think>\n\nThe answer is 4.', {}, { reasoning: 'First, 2+2.\nThat is 4.', answer: 'The answer is 4.' }],
  ['leading whitespace before the tag', '\n <think>x</think>y', {}, { reasoning: 'x', answer: 'y' }],
  ['no reasoning at all', 'Hello <think> is text here', {}, { reasoning: '', answer: 'Hello <think> is text here' }],
  ['answer keeps its leading whitespace when there was no reasoning', '  indented', {}, { reasoning: '', answer: '  indented' }],
  ['prompt opened <think>', 'Let me think.\n</think>\n\nDone.', { startInReasoning: true }, { reasoning: 'Let me think.', answer: 'Done.' }],
  ['reasoning never closed', '<think>still going  \n', {}, { reasoning: 'still going', answer: '' }],
  ['a partial close tag inside reasoning is text', '<think>a </thin b</think>c', {}, { reasoning: 'a </thin b', answer: 'c' }],
  ['a later <think> in the answer is text', '<think>r</think>a<think>b', {}, { reasoning: 'r', answer: 'a<think>b' }],
  ['only the start of a tag', '<thi', {}, { reasoning: '', answer: '<thi' }],
  ['inner whitespace kept', '<think>a\n\n b</think>  x \n', {}, { reasoning: 'a\n\n b', answer: 'x \n' }],
];

for (const [name, text, opts, want] of cases) {
  test(`whole text: ${name}`, () => {
    assert.deepEqual(splitReasoning(text, opts), want);
  });
  test(`streamed at every boundary: ${name}`, () => {
    for (let a = 0; a <= text.length; a++) {
      for (let b = a; b <= text.length; b++) {
        assert.deepEqual(stream(text, [a, b], opts), want, `cuts ${a}, ${b}`);
      }
    }
    // One character at a time.
    assert.deepEqual(stream(text, Array.from({ length: text.length }, (_, i) => i), opts), want);
  });
}

test('text is released as soon as it cannot be part of a tag', () => {
  const s = new ReasoningSplitter();
  assert.deepEqual(s.push('<thi'), { reasoning: '', answer: '' });
  assert.equal(s.inAnswer, false);
  assert.deepEqual(s.push('nk>Step one'), { reasoning: 'Step one', answer: '' });
  assert.deepEqual(s.push('.\n</th'), { reasoning: '.', answer: '' });
  assert.deepEqual(s.push('ink>\n'), { reasoning: '', answer: '' });
  assert.equal(s.inAnswer, true);
  assert.deepEqual(s.push('\nAnswer'), { reasoning: '', answer: 'Answer' });
});

test('promptOpensReasoning: the prompt ends inside <think>', () => {
  assert.equal(promptOpensReasoning('<｜Assistant｜><think>\n'), true);
  assert.equal(promptOpensReasoning('<|im_start|>assistant\n<think>\n\n</think>\n\n'), false);
  assert.equal(promptOpensReasoning('<|im_start|>assistant\n'), false);
  assert.equal(promptOpensReasoning('<think> the user wrote this'), false);
});
