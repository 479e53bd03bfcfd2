// Browser mode: the app API without a server. Conversations are kept in this browser's
// localStorage (one record per conversation, in the shapes the server answers), replies come from
// the in-browser engine (local-engine.ts): the shipped minke-nano fetched from models/minke-nano/
// beside the page, or a model the user picked from disk.
import type { Api, SendBody } from './api.js';
import { LocalEngine, type Loaded } from './local-engine.js';
import { chatTurns, titleFrom } from '../../prompt.js';
import { pathTo } from './tree.js';
import type { AppSettings, Conversation, ConversationSummary, Message, ModelEntry, ReplyEvent } from './types.js';
import type { ModelFile } from '../../browser/protocol.js';

export type BackendChoice = 'webgpu' | 'cpu';

export const NANO = 'minke-nano';
const NANO_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const PREFIX = 'minke.local.';
const CONV = `${PREFIX}conversation.`;
const SETTINGS = `${PREFIX}settings`;
const BACKEND = 'minke.backend';

/** The engine as the app shows it. */
export interface EngineStatus {
  model: string;
  state: 'idle' | 'loading' | 'ready' | 'error';
  /** 0…1 of the model's bytes read, while loading. */
  progress: number;
  /** "minke-nano · WebGPU (adapter)" or "minke-nano · CPU (WASM)" once loaded. */
  label: string;
  backend: string;
  warnings: string[];
  error: string;
}

/** One conversation as kept in localStorage. */
interface Stored { conversation: Conversation; messages: Message[] }

/** The backend asked for: `?backend=` in the address, else the saved choice, else WebGPU. */
function backendChoice(): BackendChoice {
  const q = new URLSearchParams(location.search).get('backend');
  if (q === 'cpu' || q === 'webgpu') return q;
  return localStorage.getItem(BACKEND) === 'cpu' ? 'cpu' : 'webgpu';
}

const newId = (): string => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;

function read(id: string): Stored | undefined {
  const raw = localStorage.getItem(CONV + id);
  return raw ? (JSON.parse(raw) as Stored) : undefined;
}

function must(id: string): Stored {
  const r = read(id);
  if (!r) throw new Error(`conversation ${JSON.stringify(id)} does not exist`);
  return r;
}

/** Reads, changes and writes a conversation; a deleted one stays deleted. */
function mutate(id: string, fn: (r: Stored) => void): Stored {
  const r = must(id);
  fn(r);
  r.conversation.updated_at = Date.now();
  localStorage.setItem(CONV + id, JSON.stringify(r));
  return r;
}

function upsert(r: Stored, m: Message): void {
  const i = r.messages.findIndex((x) => x.id === m.id);
  if (i >= 0) r.messages[i] = m;
  else r.messages.push(m);
}

export class LocalApi {
  private engine: LocalEngine | undefined;
  private loaded: { model: string; backend: BackendChoice } | undefined;
  /** Free when it resolves: one load or one reply at a time (one model, one thread in the worker). */
  private lock: Promise<void> = Promise.resolve();
  private readonly picked = new Map<string, ModelFile[]>();
  /** Replies being made here (a stored 'streaming' one not among them was cut off by a reload). */
  private readonly running = new Set<string>();
  /** Replies whose chat request the engine has. */
  private readonly chatting = new Set<string>();
  private readonly stopped = new Set<string>();
  /** The backend asked for (the address's ?backend= wins over the setting until it is changed here). */
  backend: BackendChoice = backendChoice();
  status: EngineStatus = { model: '', state: 'idle', progress: 0, label: '', backend: '', warnings: [], error: '' };

  constructor(private readonly onStatus: (s: EngineStatus) => void) {}

  private setStatus(s: Partial<EngineStatus>): void {
    this.status = { ...this.status, ...s };
    this.onStatus(this.status);
  }

  // ---- models and the engine ----

