/**
 * JSON string content byte by byte, as transition tables: escapes, no raw control characters, and
 * well-formed UTF-8 (RFC 3629: no overlongs, no surrogates), since a byte-level token may end in
 * the middle of a character and the next token must finish it.
 *
 * A state is a small integer; table[state << 8 | byte] is the next state, LEX_REJECT, or LEX_CLOSE
 * (the unescaped '"' that ends the string).
 */

export const LEX_REJECT = -1;
export const LEX_CLOSE = -2;

const NORMAL = 0;
const ESC = 1;
const HEX4 = 2; // 2, 3, 4, 5: four to one hex digits of \uXXXX still to come
const CONT1 = 6; // continuation bytes still to come: 1, 2, 3
const CONT2 = 7;
const CONT3 = 8;
const AFTER_E0 = 9; // lead bytes whose first continuation has a narrower range
const AFTER_ED = 10;
const AFTER_F0 = 11;
const AFTER_F4 = 12;
const STATES = 13;

function build(canonical: boolean): Int8Array {
  const t = new Int8Array(STATES * 256).fill(LEX_REJECT);
  const set = (s: number, from: number, to: number, next: number) => { for (let b = from; b <= to; b++) t[(s << 8) | b] = next; };
  set(NORMAL, 0x20, 0x7f, NORMAL);
  t[(NORMAL << 8) | 0x22] = LEX_CLOSE;
  t[(NORMAL << 8) | 0x5c] = ESC;
  set(NORMAL, 0xc2, 0xdf, CONT1);
  set(NORMAL, 0xe0, 0xe0, AFTER_E0);
  set(NORMAL, 0xe1, 0xec, CONT2);
  set(NORMAL, 0xed, 0xed, AFTER_ED);
  set(NORMAL, 0xee, 0xef, CONT2);
  set(NORMAL, 0xf0, 0xf0, AFTER_F0);
  set(NORMAL, 0xf1, 0xf3, CONT3);
  set(NORMAL, 0xf4, 0xf4, AFTER_F4);
  for (const c of '"\\bfnrt') t[(ESC << 8) | c.charCodeAt(0)] = NORMAL;
  // Canonical text (JSON.stringify's spelling) never writes \/ or \u for these characters.
  if (!canonical) {
    t[(ESC << 8) | 0x2f] = NORMAL;
    t[(ESC << 8) | 0x75] = HEX4;
    for (let s = HEX4; s < HEX4 + 4; s++) {
      const next = s === HEX4 + 3 ? NORMAL : s + 1;
      set(s, 0x30, 0x39, next);
      set(s, 0x41, 0x46, next);
      set(s, 0x61, 0x66, next);
    }
  }
  set(CONT1, 0x80, 0xbf, NORMAL);
  set(CONT2, 0x80, 0xbf, CONT1);
  set(CONT3, 0x80, 0xbf, CONT2);
  set(AFTER_E0, 0xa0, 0xbf, CONT1);
  set(AFTER_ED, 0x80, 0x9f, CONT1);
  set(AFTER_F0, 0x90, 0xbf, CONT2);
  set(AFTER_F4, 0x80, 0x8f, CONT2);
  return t;
}

/** Any JSON string. */
export const FREE_LEX = build(false);
/** Only the canonical spelling (no \/, no \u): so a key's text identifies the name it spells. */
export const CANONICAL_LEX = build(true);

/** Bytes that finish the character or escape under way in lexer state `s` (the closing quote not included). */
export function lexTail(s: number): number[] {
  if (s >= HEX4 && s < HEX4 + 4) return new Array<number>(HEX4 + 4 - s).fill(0x30);
  switch (s) {
    case ESC: return [0x6e];
    case CONT1: return [0x80];
    case CONT2: case AFTER_ED: return [0x80, 0x80];
    case CONT3: case AFTER_F4: return [0x80, 0x80, 0x80];
    case AFTER_E0: return [0xa0, 0x80];
    case AFTER_F0: return [0x90, 0x80, 0x80];
    default: return [];
  }
}
