/**
 * DeepSeek-V4.1 Engram host pieces (deepseek-v41.md §6A) against the official-reference goldens of
 * shared/fixtures/deepseek-v41-tiny (token map, constants, hash ids, table rows), the Flash
 * constants quoted in the spec, the BigInt reference of bench/engram.ts, and a synthetic table far
 * larger than the row cache.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { BigIntEngramHasher, FLASH_ENGRAM, lcg } from '../../bench/engram.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import {
  ENGRAM_DEAD, EngramHasher, EngramTable, engramMultipliers, engramNormalize, engramPrimeSearch, engramPrimes,
  engramTokenMap, type EngramConfig,
} from '../../src/models/engram.js';
import { dequantize } from '../../src/tensor/dequantize.js';
import { readArray, type ArrayEntry } from './golden.js';
import { sharedPath } from './util.js';

const DIR = sharedPath('fixtures/deepseek-v41-tiny');

interface EngramGolden {
  tokenizer: { token_texts: string[]; token_raw: string[] };
  engram: {
    compressed_vocab_size: number;
    token_map: ArrayEntry;
    pad_compressed_id: number;
    multipliers: string[][];
    primes: number[][][];
    offsets: number[][];
    num_embeddings: number[];
    hash_cases: { name: string; tokens: number[]; hash_ids: ArrayEntry }[];
  };
  cases: { name: string; tokens: number[]; prefill_len: number; hash_ids: ArrayEntry }[];
}

const golden: EngramGolden = JSON.parse(fs.readFileSync(path.join(DIR, 'golden.json'), 'utf8'));
const config = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
const TINY: EngramConfig = {
  layerIds: config.engram_layer_ids, vocabSize: config.engram_vocab_size, numEmbeddings: config.engram_num_embeddings,
  maxNgram: config.engram_max_ngram_size, heads: config.engram_n_heads, headDim: config.engram_head_dim,
  padId: config.engram_pad_id, compressedVocab: config.engram_compressed_vocab_size,
};
const goldenMap = readArray(DIR, golden.engram.token_map) as Int32Array;

describe('Engram compressed token map (§6A.2)', () => {
  it('normalises like the reference normaliser on hand-worked texts', () => {
    const cases: [string, string][] = [
      [' BAFA', 'bafa'], ['cáp', 'cap'], ['ｄａｃ', 'dac'], ['famu\n', 'famu'], [' \n ', ' '], ['  ', ' '],
      ['\n\n', ' '], ['\t', ' '], [' ', ' '], ['a \t\r\nb', 'a b'], ['ΣΑΣ', 'σασ'], ['\u0085x\u00a0', 'x'], ['\u3000', ' '],
    ];
    for (const [text, key] of cases) assert.equal(engramNormalize(text), key, JSON.stringify(text));
  });

  it('rebuilds the golden map from the tokenizer texts, with its count', () => {
    const { token_texts, token_raw } = golden.tokenizer;
    const map = engramTokenMap(token_texts, token_raw, golden.engram.compressed_vocab_size);
    assert.deepEqual([...map], [...goldenMap]);
    assert.equal(new Set(map).size, 115);
    assert.equal(map[TINY.padId], golden.engram.pad_compressed_id);
    assert.throws(() => engramTokenMap(token_texts, token_raw, 114), /115 distinct.*114/);
    assert.throws(() => engramTokenMap(token_texts, token_raw.slice(1), 115), /512 decoded texts but 511 raw/);
  });
});

describe('Engram hash constants (§6A.3)', () => {
  it('primes, offsets and table rows equal the golden ones', () => {
    const { primes, offsets } = engramPrimes(TINY);
    assert.deepEqual(primes, golden.engram.primes);
    assert.deepEqual(offsets, golden.engram.offsets);
    assert.deepEqual(primes.map((l) => l.flat().reduce((a, b) => a + b)), golden.engram.num_embeddings);
    assert.throws(() => engramPrimes({ ...TINY, numEmbeddings: [304, 463] }), /layer 5: its primes sum to 462 .* gives 463/);
  });

  it('the Flash prime layout gives the table rows of its config', () => {
    assert.doesNotThrow(() => engramPrimes(FLASH_ENGRAM));
    assert.throws(() => engramPrimes({ ...FLASH_ENGRAM, numEmbeddings: [384006168, 384016681] }), /384016682 .* 384016681/);
  });

  it('multipliers equal the golden ones and the Flash numbers of the spec', () => {
    assert.deepEqual(TINY.layerIds.map((L) => engramMultipliers(L, 4, 115).map(String)), golden.engram.multipliers);
    assert.deepEqual(engramMultipliers(1, 4, 99092), [76632096046245n, 4839876093313n, 35959672319349n, 73987337458391n]);
    assert.deepEqual(engramMultipliers(14, 4, 99092), [67716810739261n, 51510806800915n, 30921347202721n, 82619226485591n]);
  });
});

describe('EngramHasher (§6A.3)', () => {
  const hasher = new EngramHasher(TINY, goldenMap);
  const all = [
    ...golden.cases.map((c) => ({ ...c, split: c.prefill_len })),
    ...golden.engram.hash_cases.map((c) => ({ ...c, split: 5 })),
  ];

  for (const c of all) {
    it(`hash ids of ${c.name} equal the golden ones, in one call and as prefill + single steps`, () => {
      const want = readArray(DIR, c.hash_ids) as Int32Array;
      assert.deepEqual(c.hash_ids.shape, [c.tokens.length, 2, 6]);
      assert.deepEqual(hasher.hash(c.tokens, 0, c.tokens.length), want);
      const parts = [hasher.hash(c.tokens.slice(0, c.split), 0, c.split)];
      for (let p = c.split; p < c.tokens.length; p++) parts.push(hasher.hash(c.tokens.slice(0, p + 1), p, p + 1));
      assert.deepEqual(Int32Array.from(parts.flatMap((a) => [...a])), want);
    });
  }

  it('a dead position cuts the look-back: what follows hashes like a sequence starting there', () => {
    const tokens = [40, 509, ENGRAM_DEAD, 349, 476, 303, 449];
    const after = hasher.hash(tokens, 3, 7);
    assert.deepEqual(after, hasher.hash(tokens.slice(3), 0, 4));
    // The dead position itself hashes an n-gram of pads only.
    assert.deepEqual(hasher.hash(tokens, 2, 3), hasher.hash([TINY.padId], 0, 1));
  });

  it('refuses bad positions and tokens', () => {
    assert.throws(() => hasher.hash([1, 2], 1, 3), /positions \[1, 3\) are not within the 2 tokens/);
    assert.throws(() => hasher.hash([1, 512], 0, 2), /token 512 at position 1 is outside the vocabulary \[0, 512\)/);
    assert.throws(() => new EngramHasher(TINY, new Int32Array(512).fill(115)), /entry 0 is 115/);
  });

  it('agrees with the BigInt reference on random inputs, from small to near-2^31 primes', () => {
    const rand = lcg(2024);
    const configs = [
      { vocabSize: 40, compressedVocab: 115, maxNgram: 4, heads: 2 },
      { vocabSize: 16_000_000, compressedVocab: 99092, maxNgram: 4, heads: 8 },
      { vocabSize: 300_000_000, compressedVocab: 5_000_000, maxNgram: 3, heads: 3 },
      { vocabSize: 1000, compressedVocab: 0x7fffffff, maxNgram: 5, heads: 2 },
      { vocabSize: 700_000_000, compressedVocab: 3, maxNgram: 3, heads: 1 },
    ];
    for (const c of configs) {
      const layerIds = [1, 7];
      const primes = engramPrimeSearch(layerIds.length, c.vocabSize, c.maxNgram, c.heads);
      const cfg: EngramConfig = { ...c, layerIds, numEmbeddings: primes.map((l) => l.flat().reduce((a, b) => a + b)), headDim: 32, padId: 2 };
      const vocab = 1000;
      const tokenMap = Int32Array.from({ length: vocab }, (_, i) => i < 3 ? c.compressedVocab - 1 - i : Math.floor(rand() * c.compressedVocab));
      const tokens = Array.from({ length: 300 }, () => rand() < 0.02 ? ENGRAM_DEAD : Math.floor(rand() * vocab));
      const fast = new EngramHasher(cfg, tokenMap).hash(tokens, 0, tokens.length);
      assert.equal(fast.length, 300 * 2 * (c.maxNgram - 1) * c.heads);
      assert.deepEqual(fast, new BigIntEngramHasher(cfg, tokenMap).hash(tokens, 0, tokens.length), JSON.stringify(c));
    }
  });
});

describe('EngramTable (§6A.5)', () => {
  it('reads the fixture tables row by row, equal to a whole-tensor dequantisation', () => {
    const wf = openSafetensors(path.join(DIR, 'model.safetensors'));
    try {
      TINY.layerIds.forEach((L, e) => {
        const prefix = `layers.${L}.engram.embed`, rows = TINY.numEmbeddings[e], D = TINY.headDim;
        const ref = dequantize({ dtype: 'f8_e4m3', scale: { dtype: 'e8m0', rows: 1, cols: 32 } },
          wf.read(`${prefix}.weight`), rows, D, wf.read(`${prefix}.scale`));
        const table = new EngramTable(wf, prefix, rows, D, 16);
        const rand = lcg(L);
        const ids = Array.from({ length: 3 * rows }, () => Math.floor(rand() * rows));
        const got = table.rows(ids);
        ids.forEach((id, i) => assert.deepEqual(got.subarray(i * D, (i + 1) * D), ref.subarray(id * D, (id + 1) * D), `row ${id}`));
        assert.equal(table.stats.hits + table.stats.misses, ids.length);
        assert.equal(table.stats.bytesRead, table.stats.misses * (D + D / 32));
        assert.ok(table.residentBytes <= 16 * (D * 4 + 64));
      });
      assert.throws(() => new EngramTable(wf, 'layers.1.engram.embed', 305, 32, 4), /is f8_e4m3 \[304, 32\], expected f8_e4m3 \[305, 32\]/);
      assert.throws(() => new EngramTable(wf, 'layers.2.engram.embed', 304, 32, 4), /no tensor 'layers.2.engram.embed.weight'/);
      assert.throws(() => new EngramTable(wf, 'layers.1.engram.embed', 304, 32, 4).rows([304]), /row 304 \(index 0\) is outside \[0, 304\)/);
    } finally {
      wf.close();
    }
  });

  it('streams a table far larger than its cache: bounded memory, LRU hit/miss counts, exact rows', () => {
    const rows = 100_000, D = 256, G = D / 32, cacheRows = 512;
    // Row r, column c: sign, exponent 1..14 and mantissa of an E4M3 normal, times 2^(scale−127).
    const code = (r: number, c: number): number => (((r * 31 + c * 7) & 1) << 7) | ((1 + (r + c) % 14) << 3) | ((r ^ c) & 7);
    const scale = (r: number, g: number): number => 100 + (r * 3 + g * 5) % 50;
    const value = (r: number, c: number): number => {
      const b = code(r, c);
      return (b & 0x80 ? -1 : 1) * (8 + (b & 7)) * 2 ** (((b >> 3) & 15) - 10) * 2 ** (scale(r, c >> 5) - 127);
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-engram-'));
    try {
      const file = path.join(dir, 'table.safetensors');
      writeSafetensors(file, [
        { name: 'big.weight', dtype: 'f8_e4m3', shape: [rows, D], data: () => {
          const b = new Uint8Array(rows * D);
          for (let r = 0; r < rows; r++) for (let c = 0; c < D; c++) b[r * D + c] = code(r, c);
          return b;
        } },
        { name: 'big.scale', dtype: 'e8m0', shape: [rows, G], data: () => Uint8Array.from({ length: rows * G }, (_, i) => scale(Math.floor(i / G), i % G)) },
      ]);
      const wf = openSafetensors(file);
      try {
        let table = new EngramTable(wf, 'big', rows, D, cacheRows);
        const bound = cacheRows * (D * 4 + 64);
        const rand = lcg(99);
        const check = (ids: number[]): void => {
          const got = table.rows(ids);
          for (let i = 0; i < ids.length; i++) {
            for (let c = 0; c < D; c++) if (got[i * D + c] !== value(ids[i], c)) assert.fail(`row ${ids[i]} column ${c}: ${got[i * D + c]} ≠ ${value(ids[i], c)}`);
          }
          assert.ok(table.residentBytes <= bound, `${table.residentBytes} resident bytes > ${bound}`);
        };
        // 5000 random rows in batches of 48 (one Flash token's worth).
        for (let k = 0; k < 5000; k += 48) check(Array.from({ length: 48 }, () => Math.floor(rand() * rows)));
        assert.ok(table.residentBytes > bound / 2, 'the cache filled up');

        // On a fresh cache, 256 distinct rows repeated four times: 256 misses, then 768 hits.
        table = new EngramTable(wf, 'big', rows, D, cacheRows);
        const pattern = Array.from({ length: 256 }, (_, i) => 50_000 + i * 3);
        for (let rep = 0; rep < 4; rep++) check(pattern);
        assert.deepEqual(table.stats, { hits: 768, misses: 256, bytesRead: 256 * (D + G) });

        // A cycle one row longer than the cache misses every time under LRU.
        const cycle = Array.from({ length: cacheRows + 1 }, (_, i) => i * 7);
        const mid = { ...table.stats };
        check(cycle);
        check(cycle);
        assert.equal(table.stats.hits - mid.hits, 0);
        assert.equal(table.stats.misses - mid.misses, 2 * (cacheRows + 1));
        // …and the most recent cacheRows rows are then all hits.
        check(cycle.slice(1));
        assert.equal(table.stats.hits - mid.hits, cacheRows);

        // A hit refreshes its row: after touching the oldest row, a new row evicts the second oldest.
        table = new EngramTable(wf, 'big', rows, D, cacheRows);
        const fill = Array.from({ length: cacheRows }, (_, i) => 1000 + i);
        check(fill);
        check([fill[0], 99_999, fill[0]]);
        assert.deepEqual([table.stats.hits, table.stats.misses], [2, cacheRows + 1]);
        check([fill[1]]);
        assert.equal(table.stats.misses, cacheRows + 2);
      } finally {
        wf.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without a cache every read goes to the file', () => {
    const wf = openSafetensors(path.join(DIR, 'model.safetensors'));
    try {
      const table = new EngramTable(wf, 'layers.5.engram.embed', 462, 32, 0);
      table.rows([3, 3, 3]);
      assert.deepEqual(table.stats, { hits: 0, misses: 3, bytesRead: 3 * 33 });
      assert.equal(table.residentBytes, 0);
    } finally {
      wf.close();
    }
  });
});
