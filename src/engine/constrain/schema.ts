/**
 * JSON Schema → a graph of value nodes the automaton (frames.ts) walks.
 *
 * Supported: type (one or a list; inferred from the keywords when absent), enum, const, anyOf
 * (oneOf is read as anyOf), a one-element allOf, local $ref (#, #/$defs/…, #/definitions/…,
 * recursion included), nullable, properties, required, additionalProperties (false, true or a
 * schema), items, prefixItems (and draft-4 item lists with additionalItems), minItems, maxItems.
 * Annotations (title, description, default, examples, …) are ignored. Any other keyword narrows
 * the values in a way the automaton does not enforce, so it is an error unless `lenient`.
 */
import { LiteralTrie } from './literal-trie.js';

export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

export interface SchemaOptions {
  /** Most whitespace bytes in a row between tokens of the JSON text (default 20; 0: compact). */
  readonly maxWhitespace?: number;
  /** Most nested objects / arrays (default 32). */
  readonly maxDepth?: number;
  /** Ignore keywords that cannot be enforced (pattern, minimum, …) instead of refusing the schema. */
  readonly lenient?: boolean;
  /**
   * Text that must follow the value (e.g. DSML's `</｜DSML｜parameter>`), matched byte by byte so
   * that a token may hold the end of the value and the start of the suffix. Default: none.
   */
  readonly suffix?: string;
}

/** What every node of one compiled schema shares. */
export interface SchemaContext {
  /** Unique per compiled schema: part of the mask-cache keys of its frames. */
  readonly uid: number;
  readonly maxWhitespace: number;
  readonly maxDepth: number;
  readonly suffix: Uint8Array;
  /** The nodes of an unconstrained value (JSON mode). */
  readonly any: AnyNode;
  readonly anyObject: ObjectNode;
  readonly anyArray: ArrayNode;
  readonly anyLiteral: LiteralNode;
}

interface Base {
  readonly id: number;
  readonly ctx: SchemaContext;
  /** Bytes of the shortest value (Infinity: none is finite); set by the analysis after compiling. */
  cost: number;
  /** Nesting of that shortest value (objects / arrays inside one another). */
  nest: number;
  /** The shortest value itself, built on first use. */
  text?: Uint8Array;
}
export interface AnyNode extends Base { readonly kind: 'any' }
export interface StringNode extends Base { readonly kind: 'string' }
export interface NumberNode extends Base { readonly kind: 'number'; readonly integer: boolean }
/** A fixed set of JSON texts: enum, const, booleans, null. */
export interface LiteralNode extends Base { readonly kind: 'literal'; readonly trie: LiteralTrie }
export interface UnionNode extends Base { readonly kind: 'union'; alts: Node[] }
export interface ArrayNode extends Base {
  readonly kind: 'array';
  prefix: Node[];
  /** Items after the prefix; null: none. */
  items: Node | null;
  minItems: number;
  maxItems: number;
  /** Item counts past this one behave alike (part of mask-cache keys). */
  countCap: number;
}
export interface ObjectNode extends Base {
  readonly kind: 'object';
  names: string[];
  values: Node[];
  /** Bitsets over `names`. */
  required: Uint32Array;
  all: Uint32Array;
  /** Schema of other keys; null: no other keys. */
  additional: Node | null;
  /** JSON text of each name after its opening quote (closing quote included). */
  nameBytes: Uint8Array[];
  /** …as a trie, tagged by name index. */
  keys: LiteralTrie;
  /** Names whose value cannot be finished: treated as already written. */
  unusable: Uint32Array;
  /** free: any key (no names); literal: only the names; hybrid: the names or any other key. */
  keyMode: 'free' | 'literal' | 'hybrid';
}
export type Node = AnyNode | StringNode | NumberNode | LiteralNode | UnionNode | ArrayNode | ObjectNode;

export interface CompiledSchema {
  readonly ctx: SchemaContext;
  readonly root: Node;
}

