/**
 * A Hugging Face tokenizer.json (+ tokenizer_config.json) as the GGUF `tokenizer.ggml.*` metadata
 * minke's and llama.cpp's GGUF loaders read: byte-level BPE → model 'gpt2' with the pre-tokenizer
 * named by its split rule; SentencePiece-style BPE (byte fallback, ▁) → model 'llama' with merge
 * ranks as scores (the token made by merge r scores −r, so the best-ranked merge wins as in HF).
 * That is exact for vocabularies converted from SentencePiece (every token reachable by a merge of
 * two of its pieces); the result is checked by tokenizing a sample text — fixed prose plus the
 * vocabulary's own pieces — both ways, and a difference is reported to the caller.
 */
import type { GGUFEntry } from '../formats/gguf-writer.js';
import { GPT2_PATTERN, preTypeByPatterns } from '../tokenizer/pre-types.js';
import { tokenizerFromGGUF, tokenizerFromHF } from '../tokenizer/index.js';
import { TokenType } from '../tokenizer/types.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Steps of a (possibly Sequence) pre-tokenizer or decoder. */
function steps(node: unknown, key: string): Json[] {
  if (!isObject(node)) return [];
  return node.type === 'Sequence' && Array.isArray(node[key]) ? (node[key] as unknown[]).flatMap((n) => steps(n, key)) : [node];
}

function splitPatterns(pre: readonly Json[]): string[] {
  return pre.flatMap((s) => {
    if (s.type === 'Split' && isObject(s.pattern)) return [String(s.pattern.Regex ?? s.pattern.String)];
    if (s.type === 'Digits') return [s.individual_digits ? '\\p{N}' : '\\p{N}+'];
    if (s.type === 'ByteLevel') return s.use_regex === false ? [] : [GPT2_PATTERN];
    return [];
  });
}

const SAMPLE = 'Hello world! 12345 naïve café — the quick brown fox\n  jumps over 3 lazy dogs. 🙂';

export interface GGUFTokenizer {
  readonly metadata: [string, GGUFEntry][];
  /** Set when the GGUF form tokenizes the sample differently from tokenizer.json. */
  readonly mismatch?: string;
}

export function ggufTokenizerMetadata(tokenizerJson: Json, tokenizerConfig: Json): GGUFTokenizer {
  const tok = tokenizerFromHF(tokenizerJson, tokenizerConfig);
  const model = tokenizerJson.model as Json;
  const merges = (Array.isArray(model.merges) ? model.merges : []).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  const pre = steps(tokenizerJson.pre_tokenizer, 'pretokenizers');
  const byteLevel = [...pre, ...steps(tokenizerJson.decoder, 'decoders')].some((s) => s.type === 'ByteLevel');
  const tokens = Array.from({ length: tok.vocabSize }, (_, i) => tok.tokenText(i));
  const meta: [string, GGUFEntry][] = [
    ['tokenizer.ggml.model', { type: 'string', value: byteLevel ? 'gpt2' : 'llama' }],
    ['tokenizer.ggml.tokens', { type: { array: 'string' }, value: tokens }],
    ['tokenizer.ggml.token_type', { type: { array: 'i32' }, value: tokens.map((_, i) => tok.tokenType(i)) }],
  ];
  if (byteLevel) {
    const known = preTypeByPatterns(splitPatterns(pre));
    if (!known) throw new Error('tokenizer.json: its pre-tokenizer split rule is not one llama.cpp knows by name; cannot write tokenizer.ggml.pre');
    meta.push(['tokenizer.ggml.pre', { type: 'string', value: known.name }], ['tokenizer.ggml.merges', { type: { array: 'string' }, value: merges }]);
  } else {
    const score = new Float32Array(tokens.length);
    const idOf = new Map(tokens.map((t, i) => [t, i]));
    merges.forEach((m, r) => {
      const id = idOf.get(m.replace(' ', ''));
      if (id !== undefined && score[id] === 0) score[id] = -(r + 1);
    });
    meta.push(['tokenizer.ggml.scores', { type: { array: 'f32' }, value: Array.from(score) }]);
  }
  const id = (key: string, v: number | undefined) => { if (v !== undefined) meta.push([`tokenizer.ggml.${key}`, { type: 'u32', value: v }]); };
  id('bos_token_id', tok.bos);
  id('eos_token_id', tok.eos);
  meta.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: tok.addBos }], ['tokenizer.ggml.add_eos_token', { type: 'bool', value: tok.addEos }]);
  if (tok.chatTemplate !== undefined) meta.push(['tokenizer.chat_template', { type: 'string', value: tok.chatTemplate }]);

  const back = tokenizerFromGGUF(new Map(meta.map(([k, e]) => [k, e.value])));
  const pieces = tokens.slice(0, 2000).flatMap((_, i) => (tok.tokenType(i) === TokenType.NORMAL ? [tok.decode([i])] : []));
  const sample = [SAMPLE, ...pieces].join(' ');
  const want = tok.encode(sample), got = back.encode(sample);
  const at = want.findIndex((t, i) => got[i] !== t);
  if (at < 0 && got.length === want.length) return { metadata: meta };
  const i = at < 0 ? want.length : at;
  return { metadata: meta, mismatch: `the GGUF vocabulary tokenizes differently from tokenizer.json (sample token ${i}: ${got[i]} instead of ${want[i]}); its merges are not those of a SentencePiece vocabulary` };
}
