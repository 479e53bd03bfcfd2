// The web app end to end: a real minke server (stories260K, a tiny DeepSeek-V4 that reasons, and an
// upstream model played by a scripted OpenAI-style server) with the app's SQLite store, driven in
// headless Debian chromium through playwright-core. Every main state is saved as a screenshot under
// test-artifacts/app/. Needs `npm run build` (dist/app/web), which `npm test` runs first.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { startServer } from '../../src/server/index.js';
import type { ApiServer } from '../../src/server/http.js';
import { STORIES, tinyV4 } from '../server/helpers.js';

// The page's globals, for the functions playwright runs in the browser (this build has no DOM types).
declare const window: any, document: any, navigator: any, localStorage: any, MutationObserver: any;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const WEB = path.join(REPO, 'dist/app/web/index.html');
const ARTIFACTS = path.join(REPO, 'test-artifacts/app');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const API_KEY = 'sk-minke-browser-test';

// ---- the scripted upstream: reasoning when asked, then markdown with code and math ----

const CODE = 'function add(a: number, b: number): number {\n  return a + b; // sum\n}';
const UPSTREAM_ANSWER = `Here is the function:\n\n\`\`\`ts\n${CODE}\n\`\`\`\n\nAnd the identity $e^{i\\pi} + 1 = 0$.\n\n<img src="nowhere.png" onerror="window.__xss = 1">`;
const UPSTREAM_REASONING = ['The user wants ', 'a small function.'];
/** "Count SLOWLY" gets 1 2 3 … SLOW_COUNT, 100 ms apart: an answer that is surely still streaming. */
const SLOW_COUNT = 300;
const UPSTREAM_USAGE = { prompt_tokens: 31, completion_tokens: 57, prompt_cache_hit_tokens: 12, completion_tokens_details: { reasoning_tokens: 3 } };

interface Upstream { url: string; requests: any[]; close(): Promise<void> }

