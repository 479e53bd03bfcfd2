// sseData against the SSE format (WHATWG HTML "server-sent events": lines end in CRLF, LF or CR;
// a blank line ends an event; `data:` lines join with LF; `:` lines are comments; one space after
// the colon is dropped) and against streams that stall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sseData, type SseReadOptions } from '../../src/server/sse-reader.js';

/** A byte stream of `pieces`, one read each. */
function stream(pieces: readonly string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < pieces.length) c.enqueue(enc.encode(pieces[i++]));
      else c.close();
    },
  });
}

const opts = (over: Partial<SseReadOptions> = {}): SseReadOptions => ({ readTimeoutMs: 1000, signal: new AbortController().signal, onStall: () => undefined, ...over });

async function all(s: ReadableStream<Uint8Array>, o = opts()): Promise<string[]> {
  const out: string[] = [];
  for await (const d of sseData(s, o)) out.push(d);
  return out;
}

test('events by blank lines, under every line ending, wherever the reads split', async () => {
  const text = ': keep-alive\r\n\r\ndata: one\r\n\r\nevent: x\nid: 7\ndata:two\n\ndata: a\rdata: b\r\r\n\ndata: last';
  const expected = ['one', 'two', 'a\nb', 'last'];
  assert.deepEqual(await all(stream([text])), expected);
  for (const size of [1, 2, 3, 5]) {
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
    assert.deepEqual(await all(stream(pieces)), expected, `in pieces of ${size}`);
  }
});

test('the end marker is not an event, with or without its blank line', async () => {
  const isEnd = (d: string) => d === '[DONE]';
  assert.deepEqual(await all(stream(['data: 1\n\ndata: [DONE]\n\n']), opts({ isEnd })), ['1']);
  assert.deepEqual(await all(stream(['data: 1\n\ndata: [DONE]']), opts({ isEnd })), ['1']);
  assert.deepEqual(await all(stream(['data: 1\n\ndata: [DONE]\n\ndata: 2\n\n']), opts({ isEnd })), ['1'], 'nothing after the end');
});

test('a silent stream calls onStall and fails with the signal\'s reason', async () => {
  const ctrl = new AbortController();
  const silent = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
  const reason = new Error('stalled');
  let stalls = 0;
  const t0 = performance.now();
  await assert.rejects(all(silent, opts({ readTimeoutMs: 100, signal: ctrl.signal, onStall: () => { stalls++; ctrl.abort(reason); } })), (e) => e === reason);
  assert.equal(stalls, 1);
  assert.ok(performance.now() - t0 < 1000);
});

test('an abort ends a pending read at once', async () => {
  const ctrl = new AbortController();
  const silent = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
  const reason = new Error('gone');
  setTimeout(() => ctrl.abort(reason), 20);
  await assert.rejects(all(silent, opts({ readTimeoutMs: 60_000, signal: ctrl.signal })), (e) => e === reason);
});
