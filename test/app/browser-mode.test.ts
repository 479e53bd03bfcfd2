// The web app with no minke server at all: dist/app/web and <repo>/models on a plain static server
// (cross-origin isolated, as the engine's shared WASM memory needs), opened in headless Debian
// chromium. The app must notice there is no API, switch to browser mode, load the shipped
// minke-nano in its Web Worker (WASM CPU kernels with ?backend=cpu; WebGPU on SwiftShader
// otherwise), answer a question, and keep the conversation in the browser across a reload.
// Then the same mode in the app as `minke serve` serves it: isolated, with the shipped model's
// files at models/minke-nano/. Needs `npm run build` (dist/app/web).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer } from '../../src/server/index.js';
import { STORIES } from '../server/helpers.js';
import { tempDir } from './helpers.js';

declare const document: any;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const WEB = path.join(REPO, 'dist/app/web');
const MODELS = path.join(REPO, 'models');
const ARTIFACTS = path.join(REPO, 'test-artifacts/app');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan',
];
const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm',
  '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf',
};

/** Files only: `/models/…` from <repo>/models, the rest from dist/app/web; anything else (the API) is 404. */
function staticServer(): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(p);
    const [root, rel] = p.startsWith('/models/') ? [MODELS, p.slice('/models/'.length)] : [WEB, p === '/' ? 'index.html' : p.slice(1)];
    const file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': fs.statSync(file).size,
      'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    resolve({ url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
  }));
}

let site: Awaited<ReturnType<typeof staticServer>>;
let browser: Browser;

