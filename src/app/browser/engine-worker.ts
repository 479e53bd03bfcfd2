/**
 * minke's engine inside the browser, in a Web Worker: the same loaders, models, kernels, chat
 * formats and generation loop as the server, over a virtual file system (shims/fs.ts) of the
 * model's files — fetched from the page's origin (and kept in the Origin Private File System, so
 * the next visit reads them from disk) or picked by the user. Backend: WebGPU where the browser
 * has an adapter, else the WASM CPU kernels (one thread).
 *
 * Protocol (postMessage): see protocol.ts.
 */
import './shims/globals.js';
import { chatFormatFor } from '../../chat/format.js';
import { promptOpensReasoning, ReasoningSplitter } from '../../chat/reasoning.js';
import { generate, type GenerationResult } from '../../engine/generate.js';
import { loadModel, type LanguageModel } from '../../models/index.js';
import type { EngineReply, EngineRequest, ModelFile } from './protocol.js';
import { registerFile } from './shims/fs.js';

declare const self: { postMessage(m: EngineReply): void; onmessage: ((e: MessageEvent<EngineRequest>) => void) | null };

let model: LanguageModel | undefined;
const running = new Map<string, AbortController>();
const post = (m: EngineReply) => self.postMessage(m);

/** The kernels' .wasm files sit beside this bundle; the CPU backend reads them through the fs shim. */
let kernelsRegistered: Promise<void> | undefined;
async function registerKernels(): Promise<void> {
  for (const name of ['kernels.wasm', 'kernels-relaxed.wasm']) {
    const url = new URL(name, import.meta.url); // (a plain name: bundlers glob `./${…}` templates)
    const res = await fetch(url);
    if (res.ok) registerFile(url.href, new Uint8Array(await res.arrayBuffer()));
  }
}

/** OPFS directory for a model's cached files, or undefined where the browser has none. */
async function cacheDir(name: string): Promise<FileSystemDirectoryHandle | undefined> {
  try {
    const root = await navigator.storage.getDirectory();
    return await (await root.getDirectoryHandle('minke-models', { create: true })).getDirectoryHandle(name, { create: true });
  } catch {
    return undefined;
  }
}

/** Reads a response body, telling `onBytes` how much arrived after each chunk. */
async function readBody(res: Response, onBytes: (n: number) => void): Promise<Uint8Array<ArrayBuffer>> {
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const chunks: Uint8Array[] = [];
  const reader = res.body.getReader();
  let size = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    chunks.push(r.value);
    size += r.value.byteLength;
    onBytes(r.value.byteLength);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.byteLength; }
  return out;
}

/**
 * A model file: the user's File, or fetched — revalidated against the OPFS copy with the ETag
 * stored beside it (304: the copy is current), the copy alone when the page's origin is offline.
 * `progress.size` learns a fetched file's length from its headers, `progress.bytes` each chunk.
 */
async function fileData(f: ModelFile, dir: FileSystemDirectoryHandle | undefined,
  progress: { size(n: number): void; bytes(n: number): void }): Promise<Blob | Uint8Array> {
  if (f.file) return f.file;
  const read = (name: string) => dir ? dir.getFileHandle(name).then((h) => h.getFile()).catch(() => undefined) : Promise.resolve(undefined);
  const cached = await read(f.path);
  const etag = await (await read(`${f.path}.etag`))?.text();
  let res: Response;
  try {
    res = await fetch(f.url!, { headers: cached && etag ? { 'if-none-match': etag } : {} });
  } catch (err) {
    if (cached) return cached;
    throw err;
  }
  if (res.status === 304 && cached) return cached;
  if (!res.ok) throw new Error(`${f.url}: ${res.status} ${res.statusText}`);
  const length = Number(res.headers.get('content-length'));
  if (length > 0) progress.size(length);
  const bytes = await readBody(res, progress.bytes);
  const tag = res.headers.get('etag');
  if (dir && tag) {
    try {
      for (const [name, data] of [[f.path, bytes], [`${f.path}.etag`, tag]] as const) {
        const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
        await w.write(data);
        await w.close();
      }
    } catch { /* no room or no OPFS writes here: the model still runs from memory */ }
  }
  return bytes;
}

