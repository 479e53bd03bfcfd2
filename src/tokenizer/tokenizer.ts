/**
 * The tokenizer behind every factory: a vocabulary (texts, types, scores or merges, special ids)
 * with llama.cpp's encode (special tokens first, then SentencePiece or byte-level BPE) and decode.
 */
import { codePoints, mergeByRank, mergeByScore } from './merge.js';
import { makeSplitter, type Splitter } from './regex-split.js';
import { resolveSpecials, type SpecialIds } from './specials.js';
import { SpecialSplitter } from './special-split.js';
import { TokenType, type DecodeOptions, type DecoderOptions, type EncodeOptions, type StreamDecoder, type Tokenizer } from './types.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE, concatBytes, utf8Encode, wellFormed } from './unicode.js';

/** Everything a factory gathers from a GGUF, a tokenizer.json or a llama2.c file. */
export interface VocabSpec {
  /** 'spm': SentencePiece pieces ('▁' for space, <0xNN> byte tokens); 'bpe': GPT-2 byte-level pieces. */
  readonly kind: 'spm' | 'bpe';
  readonly tokens: readonly string[];
  /** TokenType per id; completed in place by llama.cpp's special-token rules. */
  readonly types: Uint8Array;
  /** SPM merging by token score (llama.cpp); without scores, pieces merge by `merges` rank. */
  readonly scores?: Float32Array;
  /** "left right", rank = index; the first of duplicates counts. */
  readonly merges?: readonly string[];
  /** Pre-tokenizer regexes (bpe only). */
  readonly pre?: readonly string[];
  readonly special: SpecialIds;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SPM: a space before the text and after every special token, dropped again when detokenizing. */
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  readonly ignoreMerges: boolean;
  /** Rank-merged SPM (tokenizer.json): consecutive characters missing from a byte-less vocabulary make one <unk>. */
  readonly fuseUnk?: boolean;
  readonly lstrip?: ReadonlySet<number>;
  readonly rstrip?: ReadonlySet<number>;
  readonly chatTemplate?: string;
}

const EMPTY = new Uint8Array(0);
const SPACE = '\u2581';
const CACHE_LIMIT = 1 << 16;

export function createTokenizer(spec: VocabSpec): Tokenizer {
  return new VocabTokenizer(spec);
}

class VocabTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly chatTemplate?: string;

  private readonly idOf = new Map<string, number>();
  private readonly ranks?: Map<string, number>;
  private readonly split?: Splitter;
  private readonly specials: SpecialSplitter;
  private readonly pieces: (Uint8Array | undefined)[];
  private readonly byteIds: (number | undefined)[] = new Array(256);
  private readonly words = new Map<string, number[]>();
  private readonly unk?: number;

  constructor(private readonly spec: VocabSpec) {
    const { tokens, types } = spec;
    if (types.length !== tokens.length) throw new Error(`token types: ${types.length} entries for ${tokens.length} tokens`);
    if (spec.scores && spec.scores.length !== tokens.length) throw new Error(`token scores: ${spec.scores.length} entries for ${tokens.length} tokens`);
    tokens.forEach((t, id) => this.idOf.set(t, id));
    const special = { ...spec.special };
    for (const [k, v] of Object.entries(special)) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v < tokens.length)) throw new Error(`special token ${k} = ${v} is not a token id (vocabulary of ${tokens.length})`);
    }
    this.eog = resolveSpecials(this.idOf, types, special);
    this.vocabSize = tokens.length;
    this.bos = special.bos;
    this.eos = special.eos;
    this.unk = special.unk;
    this.addBos = spec.addBos;
    this.addEos = spec.addEos;
    this.chatTemplate = spec.chatTemplate;
    this.specials = new SpecialSplitter(tokens, types, spec.lstrip ?? new Set(), spec.rstrip ?? new Set());
    this.pieces = new Array(tokens.length);
    if (!spec.scores) {
      if (!spec.merges) throw new Error('a vocabulary needs token scores (SentencePiece) or merges (BPE)');
      this.ranks = new Map();
      spec.merges.forEach((m, rank) => { if (!this.ranks!.has(m)) this.ranks!.set(m, rank); });
    }
    if (spec.kind === 'bpe') {
      if (!spec.pre) throw new Error('a byte-level BPE vocabulary needs a pre-tokenizer');
      this.split = makeSplitter(spec.pre);
    } else {
      // byte_to_token: <0xNN>, else the byte as a one-character token.
      for (let b = 0; b < 256; b++) {
        this.byteIds[b] = this.idOf.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? (b < 0x80 ? this.idOf.get(String.fromCharCode(b)) : undefined);
      }
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addBos = opts.addBos ?? this.addBos;
    const addEos = opts.addEos ?? this.addEos;
    const out: number[] = [];
    if (addBos) out.push(this.required(this.bos, 'BOS'));
    let prevSpecial = true;
    for (const f of this.specials.split(wellFormed(text), opts.parseSpecial ?? false)) {
      if (typeof f === 'number') { out.push(f); prevSpecial = true; continue; }
      if (this.spec.kind === 'spm') this.encodeSpm((this.spec.addSpacePrefix && prevSpecial ? ' ' : '') + f, out);
      else for (const w of this.split!(f)) this.encodeWord(w, out);
      prevSpecial = false;
    }
    if (addEos) out.push(this.required(this.eos, 'EOS'));
    return out;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const special = !(opts.skipSpecial ?? false);
    const parts = ids.map((id, i) => {
      const p = this.render(id, special);
      return i === 0 && this.spec.addSpacePrefix && p[0] === 0x20 ? p.subarray(1) : p;
    });
    const bytes = concatBytes(parts);
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.spec.cleanSpaces ? cleanSpaces(bytes) : bytes);
  }

  piece(id: number): Uint8Array {
    return this.render(id, true).slice();
  }

  tokenId(text: string): number | undefined {
    return this.idOf.get(text);
  }

  tokenText(id: number): string {
    return this.spec.tokens[this.checkId(id)];
  }

  tokenType(id: number): TokenType {
    return this.spec.types[this.checkId(id)] as TokenType;
  }

  decoder(opts: DecoderOptions = {}): StreamDecoder {
    const special = !(opts.skipSpecial ?? false);
    const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
    let strip = (opts.stripLeadingSpace ?? false) && this.spec.addSpacePrefix;
    return {
      push: (id) => {
        let p = this.render(id, special);
        if (strip && p[0] === 0x20) p = p.subarray(1);
        strip = false;
        return utf8.decode(p, { stream: true });
      },
      flush: () => utf8.decode(),
    };
  }

  private required(id: number | undefined, what: string): number {
    if (id === undefined) throw new Error(`this vocabulary has no ${what} token`);
    return id;
  }

  private checkId(id: number): number {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) throw new Error(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    return id;
  }

  /** token_to_piece: the bytes of one token; control and unknown tokens only when `special`. */
  private render(id: number, special: boolean): Uint8Array {
    const type = this.spec.types[this.checkId(id)];
    if (!special && (type === TokenType.CONTROL || type === TokenType.UNKNOWN)) return EMPTY;
    let p = this.pieces[id];
    if (p === undefined) {
      const text = this.spec.tokens[id];
      if (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.USER_DEFINED) p = utf8Encode(text);
      else if (type === TokenType.NORMAL) p = this.spec.kind === 'spm' ? utf8Encode(text.replaceAll(SPACE, ' ')) : byteLevelDecode(text);
      else if (type === TokenType.BYTE && this.spec.kind === 'spm') p = Uint8Array.of(parseInt(text.slice(3, 5), 16));
      else p = EMPTY; // unused, undefined, and byte tokens of a byte-level vocabulary render as nothing
      this.pieces[id] = p;
    }
    return p;
  }

  private scoreOf = (text: string): number | undefined => {
    const id = this.idOf.get(text);
    return id === undefined ? undefined : this.spec.scores![id];
  };

  private rankOf = (left: string, right: string): number | undefined => this.ranks!.get(`${left} ${right}`);

  /** Characters found in some token of two or more characters: only these can take part in a merge. */
  private mergeable?: Set<string>;

  /**
   * Score merging, run by run between characters no merge can involve (e.g. '\n' in Llama's
   * vocabulary): the same merges as over the whole text, with far smaller queues.
   */
  private mergeRuns(symbols: string[]): string[] {
    if (!this.mergeable) {
      this.mergeable = new Set();
      for (const t of this.spec.tokens) {
        const cps = codePoints(t);
        if (cps.length > 1) for (const c of cps) this.mergeable.add(c);
      }
    }
    const out: string[] = [];
    let from = 0;
    for (let i = 0; i <= symbols.length; i++) {
      if (i < symbols.length && this.mergeable.has(symbols[i])) continue;
      if (i > from) for (const p of mergeByScore(symbols.slice(from, i), this.scoreOf)) out.push(p);
      if (i < symbols.length) out.push(symbols[i]);
      from = i + 1;
    }
    return out;
  }

  /** llm_tokenizer_spm_session, with '▁' for each space. */
  private encodeSpm(text: string, out: number[]): void {
    const symbols = codePoints(text.replaceAll(' ', SPACE));
    const pieces = this.spec.scores ? this.mergeRuns(symbols) : mergeByRank(symbols, this.rankOf);
    let lastUnk = false;
    for (const p of pieces) {
      const id = this.idOf.get(p);
      if (id !== undefined) { out.push(id); lastUnk = false; continue; }
      // A character missing from the vocabulary: its bytes, else <unk>.
      const bytes = utf8Encode(p);
      if (bytes.every((b) => this.byteIds[b] !== undefined)) { for (const b of bytes) out.push(this.byteIds[b]!); lastUnk = false; continue; }
      if (this.unk === undefined) throw new Error(`no token, byte token or <unk> for ${JSON.stringify(p)}`);
      if (!(lastUnk && this.spec.fuseUnk)) out.push(this.unk);
      lastUnk = true;
    }
  }

  /** llm_tokenizer_bpe_session for one pre-token, cached. */
  private encodeWord(word: string, out: number[]): void {
    let ids = this.words.get(word);
    if (ids === undefined) {
      ids = [];
      let mapped = '';
      for (const b of utf8Encode(word)) mapped += BYTE_TO_CHAR[b];
      const whole = this.spec.ignoreMerges ? this.idOf.get(mapped) : undefined;
      if (whole !== undefined) ids.push(whole);
      else {
        for (const p of mergeByRank(mapped.split(''), this.rankOf)) {
          const id = this.idOf.get(p);
          if (id !== undefined) { ids.push(id); continue; }
          // No token: llama.cpp looks up each byte of the piece alone, which only ASCII can match.
          for (const ch of p) {
            const byteId = ch.charCodeAt(0) < 0x80 ? this.idOf.get(ch) : undefined;
            if (byteId !== undefined) ids.push(byteId);
          }
        }
      }
      if (this.words.size >= CACHE_LIMIT) this.words.clear();
      this.words.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }
}