before(async () => {
  assert.ok(fs.existsSync(path.join(WEB, 'index.html')), `${WEB} is missing: run \`npm run build\` first (it builds the web app)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  site = await staticServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await site?.close();
});

/** Opens the app in a fresh profile and waits until the engine has loaded minke-nano (or failed). */
async function openApp(query: string): Promise<{ context: BrowserContext; page: Page; status: string; state: string; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.setDefaultTimeout(120_000);
  // Every progress report the engine worker sends while the model loads ([done, total] bytes).
  await page.addInitScript(() => {
    const seen: [number, number][] = [];
    const g = globalThis as any, Base = g.Worker;
    g.loadProgress = seen;
    g.Worker = class extends Base {
      constructor(...args: unknown[]) {
        super(...args);
        this.addEventListener('message', (e: { data?: { type?: string; done: number; total: number } }) => {
          if (e.data?.type === 'progress') seen.push([e.data.done, e.data.total]);
        });
      }
    };
  });
  await page.goto(`${site.url}/${query}`);
  await page.locator('[data-testid=app][data-ready=true]').waitFor();
  const badge = page.getByTestId('engine-status');
  await page.locator('[data-testid=engine-status][data-state=ready], [data-testid=engine-status][data-state=error]').waitFor();
  return { context, page, status: (await badge.textContent()) ?? '', state: (await badge.getAttribute('data-state')) ?? '', errors };
}

/** Sets an input of the settings panel as a user's change would. */
async function setting(page: Page, testId: string, value: string): Promise<void> {
  await page.getByTestId('settings-button').click();
  await page.getByTestId(testId).evaluate((el: any, v: string) => {
    el.value = v;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
  await page.waitForFunction(([id, v]) => document.querySelector(`[data-testid=${id}]`)?.value === v, [testId, value]);
  await page.getByTestId('settings-close').click();
}

/** Greedy answers (temperature 0), so the reply is the model's known one. */
const greedy = (page: Page): Promise<void> => setting(page, 'temperature-input', '0');

/** Sends `text`; answers the reply's text, or its error. */
async function ask(page: Page, text: string): Promise<{ content: string; error: string | null }> {
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('composer-input').press('Enter');
  const answer = page.locator('[data-testid=message][data-role=assistant]').last();
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('[data-testid=message][data-role=assistant]');
    const status = all[all.length - 1]?.getAttribute('data-status');
    return status === 'done' || status === 'error';
  });
  if (await answer.getAttribute('data-status') === 'error') return { content: '', error: await answer.getByTestId('message-error').textContent() };
  return { content: (await answer.getByTestId('message-content').textContent()) ?? '', error: null };
}

for (const backend of ['cpu', 'webgpu'] as const) {
  describe(`browser mode, ${backend === 'cpu' ? 'CPU (WASM)' : 'WebGPU (SwiftShader)'}`, () => {
    test('no server: the app runs minke-nano in the page, answers, and keeps the chat across a reload', async (t: TestContext) => {
      const { context, page, status, state, errors } = await openApp(backend === 'cpu' ? '?backend=cpu' : '');
      try {
        assert.equal(await page.evaluate(() => (globalThis as any).crossOriginIsolated), true, 'the page is cross-origin isolated');
        // The probe of the API got a 404, so the app chose browser mode on its own.
        assert.ok(site.requests.includes('/app/api/settings'));
        if (backend === 'webgpu' && state === 'error') {
          t.skip(`WebGPU failed to load minke-nano: ${status}`);
          return;
        }
        assert.equal(state, 'ready', `minke-nano did not load: ${status} ${errors.join('; ')}`);
        assert.ok(status.startsWith('minke-nano · '), status);
        t.diagnostic(`engine: ${status}`);
        if (backend === 'cpu') assert.match(status, /CPU \(WASM\)/);
        else assert.match(status, /WebGPU/, `the engine fell back from WebGPU: ${await page.getByTestId('engine-status').getAttribute('title')}`);
        assert.ok(site.requests.includes('/models/minke-nano/model.safetensors'), 'the weights came from models/minke-nano/ beside the page');
        // The weights' download moves the progress on (between 0 and all of it), against a total
        // that counts them.
        const progress: [number, number][] = await page.evaluate(() => (globalThis as any).loadProgress);
        const weights = fs.statSync(path.join(MODELS, 'minke-nano', 'model.safetensors')).size;
        assert.ok(progress.some(([done, total]) => done > 0 && done < total && total >= weights), `no progress while loading: ${JSON.stringify(progress)}`);

        await greedy(page);
        const t0 = Date.now();
        const { content, error } = await ask(page, 'Who are you?');
        if (backend === 'webgpu' && error && /WGSL|WebGPU/.test(error)) {
          t.skip(`minke-nano loaded on WebGPU but its kernels failed while answering: ${error.split('\n')[0]}`);
          return;
        }
        assert.equal(error, null, `the answer failed: ${error}`);
        assert.match(content, /minke-nano/, content);
        const stats = await page.locator('[data-testid=message][data-role=assistant]').last().getByTestId('message-stats').textContent();
        assert.match(stats ?? '', /\d+ tokens/);
        t.diagnostic(`answered in ${Date.now() - t0} ms: ${stats}`);
        await page.screenshot({ path: path.join(ARTIFACTS, `browser-mode-${backend}.png`) });

        // Saved in this browser: after a reload it is listed, and opening it shows both messages.
        const id = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/c\//, ''));
        assert.ok(id, 'the new conversation is in the address');
        await page.goto(`${site.url}/${backend === 'cpu' ? '?backend=cpu' : ''}`);
        await page.locator('[data-testid=app][data-ready=true]').waitFor();
        const item = page.locator(`[data-testid=conversation-item][data-id="${id}"]`);
        await item.waitFor();
        assert.equal(await item.getByTestId('conversation-title').textContent(), 'Who are you?');
        await item.getByTestId('conversation-title').click();
        await page.waitForFunction(() => document.querySelectorAll('[data-testid=message]').length === 2);
        assert.match((await page.locator('[data-testid=message][data-role=assistant] [data-testid=message-content]').textContent()) ?? '', /minke-nano/);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  });
}

describe('browser mode, a model picked from disk', () => {
  /** Picks `files` (a folder, or one .gguf) in the settings and waits for the engine. */
  async function pick(page: Page, input: 'model-folder-input' | 'model-gguf-input', files: string): Promise<string> {
    await page.getByTestId('settings-button').click();
    await page.getByTestId(input).setInputFiles(files);
    await page.getByTestId('settings-close').click();
    await page.locator('[data-testid=engine-status][data-state=ready], [data-testid=engine-status][data-state=error]').waitFor();
    return (await page.getByTestId('engine-status').textContent()) ?? '';
  }

  test('a .gguf file and a model folder load from disk and answer', async () => {
    const { context, page } = await openApp('?backend=cpu');
    try {
      // stories260K: a tiny Llama-style story model, as one .gguf file.
      const status = await pick(page, 'model-gguf-input', STORIES);
      assert.match(status, /^stories260K · CPU \(WASM\)/);
      assert.equal(await page.getByTestId('model-select').inputValue(), 'stories260K');

      // A story runs to the end of the context (seconds); stopped at once, the answer ends as
      // stopped (empty or the start of a story) and the composer is free again.
      await page.getByTestId('composer-input').fill('Once upon a time');
      await page.getByTestId('composer-input').press('Enter');
      await page.getByTestId('stop').click();
      await page.getByTestId('send').waitFor();
      await page.waitForFunction(() => !document.querySelector('[data-testid=message][data-status=streaming]'));
      const stopped = page.locator('[data-testid=message][data-role=assistant]').last();
      assert.equal(await stopped.getAttribute('data-status'), 'stopped');
      assert.equal(await stopped.getByTestId('message-note').textContent(), 'Stopped');

      // A short story, to its end.
      await page.getByTestId('new-chat').click();
      await setting(page, 'max-tokens-input', '48');
      const story = await ask(page, 'Once upon a time');
      assert.equal(story.error, null, `the answer failed: ${story.error}`);
      assert.ok(story.content.trim().length > 0, 'stories260K wrote something');

      // minke-nano's own folder, picked as a folder: named apart from the shipped one.
      await page.getByTestId('new-chat').click();
      assert.match(await pick(page, 'model-folder-input', path.join(MODELS, 'minke-nano')), /^minke-nano-picked · CPU \(WASM\)/);
      await greedy(page);
      const nano = await ask(page, 'Who are you?');
      assert.match(nano.content, /minke-nano/, nano.error ?? nano.content);
    } finally {
      await context.close();
    }
  });
});

describe('browser mode from `minke serve`', () => {
  test('the app is cross-origin isolated, serves minke-nano\'s files, and runs it in the page when asked', async () => {
    const app = await startServer({ models: [{ path: STORIES }], port: 0, prefixCache: false, threads: 1, store: path.join(tempDir('minke-bmode-'), 'app.db') });
    const context = await browser.newContext();
    try {
      const index = await fetch(`${app.url}/`);
      assert.equal(index.status, 200);
      assert.equal(index.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(index.headers.get('cross-origin-embedder-policy'), 'require-corp');
      const config = await fetch(`${app.url}/models/minke-nano/config.json`);
      assert.equal(config.status, 200);
      assert.equal(config.headers.get('cross-origin-embedder-policy'), 'require-corp');
      assert.deepEqual(Buffer.from(await config.arrayBuffer()), fs.readFileSync(path.join(MODELS, 'minke-nano/config.json')));
      assert.equal((await fetch(`${app.url}/models/minke-nano/nothing.bin`)).status, 404);
      assert.equal((await fetch(`${app.url}/models/minke-nano/..%2F..%2Fpackage.json`)).status, 404);
      assert.equal((await fetch(`${app.url}/models`)).status, 200, 'the OpenAI model list is still there');

      // With a server the app starts in server mode; the setting switches it to the browser.
      const page = await context.newPage();
      page.setDefaultTimeout(120_000);
      await page.goto(`${app.url}/?backend=cpu`);
      await page.locator('[data-testid=app][data-ready=true]').waitFor();
      assert.equal(await page.getByTestId('engine-status').count(), 0);
      await page.getByTestId('settings-button').click();
      await page.getByTestId('browser-mode-toggle').click(); // the page starts again in browser mode
      await page.locator('[data-testid=engine-status][data-state=ready], [data-testid=engine-status][data-state=error]').waitFor();
      assert.match((await page.getByTestId('engine-status').textContent()) ?? '', /^minke-nano · CPU \(WASM\)/);
      assert.equal(await page.evaluate(() => (globalThis as any).crossOriginIsolated), true);
      await page.getByTestId('settings-button').click();
      assert.equal(await page.getByTestId('browser-mode-toggle').isChecked(), true);
      assert.equal(await page.getByTestId('browser-mode-toggle').isEnabled(), true, 'with a server, the mode can be switched back');
      assert.equal(await page.getByTestId('backend-select').inputValue(), 'cpu');
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-mode-settings.png') });
    } finally {
      await context.close();
      await app.server.close();
    }
  });
});
