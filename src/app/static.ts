/**
 * The pre-built web app (dist/app/web) as static files at `/`: no API key needed, nothing outside
 * the folder reachable, index.html for the app's own page paths. Without a build, `/` says so.
 * The shipped model's files are at `/models/minke-nano/<file>` for the app's in-browser engine,
 * and every answer is cross-origin isolated (COOP + COEP), which that engine's shared WASM memory needs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NANO_MODEL_DIR, NANO_MODEL_NAME } from '../models/shipped.js';
import { ApiError } from '../server/errors.js';
import type { Exchange, Route } from '../server/http.js';

/** dist/app/web beside this module's dist/src/app/. */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../app/web/', import.meta.url));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp',
  '.ico': 'image/x-icon', '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.otf': 'font/otf',
  '.txt': 'text/plain; charset=utf-8', '.wasm': 'application/wasm', '.webmanifest': 'application/manifest+json',
};

const NOT_BUILT = `<!doctype html>
<html><head><meta charset="utf-8"><title>minke</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto; padding: 0 1em">
<h1>minke</h1>
<p>The web app is not built: run <code>npm run build</code> in the minke folder, then restart <code>minke serve</code>.</p>
<p>The API is running: see <a href="/models">/models</a> and <a href="/health">/health</a>.</p>
</body></html>
`;

const MODEL_PREFIX = `models/${NANO_MODEL_NAME}/`;

/** GET `/`, every file under `dir`, and the shipped model's files (from `modelDir`). */
export function staticRoutes(dir = defaultWebDir(), modelDir = NANO_MODEL_DIR): Route[] {
  const root = path.resolve(dir);
  const handler = async (x: Exchange): Promise<void> => {
    const rel = x.params['*'] ?? '';
    if (rel.startsWith(MODEL_PREFIX)) {
      const file = resolveInside(path.resolve(modelDir), rel.slice(MODEL_PREFIX.length));
      if (file && isFile(file)) {
        // An ETag lets the browser engine keep its OPFS copy until the file changes.
        const st = fs.statSync(file), etag = `"${st.size}-${Math.floor(st.mtimeMs)}"`;
        if (x.req.headers['if-none-match'] === etag) { x.res.writeHead(304, { etag, ...ISOLATION }); x.res.end(); return; }
        return send(x, 200, TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', fs.readFileSync(file), 'no-cache', etag);
      }
      throw new ApiError(404, `no route for GET /${rel}`, { type: 'not_found_error' });
    }
    if (!fs.existsSync(path.join(root, 'index.html'))) {
      if (rel === '') return send(x, 200, 'text/html; charset=utf-8', Buffer.from(NOT_BUILT), 'no-cache');
      throw new ApiError(404, `no route for GET /${rel}`, { type: 'not_found_error' });
    }
    const file = resolveInside(root, rel);
    if (file && isFile(file)) return send(x, 200, TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', fs.readFileSync(file), cacheOf(rel));
    // The app's own pages (no extension) from a browser get the app; anything else is a plain 404.
    const page = path.extname(rel) === '' && /text\/html/.test(String(x.req.headers.accept ?? ''));
    if (rel === '' || page) return send(x, 200, 'text/html; charset=utf-8', fs.readFileSync(path.join(root, 'index.html')), 'no-cache');
    throw new ApiError(404, `no route for GET /${rel}`, { type: 'not_found_error' });
  };
  return [{ method: 'GET', paths: ['/', '/*'], handler, open: true }];
}

/** `rel` (already URL-decoded) as a path inside `root`, or undefined when it would leave it. */
function resolveInside(root: string, rel: string): string | undefined {
  if (rel === '' || rel.includes('\0')) return undefined;
  if (rel.split(/[\\/]/).some((seg) => seg === '..')) return undefined;
  const file = path.resolve(root, rel);
  return file.startsWith(root + path.sep) ? file : undefined;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Vite's hashed assets never change; everything else is revalidated. */
function cacheOf(rel: string): string {
  return rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
}

/** Cross-origin isolation: the browser engine's WASM kernels need shared memory. */
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

function send(x: Exchange, status: number, type: string, body: Buffer, cache: string, etag?: string): void {
  x.res.writeHead(status, {
    'content-type': type, 'content-length': body.length, 'cache-control': cache, 'x-content-type-options': 'nosniff', ...ISOLATION,
    ...(etag ? { etag } : {}),
  });
  x.res.end(body);
}
