// llama.cpp compiled to WebAssembly (@wllama/wllama 3.13.0) under Node 20, as a runner of
// `npm run bench -- models` (protocol in runner.mjs).
//
// wllama is written for browsers. Node 20's V8 has neither Memory64 nor JSPI, so only its "compat"
// build (wasm32 + Asyncify, @wllama/wllama-compat) loads. What the browser would provide is
// supplied here: `self`, `location` and `navigator`, and a `Worker` that accepts the blob: URLs
// wllama (and Emscripten, for its pthreads) start workers from. Every such worker runs
// `workerBoot` first; the script behind the blob: URL reaches it as its first message, and messages
// that arrive earlier are replayed once that script has run.
// Throughput is llama.cpp's own (the server-style `timings` of each completion).
import { resolveObjectURL } from 'node:buffer';
import { openAsBlob, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { basename, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker as NodeWorker } from 'node:worker_threads';
import { serve } from './runner.mjs';

const compatDir = dirname(createRequire(import.meta.url).resolve('@wllama/wllama-compat/package.json')) + '/wasm';

/** Runs first in every worker (as source text, so it may use only what it is given). */
function workerBoot(env) {
  const nodeRequire = require;
  const wt = nodeRequire('node:worker_threads');
  const { resolveObjectURL } = nodeRequire('node:buffer');
  Object.assign(globalThis, { self: globalThis, __dirname: env.dir, __filename: env.dir + '/wllama.js', location: { href: env.href } });
  // wllama's code patches WorkerNavigator.prototype (to hide WebGPU), so navigator is an instance of it.
  globalThis.WorkerNavigator = class WorkerNavigator {};
  Object.assign(globalThis.WorkerNavigator.prototype, { hardwareConcurrency: env.cores, userAgent: 'Node.js' });
  globalThis.navigator = new globalThis.WorkerNavigator();
  const boot = `(${workerBoot})(${JSON.stringify(env)})`;
  class BlobURLWorker extends wt.Worker {
    constructor(url, opts = {}) {
      if (!String(url).startsWith('blob:')) { super(url, opts); return; }
      super(boot, { ...opts, eval: true });
      resolveObjectURL(String(url)).text().then((code) => this.postMessage({ bootCode: code }));
    }
  }
  const patched = { ...wt, Worker: BlobURLWorker };
  globalThis.require = (m) => (m === 'worker_threads' || m === 'node:worker_threads' ? patched : nodeRequire(m));
  const port = wt.parentPort;
  // Emscripten's pthread glue listens on parentPort itself (its Node code path); wllama's own
  // worker is browser code: `onmessage` and `postMessage` globals.
  const browserStyle = wt.workerData !== 'em-pthread';
  if (browserStyle) globalThis.postMessage = (m, transfer) => port.postMessage(m, transfer);
  const early = [];
  let started = false;
  port.on('message', (m) => {
    if (!started) {
      if (!(m && typeof m.bootCode === 'string')) { early.push(m); return; }
      started = true;
      (0, eval)(m.bootCode); // global scope, like a classic worker script
      for (const e of early) port.emit('message', e);
      return;
    }
    if (browserStyle) globalThis.onmessage?.({ data: m });
  });
}

const cores = availableParallelism();
const env = { dir: compatDir, href: pathToFileURL(compatDir + '/').href, cores };

class BrowserWorker {
  constructor(url) {
    this.onmessage = null;
    this.onerror = null;
    this.w = new NodeWorker(`(${workerBoot})(${JSON.stringify(env)})`, { eval: true });
    this.w.on('message', (data) => this.onmessage?.({ data }));
    this.w.on('error', (e) => this.onerror?.(e));
    resolveObjectURL(String(url)).text().then((code) => this.w.postMessage({ bootCode: code }));
  }
  postMessage(m, transfer) { this.w.postMessage(m, transfer); }
  terminate() { this.w.terminate(); }
}
Object.assign(globalThis, { self: globalThis, location: { href: env.href }, Worker: BrowserWorker });
globalThis.navigator ??= { hardwareConcurrency: cores, userAgent: 'Node.js' };

const { Wllama } = await import('@wllama/wllama');
let wllama, promptText;

/**
 * A text prompt that tokenises to `n` tokens (BOS included), or as near as whole words get: wllama
 * 3.13 fails on a prompt of token ids ("Invalid typed array length") and has no tokenizer call, so
 * the word count is fitted from the prompt lengths llama.cpp reports (these 1-token completions
 * also warm it up).
 */
async function textOfLength(n) {
  const words = 'the cat sat on a mat and saw a big red dog run far away from home'.split(' ');
  const text = (k) => Array.from({ length: k }, (_, i) => words[i % words.length]).join(' ');
  let k = n - 1;
  for (let tries = 0; tries < 4; tries++) {
    const r = await wllama.createCompletion({ prompt: text(k), max_tokens: 1, temperature: 0, ignore_eos: true, cache_prompt: false });
    const got = r.timings.prompt_n;
    if (got === n) break;
    k = Math.max(1, Math.round((k * (n - 1)) / Math.max(1, got - 1)));
  }
  return text(k);
}

await serve({
  async load(cfg) {
    if (statSync(cfg.model).size > 2 ** 31) throw new Error(`${basename(cfg.model)} is over 2 GiB, more than wllama's wasm32 build can hold`);
    const quiet = { debug() {}, log() {}, info() {}, warn: console.error, error: console.error };
    // No download cache or model manager: their browser storage does not exist in Node.
    wllama = new Wllama({ default: compatDir + '/wllama.wasm' }, { logger: quiet, suppressNativeLog: true, cacheManager: {}, modelManager: {} });
    wllama.setCompat({ wasm: compatDir + '/wllama.wasm', worker: { code: readFileSync(compatDir + '/wllama.js', 'utf8') } });
    const file = new File([await openAsBlob(cfg.model)], basename(cfg.model));
    await wllama.loadModel([file], { n_ctx: Math.max(512, cfg.prompt.length + cfg.gen + 16), n_batch: 512, n_threads: cfg.threads, n_gpu_layers: 0 });
    promptText = await textOfLength(cfg.prompt.length);
    return {
      engine: `@wllama/wllama 3.13.0 compat (wasm32, llama.cpp ${Wllama.getLibllamaVersion()}) in Node ${process.version}`,
      threads: wllama.getNumThreads(), multithread: wllama.isMultithread(),
    };
  },
  async rep(cfg) {
    const r = await wllama.createCompletion({ prompt: promptText, max_tokens: cfg.gen, temperature: 0, ignore_eos: true, cache_prompt: false });
    const t = r.timings;
    return { prefill_tps: +t.prompt_per_second.toFixed(2), decode_tps: +t.predicted_per_second.toFixed(2), prompt_n: t.prompt_n, predicted_n: t.predicted_n };
  },
  async close() {
    await wllama?.exit();
  },
});
