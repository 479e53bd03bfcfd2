/**
 * `pull`: a hub repo (or one GGUF quant / file of it) into the store. The plan — which files — comes
 * from the listing; the disk is checked for the bytes still missing; files download a few at a time
 * (each resumable, see download.ts); the manifest is written last, so a folder whose pull did not
 * finish never passes for a model.
 *
 * Parallelism is per file: a sharded checkpoint has many shards, and a `.part` that is always a
 * prefix of its file keeps resuming to one Range request and the hash to one pass.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fetchFile } from './download.js';
import { HubClient, type HubFile, type RepoInfo } from './hub.js';
import { formatStoreName, manifestPath, parseStoreName, readManifest, repoDir, minkeHome, type StoreManifest, type StoreName } from './names.js';

export interface PullProgress {
  /** Bytes of every file of the pull, and those on disk so far (finished or partial). */
  readonly total: number;
  readonly done: number;
  readonly files: number;
  readonly filesDone: number;
}

export interface PullOptions {
  readonly hub?: HubClient;
  readonly revision?: string;
  readonly home?: string;
  readonly signal?: AbortSignal;
  /** Files downloading at once (default 4). */
  readonly concurrency?: number;
  readonly retries?: number;
  readonly retryDelayMs?: number;
  /** A connection silent this long (ms) is dropped and retried (default 60 s). */
  readonly stallMs?: number;
  /** Called once the plan is known, then as bytes arrive. */
  readonly onProgress?: (p: PullProgress) => void;
}

export interface PullResult {
  readonly manifest: StoreManifest;
  /** What loadModel takes. */
  readonly path: string;
  /** False when the store already held this commit's files. */
  readonly downloaded: boolean;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];
