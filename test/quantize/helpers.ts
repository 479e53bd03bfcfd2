/** Shared by the quantisation tests. */
import { openSafetensors } from '../../src/formats/safetensors.js';

/** Bytes of every tensor in a safetensors file or directory. */
export function tensorBytes(dir: string): number {
  const f = openSafetensors(dir);
  try {
    return [...f.tensors.values()].reduce((s, t) => s + t.byteLength, 0);
  } finally {
    f.close();
  }
}
