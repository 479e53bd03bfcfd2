/**
 * Constrained decoding to JSON: the public face of the automaton (frames.ts), the schema compiler
 * (schema.ts) and the token masks (mask.ts). States are immutable, so a request can keep, fork or
 * roll back its state freely; they implement the engine's TokenConstraint.
 */
import type { Tokenizer } from '../../tokenizer/index.js';
import type { TokenConstraint } from '../engine.js';
import { DocFrame, type Frame } from './frames.js';
import { allowedTokens, MaskCache, stepAll } from './mask.js';
import { compileSchema, type CompiledSchema, type JsonSchema, type SchemaOptions } from './schema.js';
import { tokenTrie, type TokenTrie } from './vocabulary.js';

export type JsonConstraintOptions = SchemaOptions;

/** A schema compiled against one tokenizer's vocabulary. */
export class JsonConstraint {
  /** Masks of this schema's frames (strings and numbers are cached with the vocabulary). */
  readonly cache = new MaskCache();
  /** Whole masks by stack key: a state met again (the next token inside the same string) costs a lookup. */
  readonly stateMasks = new Map<string, Uint32Array>();
  constructor(readonly schema: CompiledSchema, readonly trie: TokenTrie, readonly tokenizer: Tokenizer) {}

  /** The state before the first token. */
  start(): ConstraintState {
    return new ConstraintState(this, [new DocFrame(this.schema.root, false, 0)], false);
  }
}

/**
 * `schema`: a JSON Schema (schema.ts lists what is enforced), 'json' for any JSON value, or
 * 'json_object' for any JSON object (OpenAI response_format json_object).
 */
export function compileJsonConstraint(schema: JsonSchema | 'json' | 'json_object', tokenizer: Tokenizer, options: JsonConstraintOptions = {}): JsonConstraint {
  return new JsonConstraint(compileSchema(schema, options), tokenTrie(tokenizer), tokenizer);
}

const utf8 = new TextEncoder();
/** Whole masks kept per constraint (a vocabulary bitset each: 16 KiB at 128k tokens). */
const STATE_MASKS = 256;

export class ConstraintState implements TokenConstraint {
  private bitsMemo?: Uint32Array;
  private canEndMemo?: boolean;

  /** `tops`: the top frame of each stack still possible (several only where an anyOf is ambiguous). */
  constructor(readonly constraint: JsonConstraint, private readonly tops: readonly Frame[], private readonly ended: boolean) {}

  /** The text so far is one whole JSON value of the schema (and the suffix, if any): end-of-generation is allowed. */
  get canEnd(): boolean {
    if (this.canEndMemo === undefined) this.canEndMemo = this.tops.some(stackComplete);
    return this.canEndMemo;
  }

