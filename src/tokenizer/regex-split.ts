/**
 * llama.cpp's pre-tokenizer split (unicode_regex_split), reproduced: a list of regexes, each applied
 * in turn to every piece the previous ones left, where both the matches and the text between them
 * become pieces. A regex naming a Unicode category (\p{L}, \p{N}, \p{P}, \p{M}, \p{S}, \p{Lu}…) runs
 * on the "collapsed" text, one character per code point: ASCII as itself, whitespace as U+000B, every
 * other code point as its category's stand-in byte, with each \p{…} rewritten to that byte plus the
 * category's ASCII members. llama.cpp's ASCII member lists are kept as they are, so '~' is neither
 * \p{P} nor \p{S} there, as in llama.cpp. A regex without categories runs on the code points, with
 * non-ASCII whitespace replaced by U+000B and \s meaning ASCII whitespace only (std::wregex).
 */
import { collapsedCode, NON_ASCII_WHITESPACE } from './unicode.js';

interface Stage {
  /** The rule as one capturing group, for String.prototype.split. */
  readonly re: RegExp;
  readonly collapsed: boolean;
  /** Part lengths by piece, for short pieces (words recur). */
  readonly memo: Map<string, number[]>;
}

const MEMO_MAX_PIECE = 48;
const MEMO_LIMIT = 1 << 14;

/** Lengths of the non-empty parts `stage` cuts `piece` into (matches and the text between them). */
function partLengths(stage: Stage, piece: string): number[] {
  const short = piece.length <= MEMO_MAX_PIECE;
  let lengths = short ? stage.memo.get(piece) : undefined;
  if (lengths === undefined) {
    lengths = [];
    for (const part of piece.split(stage.re)) if (part.length > 0) lengths.push(part.length);
    if (short) {
      if (stage.memo.size >= MEMO_LIMIT) stage.memo.clear();
      stage.memo.set(piece, lengths);
    }
  }
  return lengths;
}

const LETTER = '\\xD2A-Za-z';
// The collapsed classes: stand-in byte, then llama.cpp's ASCII members of the category.
const CATEGORY_CLASS: Readonly<Record<string, string>> = {
  '\\p{N}': '\\xD10-9',
  '\\p{L}': LETTER, '\\p{Lu}': LETTER, '\\p{Ll}': LETTER, '\\p{Lt}': LETTER, '\\p{Lm}': LETTER, '\\p{Lo}': LETTER,
  '\\p{P}': '\\xD3!-#%-*,-/:-;?-@\\[-\\]_\\{\\}',
  '\\p{M}': '\\xD4',
  '\\p{S}': '\\xD5$+<->^`|',
};
const ASCII_SPACE = '\\t\\n\\v\\f\\r ';

/** Any \p{…}: the known ones run collapsed, others are refused there (std::regex has none either). */
function usesCategories(pattern: string): boolean {
  return pattern.includes('\\p{');
}

/** The \p{…} → collapsed-class rewrite, with llama.cpp's bracket tracking (a '[' or ']' after '\' is literal). */
function collapsePattern(pattern: string): string {
  if (/[^\x00-\x7f]/.test(pattern)) {
    throw new Error(`pre-tokenizer regex /${pattern}/ mixes Unicode categories with non-ASCII characters, which llama.cpp does not support`);
  }
  let out = '';
  let inside = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '[' && (i === 0 || pattern[i - 1] !== '\\')) { out += c; inside = true; continue; }
    if (inside && c === ']' && pattern[i - 1] !== '\\') { out += c; inside = false; continue; }
    if (c === '\\' && pattern[i + 1] === 'p' && pattern[i + 2] === '{') {
      const close = pattern.indexOf('}', i + 3);
      const cls = close < 0 ? undefined : CATEGORY_CLASS[pattern.slice(i, close + 1)];
      if (cls === undefined) throw new Error(`pre-tokenizer regex /${pattern}/: unsupported Unicode property ${pattern.slice(i, close + 1 || i + 3)}`);
      out += inside ? cls : `[${cls}]`;
      i = close;
      continue;
    }
    out += c;
  }
  return out;
}

/** \s and \S as std::wregex reads them on text whose non-ASCII whitespace became U+000B. */
function asciiSpacePattern(pattern: string): string {
  let out = '';
  let inside = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const e = pattern[i + 1];
      if (e === 's') out += inside ? ASCII_SPACE : `[${ASCII_SPACE}]`;
      else if (e === 'S' && !inside) out += `[^${ASCII_SPACE}]`;
      else if (e === 'S') throw new Error(`pre-tokenizer regex /${pattern}/: \\S inside a class is not supported`);
      else out += c + (e ?? '');
      i++;
      continue;
    }
    if (c === '[' && !inside) inside = true;
    else if (c === ']' && inside) inside = false;
    out += c;
  }
  return out;
}

/**
 * Capturing groups become non-capturing, so that the whole rule can be one capture of a
 * String.prototype.split regex (which then returns the text between matches and the matches).
 */
