// tokenizer.json (+ tokenizer_config.json): small vocabularies written by hand in the exact Hugging
// Face schema with ids worked out by hand, and a GGUF vocabulary converted to tokenizer.json form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizerFromHF, TokenType } from '../../src/tokenizer/index.js';
import { ggufMetadata, ggufTokenizer, vocabCases, vocabPath } from './fixtures.js';

/** GPT-2's byte → character table, from its definition (bytes_to_unicode). */
function byteChars(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : 256 + n++));
}

/** Byte-level BPE: byte b has id b; merges 256…262; added tokens 263…266. */
function byteLevelJson(preTokenizer: object): object {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => { vocab[c] = b; });
  const merges = [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['l', 'l'], ['e', 'll'], ['h', 'ell'], ['hell', 'o']];
  merges.forEach(([a, b], i) => { vocab[a + b] = 256 + i; });
  const added = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<tool>'].map((content, i) => ({
    id: 263 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: content !== '<tool>',
  }));
  for (const a of added) vocab[a.content] = a.id;
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

const GPT2_PRE = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
const CHAT = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";

test('byte-level BPE from tokenizer.json: merges by rank, bytes for the rest, added tokens', () => {
  const tok = tokenizerFromHF(byteLevelJson(GPT2_PRE), { eos_token: '<|endoftext|>', bos_token: null, chat_template: CHAT });
  assert.equal(tok.vocabSize, 267);
  // "hello": h+e (rank 1) before l+l (rank 3), so e+ll (rank 4) never applies; " the": Ġt, he, Ġthe.
  assert.deepEqual(tok.encode('hello the world'), [257, 259, 111, 258, 32, 119, 111, 114, 108, 100]);
  assert.deepEqual(tok.encode('ell'), [260]);
  assert.deepEqual(tok.encode('é'), [0xc3, 0xa9]);
  // Control tokens only with parseSpecial; the user-defined <tool> always.
  assert.deepEqual(tok.encode('<|im_start|>hi<|im_end|>', { parseSpecial: true }), [264, 104, 105, 265]);
  assert.deepEqual(tok.encode('<|im_start|>hi'), [...Buffer.from('<|im_start|>hi')]);
  assert.deepEqual(tok.encode('a<tool>b'), [97, 266, 98]);
  assert.equal(tok.tokenType(265), TokenType.CONTROL);
  assert.equal(tok.tokenType(266), TokenType.USER_DEFINED);
  assert.equal(tok.decode([257, 259, 111, 258, 265]), 'hello the<|im_end|>');
  assert.equal(tok.decode([257, 259, 111, 258, 265], { skipSpecial: true }), 'hello the');
  assert.equal(tok.decode([0xc3, 0xa9]), 'é');
  assert.equal(tok.bos, undefined);
  assert.equal(tok.eos, 263);
  assert.equal(tok.addBos, false);
  assert.deepEqual([...tok.eog].sort(), [263, 265]);
  assert.equal(tok.chatTemplate, CHAT);
});

test('an unrecognised Split rule is used as written: splitting before "h" keeps "hello" from merging', () => {
  const pre = { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: 'h' }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  ] };
  const tok = tokenizerFromHF(byteLevelJson(pre));
  assert.deepEqual(tok.encode('hello'), [104, 260, 111]); // h | e+ll, o
});

test('SentencePiece-style tokenizer.json: ▁ prefix, rank merges, byte fallback, BOS from the template', () => {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  ['▁', 'a', 'b', 'c', '▁a', 'bc', '▁abc'].forEach((t, i) => { vocab[t] = 259 + i; });
  const json = {
    version: '1.0',
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: [['▁', 'a'], ['b', 'c'], ['▁a', 'bc']] },
  };
  const tok = tokenizerFromHF(json, { eos_token: '</s>', chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }] });
  assert.equal(tok.chatTemplate, 'D');
  assert.equal(tok.bos, 1);
  assert.equal(tok.addBos, true);
  // "▁abc▁ab": ▁a twice (rank 0, leftmost first), b+c, then ▁a+bc.
  assert.deepEqual(tok.encode('abc ab'), [1, 265, 263, 261]);
  assert.deepEqual(tok.encode('é', { addBos: false }), [259, 3 + 0xc3, 3 + 0xa9]);
  assert.equal(tok.tokenType(3 + 0xc3), TokenType.BYTE);
  assert.equal(tok.decode([265, 263, 261]), 'abc ab');
  assert.equal(tok.decode([1, 265, 263, 261]), '<s> abc ab');
  assert.equal(tok.decode([259, 3 + 0xc3, 3 + 0xa9]), 'é');
});

