/** Shared helpers of the tensor tests: read-only fixtures under <repo>/../shared, seeded data. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rng } from '../support/rng.js';
export { rng };

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


/** Standard normal samples (Box–Muller). */
export function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return out;
}
