// The app API over a real server on loopback (stories260K, a temp SQLite file): conversations,
// replies streamed as SSE in the documented order and saved as they stream, stop keeping the
// partial reply, a reply that goes on after its client left, branches by edit and regenerate,
// attachments in the prompt, settings, errors in the documented shape, the static web app, and
// the same app against an upstream model.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { ChatStore } from '../../src/app/store.js';
import { userContent } from '../../src/app/prompt.js';
import { postJson, serve, shared, STORIES, tinyV4, type Running } from '../server/helpers.js';
import { allEvents, call, events, post, tempDir, until } from './helpers.js';

const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')).results as { prompt: string; generated_text: string }[];
const ONCE = greedy.find((c) => c.prompt === 'Once upon a time')!;

const home = tempDir('minke-app-');
const dbFile = path.join(home, 'minke.db');
const webDir = path.join(home, 'web');
fs.mkdirSync(path.join(webDir, 'assets'), { recursive: true });
fs.writeFileSync(path.join(webDir, 'index.html'), '<!doctype html><title>app</title>');
fs.writeFileSync(path.join(webDir, 'assets', 'app-1234.js'), 'console.log(1)');
fs.writeFileSync(path.join(webDir, 'style.css'), 'body{}');
fs.writeFileSync(path.join(home, 'secret.txt'), 'SECRET');

let app: Running;
let api: string;

before(async () => {
  process.env.MINKE_HOME = home;
  app = await serve({ models: [{ path: STORIES }], store: dbFile, webDir });
  api = `${app.url}/app/api`;
});
after(async () => {
  await app?.close();
});

const newConversation = async (body: unknown = {}): Promise<any> => {
  const r = await call(`${api}/conversations`, 'POST', body);
  assert.equal(r.status, 200);
  return r.json;
};
const conversation = async (id: string): Promise<{ conversation: any; messages: any[] }> => (await call(`${api}/conversations/${id}`, 'GET')).json;
const errorShape = (r: { status: number; json: any }, status: number, re: RegExp, param?: string): void => {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.match(r.json.error.message, re);
  assert.equal(r.json.error.type, status === 404 ? 'not_found_error' : 'invalid_request_error');
  if (param !== undefined) assert.equal(r.json.error.param, param);
};

