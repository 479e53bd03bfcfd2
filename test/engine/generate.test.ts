// The generation loop over a scripted sequence and the real stories260K tokenizer: prefill once,
// decode token by token, and every way of finishing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, generateText } from '../../src/engine/generate.js';
import { StopMatcher } from '../../src/engine/stop.js';
import { TrackedSequence } from '../../src/engine/tracked-sequence.js';
import { ScriptedSequence } from './fake-sequence.js';
import { storiesTokenizer } from './fixtures.js';

const tok = storiesTokenizer();
// Vocabulary pieces of stories260K: ▁there ▁was ▁a ▁g ir l ('▁' is a space).
const THERE = 383, WAS = 286, A = 261, G = 298, IR = 315, L = 421, EOS = 2;
const PROMPT = [1, 403, 407, 261, 378]; // <s> ▁Once ▁upon ▁a ▁time
const greedy = { temperature: 0 };

async function collect(seq: ScriptedSequence, prompt: number[], opts: Parameters<typeof generate>[3] = {}) {
  const chunks: string[] = [];
  const result = await generateText(seq, tok, prompt, { sampling: greedy, ...opts }, (t) => chunks.push(t));
  return { chunks, result };
}

test('one prefill over the whole prompt, then one forward per token; text and counts', async () => {
  const seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], 64);
  const { chunks, result } = await collect(seq, PROMPT, { maxTokens: 6 });
  assert.equal(chunks.join(''), ' there was a girl');
  assert.equal(result.text, ' there was a girl');
  assert.deepEqual(result.tokens, [THERE, WAS, A, G, IR, L]);
  assert.deepEqual(seq.calls, [PROMPT, [THERE], [WAS], [A], [G], [IR]]);
  // The last sampled token is not evaluated.
  assert.equal(seq.length, PROMPT.length + 5);
  assert.equal(result.finishReason, 'length');
  assert.equal(result.promptTokens, 5);
  assert.equal(result.generatedTokens, 6);
  assert.ok(result.prefillSeconds >= 0 && result.decodeSeconds >= 0);
});

test('an end-of-generation token ends it and is neither emitted nor counted', async () => {
  const seq = new ScriptedSequence([THERE, WAS, EOS, A], 64);
  const { result } = await collect(seq, PROMPT, { maxTokens: 10 });
  assert.equal(result.finishReason, 'eog');
  assert.equal(result.text, ' there was');
  assert.deepEqual(result.tokens, [THERE, WAS]);
});

test('stripLeadingSpace drops the SentencePiece space of the first piece (a document start)', async () => {
  const seq = new ScriptedSequence([THERE, WAS], 64);
  const { result } = await collect(seq, [1], { maxTokens: 2, stripLeadingSpace: true });
  assert.equal(result.text, 'there was');
});

test('stop strings: nothing of the stop string is ever emitted, partial matches are held back then released', async () => {
  // " there was a girl": stop at "was a" → " there ".
  let seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], 64);
  let r = await collect(seq, PROMPT, { maxTokens: 6, stop: ['was a'] });
  assert.equal(r.result.finishReason, 'stop');
  assert.equal(r.result.text, ' there ');
  assert.equal(r.chunks.join(''), ' there ');
  assert.deepEqual(r.result.tokens, [THERE, WAS, A]);
  // A stop that starts matching ("was b") but never completes: all the text comes out, in order.
  seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], 64);
  r = await collect(seq, PROMPT, { maxTokens: 6, stop: ['was b', 'xyz'] });
  assert.equal(r.result.finishReason, 'length');
  // "was" waits after its token (it could still become "was b") and leaves with " a".
  assert.deepEqual(r.chunks, [' there', ' ', 'was a', ' g', 'ir', 'l']);
  // The earliest of several stop strings wins, even one completed inside a single token.
  seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], 64);
  r = await collect(seq, PROMPT, { maxTokens: 6, stop: ['girl', 'ther'] });
  assert.equal(r.result.text, ' ');
});

test('StopMatcher holds back exactly the longest tail that could still become a stop string', () => {
  const m = new StopMatcher(['</s>', 'END']);
  assert.deepEqual(m.push('abc<'), { text: 'abc', stopped: false });
  assert.deepEqual(m.push('/'), { text: '', stopped: false });
  assert.deepEqual(m.push('x E'), { text: '</x ', stopped: false });
  assert.deepEqual(m.push('N'), { text: '', stopped: false });
  assert.deepEqual(m.push('Dtail'), { text: '', stopped: true, matched: 'END' });
  const n = new StopMatcher(['ab']);
  assert.deepEqual(n.push('xa'), { text: 'x', stopped: false });
  assert.equal(n.flush(), 'a');
  assert.throws(() => new StopMatcher(['']), /must not be empty/);
});

