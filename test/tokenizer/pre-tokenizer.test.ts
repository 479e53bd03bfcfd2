// Pre-tokenizer splits, worked out by hand from llama.cpp's regexes and its collapsed-text rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSplitter, normalizePattern } from '../../src/tokenizer/regex-split.js';
import { preTypeByName, preTypeByPatterns } from '../../src/tokenizer/pre-types.js';

const split = (pre: string, text: string): string[] => makeSplitter(preTypeByName(pre).patterns)(text);

test('gpt-2: contractions, optional leading space, whitespace runs leave their last space', () => {
  assert.deepEqual(split('gpt-2', "Hello world's  123!!\n"), ['Hello', ' world', "'s", ' ', ' 123', '!!', '\n']);
  assert.deepEqual(split('gpt-2', 'naïve café'), ['naïve', ' café']);
});

test('llama3: digits in threes, case-insensitive contractions, newline runs', () => {
  assert.deepEqual(split('llama-bpe', '1234567'), ['123', '456', '7']);
  assert.deepEqual(split('llama-bpe', "I'M here"), ['I', "'M", ' here']);
  assert.deepEqual(split('llama-bpe', 'hello\n\nworld'), ['hello', '\n\n', 'world']);
  assert.equal(preTypeByName('llama-bpe').ignoreMerges, true);
});

test('qwen2: single digits', () => {
  assert.deepEqual(split('qwen2', 'ab1234'), ['ab', '1', '2', '3', '4']);
});

test('deepseek-v3: digit triples, CJK/kana runs, punctuation + ASCII word; "~" is neither \\p{P} nor \\p{S}', () => {
  assert.deepEqual(split('deepseek-v3', '12345'), ['123', '45']);
  assert.deepEqual(split('deepseek-v3', 'abc日本テキスト'), ['abc', '日本テキスト']);
  assert.deepEqual(split('deepseek-v3', ' hello,world'), [' hello', ',world']);
  // llama.cpp's ASCII member list of \p{S} lacks '~': the first '~' matches nothing and stays alone.
  assert.deepEqual(split('deepseek-v3', 'a~~b'), ['a', '~', '~b']);
});

test('deepseek-coder: newlines alone, letters, punctuation, single digits', () => {
  assert.deepEqual(split('deepseek-coder', 'foo(bar)\n12'), ['foo', '(', 'bar', ')', '\n', '1', '2']);
});

test('deepseek-llm: "\\s+$" is anchored at the end of each piece, digits stay together', () => {
  assert.deepEqual(split('deepseek-llm', 'Hello  world  '), ['Hello', ' ', ' world', '  ']);
  assert.deepEqual(split('deepseek-llm', 'ab12'), ['ab', '12']);
  // U+3000 is whitespace: replaced by U+000B before the plain regexes, so it joins \s.
  assert.deepEqual(split('deepseek-llm', 'a\u3000b'), ['a', '\u3000b']);
});

test('every named pre-tokenizer compiles and splits without losing text', () => {
  const text = "Hello, y'all! 3333 😁 ?我想在apple工作 \t\n  нещо ~ \u0301x";
  for (const name of ['default', 'llama3', 'dbrx', 'chatglm-bpe', 'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'gpt-2',
    'starcoder', 'smollm', 'qwen2', 'stablelm2', 'qwen35']) {
    const pieces = split(name, text);
    assert.equal(pieces.join(''), text, name);
    assert.ok(pieces.every((p) => p.length > 0), name);
  }
  assert.throws(() => preTypeByName('no-such-pre'), /tokenizer.ggml.pre 'no-such-pre' is not a supported pre-tokenizer/);
  assert.equal(preTypeByName(undefined).name, 'default');
});

test('Hugging Face rules: (?i:…) and literal CR/LF normalize to llama.cpp\'s spelling; known rules are recognised', () => {
  assert.equal(normalizePattern("(?i:'s|'re)|x"), "(?:'[sS]|'[rR][eE])|x");
  assert.equal(normalizePattern('[\r\n]'), '[\\r\\n]');
  const llama3Hf = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  assert.equal(preTypeByPatterns([llama3Hf])?.name, 'llama3');
  assert.equal(preTypeByPatterns([llama3Hf.replace('{1,3}', '')])?.name, 'qwen2');
  assert.equal(preTypeByPatterns(['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+', '\\p{N}'])?.name, 'deepseek-coder');
  assert.equal(preTypeByPatterns(['\\p{L}+']), undefined);
});

test('unsupported regexes are clear errors', () => {
  assert.throws(() => makeSplitter(['\\p{Han}+']), /unsupported Unicode property \\p\{Han\}/);
  assert.throws(() => makeSplitter(['[é]\\p{L}']), /mixes Unicode categories with non-ASCII/);
  assert.throws(() => makeSplitter(['(']), /does not compile/);
  assert.throws(() => normalizePattern('(?i:[a-z])'), /class inside \(\?i:…\)/);
});
