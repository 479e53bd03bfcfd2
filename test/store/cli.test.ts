// `minke pull | list | rm` as a user runs them: `node bin/minke.js …` child processes with
// MINKE_HOME in a temp dir and HF_ENDPOINT at the fake hub; exit codes, stdout and stderr.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { FakeHub, sha256 } from './fake-hub.js';
import { SHARDS, tinyV4Repo } from './repos.js';

const BIN = fileURLToPath(new URL('../../../bin/minke.js', import.meta.url));
let hub: FakeHub;
let home: string;
const tiny = tinyV4Repo();

before(async () => {
  hub = await new FakeHub().start();
  hub.repos.set('deepseek-ai/tiny-v4', tiny);
  hub.repos.set('gated/tiny', { ...tinyV4Repo(), token: 'hf_right' });
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-store-cli-'));
});
after(async () => {
  await hub.close();
  fs.rmSync(home, { recursive: true, force: true });
});

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** minke as a child process (asynchronous: the fake hub answers from this process). */
function minke(args: string[], env: Record<string, string> = {}, whileRunning?: (child: ReturnType<typeof spawn>) => Promise<void>): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, MINKE_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: '', MINKE_DEBUG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<Run>((ok) => child.on('close', (code, signal) => ok({ code, signal, stdout, stderr })));
  void whileRunning?.(child);
  return done;
}

test('an unknown repo is one clear error line naming it, exit 1', async () => {
  const r = await minke(['pull', 'nobody/no-such-model']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `minke: nobody/no-such-model: no such model repository on ${hub.url} (if it is private, set HF_TOKEN)\n`);
  assert.ok(!fs.existsSync(path.join(home, 'models', 'nobody', 'no-such-model', 'minke-model.json')));
});

test('a gated repo says to set HF_TOKEN; with the token it pulls', async () => {
  const r = await minke(['pull', 'gated/tiny']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^minke: gated\/tiny is gated: accept its conditions at http:\/\/127\.0\.0\.1:\d+\/gated\/tiny, then set HF_TOKEN to a token of that account\n$/);
  const ok = await minke(['pull', 'gated/tiny'], { HF_TOKEN: 'hf_right' });
  assert.equal(ok.code, 0, ok.stderr);
  fs.rmSync(path.join(home, 'models', 'gated'), { recursive: true });
});

test('a hub that cannot be reached is a clear network error', async () => {
  // A port nothing listens on: one a server just gave back.
  const closed = http.createServer();
  await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
  const endpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((ok) => closed.close(ok));
  const r = await minke(['pull', 'deepseek-ai/tiny-v4'], { HF_ENDPOINT: endpoint });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `minke: cannot reach ${endpoint} (ECONNREFUSED); check the network connection or HF_ENDPOINT\n`);
});

test('pull, then the name works as MODEL (info), shows in list, and rm removes it', async () => {
  const r = await minke(['pull', 'deepseek-ai/tiny-v4']);
  assert.equal(r.code, 0, r.stderr);
  const dir = path.join(home, 'models', 'deepseek-ai', 'tiny-v4');
  assert.equal(r.stdout, `${path.join(dir, '.')}\n`);
  // Not a terminal: progress lines, the last one complete.
  assert.match(r.stderr, /pulling deepseek-ai\/tiny-v4 \[#{24}\] 100% .* files 5\/5\npulled deepseek-ai\/tiny-v4 \(aaaaaaaaaaaa\)\n$/);

  const info = await minke(['info', 'deepseek-ai/tiny-v4']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /deepseek_v4/);

  const list = await minke(['list']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^NAME +ARCHITECTURE +SIZE +FORMATS +PATH$/);
  assert.match(lines[1], new RegExp(`^deepseek-ai/tiny-v4 +deepseek_v4 +[\\d.]+ MiB +safetensors \\S+ +${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  assert.equal(lines.length, 2);

  const rm = await minke(['rm', 'deepseek-ai/tiny-v4']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(!fs.existsSync(dir));
  const empty = await minke(['list']);
  assert.match(empty.stdout, /^no models in /);
  const again = await minke(['rm', 'deepseek-ai/tiny-v4']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^minke: no model 'deepseek-ai\/tiny-v4' in the store .*; the store is empty\n$/);
});

test('SIGINT mid-download keeps the .part and writes no manifest; pull again resumes and finishes', async () => {
  hub.faults.set(SHARDS[1], { stallAfter: 200_000 });
  const dir = path.join(home, 'models', 'deepseek-ai', 'tiny-v4');
  const part = path.join(dir, `${SHARDS[1]}.part`);
  const r = await minke(['pull', 'deepseek-ai/tiny-v4'], {}, async (child) => {
    const deadline = Date.now() + 30_000;
    while (!(fs.existsSync(part) && fs.statSync(part).size >= 200_000) && child.exitCode === null && Date.now() < deadline) await sleep(20);
    child.kill('SIGINT');
  });
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /minke: pull of deepseek-ai\/tiny-v4 interrupted; the partial download stays and minke pull deepseek-ai\/tiny-v4 resumes it\n$/);
  assert.equal(fs.statSync(part).size, 200_000);
  assert.ok(!fs.existsSync(path.join(dir, 'minke-model.json')));
  const list = await minke(['list']);
  assert.match(list.stdout, /^deepseek-ai\/tiny-v4 +- +[\d.]+ [KM]iB +incomplete /m);
  const info = await minke(['info', 'deepseek-ai/tiny-v4']);
  assert.equal(info.code, 1);
  assert.match(info.stderr, /the download is incomplete/);

  hub.faults.clear();
  hub.requests.length = 0;
  const resumed = await minke(['pull', 'deepseek-ai/tiny-v4']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(hub.cdnRequests(tiny.files.get(SHARDS[1])!).map((q) => q.range), ['bytes=200000-']);
  assert.equal(sha256(fs.readFileSync(path.join(dir, SHARDS[1]))), sha256(tiny.files.get(SHARDS[1])!));
  assert.ok(fs.existsSync(path.join(dir, 'minke-model.json')));
});
