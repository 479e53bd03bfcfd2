/**
 * The JSON pushdown automaton, one byte at a time. A state is a stack of immutable frames linked
 * by `parent`; `step(byte)` returns the new top of the stack (a frame that finishes hands back its
 * parent), several tops where an anyOf leaves more than one reading open, or null to reject.
 *
 * A container frame pushes a child value already in its own after-the-value state, so a child that
 * ends just returns its parent; a child that can end but cannot take a byte (a number before ',')
 * passes that byte on with `parent.step`. A frame's behaviour never depends on its parent until
 * it ends, and its `key` names that behaviour: this is what lets mask.ts cache, per key, the tokens
 * a frame accepts on its own (see BOUNDARY).
 */
import { CANONICAL_LEX, FREE_LEX, LEX_CLOSE, lexTail } from './string-lexer.js';
import { arrayItem, literalPath, minText, type ArrayNode, type LiteralNode, type Node, type ObjectNode } from './schema.js';

export type Step = Frame | Frame[] | null;

export abstract class Frame {
  private memoKey?: string;
  constructor(readonly parent: Frame | null) {}
  /** The stack after one more byte. */
  abstract step(b: number): Step;
  /** This frame with another parent (mask precomputation puts BOUNDARY there). */
  abstract withParent(p: Frame): Frame;
  protected abstract makeKey(): string;
  /** Bytes that finish this frame's value the shortest way (its parent then goes on). */
  abstract tail(): number[];
  /** Equal keys, equal behaviour up to the end of the frame, whatever the parent. */
  get key(): string {
    return (this.memoKey ??= this.makeKey());
  }
  /** The value so far is whole (the frame may end here). */
  get complete(): boolean {
    return false;
  }
  /**
   * A shared frame that behaves exactly like this one for every first byte but `except`: its
   * cached mask then stands for this frame's, and only the `except` subtrees need a walk.
   */
  delegate(): { frame: Frame; except: number[] } | null {
    return null;
  }
  /** The key means the same for every schema (string and number frames): their masks are cached per vocabulary. */
  get shared(): boolean {
    return false;
  }
}

class Marker extends Frame {
  constructor(private readonly name: string, private readonly next: () => Step) { super(null); }
  step(): Step { return this.next(); }
  tail(): number[] { return []; }
  withParent(): Frame { return this; }
  protected makeKey(): string { return this.name; }
}

/** Stands in for "whatever comes after": reached when the frame under study hands a byte to its parent. */
export const DEPENDENT: Frame = new Marker('<dependent>', () => null);
/** The parent of a frame whose mask is precomputed: ending there returns BOUNDARY, a byte passed on gives DEPENDENT. */
export const BOUNDARY: Frame = new Marker('<boundary>', () => DEPENDENT);

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const QUOTE = 0x22;

/** A value of `node` starting with byte `b`; `parent` is the container already past this value. */
function startValue(node: Node, parent: Frame, depth: number, b: number): Step {
  const ctx = node.ctx;
  switch (node.kind) {
    case 'any':
      if (b === 0x7b) return startValue(ctx.anyObject, parent, depth, b);
      if (b === 0x5b) return startValue(ctx.anyArray, parent, depth, b);
      if (b === QUOTE) return new StringFrame(parent, 0, false);
      if (b === 0x2d || (b >= 0x30 && b <= 0x39)) return new NumberFrame(parent, false, START, 0).step(b);
      return new LiteralFrame(parent, ctx.anyLiteral, 0).step(b);
    case 'object':
      // Open a container only if its shortest value still fits under maxDepth.
      return b === 0x7b && depth + node.nest - 1 <= ctx.maxDepth ? new ObjectFrame(parent, node, depth, OPEN, 0, node.unusable, -1, -1, 0) : null;
    case 'array':
      return b === 0x5b && depth + node.nest - 1 <= ctx.maxDepth ? new ArrayFrame(parent, node, depth, OPEN, 0, 0) : null;
    case 'string':
      return b === QUOTE ? new StringFrame(parent, 0, false) : null;
    case 'number':
      return new NumberFrame(parent, node.integer, START, 0).step(b);
    case 'literal':
      return new LiteralFrame(parent, node, 0).step(b);
    case 'union': {
      let out: Frame[] | null = null;
      for (const alt of node.alts) {
        const r = startValue(alt, parent, depth, b);
        if (r === null) continue;
        out ??= [];
        if (Array.isArray(r)) out.push(...r); else out.push(r);
      }
      return out === null ? null : out.length === 1 ? out[0] : out;
    }
  }
}

