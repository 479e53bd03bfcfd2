/**
 * A Hugging Face hub client: the file listing of a repo at a revision, and file downloads from
 * any byte on. The hub's layout:
 *
 * - `GET {endpoint}/api/models/{owner}/{repo}/revision/{rev}?blobs=true` → `{ sha, siblings: [{
 *   rfilename, size, blobId, lfs?: { sha256, size } }] }`: the commit and every file with its size,
 *   its git blob id, and for LFS files (weights) the sha256 of the content.
 * - `GET {endpoint}/{owner}/{repo}/resolve/{commit}/{file}`: small files answer directly; LFS files
 *   answer 302 to a CDN host, with `X-Repo-Commit`, `X-Linked-Etag` (the sha256) and `X-Linked-Size`.
 *   `Range: bytes=N-` is honoured (206) by both.
 * - Errors carry `X-Error-Code`: RepoNotFound (also as 401 to anonymous callers), GatedRepo,
 *   RevisionNotFound, EntryNotFound.
 *
 * HF_ENDPOINT points it at a mirror; HF_TOKEN is sent as a bearer token to the endpoint only, never
 * to the CDN the hub redirects to (its URLs are signed).
 */

export interface HubFile {
  readonly path: string;
  readonly size: number;
  /** LFS files: the sha256 of the content. */
  readonly sha256?: string;
  /** The git blob id: for small files the sha1 of `blob <size>\0<content>`. */
  readonly gitOid?: string;
}

export interface RepoInfo {
  readonly repo: string;
  readonly commit: string;
  readonly files: readonly HubFile[];
}

/** A hub or network failure; `retryable` ones (connection lost, 5xx, 429) are worth another try. */
export class HubError extends Error {
  constructor(message: string, readonly retryable = false) {
    super(message);
  }
}

export interface HubOptions {
  readonly endpoint?: string;
  readonly token?: string;
}

interface Where {
  readonly repo: string;
  readonly revision?: string;
  readonly file?: string;
}

const MAX_REDIRECTS = 8;
const SHA256 = /^[0-9a-f]{64}$/;

export class HubClient {
  readonly endpoint: string;
  readonly token: string | undefined;

  constructor(opts: HubOptions = {}) {
    this.endpoint = (opts.endpoint ?? (process.env.HF_ENDPOINT || 'https://huggingface.co')).replace(/\/+$/, '');
    this.token = opts.token ?? (process.env.HF_TOKEN || undefined);
  }

  /** The commit `revision` points at and the files of the repo there. */
  async repoInfo(repo: string, revision: string, signal?: AbortSignal): Promise<RepoInfo> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const res = await this.get(url, {}, { repo, revision }, signal);
    let body: { sha?: unknown; siblings?: unknown };
    try {
      body = await res.json() as typeof body;
    } catch {
      throw new HubError(`${repo}: ${url} did not answer JSON (is HF_ENDPOINT a Hugging Face hub?)`);
    }
    if (typeof body.sha !== 'string' || !Array.isArray(body.siblings)) {
      throw new HubError(`${repo}: the hub's answer has no commit or file list (${url})`);
    }
    const files = (body.siblings as Record<string, unknown>[]).map((s): HubFile => {
      const lfs = s.lfs as { sha256?: unknown } | undefined;
      if (typeof s.rfilename !== 'string' || typeof s.size !== 'number') {
        throw new HubError(`${repo}: the hub lists a file without name or size (${url}); the listing needs ?blobs=true`);
      }
      const sha256 = typeof lfs?.sha256 === 'string' && SHA256.test(lfs.sha256) ? lfs.sha256 : undefined;
      const gitOid = !lfs && typeof s.blobId === 'string' ? s.blobId : undefined;
      return { path: s.rfilename, size: s.size, sha256, gitOid };
    });
    return { repo, commit: body.sha, files };
  }

  /**
   * The response streaming `file` at `commit` from byte `start` on (206, or 200 when the server
   * ignored the range), with the sha256 the hub links to it when it says so.
   */
  async openFile(repo: string, commit: string, file: string, start: number, signal?: AbortSignal): Promise<{ res: Response; linkedSha256?: string; repoCommit?: string }> {
    const url = `${this.endpoint}/${repo}/resolve/${encodeURIComponent(commit)}/${file.split('/').map(encodeURIComponent).join('/')}`;
    const headers: Record<string, string> = start > 0 ? { range: `bytes=${start}-` } : {};
    let linked: string | undefined;
    let repoCommit: string | undefined;
    const res = await this.get(url, headers, { repo, revision: commit, file }, signal, (hop) => {
      linked ??= hop.headers.get('x-linked-etag')?.replace(/^(W\/)?"|"$/g, '');
      repoCommit ??= hop.headers.get('x-repo-commit') ?? undefined;
    });
    return { res, linkedSha256: linked && SHA256.test(linked) ? linked : undefined, repoCommit };
  }

  /** GET following redirects by hand, so the token goes to the endpoint's origin and nowhere else. */
  private async get(url: string, headers: Record<string, string>, where: Where, signal?: AbortSignal, onHop?: (res: Response) => void): Promise<Response> {
    const origin = new URL(this.endpoint).origin;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const auth: Record<string, string> = this.token && new URL(url).origin === origin ? { authorization: `Bearer ${this.token}` } : {};
      let res: Response;
      try {
        res = await fetch(url, { headers: { ...headers, ...auth, 'user-agent': 'minke' }, redirect: 'manual', signal });
      } catch (err) {
        throw networkError(err, url);
      }
      onHop?.(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        url = new URL(location, url).href;
        continue;
      }
      if (res.ok) return res;
      await res.body?.cancel();
      throw this.failure(res, where);
    }
    throw new HubError(`${where.repo}: more than ${MAX_REDIRECTS} redirects from ${this.endpoint}`);
  }

  /** One line saying what went wrong and what to do about it. */
  private failure(res: Response, { repo, revision, file }: Where): HubError {
    const code = res.headers.get('x-error-code');
    const page = `${this.endpoint}/${repo}`;
    if (code === 'RepoNotFound' || (res.status === 404 && !file && code !== 'RevisionNotFound')) {
      return new HubError(`${repo}: no such model repository on ${this.endpoint}${this.token ? '' : ' (if it is private, set HF_TOKEN)'}`);
    }
    if (code === 'GatedRepo') {
      return new HubError(`${repo} is gated: accept its conditions at ${page}, then set HF_TOKEN to a token of that account${this.token ? ' (the HF_TOKEN given has no access yet)' : ''}`);
    }
    if (code === 'RevisionNotFound') return new HubError(`${repo}: no revision '${revision}'`);
    if (code === 'EntryNotFound' || res.status === 404) return new HubError(`${repo}: no file '${file}' at ${revision}`);
    if (res.status === 401 || res.status === 403) {
      return new HubError(this.token
        ? `${repo}: HF_TOKEN is not allowed to read this repository (${res.status}); check the token's access at ${page}`
        : `${repo}: the hub needs a token to read this repository (${res.status}); set HF_TOKEN`);
    }
    const retryable = res.status === 429 || res.status >= 500;
    return new HubError(`${repo}${file ? `/${file}` : ''}: the hub answered ${res.status} ${res.statusText}`.trimEnd(), retryable);
  }
}

/** fetch's "fetch failed"/"terminated" turned into a message with the cause (ECONNREFUSED, …). */
export function networkError(err: unknown, url: string): Error {
  if ((err as Error).name === 'AbortError') return err as Error;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new HubError(`cannot reach ${new URL(url).origin} (${why}); check the network connection or HF_ENDPOINT`, true);
}
