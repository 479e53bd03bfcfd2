/** tokenizerFromGGUF: a vocabulary from GGUF `tokenizer.ggml.*` metadata, with llama.cpp's defaults. */
import type { GGUFValue } from '../formats/gguf.js';
import { preTypeByName } from './pre-types.js';
import type { SpecialIds } from './specials.js';
import { createTokenizer } from './tokenizer.js';
import { TokenType, type Tokenizer } from './types.js';

type Metadata = ReadonlyMap<string, GGUFValue>;

const ID_KEYS: readonly (readonly [string, keyof SpecialIds])[] = [
  ['bos_token_id', 'bos'], ['eos_token_id', 'eos'], ['eot_token_id', 'eot'], ['eom_token_id', 'eom'],
  ['unknown_token_id', 'unk'], ['seperator_token_id', 'sep'], ['padding_token_id', 'pad'], ['mask_token_id', 'mask'],
  ['fim_pre_token_id', 'fimPre'], ['fim_suf_token_id', 'fimSuf'], ['fim_mid_token_id', 'fimMid'],
  ['fim_pad_token_id', 'fimPad'], ['fim_rep_token_id', 'fimRep'], ['fim_sep_token_id', 'fimSep'],
  // deprecated names of the FIM ids
  ['prefix_token_id', 'fimPre'], ['suffix_token_id', 'fimSuf'], ['middle_token_id', 'fimMid'],
];

function key(name: string): string {
  return `tokenizer.ggml.${name}`;
}

function stringArray(m: Metadata, name: string): string[] | undefined {
  const v = m.get(key(name));
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`${key(name)}: expected an array of strings`);
  return v as string[];
}

function numberArray(m: Metadata, name: string): number[] | undefined {
  const v = m.get(key(name));
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' || typeof x === 'bigint')) throw new Error(`${key(name)}: expected an array of numbers`);
  return v.map(Number);
}

function scalar<T extends 'string' | 'boolean'>(m: Metadata, name: string, type: T): (T extends 'string' ? string : boolean) | undefined {
  const v = m.get(key(name));
  if (v === undefined) return undefined;
  if (typeof v !== type) throw new Error(`${key(name)}: expected a ${type}, got ${typeof v}`);
  return v as T extends 'string' ? string : boolean;
}

export function tokenizerFromGGUF(metadata: Metadata): Tokenizer {
  const model = scalar(metadata, 'model', 'string');
  if (model === undefined) throw new Error(`${key('model')} is missing: not a GGUF with a vocabulary`);
  if (model !== 'llama' && model !== 'gpt2') throw new Error(`${key('model')} '${model}' is not supported (only 'llama' SentencePiece and 'gpt2' byte-level BPE)`);
  const tokens = stringArray(metadata, 'tokens');
  if (!tokens) throw new Error(`${key('tokens')} is missing`);
  const n = tokens.length;
  const words = tokens.map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
  const scores = numberArray(metadata, 'scores');
  const typeList = numberArray(metadata, 'token_type');
  for (const [name, list] of [['scores', scores], ['token_type', typeList]] as const) {
    if (list && list.length !== n) throw new Error(`${key(name)} has ${list.length} entries for ${n} tokens`);
  }
  const types = new Uint8Array(n).fill(TokenType.NORMAL);
  typeList?.forEach((t, i) => { types[i] = t >= 0 && t <= 6 ? t : TokenType.UNDEFINED; });

  const spm = model === 'llama';
  const pre = spm ? undefined : preTypeByName(scalar(metadata, 'pre', 'string'));
  const valid = (id: number): number | undefined => (id < n ? id : undefined);
  // llama.cpp's defaults per vocabulary type, replaced by ids in range from the file.
  const special: SpecialIds = spm ? { bos: valid(1), eos: valid(2), unk: valid(0) } : { bos: valid(11), eos: valid(11) };
  if (pre?.bos === false) special.bos = undefined;
  for (const [name, k] of ID_KEYS) {
    const v = metadata.get(key(name));
    if (v === undefined) continue;
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`${key(name)}: expected an integer`);
    if (Number(v) < n) special[k] = Number(v);
  }
  const merges = stringArray(metadata, 'merges');
  if (!spm && !merges) throw new Error(`${key('merges')} is missing (needed by a 'gpt2' vocabulary)`);
  return createTokenizer({
    kind: spm ? 'spm' : 'bpe',
    tokens: words,
    types,
    scores: spm ? Float32Array.from(scores ?? new Array<number>(n).fill(0)) : undefined,
    merges: spm ? undefined : merges,
    pre: pre?.patterns,
    special,
    addBos: scalar(metadata, 'add_bos_token', 'boolean') ?? (spm || pre?.bos === true),
    addEos: scalar(metadata, 'add_eos_token', 'boolean') ?? false,
    addSpacePrefix: scalar(metadata, 'add_space_prefix', 'boolean') ?? spm,
    cleanSpaces: pre?.cleanSpaces ?? false,
    ignoreMerges: pre?.ignoreMerges ?? false,
    chatTemplate: chatTemplate(metadata),
  });
}

function chatTemplate(m: Metadata): string | undefined {
  const v = m.get('tokenizer.chat_template');
  if (v !== undefined && typeof v !== 'string') throw new Error('tokenizer.chat_template: expected a string');
  return v;
}
