// DeepSeek-V3 / V4 tokenizers: the packaged V3 tokenizer.json, V4's added-token table, spec §12's
// known tokenisations, and a model directory's own tokenizer.json taking precedence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deepseekTokenizer, TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { deepseekPackageFile } from '../../src/tokenizer/deepseek.js';
import { deepseekV4AddedTokens } from '../../src/tokenizer/deepseek-v4-added-tokens.js';
import { shared } from './fixtures.js';

type Json = Record<string, unknown>;
const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
const packaged = (): Json => readJson(deepseekPackageFile('tokenizer.json'));
const v3 = (): Tokenizer => deepseekTokenizer('v3');
const v4 = (): Tokenizer => deepseekTokenizer('v4');

const MIXED = [
  'Hello, world! 你好，世界。 The year 2024 has 365 days; π≈3.14159.',
  '🦙🚀 naïve café 👩‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n\tTabs  and   spaces\r\n',
  '日本語のテキスト カタカナ 한국어 Ünïcödé 1234567890 ١٢٣ x=y+1; if (a<b) { return "ok"; }',
  "  leading and trailing  \n\n  I'm sure it's fine, isn't it? DON'T ... 「引用」",
].join('');

test('the V4 added-token table expands to the reconstructed table of spec §12 exactly', () => {
  const expected = (readJson(shared('spec/testdata/dsv4_added_tokens_reconstructed.json')).added_tokens as Json[])
    .slice().sort((a, b) => (a.id as number) - (b.id as number));
  const table = deepseekV4AddedTokens();
  assert.equal(table.length, 1283);
  assert.equal(new Set(table.map((t) => t.id)).size, table.length, 'ids are unique');
  // Every key the shared file carries (id, content) is equal, entry for entry.
  const keys = [...new Set(expected.flatMap((e) => Object.keys(e)))];
  assert.deepEqual(keys.sort(), ['content', 'id']);
  assert.deepEqual(table.map((t) => ({ id: t.id, content: t.content })), expected);
});

test("the V4 table's V3 part has the packaged V3 file's entries and flags", () => {
  const v3Added = packaged().added_tokens as Json[];
  assert.equal(v3Added.length, 818);
  const byId = new Map(deepseekV4AddedTokens().map((t) => [t.id, t]));
  for (const a of v3Added) {
    assert.deepEqual({ single_word: false, lstrip: false, rstrip: false }, { single_word: a.single_word, lstrip: a.lstrip, rstrip: a.rstrip });
    const t = byId.get(a.id as number);
    assert.deepEqual(t && { id: t.id, content: t.content, special: t.special, normalized: t.normalized },
      { id: a.id, content: a.content, special: a.special, normalized: a.normalized }, `id ${String(a.id)}`);
  }
});

test('the packaged tokenizer.json has the pre-tokenizer, decoder and sizes of tokenizer_v3_structure.json', () => {
  const s = readJson(shared('spec/testdata/tokenizer_v3_structure.json'));
  const tj = packaged();
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const) assert.deepEqual(tj[k], s[k], k);
  const model = tj.model as Json;
  const { vocab, merges, ...options } = model;
  assert.deepEqual(options, s.model_options);
  assert.equal(Object.keys(vocab as Json).length, s.vocab_size_bpe);
  assert.equal((merges as unknown[]).length, s.merges);
  const added = tj.added_tokens as Json[];
  const [first, last] = s.added_tokens_placeholder_range as [number, number];
  const isPlaceholder = (a: Json): boolean => (a.id as number) >= first && (a.id as number) <= last;
  assert.deepEqual(added.filter((a) => !isPlaceholder(a)), s.added_tokens_non_placeholder);
  assert.equal(added.filter(isPlaceholder).length, last - first + 1);
});

test('V4: the known tokenisations of spec §12 (special tokens matched)', () => {
  const tok = v4();
  assert.deepEqual(tok.encode('<｜User｜>你好<｜Assistant｜><think>推理</think>答案<｜end▁of▁sentence｜>', { parseSpecial: true }),
    [128803, 30594, 128804, 128821, 36101, 128822, 7624, 1]);
  assert.deepEqual(tok.encode('<｜begin▁of▁sentence｜><｜User｜>ABCD<｜Assistant｜></think>', { parseSpecial: true }),
    [0, 128803, 51453, 128804, 128822]);
});

