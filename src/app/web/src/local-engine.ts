// The page's side of the in-browser engine (src/app/browser/engine-worker.ts): load a model,
// stream a chat reply, stop one. One worker per page; requests are answered in order.
import type { ChatTurn, EngineReply, EngineRequest, ModelFile, ThinkMode } from '../../browser/protocol.js';

export type Loaded = Extract<EngineReply, { type: 'loaded' }>;
export type Done = Extract<EngineReply, { type: 'done' }>;

export class LocalEngine {
  private readonly worker = new Worker(new URL('../../browser/engine-worker.ts', import.meta.url), { type: 'module' });
  private listeners = new Set<(m: EngineReply) => void>();

  constructor() {
    this.worker.onmessage = (e: MessageEvent<EngineReply>) => { for (const l of [...this.listeners]) l(e.data); };
  }

  private send(m: EngineRequest): void { this.worker.postMessage(m); }

  /** Resolves with the first message `pick` returns a value for; an error message rejects. */
  private until<T>(pick: (m: EngineReply) => T | undefined, id?: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const l = (m: EngineReply) => {
        if (m.type === 'error' && (m.id === undefined || m.id === id)) { this.listeners.delete(l); reject(new Error(m.message)); return; }
        const v = pick(m);
        if (v !== undefined) { this.listeners.delete(l); resolve(v); }
      };
      this.listeners.add(l);
    });
  }

  load(name: string, files: ModelFile[], backend: 'webgpu' | 'cpu', onProgress?: (done: number, total: number) => void): Promise<Loaded> {
    const progress = (m: EngineReply) => { if (m.type === 'progress') onProgress?.(m.done, m.total); };
    this.listeners.add(progress);
    // The worker resolves URLs against its own (assets/); the page's base is what callers mean.
    const absolute = files.map((f) => (f.url ? { ...f, url: new URL(f.url, document.baseURI).href } : f));
    this.send({ type: 'load', name, files: absolute, backend });
    return this.until((m) => (m.type === 'loaded' ? m : undefined)).finally(() => this.listeners.delete(progress));
  }

  chat(id: string, messages: ChatTurn[], opts: { think?: ThinkMode; temperature?: number; maxTokens?: number },
    onDelta: (reasoning: string, content: string) => void): Promise<Done> {
    const delta = (m: EngineReply) => { if (m.type === 'delta' && m.id === id) onDelta(m.reasoning, m.content); };
    this.listeners.add(delta);
    this.send({ type: 'chat', id, messages, ...opts });
    return this.until((m) => (m.type === 'done' && m.id === id ? m : undefined), id).finally(() => this.listeners.delete(delta));
  }

  stop(id: string): void { this.send({ type: 'stop', id }); }
}