test('only whole UTF-8 characters come out when a character spans byte tokens', async () => {
  // é = C3 A9: byte tokens <0xC3> (id 3 + 0xC3) and <0xA9>.
  const C3 = 3 + 0xc3, A9 = 3 + 0xa9;
  assert.equal(tok.tokenText(C3), '<0xC3>');
  const seq = new ScriptedSequence([THERE, C3, A9, C3], 64);
  const { chunks, result } = await collect(seq, PROMPT, { maxTokens: 4 });
  assert.deepEqual(chunks, [' there', 'é', '\uFFFD']); // the dangling C3 is flushed as U+FFFD at the end
  assert.equal(result.text, ' thereé\uFFFD');
});

test('a full context ends generation with finish reason "context"', async () => {
  const seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], PROMPT.length + 2);
  const { result } = await collect(seq, PROMPT);
  assert.equal(result.finishReason, 'context');
  // Positions P and P+1 hold the first two tokens; the third is sampled from the last logits.
  assert.deepEqual(result.tokens, [THERE, WAS, A]);
  assert.equal(seq.length, seq.capacity);
});

test('a prompt longer than the context is a clear error before any forward', async () => {
  const seq = new ScriptedSequence([], 4);
  await assert.rejects(collect(seq, PROMPT), /the prompt is 5 tokens but the context holds 4.*--ctx/);
  assert.equal(seq.calls.length, 0);
  await assert.rejects(collect(seq, []), /prompt has no tokens/);
});

test('an AbortSignal stops the answer between tokens', async () => {
  const ac = new AbortController();
  const seq = new ScriptedSequence([THERE, WAS, A, G, IR, L], 64);
  const chunks: string[] = [];
  const it = generate(seq, tok, PROMPT, { sampling: greedy, signal: ac.signal });
  let r = await it.next();
  while (!r.done) {
    chunks.push(r.value);
    if (chunks.length === 2) ac.abort();
    r = await it.next();
  }
  assert.equal(r.value.finishReason, 'aborted');
  assert.deepEqual(r.value.tokens, [THERE, WAS]);
  assert.equal(chunks.join(''), ' there was');
  // Aborted before it starts: nothing is evaluated.
  const seq2 = new ScriptedSequence([THERE], 64);
  const res = await generateText(seq2, tok, PROMPT, { signal: AbortSignal.abort() });
  assert.equal(res.finishReason, 'aborted');
  assert.equal(res.promptTokens, 0);
  assert.equal(seq2.calls.length, 0);
});

test('maxTokens 0 evaluates nothing', async () => {
  const seq = new ScriptedSequence([THERE], 64);
  const { result } = await collect(seq, PROMPT, { maxTokens: 0 });
  assert.equal(result.finishReason, 'length');
  assert.equal(seq.calls.length, 0);
});

test('the repetition penalty sees the prompt and the history', async () => {
  // The script puts logit 1 on its token, 0 elsewhere; a presence penalty of 2 on seen tokens
  // pushes a seen token below the zeros, so greedy then takes id 0 (the first of the zeros).
  const seq = new ScriptedSequence([THERE], 64);
  const { result } = await collect(seq, PROMPT, { maxTokens: 1, sampling: { temperature: 0, presencePenalty: 2 }, history: [THERE] });
  assert.deepEqual(result.tokens, [0]);
  const seq2 = new ScriptedSequence([THERE], 64);
  const r2 = await collect(seq2, PROMPT, { maxTokens: 1, sampling: { temperature: 0, presencePenalty: 2 } });
  assert.deepEqual(r2.result.tokens, [THERE]);
});

test('TrackedSequence evaluates only what differs from the tokens already held', async () => {
  const seq = new ScriptedSequence([THERE, WAS, A], 64);
  const tracked = new TrackedSequence(seq);
  let todo = tracked.prepare(PROMPT);
  assert.deepEqual(todo, PROMPT);
  const r = await generateText(seq, tok, todo, { sampling: greedy, maxTokens: 3 });
  tracked.commit([...todo, ...r.tokens]);
  assert.deepEqual(tracked.tokens, [...PROMPT, THERE, WAS]);
  // Next turn: the old prompt + answer + more; only the new part is evaluated.
  todo = tracked.prepare([...PROMPT, THERE, WAS, A, G]);
  assert.deepEqual(todo, [A, G]);
  assert.equal(seq.length, PROMPT.length + 2);
  // A prompt that diverges early truncates back to the common prefix.
  todo = tracked.prepare([1, 403, 999]);
  assert.deepEqual(todo, [999]);
  assert.equal(seq.length, 2);
  // The very same prompt again still leaves one token to evaluate (its logits are needed).
  assert.deepEqual(tracked.prepare([1, 403]), [403]);
  tracked.clear();
  assert.equal(seq.length, 0);
  assert.deepEqual(tracked.tokens, []);
});
