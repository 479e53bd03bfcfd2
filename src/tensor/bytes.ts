/**
 * Little-endian field access on byte buffers at any offset (GGUF blocks are packed, so f16/u32/f32
 * fields are often unaligned and cannot be read through a typed-array view of the buffer).
 */

export const rd16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);

export const rd32 = (b: Uint8Array, o: number): number =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

// One f32 and its bits share this scratch word.
const f32s = new Float32Array(1);
const u32s = new Uint32Array(f32s.buffer);

export function rdF32(b: Uint8Array, o: number): number {
  u32s[0] = rd32(b, o);
  return f32s[0];
}

export function wrF32(b: Uint8Array, o: number, v: number): void {
  f32s[0] = v;
  wr32(b, o, u32s[0]);
}
