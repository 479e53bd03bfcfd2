/**
 * The vocabulary as a byte trie, laid out in preorder so that a walk is a loop over flat arrays:
 * node i's subtree is [i, end[i]), so a rejected byte skips a whole subtree in one step, and
 * tokens that share a prefix have that prefix checked once.
 *
 * Which tokens take part: NORMAL and BYTE tokens with a non-empty piece (`Tokenizer.piece`, the
 * raw bytes decode emits). Control, unknown, unused and user-defined tokens never appear inside
 * constrained output; end-of-generation ids are handled apart (allowed when the value is complete).
 */
import { TokenType, type Tokenizer } from '../../tokenizer/index.js';

export class TokenTrie {
  /** Vocabulary size (mask length). */
  readonly vocabSize: number;
  /** 32-bit words of a vocabulary bitset. */
  readonly words: number;
  /** Trie nodes; node 0 is the root (the empty prefix). */
  readonly size: number;
  /** The byte on the edge into node i. */
  readonly byte: Uint8Array;
  /** Bytes from the root to node i. */
  readonly depth: Uint16Array;
  /** One past the last node of node i's subtree. */
  readonly end: Int32Array;
  /** Token ids ending at node i: ids[tokStart[i] .. tokStart[i + 1]). */
  readonly tokStart: Int32Array;
  readonly ids: Int32Array;
  readonly maxDepth: number;
  /** The node of each first byte (−1: no token starts with it). */
  readonly rootChild: Int32Array;
  /** Bytes of each token that may appear in constrained output; undefined for the others. */
  readonly pieces: (Uint8Array | undefined)[];
  /** End-of-generation ids (allowed exactly when the value is complete). */
  readonly eog: readonly number[];

  constructor(tokenizer: Tokenizer) {
    const V = tokenizer.vocabSize;
    this.vocabSize = V;
    this.words = (V + 31) >>> 5;
    this.eog = [...tokenizer.eog].filter((id) => id >= 0 && id < V);
    this.pieces = new Array(V);
    // Sort by bytes: latin1 strings compare code unit by code unit, i.e. byte order.
    const keyed: { key: string; id: number }[] = [];
    let totalBytes = 0;
    for (let id = 0; id < V; id++) {
      const type = tokenizer.tokenType(id);
      if (type !== TokenType.NORMAL && type !== TokenType.BYTE) continue;
      if (tokenizer.eog.has(id)) continue;
      const p = tokenizer.piece(id);
      if (p.length === 0) continue;
      this.pieces[id] = p;
      keyed.push({ key: latin1(p), id });
      totalBytes += p.length;
    }
    keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id - b.id));

    // Nodes are created in sorted-token order, which is preorder; a node is closed (its end set)
    // when the next token no longer shares its prefix.
    const cap = totalBytes + 1;
    const byte = new Uint8Array(cap);
    const depth = new Uint16Array(cap);
    const end = new Int32Array(cap);
    const tokStart = new Int32Array(cap + 1);
    const ids = new Int32Array(keyed.length);
    const path: number[] = [0]; // path[d] = node at depth d on the current branch
    let size = 1;
    let nIds = 0;
    let prev = '';
    let maxDepth = 0;
    for (const { key, id } of keyed) {
      let common = 0;
      while (common < key.length && common < prev.length && key.charCodeAt(common) === prev.charCodeAt(common)) common++;
      while (path.length - 1 > common) end[path.pop()!] = size;
      for (let d = common; d < key.length; d++) {
        byte[size] = key.charCodeAt(d);
        depth[size] = d + 1;
        tokStart[size] = nIds;
        path.push(size++);
      }
      ids[nIds++] = id;
      maxDepth = Math.max(maxDepth, key.length);
      prev = key;
    }
    while (path.length > 0) end[path.pop()!] = size;
    tokStart[size] = nIds;
    this.size = size;
    this.byte = byte.slice(0, size);
    this.depth = depth.slice(0, size);
    this.end = end.slice(0, size);
    this.tokStart = tokStart.slice(0, size + 1);
    this.ids = ids;
    this.maxDepth = maxDepth;
    this.rootChild = new Int32Array(256).fill(-1);
    for (let i = 1; i < size; i = end[i]) this.rootChild[byte[i]] = i;
  }
}

function latin1(bytes: Uint8Array): string {
  if (bytes.length <= 4096) return String.fromCharCode(...bytes);
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

const tries = new WeakMap<Tokenizer, TokenTrie>();

/** The trie of `tokenizer`, built once per tokenizer object. */
export function tokenTrie(tokenizer: Tokenizer): TokenTrie {
  let t = tries.get(tokenizer);
  if (!t) { t = new TokenTrie(tokenizer); tries.set(tokenizer, t); }
  return t;
}
