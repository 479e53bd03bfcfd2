/** Paths to the read-only fixtures in <repo>/../shared and readers for llama.cpp's tokenizer test files. */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openGGUF } from '../../src/formats/gguf.js';
import { tokenizerFromGGUF, type Tokenizer } from '../../src/tokenizer/index.js';

export const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));

export const VOCABS = ['llama-spm', 'gpt-2', 'deepseek-llm', 'deepseek-coder'] as const;
export type VocabName = (typeof VOCABS)[number];

export const vocabPath = (name: VocabName): string => shared(`models/llama-cpp-vocab/ggml-vocab-${name}.gguf`);

export function ggufMetadata(path: string): Map<string, import('../../src/formats/gguf.js').GGUFValue> {
  const f = openGGUF(path);
  try {
    return f.metadata;
  } finally {
    f.close();
  }
}

const cache = new Map<string, Tokenizer>();
export function ggufTokenizer(path: string): Tokenizer {
  let t = cache.get(path);
  if (!t) { t = tokenizerFromGGUF(ggufMetadata(path)); cache.set(path, t); }
  return t;
}

export interface VocabCase { readonly text: string; readonly ids: number[] }

/**
 * test-tokenizer-0's reading: the .inp strings are separated by "\n__ggml_vocab_test__\n" (the file
 * ends with one), the .out has one line of space-separated ids per string.
 */
export function vocabCases(name: VocabName): VocabCase[] {
  const raw = fs.readFileSync(`${vocabPath(name)}.inp`, 'utf8');
  const texts: string[] = [];
  const sep = '\n__ggml_vocab_test__\n';
  for (let pos = 0; pos < raw.length;) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) { texts.push(raw.slice(pos)); break; }
    texts.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const lines = fs.readFileSync(`${vocabPath(name)}.out`, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length !== texts.length) throw new Error(`${name}: ${texts.length} strings but ${lines.length} id lines`);
  return texts.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(' ').map(Number) }));
}
