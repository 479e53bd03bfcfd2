/** A byte trie over a fixed set of texts: enum / const values as JSON text, property names. */
export class LiteralTrie {
  private readonly next: Map<number, number>[] = [new Map()];
  /** The tag of the text ending at each node; −1 where none ends. */
  readonly tag: number[] = [-1];
  /** Bitset of the tags below each node (itself included): which names a key prefix can still become. */
  readonly below: Uint32Array[] = [];

  constructor(texts: readonly Uint8Array[], tags: readonly number[] = texts.map(() => 0)) {
    const maxTag = Math.max(0, ...tags);
    texts.forEach((bytes, i) => {
      if (bytes.length === 0) throw new Error('an empty text cannot be a literal');
      let n = 0;
      for (const b of bytes) {
        let c = this.next[n].get(b);
        if (c === undefined) {
          c = this.next.length;
          this.next.push(new Map());
          this.tag.push(-1);
          this.next[n].set(b, c);
        }
        n = c;
      }
      this.tag[n] = tags[i];
    });
    const words = (maxTag >>> 5) + 1;
    for (let n = 0; n < this.next.length; n++) this.below.push(new Uint32Array(words));
    // Children are always created after their parent: a reverse pass sees every child first.
    for (let n = this.next.length - 1; n >= 0; n--) {
      const b = this.below[n];
      if (this.tag[n] >= 0) b[this.tag[n] >>> 5] |= 1 << (this.tag[n] & 31);
      for (const c of this.next[n].values()) for (let w = 0; w < words; w++) b[w] |= this.below[c][w];
    }
  }

  /** The node after `b` from `node`; −1 if no text continues that way. */
  child(node: number, b: number): number {
    return this.next[node].get(b) ?? -1;
  }

  /** (byte, node) of each child of `node`, in byte order. */
  children(node: number): [number, number][] {
    return [...this.next[node]].sort((a, b) => a[0] - b[0]);
  }

  isLeaf(node: number): boolean {
    return this.next[node].size === 0;
  }
}
