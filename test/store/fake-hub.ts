/**
 * A Hugging Face hub of the tests' own, in the hub's URL and header layout (src/store/hub.ts):
 * `/api/models/{repo}/revision/{rev}?blobs=true`, `/{repo}/resolve/{rev}/{file}` answering small
 * files itself and LFS files (.safetensors, .gguf) with a 302 to a second server, the "CDN", on
 * another port; Range requests (206), X-Repo-Commit, X-Linked-Etag/X-Linked-Size, X-Error-Code.
 * Faults per file: drop the connection after N bytes, stall after N bytes, serve corrupted bytes.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  readonly commit: string;
  readonly files: Map<string, Uint8Array>;
  /** Gated: resolve answers 401 GatedRepo unless the bearer token is `token`. */
  readonly token?: string;
  /** Sizes the listing claims instead of the real ones. */
  readonly listedSize?: Map<string, number>;
}

export interface Fault {
  readonly dropAfter?: number;
  readonly stallAfter?: number;
  readonly corrupt?: boolean;
}

export interface LoggedRequest {
  readonly server: 'hub' | 'cdn';
  readonly path: string;
  readonly range?: string;
  readonly auth?: string;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Uint8Array): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (f: string): boolean => /\.(safetensors|gguf)$/.test(f);
const lfsPointer = (b: Uint8Array): Buffer => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${b.length}\n`);

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** By file path (in any repo). */
  readonly faults = new Map<string, Fault>();
  readonly requests: LoggedRequest[] = [];
  private readonly hub = http.createServer((q, s) => this.serveHub(q, s));
  private readonly cdn = http.createServer((q, s) => this.serveCdn(q, s));

  get url(): string { return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`; }
  get cdnUrl(): string { return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`; }

  async start(): Promise<this> {
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok))));
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) s.closeAllConnections();
    await Promise.all([this.hub, this.cdn].map((s) => new Promise((ok) => s.close(ok))));
  }

  /** The CDN requests for one file (by its content hash), in order. */
  cdnRequests(content: Uint8Array): LoggedRequest[] {
    return this.requests.filter((r) => r.server === 'cdn' && r.path.startsWith(`/lfs/${sha256(content)}`));
  }

  private log(server: LoggedRequest['server'], req: http.IncomingMessage): void {
    this.requests.push({ server, path: req.url ?? '', range: req.headers.range, auth: req.headers.authorization });
  }

  private serveHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.log('hub', req);
    const url = new URL(req.url ?? '/', this.url);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const repo = this.repos.get(api[1]);
      if (!repo) return error(res, 401, 'RepoNotFound', 'Repository not found');
      const rev = decodeURIComponent(api[2]);
      if (rev !== 'main' && rev !== repo.commit) return error(res, 404, 'RevisionNotFound', 'Invalid rev id');
      const siblings = [...repo.files].map(([rfilename, b]) => ({
        rfilename,
        size: repo.listedSize?.get(rfilename) ?? b.length,
        blobId: isLfs(rfilename) ? gitOid(lfsPointer(b)) : gitOid(b),
        ...(isLfs(rfilename) ? { lfs: { sha256: sha256(b), size: repo.listedSize?.get(rfilename) ?? b.length, pointerSize: lfsPointer(b).length } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], sha: repo.commit, private: false, gated: repo.token ? 'manual' : false, siblings }));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return error(res, 404, undefined, 'Not found');
    const repo = this.repos.get(resolve[1]);
    if (!repo) return error(res, 401, 'RepoNotFound', 'Repository not found');
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return error(res, 401, 'GatedRepo', 'Access to this model is restricted');
    const rev = decodeURIComponent(resolve[2]);
    if (rev !== 'main' && rev !== repo.commit) return error(res, 404, 'RevisionNotFound', 'Invalid rev id');
    const file = resolve[3].split('/').map(decodeURIComponent).join('/');
    const body = repo.files.get(file);
    if (!body) return error(res, 404, 'EntryNotFound', 'Entry not found');
    const common = { 'x-repo-commit': repo.commit };
    if (isLfs(file)) {
      res.writeHead(302, {
        ...common, location: `${this.cdnUrl}/lfs/${sha256(body)}?file=${encodeURIComponent(file)}&sig=signed`,
        'x-linked-etag': `"${sha256(body)}"`, 'x-linked-size': String(body.length), etag: `"${gitOid(lfsPointer(body))}"`,
      });
      res.end();
      return;
    }
    this.sendBytes(req, res, file, body, { ...common, etag: `"${gitOid(body)}"` });
  }

  private serveCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.log('cdn', req);
    const url = new URL(req.url ?? '/', this.cdnUrl);
    const file = url.searchParams.get('file') ?? '';
    const hash = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const body = [...this.repos.values()].map((r) => r.files.get(file)).find((b) => b && sha256(b) === hash);
    if (!body) return error(res, 404, undefined, 'no such object');
    this.sendBytes(req, res, file, body, { etag: `"${hash}"` });
  }

  /** The bytes from the Range's start (206) or all of them (200), with this file's fault applied. */
  private sendBytes(req: http.IncomingMessage, res: http.ServerResponse, file: string, body: Uint8Array, headers: Record<string, string>): void {
    const fault = this.faults.get(file) ?? {};
    let bytes = Buffer.from(body);
    if (fault.corrupt) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) + 1 : bytes.length;
    if (range && start >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    const part = bytes.subarray(start, end);
    res.writeHead(range ? 206 : 200, {
      ...headers, 'accept-ranges': 'bytes', 'content-length': String(part.length),
      ...(range ? { 'content-range': `bytes ${start}-${end - 1}/${bytes.length}` } : {}),
    });
    const cut = fault.dropAfter ?? fault.stallAfter;
    if (cut === undefined) {
      res.end(part);
      return;
    }
    // Part of the body, then the connection is dropped (or left hanging).
    res.write(part.subarray(0, cut), () => {
      if (fault.dropAfter !== undefined) setTimeout(() => res.socket?.destroy(), 20);
    });
  }
}

function error(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-error-code': code, 'x-error-message': message } : {}) });
  res.end(JSON.stringify({ error: message }));
}
