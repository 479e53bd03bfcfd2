/**
 * Forced tool calls (tool_choice "required" or a named function) as a token constraint.
 *
 * 'json' (models without a tool syntax of their own, as vLLM does): a JSON array
 * `[{"name": …, "arguments": {…}}, …]`, one JSON schema for the JSON constraint.
 *
 * 'dsml' (DeepSeek-V4): exactly one tool-call block as the V4 encoder writes it, then the end:
 *   \n\n<｜DSML｜tool_calls>\n
 *   <｜DSML｜invoke name="NAME">\n
 *   <｜DSML｜parameter name="K" string="true|false">VALUE</｜DSML｜parameter>\n   (per parameter)
 *   </｜DSML｜invoke>\n                                                            (`\n</…` when none)
 *   </｜DSML｜tool_calls>
 * (DeepSeek-V4.1, option `dsml: 'v4.1'`: the same with the tag names ` calls`, ` invoke`, ` parameter`.)
 * A small grammar over three kinds of item: literal text (`｜DSML｜` is a user-defined token of the
 * V4 vocabulary, outside the JSON token trie, so literals are bytes plus such whole tokens), raw
 * text (string parameters: any UTF-8 text), and JSON values of the parameter's schema (the JSON
 * constraint). Parameters come in the schema's property order; required ones must be written.
 * Neither raw text nor JSON values may contain `｜DSML｜`, which would end the parameter early.
 *
 * Tool schemas often carry keywords decoding cannot enforce (pattern, minimum, …): they are ignored.
 */
import type { ChatTool } from '../../server/chat.js';
import { V4_DSML, dsmlTags, type V4Version } from '../../chat/deepseek-v4-encoding.js';
import { TokenType, type Tokenizer } from '../../tokenizer/index.js';
import type { TokenConstraint } from '../engine.js';
import { compileJsonConstraint, type JsonConstraint, type ConstraintState } from './constraint.js';
import type { JsonSchema, SchemaOptions } from './schema.js';
import { tokenTrie, type TokenTrie } from './vocabulary.js';

export type ToolCallSyntax = 'dsml' | 'json';

export interface ForcedToolCalls {
  start(): TokenConstraint;
}

export interface ToolCallOptions {
  readonly syntax: ToolCallSyntax;
  /** 'dsml': which model's tag names (default 'v4'). */
  readonly dsml?: V4Version;
  /** The forced function (tool_choice names one); default: any of `tools`. */
  readonly name?: string;
  /** More than one call allowed (default true; false for `parallel_tool_calls: false`). */
  readonly parallel?: boolean;
  /** Most whitespace bytes in a row inside JSON (default: the JSON constraint's, 20). */
  readonly maxWhitespace?: number;
}

