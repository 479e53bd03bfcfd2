/**
 * Reading a server-sent event stream (an upstream's answer): the `data` of each event, with
 * comments (`: keep-alive`), other fields and blank lines skipped, and a limit on how long the
 * stream may stay silent — a stalled upstream must never hang the request that waits on it.
 */

export interface SseReadOptions {
  /** Longest silence between two reads before `onStall` is called and the read fails. */
  readonly readTimeoutMs: number;
  /** Aborts the read at once (its reason is what the read throws). */
  readonly signal: AbortSignal;
  /** Called when the stream has been silent too long; expected to abort `signal`. */
  readonly onStall: () => void;
  /** The data that ends the stream (`[DONE]`): not yielded; the rest of the response is read quietly. */
  readonly isEnd?: (data: string) => boolean;
}

/** How long the response may take to end after its last event before it is let go. */
const END_GRACE_MS = 1000;

/** The `data` payload of each event, in order (multi-line data joined with `\n`). */
export async function* sseData(body: ReadableStream<Uint8Array>, opts: SseReadOptions): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let data: string[] = [];
  let handedOff = false;
  try {
    for (;;) {
      const { value, done } = await readWithin(reader, opts);
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A final '\r' may be half of a '\r\n' still on its way: keep it for the next read.
      const end = !done && buf.endsWith('\r') ? buf.length - 1 : buf.length;
      let start = 0;
      for (let i = 0; i < end; i++) {
        const c = buf.charCodeAt(i);
        if (c !== 0x0a && c !== 0x0d) continue;
        const line = buf.slice(start, i);
        if (c === 0x0d && buf.charCodeAt(i + 1) === 0x0a) i++;
        start = i + 1;
        if (line === '') {
          const event = data.join('\n');
          data = [];
          if (opts.isEnd?.(event)) {
            handedOff = true;
            void drainQuietly(reader);
            return;
          }
          if (event) yield event;
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        } // comments (':…'), `event:`, `id:`, `retry:` carry nothing we use
      }
      buf = buf.slice(start);
      if (done) {
        // The last event may lack its blank line.
        if (buf.startsWith('data:')) data.push(buf.slice(buf.startsWith('data: ') ? 6 : 5));
        const event = data.join('\n');
        if (event && !opts.isEnd?.(event)) yield event;
        return;
      }
    }
  } finally {
    if (!handedOff) reader.cancel().catch(() => undefined);
  }
}

/** After the last event: read on to the response's end (so its connection is reused), or let go after a moment. */
async function drainQuietly(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const timer = setTimeout(() => void reader.cancel().catch(() => undefined), END_GRACE_MS);
  try {
    while (!(await reader.read()).done) { /* nothing after the end is used */ }
  } catch {
    // cancelled or cut: nothing more was owed
  } finally {
    clearTimeout(timer);
  }
}

/** One read, failing with the signal's reason when it is aborted or the stream stays silent. */
function readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, opts: SseReadOptions): Promise<{ done: boolean; value?: Uint8Array }> {
  const { signal } = opts;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => { clearTimeout(timer); reject(signal.reason); };
    const timer = setTimeout(() => { opts.onStall(); onAbort(); }, opts.readTimeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); };
    reader.read().then((r) => { settle(); resolve(r); }, (e) => { settle(); reject(e); });
  });
}