  /**
   * Adds the model the user picked: one .gguf file, or a folder's files (config.json, safetensors,
   * tokenizer files). Answers its name.
   */
  addPicked(list: readonly File[]): string {
    const gguf = list.filter((f) => f.name.toLowerCase().endsWith('.gguf'));
    let name: string;
    let files: File[];
    if (gguf.length === 1 && list.length === 1) {
      name = gguf[0].name.replace(/\.gguf$/i, '');
      files = gguf;
    } else {
      // A folder: its own files (webkitRelativePath is "folder/file"), not those of subfolders.
      files = list.filter((f) => (f.webkitRelativePath || f.name).split('/').length <= 2 && !f.name.startsWith('.'));
      name = (list[0]?.webkitRelativePath || '').split('/')[0] || 'picked-model';
      if (!files.some((f) => f.name === 'config.json' || f.name.toLowerCase().endsWith('.gguf'))) {
        throw new Error(`${name}: a model folder needs config.json and .safetensors files (or pick one .gguf file)`);
      }
    }
    name = name.replace(/[^\w.+-]+/g, '_');
    if (name === NANO) name = `${NANO}-picked`;
    this.picked.set(name, files.map((file) => ({ path: file.name, file })));
    return name;
  }

  /** Waits for the engine to be free; answers the function that frees it again. */
  private acquire(): Promise<() => void> {
    const before = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((resolve) => { release = resolve; });
    return before.then(() => release);
  }

  /** Loads `model` on the chosen backend unless it already is, once no reply is being made. */
  async ensure(model: string): Promise<void> {
    const release = await this.acquire();
    try {
      await this.load(model, this.backend);
    } finally {
      release();
    }
  }

  private async load(model: string, backend: BackendChoice): Promise<void> {
    if (this.loaded?.model === model && this.loaded.backend === backend) return;
    const files: ModelFile[] | undefined = model === NANO
      ? NANO_FILES.map((f) => ({ path: f, url: `models/${NANO}/${f}` }))
      : this.picked.get(model);
    if (!files) throw new Error(`${model} is not open in this browser: pick its folder (or .gguf file) again in Settings`);
    this.loaded = undefined;
    this.setStatus({ model, state: 'loading', progress: 0, label: '', error: '', warnings: [] });
    try {
      this.engine ??= new LocalEngine();
      const info = await this.engine.load(model, files, backend, (done, total) => this.setStatus({ progress: total ? done / total : 0 }));
      this.loaded = { model, backend };
      this.setStatus({ state: 'ready', progress: 1, label: `${model} · ${backendLabel(info)}`, backend: info.backend, warnings: info.warnings });
    } catch (e) {
      this.setStatus({ state: 'error', error: e instanceof Error ? e.message : String(e) });
      throw e;
    }
  }

  setBackend(backend: BackendChoice, model: string): Promise<void> {
    localStorage.setItem(BACKEND, backend);
    this.backend = backend;
    return this.ensure(model);
  }

  // ---- the app API ----

