// DeepSeek-V4 conversations through the chat layer and `minke run`, on a synthetic V4 checkpoint
// with the real vocabulary size (the tiny fixture's 512-row embedding cannot take real token ids).
// The prompts must be exactly what the official encoder writes for each reasoning mode.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticV4 } from '../../bench/synth-v4.js';
import { encodeV4Messages, V4_BOS, V4_THINK_MAX_PREFIX } from '../../src/chat/deepseek-v4-encoding.js';
import { ChatSession, defaultSettings } from '../../src/cli/chat-session.js';
import { loadModel, type LanguageModel } from '../../src/models/index.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));

let dir: string;
let model: LanguageModel;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-v4-chat-'));
  const config = JSON.parse(fs.readFileSync(shared('fixtures/deepseek-v4-tiny/config.json'), 'utf8'));
  writeSyntheticV4(path.join(dir, 'model'), { ...config, vocab_size: 129280 }, { seed: 3 });
  model = await loadModel(path.join(dir, 'model'), { threads: 1 });
});

after(async () => {
  await model?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function session(think?: 'none' | 'high' | 'max'): ChatSession {
  return new ChatSession(model, { raw: false, settings: { ...defaultSettings(), temperature: 0, maxTokens: 4 }, stop: [], system: 'Be brief.', think });
}

test('each reasoning mode renders the official V4 prompt and tokenizes it with special tokens', () => {
  const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hello, 世界!' }];
  for (const think of ['none', 'high', 'max'] as const) {
    const s = session(think);
    try {
      const { ids, opensReasoning } = s.prompt('Hello, 世界!');
      const text = encodeV4Messages(messages, { thinking: think !== 'none', reasoningEffort: think === 'max' ? 'max' : 'high' });
      assert.deepEqual(ids, model.tokenizer.encode(text, { parseSpecial: true }));
      assert.equal(ids[0], 0, 'BOS id first');
      assert.equal(ids.at(-1), think === 'none' ? 128822 : 128821, 'ends with </think> (non-think) or <think>');
      assert.equal(opensReasoning, think !== 'none');
      assert.equal(text.startsWith(V4_BOS + V4_THINK_MAX_PREFIX), think === 'max');
    } finally {
      s.close();
    }
  }
  const dflt = session();
  try {
    assert.equal(dflt.prompt('x').ids.at(-1), 128822, 'default is non-think, as the DeepSeek app');
  } finally {
    dflt.close();
  }
});

test('a turn generates, and the next turn drops its reasoning as the encoder does', async () => {
  const s = session('high');
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
  try {
    const r = await s.send('Hi', sink, sink);
    assert.equal(r.tokens.length, 4);
    assert.deepEqual(s.messages.map((m) => m.role), ['user', 'assistant']);
    const next = s.prompt('Again');
    const text = model.tokenizer.decode(next.ids, { skipSpecial: false });
    assert.ok(text.endsWith('<｜User｜>Again<｜Assistant｜><think>'), JSON.stringify(text.slice(-60)));
  } finally {
    s.close();
  }
});

test('minke run on a V4 directory with --think max', () => {
  const r = spawnSync(process.execPath, [BIN, 'run', path.join(dir, 'model'), 'Hello', '--think', 'max', '--max-tokens', '3', '--temperature', '0', '--threads', '1'],
    { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /deepseek_v4/);
  const bad = spawnSync(process.execPath, [BIN, 'run', path.join(dir, 'model'), 'Hello', '--think', 'deep'], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--think is one of none, low, high, max/);
});
