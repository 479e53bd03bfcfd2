/**
 * The two merge loops of llama.cpp, over a linked list of symbols with a priority queue of adjacent
 * pairs. A queued pair goes stale when either side has changed since (a side only ever grows, or
 * empties when merged into its left neighbour), so comparing the sides' lengths finds stale pairs.
 */

/** A binary heap of candidate pairs in typed arrays (no allocation per pair). */
class PairQueue {
  private key = new Float64Array(64);
  private left = new Int32Array(64);
  private right = new Int32Array(64);
  private leftLen = new Int32Array(64);
  private rightLen = new Int32Array(64);
  private heap = new Int32Array(64);
  private free = new Int32Array(64);
  private size = 0;
  private slots = 0;
  private freeCount = 0;

  /** `higherFirst`: scores (highest first); otherwise ranks (lowest first); ties: leftmost first. */
  private higherFirst = false;

  /** Empties the queue for a new merge loop (one queue serves every loop: they never nest). */
  reset(higherFirst: boolean): void {
    this.higherFirst = higherFirst;
    this.size = this.slots = this.freeCount = 0;
  }

  get length(): number {
    return this.size;
  }

  private before(a: number, b: number): boolean {
    const ka = this.key[a], kb = this.key[b];
    if (ka !== kb) return this.higherFirst ? ka > kb : ka < kb;
    return this.left[a] < this.left[b];
  }

  private grow(): void {
    const n = this.key.length * 2;
    const re = <T extends Float64Array | Int32Array>(a: T): T => { const b = new (a.constructor as new (n: number) => T)(n); b.set(a); return b; };
    this.key = re(this.key); this.left = re(this.left); this.right = re(this.right);
    this.leftLen = re(this.leftLen); this.rightLen = re(this.rightLen); this.heap = re(this.heap); this.free = re(this.free);
  }

  push(key: number, left: number, right: number, leftLen: number, rightLen: number): void {
    let e: number;
    if (this.freeCount > 0) e = this.free[--this.freeCount];
    else {
      if (this.slots === this.key.length) this.grow();
      e = this.slots++;
    }
    this.key[e] = key; this.left[e] = left; this.right[e] = right; this.leftLen[e] = leftLen; this.rightLen[e] = rightLen;
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = e;
  }

  /** Removes the first pair and returns [left, right, leftLen, rightLen] through `out`. */
  pop(out: Int32Array): void {
    const h = this.heap;
    const top = h[0];
    const last = h[--this.size];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const c = l + 1 < this.size && this.before(h[l + 1], h[l]) ? l + 1 : l;
      if (!this.before(h[c], last)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
    out[0] = this.left[top]; out[1] = this.right[top]; out[2] = this.leftLen[top]; out[3] = this.rightLen[top];
    this.free[this.freeCount++] = top;
  }
}

const queue = new PairQueue();
const popped = new Int32Array(4);

/**
 * Merges `symbols` (modified in place) while some adjacent pair has a key; returns the final pieces.
 * `keyOf` is undefined for pairs that may not merge.
 */
function mergeLoop(symbols: string[], keyOf: (left: string, right: string) => number | undefined, higherFirst: boolean): string[] {
  const n = symbols.length;
  if (n < 2) return symbols;
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
  queue.reset(higherFirst);
  const add = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const l = symbols[left], r = symbols[right];
    const key = keyOf(l, r);
    if (key !== undefined) queue.push(key, left, right, l.length, r.length);
  };
  for (let i = 1; i < n; i++) add(i - 1, i);
  const p = popped;
  while (queue.length > 0) {
    queue.pop(p);
    const left = p[0], right = p[1];
    const l = symbols[left], r = symbols[right];
    if (l.length === 0 || r.length === 0 || l.length !== p[2] || r.length !== p[3]) continue;
    symbols[left] = l + r;
    symbols[right] = '';
    const after = next[right];
    next[left] = after;
    if (after >= 0) prev[after] = left;
    add(prev[left], left);
    add(left, after);
  }
  return symbols.filter((s) => s.length > 0);
}

/** GPT-2 BPE (llm_tokenizer_bpe_session): the pair with the lowest merge rank first, leftmost on ties. */
export function mergeByRank(symbols: string[], rankOf: (left: string, right: string) => number | undefined): string[] {
  return mergeLoop(symbols, rankOf, false);
}

/**
 * SentencePiece BPE (llm_tokenizer_spm_session): any adjacent pair whose concatenation is a token
 * merges, the one whose token has the highest score first, leftmost on ties.
 */
export function mergeByScore(symbols: string[], scoreOf: (text: string) => number | undefined): string[] {
  return mergeLoop(symbols, (l, r) => scoreOf(l + r), true);
}

/** The code points of `s` as strings (the initial symbols of both loops). */
export function codePoints(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { out.push(s.slice(i, i + 2)); i++; } else out.push(s[i]);
  }
  return out;
}
