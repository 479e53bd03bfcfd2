/**
 * Writing responses: JSON bodies, and server-sent events with `: keep-alive` comments whenever the
 * stream has been quiet (a request waiting in the queue or in a long prefill), as DeepSeek does.
 * Non-streaming answers send blank lines while they wait, before the JSON body.
 */
import type { ServerResponse } from 'node:http';
import type { ChatEvent, ChatOutcome, ChatRun } from './chat.js';
import { ApiError } from './errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function errorHeaders(err: ApiError): Record<string, string> {
  return err.retryAfter !== undefined ? { 'retry-after': String(err.retryAfter) } : {};
}

/** A stream of SSE events on `res`; the headers go out on construction. */
export class EventStream {
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly res: ServerResponse, keepAliveMs: number) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    this.timer = setInterval(() => {
      if (Date.now() - this.last >= keepAliveMs) this.write(': keep-alive\n\n');
    }, Math.max(10, keepAliveMs / 2));
  }

  /** `data: JSON`, with an `event:` line for dialects that name their events. */
  send(data: unknown, event?: string): void {
    this.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  end(): void {
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
  }

  private write(text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.last = Date.now();
    this.res.write(text);
  }
}

/** A dialect's wire events for one run, as Anthropic and the Responses API name them. */
export interface Transcript {
  start(): { event: string; data: unknown }[];
  push(e: ChatEvent): { event: string; data: unknown }[];
  finish(outcome: ChatOutcome): { event: string; data: unknown }[];
  fail(err: ApiError): { event: string; data: unknown }[];
}

/** Streams `run` as named SSE events; a failure after the first event becomes the dialect's failure events. */
export async function streamTranscript(res: ServerResponse, keepAliveMs: number, run: ChatRun, transcript: Transcript): Promise<void> {
  await run.ready; // an upstream's refusal is an HTTP error, not an event in an opened stream
  const sse = new EventStream(res, keepAliveMs);
  const send = (events: { event: string; data: unknown }[]) => { for (const w of events) sse.send(w.data, w.event); };
  try {
    send(transcript.start());
    for await (const e of run) send(transcript.push(e));
    send(transcript.finish(await run.outcome));
  } catch (err) {
    send(transcript.fail(err instanceof ApiError ? err : new ApiError(500, err instanceof Error ? err.message : String(err), { type: 'server_error' })));
  } finally {
    sse.end();
  }
}

/** A JSON response that may take a while: blank lines keep the connection alive until `end`. */
export class PatientJson {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly res: ServerResponse, keepAliveMs: number) {
    this.timer = setInterval(() => {
      // setHeader, not writeHead's argument: http.ts reads the type back if an error ends the body.
      if (!res.headersSent) { res.setHeader('content-type', 'application/json'); res.writeHead(200); }
      if (!res.writableEnded && !res.destroyed) res.write('\n');
    }, keepAliveMs);
  }

  end(body: unknown): void {
    clearInterval(this.timer);
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.headersSent) return sendJson(this.res, 200, body);
    this.res.end(JSON.stringify(body));
  }

  cancel(): void {
    clearInterval(this.timer);
  }
}
