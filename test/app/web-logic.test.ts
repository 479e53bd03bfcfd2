// The browser app's DOM-free pieces, run under Node: the branch tree (which messages are on
// screen, which sibling a switch lands on) and the SSE reader (records split anywhere by the network).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { childrenOf, newestLeaf, pathTo, siblingsOf } from '../../src/app/web/src/tree.js';
import { readSse } from '../../src/app/web/src/sse.js';
import type { Message } from '../../src/app/web/src/types.js';

function msg(id: string, parent: string | null, role: 'user' | 'assistant', created: number): Message {
  return {
    id, conversation_id: 'c', parent_id: parent, role, content: id, reasoning: '', status: 'done', error: null,
    model: 'm', think: 'none', attachments: [], usage: null, created_at: created, updated_at: created,
  };
}

// q1 ─ a1 ─ q2 ─ a2          (a1b regenerated; q1b an edit of q1, with its answer)
//    └ a1b                   times: q1 1, a1 2, q2 3, a2 4, a1b 5, q1b 6, a1c 7
// q1b ─ a1c
const tree = new Map([
  msg('q1', null, 'user', 1), msg('a1', 'q1', 'assistant', 2), msg('q2', 'a1', 'user', 3), msg('a2', 'q2', 'assistant', 4),
  msg('a1b', 'q1', 'assistant', 5), msg('q1b', null, 'user', 6), msg('a1c', 'q1b', 'assistant', 7),
].map((m) => [m.id, m]));

describe('the branch tree', () => {
  test('the path to a leaf runs from the root', () => {
    assert.deepEqual(pathTo(tree, 'a2').map((m) => m.id), ['q1', 'a1', 'q2', 'a2']);
    assert.deepEqual(pathTo(tree, 'a1c').map((m) => m.id), ['q1b', 'a1c']);
    assert.deepEqual(pathTo(tree, null), []);
    assert.deepEqual(pathTo(tree, 'nope'), []);
  });

  test('siblings are ordered oldest first; roots are siblings too', () => {
    assert.deepEqual(siblingsOf(tree, tree.get('a1b')!).map((m) => m.id), ['a1', 'a1b']);
    assert.deepEqual(childrenOf(tree, null).map((m) => m.id), ['q1', 'q1b']);
  });

  test('switching to a sibling lands on the newest leaf below it', () => {
    assert.equal(newestLeaf(tree, 'a1'), 'a2');
    assert.equal(newestLeaf(tree, 'q1'), 'a1b', 'a1b (5) is newer than a1 (2)');
    assert.equal(newestLeaf(tree, 'q1b'), 'a1c');
  });

  test('a cycle in bad data ends the walk instead of hanging', () => {
    const loop = new Map([msg('x', 'y', 'user', 1), msg('y', 'x', 'assistant', 2)].map((m) => [m.id, m]));
    assert.deepEqual(pathTo(loop, 'x').map((m) => m.id), ['y', 'x']);
  });
});

function streamOf(pieces: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const p of pieces) c.enqueue(enc.encode(p));
      c.close();
    },
  });
}

async function all(pieces: string[]): Promise<{ event: string; data: string }[]> {
  const out: { event: string; data: string }[] = [];
  for await (const r of readSse(streamOf(pieces))) out.push(r);
  return out;
}

describe('the SSE reader', () => {
  const text = ': keep-alive\n\nevent: content\ndata: {"text":"héllo"}\n\nevent: done\ndata: {"a":1,\ndata: "b":2}\n\n';
  const expected = [{ event: 'content', data: '{"text":"héllo"}' }, { event: 'done', data: '{"a":1,\n"b":2}' }];

  test('comments are skipped; multi-line data is joined with newlines', async () => {
    assert.deepEqual(await all([text]), expected);
  });

  test('split at every byte (a UTF-8 character across chunks included), the records are the same', async () => {
    const bytes = new TextEncoder().encode(text);
    const out: { event: string; data: string }[] = [];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    for await (const r of readSse(stream)) out.push(r);
    assert.deepEqual(out, expected);
  });

  test('CRLF line ends, a record without `event:` (a message), and a last record without its blank line', async () => {
    assert.deepEqual(await all(['data: 1\r\n\r\nevent: x\r', '\ndata: 2']), [{ event: 'message', data: '1' }, { event: 'x', data: '2' }]);
  });
});
