/**
 * Byte-level BPE pre-tokenizers by their GGUF `tokenizer.ggml.pre` name, as llama.cpp's
 * llm_tokenizer_bpe sets them up: the split regexes (llama.cpp's dialect, see regex-split.ts) and
 * the per-type flags (clean_spaces for detokenizing, ignore_merges, BOS defaults).
 */
import { normalizePattern } from './regex-split.js';

export interface PreType {
  /** The canonical name (the first of its group). */
  readonly name: string;
  readonly patterns: readonly string[];
  /** llama.cpp's detokenizer clean-up of " ." " ," " 's" … */
  readonly cleanSpaces: boolean;
  /** A word that is itself a token is not merged (llama3). */
  readonly ignoreMerges: boolean;
  /** Forces add_bos before the GGUF key is read (llama3); `false`: no BOS token at all (chatglm). */
  readonly bos?: boolean;
  /** The rule as a Hugging Face tokenizer.json writes it, where that differs from `patterns`. */
  readonly hf?: readonly string[];
}

const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN35 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;

// DeepSeek LLM's letters: cased-letter ranges of its tokenizer.json, written as escapes.
const DEEPSEEK_LETTERS =
  'A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377' +
  '\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556' +
  '\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15' +
  '\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe' +
  '\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113' +
  '\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184' +
  '\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e' +
  '\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\u{10400}-\u{1044f}\u{104b0}-\u{104d3}' +
  '\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}';
const DEEPSEEK_PUNCT = '\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+';
const DEEPSEEK_CJK = '[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+';
const DEEPSEEK_LLM = ['[\\r\\n]', `\\s?[${DEEPSEEK_LETTERS}]+`, DEEPSEEK_PUNCT, '\\s+$', DEEPSEEK_CJK, '\\p{N}+'];
const DEEPSEEK_V3 = [
  '\\p{N}{1,3}',
  '[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+',
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

type Def = Omit<PreType, 'name' | 'ignoreMerges'> & { readonly ignoreMerges?: boolean };
const GROUPS: readonly (readonly [readonly string[], Def])[] = [
  [['default'], { patterns: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'], cleanSpaces: true }],
  [['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'],
    { patterns: [LLAMA3], cleanSpaces: true, ignoreMerges: true, bos: true }],
  [['dbrx', 'smaug-bpe'], { patterns: [LLAMA3], cleanSpaces: true }],
  [['chatglm-bpe', 'glm4'], { patterns: [LLAMA3], cleanSpaces: true, bos: false }],
  [['deepseek-llm'], { patterns: DEEPSEEK_LLM, cleanSpaces: false, hf: [...DEEPSEEK_LLM.slice(0, -1), '\\p{N}'] }],
  [['deepseek-coder'], { patterns: ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', DEEPSEEK_CJK, '\\p{N}'], cleanSpaces: false }],
  [['deepseek-v3'], { patterns: DEEPSEEK_V3, cleanSpaces: false }],
  [['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v1-en', 'jina-v2-es', 'jina-v2-de', 'jina-v2-code',
    'roberta-bpe', 'a.x-4.0', 'mellum', 'mpt', 'olmo', 'jais', 'exaone4'], { patterns: [GPT2], cleanSpaces: true }],
  [['starcoder', 'refact', 'codeshell', 'exaone', 'minerva-7b'], { patterns: ['\\p{N}', GPT2], cleanSpaces: true }],
  [['smollm', 'command-r'], { patterns: ['\\p{N}', GPT2], cleanSpaces: false }],
  [['qwen2', 'deepseek-r1-qwen', 'kormo'], { patterns: [QWEN2], cleanSpaces: false }],
  [['stablelm2', 'megrez'], { patterns: [QWEN2], cleanSpaces: true }],
  [['qwen35'], { patterns: [QWEN35], cleanSpaces: false }],
];

const BY_NAME = new Map<string, PreType>();
for (const [names, def] of GROUPS) {
  const type: PreType = { ...def, name: names[0], ignoreMerges: def.ignoreMerges ?? false };
  for (const n of names) BY_NAME.set(n, type);
}

/** The pre-tokenizer a GGUF names; a missing name is llama.cpp's 'default'. */
export function preTypeByName(name: string | undefined): PreType {
  const t = BY_NAME.get(name ?? 'default');
  if (!t) throw new Error(`tokenizer.ggml.pre '${name}' is not a supported pre-tokenizer (supported: ${[...BY_NAME.keys()].join(', ')})`);
  return t;
}

/** The known pre-tokenizer whose Hugging Face rule is `patterns` (normalized), if any. */
export function preTypeByPatterns(patterns: readonly string[]): PreType | undefined {
  const key = JSON.stringify(patterns.map(normalizePattern));
  for (const [names] of GROUPS) {
    const t = BY_NAME.get(names[0])!;
    if (JSON.stringify((t.hf ?? t.patterns).map(normalizePattern)) === key) return t;
  }
  return undefined;
}

export const GPT2_PATTERN = GPT2;
