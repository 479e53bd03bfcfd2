/**
 * The HTTP server: routing, API keys, body limits, per-key limits, and the rule that every failure
 * is answered in the documented error shape — a malformed request gets a 4xx naming what is wrong,
 * never a 500 or a hang. A client that goes away aborts its request's signal (and so its generation).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { ModelRegistry } from './registry.js';
import { errorHeaders, sendJson } from './respond.js';
import type { Body } from './validate.js';
import { RateLimiter } from './rate-limit.js';

export interface ServerOptions {
  readonly host?: string;
  readonly port?: number;
  /** Accepted API keys; none = no authentication. */
  readonly apiKeys?: readonly string[];
  /** Largest request body in bytes (default 16 MiB). */
  readonly maxBodyBytes?: number;
  /** Largest max_tokens a request may ask for (default 393216, DeepSeek's 384K). */
  readonly maxTokens?: number;
  /** Requests one key (or, without keys, one client address) may have in flight (default 64). */
  readonly maxConcurrentPerKey?: number;
  /** Requests per minute per key (default unlimited). */
  readonly requestsPerMinute?: number;
  /** Quiet time before an SSE `: keep-alive` comment or a blank line (default 5000 ms). */
  readonly keepAliveMs?: number;
}

/** What a route handler gets. */
export interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  /** The parsed JSON body of a POST, PUT or PATCH (an object), else {}. */
  readonly body: Body;
  /** The path's `:name` segments (URL-decoded) and, for a trailing `*`, the rest as `*`. */
  readonly params: Readonly<Record<string, string>>;
  /** The path was under /beta (strict tools, prefix completion, FIM). */
  readonly beta: boolean;
  /** Aborted when the client disconnects. */
  readonly signal: AbortSignal;
  readonly server: ServerContext;
}

export interface ServerContext {
  readonly registry: ModelRegistry;
  readonly metrics: Metrics;
  readonly options: Required<Omit<ServerOptions, 'apiKeys' | 'requestsPerMinute'>> & Pick<ServerOptions, 'apiKeys' | 'requestsPerMinute'>;
}

export type Handler = (x: Exchange) => Promise<void>;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Route {
  readonly method: Method;
  /**
   * Paths this route answers: exact ones, or patterns where `:name` matches one segment and a last
   * segment `*` matches one or more. Exact paths win; patterns are tried in the order given.
   */
  readonly paths: readonly string[];
  readonly handler: Handler;
  /** Errors in the Anthropic shape. */
  readonly anthropic?: boolean;
  /** Reachable without an API key. */
  readonly open?: boolean;
  /** A request without a body is taken as {} (else POST, PUT and PATCH need a JSON object). */
  readonly emptyBody?: boolean;
}

interface Pattern { readonly method: Method; readonly segments: readonly string[]; readonly route: Route }

const MAX_JSON_DEPTH = 128;

export class ApiServer {
  private readonly server: http.Server;
  private readonly routes = new Map<string, Route>();
  private readonly patterns: Pattern[] = [];
  private readonly closeHooks: (() => Promise<void> | void)[] = [];
  private readonly limiter: RateLimiter;
  readonly context: ServerContext;

  constructor(registry: ModelRegistry, metrics: Metrics, options: ServerOptions, routes: readonly Route[]) {
    this.context = {
      registry, metrics,
      options: {
        host: options.host ?? '127.0.0.1', port: options.port ?? 8080, apiKeys: options.apiKeys,
        maxBodyBytes: options.maxBodyBytes ?? 16 * 2 ** 20, maxTokens: options.maxTokens ?? 393_216,
        maxConcurrentPerKey: options.maxConcurrentPerKey ?? 64, requestsPerMinute: options.requestsPerMinute,
        keepAliveMs: options.keepAliveMs ?? 5000,
      },
    };
    this.limiter = new RateLimiter(this.context.options.maxConcurrentPerKey, options.requestsPerMinute);
    for (const r of routes) {
      for (const p of r.paths) {
        if (/(^|\/)(:|\*$)/.test(p)) this.patterns.push({ method: r.method, segments: p.split('/').slice(1), route: r });
        else this.routes.set(`${r.method} ${p}`, r);
      }
    }
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.headersTimeout = 60_000;
    this.server.requestTimeout = 0; // generations may stream for a long time
    this.server.keepAliveTimeout = 5_000;
  }