type Obj = { readonly [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compiled constraints per vocabulary, by tools and options: agents send the same tools every turn, and warm masks stay. */
const compiled = new WeakMap<Tokenizer, Map<string, ForcedToolCalls>>();
const COMPILED = 8;

export function compileToolCallConstraint(tools: readonly ChatTool[], opts: ToolCallOptions, tokenizer: Tokenizer): ForcedToolCalls {
  if (tools.length === 0) throw new Error('forced tool calls need at least one tool');
  const chosen = opts.name === undefined ? tools : tools.filter((t) => t.name === opts.name);
  if (chosen.length === 0) throw new Error(`the forced function "${opts.name}" is not one of the tools (${tools.map((t) => t.name).join(', ')})`);
  if (opts.syntax !== 'json' && opts.syntax !== 'dsml') throw new Error(`unknown tool-call syntax "${String(opts.syntax)}" (expected "dsml" or "json")`);
  const parallel = opts.parallel ?? true;
  let cache = compiled.get(tokenizer);
  if (!cache) { cache = new Map(); compiled.set(tokenizer, cache); }
  const dsml = opts.dsml ?? 'v4';
  const key = JSON.stringify([opts.syntax, dsml, parallel, opts.maxWhitespace ?? null, chosen]);
  let c = cache.get(key);
  if (!c) {
    const json = { lenient: true, maxWhitespace: opts.maxWhitespace };
    c = opts.syntax === 'json'
      ? compileJsonConstraint(jsonCallsSchema(chosen, parallel), tokenizer, json)
      : new DsmlGrammar(chosen, parallel, tokenizer, json, dsmlMarkup(dsml));
    if (cache.size >= COMPILED) cache.clear();
    cache.set(key, c);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// json

/** Local `$ref`s of a schema moved under `at` (a JSON pointer), so it can sit inside another schema. */
function rebase(s: unknown, at: string): unknown {
  if (Array.isArray(s)) return s.map((v) => rebase(v, at));
  if (!isObj(s)) return s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#')) out[k] = `#${at}${v.slice(1)}`;
    else out[k] = k === 'enum' || k === 'const' ? v : rebase(v, at);
  }
  return out;
}

/** `[{"name": NAME, "arguments": ARGS}, …]`, at least one, each an object of one tool. */
function jsonCallsSchema(tools: readonly ChatTool[], parallel: boolean): JsonSchema {
  const defs: Record<string, unknown> = {};
  const calls = tools.map((t, i) => {
    // No parameters schema: a function of no arguments.
    defs[`tool${i}`] = t.parameters === undefined ? { type: 'object', properties: {}, additionalProperties: false } : rebase(t.parameters, `/$defs/tool${i}`);
    return {
      type: 'object',
      properties: { name: { const: t.name }, arguments: { $ref: `#/$defs/tool${i}` } },
      required: ['name', 'arguments'],
      additionalProperties: false,
    };
  });
  const items = calls.length === 1 ? calls[0] : { anyOf: calls };
  return { type: 'array', minItems: 1, ...(parallel ? {} : { maxItems: 1 }), items, $defs: defs };
}

/** The calls of a forced JSON array; arguments as compact JSON text. Throws when `text` is not one (e.g. cut short). */
export function parseForcedJsonToolCalls(text: string): { name: string; arguments: string }[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`forced tool calls are not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(v) || v.length === 0) throw new Error('forced tool calls must be a non-empty JSON array');
  return v.map((c, i) => {
    if (!isObj(c) || typeof c.name !== 'string' || !isObj(c.arguments)) {
      throw new Error(`forced tool call ${i} is not an object with a string "name" and an object "arguments"`);
    }
    return { name: c.name, arguments: JSON.stringify(c.arguments) };
  });
}

// ---------------------------------------------------------------------------------------------
// dsml: grammar items

/** Part of a literal: bytes, or one token that only comes whole (a user-defined token). */
type Atom = Uint8Array | number;
type Next = () => Item[];
type Item =
  /** Inside literal text: atom `at`, byte `off` of it. */
  | { readonly kind: 'lit'; readonly atoms: readonly Atom[]; readonly at: number; readonly off: number; readonly next: Next }
  /** Inside a JSON value; `guard`: the marker automaton's state. */
  | { readonly kind: 'json'; readonly state: ConstraintState; readonly guard: number; readonly next: Next }
  /** Inside raw text; `state`: utf8 state × 16 + marker state. */
  | { readonly kind: 'raw'; readonly state: number; readonly next: Next }
  /** Only end-of-generation may follow. */
  | { readonly kind: 'end' };

interface Param {
  readonly name: string;
  readonly required: boolean;
  /** Raw text (string="true") restricted to these texts; undefined: any text. */
  readonly choices?: readonly string[];
  /** The value as JSON (string="false"); undefined: raw text. */
  readonly json?: JsonConstraint;
}

interface Tool {
  readonly name: string;
  readonly params: readonly Param[];
}

const utf8 = new TextEncoder();
const MARKER = utf8.encode(V4_DSML);
/** The literal pieces of a block in one version's tag names. */
interface DsmlMarkup {
  readonly blockOpen: string;
  readonly blockClose: string;
  readonly invokeClose: string;
  readonly paramClose: string;
  invokeOpen(name: string): string;
  paramOpen(name: string, raw: boolean): string;
}

function dsmlMarkup(version: V4Version): DsmlMarkup {
  const t = dsmlTags(version);
  return {
    blockOpen: `\n\n<${V4_DSML}${t.calls}>\n`,
    blockClose: `</${V4_DSML}${t.calls}>`,
    invokeClose: `</${V4_DSML}${t.invoke}>\n`,
    paramClose: `</${V4_DSML}${t.parameter}>\n`,
    invokeOpen: (name) => `<${V4_DSML}${t.invoke} name="${name}">\n`,
    paramOpen: (name, raw) => `<${V4_DSML}${t.parameter} name="${name}" string="${raw}">`,
  };
}

function checkName(what: string, name: string): void {
  if (name.includes('"') || name.includes(V4_DSML)) throw new Error(`${what} ${JSON.stringify(name)} cannot be written in DSML (it holds '"' or ${V4_DSML})`);
}

/** String values a parameter must be written as raw text with: the strings of enum / const, or any (undefined). */
function stringChoices(s: Obj): string[] | undefined {
  if (!('enum' in s) && !('const' in s)) return undefined;
  const values = 'const' in s ? [s.const] : Array.isArray(s.enum) ? s.enum : [];
  return values.filter((v): v is string => typeof v === 'string');
}

function compileTool(t: ChatTool, tokenizer: Tokenizer, options: SchemaOptions): Tool {
  checkName('tool name', t.name);
  const p = t.parameters ?? {};
  const props = isObj(p.properties) ? p.properties : {};
  const required = new Set(Array.isArray(p.required) ? p.required.filter((r): r is string => typeof r === 'string') : []);
  const names = [...Object.keys(props), ...[...required].filter((r) => !(r in props))];
  const root = rebase(p, '/$defs/p');
  const params = names.map((name): Param => {
    checkName(`parameter of ${t.name}:`, name);
    const s = props[name];
    if (isObj(s) && s.type === 'string') {
      const choices = stringChoices(s);
      if (choices?.some((c) => c.includes(V4_DSML))) throw new Error(`a value of ${t.name}.${name} holds ${V4_DSML}`);
      if (choices?.length === 0) throw new Error(`${t.name}.${name}: no value of its enum / const is a string`);
      return { name, required: required.has(name), choices };
    }
    // The property's schema inside the whole parameters schema, so its local $refs resolve.
    const schema: JsonSchema = name in props ? { $ref: `#/$defs/p/properties/${encodeURIComponent(name.replaceAll('~', '~0').replaceAll('/', '~1'))}`, $defs: { p: root } } : true;
    const json = compileJsonConstraint(schema, tokenizer, options);
    if (json.schema.root.cost === Infinity) throw new Error(`${t.name}.${name}: its schema allows no value`);
    return { name, required: required.has(name), json };
  });
  return { name: t.name, params };
}

class DsmlGrammar implements ForcedToolCalls {
  readonly trie: TokenTrie;
  private readonly tools: Tool[];
  /** How literals write `｜DSML｜`: its own token where it is one outside the trie (V4), else its bytes. */
  private readonly marker: Atom;
  private readonly atomsOf = new Map<string, Atom[]>();

  constructor(tools: readonly ChatTool[], private readonly parallel: boolean, readonly tokenizer: Tokenizer, options: SchemaOptions,
    private readonly m: DsmlMarkup) {
    this.trie = tokenTrie(tokenizer);
    const id = tokenizer.tokenId(V4_DSML);
    const type = id === undefined ? undefined : tokenizer.tokenType(id);
    this.marker = id !== undefined && type !== TokenType.NORMAL && type !== TokenType.BYTE ? id : MARKER;
    this.tools = tools.map((t) => compileTool(t, tokenizer, options));
  }

  start(): ToolCallState {
    return new ToolCallState(this, expand([this.lit(this.m.blockOpen, () => this.invokes())]), false);
  }

  private lit(text: string, next: Next): Item {
    let atoms = this.atomsOf.get(text);
    if (!atoms) {
      atoms = [];
      for (const [k, part] of text.split(V4_DSML).entries()) {
        if (k > 0) atoms.push(this.marker);
        if (part) atoms.push(utf8.encode(part));
      }
      // Adjacent byte atoms merge (a token may span them).
      atoms = atoms.reduce<Atom[]>((out, a) => {
        const last = out.at(-1);
        if (typeof a !== 'number' && last !== undefined && typeof last !== 'number') out[out.length - 1] = Uint8Array.from([...last, ...a]);
        else out.push(a);
        return out;
      }, []);
      this.atomsOf.set(text, atoms);
    }
    return { kind: 'lit', atoms, at: 0, off: 0, next };
  }

  private invokes(): Item[] {
    return this.tools.flatMap((t) => {
      const out: Item[] = [];
      if (t.params.length > 0) out.push(this.lit(this.m.invokeOpen(t.name), () => this.params(t, 0, false)));
      if (t.params.every((p) => !p.required)) out.push(this.lit(this.m.invokeOpen(t.name) + '\n' + this.m.invokeClose, () => this.afterInvoke()));
      return out;
    });
  }

  private afterInvoke(): Item[] {
    const close = this.lit(this.m.blockClose, () => [{ kind: 'end' }]);
    return this.parallel ? [close, ...this.invokes()] : [close];
  }

  /** What may come at parameter `i` of `t`: any later one up to the next required, or (after at least one) the invoke's end. */
  private params(t: Tool, i: number, wrote: boolean): Item[] {
    const out: Item[] = [];
    for (let j = i; j < t.params.length; j++) {
      out.push(...this.param(t.params[j], () => this.params(t, j + 1, true)));
      if (t.params[j].required) return out;
    }
    if (wrote) out.push(this.lit(this.m.invokeClose, () => this.afterInvoke()));
    return out;
  }

  private param(p: Param, then: Next): Item[] {
    const close = () => [this.lit(this.m.paramClose, then)];
    if (p.json) return [this.lit(this.m.paramOpen(p.name, false), () => [{ kind: 'json', state: p.json!.start(), guard: 0, next: close }])];
    if (p.choices) return p.choices.map((c) => this.lit(this.m.paramOpen(p.name, true) + c + this.m.paramClose, then));
    return [this.lit(this.m.paramOpen(p.name, true), () => [{ kind: 'raw', state: 0, next: close }])];
  }
}

type Lit = Item & { readonly kind: 'lit' };
type Hole = Item & { readonly kind: 'json' | 'raw' };

/** An item after it moved: literal ends and values that may end also stand for what follows. */
function settle(item: Item): Item[] {
  switch (item.kind) {
    case 'lit': return item.at === item.atoms.length ? expand(item.next()) : [item];
    case 'json': case 'raw': return holeEnds(item) ? [item, ...expand(item.next())] : [item];
    case 'end': return [item];
  }
}

function expand(items: Item[]): Item[] {
  return items.flatMap(settle);
}

function holeEnds(h: Hole): boolean {
  return h.kind === 'json' ? h.state.canEnd : h.state >> 4 === 0;
}

/** Value `h` after `bytes` (all inside the value), or null. */
function holeTake(h: Hole, bytes: Uint8Array): Hole | null {
  if (h.kind === 'raw') {
    const s = run(rawStep, h.state, bytes);
    return s < 0 ? null : { ...h, state: s };
  }
  const guard = run(markerStep, h.guard, bytes);
  const state = guard < 0 ? null : h.state.feed(bytes);
  return state ? { ...h, state, guard } : null;
}

/** Literal `item` fed `bytes` from `i`, on into what follows it (a token may span a literal's end). */
function feedLit(item: Lit, bytes: Uint8Array, i: number): Item[] {
  let { at, off } = item;
  while (i < bytes.length) {
    if (at === item.atoms.length) {
      return expand(item.next()).flatMap((n) => {
        if (n.kind === 'lit') return feedLit(n, bytes, i);
        const h = n.kind === 'end' ? null : holeTake(n, bytes.subarray(i));
        return h ? settle(h) : [];
      });
    }
    const a = item.atoms[at];
    if (typeof a === 'number') return [];
    for (; off < a.length && i < bytes.length; off++, i++) if (a[off] !== bytes[i]) return [];
    if (off === a.length) { at++; off = 0; }
  }
  return settle({ ...item, at, off });
}

/** Where a token that ends value `h` and goes on into the literal after it leads ([] if nowhere). */
function straddle(h: Hole, piece: Uint8Array, p: number): Item[] {
  const ended = holeTake(h, piece.subarray(0, p));
  if (!ended || !holeEnds(ended)) return [];
  return h.next().flatMap((n) => (n.kind === 'lit' ? feedLit(n, piece, p) : []));
}

// ---------------------------------------------------------------------------------------------
// dsml: byte automata over the vocabulary

/** KMP automaton of the marker: state = bytes of it matched; reaching its length = rejected. */
const MARKER_STEP = (() => {
  const m = MARKER.length;
  const fail = new Int32Array(m + 1);
  for (let k = 1, j = 0; k < m; k++) {
    while (j > 0 && MARKER[k] !== MARKER[j]) j = fail[j];
    if (MARKER[k] === MARKER[j]) j++;
    fail[k + 1] = j;
  }
  const table = new Int32Array(m * 256);
  for (let s = 0; s < m; s++) {
    for (let b = 0; b < 256; b++) {
      let j = s;
      while (j > 0 && MARKER[j] !== b) j = fail[j];
      if (MARKER[j] === b) j++;
      table[s * 256 + b] = j === m ? -1 : j;
    }
  }
  return table;
})();

const markerStep = (s: number, b: number) => MARKER_STEP[s * 256 + b];

/** Strict UTF-8: 0 between characters; 1–3 continuation bytes left; 4–7 the restricted second byte of E0, ED, F0, F4. */
function utf8Step(u: number, b: number): number {
  switch (u) {
    case 0:
      if (b < 0x80) return 0;
      if (b >= 0xc2 && b <= 0xdf) return 1;
      if (b === 0xe0) return 4;
      if (b === 0xed) return 5;
      if (b >= 0xe1 && b <= 0xef) return 2;
      if (b === 0xf0) return 6;
      if (b >= 0xf1 && b <= 0xf3) return 3;
      return b === 0xf4 ? 7 : -1;
    case 1: case 2: case 3: return b >= 0x80 && b <= 0xbf ? u - 1 : -1;
    case 4: return b >= 0xa0 && b <= 0xbf ? 1 : -1;
    case 5: return b >= 0x80 && b <= 0x9f ? 1 : -1;
    case 6: return b >= 0x90 && b <= 0xbf ? 2 : -1;
    default: return b >= 0x80 && b <= 0x8f ? 2 : -1;
  }
}

function rawStep(s: number, b: number): number {
  const u = utf8Step(s >> 4, b);
  const k = markerStep(s & 15, b);
  return u < 0 || k < 0 ? -1 : (u << 4) | k;
}

function run(step: (s: number, b: number) => number, s: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length && s >= 0; i++) s = step(s, bytes[i]);
  return s;
}