describe('conversations', () => {
  test('create (the served model by default), get, rename, list newest first, search, delete', async () => {
    const c = await newConversation({ system: 'You are terse.', settings: { think: 'high' } });
    assert.equal(c.model, 'stories260K');
    assert.deepEqual(c.settings, { think: 'high', temperature: 1 });
    assert.equal(c.title, '');
    const d = await newConversation({ title: 'Second' });
    const renamed = await call(`${api}/conversations/${c.id}`, 'PATCH', { title: 'Renamed', settings: { temperature: 0.3 } });
    assert.equal(renamed.status, 200);
    assert.deepEqual([renamed.json.title, renamed.json.settings, renamed.json.system], ['Renamed', { think: 'high', temperature: 0.3 }, 'You are terse.']);
    assert.deepEqual(await conversation(c.id), { conversation: renamed.json, messages: [] });
    const listed = (await call(`${api}/conversations`, 'GET')).json as any[];
    assert.deepEqual(listed.slice(0, 2).map((x) => x.id), [c.id, d.id], 'the renamed one was updated last');
    assert.deepEqual(Object.keys(listed[0]).sort(), ['id', 'model', 'title', 'updated_at']);
    assert.deepEqual((await call(`${api}/conversations?q=renam`, 'GET')).json.map((x: any) => x.id), [c.id]);
    assert.deepEqual(await call(`${api}/conversations/${d.id}`, 'DELETE'), { status: 200, json: { deleted: true } });
    errorShape(await call(`${api}/conversations/${d.id}`, 'DELETE'), 404, /does not exist/);
    assert.equal((await call(`${api}/conversations?q=Second`, 'GET')).json.length, 0);
  });

  test('unknown ids are 404 in the documented shape', async () => {
    const id = 'no-such-id';
    errorShape(await call(`${api}/conversations/${id}`, 'GET'), 404, /conversation "no-such-id" does not exist/);
    errorShape(await call(`${api}/conversations/${id}`, 'PATCH', { title: 'x' }), 404, /does not exist/);
    errorShape(await call(`${api}/conversations/${id}/messages`, 'POST', { parent_id: null, content: 'x' }), 404, /does not exist/);
    errorShape(await call(`${api}/conversations/${id}/regenerate`, 'POST', { message_id: 'x' }), 404, /does not exist/);
    errorShape(await call(`${api}/messages/${id}/stop`, 'POST'), 404, /message "no-such-id" does not exist/);
    errorShape(await call(`${api}/nothing-here`, 'GET'), 404, /no route for GET \/app\/api\/nothing-here/);
  });

  test('malformed bodies are 400 naming the field', async () => {
    const c = await newConversation();
    errorShape(await call(`${api}/conversations`, 'POST', { model: 'gpt-9' }), 400, /Model Not Exist: "gpt-9"/, 'model');
    errorShape(await call(`${api}/conversations/${c.id}`, 'PATCH', { settings: { think: 'medium' } }), 400, /settings.think must be one of "none", "high", "max"/, 'settings.think');
    errorShape(await call(`${api}/conversations/${c.id}`, 'PATCH', { settings: { temperature: 5 } }), 400, /between 0 and 2/, 'settings.temperature');
    errorShape(await call(`${api}/conversations/${c.id}`, 'PATCH', { title: 7 }), 400, /title must be a string/, 'title');
    errorShape(await call(`${api}/conversations/${c.id}`, 'PATCH', { current_leaf_id: 'nope' }), 400, /current_leaf_id: message "nope" does not exist/);
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: null, content: 5 }), 400, /content must be a string/, 'content');
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: null, content: '  ' }), 400, /content is empty/, 'content');
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: null, content: 'x', think: 'low' }), 400, /think must be one of/, 'think');
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: null, content: 'x', attachments: [{ name: 'a' }] }), 400, /attachments\[0\].content must be a string/, 'attachments[0].content');
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: null, content: 'x', model: 'nope' }), 400, /Model Not Exist/, 'model');
    errorShape(await call(`${api}/conversations/${c.id}/messages`, 'POST', { parent_id: 'missing', content: 'x' }), 400, /parent_id: message "missing" does not exist/);
    errorShape(await call(`${api}/conversations/${c.id}/regenerate`, 'POST', { message_id: 'missing' }), 400, /not in this conversation/, 'message_id');
    errorShape(await call(`${api}/conversations/${c.id}/regenerate`, 'POST', {}), 400, /message_id must be a string/, 'message_id');
    errorShape(await call(`${api}/settings`, 'PUT', '[1]'), 400, /must be a JSON object/);
    errorShape(await call(`${api}/tokenize`, 'POST', { model: 'stories260K' }), 400, /text must be a string/, 'text');
    assert.deepEqual((await conversation(c.id)).messages, [], 'nothing refused was stored');
  });
});

