/**
 * One file of a repo onto disk, resumable and verified: bytes go to `<file>.part`, a later try asks
 * for the rest with `Range: bytes=<part size>-`, and only a file whose sha256 (LFS) or git blob id
 * and size match the hub's listing is renamed into place. A corrupt download is deleted (resuming
 * it would only keep the bad bytes).
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { HubError, type HubClient, type HubFile } from './hub.js';

export interface FetchFileOptions {
  readonly signal?: AbortSignal;
  /** New bytes on disk (negative when a part is discarded). */
  readonly onBytes?: (n: number) => void;
  /** Tries after a lost connection or a 5xx before giving up (default 3), each resuming. */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  /** A connection silent this long (ms) is dropped and retried (default 60 s). */
  readonly stallMs?: number;
}

/** Hashes of one file fed as its bytes arrive: sha256, and the git blob id for small files. */
class Digest {
  readonly sha256: Hash = createHash('sha256');
  readonly git: Hash | undefined;
  bytes = 0;

  constructor(file: HubFile) {
    this.git = file.gitOid ? createHash('sha1').update(`blob ${file.size}\0`) : undefined;
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.git?.update(chunk);
    this.bytes += chunk.length;
  }
}

async function digestOf(file: HubFile, p: string, signal?: AbortSignal): Promise<Digest> {
  const d = new Digest(file);
  for await (const chunk of fs.createReadStream(p, { highWaterMark: 1 << 20, signal })) d.update(chunk as Buffer);
  return d;
}

/** What is wrong with a complete file's bytes, or undefined when they are the listed ones. */
function mismatch(file: HubFile, d: Digest, sha256?: string): string | undefined {
  if (d.bytes !== file.size) return `${d.bytes} bytes where the hub lists ${file.size}`;
  const got = d.sha256.digest('hex');
  if (sha256 && got !== sha256) return `sha256 ${got} where the hub lists ${sha256}`;
  const oid = d.git?.digest('hex');
  if (file.gitOid && oid !== file.gitOid) return `git blob id ${oid} where the hub lists ${file.gitOid}`;
  return undefined;
}

const sizeOf = (p: string): number | undefined => (fs.existsSync(p) ? fs.statSync(p).size : undefined);

/**
 * `file` of `repo` at `commit` into `dest`. A `dest` already there is kept when `trusted` (a
 * previous pull's manifest vouches for it) or when its bytes check out; otherwise it is fetched again.
 */
export async function fetchFile(hub: HubClient, repo: string, commit: string, file: HubFile, dest: string, opts: FetchFileOptions & { trusted?: boolean } = {}): Promise<void> {
  const { signal, onBytes = () => {}, retries = 3, retryDelayMs = 1000, stallMs = 60_000 } = opts;
  if (sizeOf(dest) === file.size && (opts.trusted || !mismatch(file, await digestOf(file, dest, signal), file.sha256))) return;
  fs.rmSync(dest, { force: true });
  const part = `${dest}.part`;
  let digest: Digest | undefined;
  let sha256 = file.sha256;
  for (let attempt = 0; ; attempt++) {
    try {
      let have = sizeOf(part) ?? 0;
      if (have > file.size) {
        fs.rmSync(part);
        onBytes(-have);
        have = 0;
      }
      // A resumed part is hashed from disk once; later tries in this run keep the running hash.
      if (digest?.bytes !== have) digest = have ? await digestOf(file, part, signal) : new Digest(file);
      if (have < file.size) {
        const got = await hub.openFile(repo, commit, file.path, have, signal);
        if (got.repoCommit && got.repoCommit !== commit) throw new HubError(`${repo}/${file.path}: the hub served commit ${got.repoCommit} instead of ${commit}`);
        sha256 ??= got.linkedSha256;
        if (have > 0 && got.res.status !== 206) {
          // The server ignored the range: start over.
          fs.rmSync(part);
          onBytes(-have);
          have = 0;
          digest = new Digest(file);
        }
        await appendBody(got.res, part, digest, file, { onBytes, signal, stallMs, what: `${repo}/${file.path}` });
      }
      if (!fs.existsSync(part)) fs.writeFileSync(part, new Uint8Array()); // an empty file
      break;
    } catch (err) {
      if (!(err instanceof HubError) || !err.retryable || attempt >= retries || signal?.aborted) throw err;
      await sleep(retryDelayMs * (attempt + 1), undefined, { signal });
    }
  }
  const bad = mismatch(file, digest, sha256);
  if (bad) {
    fs.rmSync(part);
    onBytes(-digest.bytes);
    throw new Error(`${file.path}: the download is corrupt (${bad}); it was deleted, run minke pull again`);
  }
  fs.renameSync(part, dest);
}

interface BodyOptions {
  readonly onBytes: (n: number) => void;
  readonly signal?: AbortSignal;
  readonly stallMs: number;
  readonly what: string;
}

/** Streams a response body onto the end of `part`, feeding the digest; never past the listed size. */
async function appendBody(res: Response, part: string, digest: Digest, file: HubFile, { onBytes, signal, stallMs, what }: BodyOptions): Promise<void> {
  if (!res.body) throw new HubError(`${what}: the hub sent no body`, true);
  const reader = res.body.getReader();
  const fh = await fs.promises.open(part, digest.bytes ? 'a' : 'w');
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await nextChunk(reader, stallMs, what, signal);
      if (done) break;
      if (digest.bytes + value.length > file.size) throw new HubError(`${what}: the hub sent more than the ${file.size} bytes it lists`);
      await fh.write(value);
      digest.update(value);
      onBytes(value.length);
    }
    finished = true;
  } catch (err) {
    if (err instanceof HubError || (err as Error).name === 'AbortError') throw err;
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new HubError(`${what}: connection lost after ${digest.bytes} bytes (${cause})`, true);
  } finally {
    if (!finished) reader.cancel().catch(() => {}); // not awaited: a dead connection may never answer
    await fh.close();
  }
  if (digest.bytes < file.size) throw new HubError(`${what}: connection closed at byte ${digest.bytes} of ${file.size}`, true);
}

type ReadResult = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;

/**
 * The next chunk, or the abort / a stall as an error. Raced here rather than left to fetch's own
 * signal handling, which can leave a read pending forever when the abort meets the body's end.
 */
function nextChunk(reader: ReadableStreamDefaultReader<Uint8Array>, stallMs: number, what: string, signal?: AbortSignal): Promise<ReadResult> {
  return new Promise((resolve, reject) => {
    const settle = (f: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = (): void => settle(() => reject(signal!.reason));
    const timer = setTimeout(() => settle(() => reject(new HubError(`${what}: no data for ${stallMs / 1000} s`, true))), stallMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    reader.read().then((r) => settle(() => resolve(r)), (e: unknown) => settle(() => reject(e)));
  });
}