const INDEX = 'model.safetensors.index.json';
const isGGUF = (f: string): boolean => /\.gguf$/i.test(f);
/** Quant names as GGUF file names carry them: Q4_K_M, IQ2_XXS, Q8_0, BF16, … */
const QUANT = /(?:^|[-._/])((?:UD-)?I?Q\d+(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?)(?=[-._]|$)/i;

export async function pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
  const parsed = parseStoreName(ref);
  if (!parsed) throw new Error(`'${ref}' is not a Hugging Face model name: give owner/repo, owner/repo:QUANT or owner/repo:FILE`);
  const hub = opts.hub ?? new HubClient();
  const home = opts.home ?? minkeHome();
  const revision = opts.revision ?? 'main';
  const info = await hub.repoInfo(parsed.repo, revision, opts.signal);
  const dir = repoDir(parsed.repo, home);
  fs.mkdirSync(dir, { recursive: true });
  const fileOpts = { signal: opts.signal, retries: opts.retries, retryDelayMs: opts.retryDelayMs, stallMs: opts.stallMs };

  const plan = choose(info, parsed);
  const name: StoreName = { repo: parsed.repo, tag: plan.tag };
  const mpath = manifestPath(name, home);
  const previous = fs.existsSync(mpath) ? readManifest(mpath) : undefined;
  const vouched = (f: HubFile): boolean => !!previous?.files.some((p) => p.path === f.path && p.size === f.size && p.sha256 === f.sha256 && p.gitOid === f.gitOid);

  // The index names the shards: it is fetched first (it is small) to know the rest of the plan.
  let files = plan.files;
  if (plan.format === 'safetensors' && files.some((f) => f.path === INDEX)) {
    const index = files.find((f) => f.path === INDEX)!;
    await fetchFile(hub, parsed.repo, info.commit, index, path.join(dir, INDEX), { ...fileOpts, trusted: vouched(index) });
    files = [...files, ...shardsOf(info, path.join(dir, INDEX))];
  }
  const local = (f: HubFile): string => path.join(dir, ...f.path.split('/'));
  if (previous?.commit === info.commit && files.every((f) => fs.existsSync(local(f)) && fs.statSync(local(f)).size === f.size)) {
    return { manifest: previous, path: path.join(dir, previous.model), downloaded: false };
  }
  // From here the folder changes: it is not a finished model until the new manifest is written.
  fs.rmSync(mpath, { force: true });

  const onDisk = (f: HubFile): number => {
    const have = [local(f), `${local(f)}.part`].map((p) => (fs.existsSync(p) ? fs.statSync(p).size : 0));
    return Math.min(f.size, Math.max(...have));
  };
  const total = files.reduce((a, f) => a + f.size, 0);
  let done = files.reduce((a, f) => a + onDisk(f), 0);
  checkDiskSpace(dir, total - done);

  let filesDone = 0;
  const report = (): void => opts.onProgress?.({ total, done, files: files.length, filesDone });
  report();
  const queue = [...files];
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      fs.mkdirSync(path.dirname(local(f)), { recursive: true });
      const before = onDisk(f);
      let counted = 0;
      await fetchFile(hub, parsed.repo, info.commit, f, local(f), {
        ...fileOpts, signal, trusted: vouched(f),
        onBytes: (n) => { counted += n; done += n; report(); },
      });
      // A resumed or re-checked file may arrive with fewer new bytes than it was missing.
      done += f.size - before - counted;
      filesDone++;
      report();
    }
  };
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 4, files.length) }, () => worker().catch((err) => {
    abort.abort();
    throw err;
  }));
  const results = await Promise.allSettled(workers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && (r.reason as Error).name !== 'AbortError')
    ?? results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  const manifest: StoreManifest = {
    name: formatStoreName(name), repo: parsed.repo, revision, commit: info.commit, endpoint: hub.endpoint,
    format: plan.format, model: plan.model,
    files: files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256, gitOid: f.gitOid })),
    pulledAt: new Date().toISOString(),
  };
  fs.writeFileSync(`${mpath}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  fs.renameSync(`${mpath}.tmp`, mpath);
  return { manifest, path: path.join(dir, plan.model), downloaded: true };
}

interface Plan {
  readonly format: StoreManifest['format'];
  readonly files: readonly HubFile[];
  /** The store name's tag: the quant (upper case) or file asked for, none for a whole repo. */
  readonly tag?: string;
  readonly model: string;
}

/** Which files of the repo a pull of `name` needs (the shards of an index are added once it is read). */
function choose(info: RepoInfo, name: StoreName): Plan {
  const byPath = new Map(info.files.map((f) => [f.path, f]));
  const ggufs = info.files.filter((f) => isGGUF(f.path));
  if (name.tag && byPath.has(name.tag)) {
    const file = byPath.get(name.tag)!;
    return { format: isGGUF(file.path) ? 'gguf' : 'file', files: [file], tag: name.tag, model: file.path };
  }
  if (name.tag) {
    const matches = ggufs.filter((f) => f.path.toLowerCase().includes(name.tag!.toLowerCase()));
    if (matches.length === 1) return { format: 'gguf', files: matches, tag: name.tag.toUpperCase(), model: matches[0].path };
    if (matches.length > 1) throw new Error(`${info.repo}: several .gguf files match '${name.tag}' (${matches.map((f) => f.path).join(', ')}); name one: minke pull ${info.repo}:FILE`);
    throw new Error(`${info.repo}: no file or quant '${name.tag}' (${availableQuants(ggufs) || 'the repo has no .gguf files'})`);
  }
  if (byPath.has('config.json')) {
    const weights = byPath.get(INDEX) ?? byPath.get('model.safetensors');
    if (!weights) throw new Error(`${info.repo}: has config.json but neither ${INDEX} nor model.safetensors${ggufs.length ? ` (${availableQuants(ggufs)}: pull one with ${info.repo}:QUANT)` : ''}`);
    const extra = TOKENIZER_FILES.flatMap((f) => byPath.get(f) ?? []);
    return { format: 'safetensors', files: [byPath.get('config.json')!, ...extra, weights], model: '.' };
  }
  if (ggufs.length === 1) return { format: 'gguf', files: ggufs, model: ggufs[0].path };
  if (ggufs.length > 1) throw new Error(`${info.repo}: holds several GGUF files; pick one with ${info.repo}:QUANT (${availableQuants(ggufs)})`);
  throw new Error(`${info.repo}: not a model minke can pull (no config.json with safetensors, no .gguf)`);
}

/** "available quants: Q4_K_M, Q8_0" from the GGUF file names (the names themselves when none parse). */
function availableQuants(ggufs: readonly HubFile[]): string {
  if (!ggufs.length) return '';
  const quants = [...new Set(ggufs.map((f) => QUANT.exec(f.path)?.[1].toUpperCase() ?? f.path))].sort();
  return `available quants: ${quants.join(', ')}`;
}

/** The shard files an index's weight_map names, each checked against the listing. */
function shardsOf(info: RepoInfo, indexFile: string): HubFile[] {
  let map: unknown;
  try {
    map = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    throw new Error(`${info.repo}/${INDEX}: invalid JSON (${(err as Error).message})`);
  }
  if (typeof map !== 'object' || map === null) throw new Error(`${info.repo}/${INDEX}: has no weight_map`);
  const byPath = new Map(info.files.map((f) => [f.path, f]));
  return [...new Set(Object.values(map as Record<string, string>))].sort().map((shard) => {
    const f = byPath.get(String(shard));
    if (!f) throw new Error(`${info.repo}/${INDEX}: names shard '${shard}', which the repo does not have`);
    return f;
  });
}

function checkDiskSpace(dir: string, needed: number): void {
  const s = fs.statfsSync(dir);
  const free = s.bavail * s.bsize;
  if (needed > free) {
    throw new Error(`not enough disk space in ${dir}: the pull needs ${gib(needed)} more, ${gib(free)} is free (MINKE_HOME moves the store)`);
  }
}

const gib = (n: number): string => `${(n / 2 ** 30).toFixed(2)} GiB`;