async function scriptedUpstream(): Promise<Upstream> {
  const requests: any[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => { raw += d; });
    req.on('end', async () => {
      const body = JSON.parse(raw);
      requests.push(body);
      const last = String(body.messages.at(-1)?.content ?? '');
      if (last.includes('PLEASE FAIL')) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'the scripted upstream refuses on purpose', type: 'invalid_request_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, extra: object = {}): void => {
        res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`);
      };
      const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 15));
      if (body.thinking?.type === 'enabled') for (const t of UPSTREAM_REASONING) { chunk({ reasoning_content: t }); await pause(); }
      const slow = last.includes('SLOWLY');
      const pieces = slow ? Array.from({ length: SLOW_COUNT }, (_, i) => `${i + 1} `) : UPSTREAM_ANSWER.match(/[\s\S]{1,12}/g)!;
      for (const piece of pieces) {
        if (res.destroyed) return; // the server stopped listening (a stop)
        chunk({ content: piece });
        await (slow ? new Promise((r) => setTimeout(r, 100)) : pause());
      }
      res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: UPSTREAM_USAGE })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

// ---- the server, the browser, and the page helpers ----

let tmp: string;
let upstream: Upstream;
let app: { url: string; server: ApiServer };
let context: BrowserContext;
let page: Page;

before(async () => {
  assert.ok(fs.existsSync(WEB), `${WEB} is missing: run \`npm run build\` first (it builds the web app)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-browser-'));
  upstream = await scriptedUpstream();
  app = await startServer({
    models: [{ path: STORIES }, { name: 'v4', path: tinyV4() }, { name: 'cloud', upstream: upstream.url }],
    port: 0, prefixCache: false, threads: 1, store: path.join(tmp, 'app.db'),
  });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'],
  });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(`${app.url}/`);
  await page.locator('[data-testid=app][data-ready=true]').waitFor();
});

after(async () => {
  await context?.close();
  await app?.server.close();
  await upstream?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
const messages = (role?: 'user' | 'assistant'): Locator => page.locator(`[data-testid=message]${role ? `[data-role=${role}]` : ''}`);
const lastAnswer = (): Locator => messages('assistant').last();
const currentId = (): string => decodeURIComponent(new URL(page.url()).hash.replace(/^#\/c\//, ''));

async function api(method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(`${app.url}${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  assert.equal(res.status, 200, `${method} ${p}: ${res.status}`);
  return res.json();
}

/** Runs `action`, waits for the reply it starts to be read to its end and the composer to be idle. */
async function roundTrip(action: () => Promise<void>): Promise<void> {
  const response = page.waitForResponse((r) => r.request().method() === 'POST' && /\/(messages|regenerate)$/.test(new URL(r.url()).pathname));
  await action();
  await (await response).finished();
  await page.getByTestId('send').waitFor();
  await page.waitForFunction(() => !document.querySelector('[data-testid=message][data-status=streaming]'));
}

/** Retries `check` until it passes or 10 s go by (for what the app saves in the background). */
async function eventually(check: () => Promise<void>): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** From now on, records what the newest answer shows each time it changes while it streams. */
async function watchStreaming(): Promise<void> {
  await page.evaluate(() => {
    window.__seen = [];
    if (window.__watching) return;
    window.__watching = true;
    new MutationObserver(() => {
      const m = [...document.querySelectorAll('[data-testid=message][data-role=assistant]')].at(-1);
      if (m?.dataset.status !== 'streaming') return;
      const text = (id: string): string => m.querySelector(`[data-testid=${id}]`)?.textContent ?? '';
      const view = { reasoning: text('reasoning-content'), content: text('message-content') };
      const last = window.__seen.at(-1);
      if (!last || last.reasoning !== view.reasoning || last.content !== view.content) window.__seen.push(view);
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function seenStreaming(): Promise<{ reasoning: string; content: string }[]> {
  return page.evaluate(() => window.__seen);
}

async function setMaxTokens(n: number): Promise<void> {
  await page.getByTestId('settings-button').click();
  const saved = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/app/api/settings'));
  await page.getByTestId('max-tokens-input').fill(String(n));
  await page.getByTestId('max-tokens-input').blur();
  await saved;
  await page.getByTestId('settings-close').click();
}

async function pickModel(name: string): Promise<void> {
  await page.getByTestId('model-select').selectOption(name);
  await page.waitForFunction((n) => document.querySelector('[data-testid=model-select]').value === n, name);
}

async function newChat(model: string): Promise<void> {
  await page.getByTestId('new-chat').click();
  await page.getByTestId('empty-state').waitFor();
  await pickModel(model);
}

async function clipboard(): Promise<string> {
  return page.evaluate(() => navigator.clipboard.readText());
}

describe('the minke web app in chromium', { timeout: 240_000 }, () => {
  let storyId = '';
  let firstAnswer = '';

  test('a message streams in (Shift+Enter is a newline, Enter sends)', async () => {
    await setMaxTokens(200);
    await newChat('stories260K');
    await watchStreaming();
    const input = page.getByTestId('composer-input');
    await input.fill('Once upon a time');
    await input.press('Shift+Enter');
    await input.pressSequentially('there was a dog');
    assert.equal(await input.inputValue(), 'Once upon a time\nthere was a dog', 'Shift+Enter adds a line, it does not send');
    assert.equal(await messages().count(), 0);
    await roundTrip(() => input.press('Enter'));
    await shot('01-streamed');

    assert.equal(await input.inputValue(), '', 'the box is cleared after sending');
    assert.equal(await messages('user').getByTestId('message-content').textContent(), 'Once upon a time\nthere was a dog');
    const answer = lastAnswer();
    assert.equal(await answer.getAttribute('data-status'), 'done');
    firstAnswer = (await answer.getByTestId('message-content').textContent())!.trim();
    assert.ok(firstAnswer.length > 50, 'stories260K wrote a story');
    const seen = (await seenStreaming()).map((v) => v.content).filter((t) => t);
    assert.ok(seen.length >= 2, `the answer was seen growing while it streamed (${seen.length} partial texts)`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].length > seen[i - 1].length, 'each partial text is longer than the one before');
    assert.ok(seen[0].length < firstAnswer.length);

    storyId = currentId();
    const stored = await api('GET', `/app/api/conversations/${storyId}`);
    const reply = stored.messages.find((m: any) => m.role === 'assistant');
    assert.equal(reply.usage.completion_tokens, 200, 'the max tokens setting reached the server');
    const stats = await answer.getByTestId('message-stats').textContent();
    assert.match(stats!, new RegExp(`^200 tokens · [\\d.]+ tok/s · prompt ${reply.usage.prompt_tokens}, ${reply.usage.cached_tokens} cached$`));
    await page.getByTestId('conversation-item').filter({ hasText: 'Once upon a time' }).waitFor();
    assert.equal(await page.getByTestId('chat-title').textContent(), stored.conversation.title);
  });

  test('copy a message', async () => {
    await messages('user').getByTestId('copy-message').click();
    assert.equal(await clipboard(), 'Once upon a time\nthere was a dog');
  });

  test('regenerate: a second answer, ‹ 1/2 › switches between them', async () => {
    await roundTrip(() => lastAnswer().getByTestId('regenerate').click());
    const answer = lastAnswer();
    assert.equal(await answer.getByTestId('branch-label').textContent(), '2/2');
    assert.equal(await answer.getAttribute('data-status'), 'done');
    await shot('02-regenerated');
    await answer.getByTestId('branch-prev').click();
    await page.getByTestId('branch-label').filter({ hasText: '1/2' }).waitFor();
    assert.equal((await lastAnswer().getByTestId('message-content').textContent())!.trim(), firstAnswer, 'the first answer is kept');
    await lastAnswer().getByTestId('branch-next').click();
    await page.getByTestId('branch-label').filter({ hasText: '2/2' }).waitFor();
  });

  test('edit a question and resend: both branches kept, switching back shows the old exchange', async () => {
    await messages('user').getByTestId('edit-message').click();
    const edit = page.getByTestId('edit-input');
    assert.equal(await edit.inputValue(), 'Once upon a time\nthere was a dog');
    await edit.fill('Lily had a red ball');
    await roundTrip(() => page.getByTestId('edit-send').click());
    const question = messages('user');
    assert.equal(await question.getByTestId('message-content').textContent(), 'Lily had a red ball');
    assert.equal(await question.getByTestId('branch-label').textContent(), '2/2');
    assert.equal(await lastAnswer().getByTestId('branch-nav').count(), 0, 'the new question has one answer so far');
    await shot('03-edited');

    await question.getByTestId('branch-prev').click();
    await page.locator('[data-testid=message][data-role=user] [data-testid=branch-label]', { hasText: '1/2' }).waitFor();
    assert.equal(await messages('user').getByTestId('message-content').textContent(), 'Once upon a time\nthere was a dog');
    assert.equal(await lastAnswer().getByTestId('branch-label').textContent(), '2/2', 'the old question keeps its two answers');
    await shot('04-branch-switched');
    // The branch on screen is saved: the server's current leaf is the answer shown.
    const shownId = await lastAnswer().getAttribute('data-id');
    await eventually(async () => {
      const stored = await api('GET', `/app/api/conversations/${storyId}`);
      assert.equal(stored.conversation.current_leaf_id, shownId);
      assert.equal(stored.messages.filter((m: any) => m.role === 'user').length, 2);
    });
  });

  test('reload the page: the conversation and its branch are there; search, rename', async () => {
    const before = await messages().evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    await page.reload();
    await page.locator('[data-testid=app][data-ready=true]').waitFor();
    await messages().first().waitFor();
    assert.deepEqual(await messages().evaluateAll((els) => els.map((e) => e.getAttribute('data-id'))), before);
    await shot('05-reloaded');

    await page.getByTestId('new-chat').click();
    await page.getByTestId('empty-state').waitFor();
    await page.getByTestId('conversation-item').filter({ hasText: 'Once upon a time' }).getByTestId('conversation-title').click();
    await messages().first().waitFor();
    assert.equal(currentId(), storyId);

    await page.getByTestId('search-input').fill('zebra-that-is-nowhere');
    await page.getByText('Nothing found').waitFor();
    await page.getByTestId('search-input').fill('Once upon');
    await page.getByTestId('conversation-item').filter({ hasText: 'Once upon a time' }).waitFor();
    await page.getByTestId('search-input').fill('');

    const item = page.locator(`[data-testid=conversation-item][data-id="${storyId}"]`);
    await item.hover();
    await item.getByTestId('rename-button').click();
    await item.getByTestId('rename-input').fill('The dog story');
    await item.getByTestId('rename-input').press('Enter');
    await item.getByTestId('conversation-title').filter({ hasText: 'The dog story' }).waitFor();
    await page.getByTestId('chat-title').filter({ hasText: 'The dog story' }).waitFor();
    assert.equal((await api('GET', `/app/api/conversations/${storyId}`)).conversation.title, 'The dog story');
  });

  test('DeepThink on the V4 model: reasoning streams into a block with its time and tokens; without it, a direct answer', async () => {
    await setMaxTokens(8); // the tiny V4 has the real 129K vocabulary: a few tokens a second here
    await newChat('v4');
    await page.getByTestId('think-toggle').click();
    await page.locator('[data-testid=think-toggle][aria-pressed=true]').waitFor();
    await page.getByTestId('effort-max').click();
    await page.locator('[data-testid=effort-max][aria-pressed=true]').waitFor();
    await page.getByTestId('composer-input').fill('Hi');
    await watchStreaming();
    await roundTrip(() => page.getByTestId('composer-input').press('Enter'));
    await shot('06-deepthink');
    const views = await seenStreaming();
    assert.ok(views.some((v) => v.reasoning.trim() && !v.content), 'the reasoning showed while the answer was still being generated');
    const id = currentId();
    const stored = await api('GET', `/app/api/conversations/${id}`);
    const question = stored.messages.find((m: any) => m.role === 'user');
    const reply = stored.messages.find((m: any) => m.role === 'assistant');
    assert.equal(question.think, 'max', 'the chosen effort went with the message');
    assert.ok(reply.reasoning.length > 0 && reply.usage.reasoning_tokens > 0, 'the model reasoned');
    const answer = lastAnswer();
    assert.ok((await answer.getByTestId('reasoning-content').textContent())!.trim().length > 0, 'the reasoning is shown');
    assert.match((await answer.getByTestId('reasoning-summary').textContent())!, new RegExp(`^Thought for [\\d.]+ s · ${reply.usage.reasoning_tokens} tokens$`));
    await answer.getByTestId('reasoning-toggle').click();
    assert.equal(await answer.getByTestId('reasoning-content').count(), 0, 'the block folds');
    await answer.getByTestId('reasoning-toggle').click();
    await answer.getByTestId('reasoning-content').waitFor();

    await page.getByTestId('think-toggle').click();
    await page.locator('[data-testid=think-toggle][aria-pressed=false]').waitFor();
    await page.getByTestId('composer-input').fill('Hello');
    await roundTrip(() => page.getByTestId('composer-input').press('Enter'));
    const direct = lastAnswer();
    assert.equal(await direct.getByTestId('reasoning').count(), 0, 'no reasoning block without DeepThink');
    assert.ok((await direct.getByTestId('message-content').textContent())!.trim().length > 0, 'an answer straight away');
    const again = await api('GET', `/app/api/conversations/${id}`);
    const second = again.messages.find((m: any) => m.id === (again.conversation.current_leaf_id));
    assert.equal(second.reasoning, '');
    assert.equal(second.think, 'none');
  });

  test('stop mid-answer: the text so far stays, marked stopped', async () => {
    // stories260K with room for its whole context (about 2 s of text here); stopped at its first words.
    await setMaxTokens(2000);
    await newChat('stories260K');
    await page.getByTestId('composer-input').fill('Once');
    await roundTrip(async () => {
      await page.getByTestId('composer-input').press('Enter');
      await page.locator('[data-testid=message][data-status=streaming] [data-testid=message-content]').filter({ hasText: /\S/ }).waitFor();
      await page.getByTestId('stop').click();
    });
    const answer = lastAnswer();
    assert.equal(await answer.getAttribute('data-status'), 'stopped');
    assert.equal(await answer.getByTestId('message-note').textContent(), 'Stopped');
    await shot('07-stopped');
    const stored = await api('GET', `/app/api/conversations/${currentId()}`);
    const reply = stored.messages.find((m: any) => m.id === stored.conversation.current_leaf_id);
    assert.equal(reply.status, 'stopped');
    assert.ok(reply.content.length > 0, 'the partial answer is kept');
    assert.ok(reply.usage.completion_tokens < 2000, `stopped early (${reply.usage.completion_tokens} of 2000 tokens)`);
    assert.equal((await answer.getByTestId('message-content').textContent())!.trim(), reply.content.trim(), 'the page shows what was kept');
  });

  test('attach a text file (upstream model): its token count is shown and its content reaches the prompt', async () => {
    await newChat('cloud');
    const text = 'Minke whales are the smallest baleen whales.\nThey live in every ocean.\n';
    await page.getByTestId('attach-input').setInputFiles({ name: 'whales.txt', mimeType: 'text/plain', buffer: Buffer.from(text) });
    const tokens = page.getByTestId('attachment-tokens');
    await tokens.filter({ hasText: /^\d+ tokens$/ }).waitFor();
    const counted = (await api('POST', '/app/api/tokenize', { model: 'cloud', text })).tokens;
    assert.ok(counted > 5);
    assert.equal(await tokens.textContent(), `${counted} tokens`);
    await shot('08-attached');
    await page.getByTestId('composer-input').fill('What is in the file?');
    await roundTrip(() => page.getByTestId('send').click());
    const prompt = upstream.requests.at(-1).messages.at(-1);
    assert.equal(prompt.role, 'user');
    assert.ok(prompt.content.includes(text.trim()), 'the file content is in the prompt the model got');
    assert.ok(prompt.content.includes('What is in the file?'));
    assert.equal(await messages('user').getByTestId('message-attachment').textContent(), `whales.txt · ${counted} tokens`);
  });

  test('an upstream answer with DeepThink: reasoning and answer; markdown, KaTeX, sanitised HTML, code block copy', async () => {
    await page.getByTestId('think-toggle').click();
    await page.locator('[data-testid=think-toggle][aria-pressed=true]').waitFor();
    await page.getByTestId('composer-input').fill('Write an add function');
    await roundTrip(() => page.getByTestId('composer-input').press('Enter'));
    const answer = lastAnswer();
    assert.equal(await answer.getByTestId('reasoning-content').textContent().then((t) => t!.trim()), UPSTREAM_REASONING.join(''));
    assert.match((await answer.getByTestId('reasoning-summary').textContent())!, /^Thought for [\d.]+ s · 3 tokens$/);
    assert.equal(await answer.locator('[data-testid=message-content] .katex').count(), 1, 'the formula is typeset');
    assert.equal(await answer.locator('[data-testid=message-content] pre code.hljs span').count() > 0, true, 'the code is highlighted');
    assert.equal(await page.locator('[onerror]').count(), 0, 'model HTML is sanitised');
    assert.equal(await page.evaluate(() => (window as any).__xss), undefined);
    assert.match((await answer.getByTestId('message-stats').textContent())!, /^57 tokens · .* · prompt 31, 12 cached$/);
    await answer.getByTestId('code-copy').click();
    await answer.getByTestId('code-copy').filter({ hasText: 'Copied' }).waitFor();
    assert.equal(await clipboard(), CODE);
    await shot('09-markdown-code-math');
    assert.equal(upstream.requests.at(-1).thinking.type, 'enabled');
  });

  test('an error is shown plainly in the chat', async () => {
    await page.getByTestId('think-toggle').click();
    await page.locator('[data-testid=think-toggle][aria-pressed=false]').waitFor();
    await page.getByTestId('composer-input').fill('PLEASE FAIL');
    await roundTrip(() => page.getByTestId('composer-input').press('Enter'));
    const answer = lastAnswer();
    assert.equal(await answer.getAttribute('data-status'), 'error');
    assert.match((await answer.getByTestId('message-error').textContent())!, /the scripted upstream refuses on purpose/);
    await shot('10-error');
  });

  test('stop an upstream answer mid-stream', async () => {
    await page.getByTestId('composer-input').fill('Count SLOWLY');
    await roundTrip(async () => {
      await page.getByTestId('composer-input').press('Enter');
      await page.locator('[data-testid=message][data-status=streaming] [data-testid=message-content]').filter({ hasText: /\S/ }).waitFor();
      await shot('11-streaming');
      await page.getByTestId('stop').click();
    });
    const answer = lastAnswer();
    assert.equal(await answer.getAttribute('data-status'), 'stopped');
    const shown = (await answer.getByTestId('message-content').textContent())!;
    assert.match(shown, /^1 2 /);
    assert.ok(!shown.includes(String(SLOW_COUNT)), 'stopped before the end');
  });

  test('light and dark: the toggle is saved in the settings', async () => {
    const theme = (): Promise<string | null> => page.evaluate(() => document.documentElement.getAttribute('data-theme'));
    await page.getByTestId('theme-toggle').click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
    await page.getByTestId('theme-toggle').click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await eventually(async () => assert.equal((await api('GET', '/app/api/settings')).theme, 'dark'));
    await page.reload();
    await page.locator('[data-testid=app][data-ready=true]').waitFor();
    assert.equal(await theme(), 'dark');
    await messages().first().waitFor();
    await shot('12-dark');
    await page.getByTestId('theme-toggle').click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === undefined);
  });

  test('phone width: the sidebar slides over the chat and closes on a pick', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${app.url}/#/c/${storyId}`);
    await messages().first().waitFor();
    const sidebar = page.getByTestId('sidebar');
    const offScreen = async (): Promise<boolean> => { const b = await sidebar.boundingBox(); return !b || b.x + b.width <= 0; };
    await page.waitForFunction(() => { const b = document.querySelector('[data-testid=sidebar]').getBoundingClientRect(); return b.right <= 0; });
    assert.ok(await offScreen(), 'the sidebar is hidden at phone width');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing is wider than the phone');
    await shot('13-phone');
    await page.getByTestId('sidebar-toggle').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=sidebar]').getBoundingClientRect().left >= 0);
    await shot('14-phone-sidebar');
    await page.getByTestId('conversation-title').filter({ hasText: /^Hi$/ }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=sidebar]').getBoundingClientRect().right <= 0);
    await lastAnswer().waitFor();
    assert.notEqual(currentId(), storyId);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('delete a conversation', async () => {
    const item = page.locator(`[data-testid=conversation-item][data-id="${storyId}"]`);
    await item.hover();
    await item.getByTestId('delete-button').click();
    await item.getByTestId('delete-confirm').click();
    await item.waitFor({ state: 'detached' });
    const list = await api('GET', '/app/api/conversations');
    assert.ok(!list.some((c: any) => c.id === storyId), 'gone from the server too');
  });

  test('a server with API keys: the key is asked once and kept', async () => {
    const locked = await startServer({ models: [{ path: STORIES }], port: 0, prefixCache: false, threads: 1, store: path.join(tmp, 'locked.db'), apiKeys: [API_KEY] });
    try {
      await page.goto(`${locked.url}/`);
      await page.getByTestId('key-dialog').waitFor();
      await shot('15-api-key');
      await page.getByTestId('api-key-input').fill('sk-wrong');
      await page.getByTestId('api-key-save').click();
      await page.getByTestId('api-key-refused').waitFor();
      await page.getByTestId('api-key-input').fill(API_KEY);
      await page.getByTestId('api-key-save').click();
      await page.getByTestId('key-dialog').waitFor({ state: 'detached' });
      await page.waitForFunction(() => document.querySelector('[data-testid=model-select]').value === 'stories260K');
      await page.reload();
      await page.locator('[data-testid=app][data-ready=true]').waitFor();
      assert.equal(await page.getByTestId('key-dialog').count(), 0, 'not asked again');
      assert.equal(await page.evaluate(() => localStorage.getItem('minke.apiKey')), API_KEY);
    } finally {
      await locked.server.close();
    }
  });
});
