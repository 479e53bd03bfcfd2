// The stream decoder emits whole UTF-8 characters only: bytes of an unfinished character wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenType, type Tokenizer } from '../../src/tokenizer/index.js';
import { ggufTokenizer, shared, vocabPath } from './fixtures.js';

const stories = (): Tokenizer => ggufTokenizer(shared('models/stories260K/stories260K.gguf'));

/** Pushes `ids` one by one; every output must be whole characters (no U+FFFD, no lone surrogate). */
function stream(tok: Tokenizer, ids: readonly number[], opts = {}): string[] {
  const d = tok.decoder(opts);
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  for (const s of out) {
    assert.ok(!s.includes('\ufffd'), `replacement character in ${JSON.stringify(s)}`);
    assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s), 'lone surrogate');
  }
  return out;
}

test('byte-fallback characters come out whole, byte token by byte token (stories260K)', () => {
  const tok = stories();
  // ü ß (2 bytes), 🦙 (4 bytes), Cyrillic (2 bytes each): none is in the 512-token vocabulary ('é' is,
  // so 'café' has no byte tokens).
  const cases = [['Grüße', [0xc3, 0xbc, 0xc3, 0x9f]], ['🦙', [0xf0, 0x9f, 0xa6, 0x99]], ['мир', [0xd0, 0xbc, 0xd0, 0xb8, 0xd1, 0x80]], ['café', []]] as const;
  for (const [text, bytes] of cases) {
    const ids = tok.encode(text, { addBos: false });
    const byteIds = ids.filter((id) => tok.tokenType(id) === TokenType.BYTE);
    assert.deepEqual(byteIds.map((id) => tok.piece(id)[0]), bytes, text);
    const out = stream(tok, ids, { stripLeadingSpace: true });
    assert.equal(out.join(''), text);
    // Nothing comes out while a character is incomplete.
    let pending = 0;
    ids.forEach((id, i) => {
      if (tok.tokenType(id) !== TokenType.BYTE) return;
      const b = tok.piece(id)[0];
      pending = b >= 0xc0 ? (b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : 1) : pending - 1;
      if (pending > 0) assert.equal(out[i], '', `${text}: token ${i} completes no character`);
    });
  }
});

test('a multi-byte character split across byte-level BPE tokens (gpt-2) waits for its last byte', () => {
  const tok = ggufTokenizer(vocabPath('gpt-2'));
  const text = ' this is 🦙.cpp';
  const ids = tok.encode(text);
  assert.deepEqual(ids, [428, 318, 12520, 99, 247, 13, 20322]); // llama.cpp's .out line for this string
  const out = stream(tok, ids);
  assert.deepEqual(out, [' this', ' is', ' ', '', '🦙', '.', 'cpp', '']);
});

test('leading space: kept by default, dropped from the first piece when asked (SentencePiece)', () => {
  const tok = stories();
  const ids = tok.encode('Once upon', { addBos: false });
  assert.equal(stream(tok, ids).join(''), ' Once upon');
  assert.equal(stream(tok, ids, { stripLeadingSpace: true }).join(''), 'Once upon');
  assert.equal(tok.decode(ids), 'Once upon');
  // A leading BOS takes the first place: the space stays, as in llama.cpp.
  assert.equal(stream(tok, [1, ...ids], { stripLeadingSpace: true, skipSpecial: true }).join(''), ' Once upon');
  assert.equal(stream(tok, [1, ...ids]).join(''), '<s> Once upon');
});

test('flush gives an unfinished character as U+FFFD and the decoder starts over', () => {
  const tok = stories();
  const e = tok.encode('ü', { addBos: false }).filter((id) => tok.tokenType(id) === TokenType.BYTE);
  const d = tok.decoder();
  assert.equal(d.push(e[0]), '');
  assert.equal(d.flush(), '\ufffd');
  assert.equal(d.push(e[0]) + d.push(e[1]), 'ü');
});
