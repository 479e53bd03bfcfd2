// The chat's history in the app database: an answer is saved while it streams, Ctrl-C keeps it as
// `stopped`, a failed answer as `error`; /load finds conversations by id or title and continues the
// branch after its last answer. The chat loop runs over piped streams with the stories260K model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ChatStore, type StoredMessage } from '../../src/app/store.js';
import { chatLoop } from '../../src/cli/chat.js';
import { ChatHistory, formatTranscript, toChatMessages } from '../../src/cli/chat-history.js';
import { ChatSession, defaultSettings } from '../../src/cli/chat-session.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));

let dir: string;
let model: LanguageModel;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-chat-history-'));
  model = await loadModel(shared('models/stories260K/stories260K.gguf'), { threads: 1 });
});

after(async () => {
  await model?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

class Capture extends Writable {
  text = '';
  constructor(private readonly onText?: (all: string) => void) { super(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    this.onText?.(this.text);
    done();
  }
}

async function chat(store: ChatStore, lines: string[], opts: { contextLength?: number; onText?: (all: string, signals: EventEmitter, history: ChatHistory) => void } = {}) {
  const signals = new EventEmitter();
  const warnings: string[] = [];
  const history = new ChatHistory(store, 'stories260K', (w) => warnings.push(w));
  const out = new Capture(opts.onText && ((t) => opts.onText!(t, signals, history)));
  const session = new ChatSession(model, { raw: false, settings: { ...defaultSettings(), temperature: 0, maxTokens: 64 }, stop: [], contextLength: opts.contextLength });
  const input = new PassThrough();
  input.end(lines.map((l) => l + '\n').join(''));
  try {
    await chatLoop(session, { input, output: out as unknown as NodeJS.WritableStream & { isTTY?: boolean }, err: new Capture(), signals }, history);
  } finally {
    session.close();
  }
  return { out: out.text, history, warnings };
}

test('the answer is saved while it streams; Ctrl-C keeps what was shown, as stopped', async () => {
  const store = ChatStore.open(path.join(dir, 'stop.db'));
  try {
    let midStream: StoredMessage | undefined;
    const { out, history, warnings } = await chat(store, ['Once upon a time', '/stats'], {
      onText: (all, signals, h) => {
        if (midStream || !all.includes('Lily')) return;
        midStream = store.path(h.conversation!.id).at(-1);
        signals.emit('SIGINT');
      },
    });
    assert.deepEqual(warnings, []);
    assert.ok(midStream, 'Ctrl-C was sent');
    const shown = out.slice(0, out.indexOf('\n[stopped]'));
    assert.equal(midStream.status, 'streaming');
    assert.ok(midStream.content.length > 0 && shown.startsWith(midStream.content), `saved while streaming: ${JSON.stringify(midStream.content)}`);
    const conv = store.getConversation(history.conversation!.id)!;
    assert.equal(conv.title, 'Once upon a time');
    assert.equal(conv.model, 'stories260K');
    const [q, a] = store.path(conv.id);
    assert.deepEqual([q.role, q.content, a.role, a.status, a.content], ['user', 'Once upon a time', 'assistant', 'stopped', shown]);
    assert.ok(a.usage!.completion_tokens > 0 && a.usage!.completion_tokens < 64);
    assert.match(out, /finish: interrupted/);
  } finally {
    store.close();
  }
});

test('an answer that fails is saved as error, with the message', async () => {
  const store = ChatStore.open(path.join(dir, 'error.db'));
  try {
    const long = 'Once upon a time there was a little girl named Lily who liked to play outside in the sun';
    const { out, history } = await chat(store, [long], { contextLength: 8 });
    assert.match(out, /error: the prompt is \d+ tokens but the context holds 8/);
    const [, a] = store.path(history.conversation!.id);
    assert.equal(a.status, 'error');
    assert.match(a.error ?? '', /the context holds 8/);
  } finally {
    store.close();
  }
});

test('/load by id prefix, exact title or title prefix; ambiguity and absence are clear errors', () => {
  const store = ChatStore.open(path.join(dir, 'find.db'));
  try {
    const one = store.createConversation({ title: 'Alpha one', model: 'm' });
    const two = store.createConversation({ title: 'Alpha two', model: 'm' });
    const beta = store.createConversation({ title: 'Beta', model: 'm' });
    const h = new ChatHistory(store, 'm', () => {});
    assert.equal(h.open('alpha two').conversation.id, two.id);
    assert.equal(h.open('be').conversation.id, beta.id);
    assert.equal(h.open(one.id.slice(0, 12)).conversation.id, one.id);
    assert.throws(() => h.open('alpha'), /2 conversations match "alpha" \(.*"Alpha two".*"Alpha one"\): give more of the id or title/);
    assert.throws(() => h.open('gamma'), /no conversation has the id or title "gamma" \(\/history lists them\)/);
    const lines = h.list().split('\n');
    assert.equal(lines.length, 5, 'three conversations, the /load hint, and the final newline');
    const date = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d';
    assert.match(lines.find((l) => l.startsWith(`  ${one.id.slice(0, 8)}`)) ?? '', new RegExp(`^ {2}[0-9a-f]{8} {2}${date} {2}Alpha one {2}\\[m\\] {2}\\(this chat\\)$`));
    assert.match(lines.find((l) => l.startsWith(`  ${beta.id.slice(0, 8)}`)) ?? '', new RegExp(`^ {2}[0-9a-f]{8} {2}${date} {2}Beta {2}\\[m\\]$`));
    assert.equal(lines[3], '/load ID-or-title continues one');
    assert.match(h.list('zzz'), /no conversation contains "zzz"/);
  } finally {
    store.close();
  }
});

test('/load continues after the last answer: a question left unanswered is not part of the branch', () => {
  const store = ChatStore.open(path.join(dir, 'branch.db'));
  try {
    const c = store.createConversation({ title: 'Q', system: 'Be brief.', settings: { think: 'high', temperature: 0.5 } });
    const q1 = store.addMessage({ conversation_id: c.id, parent_id: null, role: 'user', content: 'Hi', attachments: [{ name: 'a.txt', size: 2, tokens: 1, content: 'A\n' }] });
    const a1 = store.addMessage({ conversation_id: c.id, parent_id: q1.id, role: 'assistant', content: 'Hello.', reasoning: 'Greet back.', think: 'high',
      usage: { prompt_tokens: 5, completion_tokens: 9, cached_tokens: 0, reasoning_tokens: 4, reasoning_seconds: 1.24, seconds: 2, tokens_per_second: 4 } });
    store.addMessage({ conversation_id: c.id, parent_id: a1.id, role: 'user', content: 'Dangling' });
    const h = new ChatHistory(store, 'm', () => {});
    const { path: branch } = h.open('Q');
    assert.deepEqual(branch.map((m) => m.content), ['Hi', 'Hello.']);
    assert.deepEqual(toChatMessages(branch), [
      { role: 'user', content: '[file a.txt]\n```\nA\n```\n\nHi' },
      { role: 'assistant', content: 'Hello.', reasoning_content: 'Greet back.' },
    ]);
    assert.equal(formatTranscript(branch, false), '>>> Hi\n(attached: a.txt)\n▸ Thought for 1.2 s (4 tokens)\nHello.\n\n');
    const rec = h.beginTurn('Next', { system: 'Be brief.', think: 'none', temperature: 0.5 });
    assert.ok(rec);
    const next = store.path(c.id);
    assert.deepEqual(next.map((m) => m.content), ['Hi', 'Hello.', 'Next', '']);
    assert.equal(next[3].status, 'streaming');
    assert.equal(store.getConversation(c.id)!.settings.think, 'none');
  } finally {
    store.close();
  }
});
