// The README's main command on the shipped model, end to end: `minke serve` with no MODEL serves
// minke-nano; in headless Debian chromium the app (DeepThink on, so the server samples at
// temperature 1 as DeepSeek's API does in thinking mode) asks it a held-out problem and it reasons
// in a thinking block and answers correctly — checked by the task's own verifier, the answer
// computed by the generator, not by the model. `minke run` with no MODEL answers from the same
// model on the command line (greedy).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { EVAL_DEFAULT_SEED } from '../../src/train/eval.js';
import { generateTasks } from '../../src/train/tasks/index.js';

declare const document: any;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(REPO, 'bin/minke.js');
const ARTIFACTS = path.join(REPO, 'test-artifacts/app');
const CHROMIUM = '/usr/bin/chromium';

// A held-out problem (minke eval's seed) of a kind the 4M-parameter model gets right reliably:
// units problem 2, "Convert 24 liters to milliliters." (10 of 10 sampled answers right when chosen).
const NANO_PROBLEM = 2;
const task = generateTasks('units', EVAL_DEFAULT_SEED, NANO_PROBLEM + 1)[NANO_PROBLEM];

let home: string;
let child: ChildProcess;
let url: string;
let context: BrowserContext;
let page: Page;

before(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-nano-chat-'));
  child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--threads', '1'], { env: { ...process.env, MINKE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+) \(models: ([^)]*)\)/.exec(stderr);
      if (m) {
        assert.equal(m[2], 'minke-nano', 'with no MODEL the shipped model is served');
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`minke serve exited with ${code}: ${stderr}`)));
  });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1280, height: 800 },
  });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(120_000);
});

after(async () => {
  await context?.close();
  child?.kill('SIGTERM');
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('the app on the shipped model: DeepThink on, a held-out reasoning question is reasoned through and answered', async () => {
  await page.goto(`${url}/`);
  await page.locator('[data-testid=app][data-ready=true]').waitFor();
  assert.equal(await page.getByTestId('model-select').inputValue(), 'minke-nano');
  await page.getByTestId('think-toggle').click();
  await page.locator('[data-testid=think-toggle][aria-pressed=true]').waitFor();
  await page.getByTestId('composer-input').fill(task.prompt);
  await page.getByTestId('composer-input').press('Enter');
  await page.locator('[data-testid=message][data-role=assistant]').waitFor();
  await page.waitForFunction(() => {
    const m = document.querySelector('[data-testid=message][data-role=assistant]');
    return m && m.dataset.status !== 'streaming' && m.dataset.status !== 'pending';
  });
  await page.screenshot({ path: path.join(ARTIFACTS, 'nano-deepthink.png') });
  const answer = page.locator('[data-testid=message][data-role=assistant]').last();
  const reasoning = (await answer.getByTestId('reasoning-content').textContent())!;
  const content = (await answer.getByTestId('message-content').textContent())!;
  assert.ok(reasoning.trim().length > 20, `the model reasoned: ${JSON.stringify(reasoning)}`);
  assert.ok(task.verify(content), `${task.prompt} → ${JSON.stringify(content)} (expected ${task.answer}); reasoning: ${reasoning}`);
});

test('minke run with no MODEL answers from the shipped model', () => {
  const r = spawnSync(process.execPath, [BIN, 'run', '--think', 'high', '--temperature', '0', '-q', '--no-history'], { input: task.prompt, encoding: 'utf8', timeout: 120_000, env: { ...process.env, MINKE_HOME: home } });
  assert.equal(r.status, 0, r.stderr);
  // Piped, the answer alone goes to stdout and the reasoning to stderr (display.ts).
  assert.ok(task.verify(r.stdout.trim()), `minke run: ${JSON.stringify(r.stdout)} (expected ${task.answer})`);
  assert.ok(r.stderr.trim().length > 20, `the reasoning went to stderr: ${JSON.stringify(r.stderr)}`);
});
