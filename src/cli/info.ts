/** `minke info MODEL`: what a weight file holds and what it will take in memory, without loading it. */
import { openWeights, type TensorInfo, type WeightFile } from '../formats/weights.js';
import type { GGUFFile } from '../formats/gguf.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

function summariseTensors(tensors: Iterable<TensorInfo>) {
  const byDtype = new Map<string, { tensors: number; elements: number; bytes: number }>();
  let elements = 0;
  let bytes = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const row = byDtype.get(t.dtype) ?? { tensors: 0, elements: 0, bytes: 0 };
    row.tensors++;
    row.elements += n;
    row.bytes += t.byteLength;
    byDtype.set(t.dtype, row);
    elements += n;
    bytes += t.byteLength;
  }
  return { byDtype, elements, bytes };
}

function metadataLines(file: WeightFile): string[] {
  const gguf = (file as Partial<GGUFFile>).metadata;
  if (!(gguf instanceof Map)) return [];
  const lines: string[] = [];
  for (const [key, value] of gguf) {
    const shown = Array.isArray(value) ? `[${value.length} values]` : JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    lines.push(`  ${key} = ${shown.length > 100 ? shown.slice(0, 97) + '...' : shown}`);
  }
  return lines;
}

export function describe(file: WeightFile, verbose: boolean): string {
  const out: string[] = [`model: ${file.path}`];
  const meta = metadataLines(file);
  if (meta.length) out.push('metadata:', ...meta);
  const { byDtype, elements, bytes } = summariseTensors(file.tensors.values());
  out.push(`tensors: ${file.tensors.size}, elements ${formatCount(elements)}, weights ${formatBytes(bytes)}`);
  out.push('by storage type:');
  for (const [dtype, row] of [...byDtype].sort((a, b) => b[1].bytes - a[1].bytes)) {
    out.push(`  ${dtype.padEnd(9)} ${String(row.tensors).padStart(6)} tensors  ${formatCount(row.elements).padStart(9)} elements  ${formatBytes(row.bytes).padStart(11)}`);
  }
  if (verbose) {
    out.push('tensor list:');
    for (const t of file.tensors.values()) out.push(`  ${t.name}  ${t.dtype}  [${t.shape.join(', ')}]  ${formatBytes(t.byteLength)}`);
  }
  return out.join('\n') + '\n';
}

export async function infoCommand(args: string[]): Promise<number> {
  const verbose = args.includes('--tensors') || args.includes('-v');
  const paths = args.filter((a) => !a.startsWith('-'));
  if (paths.length !== 1) {
    process.stderr.write('usage: minke info MODEL [--tensors]\n');
    return 2;
  }
  const file = openWeights(paths[0]);
  try {
    process.stdout.write(describe(file, verbose));
  } finally {
    file.close();
  }
  return 0;
}