function markNode(trie: TokenTrie, node: number, bits: Uint32Array): void {
  for (let k = trie.tokStart[node]; k < trie.tokStart[node + 1]; k++) bits[trie.ids[k] >>> 5] |= 1 << (trie.ids[k] & 31);
}

/** Tokens of the trie a byte automaton accepts from state `start` (a subtree is skipped at its first rejected byte). */
function automatonMask(trie: TokenTrie, start: number, step: (s: number, b: number) => number): Uint32Array {
  const bits = new Uint32Array(trie.words);
  const states = new Int32Array(trie.maxDepth + 1);
  states[0] = start;
  for (let i = 1; i < trie.size;) {
    const s = step(states[trie.depth[i] - 1], trie.byte[i]);
    if (s < 0) { i = trie.end[i]; continue; }
    states[trie.depth[i]] = s;
    markNode(trie, i, bits);
    i++;
  }
  return bits;
}

/** Masks of raw text ('r' + state) and of marker guards ('g' + state), per vocabulary. */
const automatonMasks = new WeakMap<TokenTrie, Map<string, Uint32Array>>();

function cachedMask(trie: TokenTrie, kind: 'r' | 'g', state: number): Uint32Array {
  let m = automatonMasks.get(trie);
  if (!m) { m = new Map(); automatonMasks.set(trie, m); }
  let bits = m.get(kind + state);
  if (!bits) {
    bits = automatonMask(trie, state, kind === 'r' ? rawStep : markerStep);
    m.set(kind + state, bits);
  }
  return bits;
}

