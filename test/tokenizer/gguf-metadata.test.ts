// tokenizerFromGGUF on metadata written by hand: llama.cpp's defaults and clear errors for bad keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GGUFValue } from '../../src/formats/gguf.js';
import { tokenizerFromGGUF, TokenType } from '../../src/tokenizer/index.js';

const k = (name: string): string => `tokenizer.ggml.${name}`;

/** A 10-token SentencePiece vocabulary: <unk> <s> </s> <0x0A> ▁ a b ▁a ab ba. */
function spm(extra: Record<string, GGUFValue> = {}): Map<string, GGUFValue> {
  const tokens = ['<unk>', '<s>', '</s>', '<0x0A>', '▁', 'a', 'b', '▁a', 'ab', 'ba'];
  return new Map<string, GGUFValue>([
    [k('model'), 'llama'], [k('tokens'), tokens],
    [k('scores'), [0, 0, 0, 0, -1, -2, -3, -4, -5, -6]],
    [k('token_type'), [2, 3, 3, 6, 1, 1, 1, 1, 1, 1]],
    ...Object.entries(extra).map(([n, v]) => [n.includes('.') ? n : k(n), v] as [string, GGUFValue]),
  ]);
}

test('SentencePiece merging takes the highest-scoring pair first', () => {
  const tok = tokenizerFromGGUF(spm());
  // "▁ab": pairs ▁a (score -4) and ab (-5): ▁a wins, and ▁a+b is no token.
  assert.deepEqual(tok.encode('ab', { addBos: false }), [7, 6]);
  // With ab scored higher, ab merges first and ▁+ab is no token.
  const tok2 = tokenizerFromGGUF(spm({ scores: [0, 0, 0, 0, -1, -2, -3, -4, -3.5, -6] }));
  assert.deepEqual(tok2.encode('ab', { addBos: false }), [4, 8]);
  // '\n' is not a token: its byte token; 'c' has neither: <unk>.
  assert.deepEqual(tok.encode('a\nc', { addBos: false }), [7, 3, 0]);
  assert.equal(tok.decode([7, 3, 0]), 'a\n<unk>');
  assert.equal(tok.decode([7, 3, 0], { skipSpecial: true }), 'a\n');
});

test("llama.cpp's defaults: SentencePiece ids 1/2/0 and BOS on; file keys override; ids past the vocabulary are ignored", () => {
  const tok = tokenizerFromGGUF(spm());
  assert.equal(tok.bos, 1);
  assert.equal(tok.eos, 2);
  assert.equal(tok.addBos, true);
  assert.equal(tok.addEos, false);
  const t2 = tokenizerFromGGUF(spm({ bos_token_id: 2, eos_token_id: 4294967295, add_bos_token: false, add_eos_token: true,
    'tokenizer.chat_template': '{{ messages }}' }));
  assert.equal(t2.bos, 2);
  assert.equal(t2.eos, 2);
  assert.equal(t2.addBos, false);
  assert.deepEqual(t2.encode('a'), [7, 2]);
  assert.equal(t2.chatTemplate, '{{ messages }}');
  // No space prefix when the file says so.
  assert.deepEqual(tokenizerFromGGUF(spm({ add_space_prefix: false })).encode('ab', { addBos: false }), [8]);
});

test('end-of-generation tokens found by text become control tokens', () => {
  const m = spm();
  (m.get(k('tokens')) as string[])[6] = '<|im_end|>';
  const tok = tokenizerFromGGUF(m);
  assert.equal(tok.tokenType(6), TokenType.CONTROL);
  assert.deepEqual([...tok.eog].sort(), [2, 6]);
});

test('bad vocabulary metadata is a clear error', () => {
  assert.throws(() => tokenizerFromGGUF(new Map()), /tokenizer.ggml.model is missing/);
  assert.throws(() => tokenizerFromGGUF(spm({ model: 'bert' })), /'bert' is not supported/);
  assert.throws(() => tokenizerFromGGUF(spm({ tokens: [1, 2] })), /tokenizer.ggml.tokens: expected an array of strings/);
  assert.throws(() => tokenizerFromGGUF(spm({ scores: [0] })), /tokenizer.ggml.scores has 1 entries for 10 tokens/);
  assert.throws(() => tokenizerFromGGUF(spm({ add_bos_token: 1 })), /add_bos_token: expected a boolean/);
  assert.throws(() => tokenizerFromGGUF(spm({ model: 'gpt2' })), /tokenizer.ggml.merges is missing/);
  assert.throws(() => tokenizerFromGGUF(spm({ model: 'gpt2', merges: [], pre: 'nonsense' })), /pre-tokenizer/);
  // chatglm's pre-tokenizer has no BOS at all.
  const glm = tokenizerFromGGUF(spm({ model: 'gpt2', merges: [], pre: 'chatglm-bpe' }));
  assert.equal(glm.bos, undefined);
  assert.throws(() => glm.encode('a', { addBos: true }), /this vocabulary has no BOS token/);
});
