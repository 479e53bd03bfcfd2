/**
 * tokenizerFromLlama2c: llama2.c's tokenizer.bin (e.g. tok512.bin): i32 max_token_length, then per
 * token f32 score, i32 byte length, the bytes. The token count is not stored; the model says it.
 * llama2.c writes '▁' as a space and BOS / EOS (ids 1, 2) as "\n<s>\n" / "\n</s>\n"; id 0 is <unk>.
 * It is Llama 2's SentencePiece vocabulary, tokenized as llama.cpp does a 'llama' GGUF.
 */
import * as fs from 'node:fs';
import { createTokenizer } from './tokenizer.js';
import { TokenType, type Tokenizer } from './types.js';

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

export function tokenizerFromLlama2c(path: string, vocabSize: number): Tokenizer {
  if (!(Number.isInteger(vocabSize) && vocabSize >= 3)) throw new Error(`${path}: vocabulary size ${vocabSize} must be an integer of at least 3 (<unk>, <s>, </s>)`);
  const buf = fs.readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  if (buf.length < 4) throw new Error(`${path}: truncated: no max_token_length header`);
  const maxLen = view.getInt32(0, true);
  const tokens: string[] = [];
  const scores = new Float32Array(vocabSize);
  const types = new Uint8Array(vocabSize).fill(TokenType.NORMAL);
  let off = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (off + 8 > buf.length) throw new Error(`${path}: truncated at token ${id} of ${vocabSize} (byte ${off} of ${buf.length})`);
    scores[id] = view.getFloat32(off, true);
    const len = view.getInt32(off + 4, true);
    off += 8;
    if (len < 0 || len > maxLen || off + len > buf.length) throw new Error(`${path}: token ${id} has length ${len} (max_token_length ${maxLen}, ${buf.length - off} bytes left)`);
    let text: string;
    try {
      text = utf8.decode(buf.subarray(off, off + len));
    } catch {
      throw new Error(`${path}: token ${id} is not valid UTF-8`);
    }
    off += len;
    if (id === 0) types[id] = TokenType.UNKNOWN;
    else if (id === 1 || id === 2) { text = text.trim(); types[id] = TokenType.CONTROL; }
    else if (BYTE_TOKEN.test(text)) types[id] = TokenType.BYTE;
    else text = text.replaceAll(' ', '\u2581');
    tokens.push(text);
  }
  if (off !== buf.length) throw new Error(`${path}: ${buf.length - off} bytes left after ${vocabSize} tokens: wrong vocabulary size?`);
  return createTokenizer({
    kind: 'spm', tokens, types, scores, special: { unk: 0, bos: 1, eos: 2 },
    addBos: true, addEos: false, addSpacePrefix: true, cleanSpaces: false, ignoreMerges: false,
  });
}
