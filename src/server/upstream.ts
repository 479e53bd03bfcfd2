/**
 * A model served by another OpenAI/DeepSeek-compatible endpoint (vLLM, SGLang, the DeepSeek API,
 * another minke): how a deployment outgrows one machine. The ChatJob is rebuilt as a DeepSeek
 * request, always streamed from the upstream, and its SSE chunks become ChatEvents again — so every
 * dialect, streaming or not, works over it.
 *
 * URLs: `url` is the base URL as an SDK takes it (http://host:8080, https://api.deepseek.com,
 * http://host/v1); chat goes to `${url}/chat/completions`. Chat prefix completion and FIM
 * `/completions` are DeepSeek beta features and go to the beta base: `url` itself when it ends in
 * `/beta`; `url` with its final `/v1` replaced by `/beta` (https://api.deepseek.com/v1 →
 * https://api.deepseek.com/beta); else `${url}/beta`. `betaUrl` overrides the rule (vLLM and
 * SGLang have no /beta: give their `/v1`).
 *
 * Errors (api-deepseek.md §16): an upstream 4xx keeps its status and message (prefixed with the
 * model name) — except 401/403/404/405, which mean the server's own upstream settings (key, URL,
 * model) are wrong and are no fault of the client: 500. An upstream 500 stays 500 (server error).
 * An upstream that cannot be reached, does not answer in time, breaks off its stream, or answers
 * 502/503/504, is 503 (overloaded_error, with Retry-After): the documented "retry after a wait"
 * for a model that is, for now, not there.
 */
import type { ChatBackend, ChatEvent, ChatJob, ChatOutcome, ChatRun, ChatUsage, CompletionJob, FinishReason, ModelInfo } from './chat.js';
import { ApiError } from './errors.js';
import { sseData } from './sse-reader.js';
import { ChatDeltas, RETRY_AFTER_S, TextDeltas, chatBody, completionBody, finishReason, isObject, parseChunk, usageOf, type Deltas, type Json } from './upstream-wire.js';

export interface UpstreamOptions {
  /** The name this server lists and answers for. */
  readonly name: string;
  /** The upstream base URL. */
  readonly url: string;
  /** Sent as `Authorization: Bearer`. */
  readonly apiKey?: string;
  /** The model name upstream (default: `name`). */
  readonly model?: string;
  /** Until the upstream's response headers (default 60 s). */
  readonly timeoutMs?: number;
  /** Longest silence inside a streaming answer (default 5 min; DeepSeek sends keep-alives while queued). */
  readonly readTimeoutMs?: number;
  /** The beta base URL (default: derived from `url`, see above). */
  readonly betaUrl?: string;
}

/** A ChatRun whose `ready` settles when the upstream has accepted the job (response headers). */
export interface UpstreamRun extends ChatRun {
  /** Resolves once the upstream answered 200 with an event stream; rejects with the ApiError the events would throw. */
  readonly ready: Promise<void>;
}

export class UpstreamBackend implements ChatBackend {
  readonly info: ModelInfo;
  readonly baseUrl: string;
  readonly betaUrl: string;
  private readonly model: string;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly inFlight = new Set<AbortController>();

  constructor(opts: UpstreamOptions) {
    this.baseUrl = baseUrl(opts.url, `upstream model "${opts.name}": url`);
    this.betaUrl = opts.betaUrl !== undefined ? baseUrl(opts.betaUrl, `upstream model "${opts.name}": betaUrl`) : betaBase(this.baseUrl);
    this.model = opts.model ?? opts.name;
    this.apiKey = opts.apiKey;
    this.timeoutMs = positive(opts.timeoutMs ?? 60_000, `upstream model "${opts.name}": timeoutMs`);
    this.readTimeoutMs = positive(opts.readTimeoutMs ?? 300_000, `upstream model "${opts.name}": readTimeoutMs`);
    this.info = { id: opts.name, ownedBy: 'upstream', reasoning: true, fim: true };
  }

