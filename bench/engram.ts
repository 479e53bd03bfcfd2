/**
 * DeepSeek-V4.1 Engram host work (deepseek-v41.md §6A): `npm run bench -- engram [--positions 8192] [--reps 3] [--rows 200000]`.
 *   hash   row ids of the Flash configuration (2 layers × 24 columns per position), prefill (all
 *          positions in one call) and decode (one position per call), with the 32/16-bit piece
 *          arithmetic of EngramHasher against the same computation on BigInt (kept here as the
 *          reference the tests compare EngramHasher with).
 *   table  EngramTable rows of a synthetic Flash-width table ([rows, 256] E4M3 + [rows, 8] E8M0 in
 *          a temporary safetensors file, so reads hit the page cache): random rows through a cold
 *          cache, then the same rows again from the cache.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors } from '../src/formats/safetensors-writer.js';
import { openSafetensors } from '../src/formats/safetensors.js';
import { ENGRAM_DEAD, EngramHasher, EngramTable, engramMultipliers, engramPrimes, type EngramConfig } from '../src/models/engram.js';

/** §6A.3 hash ids computed on BigInt: the same contract as EngramHasher.hash. */
export class BigIntEngramHasher {
  private readonly m: bigint[][];      // [layer][s]
  private readonly primes: bigint[][]; // [layer][column]
  private readonly offsets: number[][];
  private readonly pad: bigint;

  constructor(private readonly cfg: EngramConfig, private readonly tokenMap: Int32Array) {
    const { primes, offsets } = engramPrimes(cfg);
    this.m = cfg.layerIds.map((id) => engramMultipliers(id, cfg.maxNgram, cfg.compressedVocab));
    this.primes = primes.map((layer) => layer.flat().map(BigInt));
    this.offsets = offsets;
    this.pad = BigInt(tokenMap[cfg.padId]);
  }

  hash(tokens: ArrayLike<number>, from: number, to: number): Int32Array {
    const { maxNgram: N, heads: H } = this.cfg;
    const out = new Int32Array((to - from) * this.m.length * (N - 1) * H);
    let o = 0;
    for (let p = from; p < to; p++) {
      const t: bigint[] = [];
      let blocked = false;
      for (let s = 0; s < N; s++) {
        blocked ||= p - s < 0 || tokens[p - s] === ENGRAM_DEAD;
        t.push(blocked ? this.pad : BigInt(this.tokenMap[tokens[p - s]]));
      }
      this.m.forEach((m, e) => {
        let r = t[0] * m[0];
        for (let s = 1; s < N; s++) {
          r ^= t[s] * m[s];
          for (let h = 0; h < H; h++) {
            const col = (s - 1) * H + h;
            out[o++] = Number(r % this.primes[e][col]) + this.offsets[e][col];
          }
        }
      });
    }
    return out;
  }
}

export const FLASH_ENGRAM: EngramConfig = {
  layerIds: [1, 14], vocabSize: 16_000_000, numEmbeddings: [384006168, 384016682], maxNgram: 4, heads: 8,
  headDim: 256, padId: 2, compressedVocab: 99092,
};

/** A small linear congruential generator: the same inputs on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

interface Hasher { hash(tokens: ArrayLike<number>, from: number, to: number): Int32Array }

/** Seconds of the fastest of `reps` runs of f: on a busy machine the least disturbed one. */
function timeIt(reps: number, f: () => void): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

