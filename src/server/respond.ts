/**
 * Writing responses: JSON bodies, and server-sent events with `: keep-alive` comments whenever the
 * stream has been quiet (a request waiting in the queue or in a long prefill), as DeepSeek does.
 * Non-streaming answers send blank lines while they wait, before the JSON body.
 */
import type { ServerResponse } from 'node:http';
import type { ApiError } from './errors.js';

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
