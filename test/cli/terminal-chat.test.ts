// The terminal chat as a person uses it: the real `minke run MODEL` in a pseudo-terminal (tmux,
// 120×40), keys sent and the screen read back. A DeepSeek-V4 exchange with thinking (the reasoning
// streams, then folds into one line; /show unfolds it), /think none and a second exchange, /save;
// the app's SQLite database then holds the conversation; a new chat /loads it and continues it.
// The model is a synthetic V4 checkpoint with the real vocabulary (greedy, 8 tokens an answer).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { writeSyntheticV4 } from '../../bench/synth-v4.js';
import { ChatStore } from '../../src/app/store.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SOCKET = `minke-chat-test-${process.pid}`;

let dir: string;
let home: string;
let modelDir: string;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function tmux(...args: string[]): string {
  try {
    return execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('this test needs tmux (apt-get install tmux)');
    throw e;
  }
}

/** Starts `minke run MODEL …` in a new tmux session; the pane stays after it exits, showing its status. */
function startChat(name: string, flags: string[]): void {
  const cmd = [process.execPath, path.join(REPO, 'bin/minke.js'), 'run', modelDir, '--max-tokens', '8', '--temperature', '0', '--threads', '1', '--quiet', ...flags];
  tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', name,
    `cd ${quote(REPO)} && MINKE_HOME=${quote(home)} ${cmd.map(quote).join(' ')}; echo "[exit $?]"; sleep 600`);
}

const screen = (name: string): string => tmux('capture-pane', '-p', '-t', name).split('\n').map((l) => l.trimEnd()).join('\n');