function child(trie: TokenTrie, node: number, b: number): number {
  if (node === 0) return trie.rootChild[b];
  for (let c = node + 1; c < trie.end[node]; c = trie.end[c]) if (trie.byte[c] === b) return c;
  return -1;
}

/** Marks the tokens that run along literal `item` from trie node `node`, on into what follows it. */
function walkLit(trie: TokenTrie, node: number, item: Lit, bits: Uint32Array): void {
  let { at, off } = item;
  for (;;) {
    if (at === item.atoms.length) {
      for (const n of expand(item.next())) {
        if (n.kind === 'lit') walkLit(trie, node, n, bits);
        else if (n.kind !== 'end') {
          // Tokens below `node`: the literal's end, then the start of the value.
          const depth = trie.depth[node];
          for (let k = trie.tokStart[node + 1]; k < trie.tokStart[trie.end[node]]; k++) {
            const id = trie.ids[k];
            if (holeTake(n, trie.pieces[id]!.subarray(depth))) bits[id >>> 5] |= 1 << (id & 31);
          }
        }
      }
      return;
    }
    const a = item.atoms[at];
    if (typeof a === 'number') {
      if (node === 0) bits[a >>> 5] |= 1 << (a & 31);
      return;
    }
    for (; off < a.length; off++) {
      node = child(trie, node, a[off]);
      if (node < 0) return;
      markNode(trie, node, bits);
    }
    at++;
    off = 0;
  }
}

