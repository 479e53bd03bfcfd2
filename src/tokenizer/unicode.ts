/**
 * Code point facts the tokenizers need, as llama.cpp defines them (src/unicode.cpp): its whitespace
 * set, the one-character "collapsed" stand-in its regex splitter uses for each code point ≥ 128,
 * GPT-2's byte ↔ character table, and UTF-8 helpers.
 */

/** Unicode White_Space, the set llama.cpp's `unicode_set_whitespace` holds. */
function isWhitespace(cp: number): boolean {
  return (cp >= 0x09 && cp <= 0x0d) || cp === 0x20 || cp === 0x85 || cp === 0xa0 || cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000;
}

/** Non-ASCII whitespace, which llama.cpp replaces by U+000B before running a plain (wregex) split. */
export const NON_ASCII_WHITESPACE = /[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/g;

/**
 * Stand-ins of the collapsed text (unicode_regex_split): whitespace → U+000B, then one byte per
 * general category; everything else (Cc, Cf, Co, Cs, Cn, Z that is not whitespace) → 0xD0.
 */
const COLLAPSED_OTHER = 0xd0;
const COLLAPSED_NUMBER = 0xd1;
const COLLAPSED_LETTER = 0xd2;
const COLLAPSED_PUNCTUATION = 0xd3;
const COLLAPSED_MARK = 0xd4;
const COLLAPSED_SYMBOL = 0xd5;

const CATEGORY_TESTS: readonly [RegExp, number][] = [
  [/\p{L}/u, COLLAPSED_LETTER], [/\p{N}/u, COLLAPSED_NUMBER], [/\p{P}/u, COLLAPSED_PUNCTUATION],
  [/\p{M}/u, COLLAPSED_MARK], [/\p{S}/u, COLLAPSED_SYMBOL],
];

// Filled on first use per code point (0 = not yet known): 1.1 MB, no start-up cost.
let collapsedTable: Uint8Array | undefined;

/** The character llama.cpp's collapsed text holds for `cp`: ASCII stays itself. */
export function collapsedCode(cp: number): number {
  if (cp < 0x80) return cp;
  collapsedTable ??= new Uint8Array(0x110000);
  let c = collapsedTable[cp];
  if (c === 0) {
    c = COLLAPSED_OTHER;
    if (isWhitespace(cp)) c = 0x0b;
    else {
      const ch = String.fromCodePoint(cp);
      for (const [re, code] of CATEGORY_TESTS) if (re.test(ch)) { c = code; break; }
    }
    collapsedTable[cp] = c;
  }
  return c;
}

/** GPT-2's printable stand-in for each byte: 0x21–0x7E, 0xA1–0xAC, 0xAE–0xFF are themselves, the rest 256 + n. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return out;
})();

/** Inverse of BYTE_TO_CHAR, by code point. */
export const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(BYTE_TO_CHAR.map((ch, b) => [ch.charCodeAt(0), b]));

const encoder = new TextEncoder();

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Lone surrogates become U+FFFD, as UTF-8 encoding (TextEncoder) would make them. */
export function wellFormed(s: string): string {
  return /[\ud800-\udfff]/.test(s) ? s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd') : s;
}

/** Concatenates byte chunks into one array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
