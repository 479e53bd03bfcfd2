/**
 * DeepSeek-V4.1 Engram memory, host side (deepseek-v41.md §6A): the compressed token map (§6A.2),
 * the n-gram hash constants and row ids (§6A.3), and a table reader that fetches rows from the
 * checkpoint on demand behind an LRU cache (§6A.5: the Flash tables are ~200 GB, never loaded).
 *
 * Hash ids are exact 64-bit integer arithmetic. EngramHasher does it on doubles holding 32- and
 * 16-bit pieces (faster than BigInt; bench/engram.ts measures both and keeps the BigInt form as
 * the reference the tests compare against).
 */
import type { WeightFile } from '../formats/weight-file.js';
import { E4M3_TO_F32 } from '../tensor/float.js';

export interface EngramConfig {
  readonly layerIds: readonly number[];      // engram_layer_ids
  readonly vocabSize: number;                // engram_vocab_size (start of the prime search)
  readonly numEmbeddings: readonly number[]; // engram_num_embeddings (rows per layer table; checked = sum of primes)
  readonly maxNgram: number;                 // engram_max_ngram_size N
  readonly heads: number;                    // engram_n_heads
  readonly headDim: number;                  // engram_head_dim
  readonly padId: number;                    // engram_pad_id
  readonly compressedVocab: number;          // engram_compressed_vocab_size
}

/** A token id that takes no part in any n-gram (an image position): it and every earlier look-back hash as pad. */
export const ENGRAM_DEAD = -1;

// ---- §6A.2 compressed token ids -------------------------------------------------------------------

// Unicode White_Space (Rust's char::is_whitespace, what the tokenizers Strip normaliser removes);
// differs from String.prototype.trim on U+0085 and U+FEFF.
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const EDGE_WS = new RegExp(`^[${WS}]+|[${WS}]+$`, 'gu');
// Stands in for a text that is exactly one space while the edges are stripped.
const SENTINEL = '\ue000';

/** The normalised key of one decoded token text (empty for all-whitespace texts other than " "). */
export function engramNormalize(text: string): string {
  let s = text.normalize('NFKC').normalize('NFD').replace(/\p{Mn}/gu, '');
  // Code point by code point, like Rust's char::to_lowercase (no final-sigma context rule).
  s = Array.from(s, (c) => c.toLowerCase()).join('');
  s = s.replace(/[ \t\r\n]+/g, ' ');
  if (s === ' ') s = SENTINEL;
  return s.replace(EDGE_WS, '').replaceAll(SENTINEL, ' ');
}

/**
 * §6A.2: compressed id per vocabulary id; `decoded[i]` = id i decoded alone, `raw[i]` = its raw
 * token string. Throws naming both counts when the distinct-key count is not `compressedVocab`
 * (when given: a checkpoint's engram_compressed_vocab_size).
 */
export function engramTokenMap(decoded: readonly string[], raw: readonly string[], compressedVocab?: number): Int32Array {
  if (decoded.length !== raw.length) {
    throw new Error(`Engram token map: ${decoded.length} decoded texts but ${raw.length} raw token strings`);
  }
  const ids = new Map<string, number>();
  const map = new Int32Array(decoded.length);
  for (let i = 0; i < decoded.length; i++) {
    const text = decoded[i];
    // Partial UTF-8 byte tokens decode to U+FFFD: key them by their raw form.
    const key = text.includes('\ufffd') ? raw[i] : engramNormalize(text) || text;
    let id = ids.get(key);
    if (id === undefined) ids.set(key, id = ids.size);
    map[i] = id;
  }
  if (compressedVocab !== undefined && ids.size !== compressedVocab) {
    throw new Error(`Engram token map: the vocabulary has ${ids.size} distinct normalised keys but engram_compressed_vocab_size is ${compressedVocab}`);
  }
  return map;
}

// ---- numpy.random.default_rng(seed).integers(0, high, dtype=int64) ---------------------------------

