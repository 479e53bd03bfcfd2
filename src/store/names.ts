/**
 * The model store's layout and names. A pulled repo lives in $MINKE_HOME/models/<owner>/<repo>;
 * each pull into it is described by a manifest written last, so a folder without one is an
 * incomplete download. Store names: `owner/repo`, and `owner/repo:TAG` for one GGUF quant or file.
 *
 * Kept free of heavy imports: modelPathOf (src/models/shipped.ts) resolves names on every command.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** What a finished pull holds; `model` is the path (relative to the folder) loadModel takes. */
export interface StoreManifest {
  readonly name: string;
  readonly repo: string;
  readonly revision: string;
  readonly commit: string;
  readonly endpoint: string;
  readonly format: 'safetensors' | 'gguf' | 'file';
  readonly model: string;
  readonly files: readonly StoreFile[];
  readonly pulledAt: string;
}

export interface StoreFile {
  readonly path: string;
  readonly size: number;
  /** The LFS sha256 the download was checked against (absent for small git files). */
  readonly sha256?: string;
  /** The git blob id a small (non-LFS) file was checked against. */
  readonly gitOid?: string;
}

export interface StoreName {
  readonly repo: string;
  readonly tag?: string;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
export const MANIFEST = 'minke-model.json';

/** The minke data directory: MINKE_HOME, default ~/.minke (the store, the app's database, the prefix cache). */
export function minkeHome(): string {
  return process.env.MINKE_HOME || path.join(os.homedir(), '.minke');
}

export function modelsRoot(home = minkeHome()): string {
  return path.join(home, 'models');
}

/** `owner/repo[:TAG]` parsed, or undefined when `s` is not shaped like a store name. */
export function parseStoreName(s: string): StoreName | undefined {
  const colon = s.indexOf(':');
  const repo = colon < 0 ? s : s.slice(0, colon);
  const tag = colon < 0 ? undefined : s.slice(colon + 1);
  if (!REPO_ID.test(repo) || repo.split('/').some((p) => p === '.' || p === '..' || p.endsWith('.git'))) return undefined;
  if (tag !== undefined && (tag === '' || tag.split('/').includes('..'))) return undefined;
  return { repo, tag };
}

export const formatStoreName = (n: StoreName): string => (n.tag ? `${n.repo}:${n.tag}` : n.repo);

export function repoDir(repo: string, home = minkeHome()): string {
  return path.join(modelsRoot(home), ...repo.split('/'));
}

/** The manifest file of one name: minke-model.json, or minke-model@<TAG>.json for a quant or file. */
export function manifestPath(n: StoreName, home = minkeHome()): string {
  const file = n.tag ? `minke-model@${encodeURIComponent(n.tag)}.json` : MANIFEST;
  return path.join(repoDir(n.repo, home), file);
}

export const isManifestFile = (f: string): boolean => f === MANIFEST || (f.startsWith('minke-model@') && f.endsWith('.json'));

export function readManifest(file: string): StoreManifest {
  let m: StoreManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as StoreManifest;
  } catch (err) {
    throw new Error(`${file}: unreadable store manifest (${(err as Error).message}); minke rm the model and pull it again`);
  }
  if (typeof m.name !== 'string' || typeof m.model !== 'string' || !Array.isArray(m.files)) {
    throw new Error(`${file}: not a minke store manifest; minke rm the model and pull it again`);
  }
  return m;
}

/** The manifests in a repo folder (one per pulled name). */
export function manifestsIn(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter(isManifestFile).sort().map((f) => path.join(dir, f));
}

/**
 * The model path a store name stands for, or undefined when `arg` is no store name or nothing was
 * pulled under it. `owner/repo` also names a repo's only pulled quant. A folder with no manifest
 * is an interrupted pull: an error says to pull again rather than load half a model.
 */
export function storeModelPath(arg: string, home = minkeHome()): string | undefined {
  const n = parseStoreName(arg);
  if (!n) return undefined;
  const dir = repoDir(n.repo, home);
  if (!fs.existsSync(dir)) return undefined;
  const own = manifestPath(n, home);
  const all = manifestsIn(dir);
  const file = fs.existsSync(own) ? own : !n.tag && all.length === 1 ? all[0] : undefined;
  if (file) return path.join(dir, readManifest(file).model);
  if (all.length === 0) throw new Error(`${arg}: the download is incomplete (${dir}); run minke pull ${arg} to finish it`);
  const pulled = all.map((f) => readManifest(f).name).join(', ');
  if (!n.tag) throw new Error(`${arg}: several models are pulled from this repo (${pulled}); name one`);
  throw new Error(`${arg}: not pulled (this repo has ${pulled}); run minke pull ${arg}`);
}
