/** What the store holds (`minke list`) and taking a model out of it (`minke rm`). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openGGUF } from '../formats/gguf.js';
import { openWeights } from '../formats/weights.js';
import { manifestPath, manifestsIn, modelsRoot, parseStoreName, readManifest, repoDir, minkeHome, type StoreManifest } from './names.js';

export interface StoreEntry {
  readonly name: string;
  readonly dir: string;
  /** The finished pull; absent for an interrupted one (its .part files are all there is). */
  readonly manifest?: StoreManifest;
  /** What loadModel takes (finished pulls). */
  readonly path?: string;
  /** Bytes on disk: the manifest's files, or the partial downloads. */
  readonly bytes: number;
}

/** Every pulled model, then every interrupted pull, by name. */
export function listStore(home = minkeHome()): StoreEntry[] {
  const root = modelsRoot(home);
  const entries: StoreEntry[] = [];
  for (const owner of subdirs(root)) {
    for (const repo of subdirs(path.join(root, owner))) {
      const dir = path.join(root, owner, repo);
      const manifests = manifestsIn(dir).map(readManifest);
      for (const m of manifests) entries.push({ name: m.name, dir, manifest: m, path: path.join(dir, m.model), bytes: m.files.reduce((a, f) => a + f.size, 0) });
      // An interrupted pull: every file of a folder without a manifest, else its .part files.
      const files = walk(dir);
      const partial = manifests.length ? files.filter((f) => f.endsWith('.part')) : files;
      if (!manifests.length || partial.length) {
        entries.push({ name: `${owner}/${repo}`, dir, bytes: partial.reduce((a, f) => a + fs.statSync(f).size, 0) });
      }
    }
  }
  return entries.sort((a, b) => Number(!a.manifest) - Number(!b.manifest) || a.name.localeCompare(b.name));
}

/** The architecture (config.json model_type, GGUF general.architecture) and storage formats of a pulled model. */
export function describeStored(e: StoreEntry): { architecture: string; formats: string } {
  if (!e.path || !e.manifest) return { architecture: '-', formats: 'incomplete' };
  try {
    if (e.manifest.format === 'gguf') {
      const file = openGGUF(e.path);
      try {
        const arch = file.metadata.get('general.architecture');
        return { architecture: typeof arch === 'string' ? arch : '?', formats: `gguf ${dtypesOf(file.tensors.values())}` };
      } finally {
        file.close();
      }
    }
    if (e.manifest.format === 'safetensors') {
      const config = JSON.parse(fs.readFileSync(path.join(e.path, 'config.json'), 'utf8')) as { model_type?: unknown };
      const file = openWeights(e.path);
      try {
        return { architecture: typeof config.model_type === 'string' ? config.model_type : '?', formats: `safetensors ${dtypesOf(file.tensors.values())}` };
      } finally {
        file.close();
      }
    }
  } catch {
    return { architecture: '?', formats: e.manifest.format };
  }
  return { architecture: '-', formats: e.manifest.format };
}

/** Storage types by bytes, largest first: "Q4_K,Q6_K,F32". */
function dtypesOf(tensors: Iterable<{ dtype: string; byteLength: number }>): string {
  const bytes = new Map<string, number>();
  for (const t of tensors) bytes.set(t.dtype, (bytes.get(t.dtype) ?? 0) + t.byteLength);
  return [...bytes].sort((a, b) => b[1] - a[1]).map(([d]) => d).join(',');
}

/**
 * Removes a model: `owner/repo` takes the whole folder (finished or not), `owner/repo:TAG` the
 * files of that pull that no other pull of the folder uses. Returns what was removed.
 */
export function removeFromStore(name: string, home = minkeHome()): string {
  const n = parseStoreName(name);
  const known = (): string => {
    const names = [...new Set(listStore(home).map((e) => e.name))];
    return names.length ? `the store has ${names.join(', ')}` : 'the store is empty';
  };
  if (!n) throw new Error(`'${name}' is not a store name (owner/repo or owner/repo:TAG); ${known()}`);
  const dir = repoDir(n.repo, home);
  if (!n.tag) {
    if (!fs.existsSync(dir)) throw new Error(`no model '${name}' in the store (${modelsRoot(home)}); ${known()}`);
    fs.rmSync(dir, { recursive: true, force: true });
    removeIfEmpty(path.dirname(dir));
    return dir;
  }
  const own = manifestPath(n, home);
  if (!fs.existsSync(own)) throw new Error(`no model '${name}' in the store (${modelsRoot(home)}); ${known()}`);
  const mine = readManifest(own);
  const others = manifestsIn(dir).filter((f) => f !== own).map(readManifest);
  const shared = new Set(others.flatMap((m) => m.files.map((f) => f.path)));
  fs.rmSync(own);
  for (const f of mine.files) {
    if (shared.has(f.path)) continue;
    const p = path.join(dir, ...f.path.split('/'));
    fs.rmSync(p, { force: true });
    fs.rmSync(`${p}.part`, { force: true });
  }
  if (!others.length && !walk(dir).length) {
    fs.rmSync(dir, { recursive: true, force: true });
    removeIfEmpty(path.dirname(dir));
  }
  return own;
}

function subdirs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

/** Every file under `dir`. */
function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
}

function removeIfEmpty(dir: string): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}