/** The bottom of every stack: optional leading whitespace, one value, then the suffix (if any) and nothing more. */
export class DocFrame extends Frame {
  /** `pos`: before the value, whitespace bytes so far; after it, suffix bytes so far. */
  constructor(readonly root: Node, readonly after: boolean, readonly pos: number) { super(null); }
  step(b: number): Step {
    const ctx = this.root.ctx;
    if (this.after) return this.pos < ctx.suffix.length && ctx.suffix[this.pos] === b ? new DocFrame(this.root, true, this.pos + 1) : null;
    if (isWs(b)) return this.pos < ctx.maxWhitespace ? new DocFrame(this.root, false, this.pos + 1) : null;
    return startValue(this.root, new DocFrame(this.root, true, 0), 1, b);
  }
  override get complete(): boolean { return this.after && this.pos === this.root.ctx.suffix.length; }
  tail(): number[] {
    const suffix = this.root.ctx.suffix;
    return this.after ? [...suffix.subarray(this.pos)] : [...minText(this.root), ...suffix];
  }
  withParent(): Frame { return this; }
  protected makeKey(): string { return `d${this.root.ctx.uid}:${this.after ? 1 : 0}:${this.pos}`; }
}

/** String content up to the closing quote; `canonical`: JSON.stringify's spelling only (keys). */
class StringFrame extends Frame {
  constructor(parent: Frame | null, readonly lex: number, readonly canonical: boolean) { super(parent); }
  step(b: number): Step {
    const r = (this.canonical ? CANONICAL_LEX : FREE_LEX)[(this.lex << 8) | b];
    if (r === this.lex) return this;
    if (r >= 0) return new StringFrame(this.parent, r, this.canonical);
    return r === LEX_CLOSE ? this.parent : null;
  }
  tail(): number[] { return [...lexTail(this.lex), QUOTE]; }
  withParent(p: Frame): Frame { return new StringFrame(p, this.lex, this.canonical); }
  protected makeKey(): string { return `s${this.canonical ? 'c' : ''}${this.lex}`; }
  override get shared(): boolean { return true; }
}

// Number grammar states; the digit count `n` of the current part is capped so that every number
// parses to a finite double (and a model cannot write digits forever).
const START = 0, MINUS = 1, ZERO = 2, INT = 3, DOT = 4, FRAC = 5, EXP = 6, EXP_SIGN = 7, EXP_DIGITS = 8;
const MAX_INT_DIGITS = 20, MAX_FRAC_DIGITS = 20, MAX_EXP_DIGITS = 2;

class NumberFrame extends Frame {
  constructor(parent: Frame | null, readonly integer: boolean, readonly st: number, readonly n: number) { super(parent); }
  step(b: number): Step {
    const digit = b >= 0x30 && b <= 0x39;
    const st = this.st;
    const to = (s: number, n: number) => new NumberFrame(this.parent, this.integer, s, n);
    switch (st) {
      case START:
      case MINUS:
        if (b === 0x2d && st === START) return to(MINUS, 0);
        if (b === 0x30) return to(ZERO, 1);
        return digit ? to(INT, 1) : null;
      case DOT:
        return digit ? to(FRAC, 1) : null;
      case EXP:
        if (b === 0x2b || b === 0x2d) return to(EXP_SIGN, 0);
        return digit ? to(EXP_DIGITS, 1) : null;
      case EXP_SIGN:
        return digit ? to(EXP_DIGITS, 1) : null;
    }
    if (digit) {
      if (st === INT && this.n < MAX_INT_DIGITS) return to(INT, this.n + 1);
      if (st === FRAC && this.n < MAX_FRAC_DIGITS) return to(FRAC, this.n + 1);
      if (st === EXP_DIGITS && this.n < MAX_EXP_DIGITS) return to(EXP_DIGITS, this.n + 1);
    } else if (!this.integer) {
      if (b === 0x2e && (st === ZERO || st === INT)) return to(DOT, 0);
      if ((b === 0x65 || b === 0x45) && st !== EXP_DIGITS) return to(EXP, 0);
    }
    return this.parent!.step(b);
  }
  override get complete(): boolean { return this.st === ZERO || this.st === INT || this.st === FRAC || this.st === EXP_DIGITS; }
  tail(): number[] { return this.complete ? [] : [0x30]; }
  withParent(p: Frame): Frame { return new NumberFrame(p, this.integer, this.st, this.n); }
  protected makeKey(): string { return `n${this.integer ? 'i' : ''}${this.st}:${this.n}`; }
  override get shared(): boolean { return true; }
}

