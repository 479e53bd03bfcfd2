/**
 * Token masks: the vocabulary entries that can come next, found by walking the token trie with
 * the automaton; a rejected byte prunes the node's subtree, so shared prefixes are checked once.
 *
 * Walking the whole trie per token would cost most inside a string, where nearly every token is
 * allowed. But a frame's behaviour does not depend on its parent until it ends (frames.ts), so the
 * walk of the top frame alone (parent = BOUNDARY) is done once per frame key and cached: the
 * tokens it accepts by itself as a bitset, plus the trie nodes where it ends or hands a byte on.
 * Per token, only those few subtrees are walked again with the real parent.
 */
import { BOUNDARY, DEPENDENT, type Frame, type Step } from './frames.js';
import type { TokenTrie } from './vocabulary.js';

/** What a frame allows by itself. */
interface FrameMask {
  readonly bits: Uint32Array;
  /** Subtrees that need the real parent: n ≥ 0 from node n's own byte on; ~n below node n. */
  readonly resume: Int32Array;
}

/** Frame key → FrameMask, emptied when full (masks of a vocabulary bitset each). */
export class MaskCache {
  private readonly map = new Map<string, FrameMask>();
  constructor(private readonly limit = 1024) {}
  get(key: string): FrameMask | undefined { return this.map.get(key); }
  set(key: string, m: FrameMask): void {
    if (this.map.size >= this.limit) this.map.clear();
    this.map.set(key, m);
  }
}

const sharedCaches = new WeakMap<TokenTrie, MaskCache>();

/** The cache for schema-independent frames (strings, numbers) of a vocabulary. */
function sharedCache(trie: TokenTrie): MaskCache {
  let c = sharedCaches.get(trie);
  if (!c) { c = new MaskCache(); sharedCaches.set(trie, c); }
  return c;
}

/** One byte on every stack of a set. */
export function stepAll(s: Frame | Frame[], b: number): Step {
  if (!Array.isArray(s)) return s.step(b);
  let out: Frame[] | null = null;
  for (const f of s) {
    const r = f.step(b);
    if (r === null) continue;
    out ??= [];
    if (Array.isArray(r)) out.push(...r); else out.push(r);
  }
  return out === null ? null : out.length === 1 ? out[0] : out;
}

function mark(trie: TokenTrie, node: number, bits: Uint32Array): void {
  const { tokStart, ids } = trie;
  for (let k = tokStart[node]; k < tokStart[node + 1]; k++) bits[ids[k] >>> 5] |= 1 << (ids[k] & 31);
}

/** The walk of `top` alone, with BOUNDARY standing for its parent. */
function frameMask(trie: TokenTrie, top: Frame): FrameMask {
  const { byte, depth, end, size } = trie;
  const bits = new Uint32Array(trie.words);
  const resume: number[] = [];
  const states: (Frame | Frame[])[] = new Array(trie.maxDepth + 1);
  states[0] = top.withParent(BOUNDARY);
  let i = 1;
  while (i < size) {
    const d = depth[i];
    let r = stepAll(states[d - 1], byte[i]);
    if (r === null) { i = end[i]; continue; }
    if (r === DEPENDENT) { resume.push(i); i = end[i]; continue; }
    if (r === BOUNDARY) { resume.push(~i); mark(trie, i, bits); i = end[i]; continue; }
    if (Array.isArray(r)) {
      const rest = r.filter((f) => f !== DEPENDENT && f !== BOUNDARY);
      if (rest.length < r.length) {
        if (r.includes(DEPENDENT)) resume.push(i);
        if (r.includes(BOUNDARY)) { resume.push(~i); mark(trie, i, bits); }
        if (rest.length === 0) { i = end[i]; continue; }
        r = rest.length === 1 ? rest[0] : rest;
      }
    }
    states[d] = r;
    mark(trie, i, bits);
    i++;
  }
  return { bits, resume: Int32Array.from(resume) };
}

/** Marks the tokens of trie nodes [from, to) reachable from `start`, which stands at depth `d0`. */
function walk(trie: TokenTrie, from: number, to: number, d0: number, start: Frame, bits: Uint32Array, states: (Frame | Frame[])[]): void {
  const { byte, depth, end } = trie;
  states[d0] = start;
  let i = from;
  while (i < to) {
    const d = depth[i];
    const r = stepAll(states[d - 1], byte[i]);
    if (r === null) { i = end[i]; continue; }
    states[d] = r;
    mark(trie, i, bits);
    i++;
  }
}

/** The bitset of tokens that can follow the stacks whose tops are `tops` (end-of-generation not included). */
export function allowedTokens(trie: TokenTrie, tops: readonly Frame[], local: MaskCache): Uint32Array {
  const bits = new Uint32Array(trie.words);
  const states: (Frame | Frame[])[] = new Array(trie.maxDepth + 1);
  const shared = sharedCache(trie);
  const cached = (f: Frame) => {
    const cache = f.shared ? shared : local;
    let m = cache.get(f.key);
    if (!m) { m = frameMask(trie, f); cache.set(f.key, m); }
    return m;
  };
  for (const top of tops) {
    const d = top.delegate();
    const frame = d ? d.frame : top;
    const m = cached(frame);
    // Subtrees of the first bytes the delegate does not stand for: [from, to) node ranges.
    const skip = (d?.except ?? []).map((b) => trie.rootChild[b]).filter((n) => n >= 0).map((n) => [n, trie.end[n]]);
    if (skip.length === 0 && tops.length === 1) bits.set(m.bits);
    else {
      const own = m.bits.slice();
      for (const [from, to] of skip) for (let n = from; n < to; n++) clear(trie, n, own);
      for (let w = 0; w < bits.length; w++) bits[w] |= own[w];
    }
    for (const r of m.resume) {
      const n = r >= 0 ? r : ~r;
      if (skip.some(([from, to]) => n >= from && n < to)) continue;
      if (r >= 0) walk(trie, n, trie.end[n], trie.depth[n] - 1, frame.parent!, bits, states);
      else walk(trie, n + 1, trie.end[n], trie.depth[n], frame.parent!, bits, states);
    }
    for (const [from, to] of skip) walk(trie, from, to, 0, top, bits, states);
  }
  return bits;
}

function clear(trie: TokenTrie, node: number, bits: Uint32Array): void {
  const { tokStart, ids } = trie;
  for (let k = tokStart[node]; k < tokStart[node + 1]; k++) bits[ids[k] >>> 5] &= ~(1 << (ids[k] & 31));
}
