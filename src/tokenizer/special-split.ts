/**
 * Special and added tokens matched in the raw text before anything else (tokenizer_st_partition):
 * candidate tokens are taken longest first (UTF-8 length, then id), and each splits every piece of
 * text still unmatched at each of its occurrences, left to right. Control and unknown tokens take
 * part only when asked to parse special tokens; user-defined ones always do. lstrip / rstrip tokens
 * swallow the ASCII whitespace next to them.
 */
import { TokenType } from './types.js';

/** A run of text still to tokenize, or a token id. */
export type Fragment = string | number;

interface TrieNode {
  readonly next: Map<number, TrieNode>;
  id: number;
}

const ASCII_SPACE_END = /[ \t\n\v\f\r]+$/;
const isAsciiSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

export class SpecialSplitter {
  private readonly root: TrieNode = { next: new Map(), id: -1 };
  /** id → its place in the matching order */
  private readonly rank = new Map<number, number>();

  constructor(
    private readonly tokens: readonly string[],
    private readonly types: Uint8Array,
    private readonly lstrip: ReadonlySet<number>,
    private readonly rstrip: ReadonlySet<number>,
  ) {
    const ids: number[] = [];
    for (let id = 0; id < tokens.length; id++) {
      const t = types[id];
      if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED || t === TokenType.UNKNOWN) ids.push(id);
    }
    const bytes = new TextEncoder();
    const len = new Map(ids.map((id) => [id, bytes.encode(tokens[id]).length]));
    ids.sort((a, b) => len.get(b)! - len.get(a)! || a - b);
    ids.forEach((id, i) => this.rank.set(id, i));
    for (const id of ids) {
      const text = tokens[id];
      if (text.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) { child = { next: new Map(), id: -1 }; node.next.set(c, child); }
        node = child;
      }
      // Two entries with one text: the vocabulary's lookup keeps the later id, so does this.
      node.id = id;
    }
  }

  split(text: string, parseSpecial: boolean): Fragment[] {
    if (text.length === 0) return [];
    let frags: Fragment[] = [text];
    for (const id of this.present(text, parseSpecial)) {
      const t = this.tokens[id];
      const out: Fragment[] = [];
      for (const f of frags) {
        if (typeof f === 'number') { out.push(f); continue; }
        let pos = 0;
        for (let m = f.indexOf(t); m >= 0; m = f.indexOf(t, pos)) {
          const left = this.lstrip.has(id) ? f.slice(pos, m).replace(ASCII_SPACE_END, '') : f.slice(pos, m);
          if (left.length > 0) out.push(left);
          out.push(id);
          pos = m + t.length;
          if (this.rstrip.has(id)) while (pos < f.length && isAsciiSpace(f.charCodeAt(pos))) pos++;
        }
        if (pos < f.length) out.push(pos === 0 ? f : f.slice(pos));
      }
      frags = out;
    }
    return frags;
  }

  /** The candidate tokens occurring anywhere in `text`, in matching order. */
  private present(text: string, parseSpecial: boolean): number[] {
    const found = new Set<number>();
    const root = this.root.next;
    for (let i = 0; i < text.length; i++) {
      let node = root.get(text.charCodeAt(i));
      for (let j = i + 1; node; j++) {
        if (node.id >= 0) found.add(node.id);
        node = j < text.length ? node.next.get(text.charCodeAt(j)) : undefined;
      }
    }
    const ok = (id: number): boolean => parseSpecial || this.types[id] === TokenType.USER_DEFINED;
    return [...found].filter(ok).sort((a, b) => this.rank.get(a)! - this.rank.get(b)!);
  }
}