const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULT = 0x2360ed051fc65da44385df649fccf645n;

/** numpy SeedSequence(seed).generate_state(words32, uint32) for a non-negative integer seed (no spawn key). */
function seedSequenceWords(seed: bigint, words32: number): Uint32Array {
  const entropy: number[] = [];
  for (let n = seed; entropy.length === 0 || n > 0n; n >>= 32n) entropy.push(Number(n & 0xffffffffn));
  let hashConst = 0x43b0d7e5;
  const hashmix = (value: number): number => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, 0x931e8875) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    const r = (Math.imul(0xca01f9dd, x) - Math.imul(0x4973f715, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = new Uint32Array(4);
  for (let i = 0; i < 4; i++) pool[i] = hashmix(entropy[i] ?? 0);
  for (let src = 0; src < 4; src++) {
    for (let dst = 0; dst < 4; dst++) if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  }
  for (let src = 4; src < entropy.length; src++) {
    for (let dst = 0; dst < 4; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  const out = new Uint32Array(words32);
  let hc = 0x8b51f9dd;
  for (let i = 0; i < words32; i++) {
    let v = (pool[i % 4] ^ hc) >>> 0;
    hc = Math.imul(hc, 0x58f38ded) >>> 0;
    v = Math.imul(v, hc) >>> 0;
    out[i] = (v ^ (v >>> 16)) >>> 0;
  }
  return out;
}

/** numpy's PCG64 (128-bit LCG, XSL-RR output) seeded the way default_rng seeds it. */
class Pcg64 {
  private state = 0n;
  private readonly inc: bigint;
  private half: number | undefined; // the upper half of a 64-bit draw, kept for the next 32-bit draw

  constructor(seed: bigint) {
    const w = seedSequenceWords(seed, 8);
    const u64 = (k: number): bigint => BigInt(w[2 * k]) | (BigInt(w[2 * k + 1]) << 32n);
    this.inc = ((((u64(2) << 64n) | u64(3)) << 1n) | 1n) & MASK128;
    this.step();
    this.state = (this.state + ((u64(0) << 64n) | u64(1))) & MASK128;
    this.step();
  }

  private step(): void {
    this.state = (this.state * PCG_MULT + this.inc) & MASK128;
  }

  next64(): bigint {
    this.step();
    const x = ((this.state >> 64n) ^ this.state) & MASK64;
    const rot = this.state >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & MASK64;
  }

  next32(): number {
    if (this.half !== undefined) {
      const h = this.half;
      this.half = undefined;
      return h;
    }
    const v = this.next64();
    this.half = Number(v >> 32n);
    return Number(v & 0xffffffffn);
  }

  /** integers(0, high) as numpy draws it: Lemire's method, on 32-bit draws when high − 1 fits in 32 bits. */
  below(high: bigint): bigint {
    const rng = high - 1n; // numpy works with the closed range [0, rng]
    if (rng === 0n) return 0n;
    if (rng <= 0xffffffffn) {
      if (rng === 0xffffffffn) return BigInt(this.next32());
      const excl = Number(high);
      const draw = (): [bigint, number] => {
        const m = BigInt(this.next32()) * BigInt(excl);
        return [m >> 32n, Number(m & 0xffffffffn)];
      };
      let [hi, lo] = draw();
      if (lo < excl) {
        const threshold = (0xffffffff - Number(rng)) % excl;
        while (lo < threshold) [hi, lo] = draw();
      }
      return hi;
    }
    let m = this.next64() * high;
    if ((m & MASK64) < high) {
      const threshold = ((1n << 64n) - high) % high;
      while ((m & MASK64) < threshold) m = this.next64() * high;
    }
    return m >> 64n;
  }
}

/** §6A.3 multipliers m_s for Engram layer `layerId`: numpy.random.default_rng(10007·layerId).integers(0, B, size=N, dtype=int64)·2+1. */
export function engramMultipliers(layerId: number, maxNgram: number, compressedVocab: number): bigint[] {
  if (!Number.isSafeInteger(layerId) || layerId < 0) throw new Error(`Engram multipliers: layer id ${layerId} is not a non-negative integer`);
  if (!Number.isSafeInteger(maxNgram) || maxNgram < 2) throw new Error(`Engram multipliers: engram_max_ngram_size ${maxNgram} is not an integer ≥ 2`);
  if (!Number.isSafeInteger(compressedVocab) || compressedVocab < 1) {
    throw new Error(`Engram multipliers: engram_compressed_vocab_size ${compressedVocab} is not a positive integer`);
  }
  const intMax = (1n << 63n) - 1n;
  const bound = (intMax / BigInt(compressedVocab)) / 2n;
  const rng = new Pcg64(10007n * BigInt(layerId));
  return Array.from({ length: maxNgram }, () => rng.below(bound > 0n ? bound : 1n) * 2n + 1n);
}

// ---- §6A.3 primes and column offsets --------------------------------------------------------------

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * The prime moduli [layer][order−2][head] without the row-count check: per (layer, order) run the
 * smallest primes ≥ vocabSize, each above the previous one of the run, never one handed out before.
 */
export function engramPrimeSearch(layers: number, vocabSize: number, maxNgram: number, heads: number): number[][][] {
  const seen = new Set<number>();
  const next = (after: number): number => {
    let c = after + 1;
    while (!isPrime(c) || seen.has(c)) c++;
    seen.add(c);
    return c;
  };
  return Array.from({ length: layers }, () => Array.from({ length: maxNgram - 1 }, () => {
    let current = vocabSize - 1;
    return Array.from({ length: heads }, () => current = next(current));
  }));
}

/** §6A.3 primes [layerIndex][order−2][head] and column offsets [layerIndex][column]. */
export function engramPrimes(cfg: EngramConfig): { primes: number[][][]; offsets: number[][] } {
  checkConfig(cfg);
  const primes = engramPrimeSearch(cfg.layerIds.length, cfg.vocabSize, cfg.maxNgram, cfg.heads);
  const offsets = primes.map((layer, e) => {
    const flat = layer.flat();
    const starts: number[] = [];
    let rows = 0;
    for (const p of flat) {
      starts.push(rows);
      rows += p;
    }
    if (rows !== cfg.numEmbeddings[e]) {
      throw new Error(`Engram layer ${cfg.layerIds[e]}: its primes sum to ${rows} table rows but engram_num_embeddings gives ${cfg.numEmbeddings[e]}`);
    }
    if (rows > 0x7fffffff) throw new Error(`Engram layer ${cfg.layerIds[e]}: ${rows} table rows do not fit 32-bit row ids`);
    return starts;
  });
  return { primes, offsets };
}

function checkConfig(cfg: EngramConfig): void {
  const positive = (v: number): boolean => Number.isSafeInteger(v) && v > 0;
  const bad = (what: string): never => { throw new Error(`Engram config: ${what}`); };
  if (cfg.layerIds.length === 0) bad('engram_layer_ids is empty');
  if (cfg.numEmbeddings.length !== cfg.layerIds.length) {
    bad(`${cfg.layerIds.length} engram_layer_ids but ${cfg.numEmbeddings.length} engram_num_embeddings`);
  }
  if (!Number.isSafeInteger(cfg.maxNgram) || cfg.maxNgram < 2) bad(`engram_max_ngram_size ${cfg.maxNgram} is not an integer ≥ 2`);
  if (!positive(cfg.heads)) bad(`engram_n_heads ${cfg.heads} is not a positive integer`);
  if (!Number.isSafeInteger(cfg.vocabSize) || cfg.vocabSize < 2 || cfg.vocabSize > 0x7fffffff) {
    bad(`engram_vocab_size ${cfg.vocabSize} is not an integer in [2, 2^31)`);
  }
  if (!positive(cfg.compressedVocab) || cfg.compressedVocab > 0x7fffffff) {
    bad(`engram_compressed_vocab_size ${cfg.compressedVocab} is not an integer in [1, 2^31)`);
  }
}

// ---- §6A.3 hash ids -------------------------------------------------------------------------------

const TWO32 = 4294967296;

export class EngramHasher {
  readonly layers: number;
  /** Row ids per position per layer: (N−1)·heads. */
  readonly columns: number;
  readonly padCompressed: number;
  private readonly n: number;
  private readonly heads: number;
  private readonly tokenMap: Int32Array;
  // m_s = mh·2^32 + mlh·2^16 + mll, per [layer, s]
  private readonly mh: Int32Array;
  private readonly mlh: Float64Array;
  private readonly mll: Float64Array;
  private readonly prime: Int32Array;    // [layer, column]
  private readonly invPrime: Float64Array;
  private readonly offset: Int32Array;   // [layer, column]
  private readonly t: Int32Array;        // [N] compressed look-back ids of one position

  constructor(cfg: EngramConfig, tokenMap: Int32Array) {
    const { primes, offsets } = engramPrimes(cfg);
    for (let i = 0; i < tokenMap.length; i++) {
      if (!(tokenMap[i] >= 0 && tokenMap[i] < cfg.compressedVocab)) {
        throw new Error(`Engram hasher: token map entry ${i} is ${tokenMap[i]}, outside the compressed vocabulary [0, ${cfg.compressedVocab})`);
      }
    }
    if (!(cfg.padId >= 0 && cfg.padId < tokenMap.length)) throw new Error(`Engram hasher: engram_pad_id ${cfg.padId} is outside the token map (${tokenMap.length} ids)`);
    this.layers = cfg.layerIds.length;
    this.n = cfg.maxNgram;
    this.heads = cfg.heads;
    this.columns = (cfg.maxNgram - 1) * cfg.heads;
    this.tokenMap = tokenMap;
    this.padCompressed = tokenMap[cfg.padId];
    const L = this.layers, N = this.n;
    this.mh = new Int32Array(L * N);
    this.mlh = new Float64Array(L * N);
    this.mll = new Float64Array(L * N);
    cfg.layerIds.forEach((layerId, e) => {
      engramMultipliers(layerId, N, cfg.compressedVocab).forEach((m, s) => {
        this.mh[e * N + s] = Number(m >> 32n);
        this.mlh[e * N + s] = Number((m >> 16n) & 0xffffn);
        this.mll[e * N + s] = Number(m & 0xffffn);
      });
    });
    this.prime = Int32Array.from(primes.flatMap((layer) => layer.flat()));
    this.invPrime = Float64Array.from(this.prime, (p) => 1 / p);
    this.offset = Int32Array.from(offsets.flat());
    this.t = new Int32Array(N);
  }

  /** Row ids [to−from, layers, (N−1)·heads] (global rows of each layer's table) of positions from … to−1 of `tokens` (all tokens of the sequence so far; look-back before 0 = pad). */
  hash(tokens: ArrayLike<number>, from: number, to: number): Int32Array {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to || to > tokens.length) {
      throw new RangeError(`Engram hasher: positions [${from}, ${to}) are not within the ${tokens.length} tokens given`);
    }
    const { layers: L, columns: C, heads: H, n: N, t, mh, mlh, mll, prime, invPrime, offset } = this;
    const out = new Int32Array((to - from) * L * C);
    let o = 0;
    for (let p = from; p < to; p++) {
      let blocked = false;
      for (let s = 0; s < N; s++) {
        const q = p - s;
        const c: number = blocked || q < 0 ? -1 : this.compressed(tokens[q], q);
        blocked = c < 0;
        t[s] = blocked ? this.padCompressed : c;
      }
      for (let e = 0; e < L; e++) {
        let hi = 0, lo = 0; // running xor of t_s·m_s, as 32-bit halves
        let col = e * C;
        for (let s = 0; s < N; s++) {
          // t·m exactly: t < 2^31 and m < 2^63/t, so t·m < 2^63; every partial product below is < 2^48.
          const k = e * N + s, ts = t[s];
          const a = ts * mll[k], b = ts * mlh[k], bHi = Math.floor(b / 65536);
          const mid = a + (b - bHi * 65536) * 65536;
          const plo = mid >>> 0;
          const phi = (Math.imul(ts, mh[k]) + bHi + Math.floor(mid / TWO32)) | 0;
          hi ^= phi;
          lo ^= plo;
          if (s === 0) continue;
          // (hi·2^32 + lo) mod p as ((hi·2^16 + lo_hi)·2^16 + lo_lo) mod p, every intermediate below
          // 2^47. `%` on doubles past int32 is a slow fmod call: reduce with a floor quotient (off by
          // at most one, fixed up) instead.
          const l = lo >>> 0, top = hi * 65536 + (l >>> 16), ll = l & 0xffff;
          for (const end = col + H; col < end; col++) {
            const pr = prime[col], inv = invPrime[col];
            let x = top - Math.floor(top * inv) * pr;
            x = x < 0 ? x + pr : x >= pr ? x - pr : x;
            x = x * 65536 + ll;
            x -= Math.floor(x * inv) * pr;
            x = x < 0 ? x + pr : x >= pr ? x - pr : x;
            out[o++] = x + offset[col];
          }
        }
      }
    }
    return out;
  }

  /** The compressed id of token `id` at position `q`, or −1 for a dead position. */
  private compressed(id: number, q: number): number {
    if (id === ENGRAM_DEAD) return -1;
    const c = this.tokenMap[id];
    if (!Number.isInteger(id) || c === undefined) {
      throw new RangeError(`Engram hasher: token ${id} at position ${q} is outside the vocabulary [0, ${this.tokenMap.length})`);
    }
    return c;
  }
}

// ---- §6A.5 table rows on demand -------------------------------------------------------------------

/** Heap bytes of one cached row besides its f32 values: 12 in the slot arrays, ~48 for its Map entry (an estimate). */
const SLOT_BYTES = 12;
const MAP_ENTRY_BYTES = 48;

/** One Engram layer's table rows read from the checkpoint on demand: E4M3 `${prefix}.weight` [rows, headDim] with E8M0 `${prefix}.scale` [rows, headDim/32] (value = e4m3(code)·2^(scale−127)), decoded to f32; an LRU cache of at most `cacheRows` rows. */
export class EngramTable {
  readonly stats = { hits: 0, misses: 0, bytesRead: 0 };
  private readonly weightName: string;
  private readonly scaleName: string;
  private readonly groups: number;
  private readonly codes: Uint8Array;
  private readonly scales: Uint8Array;
  private readonly slots = new Map<number, number>(); // row id → cache slot
  // Per slot: its f32 row [capacity, headDim], its row id, and its neighbours in recency order
  // (a doubly linked list, most recent at `head`). All grow by doubling up to cacheRows.
  private slab = new Float32Array(0);
  private slotRow = new Int32Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;

  constructor(
    private readonly file: WeightFile,
    prefix: string,
    private readonly nRows: number,
    private readonly headDim: number,
    private readonly cacheRows: number,
  ) {
    const fail = (what: string): never => { throw new Error(`Engram table '${prefix}' in ${file.path}: ${what}`); };
    if (!Number.isSafeInteger(headDim) || headDim <= 0 || headDim % 32 !== 0) fail(`head_dim ${headDim} is not a positive multiple of 32`);
    if (!Number.isSafeInteger(nRows) || nRows <= 0) fail(`row count ${nRows} is not a positive integer`);
    if (!Number.isSafeInteger(cacheRows) || cacheRows < 0) fail(`cache size ${cacheRows} rows is not a non-negative integer`);
    this.weightName = `${prefix}.weight`;
    this.scaleName = `${prefix}.scale`;
    this.groups = headDim / 32;
    const expect = (name: string, dtype: string, shape: number[]): void => {
      const t = file.tensors.get(name) ?? fail(`no tensor '${name}'`);
      if (t.dtype !== dtype || t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        fail(`'${name}' is ${t.dtype} [${t.shape.join(', ')}], expected ${dtype} [${shape.join(', ')}]`);
      }
    };
    expect(this.weightName, 'f8_e4m3', [nRows, headDim]);
    expect(this.scaleName, 'e8m0', [nRows, this.groups]);
    this.codes = new Uint8Array(headDim);
    this.scales = new Uint8Array(this.groups);
  }

  /** Bytes the cache holds now (≤ cacheRows·(headDim·4 + 60)). */
  get residentBytes(): number {
    return this.slotRow.length * (this.headDim * 4 + SLOT_BYTES) + this.slots.size * MAP_ENTRY_BYTES;
  }

  /** Rows [ids.length, headDim] f32. */
  rows(ids: Int32Array | readonly number[]): Float32Array {
    const D = this.headDim;
    const out = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.nRows) {
        throw new RangeError(`Engram table '${this.weightName}': row ${id} (index ${i}) is outside [0, ${this.nRows})`);
      }
      const slot = this.slots.get(id);
      if (slot !== undefined) {
        this.stats.hits++;
        if (slot !== this.head) {
          this.unlink(slot);
          this.pushFront(slot);
        }
        out.set(this.slab.subarray(slot * D, (slot + 1) * D), i * D);
        continue;
      }
      this.stats.misses++;
      const dst = out.subarray(i * D, (i + 1) * D);
      this.readRow(id, dst);
      if (this.cacheRows > 0) {
        const fresh = this.claimSlot(id); // may grow the slab: read this.slab after it
        this.slab.set(dst, fresh * D);
      }
    }
    return out;
  }

  /** A slot for `id` at the most recent end: a fresh one while the cache is not full, else the least recently used row's. */
  private claimSlot(id: number): number {
    let slot = this.slots.size;
    if (slot === this.cacheRows) {
      slot = this.tail;
      this.unlink(slot);
      this.slots.delete(this.slotRow[slot]);
    } else if (slot === this.slotRow.length) {
      const capacity = Math.min(this.cacheRows, Math.max(64, 2 * slot));
      const grow = <T extends Int32Array | Float32Array>(a: T, make: (n: number) => T, width: number): T => {
        const b = make(capacity * width);
        b.set(a);
        return b;
      };
      this.slab = grow(this.slab, (n) => new Float32Array(n), this.headDim);
      this.slotRow = grow(this.slotRow, (n) => new Int32Array(n), 1);
      this.prev = grow(this.prev, (n) => new Int32Array(n), 1);
      this.next = grow(this.next, (n) => new Int32Array(n), 1);
    }
    this.slotRow[slot] = id;
    this.slots.set(id, slot);
    this.pushFront(slot);
    return slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot], n = this.next[slot];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private pushFront(slot: number): void {
    this.prev[slot] = -1;
    this.next[slot] = this.head;
    if (this.head >= 0) this.prev[this.head] = slot;
    else this.tail = slot;
    this.head = slot;
  }

  private readRow(id: number, dst: Float32Array): void {
    const { codes, scales, groups } = this;
    this.file.readRange(this.weightName, id * this.headDim, codes);
    this.file.readRange(this.scaleName, id * groups, scales);
    this.stats.bytesRead += codes.length + scales.length;
    for (let g = 0; g < groups; g++) {
      if (scales[g] === 0xff) throw new Error(`Engram table '${this.scaleName}': NaN scale (0xFF) in row ${id}, group ${g}`);
      const s = 2 ** (scales[g] - 127);
      for (let c = g * 32; c < g * 32 + 32; c++) dst[c] = E4M3_TO_F32[codes[c]] * s;
    }
  }
}
