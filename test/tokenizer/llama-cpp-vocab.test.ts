// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out, checked against llama.cpp in
// shared/models/llama-cpp-vocab/README.md): every string, no BOS, must give exactly llama.cpp's ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ggufTokenizer, vocabCases, vocabPath, VOCABS } from './fixtures.js';
import { TokenType } from '../../src/tokenizer/index.js';

for (const name of VOCABS) {
  test(`${name}: all 46 llama.cpp test strings encode to llama.cpp's ids`, () => {
    const tok = ggufTokenizer(vocabPath(name));
    const cases = vocabCases(name);
    assert.equal(cases.length, 46);
    for (const { text, ids } of cases) assert.deepEqual(tok.encode(text, { addBos: false }), ids, JSON.stringify(text));
  });
}

// llama.cpp's detokenizer gives the text back, except that the SentencePiece space prefix is dropped
// again (so that comes back too) and gpt-2's clean_spaces pass removes the space in " ?".
test('decode(encode(s)) gives s back where llama.cpp does', () => {
  for (const name of VOCABS) {
    const tok = ggufTokenizer(vocabPath(name));
    for (const { text } of vocabCases(name)) {
      const expected = name === 'gpt-2' ? text.replace('\u{1F601} ?', '\u{1F601}?') : text;
      assert.equal(tok.decode(tok.encode(text, { addBos: false })), expected, `${name} ${JSON.stringify(text)}`);
    }
  }
});

test('gpt-2 clean_spaces, pass by pass: " ?!.," then a lone apostrophe, then \'s \'m \'re \'ve', () => {
  const tok = ggufTokenizer(vocabPath('gpt-2'));
  const round = (s: string): string => tok.decode(tok.encode(s));
  assert.equal(round('Hi , there . Yes ! Why ?'), 'Hi, there. Yes! Why?');
  assert.equal(round("rock ' n roll"), "rock'n roll");
  assert.equal(round("it 's I 'm we 're they 've"), "it's I'm we're they've");
  assert.equal(round("don 't he 'd we 'll"), "don 't he 'd we 'll");
  // Not cleaned by the other vocabularies.
  const ds = ggufTokenizer(vocabPath('deepseek-llm'));
  assert.equal(ds.decode(ds.encode('Hi , there', { addBos: false })), 'Hi , there');
});

test('BOS / EOS rules: GGUF add_bos_token, else the SentencePiece default', () => {
  const spm = ggufTokenizer(vocabPath('llama-spm'));
  assert.equal(spm.addBos, true);
  assert.equal(spm.addEos, false);
  assert.deepEqual(spm.encode('Hello'), [1, 15043]);
  assert.deepEqual(spm.encode(''), [1]);
  assert.deepEqual(spm.encode('Hello', { addBos: false, addEos: true }), [15043, 2]);
  const ds = ggufTokenizer(vocabPath('deepseek-llm'));
  assert.equal(ds.bos, 100000);
  assert.equal(ds.eos, 100001);
  assert.equal(ds.encode('Hello')[0], 100000);
  const gpt2 = ggufTokenizer(vocabPath('gpt-2')); // no add_bos_token key: gpt-2 adds none
  assert.equal(gpt2.addBos, false);
  assert.deepEqual(gpt2.encode('Hello'), [15496]);
});

test('end-of-generation sets: EOS plus the tokens llama.cpp recognises by text', () => {
  assert.deepEqual([...ggufTokenizer(vocabPath('llama-spm')).eog], [2]);
  assert.deepEqual([...ggufTokenizer(vocabPath('gpt-2')).eog], [50256]); // <|endoftext|>
  assert.deepEqual([...ggufTokenizer(vocabPath('deepseek-llm')).eog], [100001]); // <｜end▁of▁sentence｜>
  assert.deepEqual([...ggufTokenizer(vocabPath('deepseek-coder')).eog], [32014]);
});

test('special tokens: control ones only with parseSpecial, user-defined ones always', () => {
  const spm = ggufTokenizer(vocabPath('llama-spm'));
  // After a special token the SentencePiece space prefix is added again.
  assert.deepEqual(spm.encode('<s>Hello</s>', { addBos: false, parseSpecial: true }), [1, 15043, 2]);
  assert.notDeepEqual(spm.encode('<s>Hello', { addBos: false }).slice(0, 1), [1]);
  assert.equal(spm.decode([1, 15043, 2]), '<s> Hello</s>');
  assert.equal(spm.decode([1, 15043, 2], { skipSpecial: true }), ' Hello');

  const coder = ggufTokenizer(vocabPath('deepseek-coder'));
  // <｜fim▁hole｜> is user-defined in the file but a FIM token by its text, so llama.cpp makes it control.
  assert.equal(coder.tokenType(32015), TokenType.CONTROL);
  assert.deepEqual(coder.encode('a<｜fim▁hole｜>b', { addBos: false, parseSpecial: true }), [
    ...coder.encode('a', { addBos: false }), 32015, ...coder.encode('b', { addBos: false })]);
  assert.ok(!coder.encode('a<｜fim▁hole｜>b', { addBos: false }).includes(32015));
  // 'õ' (id 32000) is a user-defined token: matched in the raw text before byte-level BPE.
  assert.equal(coder.tokenType(32000), TokenType.USER_DEFINED);
  assert.equal(coder.tokenText(32000), '\u00f5');
  assert.deepEqual(coder.encode('\u00f5', { addBos: false }), [32000]);
  // Longest special text first: '[PAD32100]' is not split by a shorter match inside it.
  assert.deepEqual(coder.encode('x[PAD32100]', { addBos: false }), [...coder.encode('x', { addBos: false }), 32100]);
});

test('tokenId / tokenText / piece', () => {
  const spm = ggufTokenizer(vocabPath('llama-spm'));
  assert.equal(spm.tokenId('\u2581Hello'), 15043);
  assert.equal(spm.tokenText(13), '<0x0A>');
  assert.equal(spm.tokenType(13), TokenType.BYTE);
  assert.deepEqual([...spm.piece(13)], [0x0a]);
  assert.deepEqual([...spm.piece(15043)], [...Buffer.from(' Hello')]);
  assert.deepEqual([...spm.piece(1)], [...Buffer.from('<s>')]);
  const gpt2 = ggufTokenizer(vocabPath('gpt-2'));
  assert.equal(gpt2.tokenId('\u0120Hello'), 18435); // 'ĠHello'
  assert.deepEqual([...gpt2.piece(18435)], [...Buffer.from(' Hello')]);
  assert.throws(() => gpt2.piece(50257), /token id 50257 is outside the vocabulary \[0, 50257\)/);
  assert.throws(() => gpt2.decode([-1]), /outside the vocabulary/);
});
