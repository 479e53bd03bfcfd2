// The chat store on real SQLite files: migrations from nothing and reopening, branches (an edit is
// a sibling user message, a regenerated answer a sibling assistant message), search, settings,
// refusals of bad input, and recovery of a reply whose process was killed mid-stream.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { ChatStore, StoreError, type Usage } from '../../src/app/store.js';
import { MIGRATIONS } from '../../src/app/schema.js';
import { tempDir } from './helpers.js';

const home = tempDir('minke-store-');
let n = 0;
const fresh = (): string => path.join(home, `db${n++}`, 'nested', 'minke.db');

describe('opening and migrating', () => {
  test('a missing file (and its folders) is created at the latest schema, in WAL mode with foreign keys', () => {
    const file = fresh();
    const s = ChatStore.open(file);
    s.close();
    const db = new Database(file);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, ['conversations', 'messages', 'settings']);
    db.close();
  });

  test('an empty (0-byte) file is migrated too', () => {
    const file = fresh();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
    const s = ChatStore.open(file);
    assert.equal(s.integrityCheck(), 'ok');
    assert.deepEqual(s.listConversations(), []);
    s.close();
  });

  test('reopening keeps everything and runs no migration twice', () => {
    const file = fresh();
    const a = ChatStore.open(file);
    const c = a.createConversation({ title: 'kept', system: 'be brief', settings: { think: 'max', temperature: 0.5 } });
    const u = a.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'hi' });
    a.putSettings({ theme: 'dark' });
    a.close();
    const b = ChatStore.open(file);
    assert.deepEqual(b.getConversation(c.id), { ...c, current_leaf_id: u.id, updated_at: b.getConversation(c.id)!.updated_at });
    assert.deepEqual(b.messages(c.id), [u]);
    assert.deepEqual(b.getSettings(), { theme: 'dark' });
    b.close();
    const db = new Database(file);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    db.close();
  });

  test('a file from a newer minke is refused by name, and so is a file that is not a database', () => {
    const newer = fresh();
    ChatStore.open(newer).close();
    const db = new Database(newer);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    assert.throws(() => ChatStore.open(newer), /schema version 2, newer than this minke knows \(1\)/);
    const junk = fresh();
    fs.mkdirSync(path.dirname(junk), { recursive: true });
    fs.writeFileSync(junk, 'this is not sqlite, just some text that is long enough to have a header'.repeat(20));
    assert.throws(() => ChatStore.open(junk), /is not a minke chat database/);
  });

  test('defaultPath is MINKE_HOME/minke.db', () => {
    const saved = process.env.MINKE_HOME;
    process.env.MINKE_HOME = '/somewhere/else';
    try {
      assert.equal(ChatStore.defaultPath(), '/somewhere/else/minke.db');
    } finally {
      if (saved === undefined) delete process.env.MINKE_HOME; else process.env.MINKE_HOME = saved;
    }
  });
});

describe('conversations', () => {
  test('created with defaults, updated field by field (settings merged), deleted with their messages', () => {
    const s = ChatStore.open(fresh());
    const c = s.createConversation();
    assert.equal(typeof c.id, 'string');
    assert.deepEqual({ ...c, id: '', created_at: 0, updated_at: 0 }, {
      id: '', title: '', model: '', system: '', settings: { think: 'none', temperature: 1 }, current_leaf_id: null, created_at: 0, updated_at: 0,
    });
    const u = s.updateConversation(c.id, { title: 'T', settings: { think: 'high' } });
    assert.equal(u.title, 'T');
    assert.deepEqual(u.settings, { think: 'high', temperature: 1 });
    assert.deepEqual(s.getConversation(c.id), u);
    const m = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'x' });
    assert.equal(s.deleteConversation(c.id), true);
    assert.equal(s.deleteConversation(c.id), false);
    assert.equal(s.getConversation(c.id), undefined);
    assert.equal(s.getMessage(m.id), undefined, 'the messages went with it');
    assert.equal(s.integrityCheck(), 'ok');
    s.close();
  });

  test('listed newest first; search finds titles and message text, case-insensitively, with % and _ literal', async () => {
    const s = ChatStore.open(fresh());
    const a = s.createConversation({ title: 'Cooking pasta' });
    await new Promise((r) => setTimeout(r, 5));
    const b = s.createConversation({ title: 'Physics' });
    s.addMessage({ conversation_id: b.id, parent_id: null, role: 'user', content: 'What is 100% of the Speed of light?' });
    await new Promise((r) => setTimeout(r, 5));
    const c = s.createConversation({ title: 'snake_case names' });
    assert.deepEqual(s.listConversations().map((x) => x.id), [c.id, b.id, a.id]);
    assert.deepEqual(s.listConversations('PASTA').map((x) => x.id), [a.id]);
    assert.deepEqual(s.listConversations('speed OF').map((x) => x.id), [b.id]);
    assert.deepEqual(s.listConversations('100%').map((x) => x.id), [b.id]);
    assert.deepEqual(s.listConversations('%').map((x) => x.id), [b.id], '% is a character, not a wildcard');
    assert.deepEqual(s.listConversations('e_c').map((x) => x.id), [c.id], '_ is a character, not a wildcard');
    assert.deepEqual(s.listConversations('nothing like this'), []);
    assert.deepEqual(Object.keys(s.listConversations()[0]).sort(), ['id', 'model', 'title', 'updated_at']);
    s.close();
  });
});