  readonly api: Api = {
    models: async (): Promise<ModelEntry[]> => [
      { id: NANO, owned_by: 'minke' },
      ...[...this.picked.keys()].map((id) => ({ id, owned_by: 'this browser' })),
    ],
    conversations: async (q = ''): Promise<ConversationSummary[]> => {
      const needle = q.trim().toLowerCase();
      const out: ConversationSummary[] = [];
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key?.startsWith(CONV)) continue;
        const r = read(key.slice(CONV.length));
        if (!r) continue;
        const c = r.conversation;
        const hit = !needle || c.title.toLowerCase().includes(needle) || r.messages.some((m) => m.content.toLowerCase().includes(needle));
        if (hit) out.push({ id: c.id, title: c.title, model: c.model, updated_at: c.updated_at });
      }
      return out.sort((a, b) => b.updated_at - a.updated_at);
    },
    createConversation: async (body) => {
      const now = Date.now();
      const c: Conversation = {
        id: newId(), title: body.title ?? '', model: body.model || NANO, system: body.system ?? '',
        settings: { think: body.settings?.think ?? 'none', temperature: body.settings?.temperature ?? 1 },
        current_leaf_id: null, created_at: now, updated_at: now,
      };
      localStorage.setItem(CONV + c.id, JSON.stringify({ conversation: c, messages: [] } satisfies Stored));
      return c;
    },
    conversation: async (id) => {
      const r = must(id);
      // A reply this page is not generating was cut off by a reload or a closed tab.
      const cut = r.messages.filter((m) => m.status === 'streaming' && !this.running.has(m.id));
      if (cut.length) return mutate(id, (x) => { for (const m of cut) upsert(x, { ...m, status: 'interrupted' }); });
      return r;
    },
    patchConversation: async (id, patch) => {
      const r = mutate(id, (x) => {
        const c = x.conversation;
        if (patch.title !== undefined) c.title = patch.title;
        if (patch.model !== undefined) c.model = patch.model;
        if (patch.system !== undefined) c.system = patch.system;
        if (patch.settings !== undefined) c.settings = { ...c.settings, ...patch.settings };
        if (patch.current_leaf_id !== undefined) c.current_leaf_id = patch.current_leaf_id;
      });
      return r.conversation;
    },
    deleteConversation: async (id) => {
      must(id);
      for (const m of read(id)!.messages) if (this.running.has(m.id)) await this.api.stop(m.id);
      localStorage.removeItem(CONV + id);
      return { deleted: true };
    },
    send: (id, body) => this.send(id, body),
    regenerate: (id, messageId, extra) => this.regenerate(id, messageId, extra),
    stop: async (messageId) => {
      if (!this.running.has(messageId)) return { stopped: false };
      this.stopped.add(messageId);
      if (this.chatting.has(messageId)) this.engine?.stop(messageId); // else it is never started
      return { stopped: true };
    },
    settings: async (): Promise<AppSettings> => JSON.parse(localStorage.getItem(SETTINGS) ?? '{}') as AppSettings,
    putSettings: async (s) => {
      const next = { ...(JSON.parse(localStorage.getItem(SETTINGS) ?? '{}') as AppSettings), ...s };
      localStorage.setItem(SETTINGS, JSON.stringify(next));
      return next;
    },
    // No tokenizer on the page: the composer falls back to its estimate.
    tokenize: async () => { throw new Error('token counts need the server'); },
  };

  private async *send(id: string, body: SendBody): AsyncGenerator<ReplyEvent> {
    if (!body.content.trim() && !body.attachments?.length) throw new Error('content is empty: write a message or attach a file');
    const now = Date.now();
    const conv = must(id).conversation;
    const model = body.model || conv.model || NANO;
    const think = body.think ?? conv.settings.think;
    const user: Message = {
      id: newId(), conversation_id: id, parent_id: body.parent_id, role: 'user', content: body.content, reasoning: '',
      status: 'done', error: null, model, think, attachments: body.attachments ?? [], usage: null, created_at: now, updated_at: now,
    };
    mutate(id, (r) => {
      upsert(r, user);
      r.conversation.current_leaf_id = user.id;
      if (!r.conversation.title) r.conversation.title = titleFrom(user.content, user.attachments);
    });
    yield { event: 'user', message: user };
    yield* this.reply(id, user.id, body);
  }

  private async *regenerate(id: string, messageId: string, extra: Omit<SendBody, 'parent_id' | 'content' | 'attachments'>): AsyncGenerator<ReplyEvent> {
    const target = must(id).messages.find((m) => m.id === messageId);
    if (!target) throw new Error(`message ${JSON.stringify(messageId)} is not in this conversation`);
    yield* this.reply(id, target.role === 'assistant' ? target.parent_id! : target.id, extra);
  }

  /** Generates, saves and yields the answer to `userId`: assistant, reasoning/content…, done or error. */
  private async *reply(id: string, userId: string, gen: Omit<SendBody, 'parent_id' | 'content' | 'attachments'>): AsyncGenerator<ReplyEvent> {
    const r = mutate(id, (x) => {
      const c = x.conversation;
      if (gen.model) c.model = gen.model;
      c.settings = { think: gen.think ?? c.settings.think, temperature: gen.temperature ?? c.settings.temperature };
    });
    const c = r.conversation;
    const model = c.model || NANO;
    const start = Date.now();
    let m: Message = {
      id: newId(), conversation_id: id, parent_id: userId, role: 'assistant', content: '', reasoning: '', status: 'streaming',
      error: null, model, think: c.settings.think, attachments: [], usage: null, created_at: start, updated_at: start,
    };
    const save = (): void => { mutate(id, (x) => { upsert(x, m); x.conversation.current_leaf_id = m.id; }); };
    save();
    this.running.add(m.id);
    yield { event: 'assistant', message: m };

    const events: ReplyEvent[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let reasonStart = 0, reasonEnd = 0, reasonDeltas = 0, savedAt = start;
    const release = await this.acquire();
    try {
      await this.load(model, this.backend);
      if (this.stopped.has(m.id)) throw new Stopped();
      const turns = chatTurns(c.system, pathTo(new Map(must(id).messages.map((x) => [x.id, x])), userId));
      const opts = { think: c.settings.think, temperature: c.settings.temperature, ...(gen.max_tokens ? { maxTokens: gen.max_tokens } : {}) };
      this.chatting.add(m.id);
      const result = this.engine!.chat(m.id, turns, opts, (reasoning, content) => {
        if (reasoning) { reasonStart ||= Date.now(); reasonDeltas++; events.push({ event: 'reasoning', text: reasoning }); }
        if (content) { if (reasonStart) reasonEnd ||= Date.now(); events.push({ event: 'content', text: content }); }
        wake?.();
      }).finally(() => { finished = true; wake?.(); });
      result.catch(() => undefined); // awaited below; this keeps an early way out (a deleted chat) quiet
      for (;;) {
        for (let ev = events.shift(); ev; ev = events.shift()) {
          if (ev.event === 'reasoning') m = { ...m, reasoning: m.reasoning + ev.text };
          if (ev.event === 'content') m = { ...m, content: m.content + ev.text };
          yield ev;
        }
        if (Date.now() - savedAt > 1000) { savedAt = Date.now(); save(); } // a reload keeps what was shown
        if (finished) break;
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
      }
      const done = await result;
      const end = Date.now();
      // Reasoning tokens are counted as deltas: the worker sends about one a token.
      m = {
        ...m, status: done.finishReason === 'aborted' || this.stopped.has(m.id) ? 'stopped' : 'done', updated_at: end,
        usage: {
          prompt_tokens: done.promptTokens, completion_tokens: done.completionTokens, cached_tokens: 0, reasoning_tokens: reasonDeltas,
          reasoning_seconds: reasonStart ? ((reasonEnd || end) - reasonStart) / 1000 : 0, seconds: (end - start) / 1000,
          tokens_per_second: done.tokensPerSecond,
        },
      };
      save();
      yield { event: 'done', message: m };
    } catch (e) {
      if (e instanceof Stopped) {
        m = { ...m, status: 'stopped', updated_at: Date.now() };
        if (read(id)) save();
        yield { event: 'done', message: m };
        return;
      }
      m = { ...m, status: 'error', error: e instanceof Error ? e.message : String(e), updated_at: Date.now() };
      if (read(id)) save();
      yield { event: 'error', message: m };
    } finally {
      release();
      this.running.delete(m.id);
      this.chatting.delete(m.id);
      this.stopped.delete(m.id);
    }
  }
}

/** A reply stopped before the engine started it. */
class Stopped extends Error {}

function backendLabel(info: Loaded): string {
  if (info.backend === 'webgpu') return `WebGPU${info.adapter ? ` (${info.adapter})` : ''}`;
  return 'CPU (WASM)';
}