function nonCapturing(source: string): string {
  let out = '';
  let inside = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      if (/[1-9k]/.test(source[i + 1] ?? '')) throw new Error(`pre-tokenizer regex /${source}/: back-references are not supported`);
      out += c + (source[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '[' && !inside) inside = true;
    else if (c === ']' && inside) inside = false;
    out += c === '(' && !inside && source[i + 1] !== '?' ? '(?:' : c;
  }
  return out;
}

function compileStage(pattern: string): Stage {
  const collapsed = usesCategories(pattern);
  const source = nonCapturing(collapsed ? collapsePattern(pattern) : asciiSpacePattern(pattern));
  try {
    return { re: new RegExp(`(${source})`, collapsed ? '' : 'u'), collapsed, memo: new Map() };
  } catch (e) {
    throw new Error(`pre-tokenizer regex /${pattern}/ does not compile: ${(e as Error).message}`);
  }
}

/** A text → pieces function for llama.cpp-dialect regexes (ECMAScript syntax, \p{…} categories). */
export type Splitter = (text: string) => string[];

export function makeSplitter(patterns: readonly string[]): Splitter {
  const stages = patterns.map(compileStage);
  return (text) => splitText(text, stages);
}

/**
 * Text indexed by code point: the collapsed string (one UTF-16 unit per code point), the UTF-16
 * offset of each code point, and (for plain stages) the code point index of each UTF-16 offset.
 */
interface Indexed {
  readonly collapsed: string;
  readonly count: number;
  /** undefined: the text is ASCII, code point index = UTF-16 offset */
  readonly u16Of?: Uint32Array;
  readonly cpOf?: Uint32Array;
}

const utf16Decoder = new TextDecoder('utf-16le');

function indexText(text: string): Indexed {
  if (!/[^\x00-\x7f]/.test(text)) return { collapsed: text, count: text.length };
  const codes = new Uint16Array(text.length);
  const u16Of = new Uint32Array(text.length + 1);
  const cpOf = new Uint32Array(text.length + 1);
  let n = 0;
  for (let i = 0; i < text.length; n++) {
    const cp = text.codePointAt(i)!;
    u16Of[n] = i;
    cpOf[i] = n;
    codes[n] = collapsedCode(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  u16Of[n] = text.length;
  cpOf[text.length] = n;
  return { collapsed: utf16Decoder.decode(codes.subarray(0, n)), count: n, u16Of, cpOf };
}

function splitText(text: string, stages: readonly Stage[]): string[] {
  const ix = indexText(text);
  const u16 = (cp: number): number => (ix.u16Of ? ix.u16Of[cp] : cp);
  const cpAt = (u: number): number => (ix.cpOf ? ix.cpOf[u] : u);
  let plain: string | undefined;
  // Pieces as flat [start, end) code point pairs.
  let pieces = ix.count > 0 ? [0, ix.count] : [];
  for (const stage of stages) {
    const next: number[] = [];
    for (let p = 0; p < pieces.length; p += 2) {
      const start = pieces[p], end = pieces[p + 1];
      if (stage.collapsed) {
        let at = start;
        for (const n of partLengths(stage, ix.collapsed.slice(start, end))) next.push(at, (at += n));
      } else {
        plain ??= text.replace(NON_ASCII_WHITESPACE, '\v');
        let at16 = u16(start);
        for (const n of partLengths(stage, plain.slice(at16, u16(end)))) next.push(cpAt(at16), cpAt((at16 += n)));
      }
    }
    pieces = next;
  }
  const out = new Array<string>(pieces.length / 2);
  for (let p = 0; p < pieces.length; p += 2) out[p / 2] = text.slice(u16(pieces[p]), u16(pieces[p + 1]));
  return out;
}

/**
 * A Hugging Face regex in the dialect above: `(?i:…)` groups (which llama.cpp's copies spell out as
 * [sS] classes) become case-folded ASCII, and literal CR/LF become \r/\n escapes, so equal rules
 * compare equal as strings.
 */
export function normalizePattern(pattern: string): string {
  let out = '';
  let fold = 0; // depth inside (?i:…), counting the groups opened within it
  let inside = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\r') { out += '\\r'; continue; }
    if (c === '\n') { out += '\\n'; continue; }
    if (c === '\\') { out += c + (pattern[i + 1] ?? ''); i++; continue; }
    if (inside) {
      if (c === ']') inside = false;
      out += c;
      continue;
    }
    if (c === '[' && fold > 0) throw new Error(`pre-tokenizer regex /${pattern}/: a class inside (?i:…) is not supported`);
    if (c === '[') { inside = true; out += c; continue; }
    if (pattern.startsWith('(?i:', i)) { fold = 1; out += '(?:'; i += 3; continue; }
    if (fold > 0 && c === '(') fold++;
    if (fold > 0 && c === ')') fold--;
    out += fold > 0 && /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
  }
  return out;
}
