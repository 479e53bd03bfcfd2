// Shared by the Anthropic and Responses dialect tests: a backend that plays a script of ChatEvents
// (so whole wire transcripts can be written down by hand), a server over such backends, and a
// strict SSE reader that parses every event's JSON.
import type { ChatBackend, ChatEvent, ChatJob, ChatOutcome, ChatRun, CompletionJob, ModelInfo } from '../../src/server/chat.js';
import { ApiServer, type ServerOptions } from '../../src/server/http.js';
import { Metrics } from '../../src/server/metrics.js';
import { ModelRegistry } from '../../src/server/registry.js';
import { ROUTES } from '../../src/server/routes.js';

export interface Script {
  readonly events: readonly ChatEvent[];
  /** The outcome, or the error the run fails with after its events. */
  readonly end: ChatOutcome | Error;
  /** Wait before the first event (keep-alives go out meanwhile). */
  readonly delayMs?: number;
}

/** A backend that answers every job with `script(job)` and remembers the jobs. */
export class ScriptedBackend implements ChatBackend {
  readonly jobs: ChatJob[] = [];
  readonly info: ModelInfo;

  constructor(id: string, private readonly script: (job: ChatJob) => Script, reasoning = true) {
    this.info = { id, ownedBy: 'test', reasoning, fim: false };
  }

  chat(job: ChatJob): ChatRun {
    this.jobs.push(job);
    const s = this.script(job);
    let settle!: (o: ChatOutcome) => void, fail!: (e: unknown) => void;
    const outcome = new Promise<ChatOutcome>((res, rej) => { settle = res; fail = rej; });
    outcome.catch(() => undefined);
    async function* events(): AsyncGenerator<ChatEvent> {
      if (s.delayMs) await new Promise((r) => setTimeout(r, s.delayMs));
      yield* s.events;
      if (s.end instanceof Error) { fail(s.end); throw s.end; }
      settle(s.end);
    }
    const gen = events();
    return { outcome, [Symbol.asyncIterator]: () => gen };
  }

  complete(_job: CompletionJob): ChatRun {
    throw new Error('not scripted');
  }

  async close(): Promise<void> {}
}

/** An API server over the given backends on a loopback port. */
export async function serveBackends(backends: readonly ChatBackend[], options: ServerOptions = {}): Promise<{ url: string; server: ApiServer }> {
  const registry = new ModelRegistry();
  for (const b of backends) registry.add(b);
  const server = new ApiServer(registry, new Metrics(), { port: 0, ...options }, ROUTES);
  return { url: await server.listen(), server };
}

export interface SseEvent {
  /** The `event:` line, or null without one. */
  readonly event: string | null;
  /** The `data:` line as text. */
  readonly raw: string;
  readonly data: any;
}

/** POSTs `body` and reads the whole SSE answer: its events, and whether comments (keep-alives) came. */
export async function postSse(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string | null; events: SseEvent[]; comments: string[]; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    let event: string | null = null;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line);
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
      else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
    }
    if (!data.length) continue;
    const raw = data.join('\n');
    events.push({ event, raw, data: raw === '[DONE]' ? raw : JSON.parse(raw) });
  }
  return { status: res.status, contentType: res.headers.get('content-type'), events, comments, text };
}