const ANNOTATIONS = new Set([
  '$schema', '$id', '$anchor', '$comment', '$defs', 'definitions', 'title', 'description', 'default',
  'examples', 'example', 'deprecated', 'readOnly', 'writeOnly', 'strict',
]);
const HANDLED = new Set([
  'type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref', 'nullable', 'properties', 'required',
  'additionalProperties', 'items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems',
]);
const OBJECT_KEYWORDS = ['properties', 'required', 'additionalProperties'];
const ARRAY_KEYWORDS = ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems'];
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];

let nextUid = 1;
const utf8 = new TextEncoder();
const PENDING = Symbol('pending');

export function compileSchema(schema: JsonSchema | 'json' | 'json_object', options: SchemaOptions = {}): CompiledSchema {
  const maxWhitespace = options.maxWhitespace ?? 20;
  const maxDepth = options.maxDepth ?? 32;
  if (!(Number.isInteger(maxWhitespace) && maxWhitespace >= 0)) throw new Error(`maxWhitespace must be a whole number ≥ 0, got ${maxWhitespace}`);
  if (!(Number.isInteger(maxDepth) && maxDepth >= 1)) throw new Error(`maxDepth must be a whole number ≥ 1, got ${maxDepth}`);
  const c = new Compiler(schema, maxWhitespace, maxDepth, utf8.encode(options.suffix ?? ''), options.lenient ?? false);
  const root = schema === 'json' ? c.ctx.any : schema === 'json_object' ? c.ctx.anyObject : c.compile(schema, '#');
  c.flattenUnions();
  c.analyze(root);
  return { ctx: c.ctx, root };
}

