// llama.cpp's own runs of stories260K (shared/fixtures/stories260K/greedy.json): the prompt ids, the
// BOS decision and the detokenized text, from the GGUF vocabulary and from llama2.c's tok512.bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tokenizerFromLlama2c, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { ggufTokenizer, shared } from './fixtures.js';

interface Step { token: number; piece: string }
interface Result {
  prompt: string; prompt_tokens: number[]; bos_added: boolean; input_ids: number[];
  generated_ids: number[]; generated_text: string; full_text: string; steps: Step[];
}
const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')) as { results: Result[] };
const TOK512 = shared('models/stories260K/tok512.bin');

const sources: [string, () => Tokenizer][] = [
  ['stories260K.gguf', () => ggufTokenizer(shared('models/stories260K/stories260K.gguf'))],
  ['tok512.bin', () => tokenizerFromLlama2c(TOK512, 512)],
];

for (const [what, load] of sources) {
  test(`${what}: prompts, BOS and detokenization as llama.cpp`, () => {
    const tok = load();
    assert.equal(tok.vocabSize, 512);
    assert.equal(tok.bos, 1);
    assert.equal(tok.eos, 2);
    assert.deepEqual([...tok.eog], [2]);
    assert.equal(greedy.results.length, 4);
    for (const r of greedy.results) {
      assert.deepEqual(tok.encode(r.prompt, { addBos: false }), r.prompt_tokens, r.prompt);
      assert.equal(tok.addBos, r.bos_added);
      assert.deepEqual(tok.encode(r.prompt), r.input_ids);
      assert.equal(tok.decode([...r.prompt_tokens, ...r.generated_ids]), r.full_text);
      assert.equal(tok.decode(r.generated_ids), r.generated_text);
      for (const s of r.steps) assert.equal(tok.tokenText(s.token), s.piece);
    }
  });
}

test('tok512.bin holds the GGUF vocabulary: same texts and types (spaces written as ▁, <s> without newlines)', () => {
  const a = sources[0][1]();
  const b = sources[1][1]();
  for (let id = 0; id < 512; id++) {
    assert.equal(b.tokenText(id), a.tokenText(id), `id ${id}`);
    assert.equal(b.tokenType(id), a.tokenType(id), `id ${id}`);
  }
  assert.equal(b.tokenText(1), '<s>');
  assert.equal(b.tokenType(1), TokenType.CONTROL);
  assert.equal(b.tokenType(0), TokenType.UNKNOWN);
  assert.equal(b.tokenType(3 + 0x0a), TokenType.BYTE);
});

test('tok512.bin: wrong vocabulary size or a truncated file is a clear error', () => {
  assert.throws(() => tokenizerFromLlama2c(TOK512, 500), /bytes left after 500 tokens: wrong vocabulary size/);
  assert.throws(() => tokenizerFromLlama2c(TOK512, 600), /truncated at token 512 of 600/);
  assert.throws(() => tokenizerFromLlama2c(TOK512, 2), /at least 3/);
});
