/**
 * Byte-level BPE training (issue #9 §2): a corpus → a Hugging Face tokenizer.json that minke's own
 * loader (tokenizer/from-hf.ts) reads, with DeepSeek-V3/V4's pre-tokenizer and V4's named special
 * tokens, so that the V4 chat encoding tokenizes unchanged with a small vocabulary.
 *
 * Layout of the ids, DeepSeek's own order shrunk to size:
 *   0, 1, 2            BOS, EOS, pad (in model.vocab, as DeepSeek-V3's file has them)
 *   3 … 258            the 256 bytes as GPT-2 characters, in GPT-2's byte order
 *   259 …              one token per learned merge
 *   then               V4's other named added tokens (User, Assistant, <think>, ｜DSML｜, fim …) in
 *                      V4's id order; the numbered placeholders of V4's table are left out.
 *
 * Pre-tokenizer: DeepSeek-V3's, after a first split that makes every digit its own piece — a small
 * model learns column arithmetic far more easily from single digits than from V3's 1–3 digit groups.
 *
 * Training: the corpus is cut at added tokens (as encode does with special tokens parsed), split by
 * that pre-tokenizer, and identical pieces are counted once. Each step
 * merges the most frequent adjacent pair; a tie goes to the pair whose left token, then right
 * token, sorts first as a JS string (UTF-16 code units). Pair counts are kept up to date
 * incrementally: a merge revisits only the words that hold its pair, and the best pair comes from a
 * max-heap whose stale entries are refreshed when they surface.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deepseekV4AddedTokens } from '../tokenizer/deepseek-v4-added-tokens.js';
import { preTypeByName } from '../tokenizer/pre-types.js';
import { makeSplitter } from '../tokenizer/regex-split.js';
import { SpecialSplitter } from '../tokenizer/special-split.js';
import { TokenType } from '../tokenizer/types.js';
import { BYTE_TO_CHAR, utf8Encode } from '../tokenizer/unicode.js';

/** The pre-tokenizer's split patterns, applied in order (see the header). */
export const NANO_PRE_PATTERNS: readonly string[] = ['\\p{N}', ...preTypeByName('deepseek-v3').patterns];

export interface BpeTrainOptions {
  /** Total ids: specials + 256 bytes + merges + the named added tokens. */
  readonly vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2); training may then stop short of vocabSize. */
  readonly minFrequency?: number;
  /** Called now and then with merges done and merges wanted. */
  readonly onProgress?: (done: number, wanted: number) => void;
}

export interface TrainedTokenizer {
  /** The tokenizer.json object. */
  readonly tokenizerJson: Record<string, unknown>;
  /** The tokenizer_config.json object. */
  readonly tokenizerConfig: Record<string, unknown>;
  /** Ids in use (≤ the requested vocabSize when pairs ran out): the model's vocab_size. */
  readonly vocabSize: number;
  /** "left right" in learning order. */
  readonly merges: readonly string[];
}

/** A V4 named added token (everything of V4's table but the numbered placeholders). */
interface NamedToken {
  readonly content: string;
  readonly special: boolean;
  readonly normalized: boolean;
}

const PLACEHOLDER = /^<(｜place▁holder▁no▁\d+｜|\|place_holder_mm_span_\d+\|)>$/;

/** V4's named added tokens in id order: BOS, EOS, pad first. */
function v4NamedTokens(): NamedToken[] {
  return deepseekV4AddedTokens().filter((t) => !PLACEHOLDER.test(t.content));
}

const ASCII = /^[\x00-\x7f]*$/;
const LEADING = 3; // BOS, EOS, pad
const BYTES = 256;

/** The bytes in GPT-2's order (printable ones first, then the rest): sorted by their stand-in character. */
const BYTE_ORDER: readonly number[] = Array.from({ length: 256 }, (_, b) => b)
  .sort((a, b) => BYTE_TO_CHAR[a].charCodeAt(0) - BYTE_TO_CHAR[b].charCodeAt(0));

/** The smallest vocabulary: specials, bytes and the named tokens, no merge. */
export function minimumVocabSize(): number {
  return BYTES + v4NamedTokens().length;
}

const SMALL_SHIFT = 2 ** 15;
const LARGE_SHIFT = 2 ** 21;