test('V4 and V3 BOS / EOS, vocabulary size and configuration', () => {
  const t4 = v4();
  assert.deepEqual([t4.bos, t4.eos, t4.addBos, t4.addEos, t4.vocabSize, t4.chatTemplate], [0, 1, false, false, 129280, undefined]);
  assert.ok(t4.eog.has(1));
  assert.equal(t4.encode('ABCD')[0], 51453, 'no BOS prepended');
  const t3 = v3();
  // The V3 config adds BOS (its chat template writes the BOS text, which the chat layer then drops).
  assert.deepEqual([t3.bos, t3.eos, t3.addBos, t3.addEos, t3.vocabSize], [0, 1, true, false, 128815]);
  assert.ok(t3.chatTemplate?.includes('bos_token'));
  assert.deepEqual(t3.encode('ABCD'), [0, 51453]);
  for (const t of [t3, t4]) assert.deepEqual([0, 1, 2].map((id) => t.tokenText(id)), ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜▁pad▁｜>']);
});

test('V4 has <think>, </think>, ｜DSML｜, <｜latest_reminder｜> as single tokens; V3 does not', () => {
  const t4 = v4();
  const t3 = v3();
  const cases = [['<think>', 128821], ['</think>', 128822], ['｜DSML｜', 128825], ['<｜latest_reminder｜>', 128828]] as const;
  for (const [text, id] of cases) {
    assert.equal(t4.tokenId(text), id, text);
    assert.deepEqual(t4.encode(text, { parseSpecial: true }), [id], text);
    assert.equal(t3.tokenId(text), undefined, text);
    const ids = t3.encode(text, { parseSpecial: true, addBos: false });
    assert.ok(ids.length > 1 && ids.every((i) => i < 128000), `V3 splits ${text} into BPE pieces: ${ids.join(' ')}`);
    assert.equal(t3.decode(ids), text);
  }
  // The packaged V3 table is the original V3 one: 128798 / 128799 are placeholders, not R1's <think> / </think>.
  assert.equal(t3.tokenText(128798), '<｜place▁holder▁no▁798｜>');
  assert.equal(t3.tokenText(128799), '<｜place▁holder▁no▁799｜>');
});

test('V4: <think> and ｜DSML｜ are user-defined (always matched, always rendered); <｜User｜> is a control token', () => {
  const tok = v4();
  assert.equal(tok.tokenType(128821), TokenType.USER_DEFINED);
  assert.equal(tok.tokenType(128825), TokenType.USER_DEFINED);
  assert.equal(tok.tokenType(128803), TokenType.CONTROL);
  assert.deepEqual(tok.encode('<think>x</think>'), [128821, tok.encode('x')[0], 128822]);
  assert.ok(!tok.encode('<｜User｜>').includes(128803), 'control tokens need parseSpecial');
  assert.equal(tok.decode([128803, 128821, 51453, 128822, 1], { skipSpecial: true }), '<think>ABCD</think>');
});

test('pre-tokenisation: digits in groups of three, CJK runs split from Latin letters', () => {
  const tok = v4();
  const pieces = (text: string): string[] => tok.encode(text).map((id) => new TextDecoder().decode(tok.piece(id)));
  assert.deepEqual(pieces('1234567'), ['123', '456', '7']);
  for (const p of pieces('abc你好def')) assert.ok(!(/[a-z]/.test(p) && /[\u4e00-\u9fa5]/.test(p)), `piece ${p} mixes Latin and CJK`);
});

test('decode(encode(x)) gives x back on mixed English / Chinese / digits / emoji, V3 and V4 alike', () => {
  const t3 = v3();
  const t4 = v4();
  const ids = t4.encode(MIXED);
  assert.equal(t4.decode(ids), MIXED);
  // Same BPE: V3 gives the same ids for text without added tokens.
  assert.deepEqual(t3.encode(MIXED, { addBos: false }), ids);
  for (const line of MIXED.split('\n')) assert.equal(t4.decode(t4.encode(line)), line);
});

test('the stream decoder never emits part of a UTF-8 character', () => {
  const tok = v4();
  const text = `🦙𝔘 ${MIXED}`;
  const ids = tok.encode(text);
  const d = tok.decoder();
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  for (const s of out) {
    assert.ok(!s.includes('\ufffd'), `replacement character in ${JSON.stringify(s)}`);
    assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s), 'lone surrogate');
  }
  assert.equal(out.join(''), text);
  // 🦙 (4 bytes) is three byte-level tokens here: the first two complete nothing.
  assert.deepEqual(out.slice(0, 3), ['', '', '🦙']);
});

test("a model directory's own tokenizer.json wins over the packaged one", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-ds-tok-'));
  try {
    // Byte-level BPE over "a", "b", "ab", "Ġ" with one merge, and an EOS.
    const tj = {
      model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, 'Ġ': 3 }, merges: ['a b'] },
      added_tokens: [{ id: 4, content: '<｜end▁of▁sentence｜>', special: true }],
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
      decoder: { type: 'ByteLevel' },
    };
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<｜end▁of▁sentence｜>', add_bos_token: false }));
    const tok = deepseekTokenizer('v4', dir);
    assert.equal(tok.vocabSize, 5);
    assert.equal(tok.eos, 4);
    assert.deepEqual(tok.encode('abab a'), [2, 2, 3, 0]);
    // Without a tokenizer.json the packaged one is used.
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    assert.equal(deepseekTokenizer('v4', dir), v4());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad version is a clear error', () => {
  assert.throws(() => deepseekTokenizer('v2' as 'v3'), /version 'v2' is not 'v3' or 'v4'/);
});
