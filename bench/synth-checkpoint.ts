/**
 * What the synthetic checkpoint generators (synth-v3.ts, synth-v4.ts, synth-v41.ts) share: a fast
 * reproducible generator per tensor, fillers for the value kinds (FP8 E4M3 codes, BF16 / F32
 * Gaussians, E8M0 scales and FP4 codes of quantised linears at a target rms) and the
 * writer that streams tensors into HF-style shards one at a time (config.json, model-0000N-of-0000M
 * shards, model.safetensors.index.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { byteSize } from '../src/tensor/dtype.js';
import { writeShardedSafetensors, type SafetensorsWriteTensor } from '../src/formats/safetensors-writer.js';
import type { ExpectedTensor } from '../src/models/deepseek-v4-config.js';

export interface SyntheticOptions {
  readonly seed?: number;
  /** Largest shard before the next one starts (a single larger tensor gets a shard of its own). */
  readonly shardBytes?: number;
  /** Tensor bytes produced so far and in all; called before each tensor and once at the end. */
  readonly onProgress?: (done: number, total: number) => void;
}

export const elementCount = (t: ExpectedTensor): number => t.shape.reduce((a, b) => a * b, 1);
export const bytesOf = (t: ExpectedTensor): number => byteSize(t.dtype, elementCount(t))!;

// ---- random values ------------------------------------------------------------------------------

