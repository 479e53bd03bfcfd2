/** Shared helpers of the tensor tests: read-only fixtures under <repo>/../shared, seeded data. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a file under /work/shared (resolved from dist/test/tensor/). */
export function sharedPath(rel: string): string {
  return fileURLToPath(new URL(`../../../../shared/${rel}`, import.meta.url));
}

export function readJson(rel: string): any {
  return JSON.parse(readFileSync(sharedPath(rel), 'utf8'));
}

/** A little-endian f32 fixture file. */
export function readF32(rel: string): Float32Array {
  const b = readFileSync(sharedPath(rel));
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

export function readBytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(sharedPath(rel)));
}

/** mulberry32: a small seeded generator of uniforms in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Standard normal samples (Box–Muller). */
export function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return out;
}