async function waitFor(name: string, what: string, ok: (s: string) => boolean, ms = 30_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = screen(name);
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${s}`);
    await sleep(100);
  }
}

/** True when `line` was entered at a prompt and a fresh, empty prompt follows it (the chat is idle again). */
function answered(s: string, line: string): boolean {
  const lines = s.split('\n');
  let last = lines.length - 1;
  while (last >= 0 && lines[last] === '') last--;
  return lines[last] === '>>>' && lines.slice(0, last).includes(`>>> ${line}`);
}

/** Types `line`, presses Enter, and returns the screen once the next prompt is shown. */
async function enter(name: string, line: string): Promise<string> {
  tmux('send-keys', '-t', name, '-l', line);
  tmux('send-keys', '-t', name, 'Enter');
  return waitFor(name, `the answer to ${JSON.stringify(line)}`, (s) => answered(s, line));
}

/** What the chat printed between `>>> line` and the next (empty) prompt. */
function printedAfter(s: string, line: string): string {
  const start = s.lastIndexOf(`>>> ${line}\n`);
  assert.ok(start >= 0, `no ${JSON.stringify(line)} on the screen:\n${s}`);
  const rest = s.slice(start + line.length + 5);
  // Up to the next empty prompt (a loaded transcript shows its own `>>> question` lines).
  return rest.slice(0, rest.search(/\n>>>(\n|$)/)).replace(/\n+$/, '');
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-terminal-chat-'));
  home = path.join(dir, 'home');
  modelDir = path.join(dir, 'model');
  const config = JSON.parse(fs.readFileSync(shared('fixtures/deepseek-v4-tiny/config.json'), 'utf8'));
  writeSyntheticV4(modelDir, { ...config, vocab_size: 129280 }, { seed: 3 });
});

after(() => {
  try { tmux('kill-server'); } catch { /* no server left */ }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a chat with thinking, saved in the app database, then loaded and continued in a new chat', { timeout: 120_000 }, async () => {
  // 1. --think high: the reasoning streams dimmed, then folds into one line.
  startChat('first', ['--think', 'high']);
  await waitFor('first', 'the first prompt', (s) => /^>>>$/m.test(s));
  const one = await enter('first', 'Hello there');
  const fold = printedAfter(one, 'Hello there');
  const m = /^▸ Thought for \d+\.\d s \((\d+) tokens?\) — \/show to expand$/m.exec(fold);
  assert.ok(m, `no folded reasoning line:\n${one}`);
  assert.ok(!one.includes('Thinking...'), 'the streamed reasoning block was erased');
  const shown = printedAfter(await enter('first', '/show'), '/show');
  assert.ok(shown.length > 0, 'the reasoning unfolds');

  assert.match(await enter('first', '/think none'), /^think = none$/m);
  const answer2 = printedAfter(await enter('first', 'Second question'), 'Second question');
  assert.ok(answer2.length > 0 && !answer2.includes('Thought for'), `non-think answer: ${JSON.stringify(answer2)}`);
  const saved = /^saved as "My tmux chat" \(([0-9a-f]{8})\)$/m.exec(await enter('first', '/save My tmux chat'));
  assert.ok(saved, 'the /save line');
  tmux('send-keys', '-t', 'first', '-l', '/bye');
  tmux('send-keys', '-t', 'first', 'Enter');
  await waitFor('first', 'the chat to end', (s) => s.includes('[exit 0]'));

  // 2. The database holds both exchanges, reasoning on the first, with what the screen showed.
  const store = ChatStore.open(path.join(home, 'minke.db'));
  try {
    const list = store.listConversations();
    assert.equal(list.length, 1);
    assert.equal(list[0].title, 'My tmux chat');
    assert.equal(list[0].model, 'model', "the model's base name, as minke serve names it");
    assert.ok(list[0].id.startsWith(saved[1]));
    const msgs = store.path(list[0].id);
    assert.deepEqual(msgs.map((x) => [x.role, x.think, x.status]), [
      ['user', 'high', 'done'], ['assistant', 'high', 'done'], ['user', 'none', 'done'], ['assistant', 'none', 'done'],
    ]);
    assert.deepEqual([msgs[0].content, msgs[2].content], ['Hello there', 'Second question']);
    assert.ok(msgs[1].reasoning.length > 0, 'the first answer has reasoning');
    assert.equal(shown, msgs[1].reasoning.split('\n').map((l) => l.trimEnd()).join('\n'), '/show printed the saved reasoning');
    assert.ok(!one.includes(msgs[1].reasoning.split('\n')[0]), 'folded: the reasoning is not on the screen');
    assert.equal(msgs[1].usage?.reasoning_tokens, Number(m[1]), 'the token count of the folded line');
    assert.equal(msgs[1].usage?.completion_tokens, 8);
    assert.equal(msgs[3].reasoning, '');
    assert.equal(answer2, msgs[3].content.split('\n').map((l) => l.trimEnd()).join('\n'));
    assert.equal(msgs[3].usage?.completion_tokens, 8);
    assert.ok(msgs[3].usage!.cached_tokens > 0, 'turn 2 reused the evaluated prefix');
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    store.close();
  }

  // 3. A new chat (--think max) lists and loads it, with its think mode, and continues it.
  startChat('second', ['--think', 'max']);
  await waitFor('second', 'the first prompt', (s) => /^>>>$/m.test(s));
  const listed = printedAfter(await enter('second', '/load'), '/load');
  assert.match(listed, new RegExp(`^  ${saved[1]}  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  My tmux chat  \\[model\\]$`, 'm'));
  const loaded = printedAfter(await enter('second', '/load my tmux'), '/load my tmux');
  assert.ok(loaded.startsWith(`loaded "My tmux chat" (${saved[1]}, 2 exchanges, model model, think = none)\n`), loaded);
  assert.match(loaded, /^>>> Hello there\n▸ Thought for \d+\.\d s \(\d+ tokens?\)\n/m);
  assert.ok(loaded.includes(`>>> Second question\n${answer2}`), loaded);
  assert.match(await enter('second', '/think'), /^think = none$/m);
  await enter('second', 'Third question');
  tmux('send-keys', '-t', 'second', '-l', '/bye');
  tmux('send-keys', '-t', 'second', 'Enter');
  await waitFor('second', 'the chat to end', (s) => s.includes('[exit 0]'));

  // 4. --no-history saves nothing.
  startChat('third', ['--no-history']);
  const banner = await waitFor('third', 'the first prompt', (s) => /^>>>$/m.test(s));
  assert.ok(!banner.includes('conversations are saved'), banner);
  await enter('third', 'Not saved');
  assert.match(printedAfter(await enter('third', '/save'), '/save'), /^history is off \(--no-history\)/);
  tmux('send-keys', '-t', 'third', '-l', '/bye');
  tmux('send-keys', '-t', 'third', 'Enter');
  await waitFor('third', 'the chat to end', (s) => s.includes('[exit 0]'));

  const again = ChatStore.open(path.join(home, 'minke.db'));
  try {
    const list = again.listConversations();
    assert.equal(list.length, 1, 'the loaded chat continued the same conversation; --no-history added none');
    const msgs = again.path(list[0].id);
    assert.equal(msgs.length, 6);
    assert.deepEqual([msgs[4].role, msgs[4].content, msgs[4].think], ['user', 'Third question', 'none']);
    assert.deepEqual([msgs[5].role, msgs[5].status, msgs[5].think], ['assistant', 'done', 'none']);
    assert.equal(again.integrityCheck(), 'ok');
  } finally {
    again.close();
  }
});