/** (token, p) where the token's bytes from p on agree with `lit` (one a prefix of the other), p ≥ 1: the tokens that may end a value and begin `lit`. */
const spanning = new WeakMap<TokenTrie, Map<string, Int32Array>>();

function spanningTokens(trie: TokenTrie, lit: Uint8Array): Int32Array {
  let m = spanning.get(trie);
  if (!m) { m = new Map(); spanning.set(trie, m); }
  const key = String.fromCharCode(...lit);
  let out = m.get(key);
  if (!out) {
    const pairs: number[] = [];
    trie.pieces.forEach((piece, id) => {
      if (!piece) return;
      for (let p = 1; p < piece.length; p++) {
        let k = 0;
        while (p + k < piece.length && k < lit.length && piece[p + k] === lit[k]) k++;
        if (p + k === piece.length || k === lit.length) pairs.push(id, p);
      }
    });
    out = Int32Array.from(pairs);
    m.set(key, out);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// dsml: the constraint state

const has = (bits: Uint32Array, id: number) => ((bits[id >>> 5] >>> (id & 31)) & 1) === 1;

class ToolCallState implements TokenConstraint {
  private bitsMemo?: Uint32Array;

  /** `items`: every place in the grammar the text so far may stand at. */
  constructor(private readonly g: DsmlGrammar, private readonly items: readonly Item[], private readonly ended: boolean) {}

  get done(): boolean {
    return this.ended || this.items.every((it) => it.kind === 'end');
  }

  /** Allowed tokens as a bitset over the vocabulary (end-of-generation included when allowed). */
  bits(): Uint32Array {
    if (this.bitsMemo) return this.bitsMemo;
    const trie = this.g.trie;
    const bits = new Uint32Array(trie.words);
    for (const it of this.items) {
      if (it.kind === 'lit') walkLit(trie, 0, it, bits);
      else if (it.kind === 'end') for (const id of trie.eog) bits[id >>> 5] |= 1 << (id & 31);
      else {
        // Tokens inside the value: its own mask (trie tokens only, so its end-of-generation drops out).
        if (it.kind === 'json') {
          const v = it.state.bits();
          const g = cachedMask(trie, 'g', it.guard);
          for (let w = 0; w < bits.length; w++) bits[w] |= v[w] & g[w];
        } else {
          const r = cachedMask(trie, 'r', it.state);
          for (let w = 0; w < bits.length; w++) bits[w] |= r[w];
        }
        // Tokens that end the value and begin the literal after it (`}</`).
        for (const n of it.next()) {
          const first = n.kind === 'lit' ? n.atoms[0] : undefined;
          if (typeof first !== 'object') continue;
          const pairs = spanningTokens(trie, first);
          for (let k = 0; k < pairs.length; k += 2) {
            const id = pairs[k];
            if (!has(bits, id) && straddle(it, trie.pieces[id]!, pairs[k + 1]).length > 0) bits[id >>> 5] |= 1 << (id & 31);
          }
        }
      }
    }
    return (this.bitsMemo = bits);
  }

  allows(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.g.trie.vocabSize && has(this.bits(), id);
  }

  maskLogits(logits: Float32Array): void {
    if (this.ended) throw new Error('the tool calls are complete: no token may follow');
    const bits = this.bits();
    if (bits.every((w) => w === 0)) throw new Error('no token of this vocabulary can continue the tool calls');
    const V = this.g.trie.vocabSize;
    for (let id = 0; id < logits.length; id++) if (id >= V || !has(bits, id)) logits[id] = -Infinity;
  }

  accept(id: number): ToolCallState {
    const trie = this.g.trie;
    if (this.ended) throw new Error(`token ${id} after the end of the tool calls`);
    if (!this.allows(id)) {
      const text = Number.isInteger(id) && id >= 0 && id < trie.vocabSize ? ` (${JSON.stringify(this.g.tokenizer.tokenText(id))})` : '';
      throw new Error(`token ${id}${text} is not allowed here in the tool calls`);
    }
    if (trie.eog.includes(id)) return new ToolCallState(this.g, [], true);
    const piece = trie.pieces[id];
    const out: Item[] = [];
    for (const it of this.items) {
      if (it.kind === 'end') continue;
      if (it.kind === 'lit') {
        if (piece) out.push(...feedLit(it, piece, 0));
        else if (it.atoms[it.at] === id) out.push(...settle({ ...it, at: it.at + 1, off: 0 }));
      } else if (piece) {
        const inside = holeTake(it, piece);
        if (inside) out.push(...settle(inside));
        for (let p = 1; p < piece.length; p++) out.push(...straddle(it, piece, p));
      }
    }
    return new ToolCallState(this.g, out, false);
  }
}