/** The deepseek-coder GGUF vocabulary written as the tokenizer.json its model ships. */
function deepseekCoderJson(): { json: object; config: object } {
  const m = ggufMetadata(vocabPath('deepseek-coder'));
  const tokens = m.get('tokenizer.ggml.tokens') as string[];
  const types = m.get('tokenizer.ggml.token_type') as number[];
  const vocab: Record<string, number> = {};
  const added: object[] = [];
  tokens.forEach((t, id) => {
    if (types[id] === 1) vocab[t] = id;
    else added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: types[id] !== 3, special: types[id] === 3 });
  });
  const split = (Regex: string): object => ({ type: 'Split', pattern: { Regex }, behavior: 'Isolated', invert: false });
  const json = {
    version: '1.0', added_tokens: added, normalizer: { type: 'Sequence', normalizers: [] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      split('[\r\n]'), split('\\s?\\p{L}+'), split('\\s?\\p{P}+'), split('[一-龥ࠀ-一가-퟿]+'),
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] },
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<｜begin▁of▁sentence｜>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      vocab, merges: m.get('tokenizer.ggml.merges') },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: { content: '<｜begin▁of▁sentence｜>' },
    eos_token: { content: '<｜end▁of▁sentence｜>' }, clean_up_tokenization_spaces: false };
  return { json, config };
}

test('deepseek-coder as tokenizer.json gives the GGUF ids for every llama.cpp test string', () => {
  const { json, config } = deepseekCoderJson();
  const hf = tokenizerFromHF(json, config);
  const gguf = ggufTokenizer(vocabPath('deepseek-coder'));
  assert.equal(hf.vocabSize, gguf.vocabSize);
  assert.equal(hf.bos, 32013);
  assert.equal(hf.eos, 32014);
  assert.equal(hf.addBos, true);
  assert.deepEqual([...hf.eog], [...gguf.eog]);
  for (const { text, ids } of vocabCases('deepseek-coder')) {
    assert.deepEqual(hf.encode(text, { addBos: false }), ids, JSON.stringify(text));
    assert.deepEqual(hf.encode(text), gguf.encode(text));
    assert.equal(hf.decode(ids), gguf.decode(ids));
  }
  const chat = '<｜begin▁of▁sentence｜>def f():<｜fim▁hole｜>\n    return 1<｜end▁of▁sentence｜>';
  assert.deepEqual(hf.encode(chat, { parseSpecial: true }), gguf.encode(chat, { parseSpecial: true }));
});

test('tokenizer.json faults are clear errors', () => {
  const base = byteLevelJson(GPT2_PRE) as { model: object };
  assert.throws(() => tokenizerFromHF({ ...base, model: { ...base.model, type: 'Unigram' } }), /model type 'Unigram' is not supported/);
  assert.throws(() => tokenizerFromHF({ ...base, model: { ...base.model, vocab: [] } }), /model.vocab is not an object/);
  assert.throws(() => tokenizerFromHF(byteLevelJson({ type: 'Split', pattern: { Regex: 'h' }, behavior: 'Removed', invert: false })), /behavior 'Removed' is not supported/);
  assert.throws(() => tokenizerFromHF(byteLevelJson({ type: 'Whitespace' })), /pre-tokenizer 'Whitespace' is not supported/);
  assert.throws(() => tokenizerFromHF(byteLevelJson(GPT2_PRE), { bos_token: '<nope>' }), /bos_token '<nope>' is not in the vocabulary/);
});