/** llama_decode_text: each character of a byte-level token back to its byte. */
function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b !== undefined) out.push(b);
    else {
      const hex = [...utf8Encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('');
      out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
    }
  }
  return Uint8Array.from(out);
}

/**
 * llama.cpp's clean_spaces passes over the detokenized bytes: drop the space before ? ! . , then
 * both spaces around a lone apostrophe, then the space before 's 'm 're 've.
 */
function cleanSpaces(text: Uint8Array): Uint8Array {
  const SP = 0x20, AP = 0x27;
  const t = text.slice();
  // Each pass compacts in place and reads t[i - 1] after writing at most there, as llama.cpp does.
  let n = t.length;
  let total = n ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const x = t[i];
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  n = total;
  total = n ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const x = t[i];
    if (x === AP && i + 1 < n && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  n = total;
  total = n ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const x = t[i];
    if (t[i - 1] === SP && x === AP && i + 1 < n) {
      const x1 = t[i + 1];
      if (x1 === 0x73 || x1 === 0x6d) total--; // 's 'm
      else if (x1 !== 0x74 && x1 !== 0x64 && i + 2 < n) {
        const x2 = t[i + 2];
        if ((x1 === 0x72 || x1 === 0x76) && x2 === 0x65) total--; // 're 've
      }
    }
    t[total++] = x;
  }
  return t.subarray(0, total);
}