function benchHash(positions: number, reps: number): void {
  const rand = lcg(7);
  const vocab = 129280, chunk = 512;
  const tokenMap = Int32Array.from({ length: vocab }, () => Math.floor(rand() * FLASH_ENGRAM.compressedVocab));
  const tokens = Array.from({ length: positions }, () => Math.floor(rand() * vocab));
  const hashers: [string, Hasher][] = [['limbs', new EngramHasher(FLASH_ENGRAM, tokenMap)], ['bigint', new BigIntEngramHasher(FLASH_ENGRAM, tokenMap)]];
  const [limbs, big] = hashers.map(([, h]) => h.hash(tokens, 0, positions));
  if (!limbs.every((v, i) => v === big[i])) throw new Error('EngramHasher and the BigInt reference disagree');
  console.log(`hash: Flash config (2 layers × 24 row ids per position), ${positions} positions in chunks of ${chunk}, fastest chunk of ${reps} passes`);
  const prefills: Record<string, number> = {};
  for (const [name, h] of hashers) {
    // Short timed chunks, so that a busy machine still leaves some undisturbed.
    let prefill = Infinity, decode = Infinity;
    for (let k = 0; k + chunk <= positions; k += chunk) {
      prefill = Math.min(prefill, timeIt(reps, () => h.hash(tokens, k, k + chunk)));
      decode = Math.min(decode, timeIt(reps, () => { for (let p = k; p < k + chunk; p++) h.hash(tokens, p, p + 1); }));
    }
    prefills[name] = prefill;
    const ns = (s: number): string => (s / chunk * 1e9).toFixed(0).padStart(6);
    console.log(`  ${name.padEnd(6)}  prefill ${ns(prefill)} ns/position (${(chunk / prefill / 1e6).toFixed(2)} M positions/s)   decode ${ns(decode)} ns/position`);
  }
  console.log(`  limbs are ${(prefills.bigint / prefills.limbs).toFixed(1)}× faster than BigInt (prefill)`);
}

function benchTable(rows: number, reps: number): void {
  const D = 256, G = D / 32, reads = 48 * 256; // 256 decoded tokens' worth of Flash rows (48 per token)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-engram-bench-'));
  try {
    const file = path.join(dir, 'table.safetensors');
    const rand = lcg(11);
    writeSafetensors(file, [
      { name: 't.weight', dtype: 'f8_e4m3', shape: [rows, D], data: () => Uint8Array.from({ length: rows * D }, () => Math.floor(rand() * 0x7e)) },
      { name: 't.scale', dtype: 'e8m0', shape: [rows, G], data: () => new Uint8Array(rows * G).fill(120) },
    ]);
    const wf = openSafetensors(file);
    try {
      const ids = Int32Array.from({ length: reads }, () => Math.floor(rand() * rows));
      let cold = Infinity, warm = Infinity;
      for (let r = 0; r < reps; r++) {
        const table = new EngramTable(wf, 't', rows, D, reads);
        cold = Math.min(cold, timeIt(1, () => table.rows(ids)));
        warm = Math.min(warm, timeIt(1, () => table.rows(ids)));
      }
      console.log(`table: [${rows}, ${D}] E4M3 rows (${(rows * (D + G) / 2 ** 20).toFixed(0)} MiB file), ${reads} random rows per call, best of ${reps}`);
      console.log(`  cache misses (pread + decode) ${(cold / reads * 1e6).toFixed(2)} µs/row (${(reads / cold / 48).toFixed(0)} tokens/s at 48 rows/token)`);
      console.log(`  cache hits                    ${(warm / reads * 1e6).toFixed(2)} µs/row`);
    } finally {
      wf.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const USAGE = `usage: npm run bench -- engram [--positions 8192] [--reps 3] [--rows 200000]
  Engram n-gram hashing (32-bit limbs against BigInt, prefill and decode) over --positions tokens,
  and row reads from a temporary table file of --rows rows (cache misses and hits); best of --reps.
`;

export function benchEngram(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE); return 0; }
  const opts: Record<string, number> = { positions: 8192, reps: 3, rows: 200_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const v = Number(argv[i + 1]);
    if (!(key in opts) || !(Number.isSafeInteger(v) && v > 0)) throw new Error(`engram: bad option ${argv[i]} ${argv[i + 1] ?? ''} (npm run bench -- engram --help)`);
    opts[key] = v;
  }
  benchHash(opts.positions, opts.reps);
  benchTable(opts.rows, opts.reps);
  return 0;
}
