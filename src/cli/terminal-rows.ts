/**
 * Where text leaves the cursor on a terminal of a given width, so that a block printed from the
 * start of a line (the chat's streamed reasoning) can be erased afterwards by moving the cursor up
 * that many rows. Widths follow wcwidth: 0 for combining marks and format characters, 2 for East
 * Asian wide/fullwidth characters and emoji, 1 otherwise. Control characters other than newline
 * are dropped and tabs become spaces, so that what is printed is what was counted.
 */

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}]$/u;
const EMOJI = /^\p{Emoji_Presentation}$/u;
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** [first, last] code points of the East Asian Wide and Fullwidth blocks. */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff],
  [0xa000, 0xa4cf], [0xa960, 0xa97f], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f], [0xff00, 0xff60], [0xffe0, 0xffe6], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff],
  [0x20000, 0x2fffd], [0x30000, 0x3fffd],
];

/** Terminal columns of one character (one code point). */
export function charColumns(ch: string): number {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x7f) return cp >= 0x20 ? 1 : 0;
  if (ZERO_WIDTH.test(ch)) return 0;
  if (EMOJI.test(ch)) return 2;
  return WIDE.some(([a, b]) => cp >= a && cp <= b) ? 2 : 1;
}

export class RowTracker {
  /** Rows below the one the tracking started on. */
  row = 0;
  /** Columns used on the current row; `columns` means a wrap is pending (the next character wraps). */
  col = 0;

  constructor(readonly columns: number) {
    if (!(columns >= 2)) throw new Error(`a terminal needs at least 2 columns, got ${columns}`);
  }

  /** Follows `text` written from the current position; returns it as it must be printed. */
  write(text: string): string {
    let out = '';
    for (const ch of text.replace(CONTROL, '')) {
      if (ch === '\n') { this.row++; this.col = 0; out += ch; continue; }
      if (ch === '\t') {
        const n = 8 - (this.col % 8);
        for (let i = 0; i < n && this.col < this.columns; i++) out += this.put(' ', 1);
        continue;
      }
      out += this.put(ch, charColumns(ch));
    }
    return out;
  }

  private put(ch: string, w: number): string {
    // A character that does not fit wraps to the next row (a wide one leaves the last column empty).
    if (w > 0 && this.col + w > this.columns) { this.row++; this.col = 0; }
    this.col += w;
    return ch;
  }
}