  chat(job: ChatJob): UpstreamRun {
    const base = job.messages.at(-1)?.prefix ? this.betaUrl : this.baseUrl;
    return this.stream(`${base}/chat/completions`, chatBody(job, this.model), job.signal, new ChatDeltas());
  }

  complete(job: CompletionJob): UpstreamRun {
    return this.stream(`${this.betaUrl}/completions`, completionBody(job, this.model), job.signal, new TextDeltas());
  }

  async close(): Promise<void> {
    for (const ctrl of this.inFlight) ctrl.abort(this.unavailable('the server is shutting down'));
    this.inFlight.clear();
  }

  /** POSTs `body` and maps the streamed answer; the request starts now, its failures surface from the events. */
  private stream(url: string, body: Json, clientSignal: AbortSignal, deltas: Deltas): UpstreamRun {
    const name = this.info.id;
    const ctrl = new AbortController();
    const onClientGone = () => ctrl.abort(new ApiError(499, `${name}: the client closed the request`, { code: 'client_closed_request' }));
    if (clientSignal.aborted) onClientGone();
    else clientSignal.addEventListener('abort', onClientGone, { once: true });
    this.inFlight.add(ctrl);
    const release = () => { clientSignal.removeEventListener('abort', onClientGone); this.inFlight.delete(ctrl); };

    const response = this.post(url, body, ctrl);
    const ready = response.then(() => undefined);
    ready.catch(() => undefined);
    let resolveOutcome!: (o: ChatOutcome) => void, rejectOutcome!: (e: unknown) => void;
    const outcome = new Promise<ChatOutcome>((res, rej) => { resolveOutcome = res; rejectOutcome = rej; });
    outcome.catch(() => undefined);

    const broken = (err: unknown): ApiError => this.unavailable(`its answer broke off: ${describe(err)}`);
    const stalled = () => ctrl.abort(this.unavailable(`its answer stalled (nothing for ${this.readTimeoutMs / 1000} s)`));
    const readTimeoutMs = this.readTimeoutMs;

    async function* events(): AsyncGenerator<ChatEvent> {
      let finished = false;
      try {
        const res = await response;
        let finish: FinishReason | undefined;
        let usage: ChatUsage | undefined;
        try {
          for await (const data of sseData(res.body!, { readTimeoutMs, signal: ctrl.signal, onStall: stalled, isEnd: (d) => d.trim() === '[DONE]' })) {
            const chunk = parseChunk(data, name);
            if (isObject(chunk.usage)) usage = usageOf(chunk.usage);
            const choice = Array.isArray(chunk.choices) ? chunk.choices.find(isObject) : undefined;
            if (!choice || finish) continue;
            yield* deltas.push(choice);
            if (typeof choice.finish_reason === 'string' && choice.finish_reason) {
              finish = finishReason(choice.finish_reason);
              const calls = deltas.finish(name);
              if (calls.length && finish === 'stop') finish = 'tool_calls';
              yield* calls;
            }
          }
        } catch (err) {
          throw err instanceof ApiError ? err : ctrl.signal.reason instanceof ApiError ? ctrl.signal.reason : broken(err);
        }
        if (!finish) throw broken('the stream ended before the answer finished');
        resolveOutcome({ finishReason: finish, usage: usage ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 } });
        finished = true;
      } catch (err) {
        rejectOutcome(err);
        throw err;
      } finally {
        // Unfinished (failed, or the reader stopped early): the upstream request ends with it.
        if (!finished) {
          rejectOutcome(new ApiError(499, `${name}: the answer was not read to its end`));
          ctrl.abort();
        }
        release();
      }
    }
    const gen = events();
    return { outcome, ready, [Symbol.asyncIterator]: () => gen };
  }

  /** The upstream's 200 event-stream response, or the ApiError its failure means. */
  private async post(url: string, body: Json, ctrl: AbortController): Promise<Response> {
    const timer = setTimeout(() => ctrl.abort(this.unavailable(`it sent no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: ctrl.signal,
        });
      } catch (err) {
        throw ctrl.signal.reason instanceof ApiError ? ctrl.signal.reason : this.unavailable(`it cannot be reached: ${describe(err)}`);
      }
      if (!res.ok) throw await this.refusal(res, url, ctrl);
      const type = res.headers.get('content-type') ?? '';
      if (!/^text\/event-stream/i.test(type)) {
        await res.body?.cancel().catch(() => undefined);
        throw this.unavailable(`it answered ${type || 'no content type'}, not an event stream`);
      }
      return res;
    } finally {
      clearTimeout(timer);
    }
  }

  /** An upstream's error answer as this server's error (see the table at the top). */
  private async refusal(res: Response, url: string, ctrl: AbortController): Promise<ApiError> {
    const name = this.info.id;
    let text = '';
    try {
      text = await res.text();
    } catch {
      if (ctrl.signal.reason instanceof ApiError) return ctrl.signal.reason;
    }
    const err = errorBody(text);
    const message = err.message ?? `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    const s = res.status;
    if (s === 401 || s === 403 || s === 404 || s === 405) {
      return new ApiError(500, `${name}: the upstream ${url} refused this server's request (HTTP ${s}: ${message}); check the upstream url, apiKey and model in the server's settings`, { type: 'server_error' });
    }
    if (s < 500) return new ApiError(s, `${name}: ${message}`, { param: err.param, code: err.code, retryAfter: retryAfter(res) });
    if (s === 500) return new ApiError(500, `${name}: the upstream failed: ${message}`, { type: 'server_error' });
    return this.unavailable(`it answered HTTP ${s}: ${message}`, retryAfter(res));
  }

  private unavailable(why: string, retry = RETRY_AFTER_S): ApiError {
    return new ApiError(503, `${this.info.id}: the upstream ${this.baseUrl} is unavailable: ${why}`, { type: 'overloaded_error', retryAfter: retry });
  }
}

/** message/type/param/code of an error body in OpenAI, vLLM (`{object:"error",message}`) or FastAPI (`{detail}`) shape. */
function errorBody(text: string): { message?: string; param: string | null; code?: string | null } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    const t = text.trim();
    return { message: t ? t.slice(0, 500) : undefined, param: null };
  }
  if (!isObject(j)) return { message: text.trim().slice(0, 500) || undefined, param: null };
  const e = isObject(j.error) ? j.error : j;
  const message = typeof e.message === 'string' ? e.message : typeof j.error === 'string' ? j.error : j.detail !== undefined ? (typeof j.detail === 'string' ? j.detail : JSON.stringify(j.detail)) : undefined;
  return { message, param: typeof e.param === 'string' ? e.param : null, code: typeof e.code === 'string' ? e.code : undefined };
}

function retryAfter(res: Response): number | undefined {
  const v = Number(res.headers.get('retry-after'));
  return Number.isFinite(v) && v >= 0 && res.headers.has('retry-after') ? v : undefined;
}

function baseUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what} ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${what} ${JSON.stringify(url)} must be an http:// or https:// URL`);
  if (u.search || u.hash) throw new Error(`${what} ${JSON.stringify(url)} must not have a query or fragment`);
  return u.href.replace(/\/+$/, '');
}

/** The rule at the top: /beta stays, a final /v1 becomes /beta, else /beta is added. */
export function betaBase(base: string): string {
  if (/\/beta$/.test(base)) return base;
  if (/\/v1$/.test(base)) return `${base.slice(0, -3)}/beta`;
  return `${base}/beta`;
}

function positive(n: number, what: string): number {
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${what} must be a positive number of milliseconds, got ${n}`);
  return n;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && cause !== err.message ? `${err.message} (${cause})` : err.message;
}
