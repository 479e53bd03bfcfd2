/**
 * tokenizerFromHF: a Hugging Face tokenizer.json (BPE model) with its tokenizer_config.json, read the
 * way llama.cpp's converter reads them into a GGUF, so that both give the same ids:
 * - a ByteLevel pre-tokenizer or decoder makes a byte-level vocabulary; its Split / Digits /
 *   ByteLevel steps become split regexes, and a rule llama.cpp knows by name (gpt-2, llama-bpe,
 *   qwen2, deepseek-llm, deepseek-coder, deepseek-v3 …) is replaced by llama.cpp's own version;
 * - otherwise it is a SentencePiece-style vocabulary ('▁', <0xNN> byte fallback) merged by rank;
 * - added tokens are control tokens when marked special or looking special (<|…|>, <｜…｜>),
 *   user-defined tokens otherwise; ids missing from both lists become unused "[PAD<id>]".
 */
import { GPT2_PATTERN, preTypeByPatterns } from './pre-types.js';
import type { SpecialIds } from './specials.js';
import { createTokenizer } from './tokenizer.js';
import { TokenType, type Tokenizer } from './types.js';

type Json = Record<string, unknown>;

interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(what: string): never {
  throw new Error(`tokenizer.json: ${what}`);
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** convert_hf_to_gguf's does_token_look_special. */
function looksSpecial(t: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) || (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) || (t.startsWith('<unused') && t.endsWith('>'));
}

function addedTokens(tj: Json, config: Json): AddedToken[] {
  const out = new Map<number, AddedToken>();
  const add = (id: unknown, v: unknown, where: string): void => {
    if (!isObject(v) || !isId(id) || typeof v.content !== 'string') fail(`${where}: an entry needs an integer id and a string content`);
    out.set(id, { id, content: v.content, special: v.special === true, lstrip: v.lstrip === true, rstrip: v.rstrip === true });
  };
  const list = tj.added_tokens ?? [];
  if (!Array.isArray(list)) fail('added_tokens is not an array');
  for (const v of list) add(isObject(v) ? v.id : undefined, v, 'added_tokens');
  const decoder = config.added_tokens_decoder;
  if (isObject(decoder)) for (const [id, v] of Object.entries(decoder)) add(Number(id), v, 'tokenizer_config added_tokens_decoder');
  return [...out.values()];
}