/** A pair of ids as one number: left · shift + right. */
class PairKeys {
  constructor(readonly shift: number) {}
  key(a: number, b: number): number { return a * this.shift + b; }
  left(k: number): number { return Math.floor(k / this.shift); }
  right(k: number): number { return k % this.shift; }
}

/** Max-heap of (count, pair) by count, then the tie-break on the token texts. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  constructor(private readonly text: readonly string[], private readonly pk: PairKeys) {}

  get size(): number { return this.keys.length; }

  /** Whether entry (c1, k1) comes before (c2, k2). */
  private before(c1: number, k1: number, c2: number, k2: number): boolean {
    if (c1 !== c2) return c1 > c2;
    const l1 = this.text[this.pk.left(k1)], l2 = this.text[this.pk.left(k2)];
    if (l1 !== l2) return l1 < l2;
    return this.text[this.pk.right(k1)] < this.text[this.pk.right(k2)];
  }

  push(count: number, key: number): void {
    let i = this.keys.length;
    this.counts.push(count);
    this.keys.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(count, key, this.counts[p], this.keys[p])) break;
      this.counts[i] = this.counts[p]; this.keys[i] = this.keys[p];
      i = p;
    }
    this.counts[i] = count; this.keys[i] = key;
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const c = this.counts.pop()!, k = this.keys.pop()!;
    const n = this.keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i, bc = c, bk = k;
        if (l < n && this.before(this.counts[l], this.keys[l], bc, bk)) { best = l; bc = this.counts[l]; bk = this.keys[l]; }
        if (r < n && this.before(this.counts[r], this.keys[r], bc, bk)) { best = r; }
        if (best === i) break;
        this.counts[i] = this.counts[best]; this.keys[i] = this.keys[best];
        i = best;
      }
      this.counts[i] = c; this.keys[i] = k;
    }
    return top;
  }
}

