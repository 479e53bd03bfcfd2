/** Opening any weight file minke reads, by path: a .gguf, a .safetensors, an index, or a model directory. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from './errors.js';
import { openGGUF } from './gguf.js';
import { openSafetensors, SAFETENSORS_INDEX } from './safetensors.js';
import type { WeightFile } from './weight-file.js';

export type { TensorInfo, WeightFile } from './weight-file.js';

/**
 * A directory is looked at in this order: model.safetensors.index.json, model.safetensors, then a
 * single *.gguf. A file is recognised by its extension, else by its first bytes.
 */
export function openWeights(p: string): WeightFile {
  if (fs.statSync(p).isDirectory()) {
    if (fs.existsSync(path.join(p, SAFETENSORS_INDEX)) || fs.existsSync(path.join(p, 'model.safetensors'))) return openSafetensors(p);
    const ggufs = fs.readdirSync(p).filter((f) => f.endsWith('.gguf')).sort();
    if (ggufs.length === 1) return openGGUF(path.join(p, ggufs[0]));
    if (ggufs.length > 1) throw new FormatError(p, `several .gguf files (${ggufs.join(', ')}): name the one to open`);
    throw new FormatError(p, `no weights found (looked for ${SAFETENSORS_INDEX}, model.safetensors, *.gguf)`);
  }
  if (p.endsWith('.gguf')) return openGGUF(p);
  if (p.endsWith('.safetensors') || p.endsWith('.json')) return openSafetensors(p);
  return sniff(p) === 'gguf' ? openGGUF(p) : openSafetensors(p);
}

function sniff(p: string): 'gguf' | 'safetensors' {
  const fd = fs.openSync(p, 'r');
  try {
    const head = Buffer.alloc(9);
    const n = fs.readSync(fd, head, 0, 9, 0);
    if (n >= 4 && head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
    if (n === 9 && head[8] === 0x7b) return 'safetensors';
    throw new FormatError(p, 'neither a GGUF file (no "GGUF" magic) nor a safetensors file (no JSON header)');
  } finally {
    fs.closeSync(fd);
  }
}