function mergeList(model: Json): string[] {
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) fail('model.merges is not an array');
  return merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    return fail(`model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
}

/** Every pre-tokenizer node of a (possibly nested) Sequence, in order. */
function flatten(node: unknown, listKey: string): Json[] {
  if (node === null || node === undefined) return [];
  if (!isObject(node)) fail(`a ${listKey} entry is not an object`);
  if (node.type === 'Sequence') {
    const list = node[listKey];
    if (!Array.isArray(list)) fail(`Sequence without ${listKey}`);
    return list.flatMap((n) => flatten(n, listKey));
  }
  return [node];
}

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The split regexes of byte-level pre-tokenizer steps. */
function splitPatterns(steps: readonly Json[]): string[] {
  return steps.flatMap((s): string[] => {
    switch (s.type) {
      case 'Split': {
        const p = s.pattern;
        if (s.behavior !== 'Isolated' || s.invert === true) fail(`Split with behavior '${String(s.behavior)}'${s.invert === true ? ' inverted' : ''} is not supported (Isolated only)`);
        if (isObject(p) && typeof p.Regex === 'string') return [p.Regex];
        if (isObject(p) && typeof p.String === 'string') return [escapeRegex(p.String)];
        return fail('Split without a Regex or String pattern');
      }
      case 'Digits':
        return [s.individual_digits === true ? '\\p{N}' : '\\p{N}+'];
      case 'ByteLevel':
        return s.use_regex === false ? [] : [GPT2_PATTERN];
      default:
        return fail(`pre-tokenizer '${String(s.type)}' is not supported`);
    }
  });
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** The special tokens TemplateProcessing puts before and after a single sequence. */
function template(tj: Json): { first?: string; last?: string } {
  const proc = flatten(tj.post_processor, 'processors').find((p) => p.type === 'TemplateProcessing');
  const single = proc?.single;
  if (!Array.isArray(single) || single.length === 0) return {};
  const specialId = (item: unknown): string | undefined => {
    const st = isObject(item) ? item.SpecialToken : undefined;
    return isObject(st) && typeof st.id === 'string' ? st.id : undefined;
  };
  return { first: specialId(single[0]), last: single.length > 1 ? specialId(single[single.length - 1]) : undefined };
}

function chatTemplate(config: Json): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.filter((e): e is Json => isObject(e) && typeof e.template === 'string');
    return (named.find((e) => e.name === 'default') ?? named[0])?.template as string | undefined;
  }
  return undefined;
}

export function tokenizerFromHF(tokenizerJson: object, tokenizerConfig: object = {}): Tokenizer {
  const tj = tokenizerJson as Json;
  const config = tokenizerConfig as Json;
  const model = tj.model;
  if (!isObject(model)) fail('no model');
  if (model.type !== undefined && model.type !== 'BPE') fail(`model type '${String(model.type)}' is not supported (BPE only)`);
  if (!isObject(model.vocab)) fail('model.vocab is not an object');

  const entries = Object.entries(model.vocab);
  const added = addedTokens(tj, config);
  let size = 0;
  for (const [t, id] of entries) {
    if (!isId(id)) fail(`model.vocab['${t}'] is not a token id`);
    size = Math.max(size, id + 1);
  }
  for (const a of added) size = Math.max(size, a.id + 1);
  const tokens = new Array<string | undefined>(size);
  const types = new Uint8Array(size).fill(TokenType.NORMAL);
  for (const [t, id] of entries) tokens[id as number] = t;
  for (const a of added) {
    tokens[a.id] = a.content;
    types[a.id] = a.special || looksSpecial(a.content) ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  for (let i = 0; i < size; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = TokenType.UNUSED; }
  const words = tokens as string[];
  const idOf = new Map(words.map((t, id) => [t, id]));

  const preSteps = flatten(tj.pre_tokenizer, 'pretokenizers');
  const byteLevel = [...preSteps, ...flatten(tj.decoder, 'decoders')].some((s) => s.type === 'ByteLevel');
  const unkText = tokenContent(model.unk_token) ?? tokenContent(config.unk_token);
  const special: SpecialIds = {};
  const idFor = (what: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const id = idOf.get(text);
    if (id === undefined) fail(`${what} '${text}' is not in the vocabulary`);
    return id;
  };
  special.unk = idFor('unk_token', unkText);
  if (special.unk !== undefined && types[special.unk] === TokenType.NORMAL) types[special.unk] = TokenType.UNKNOWN;
  const tpl = template(tj);
  special.bos = idFor('bos_token', tokenContent(config.bos_token) ?? tpl.first);
  special.eos = idFor('eos_token', tokenContent(config.eos_token) ?? tpl.last);
  special.pad = idFor('pad_token', tokenContent(config.pad_token));
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : tpl.first !== undefined ? true : undefined;
  const addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : tpl.last !== undefined;
  const lstrip = new Set(added.filter((a) => a.lstrip).map((a) => a.id));
  const rstrip = new Set(added.filter((a) => a.rstrip).map((a) => a.id));
  const common = { tokens: words, types, merges: mergeList(model), special, addEos, lstrip, rstrip, chatTemplate: chatTemplate(config) };

  if (byteLevel) {
    const patterns = splitPatterns(preSteps);
    const known = preTypeByPatterns(patterns);
    const clean = typeof config.clean_up_tokenization_spaces === 'boolean' ? config.clean_up_tokenization_spaces : false;
    if (known?.bos === false) special.bos = undefined;
    return createTokenizer({
      ...common, kind: 'bpe', pre: known?.patterns ?? patterns,
      addBos: addBos ?? known?.bos === true, addSpacePrefix: false,
      cleanSpaces: known ? known.cleanSpaces : clean,
      ignoreMerges: typeof model.ignore_merges === 'boolean' ? model.ignore_merges : known?.ignoreMerges ?? false,
    });
  }
  // SentencePiece style: byte tokens, and a space prefix from a Prepend('▁') normalizer or a Metaspace.
  const other = preSteps.find((s) => s.type !== 'Metaspace');
  if (other) fail(`pre-tokenizer '${String(other.type)}' without ByteLevel is not supported (SentencePiece style takes Metaspace only)`);
  words.forEach((t, id) => { if (types[id] === TokenType.NORMAL && BYTE_TOKEN.test(t)) types[id] = TokenType.BYTE; });
  const prepends = flatten(tj.normalizer, 'normalizers').some((n) => n.type === 'Prepend' && n.prepend === '\u2581') ||
    preSteps.some((s) => s.type === 'Metaspace' && s.prepend_scheme !== 'never' && s.add_prefix_space !== false);
  return createTokenizer({
    ...common, kind: 'spm', addBos: addBos ?? true, addSpacePrefix: prepends, cleanSpaces: false, ignoreMerges: false,
    fuseUnk: model.fuse_unk === true,
  });
}