describe('messages and branches', () => {
  test('a conversation with an edited question and a regenerated answer keeps every branch', () => {
    const s = ChatStore.open(fresh());
    const c = s.createConversation({ model: 'm1' });
    const q1 = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'question', attachments: [{ name: 'f.txt', size: 3, tokens: 1, content: 'abc' }] });
    assert.equal(s.getConversation(c.id)!.current_leaf_id, q1.id);
    assert.equal(q1.model, 'm1', 'the conversation model by default');
    const a1 = s.addMessage({ conversation_id: c.id, parent_id: q1.id, role: 'assistant', content: 'answer 1', reasoning: 'hmm', think: 'high' });
    const a2 = s.addMessage({ conversation_id: c.id, parent_id: q1.id, role: 'assistant', content: 'answer 2' }); // regenerate
    const q2 = s.addMessage({ conversation_id: c.id, parent_id: a2.id, role: 'user', content: 'follow-up' });
    const q1b = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'question, edited' }); // edit
    const a3 = s.addMessage({ conversation_id: c.id, parent_id: q1b.id, role: 'assistant', content: 'answer 3' });

    assert.deepEqual(s.messages(c.id).map((m) => m.id), [q1.id, a1.id, a2.id, q2.id, q1b.id, a3.id], 'every branch, oldest first');
    assert.equal(s.getConversation(c.id)!.current_leaf_id, a3.id, 'the newest message is on screen');
    assert.deepEqual(s.path(c.id).map((m) => m.content), ['question, edited', 'answer 3']);
    assert.deepEqual(s.path(c.id, q2.id).map((m) => m.content), ['question', 'answer 2', 'follow-up']);
    assert.deepEqual(s.path(c.id, a1.id).map((m) => m.id), [q1.id, a1.id]);
    assert.deepEqual(s.path(c.id, null), []);
    s.updateConversation(c.id, { current_leaf_id: q2.id }); // switch branch
    assert.deepEqual(s.path(c.id).map((m) => m.id), [q1.id, a2.id, q2.id]);
    const stored = s.getMessage(a1.id)!;
    assert.equal(stored.reasoning, 'hmm');
    assert.equal(stored.think, 'high');
    assert.deepEqual(s.getMessage(q1.id)!.attachments, [{ name: 'f.txt', size: 3, tokens: 1, content: 'abc' }]);
    s.close();
  });

  test('a streaming reply is updated as it grows and finished with its usage', () => {
    const s = ChatStore.open(fresh());
    const c = s.createConversation();
    const q = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'q' });
    const a = s.addMessage({ conversation_id: c.id, parent_id: q.id, role: 'assistant', content: '', status: 'streaming' });
    s.updateMessage(a.id, { content: 'par' });
    assert.deepEqual([s.getMessage(a.id)!.content, s.getMessage(a.id)!.status], ['par', 'streaming']);
    const usage: Usage = { prompt_tokens: 5, completion_tokens: 7, cached_tokens: 2, reasoning_tokens: 0, reasoning_seconds: 0, seconds: 1.5, tokens_per_second: 4.5 };
    const done = s.updateMessage(a.id, { content: 'partial', status: 'done', usage });
    assert.deepEqual(s.getMessage(a.id), done);
    assert.deepEqual(done.usage, usage);
    const failed = s.updateMessage(a.id, { status: 'error', error: 'boom' });
    assert.deepEqual([failed.status, failed.error, failed.content], ['error', 'boom', 'partial']);
    s.close();
  });

  test('bad input is refused with a clear error', () => {
    const s = ChatStore.open(fresh());
    const c = s.createConversation();
    const other = s.createConversation();
    const q = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'q' });
    const a = s.addMessage({ conversation_id: c.id, parent_id: q.id, role: 'assistant', content: 'a' });
    const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof StoreError && re.test(e.message));
    refused(() => s.addMessage({ conversation_id: 'nope', parent_id: null, role: 'user', content: 'x' }), /conversation "nope" does not exist/);
    refused(() => s.addMessage({ conversation_id: other.id, parent_id: a.id, role: 'user', content: 'x' }), /belongs to another conversation/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: 'missing', role: 'user', content: 'x' }), /parent_id: message "missing" does not exist/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: null, role: 'assistant', content: 'x' }), /assistant message must answer a user message/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: a.id, role: 'assistant', content: 'x' }), /assistant message must answer a user message/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: q.id, role: 'user', content: 'x' }), /user message must start the conversation/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: null, role: 'system' as 'user', content: 'x' }), /role must be "user" or "assistant"/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'x', status: 'weird' as 'done' }), /status must be one of/);
    refused(() => s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'x', attachments: [{ name: 'a' } as never] }), /attachments\[0\]\.size/);
    refused(() => s.updateMessage('missing', { content: 'x' }), /message "missing" does not exist/);
    refused(() => s.updateConversation('missing', { title: 'x' }), /conversation "missing" does not exist/);
    refused(() => s.updateConversation(other.id, { current_leaf_id: a.id }), /current_leaf_id: .*belongs to another conversation/);
    refused(() => s.updateConversation(c.id, { settings: { temperature: 3 } }), /settings.temperature must be between 0 and 2/);
    refused(() => s.updateConversation(c.id, { settings: { think: 'low' as 'high' } }), /settings.think must be one of/);
    refused(() => s.path(other.id, a.id), /belongs to another conversation/);
    refused(() => s.messages('missing'), /does not exist/);
    assert.equal(s.messages(c.id).length, 2, 'nothing refused was written');
    s.close();
  });
});

