// Folding the chat's reasoning on a terminal: the rows a block takes (wrapping, wide characters,
// tabs, control characters), and the escape sequences that erase it and print the summary line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerPrinter, formatThought, type Out } from '../../src/cli/display.js';
import { charColumns, RowTracker } from '../../src/cli/terminal-rows.js';

class Screen implements Out {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns?: number, readonly rows?: number) {}
  write(t: string): void { this.text += t; }
}

test('character widths: ASCII 1, CJK and emoji 2, combining marks and controls 0', () => {
  assert.deepEqual(['a', '中', '한', '😀', '\u0301', '\u200b', 'é', 'Ж', '\x07'].map(charColumns), [1, 2, 2, 2, 0, 0, 1, 1, 0]);
});

test('rows: a full row waits to wrap until the next character; a wide character does not split', () => {
  const t = new RowTracker(10);
  t.write('abcdefghij');
  assert.deepEqual([t.row, t.col], [0, 10], 'pending wrap on the last column');
  t.write('k');
  assert.deepEqual([t.row, t.col], [1, 1]);
  const n = new RowTracker(4);
  n.write('abcd\n');
  assert.deepEqual([n.row, n.col], [1, 0], 'a newline after a full row moves one row, not two');
  const w = new RowTracker(5);
  w.write('中文中');
  assert.deepEqual([w.row, w.col], [1, 2], 'the third wide character would need columns 5-6: it wraps');
});

test('rows: tabs become spaces to the next stop of 8, control characters are dropped', () => {
  const t = new RowTracker(20);
  assert.equal(t.write('ab\tc'), 'ab      c');
  assert.equal(t.col, 9);
  const c = new RowTracker(20);
  assert.equal(c.write('a\x1b[31mb\r\n'), 'a[31mb\n');
  assert.deepEqual([c.row, c.col], [1, 0]);
});

test('folded: the block is erased (up 3 rows, clear to the end of the screen) and one summary line replaces it', () => {
  // 10 columns: "Thinking..." + newline takes rows 0-1, "abcdefghijkl" rows 2-3.
  const out = new Screen(true, 10, 5);
  const p = new AnswerPrinter(out, new Screen(false), { splitReasoning: true, startInReasoning: true, fold: true });
  p.write('abcdefghijkl', 1);
  p.write('</think>Yes.', 3);
  const parts = { ...p.end(4), ...p.reasoningStats };
  const m = /^\x1b\[2mThinking\.\.\.\n\x1b\[22m\x1b\[2mabcdefghijkl\x1b\[22m\r\x1b\[3A\x1b\[J\x1b\[2m▸ Thought for (\d+\.\d) s \(3 tokens\) — \/show to expand\x1b\[22m\nYes\.$/.exec(out.text);
  assert.ok(m, JSON.stringify(out.text));
  assert.deepEqual([parts.answer, parts.reasoning, parts.reasoningTokens], ['Yes.', 'abcdefghijkl', 3]);
  assert.equal(m[1], parts.reasoningSeconds.toFixed(1));
});

test('folded: a block taller than the screen stays, and the summary line follows it', () => {
  const out = new Screen(true, 10, 3);
  const p = new AnswerPrinter(out, new Screen(false), { splitReasoning: true, startInReasoning: true, fold: true });
  p.write('abcdefghijkl', 1);
  p.write('</think>Yes.', 3);
  p.end(4);
  assert.match(out.text, /abcdefghijkl\x1b\[22m\n\x1b\[2m▸ Thought for \d+\.\d s \(3 tokens\)\x1b\[22m\nYes\.$/);
  assert.ok(!out.text.includes('\x1b[J'), 'nothing erased');
});

test('folded: reasoning cut off by the token limit folds at the end, the summary line left open', () => {
  const out = new Screen(true, 40, 10);
  const p = new AnswerPrinter(out, new Screen(false), { splitReasoning: true, startInReasoning: true, fold: true });
  p.write('Hmm', 1);
  const parts = { ...p.end(8), ...p.reasoningStats };
  assert.match(out.text, /\r\x1b\[1A\x1b\[J\x1b\[2m▸ Thought for \d+\.\d s \(8 tokens\) — \/show to expand\x1b\[22m$/);
  assert.deepEqual([parts.answer, parts.reasoning, parts.reasoningTokens], ['', 'Hmm', 8]);
});

test('fold asked for but stdout is a pipe: reasoning goes to stderr, unfolded, as before', () => {
  const out = new Screen(false);
  const err = new Screen(false);
  const p = new AnswerPrinter(out, err, { splitReasoning: true, startInReasoning: true, fold: true });
  p.write('Hmm</think>Yes.');
  p.end();
  assert.equal(out.text, 'Yes.');
  assert.equal(err.text, 'Thinking...\nHmm\n...done thinking.\n\n');
});

test('formatThought', () => {
  assert.equal(formatThought(3.24, 45), '▸ Thought for 3.2 s (45 tokens)');
  assert.equal(formatThought(0.06, 1), '▸ Thought for 0.1 s (1 token)');
  assert.equal(formatThought(), '▸ Thought');
});
