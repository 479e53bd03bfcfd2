/** The stories260K tokenizer (512-token SentencePiece vocabulary) from the shared read-only fixture. */
import { fileURLToPath } from 'node:url';
import { openGGUF } from '../../src/formats/gguf.js';
import { tokenizerFromGGUF, type Tokenizer } from '../../src/tokenizer/index.js';

export const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));

let cached: Tokenizer | undefined;
export function storiesTokenizer(): Tokenizer {
  if (!cached) {
    const f = openGGUF(shared('models/stories260K/stories260K.gguf'));
    try { cached = tokenizerFromGGUF(f.metadata); } finally { f.close(); }
  }
  return cached;
}