describe('settings', () => {
  test('keys hold JSON values; null removes a key', () => {
    const s = ChatStore.open(fresh());
    assert.deepEqual(s.getSettings(), {});
    assert.deepEqual(s.putSettings({ default_model: 'm', theme: 'dark', sizes: [1, 2], nested: { a: true } }), { default_model: 'm', theme: 'dark', sizes: [1, 2], nested: { a: true } });
    assert.deepEqual(s.putSettings({ theme: null, default_model: 'n' }), { default_model: 'n', sizes: [1, 2], nested: { a: true } });
    assert.throws(() => s.putSettings([] as never), /settings must be an object/);
    s.close();
  });
});

describe('crash recovery', () => {
  test('a reply left streaming by a killed process is interrupted on the next open, its text kept; a live one is not touched', () => {
    const file = fresh();
    const s = ChatStore.open(file);
    const c = s.createConversation();
    const q = s.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'q' });
    const live = s.addMessage({ conversation_id: c.id, parent_id: q.id, role: 'assistant', content: '', status: 'streaming' });
    s.updateMessage(live.id, { content: 'still going' });
    // Another process adds a streaming reply, writes part of it, and is killed.
    const storeUrl = new URL('../../src/app/store.js', import.meta.url).href;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { ChatStore } from ${JSON.stringify(storeUrl)};
      const s = ChatStore.open(${JSON.stringify(file)});
      const m = s.addMessage({ conversation_id: ${JSON.stringify(c.id)}, parent_id: ${JSON.stringify(q.id)}, role: 'assistant', content: '', status: 'streaming' });
      s.updateMessage(m.id, { content: 'half an ans' });
      process.stdout.write(m.id);
      process.kill(process.pid, 'SIGKILL');
    `], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const killedId = child.stdout;
    const again = ChatStore.open(file);
    assert.deepEqual([again.getMessage(killedId)!.status, again.getMessage(killedId)!.content], ['interrupted', 'half an ans']);
    assert.deepEqual([again.getMessage(live.id)!.status, again.getMessage(live.id)!.content], ['streaming', 'still going'], 'this process is alive: its reply goes on');
    assert.equal(again.integrityCheck(), 'ok');
    again.close();
    s.close();
  });
});