/** xorshift128 seeded through splitmix32: fast, reproducible, good enough for weights. */
export class Rng {
  private x: number; private y: number; private z: number; private w: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let t = s ^ (s >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    this.x = next(); this.y = next(); this.z = next(); this.w = next() | 1;
  }
  u32(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y; this.y = this.z; this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    return this.w;
  }
  /** `n` random bytes (the same stream as u32(), little-endian). */
  bytes(n: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(n / 4));
    let { x, y, z, w } = this;
    for (let i = 0; i < words.length; i++) {
      const t = x ^ (x << 11);
      x = y; y = z; z = w;
      w = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
      words[i] = w;
    }
    this.x = x; this.y = y; this.z = z; this.w = w;
    return new Uint8Array(words.buffer, 0, n);
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u32() / 2 ** 32;
  }
  /** Standard normal (Box–Muller). */
  gaussian(): number {
    const u = (this.u32() + 0.5) / 2 ** 32, v = this.u32() / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** The generator of tensor `name`: FNV-1a of the name mixed with the seed, so a tensor's bytes do not depend on the sharding. */
export function tensorRng(seed: number, name: string): Rng {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return new Rng(h >>> 0);
}

/** Maps every byte through a 256-entry table, in place. */
export function mapBytes(b: Uint8Array, table: Uint8Array): Uint8Array {
  for (let i = 0; i < b.length; i++) b[i] = table[b[i]];
  return b;
}

/** E4M3FN value of a code below 0x7F. */
function e4m3Value(code: number): number {
  const e = (code >> 3) & 15, m = code & 7;
  return e === 0 ? 2 ** -6 * (m / 8) : 2 ** (e - 7) * (1 + m / 8);
}
const E4M3_POSITIVE = Array.from({ length: 0x7f }, (_, c) => e4m3Value(c)); // codes 0..0x7E, 0x7F is NaN

function nearestE4M3(x: number): number {
  const a = Math.abs(x);
  let best = 0;
  for (let c = 1; c < E4M3_POSITIVE.length; c++) if (Math.abs(E4M3_POSITIVE[c] - a) < Math.abs(E4M3_POSITIVE[best] - a)) best = c;
  return (x < 0 ? 0x80 : 0) | best;
}

/**
 * `count` E4M3 codes of Gaussian values with rms `codeRms`, cut at ±4.5σ (codeRms ≤ 64 keeps them
 * below 448, so never a NaN code): random bytes through a 256-entry table of such codes.
 */
export function fp8Codes(rng: Rng, count: number, codeRms: number): Uint8Array {
  const table = Uint8Array.from({ length: 256 }, () => nearestE4M3(codeRms * Math.max(-4.5, Math.min(4.5, rng.gaussian()))));
  return mapBytes(rng.bytes(count), table);
}

const f32Bits = new Float32Array(1), u32Bits = new Uint32Array(f32Bits.buffer);
function bf16(x: number): number {
  f32Bits[0] = x;
  const b = u32Bits[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

/** `count` BF16 values N(mean, std²), drawn from a 4096-entry table of Gaussians: one lookup per element. */
export function bf16Gaussian(rng: Rng, count: number, mean: number, std: number): Uint8Array {
  const table = Uint16Array.from({ length: 4096 }, () => bf16(mean + std * rng.gaussian()));
  const out = new Uint16Array(count);
  const words = new Uint32Array(rng.bytes(Math.ceil(count / 2) * 4).buffer);
  for (let i = 0; i < count; i++) out[i] = table[(words[i >> 1] >>> ((i & 1) * 16)) & 4095];
  return new Uint8Array(out.buffer);
}

/** `count` F32 values N(mean, std²), each drawn (for small tensors: biases, scales). */
export function f32Gaussian(rng: Rng, count: number, mean: number, std: number): Uint8Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + std * rng.gaussian();
  return new Uint8Array(out.buffer);
}

// ---- values of quantised checkpoints -------------------------------------------------------------

/**
 * How a tensor's values are drawn (synth-v4.ts, synth-v41.ts). `in` is the input width of the linear
 * map it belongs to: FP8 / FP4 weights and their E8M0 scales dequantise to elements of rms ≈
 * 1/sqrt(in), so unit-rms inputs give unit-rms outputs.
 */
export type ValueInit =
  | { kind: 'fp8'; in: number } | { kind: 'fp8-scale'; in: number }
  | { kind: 'fp4' } | { kind: 'fp4-scale'; in: number }
  | { kind: 'bf16' | 'f32'; mean: number; std: number };

/*
 * Value rms targets 2^x with x = −log2(in)/2. Every E8M0 scale is 2^(e0 + δ), δ ∈ {−1, 0, +1} drawn
 * at random (so that scale indexing matters), which multiplies the rms by 2^JITTER = sqrt(1.75).
 * FP8: codes of rms ≈ 2^6 (Gaussian, |code| ≤ 4.5σ < 448, so never the NaN codes), e0 = round(x − 6 −
 * JITTER), and the code rms absorbs the rounding: tensor rms = 2^x. FP4: uniformly random nibbles (rms
 * FP4_CODE_RMS), e0 = round(x − log2(FP4_CODE_RMS) − JITTER): tensor rms within 2^±0.5 of 2^x.
 */
const JITTER = Math.log2(1.75) / 2;
const FP8_CODE_RMS_LOG2 = 6;
/** rms of a uniformly random E2M1 code: sqrt(mean of 0, .25, 1, 2.25, 4, 9, 16, 36). */
const FP4_CODE_RMS = Math.sqrt(68.5 / 8);
const targetLog2 = (inWidth: number): number => -Math.log2(inWidth) / 2;
const fp8Exponent = (inWidth: number): number => Math.round(targetLog2(inWidth) - FP8_CODE_RMS_LOG2 - JITTER);
const fp4Exponent = (inWidth: number): number => Math.round(targetLog2(inWidth) - Math.log2(FP4_CODE_RMS) - JITTER);

/** E8M0 bytes 2^(byte−127) = 2^(exponent + δ), δ uniform in {−1, 0, +1}. */
function scaleBytes(rng: Rng, n: number, exponent: number): Uint8Array {
  const table = Uint8Array.from({ length: 256 }, (_, b) => 127 + exponent + (b % 3) - 1);
  return mapBytes(rng.bytes(n), table);
}

/** `count` values drawn as `init` says, in the tensor's stored bytes. */
export function generateValues(init: ValueInit, count: number, rng: Rng): Uint8Array {
  switch (init.kind) {
    case 'fp8':
      return fp8Codes(rng, count, 2 ** (targetLog2(init.in) - fp8Exponent(init.in) - JITTER));
    case 'fp8-scale':
      return scaleBytes(rng, count, fp8Exponent(init.in));
    case 'fp4':
      return rng.bytes(count); // every nibble is a valid E2M1 code
    case 'fp4-scale':
      return scaleBytes(rng, count, fp4Exponent(init.in));
    case 'bf16':
      return bf16Gaussian(rng, count, init.mean, init.std);
    case 'f32':
      return f32Gaussian(rng, count, init.mean, init.std);
  }
}

// ---- writing -------------------------------------------------------------------------------------

/** Splits tensors into runs of at most `limit` bytes (a larger tensor alone). */
function pack<T extends ExpectedTensor>(tensors: readonly T[], limit: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [], size = 0;
  for (const t of tensors) {
    const n = bytesOf(t);
    if (current.length && size + n > limit) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += n;
  }
  if (current.length) shards.push(current);
  return shards;
}

/** A generator's checkpoint: tensors in parts that start new shards (main model, MTP), and their values. */
export interface SyntheticLayout<T extends ExpectedTensor> {
  readonly parts: readonly (readonly T[])[];
  readonly generate: (t: T, rng: Rng) => Uint8Array;
}

/**
 * Writes config.json, the shards and model.safetensors.index.json into `dir` (created; must be
 * empty). `layout` reads the config (and throws on a bad one) before anything is created. Each part
 * fills shards of its own; each tensor is generated by tensorRng(seed, name) when its turn comes,
 * so memory holds one tensor at a time. `who` names the caller in error messages.
 */
export function writeSyntheticCheckpoint<T extends ExpectedTensor>(
  who: string, dir: string, config: object, opts: SyntheticOptions, layout: (where: string) => SyntheticLayout<T>,
): void {
  const { seed = 1, shardBytes = 128 * 2 ** 20, onProgress } = opts;
  if (!(Number.isSafeInteger(shardBytes) && shardBytes > 0)) throw new Error(`${who}: shardBytes must be a positive integer, got ${shardBytes}`);
  const { parts, generate } = layout(path.join(dir, 'config.json'));
  if (fs.existsSync(dir) && fs.readdirSync(dir).length) throw new Error(`${who}: ${dir} is not empty`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');

  const shards = parts.flatMap((p) => pack(p, shardBytes));
  const total = parts.flat().reduce((s, t) => s + bytesOf(t), 0);
  let done = 0;
  const lazy = shards.map((shard) => shard.map((t): SafetensorsWriteTensor => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: () => {
      onProgress?.(done, total);
      done += bytesOf(t);
      return generate(t, tensorRng(seed, t.name));
    },
  })));
  writeShardedSafetensors(dir, lazy, { format: 'pt' });
  onProgress?.(total, total);
}