/** The corpus as distinct pre-tokenized pieces with their counts, added tokens cut out. */
function countPieces(corpus: Iterable<string>, named: readonly NamedToken[]): Map<string, number> {
  const contents = named.map((t) => t.content);
  const specials = new SpecialSplitter(contents, new Uint8Array(contents.length).fill(TokenType.CONTROL), new Set(), new Set());
  const split = makeSplitter(NANO_PRE_PATTERNS);
  const counts = new Map<string, number>();
  for (const doc of corpus) {
    if (typeof doc !== 'string') throw new Error(`BPE training: corpus entries must be strings, got ${typeof doc}`);
    for (const frag of specials.split(doc, true)) {
      if (typeof frag !== 'string') continue;
      for (const piece of split(frag)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Trains a byte-level BPE vocabulary of `opts.vocabSize` ids on `corpus` (one string, or documents
 * that do not run into each other). Deterministic: the same corpus and options give the same file.
 */
export function trainBpe(corpus: string | Iterable<string>, opts: BpeTrainOptions): TrainedTokenizer {
  const named = v4NamedTokens();
  const minSize = BYTES + named.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minSize) {
    throw new Error(`BPE training: vocabSize must be an integer ≥ ${minSize} (256 bytes + ${named.length} V4 special tokens), got ${opts.vocabSize}`);
  }
  if (opts.vocabSize >= LARGE_SHIFT) throw new Error(`BPE training: vocabSize must be below ${LARGE_SHIFT}, got ${opts.vocabSize}`);
  // Keys stay small integers (fast map keys) while ids fit in 15 bits; else exact doubles.
  const pk = new PairKeys(opts.vocabSize <= SMALL_SHIFT ? SMALL_SHIFT : LARGE_SHIFT);
  const minFrequency = opts.minFrequency ?? 2;
  if (!(Number.isInteger(minFrequency) && minFrequency >= 1)) throw new Error(`BPE training: minFrequency must be an integer ≥ 1, got ${minFrequency}`);
  const wanted = opts.vocabSize - minSize;

  // Token texts by id (BPE part): specials, bytes, then merges as they are learned.
  const text: string[] = named.slice(0, LEADING).map((t) => t.content);
  const byteId = new Int32Array(256);
  for (const b of BYTE_ORDER) { byteId[b] = text.length; text.push(BYTE_TO_CHAR[b]); }
  const idOf = new Map(text.map((t, id) => [t, id]));

  const pieces = countPieces(typeof corpus === 'string' ? [corpus] : corpus, named);
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [piece, n] of pieces) {
    const w: number[] = [];
    if (ASCII.test(piece)) for (let i = 0; i < piece.length; i++) w.push(byteId[piece.charCodeAt(i)]);
    else for (const b of utf8Encode(piece)) w.push(byteId[b]);
    words.push(w);
    freq.push(n);
  }

  const pairCount = new Map<number, number>();
  // Words that hold (or once held) each pair, possibly repeated: a visit that finds no pair changes nothing.
  const where = new Map<number, number[]>();
  const note = (k: number, wi: number): void => {
    const list = where.get(k);
    if (!list) where.set(k, [wi]);
    else if (list[list.length - 1] !== wi) list.push(wi);
  };
  words.forEach((w, i) => {
    for (let j = 0; j + 1 < w.length; j++) {
      const k = pk.key(w[j], w[j + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + freq[i]);
      note(k, i);
    }
  });
  const heap = new PairHeap(text, pk);
  for (const [k, c] of pairCount) heap.push(c, k);

  const merges: string[] = [];
  let added = 0;
  while (added < wanted && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (count !== current) {
      // Stale: a lower count is re-queued; a higher one already has its own entry.
      if (current > 0 && current < count) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const a = pk.left(key), b = pk.right(key);
    const merged = text[a] + text[b];
    let m = idOf.get(merged);
    if (m === undefined) {
      m = text.length; text.push(merged); idOf.set(merged, m); added++;
      if (opts.onProgress && (added % 256 === 0 || added === wanted)) opts.onProgress(added, wanted);
    }
    merges.push(`${text[a]} ${text[b]}`);

    // Each occurrence of (a, b) in a word: the pairs with its neighbours move to m. The word is
    // rewritten in place (writes never pass reads); a neighbour already merged counts as m.
    const touched = new Set<number>();
    const grew = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const w = words[wi];
      const f = freq[wi];
      const change = (k: number, d: number): void => {
        pairCount.set(k, (pairCount.get(k) ?? 0) + d);
        touched.add(k);
        if (d > 0) { grew.add(k); note(k, wi); }
      };
      let o = 0;
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          change(key, -f);
          if (o > 0) { change(pk.key(w[o - 1], a), -f); change(pk.key(w[o - 1], m), f); }
          if (i + 2 < w.length) { change(pk.key(b, w[i + 2]), -f); change(pk.key(m, w[i + 2]), f); }
          w[o++] = m;
          i++;
        } else {
          w[o++] = w[i];
        }
      }
      w.length = o;
    }
    for (const k of touched) {
      const c = pairCount.get(k)!;
      if (c <= 0) { pairCount.delete(k); where.delete(k); } else if (grew.has(k)) heap.push(c, k);
    }
  }
  return buildFiles(text, merges, named);
}

/** tokenizer.json and tokenizer_config.json for the learned vocabulary. */
function buildFiles(text: readonly string[], merges: string[], named: readonly NamedToken[]): TrainedTokenizer {
  const vocab: Record<string, number> = {};
  text.forEach((t, id) => { vocab[t] = id; });
  const later = named.slice(LEADING).map((t, i) => ({ ...t, id: text.length + i }));
  const addedTokens = [...named.slice(0, LEADING).map((t, id) => ({ ...t, id })), ...later].map((t) => ({
    id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: t.normalized, special: t.special,
  }));
  const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...NANO_PRE_PATTERNS.map(split),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
  const [bos, eos] = named;
  // V4's tokenizer_config (spec §12): encode adds no BOS, the chat encoder writes it.
  const tokenizerConfig = {
    add_bos_token: false,
    add_eos_token: false,
    bos_token: bos.content,
    eos_token: eos.content,
    pad_token: eos.content,
    clean_up_tokenization_spaces: false,
    model_max_length: 1048576,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig, vocabSize: text.length + later.length, merges };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if missing). */
export function writeTrainedTokenizer(dir: string, trained: TrainedTokenizer): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(trained.tokenizerJson, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(trained.tokenizerConfig, null, 2) + '\n');
}