  /** Starts listening; resolves to the base URL. */
  async listen(): Promise<string> {
    const { host, port } = this.context.options;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Runs `hook` on close, before the models close (e.g. to end work that still uses them). */
  onClose(hook: () => Promise<void> | void): void {
    this.closeHooks.push(hook);
  }

  /** Stops accepting, runs the close hooks, ends the running requests, closes the models. */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const hook of this.closeHooks) await hook();
    await this.context.registry.close();
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const exact = this.routes.get(`${req.method} ${path}`);
    const found = exact ? { route: exact, params: {} } : this.match(req.method, path);
    const route = found?.route;
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    let release: (() => void) | undefined;
    let status = 200;
    try {
      if (!route) throw new ApiError(404, `no route for ${req.method} ${path}`, { type: 'not_found_error' });
      const key = route.open ? undefined : this.authenticate(req);
      release = this.limiter.acquire(key ?? req.socket.remoteAddress ?? '');
      const body = req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH' ? await this.readBody(req, route.emptyBody) : {};
      const params = Object.fromEntries(Object.entries(found.params).map(([k, v]) => [k, v.split('/').map(decodeSegment).join('/')]));
      await route.handler({ req, res, body, params, beta: path.startsWith('/beta/'), signal: abort.signal, server: this.context });
      status = res.statusCode;
    } catch (err) {
      const e = err instanceof ApiError ? err : internalError(err);
      status = e.status;
      if (!res.headersSent) sendJson(res, e.status, route?.anthropic ? e.toAnthropic() : e.toJSON(), errorHeaders(e));
      else if (!res.writableEnded) {
        // A JSON answer that already sent keep-alive blank lines still ends with the error body.
        const json = String(res.getHeader('content-type') ?? '').startsWith('application/json');
        res.end(json ? JSON.stringify(route?.anthropic ? e.toAnthropic() : e.toJSON()) : undefined);
      }
      if (!(err instanceof ApiError)) req.resume();
    } finally {
      release?.();
      this.context.metrics.request(route ? route.paths[0] : 'unknown', status, (performance.now() - started) / 1000);
    }
  }

  /** The first pattern route matching `path`, with its params (still percent-encoded). */
  private match(method: string | undefined, path: string): { route: Route; params: Record<string, string> } | undefined {
    const given = path.split('/').slice(1);
    for (const p of this.patterns) {
      if (p.method !== method) continue;
      const rest = p.segments.at(-1) === '*';
      const fixed = rest ? p.segments.length - 1 : p.segments.length;
      if (rest ? given.length <= fixed : given.length !== fixed) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < fixed && ok; i++) {
        const seg = p.segments[i];
        if (seg.startsWith(':')) { ok = given[i] !== ''; params[seg.slice(1)] = given[i]; } else ok = seg === given[i];
      }
      if (!ok) continue;
      if (rest) params['*'] = given.slice(fixed).join('/');
      return { route: p.route, params };
    }
    return undefined;
  }

  private authenticate(req: http.IncomingMessage): string | undefined {
    const keys = this.context.options.apiKeys;
    if (!keys?.length) return undefined;
    const auth = req.headers.authorization;
    const given = typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : req.headers['x-api-key'];
    if (typeof given !== 'string' || !keys.includes(given)) {
      throw new ApiError(401, given === undefined ? 'Authentication Fails: no API key was given (Authorization: Bearer KEY or x-api-key)' : 'Authentication Fails: the API key is invalid', { type: 'authentication_error' });
    }
    return given;
  }

  /** The body as a JSON object, within the size limit, valid UTF-8, not absurdly deep. */
  private async readBody(req: http.IncomingMessage, emptyOk = false): Promise<Body> {
    const limit = this.context.options.maxBodyBytes;
    const declared = Number(req.headers['content-length']);
    if (declared > limit) throw tooLarge(limit);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      throw new ApiError(400, 'the request body is not valid UTF-8');
    }
    if (!text.trim()) {
      if (emptyOk) return {};
      throw new ApiError(400, 'the request body is empty; a JSON object is expected');
    }
    if (jsonDepth(text) > MAX_JSON_DEPTH) throw new ApiError(400, `the request body nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, `the request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
    return body as Body;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, `the path segment ${JSON.stringify(segment.slice(0, 100))} is not valid percent-encoding`);
  }
}

function tooLarge(limit: number): ApiError {
  // Drains nothing: the connection is closed after the answer.
  return new ApiError(400, `the request body is larger than the server's limit of ${limit} bytes`);
}

function internalError(err: unknown): ApiError {
  console.error(`minke serve: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  return new ApiError(500, `internal server error: ${err instanceof Error ? err.message : String(err)}`, { type: 'server_error' });
}

/** Deepest bracket nesting outside strings (JSON.parse itself would take any depth). */
function jsonDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) { if (++depth > max) max = depth; }
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
