// The durability acceptance: the real CLI (`node bin/minke.js serve`) with MINKE_HOME in a temp
// folder, a long reply started through the app API, the server killed with SIGKILL as soon as the
// client has some of the reply, then started again: the conversation, the question and the partial
// answer (status 'interrupted', at least the text the client had) are there, and the SQLite file
// passes PRAGMA integrity_check.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { STORIES } from '../server/helpers.js';
import { call, events, post, tempDir } from './helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const home = tempDir('minke-durable-');
const children = new Set<ChildProcess>();
after(() => { for (const c of children) c.kill('SIGKILL'); });

/** Starts `minke serve` and resolves to its URL once it listens. */
function startServe(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(repo, 'bin/minke.js'), 'serve', STORIES, '--port', '0', '--threads', '1', '--no-cache'], {
    cwd: repo, env: { ...process.env, MINKE_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`minke serve exited (${code}) before listening: ${err}`)));
  });
}

test('kill -9 mid-stream: after a restart the conversation and the partial answer are there, and the database is intact', async () => {
  const first = await startServe();
  const api = `${first.url}/app/api`;
  const conv = (await call(`${api}/conversations`, 'POST', {})).json;
  const res = await post(`${api}/conversations/${conv.id}/messages`, { parent_id: null, content: 'Once upon a time', max_tokens: 500 });
  let received = '', user: any, assistant: any;
  const exited = new Promise((r) => first.child.once('exit', r));
  try {
    for await (const e of events(res)) {
      if (e.event === 'user') user = e.data.message;
      if (e.event === 'assistant') assistant = e.data.message;
      if (e.event === 'done' || e.event === 'error') assert.fail(`the reply ended (${e.event}) before the kill; it must still be streaming`);
      if (e.event === 'content') {
        received += e.data.text;
        first.child.kill('SIGKILL');
        break;
      }
    }
  } catch (err) {
    if ((err as Error).name === 'AssertionError') throw err; // else: the connection died with the server
  }
  await exited;
  assert.ok(received.length > 0 && user && assistant);

  const second = await startServe();
  try {
    const { conversation, messages } = (await call(`${second.url}/app/api/conversations/${conv.id}`, 'GET')).json;
    assert.equal(conversation.title, 'Once upon a time');
    assert.equal(conversation.current_leaf_id, assistant.id);
    assert.equal(messages.length, 2);
    assert.deepEqual(messages[0], user);
    const partial = messages[1];
    assert.equal(partial.id, assistant.id);
    assert.equal(partial.status, 'interrupted');
    assert.ok(partial.content.startsWith(received), `the saved text ${JSON.stringify(partial.content)} holds what the client had: ${JSON.stringify(received)}`);
    const list = (await call(`${second.url}/app/api/conversations`, 'GET')).json;
    assert.deepEqual(list.map((c: any) => c.id), [conv.id]);
    const db = new Database(path.join(home, 'minke.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
  } finally {
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  }
});