/** One of a fixed set of JSON texts, byte by byte along its trie. */
class LiteralFrame extends Frame {
  constructor(parent: Frame | null, readonly node: LiteralNode, readonly t: number) { super(parent); }
  step(b: number): Step {
    const trie = this.node.trie;
    const c = trie.child(this.t, b);
    if (c >= 0) return trie.isLeaf(c) ? this.parent : new LiteralFrame(this.parent, this.node, c);
    return trie.tag[this.t] >= 0 ? this.parent!.step(b) : null;
  }
  override get complete(): boolean { return this.node.trie.tag[this.t] >= 0; }
  tail(): number[] { return literalPath(this.node.trie, this.t)!; }
  withParent(p: Frame): Frame { return new LiteralFrame(p, this.node, this.t); }
  protected makeKey(): string { return `l${this.node.ctx.uid}:${this.node.id}:${this.t}`; }
}

const OPEN = 0, AFTER = 1, NEXT = 2, KEY = 3, COLON = 4, VALUE = 5;

class ArrayFrame extends Frame {
  constructor(parent: Frame | null, readonly node: ArrayNode, readonly depth: number, readonly phase: number,
    readonly ws: number, readonly count: number) { super(parent); }

  step(b: number): Step {
    const node = this.node;
    if (isWs(b)) return this.ws < node.ctx.maxWhitespace ? this.to(this.phase, this.ws + 1, this.count) : null;
    switch (this.phase) {
      case OPEN:
        if (b === 0x5d) return node.minItems === 0 ? this.parent : null;
        return this.item(b);
      case NEXT:
        return this.item(b);
      default:
        if (b === 0x2c) return this.count < node.maxItems ? this.to(NEXT, 0, this.count) : null;
        if (b === 0x5d) return this.count >= node.minItems ? this.parent : null;
        return null;
    }
  }

  private item(b: number): Step {
    if (this.count >= this.node.maxItems) return null;
    return startValue(arrayItem(this.node, this.count)!, this.to(AFTER, 0, this.count + 1), this.depth + 1, b);
  }

  tail(): number[] {
    const node = this.node;
    const out: number[] = [];
    let count = this.count;
    if (this.phase === NEXT) out.push(...minText(arrayItem(node, count++)!));
    else if (this.phase === OPEN && node.minItems > 0) out.push(...minText(arrayItem(node, count++)!));
    for (; count < node.minItems; count++) out.push(0x2c, ...minText(arrayItem(node, count)!));
    out.push(0x5d);
    return out;
  }

  private to(phase: number, ws: number, count: number): ArrayFrame {
    return new ArrayFrame(this.parent, this.node, this.depth, phase, ws, count);
  }

  withParent(p: Frame): Frame { return new ArrayFrame(p, this.node, this.depth, this.phase, this.ws, this.count); }
  protected makeKey(): string {
    const n = this.node;
    return `a${n.ctx.uid}:${n.id}:${this.depth}:${this.phase}:${this.ws}:${Math.min(this.count, n.countCap)}`;
  }
}

/**
 * An object: keys in any order, each known name at most once, `}` only once the required names
 * are there. Known-name keys are matched inline on the key trie; a key that can only be an
 * additional property is a StringFrame child (no per-name state, so its mask is shared).
 */
class ObjectFrame extends Frame {
  constructor(parent: Frame | null, readonly node: ObjectNode, readonly depth: number, readonly phase: number,
    readonly ws: number,
    /** Names written so far, and the unusable ones (bitset over node.names). */
    readonly used: Uint32Array,
    /** The property whose value comes next: a name index, or −1 for an additional property. */
    readonly prop: number,
    /** Position on the key trie while a key is being written; −1 off it. */
    readonly kt: number,
    /** String-lexer state of the key (hybrid keys). */
    readonly lex: number) { super(parent); }