async function load(name: string, files: ModelFile[], backend: 'webgpu' | 'cpu'): Promise<void> {
  await model?.close();
  model = undefined;
  // Once per worker, not per model (a failed fetch is tried again on the next load).
  await (kernelsRegistered ??= registerKernels().catch((err) => { kernelsRegistered = undefined; throw err; }));
  const dir = files.some((f) => f.url) ? await cacheDir(name) : undefined;
  // Fetched files' sizes join the total as their headers arrive; the bar moves per chunk.
  let done = 0;
  let total = files.reduce((s, f) => s + (f.size ?? f.file?.size ?? 0), 0);
  for (const f of files) {
    if (f.path.includes('/') || f.path.startsWith('.')) throw new Error(`model file "${f.path}" must be a plain file name`);
    let streamed = 0;
    const data = await fileData(f, dir, {
      size: (n) => { if (f.size === undefined) total += n; },
      bytes: (n) => { streamed += n; post({ type: 'progress', done: done + streamed, total: Math.max(total, done + streamed) }); },
    });
    registerFile(`/models/${name}/${f.path}`, data);
    const size = data instanceof Blob ? data.size : data.byteLength;
    if (f.size === undefined && !f.file && streamed === 0) total += size; // from the OPFS copy
    done += size;
    post({ type: 'progress', done, total: Math.max(total, done) });
  }
  const warnings: string[] = [];
  model = await loadModel(`/models/${name}`, { backendKind: backend, threads: 1, onWarning: (m) => warnings.push(m) });
  const adapter = (model.backend as { adapterName?: string }).adapterName;
  post({ type: 'loaded', name, backend: model.backend.name, adapter, warnings, architecture: model.description.architecture });
}

async function chat(req: Extract<EngineRequest, { type: 'chat' }>): Promise<void> {
  if (!model) throw new Error('no model is loaded');
  const abort = new AbortController();
  running.set(req.id, abort);
  const format = chatFormatFor(model);
  const think = req.think ?? 'none';
  const text = format.render(req.messages.map((m) => ({ ...m })), { think });
  const prompt = format.encode(text);
  const seq = model.newSequence({ contextLength: Math.min(model.description.contextLength, prompt.length + (req.maxTokens ?? 2048)) });
  const split = new ReasoningSplitter({ startInReasoning: promptOpensReasoning(text) });
  try {
    // Thinking samples at temperature 1 (as the DeepSeek API does); else the request's.
    const sampling = { temperature: think !== 'none' ? 1 : req.temperature ?? 0.8, topP: 1, topK: 0, minP: 0, repeatPenalty: 1 };
    const it = generate(seq, model.tokenizer, prompt, { sampling, maxTokens: req.maxTokens, signal: abort.signal });
    let r: IteratorResult<string, GenerationResult>;
    while (!(r = await it.next()).done) {
      const parts = split.push(r.value);
      if (parts.reasoning || parts.answer) post({ type: 'delta', id: req.id, reasoning: parts.reasoning, content: parts.answer });
    }
    const rest = split.flush();
    if (rest.reasoning || rest.answer) post({ type: 'delta', id: req.id, reasoning: rest.reasoning, content: rest.answer });
    post({
      type: 'done', id: req.id, finishReason: r.value.finishReason,
      promptTokens: r.value.promptTokens, completionTokens: r.value.generatedTokens, tokensPerSecond: r.value.decodeTokensPerSecond,
    });
  } finally {
    seq.free();
    running.delete(req.id);
  }
}

self.onmessage = (e) => {
  const req = e.data;
  const fail = (err: unknown) => post({ type: 'error', id: 'id' in req ? req.id : undefined, message: err instanceof Error ? err.message : String(err) });
  if (req.type === 'load') load(req.name, req.files, req.backend).catch(fail);
  else if (req.type === 'chat') chat(req).catch(fail);
  else if (req.type === 'stop') running.get(req.id)?.abort();
};