  /** Nothing but end-of-generation can follow (or it was accepted): generation stops here. */
  get done(): boolean {
    if (this.ended) return true;
    if (!this.canEnd) return false;
    const bits = this.bits();
    const eog = new Set(this.constraint.trie.eog);
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w];
      while (word !== 0) {
        const k = 31 - Math.clz32(word);
        if (!eog.has((w << 5) + k)) return false;
        word &= ~(1 << k);
      }
    }
    return true;
  }

  /**
   * Allowed tokens as a bitset over the vocabulary (bit id & 31 of word id >>> 5), end-of-generation
   * included when allowed. Shared with other states: read it, never write it.
   */
  bits(): Uint32Array {
    if (!this.bitsMemo) {
      const c = this.constraint;
      if (this.ended) this.bitsMemo = new Uint32Array(c.trie.words);
      else {
        const key = this.tops.map(stackKey).join('||');
        let bits = c.stateMasks.get(key);
        if (!bits) {
          bits = allowedTokens(c.trie, this.tops, c.cache);
          if (this.canEnd) for (const id of c.trie.eog) bits[id >>> 5] |= 1 << (id & 31);
          if (c.stateMasks.size >= STATE_MASKS) c.stateMasks.clear();
          c.stateMasks.set(key, bits);
        }
        this.bitsMemo = bits;
      }
    }
    return this.bitsMemo;
  }

  /** 1 for each token that may come next, 0 for the others (vocabulary-sized). */
  mask(): Uint8Array {
    const bits = this.bits();
    const out = new Uint8Array(this.constraint.trie.vocabSize);
    for (let id = 0; id < out.length; id++) out[id] = (bits[id >>> 5] >>> (id & 31)) & 1;
    return out;
  }

  allows(id: number): boolean {
    return id >= 0 && id < this.constraint.trie.vocabSize && ((this.bits()[id >>> 5] >>> (id & 31)) & 1) === 1;
  }

  /** Sets the logits of tokens that may not come next (and of ids past the vocabulary) to −Infinity. */
  maskLogits(logits: Float32Array): void {
    const bits = this.bits();
    const V = this.constraint.trie.vocabSize;
    const n = Math.min(logits.length, V);
    const words = (n + 31) >>> 5;
    let any = false;
    for (let w = 0; w < words;) {
      const word = bits[w];
      if (word === 0) {
        // Runs of disallowed words in one native fill: most of the vocabulary outside strings.
        let e = w + 1;
        while (e < words && bits[e] === 0) e++;
        logits.fill(-Infinity, w << 5, Math.min(n, e << 5));
        w = e;
        continue;
      }
      any = true;
      // Only the disallowed bits of a mixed word, lowest first.
      const base = w << 5;
      for (let z = ~word; z !== 0; z &= z - 1) {
        const id = base + 31 - Math.clz32(z & -z);
        if (id < n) logits[id] = -Infinity;
      }
      w++;
    }
    if (logits.length > V) logits.fill(-Infinity, V);
    if (!any) {
      throw new Error(this.ended
        ? 'the constrained output is complete: no token may follow'
        : 'no token can continue the constrained output (the schema allows no value from here)');
    }
  }

  /**
   * The shortest bytes that finish the JSON value from here (empty when it may end now): to close
   * the output when the token budget runs out, or to steer towards an end.
   */
  completion(): Uint8Array {
    let best: number[] | undefined;
    for (const top of this.tops) {
      const out: number[] = [];
      for (let f: Frame | null = top; f; f = f.parent) out.push(...f.tail());
      if (!best || out.length < best.length) best = out;
    }
    return Uint8Array.from(best ?? []);
  }

  /** The state after token `id`; an error if the token is not allowed here. */
  accept(id: number): ConstraintState {
    const trie = this.constraint.trie;
    if (this.ended) throw new Error(`token ${id} after the end of the constrained output`);
    if (trie.eog.includes(id)) {
      if (!this.canEnd) throw new Error(`end of generation (token ${id}) before the JSON value is complete`);
      return new ConstraintState(this.constraint, [], true);
    }
    const piece = Number.isInteger(id) && id >= 0 && id < trie.vocabSize ? trie.pieces[id] : undefined;
    if (!piece) throw new Error(`token ${id} can never appear in constrained output (special, empty or outside the vocabulary)`);
    const next = this.feed(piece);
    if (!next) throw new Error(`token ${id} (${JSON.stringify(this.constraint.tokenizer.tokenText(id))}) is not allowed here`);
    return next;
  }

  /** The state after these bytes (a forced prefix, or text to check); null if they do not fit. */
  feed(text: string | Uint8Array): ConstraintState | null {
    if (this.ended) return text.length === 0 ? this : null;
    const bytes = typeof text === 'string' ? utf8.encode(text) : text;
    let s: Frame | Frame[] | null = this.tops.length === 1 ? this.tops[0] : [...this.tops];
    for (const b of bytes) {
      s = stepAll(s, b);
      if (s === null) return null;
    }
    return new ConstraintState(this.constraint, Array.isArray(s) ? dedupe(s) : [s], false);
  }
}

function stackComplete(top: Frame): boolean {
  for (let f: Frame | null = top; f; f = f.parent) if (!f.complete) return false;
  return true;
}

/** Equal keys all the way down, equal behaviour. */
function stackKey(top: Frame): string {
  let k = '';
  for (let f: Frame | null = top; f; f = f.parent) k += f.key + '|';
  return k;
}

/** Stacks with equal keys behave alike: keep one of each. */
function dedupe(tops: Frame[]): Frame[] {
  const seen = new Map<string, Frame>();
  for (const t of tops) {
    const k = stackKey(t);
    if (!seen.has(k)) seen.set(k, t);
  }
  return [...seen.values()];
}