describe('replies', () => {
  let conv: any;
  let first: { user: any; assistant: any };

  test('a message streams user → assistant → content… → done, the greedy text of the model, saved with its usage; the title comes from it', async () => {
    conv = await newConversation({ settings: { temperature: 0 } });
    const res = await post(`${api}/conversations/${conv.id}/messages`, { parent_id: null, content: ONCE.prompt, max_tokens: 48 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const evs = await allEvents(res);
    const names = evs.map((e) => e.event);
    assert.equal(names[0], 'user');
    assert.equal(names[1], 'assistant');
    assert.equal(names.at(-1), 'done');
    assert.ok(names.slice(2, -1).every((n) => n === 'content') && names.length > 3, names.join(' '));
    const user = evs[0].data.message;
    const streaming = evs[1].data.message;
    const done = evs.at(-1)!.data.message;
    assert.deepEqual([user.role, user.parent_id, user.content, user.status], ['user', null, ONCE.prompt, 'done']);
    assert.deepEqual([streaming.role, streaming.parent_id, streaming.status, streaming.content], ['assistant', user.id, 'streaming', '']);
    const text = evs.slice(2, -1).map((e) => e.data.text).join('');
    assert.ok(text.length > 20 && ONCE.generated_text.startsWith(text), `greedy reference text, got ${JSON.stringify(text)}`);
    assert.deepEqual([done.id, done.status, done.content, done.error], [streaming.id, 'done', text, null]);
    assert.equal(done.usage.completion_tokens, 48);
    assert.ok(done.usage.prompt_tokens > 0 && done.usage.seconds > 0 && done.usage.tokens_per_second > 0 && done.usage.reasoning_seconds === 0, JSON.stringify(done.usage));
    const saved = await conversation(conv.id);
    assert.deepEqual(saved.messages, [user, done]);
    assert.equal(saved.conversation.current_leaf_id, done.id);
    assert.equal(saved.conversation.title, ONCE.prompt);
    first = { user, assistant: done };
  });

  test('regenerate adds a sibling answer to the same question', async () => {
    const evs = await allEvents(await post(`${api}/conversations/${conv.id}/regenerate`, { message_id: first.assistant.id, temperature: 1, max_tokens: 16 }));
    assert.deepEqual([evs[0].event, evs.at(-1)!.event], ['assistant', 'done']);
    const again = evs.at(-1)!.data.message;
    assert.equal(again.parent_id, first.user.id);
    assert.notEqual(again.id, first.assistant.id);
    assert.equal(again.usage.completion_tokens, 16);
    const saved = await conversation(conv.id);
    assert.deepEqual(saved.messages.map((m: any) => m.id), [first.user.id, first.assistant.id, again.id]);
    assert.equal(saved.conversation.current_leaf_id, again.id);
    assert.equal(saved.conversation.settings.temperature, 1, 'the choice made with the request stays with the conversation');
  });

  test('edit: a new first message is a sibling branch; switching back with current_leaf_id; a follow-up continues a branch', async () => {
    const evs = await allEvents(await post(`${api}/conversations/${conv.id}/messages`, { parent_id: null, content: 'Lily and the dog', max_tokens: 8 }));
    const edited = evs[0].data.message;
    assert.equal(edited.parent_id, null);
    const back = await call(`${api}/conversations/${conv.id}`, 'PATCH', { current_leaf_id: first.assistant.id });
    assert.equal(back.json.current_leaf_id, first.assistant.id);
    const follow = await allEvents(await post(`${api}/conversations/${conv.id}/messages`, { parent_id: first.assistant.id, content: 'And then?', max_tokens: 8 }));
    assert.equal(follow[0].data.message.parent_id, first.assistant.id);
    const { conversation: c, messages } = await conversation(conv.id);
    const byId = new Map(messages.map((m: any) => [m.id, m]));
    const pathTo = (id: string | null): string[] => { const out: string[] = []; for (let m: any = byId.get(id); m; m = byId.get(m.parent_id)) out.unshift(m.content); return out; };
    assert.deepEqual(pathTo(c.current_leaf_id), [ONCE.prompt, first.assistant.content, 'And then?', follow.at(-1)!.data.message.content]);
    assert.equal(messages.filter((m: any) => m.parent_id === null).length, 2, 'both first messages are kept');
    assert.equal(c.title, ONCE.prompt, 'the title stays');
    const refused = await call(`${api}/conversations/${conv.id}/messages`, 'POST', { parent_id: edited.id, content: 'two user turns' });
    errorShape(refused, 400, /user message must start the conversation .* or follow an assistant message/);
  });

  test('a new conversation is named from the first ~40 characters of its first message', async () => {
    const c = await newConversation();
    await allEvents(await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Tell me a long story about a small brave mouse who lived in a big old house', max_tokens: 2 }));
    assert.equal((await conversation(c.id)).conversation.title, 'Tell me a long story about a small brave…');
  });

  test('attached files go into the prompt before the text, in the documented format; their token count is kept', async () => {
    const c = await newConversation({ settings: { temperature: 0 } });
    const file = { name: 'pets.txt', content: 'Lily had a cat named Tom.' };
    const evs = await allEvents(await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Who is Tom?', attachments: [file], max_tokens: 4 }));
    const user = evs[0].data.message;
    assert.equal(user.content, 'Who is Tom?');
    const tokens = (await call(`${api}/tokenize`, 'POST', { model: 'stories260K', text: file.content })).json.tokens;
    assert.deepEqual(user.attachments, [{ name: 'pets.txt', size: Buffer.byteLength(file.content), tokens, content: file.content }]);
    // The same prompt through the chat completions API, written out by hand.
    const rendered = '[file pets.txt]\n```\nLily had a cat named Tom.\n```\n\nWho is Tom?';
    const direct = await postJson(`${app.url}/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: rendered }], max_tokens: 4, temperature: 0 });
    assert.equal(evs.at(-1)!.data.message.usage.prompt_tokens, direct.json.usage.prompt_tokens);
    assert.equal(evs.at(-1)!.data.message.content, direct.json.choices[0].message.content);
  });

  test('userContent fences each file, longer than any backtick run inside it', () => {
    assert.equal(userContent('Q', [{ name: 'a.md', content: 'x\n```js\ny\n```\n' }, { name: 'b', content: '' }]),
      '[file a.md]\n````\nx\n```js\ny\n```\n````\n\n[file b]\n```\n\n```\n\nQ');
    assert.equal(userContent('only text'), 'only text');
  });

  test('a system prompt is part of the prompt', async () => {
    const c = await newConversation({ system: 'Once there was a cat.', settings: { temperature: 0 } });
    const evs = await allEvents(await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Hi', max_tokens: 4 }));
    const direct = await postJson(`${app.url}/chat/completions`, { model: 'stories260K', messages: [{ role: 'system', content: 'Once there was a cat.' }, { role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0 });
    assert.equal(evs.at(-1)!.data.message.usage.prompt_tokens, direct.json.usage.prompt_tokens);
    assert.equal(evs.at(-1)!.data.message.content, direct.json.choices[0].message.content);
  });

  test('stop ends the reply, keeping exactly the text sent so far, status stopped', async () => {
    const c = await newConversation();
    const res = await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Once', max_tokens: 480 });
    let received = '', assistantId = '', stopped: any, final: any;
    for await (const e of events(res)) {
      if (e.event === 'assistant') assistantId = e.data.message.id;
      if (e.event === 'content') {
        received += e.data.text;
        stopped ??= call(`${api}/messages/${assistantId}/stop`, 'POST');
      }
      if (e.event === 'done' || e.event === 'error') final = e;
    }
    assert.deepEqual(await stopped, { status: 200, json: { stopped: true } });
    assert.equal(final.event, 'done');
    assert.equal(final.data.message.status, 'stopped');
    assert.equal(final.data.message.content, received);
    assert.ok(final.data.message.usage.completion_tokens < 480, 'stopped early');
    const saved = (await conversation(c.id)).messages[1];
    assert.deepEqual([saved.status, saved.content], ['stopped', received]);
    assert.deepEqual(await call(`${api}/messages/${assistantId}/stop`, 'POST'), { status: 200, json: { stopped: false } }, 'a finished reply has nothing to stop');
  });

  test('a client that goes away does not stop the reply: it is generated to the end and saved', async () => {
    const c = await newConversation();
    const ctrl = new AbortController();
    const res = await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Once', max_tokens: 300 }, { signal: ctrl.signal });
    let received = '', id = '';
    try {
      for await (const e of events(res)) {
        if (e.event === 'assistant') id = e.data.message.id;
        if (e.event === 'content') { received += e.data.text; ctrl.abort(); }
      }
    } catch (err) {
      assert.equal((err as Error).name, 'AbortError');
    }
    assert.ok(received.length > 0);
    const done = await until(async () => {
      const m = (await conversation(c.id)).messages.find((x: any) => x.id === id);
      return m.status !== 'streaming' && m;
    });
    assert.equal(done.status, 'done');
    assert.equal(done.usage.completion_tokens, 300);
    assert.ok(done.content.startsWith(received) && done.content.length > received.length);
  });

  test('deleting a conversation stops its running reply first', async () => {
    const c = await newConversation();
    const res = await post(`${api}/conversations/${c.id}/messages`, { parent_id: null, content: 'Once', max_tokens: 480 });
    let deleted: Promise<unknown> | undefined, last: any;
    for await (const e of events(res)) {
      if (e.event === 'content') deleted ??= call(`${api}/conversations/${c.id}`, 'DELETE');
      last = e;
    }
    assert.deepEqual(await deleted, { status: 200, json: { deleted: true } });
    assert.deepEqual([last.event, last.data.message.status], ['done', 'stopped']);
    assert.equal((await call(`${api}/conversations/${c.id}`, 'GET')).status, 404);
  });
});

describe('DeepThink (a DeepSeek-V4 checkpoint of the tiny fixture\'s shape, random weights)', () => {
  let v4: Running;
  before(async () => { v4 = await serve({ models: [{ name: 'v4', path: tinyV4() }], store: path.join(home, 'v4.db') }); });
  after(async () => { await v4?.close(); });

  test('think high streams reasoning events, saved as the reasoning with its duration and token count', async () => {
    const c = (await call(`${v4.url}/app/api/conversations`, 'POST', { settings: { think: 'high' } })).json;
    const evs = await allEvents(await post(`${v4.url}/app/api/conversations/${c.id}/messages`, { content: 'Hi', max_tokens: 2 }));
    assert.deepEqual([evs[0].event, evs[1].event, evs.at(-1)!.event], ['user', 'assistant', 'done']);
    const middle = evs.slice(2, -1);
    assert.ok(middle.length > 0 && middle.every((e) => e.event === 'reasoning'), middle.map((e) => e.event).join(' '));
    const done = evs.at(-1)!.data.message;
    assert.equal(done.think, 'high');
    assert.equal(done.reasoning, middle.map((e) => e.data.text).join(''));
    assert.equal(done.content, '', 'no </think> within 2 tokens of random weights');
    assert.equal(done.usage.reasoning_tokens, 2);
    assert.ok(done.usage.reasoning_seconds > 0 && done.usage.reasoning_seconds <= done.usage.seconds, JSON.stringify(done.usage));
  });

  test('think none answers directly: content events only, no reasoning', async () => {
    const c = (await call(`${v4.url}/app/api/conversations`, 'POST', {})).json;
    const evs = await allEvents(await post(`${v4.url}/app/api/conversations/${c.id}/messages`, { content: 'Hi', think: 'none', max_tokens: 2 }));
    const middle = evs.slice(2, -1);
    assert.ok(middle.length > 0 && middle.every((e) => e.event === 'content'), middle.map((e) => e.event).join(' '));
    const done = evs.at(-1)!.data.message;
    assert.deepEqual([done.think, done.reasoning, done.usage.reasoning_tokens, done.usage.reasoning_seconds], ['none', '', 0, 0]);
    assert.equal(done.content, middle.map((e) => e.data.text).join(''));
  });
});

describe('settings and tokenize', () => {
  test('settings are key → JSON value; null removes a key', async () => {
    assert.deepEqual(await call(`${api}/settings`, 'GET'), { status: 200, json: {} });
    assert.deepEqual((await call(`${api}/settings`, 'PUT', { default_model: 'stories260K', theme: 'dark' })).json, { default_model: 'stories260K', theme: 'dark' });
    assert.deepEqual((await call(`${api}/settings`, 'PUT', { theme: null })).json, { default_model: 'stories260K' });
    assert.deepEqual((await call(`${api}/settings`, 'GET')).json, { default_model: 'stories260K' });
  });

  test('tokenize counts with the model\'s tokenizer (the raw prompt of /completions less its BOS)', async () => {
    const text = 'Once upon a time there was a cat';
    const n = (await call(`${api}/tokenize`, 'POST', { model: 'stories260K', text })).json.tokens;
    const raw = await postJson(`${app.url}/completions`, { model: 'stories260K', prompt: text, max_tokens: 1 });
    assert.equal(n, raw.json.usage.prompt_tokens - 1);
    assert.deepEqual((await call(`${api}/tokenize`, 'POST', { model: 'stories260K', text: '' })).json, { tokens: 0 });
  });
});

describe('the web app', () => {
  const raw = (p: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> => new Promise((resolve, reject) => {
    const u = new URL(app.url);
    http.get({ host: u.hostname, port: u.port, path: p, headers }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });

  test('/ is index.html; files have their content types; a browser\'s app page gets index.html', async () => {
    assert.deepEqual(await raw('/'), { status: 200, type: 'text/html; charset=utf-8', body: '<!doctype html><title>app</title>' });
    assert.deepEqual(await raw('/assets/app-1234.js'), { status: 200, type: 'text/javascript; charset=utf-8', body: 'console.log(1)' });
    assert.equal((await raw('/style.css')).type, 'text/css; charset=utf-8');
    assert.equal((await raw('/c/some-conversation', { accept: 'text/html,*/*' })).body, '<!doctype html><title>app</title>');
    const missing = await raw('/missing.js');
    assert.equal(missing.status, 404);
    assert.match(JSON.parse(missing.body).error.message, /no route for GET \/missing.js/);
    assert.equal((await raw('/v1/nothing')).status, 404, 'an API client gets a 404, not the page');
  });

  test('nothing outside the folder can be reached', async () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/assets/%2e%2e%2f%2e%2e%2fsecret.txt', '/..%5csecret.txt', `/${encodeURIComponent(path.join(home, 'secret.txt'))}`]) {
      const r = await raw(p);
      assert.ok(!r.body.includes('SECRET'), `${p} → ${r.status}`);
    }
  });

  test('without a build, / says so; with API keys the page needs none but /app/api does', async () => {
    const keyed = await serve({ models: [{ path: STORIES }], store: path.join(home, 'keyed.db'), webDir: path.join(home, 'not-built'), apiKeys: ['k1'] });
    try {
      const page = await fetch(`${keyed.url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /The web app is not built: run <code>npm run build<\/code>/);
      const r = await call(`${keyed.url}/app/api/conversations`, 'GET');
      assert.equal(r.status, 401);
      assert.equal(r.json.error.type, 'authentication_error');
      assert.equal((await call(`${keyed.url}/app/api/conversations`, 'GET', undefined, { authorization: 'Bearer k1' })).status, 200);
    } finally {
      await keyed.close();
    }
  });

  test('store: false serves no app', async () => {
    const bare = await serve({ models: [{ path: STORIES }], store: false });
    try {
      assert.equal((await fetch(`${bare.url}/`)).status, 404);
      assert.equal((await call(`${bare.url}/app/api/conversations`, 'GET')).status, 404);
    } finally {
      await bare.close();
    }
  });
});

describe('shutdown and upstream models', () => {
  test('a server closed mid-reply leaves it interrupted with its text', async () => {
    const file = path.join(home, 'shutdown.db');
    const s = await serve({ models: [{ path: STORIES }], store: file });
    const c = (await call(`${s.url}/app/api/conversations`, 'POST', {})).json;
    const res = await post(`${s.url}/app/api/conversations/${c.id}/messages`, { parent_id: null, content: 'Once', max_tokens: 480 });
    let received = '', closing: Promise<void> | undefined;
    for await (const e of events(res)) {
      if (e.event === 'content') { received += e.data.text; closing ??= s.close(); }
    }
    await closing;
    const store = ChatStore.open(file);
    const reply = store.messages(c.id)[1];
    assert.equal(reply.status, 'interrupted');
    assert.ok(reply.content.startsWith(received) && received.length > 0);
    store.close();
  });

  test('the app works against an upstream model: the same greedy text, and stop', async () => {
    const front = await serve({ models: [{ name: 'remote', upstream: app.url, model: 'stories260K' }], store: path.join(home, 'front.db') });
    try {
      const fapi = `${front.url}/app/api`;
      const c = (await call(`${fapi}/conversations`, 'POST', { settings: { temperature: 0 } })).json;
      assert.equal(c.model, 'remote');
      const evs = await allEvents(await post(`${fapi}/conversations/${c.id}/messages`, { parent_id: null, content: ONCE.prompt, max_tokens: 48 }));
      const done = evs.at(-1)!;
      assert.equal(done.event, 'done', JSON.stringify(done.data));
      const local = await postJson(`${app.url}/chat/completions`, { model: 'stories260K', messages: [{ role: 'user', content: ONCE.prompt }], max_tokens: 48, temperature: 0 });
      assert.equal(done.data.message.content, local.json.choices[0].message.content);
      assert.equal(done.data.message.usage.completion_tokens, 48);
      assert.ok((await call(`${fapi}/tokenize`, 'POST', { text: 'Hello world' })).json.tokens > 0, 'counted with the DeepSeek tokenizer');

      const res = await post(`${fapi}/conversations/${c.id}/messages`, { parent_id: done.data.message.id, content: 'More', max_tokens: 400 });
      let received = '', id = '', stopped: Promise<unknown> | undefined, last: any;
      for await (const e of events(res)) {
        if (e.event === 'assistant') id = e.data.message.id;
        if (e.event === 'content') { received += e.data.text; stopped ??= call(`${fapi}/messages/${id}/stop`, 'POST'); }
        last = e;
      }
      assert.deepEqual(await stopped, { status: 200, json: { stopped: true } });
      assert.deepEqual([last.event, last.data.message.status, last.data.message.content], ['done', 'stopped', received]);
    } finally {
      await front.close();
    }
  });
});
