// The interactive chat loop over piped streams with the real stories260K model (no chat template:
// the conversation reads as one story), checked against llama.cpp's greedy continuation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/models/index.js';
import { chatLoop } from '../../src/cli/chat.js';
import { ChatSession, defaultSettings } from '../../src/cli/chat-session.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const greedy = JSON.parse(fs.readFileSync(shared('fixtures/stories260K/greedy.json'), 'utf8')) as { results: { prompt: string; full_text: string }[] };
const ONCE = greedy.results.find((r) => r.prompt === 'Once upon a time')!;
const CONTINUATION = ONCE.full_text.slice(ONCE.prompt.length);

class Capture extends Writable {
  text = '';
  constructor(private readonly onText?: (all: string) => void) { super(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    this.onText?.(this.text);
    done();
  }
}

async function chat(lines: string[], opts: { onText?: (all: string, signals: EventEmitter) => void } = {}) {
  const model = await loadModel(shared('models/stories260K/stories260K.gguf'), { threads: 1 });
  const signals = new EventEmitter();
  const out = new Capture(opts.onText && ((t) => opts.onText!(t, signals)));
  const err = new Capture();
  const session = new ChatSession(model, { raw: false, settings: { ...defaultSettings(), temperature: 0, maxTokens: 64 }, stop: [] });
  const input = new PassThrough();
  input.end(lines.map((l) => l + '\n').join(''));
  try {
    await chatLoop(session, { input, output: out as unknown as NodeJS.WritableStream & { isTTY?: boolean }, err, signals });
  } finally {
    session.close();
    await model.close();
  }
  return { out: out.text, err: err.text, session };
}

test('a chat turn answers with the greedy continuation; /stats, /set and /help answer in place', async () => {
  const { out, session } = await chat(['Once upon a time', '/stats', '/set top_k 5', '/set warmth 3', '/help', '/frob']);
  assert.ok(out.startsWith(CONTINUATION + '\n\n'), JSON.stringify(out.slice(0, 200)));
  assert.match(out, /prompt 5 tokens .* generated 64 tokens .* finish: max tokens\n/);
  assert.match(out, /top_k = 5\n/);
  assert.match(out, /unknown setting "warmth"/);
  assert.match(out, /\/clear {16}forget the conversation/);
  assert.match(out, /unknown command \/frob/);
  assert.equal(session.settings.topK, 5);
  assert.deepEqual(session.messages.map((m) => m.role), ['user', 'assistant']);
  assert.equal(session.messages[1].content, CONTINUATION);
});

test('the next turn reuses the evaluated prefix; /clear starts over; /system comes first', async () => {
  const { out, session } = await chat(['Once upon a time', 'Then', '/stats', '/clear', '/system A story.', 'Once upon a time', '/stats']);
  const stats = [...out.matchAll(/prompt (\d+) tokens/g)].map((m) => Number(m[1]));
  assert.equal(stats.length, 2);
  // Turn 2 evaluated only what follows the common prefix of the held tokens and the new prompt.
  const tok = session.model.tokenizer;
  const whole = tok.encode(`Once upon a time${CONTINUATION}\nThen`);
  assert.ok(stats[0] < whole.length - 5, `${stats[0]} of ${whole.length}`);
  // After /clear and with a system prompt, everything is evaluated again.
  assert.equal(stats[1], tok.encode('A story.\nOnce upon a time').length);
  assert.deepEqual(session.messages.map((m) => m.role), ['user', 'assistant']);
});

test('Ctrl-C while the answer streams stops that answer, not the chat', async () => {
  let fired = false;
  const { out } = await chat(['Once upon a time', '/stats'], {
    onText: (all, signals) => { if (!fired && all.includes('Lily')) { fired = true; signals.emit('SIGINT'); } },
  });
  assert.ok(fired);
  assert.match(out, /\n\[stopped\]\n\n/);
  const answer = out.slice(0, out.indexOf('\n[stopped]'));
  assert.ok(CONTINUATION.startsWith(answer) && answer.length < CONTINUATION.length, JSON.stringify(answer));
  assert.match(out, /finish: interrupted/);
});
