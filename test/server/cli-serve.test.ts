// `minke serve` as users run it: a child process that prints its URL on stderr when ready,
// answers the official SDK, and exits cleanly on SIGTERM; bad arguments fail with one clear line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { STORIES } from './helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));

test('minke serve prints its URL, answers, and stops on SIGTERM', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-serve-cli-'));
  const child = spawn(process.execPath, [BIN, 'serve', STORIES, '--port', '0', '--threads', '1'], { env: { ...process.env, MINKE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    });
    assert.match(stderr, /stories260K.gguf: llama, .* parameters/, 'the memory summary is printed before loading');
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused' });
    const r = await client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8, temperature: 0 });
    assert.equal(r.usage?.completion_tokens, 8);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /stopping/);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('minke serve refuses bad arguments with one clear line', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 60_000 });
  const missing = run(['/nonexistent/model.gguf', '--port', '0']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nonexistent\/model\.gguf: no such file or directory/);
  const badFlag = run([STORIES, '--port', 'x']);
  assert.equal(badFlag.status, 2);
  assert.match(badFlag.stderr, /--port needs a number/);
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--api-key KEY/);
});
