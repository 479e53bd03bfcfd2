/**
 * Shared scaffolding of the quantised twins: a format supplies the dot product of one weight row
 * with one activation row; these turn it into the ABI's matvec and matmul over the shared memory.
 */
import { F16_TO_F32 } from '../../../tensor/float.js';
import type { MatmulFn, MatvecFn } from '../registry.js';

/** Dot product of the weight row at byte `w` with the activation row at byte `x` (both `k` long). */
export type RowDot = (m: Mem, w: number, scale: number, row: number, x: number, k: number) => number;

/** Byte-level views of the shared memory. */
export class Mem {
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly view: DataView;
  constructor(buf: ArrayBufferLike) {
    this.u8 = new Uint8Array(buf);
    this.i8 = new Int8Array(buf);
    this.view = new DataView(buf);
  }
  f16(p: number): number { return F16_TO_F32[this.view.getUint16(p, true)]; }
  f32(p: number): number { return this.view.getFloat32(p, true); }
  i16(p: number): number { return this.view.getInt16(p, true); }
  u32(p: number): number { return this.view.getUint32(p, true); }
}

/** 2^(e − 127): an E8M0 byte. */
export const e8m0 = (e: number): number => 2 ** (e - 127);

export function matvecOf(dot: RowDot): MatvecFn {
  return (mem, w, scale, x, y, k, row0, row1) => {
    const m = new Mem(mem);
    for (let r = row0; r < row1; r++) m.view.setFloat32(y + 4 * r, dot(m, w, scale, r, x, k), true);
  };
}

/** `actRowBytes(k)`: bytes of one activation row, the stride between tokens in `x`. */
export function matmulOf(dot: RowDot, actRowBytes: (k: number) => number): MatmulFn {
  return (mem, w, scale, x, y, k, n, ldy, row0, row1) => {
    const m = new Mem(mem);
    const xs = actRowBytes(k);
    for (let t = 0; t < n; t++) {
      for (let r = row0; r < row1; r++) m.view.setFloat32(y + 4 * (t * ldy + r), dot(m, w, scale, r, x + t * xs, k), true);
    }
  };
}