  step(b: number): Step {
    const node = this.node;
    if (this.phase === KEY) return this.keyStep(b);
    if (isWs(b)) return this.ws < node.ctx.maxWhitespace ? this.to(this.phase, this.ws + 1) : null;
    switch (this.phase) {
      case OPEN:
        if (b === 0x7d) return this.canClose() ? this.parent : null;
        return b === QUOTE && this.canAddKey() ? this.startKey() : null;
      case NEXT:
        return b === QUOTE ? this.startKey() : null;
      case COLON:
        return b === 0x3a ? this.to(VALUE, 0) : null;
      case VALUE:
        return startValue(this.prop >= 0 ? node.values[this.prop] : node.additional!, this.to(AFTER, 0), this.depth + 1, b);
      default:
        if (b === 0x2c) return this.canAddKey() ? this.to(NEXT, 0) : null;
        if (b === 0x7d) return this.canClose() ? this.parent : null;
        return null;
    }
  }

  private startKey(): Frame {
    if (this.node.keyMode === 'free') return new StringFrame(this.withProp(COLON, -1, this.used), 0, false);
    return new ObjectFrame(this.parent, this.node, this.depth, KEY, 0, this.used, -1, 0, 0);
  }

  private keyStep(b: number): Step {
    const node = this.node;
    const trie = node.keys;
    if (node.keyMode === 'literal') {
      const c = trie.child(this.kt, b);
      if (c < 0 || !this.reachable(c)) return null;
      const name = trie.tag[c];
      if (name >= 0) return this.withProp(COLON, name, this.markUsed(name));
      return new ObjectFrame(this.parent, node, this.depth, KEY, 0, this.used, -1, c, this.lex);
    }
    // hybrid: a known name, or (once the text leaves the trie) an additional property.
    const r = CANONICAL_LEX[(this.lex << 8) | b];
    if (r === LEX_CLOSE) {
      const c = trie.child(this.kt, QUOTE);
      if (c < 0) return this.withProp(COLON, -1, this.used);
      const name = trie.tag[c];
      return this.isUsed(name) ? null : this.withProp(COLON, name, this.markUsed(name));
    }
    if (r < 0) return null;
    const c = trie.child(this.kt, b);
    if (c < 0) return new StringFrame(this.withProp(COLON, -1, this.used), r, true);
    return new ObjectFrame(this.parent, node, this.depth, KEY, 0, this.used, -1, c, r);
  }

  tail(): number[] {
    const node = this.node;
    const out: number[] = [];
    let used = this.used;
    const entry = (k: number) => {
      out.push(QUOTE, ...node.nameBytes[k], 0x3a, ...minText(node.values[k]));
      used = withBit(used, k, node.all.length);
    };
    const value = (prop: number) => out.push(...minText(prop >= 0 ? node.values[prop] : node.additional!));
    switch (this.phase) {
      case KEY: {
        const prop = this.keyTail(out);
        out.push(0x3a);
        if (prop >= 0) used = withBit(used, prop, node.all.length);
        value(prop);
        break;
      }
      case COLON: out.push(0x3a); value(this.prop); break;
      case VALUE: value(this.prop); break;
      case OPEN:
      case NEXT: {
        const first = this.missing(used)[0];
        if (first !== undefined) entry(first);
        else if (this.phase === NEXT) this.anyEntry(out, used);
        else { out.push(0x7d); return out; }
        break;
      }
    }
    for (const k of this.missing(used)) { out.push(0x2c); entry(k); }
    out.push(0x7d);
    return out;
  }

  /**
   * Finishes the key under way (closing quote included), towards a missing required name where
   * one lies ahead, so that following completions always gets closer to the end. Returns the
   * property (−1: additional).
   */
  private keyTail(out: number[]): number {
    const node = this.node;
    const trie = node.keys;
    const missing = this.missing(this.used);
    const path = literalPath(trie, this.kt, (k) => missing.includes(k))
      ?? (node.keyMode === 'literal' ? literalPath(trie, this.kt, (k) => !isSet(this.used, k)) : null);
    if (path) {
      let n = this.kt;
      for (const b of path) n = trie.child(n, b);
      out.push(...path);
      return trie.tag[n];
    }
    // hybrid: finish the character under way, then close on a free name, or leave the trie first.
    let n = this.kt;
    for (const b of lexTail(this.lex)) { out.push(b); n = n >= 0 ? trie.child(n, b) : -1; }
    return closeKey(node, n, this.used, out);
  }