type Obj = { readonly [keyword: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
type Fields<T extends Node> = Omit<T, 'id' | 'ctx' | 'cost' | 'nest' | 'text'>;

class Compiler {
  readonly ctx: SchemaContext;
  private readonly nodes: Node[] = [];
  private readonly memo = new Map<Obj, Node | typeof PENDING>();
  private readonly unions: UnionNode[] = [];

  constructor(private readonly rootSchema: unknown, maxWhitespace: number, maxDepth: number, suffix: Uint8Array, private readonly lenient: boolean) {
    // The any-nodes point back at ctx: filled in right after.
    const ctx = { uid: nextUid++, maxWhitespace, maxDepth, suffix } as { -readonly [K in keyof SchemaContext]: SchemaContext[K] };
    this.ctx = ctx;
    ctx.any = this.make<AnyNode>({ kind: 'any' });
    ctx.anyLiteral = this.literal(['true', 'false', 'null']);
    ctx.anyObject = this.make<ObjectNode>(this.object([], [], [], ctx.any));
    ctx.anyArray = this.make<ArrayNode>({ kind: 'array', prefix: [], items: ctx.any, minItems: 0, maxItems: Infinity, countCap: 0 });
  }

  private make<T extends Node>(fields: Fields<T>): T {
    const node = { ...fields, id: this.nodes.length, ctx: this.ctx, cost: Infinity, nest: 0 } as unknown as T;
    this.nodes.push(node);
    return node;
  }

  compile(s: unknown, path: string): Node {
    if (s === true) return this.ctx.any;
    if (s === false) throw new Error(`${path}: the schema false allows no value`);
    if (!isObj(s)) throw new Error(`${path}: a schema must be an object or a boolean`);
    const seen = this.memo.get(s);
    if (seen === PENDING) throw new Error(`${path}: a $ref / allOf cycle with no value in between`);
    if (seen) return seen;
    for (const k of Object.keys(s)) {
      if (HANDLED.has(k) || ANNOTATIONS.has(k) || k.startsWith('x-') || this.lenient) continue;
      throw new Error(`${path}: keyword '${k}' is not supported by constrained decoding`);
    }
    const structural = Object.keys(s).filter((k) => HANDLED.has(k));
    const alone = (k: string, also: string[] = []) => {
      const others = structural.filter((o) => o !== k && !also.includes(o));
      if (others.length > 0) throw new Error(`${path}: '${k}' next to ${others.map((o) => `'${o}'`).join(', ')} is not supported`);
    };

    if ('$ref' in s || 'allOf' in s) {
      let target: unknown;
      if ('$ref' in s) { alone('$ref'); target = this.resolve(s.$ref, path); } else {
        alone('allOf');
        if (!Array.isArray(s.allOf) || s.allOf.length !== 1) throw new Error(`${path}: allOf is supported with exactly one schema`);
        target = s.allOf[0];
      }
      this.memo.set(s, PENDING);
      const node = this.compile(target, '$ref' in s ? String(s.$ref) : `${path}/allOf/0`);
      this.memo.set(s, node);
      return node;
    }
    if ('anyOf' in s || 'oneOf' in s) {
      const k = 'anyOf' in s ? 'anyOf' : 'oneOf';
      alone(k, ['nullable']);
      const list = s[k];
      if (!Array.isArray(list) || list.length === 0) throw new Error(`${path}: ${k} must be a non-empty array of schemas`);
      const u = this.union();
      this.memo.set(s, u);
      u.alts = list.map((sub, i) => this.compile(sub, `${path}/${k}/${i}`));
      if (s.nullable === true) u.alts.push(this.literal(['null']));
      return u;
    }

    const types = this.types(s, path);
    if ('enum' in s || 'const' in s) {
      let values: unknown[];
      if ('const' in s) values = [s.const];
      else if (Array.isArray(s.enum)) values = s.enum;
      else throw new Error(`${path}: enum must be an array`);
      const kept = values.filter((v) => types === null || types.some((t) => hasType(v, t)));
      if (kept.length === 0) throw new Error(`${path}: no value of ${'const' in s ? 'const' : 'enum'} is of type ${types?.join(' / ') ?? 'JSON'}`);
      const node = this.literal(kept.map((v) => JSON.stringify(v)));
      this.memo.set(s, node);
      return node;
    }
    if (types === null) { this.memo.set(s, this.ctx.any); return this.ctx.any; }
    if (types.length > 1) {
      const u = this.union();
      this.memo.set(s, u);
      u.alts = types.map((t) => this.typed(s, t, path));
      return u;
    }
    return this.typed(s, types[0], path);
  }

  /** The node of `s` read as type `t`; memoized before its children so recursion finds it. */
  private typed(s: Obj, t: string, path: string): Node {
    const single = !this.memo.has(s);
    const remember = <T extends Node>(node: T): T => {
      if (single) this.memo.set(s, node);
      return node;
    };
    switch (t) {
      case 'string': return remember(this.make<StringNode>({ kind: 'string' }));
      case 'number':
      case 'integer': return remember(this.make<NumberNode>({ kind: 'number', integer: t === 'integer' }));
      case 'boolean': return remember(this.literal(['true', 'false']));
      case 'null': return remember(this.literal(['null']));
      case 'array': {
        const node = remember(this.make<ArrayNode>({ kind: 'array', prefix: [], items: null, minItems: 0, maxItems: Infinity, countCap: 0 }));
        this.fillArray(node, s, path);
        return node;
      }
      default: {
        const node = remember(this.make<ObjectNode>(this.object([], [], [], null)));
        this.fillObject(node, s, path);
        return node;
      }
    }
  }

  private fillObject(node: ObjectNode, s: Obj, path: string): void {
    const props = s.properties ?? {};
    if (!isObj(props)) throw new Error(`${path}/properties must be an object`);
    const names: string[] = [];
    const values: Node[] = [];
    const forbidden = new Set<string>();
    for (const [name, sub] of Object.entries(props)) {
      if (sub === false) { forbidden.add(name); continue; }
      names.push(name);
      values.push(this.compile(sub, `${path}/properties/${escapePointer(name)}`));
    }
    const ap = s.additionalProperties;
    const additional = ap === undefined || ap === true ? this.ctx.any : ap === false ? null : this.compile(ap, `${path}/additionalProperties`);
    const required = s.required ?? [];
    if (!Array.isArray(required) || !required.every((r) => typeof r === 'string')) throw new Error(`${path}/required must be an array of strings`);
    const req: number[] = [];
    for (const r of new Set(required as string[])) {
      let i = names.indexOf(r);
      if (i < 0) {
        if (forbidden.has(r) || additional === null) throw new Error(`${path}: required property '${r}' is not allowed by the schema`);
        i = names.push(r) - 1;
        values.push(additional);
      }
      req.push(i);
    }
    Object.assign(node, this.object(names, values, req, additional));
    if (node.keyMode === 'hybrid') {
      const odd = names.find((n) => JSON.stringify(n).includes('\\u'));
      if (odd !== undefined) throw new Error(`${path}: property name ${JSON.stringify(odd)} needs a \\u escape, supported only with additionalProperties false`);
    }
  }

  private object(names: string[], values: Node[], required: number[], additional: Node | null): Fields<ObjectNode> {
    const nameBytes = names.map((n) => utf8.encode(JSON.stringify(n).slice(1)));
    return {
      kind: 'object', names, values, additional, nameBytes,
      required: bitset(names.length, required), all: bitset(names.length, names.map((_, i) => i)),
      unusable: bitset(names.length, []),
      keys: new LiteralTrie(nameBytes, names.map((_, i) => i)),
      keyMode: keyMode(names.length, additional),
    };
  }

  private fillArray(node: ArrayNode, s: Obj, path: string): void {
    let prefix: unknown[] = [];
    let rest: unknown = s.items;
    if (Array.isArray(s.prefixItems)) prefix = s.prefixItems;
    else if ('prefixItems' in s) throw new Error(`${path}/prefixItems must be an array of schemas`);
    if (Array.isArray(s.items)) { prefix = s.items; rest = s.additionalItems; }
    node.prefix = prefix.map((sub, i) => this.compile(sub, `${path}/prefixItems/${i}`));
    node.items = rest === undefined || rest === true ? this.ctx.any : rest === false ? null : this.compile(rest, `${path}/items`);
    const count = (k: 'minItems' | 'maxItems', dflt: number) => {
      const v = s[k] ?? dflt;
      if (!(typeof v === 'number' && (v === Infinity || (Number.isInteger(v) && v >= 0)))) throw new Error(`${path}/${k} must be a whole number ≥ 0`);
      return v;
    };
    node.minItems = count('minItems', 0);
    node.maxItems = count('maxItems', Infinity);
    if (node.items === null) node.maxItems = Math.min(node.maxItems, node.prefix.length);
    if (node.minItems > node.maxItems) throw new Error(`${path}: no array has at least ${node.minItems} and at most ${node.maxItems} items`);
    node.countCap = Math.max(node.prefix.length, node.minItems, Number.isFinite(node.maxItems) ? node.maxItems : 0);
  }

  private literal(texts: string[]): LiteralNode {
    const unique = [...new Set(texts)];
    return this.make<LiteralNode>({ kind: 'literal', trie: new LiteralTrie(unique.map((t) => utf8.encode(t))) });
  }

  private union(): UnionNode {
    const u = this.make<UnionNode>({ kind: 'union', alts: [] });
    this.unions.push(u);
    return u;
  }

  /** The types `s` allows, or null for any value. */
  private types(s: Obj, path: string): string[] | null {
    let types: string[];
    if ('type' in s) {
      const t = s.type;
      types = typeof t === 'string' ? [t] : Array.isArray(t) ? [...t] : [];
      if (types.length === 0 || !types.every((x) => typeof x === 'string' && TYPES.includes(x))) {
        throw new Error(`${path}/type must be one of ${TYPES.join(', ')} or a list of them, got ${JSON.stringify(t)}`);
      }
    } else {
      // Keywords of one type without `type`: generate that type (a subset of what validates).
      types = [];
      if (OBJECT_KEYWORDS.some((k) => k in s)) types.push('object');
      if (ARRAY_KEYWORDS.some((k) => k in s)) types.push('array');
      if (types.length === 0) return null;
    }
    if (s.nullable === true && !types.includes('null')) types.push('null');
    // integer ⊂ number: keep the wider one.
    if (types.includes('number')) types = types.filter((x) => x !== 'integer');
    return [...new Set(types)];
  }

  private resolve(ref: unknown, path: string): unknown {
    if (typeof ref !== 'string' || !ref.startsWith('#')) throw new Error(`${path}: only local $ref ('#…') is supported, got ${JSON.stringify(ref)}`);
    let at: unknown = this.rootSchema;
    const pointer = decodeURIComponent(ref.slice(1));
    if (pointer === '') return at;
    if (!pointer.startsWith('/')) throw new Error(`${path}: $ref ${ref} is not a JSON pointer`);
    for (const part of pointer.slice(1).split('/')) {
      const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
      if (!isObj(at) && !Array.isArray(at)) throw new Error(`${path}: $ref ${ref} does not resolve`);
      at = (at as Record<string, unknown>)[key];
      if (at === undefined) throw new Error(`${path}: $ref ${ref} does not resolve`);
    }
    return at;
  }

  /** Unions hold only non-union alternatives, each once; a union reached again is left out. */
  flattenUnions(): void {
    const flat = new Map<UnionNode, Node[]>();
    const expand = (u: UnionNode, seen: Set<UnionNode>, out: Node[]) => {
      seen.add(u);
      for (const a of u.alts) {
        if (a.kind !== 'union') { if (!out.includes(a)) out.push(a); } else if (!seen.has(a)) expand(a, seen, out);
      }
    };
    for (const u of this.unions) {
      const out: Node[] = [];
      expand(u, new Set(), out);
      if (out.length === 0) throw new Error('an anyOf refers only to itself: it allows no value');
      flat.set(u, out);
    }
    for (const [u, alts] of flat) u.alts = alts;
  }

  /**
   * The shortest value of every node, as a least fixed point (recursion makes the graph circular);
   * then every choice that has no finite value is removed, so that whatever prefix the automaton
   * accepts can still be finished.
   */
  analyze(root: Node): void {
    for (let changed = true; changed;) {
      changed = false;
      for (const n of this.nodes) {
        const c = shortest(n);
        if (c < n.cost) { n.cost = c; changed = true; }
      }
    }
    if (root.cost === Infinity) throw new Error('the schema allows no finite JSON value (a required property or item recurses forever)');
    for (const n of this.nodes) {
      if (n.kind === 'union') n.alts = n.alts.filter((a) => a.cost < Infinity);
      else if (n.kind === 'object') {
        n.unusable = bitset(n.names.length, n.values.flatMap((v, i) => (v.cost === Infinity ? [i] : [])));
        if (n.additional && n.additional.cost === Infinity) { n.additional = null; n.keyMode = keyMode(n.names.length, null); }
      } else if (n.kind === 'array') {
        const dead = n.prefix.findIndex((p) => p.cost === Infinity);
        if (dead >= 0) n.maxItems = Math.min(n.maxItems, dead);
        if (n.items && n.items.cost === Infinity) { n.items = null; n.maxItems = Math.min(n.maxItems, n.prefix.length); }
      }
    }
    for (const n of this.nodes) if (n.cost < Infinity) n.nest = nesting(n);
  }
}

/** Bytes of the shortest value of `n`, from the current estimates of its children. */
function shortest(n: Node): number {
  switch (n.kind) {
    case 'any': return 1; // 0
    case 'string': return 2; // ""
    case 'number': return 1; // 0
    case 'literal': return literalPath(n.trie, 0)!.length;
    case 'union': return Math.min(...n.alts.map((a) => a.cost));
    case 'array': {
      let c = 2 + Math.max(0, n.minItems - 1);
      for (let i = 0; i < n.minItems; i++) c += arrayItem(n, i)!.cost;
      return c;
    }
    case 'object': {
      let c = 2;
      let k = 0;
      forEachBit(n.required, (i) => { c += 2 + n.nameBytes[i].length + n.values[i].cost + (k++ > 0 ? 1 : 0); });
      return c;
    }
  }
}

/** Nesting of the shortest value of `n`. */
function nesting(n: Node): number {
  switch (n.kind) {
    case 'union': return nesting(cheapest(n.alts));
    case 'array': {
      let d = 0;
      for (let i = 0; i < n.minItems; i++) d = Math.max(d, nesting(arrayItem(n, i)!));
      return 1 + d;
    }
    case 'object': {
      let d = 0;
      forEachBit(n.required, (i) => { d = Math.max(d, nesting(n.values[i])); });
      return 1 + d;
    }
    default: return 0;
  }
}

/** The shortest value of `n` as JSON text. */
export function minText(n: Node): Uint8Array {
  if (n.text) return n.text;
  const out: number[] = [];
  const put = (bytes: ArrayLike<number>) => { for (let i = 0; i < bytes.length; i++) out.push(bytes[i]); };
  switch (n.kind) {
    case 'any':
    case 'number': out.push(0x30); break;
    case 'string': out.push(0x22, 0x22); break;
    case 'literal': put(literalPath(n.trie, 0)!); break;
    case 'union': put(minText(cheapest(n.alts))); break;
    case 'array':
      out.push(0x5b);
      for (let i = 0; i < n.minItems; i++) { if (i > 0) out.push(0x2c); put(minText(arrayItem(n, i)!)); }
      out.push(0x5d);
      break;
    case 'object':
      out.push(0x7b);
      forEachBit(n.required, (i) => {
        if (out.length > 1) out.push(0x2c);
        out.push(0x22); put(n.nameBytes[i]); out.push(0x3a); put(minText(n.values[i]));
      });
      out.push(0x7d);
      break;
  }
  n.text = Uint8Array.from(out);
  return n.text;
}

function cheapest(nodes: readonly Node[]): Node {
  return nodes.reduce((a, b) => (b.cost < a.cost ? b : a));
}

/** The schema of item `i`; null where no item may stand. */
export function arrayItem(n: ArrayNode, i: number): Node | null {
  return i < n.prefix.length ? n.prefix[i] : n.items;
}

/** Bytes from trie node `from` to the nearest end of a text accepted by `ok` (breadth first); null if none. */
export function literalPath(trie: LiteralTrie, from: number, ok: (tag: number) => boolean = () => true): number[] | null {
  const queue: [number, number[]][] = [[from, []]];
  for (let q = 0; q < queue.length; q++) {
    const [node, path] = queue[q];
    if (trie.tag[node] >= 0 && ok(trie.tag[node])) return path;
    for (const [b, c] of trie.children(node)) queue.push([c, [...path, b]]);
  }
  return null;
}

function forEachBit(bits: Uint32Array, f: (i: number) => void): void {
  for (let w = 0; w < bits.length; w++) for (let k = 0; k < 32; k++) if ((bits[w] >>> k) & 1) f((w << 5) + k);
}

function bitset(n: number, set: number[]): Uint32Array {
  const b = new Uint32Array((n + 31) >>> 5);
  for (const i of set) b[i >>> 5] |= 1 << (i & 31);
  return b;
}

function keyMode(names: number, additional: Node | null): ObjectNode['keyMode'] {
  return additional === null ? 'literal' : names === 0 ? 'free' : 'hybrid';
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    case 'array': return Array.isArray(v);
    default: return isObj(v);
  }
}

function escapePointer(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}