  /** One more property when none is missing: the cheapest free name, or an additional key. */
  private anyEntry(out: number[], used: Uint32Array): void {
    const node = this.node;
    out.push(QUOTE);
    let prop = -1;
    if (node.keyMode === 'literal') {
      const free = node.names.map((_, i) => i).filter((i) => !isSet(used, i));
      prop = free.reduce((a, b) => (node.values[b].cost < node.values[a].cost ? b : a));
      out.push(...node.nameBytes[prop]);
    } else if (node.keyMode === 'hybrid') prop = closeKey(node, 0, used, out);
    else out.push(QUOTE);
    out.push(0x3a, ...minText(prop >= 0 ? node.values[prop] : node.additional!));
  }

  private missing(used: Uint32Array): number[] {
    const out: number[] = [];
    this.node.names.forEach((_, i) => { if (isSet(this.node.required, i) && !isSet(used, i)) out.push(i); });
    return out;
  }

  /** A hybrid key off its trie is any canonical string: that mask is shared by all hybrid keys. */
  override delegate(): { frame: Frame; except: number[] } | null {
    if (this.phase !== KEY || this.node.keyMode !== 'hybrid') return null;
    const except = this.node.keys.children(this.kt).map(([b]) => b);
    if (!except.includes(QUOTE)) except.push(QUOTE);
    return { frame: new StringFrame(this.withProp(COLON, -1, this.used), this.lex, true), except };
  }

  /** Some name not yet written lies below key-trie node `c`. */
  private reachable(c: number): boolean {
    const below = this.node.keys.below[c];
    for (let w = 0; w < below.length; w++) if (below[w] & ~(this.used[w] ?? 0)) return true;
    return false;
  }

  private isUsed(name: number): boolean {
    return isSet(this.used, name);
  }

  private markUsed(name: number): Uint32Array {
    return withBit(this.used, name, this.node.all.length);
  }

  private canClose(): boolean {
    const req = this.node.required;
    for (let w = 0; w < req.length; w++) if (req[w] & ~(this.used[w] ?? 0)) return false;
    return true;
  }

  private canAddKey(): boolean {
    if (this.node.additional !== null) return true;
    const all = this.node.all;
    for (let w = 0; w < all.length; w++) if (all[w] & ~(this.used[w] ?? 0)) return true;
    return false;
  }

  private to(phase: number, ws: number): ObjectFrame {
    return new ObjectFrame(this.parent, this.node, this.depth, phase, ws, this.used, this.prop, -1, 0);
  }

  private withProp(phase: number, prop: number, used: Uint32Array): ObjectFrame {
    return new ObjectFrame(this.parent, this.node, this.depth, phase, 0, used, prop, -1, 0);
  }

  withParent(p: Frame): Frame {
    return new ObjectFrame(p, this.node, this.depth, this.phase, this.ws, this.used, this.prop, this.kt, this.lex);
  }

  protected makeKey(): string {
    const n = this.node;
    return `o${n.ctx.uid}:${n.id}:${this.depth}:${this.phase}:${this.ws}:${this.used.join(',')}:${this.prop}:${this.kt}:${this.lex}`;
  }
}

function isSet(bits: Uint32Array, i: number): boolean {
  return (((bits[i >>> 5] ?? 0) >>> (i & 31)) & 1) === 1;
}

function withBit(bits: Uint32Array, i: number, words: number): Uint32Array {
  const out = new Uint32Array(words);
  out.set(bits);
  out[i >>> 5] |= 1 << (i & 31);
  return out;
}

/**
 * Closes a hybrid key standing at key-trie node `n` (−1: off the trie) with the plain text written
 * so far: as the name there if it is free, else as an additional key (leaving the trie first by one
 * more byte when the text spells a name already written). Returns the property (−1: additional).
 */
/** Printable ASCII that needs no escape, lower-case letters first. */
const PLAIN = [...Array.from({ length: 31 }, (_, i) => 0x61 + i), ...Array.from({ length: 65 }, (_, i) => 0x20 + i)]
  .filter((b) => b !== QUOTE && b !== 0x5c);

function closeKey(node: ObjectNode, n: number, used: Uint32Array, out: number[]): number {
  const trie = node.keys;
  const end = n >= 0 ? trie.child(n, QUOTE) : -1;
  if (end >= 0 && isSet(used, trie.tag[end])) {
    const b = PLAIN.find((c) => trie.child(n, c) < 0);
    if (b === undefined) throw new Error('every printable character continues some property name here');
    out.push(b, QUOTE);
    return -1;
  }
  out.push(QUOTE);
  return end >= 0 ? trie.tag[end] : -1;
}
