// The app's state and every action on it. Components read `store.state` and call the actions;
// changes are announced to subscribers at most once per frame-ish tick so a fast stream does not
// re-render per token.
import { AuthError, api, apiKey, serverApi, useApi, type SendBody } from './api.js';
import { LocalApi, type BackendChoice, type EngineStatus } from './local-api.js';
import { newestLeaf, siblingsOf } from './tree.js';
import type {
  AppSettings, Attachment, Conversation, ConversationSettings, ConversationSummary, Message, ModelEntry, ReplyEvent, Think,
} from './types.js';

export interface Chat {
  conversation: Conversation;
  messages: Map<string, Message>;
}

/** What a new chat starts with, and what the composer's toggles change. */
export interface ChatParams {
  model: string;
  system: string;
  settings: ConversationSettings;
  /** Longest answer (an app setting); absent = the server's default. */
  maxTokens?: number;
}

/** Live timing of a reasoning block while it streams (the final numbers come in `usage`). */
export interface ThinkClock {
  start: number;
  end?: number;
}

/** Browser mode: the engine runs in this page and conversations stay in this browser. */
export interface BrowserMode {
  /** The server's API did not answer (plain static hosting): browser mode is the only mode. */
  noServer: boolean;
  backend: BackendChoice;
  engine: EngineStatus;
}

export interface State {
  ready: boolean;
  /** The server wants an API key (a 401 came back). */
  needKey: boolean;
  list: ConversationSummary[];
  query: string;
  models: ModelEntry[];
  settings: AppSettings;
  /** The conversation on screen; null = a new chat, created on the first send. */
  currentId: string | null;
  chats: Map<string, Chat>;
  /** Conversation id → the reply being received ('' until its assistant message arrives). */
  streaming: Map<string, string>;
  clocks: Map<string, ThinkClock>;
  /** A request that failed before or outside a message, shown plainly in the chat. */
  banner: { conversationId: string | null; text: string } | null;
  sidebarOpen: boolean;
  /** null in server mode. */
  browser: BrowserMode | null;
}

const MODE_KEY = 'minke.mode';

// The API's defaults (DeepSeek's temperature is 1.0).
const DEFAULT_SETTINGS: ConversationSettings = { think: 'none', temperature: 1 };

export class Store {
  state: State = {
    ready: false, needKey: false, list: [], query: '', models: [], settings: {}, currentId: null,
    chats: new Map(), streaming: new Map(), clocks: new Map(), banner: null, sidebarOpen: false, browser: null,
  };
  private listeners = new Set<() => void>();
  private pending: ReturnType<typeof setTimeout> | undefined;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private stopWanted = new Set<string>();
  private writes: Promise<unknown> = Promise.resolve();
  /** The conversation being fetched, so the hashchange that opening it causes does not fetch it again. */
  private loading: string | null = null;
  private local: LocalApi | undefined;

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.state = { ...this.state };
    if (this.pending !== undefined) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      for (const fn of this.listeners) fn();
    }, 16);
  }

  // ---- start-up, routing, API key ----

  async init(): Promise<void> {
    try {
      await this.chooseMode();
      const [settings, models, list] = await Promise.all([api.settings(), api.models(), api.conversations(this.state.query)]);
      Object.assign(this.state, { settings, models, list, ready: true, needKey: false });
      applyTheme(settings.theme);
      this.changed();
      if (this.local) void this.local.ensure(this.params().model).catch(() => undefined); // the header shows a failure
      await this.route();
    } catch (e) {
      this.fail(e, null);
      this.state.ready = true;
      this.changed();
    }
  }

  /**
   * Browser mode when it was chosen (`?mode=browser` or the setting) or when the server's API does
   * not answer; else the server's API, as before.
   */
  private async chooseMode(): Promise<void> {
    if (this.local) return;
    const chosen = new URLSearchParams(location.search).get('mode') ?? localStorage.getItem(MODE_KEY);
    let noServer = false;
    if (chosen !== 'browser') {
      try {
        await serverApi.settings();
        return;
      } catch (e) {
        if (e instanceof AuthError) return;
        noServer = true;
      }
    }
    const local = new LocalApi((engine) => {
      if (!this.state.browser) return;
      this.state.browser = { ...this.state.browser, engine };
      this.changed();
    });
    this.local = local;
    useApi(local.api);
    this.state.browser = { noServer, backend: local.backend, engine: local.status };
  }

  /** Switches between browser and server mode: remembered, then the page starts again in it. */
  setBrowserMode(on: boolean): void {
    localStorage.setItem(MODE_KEY, on ? 'browser' : 'server');
    const url = new URL(location.href);
    url.searchParams.delete('mode');
    location.replace(url.href);
  }

  /** Loads the model on screen on another backend (browser mode). */
  setBackend(backend: BackendChoice): void {
    if (!this.local || !this.state.browser) return;
    this.state.browser = { ...this.state.browser, backend };
    this.changed();
    void this.local.setBackend(backend, this.params().model).catch(() => undefined);
  }

  /** Opens a model the user picked (a folder's files or one .gguf) and makes it the chat's model. */
  async pickModel(files: File[]): Promise<void> {
    if (!this.local || !files.length) return;
    try {
      const name = this.local.addPicked(files);
      this.state.models = await api.models();
      await this.setParams({ model: name });
    } catch (e) {
      this.fail(e, this.state.currentId);
    }
  }

  submitKey(key: string): void {
    apiKey.set(key.trim());
    this.state.needKey = false;
    this.state.banner = null;
    this.changed();
    void this.init();
  }

  /** Follows the address: #/c/ID opens a conversation, anything else is a new chat. */
  async route(): Promise<void> {
    const m = /^#\/c\/([^/?#]+)/.exec(location.hash);
    if (m) await this.open(decodeURIComponent(m[1]));
    else this.newChat();
  }

  private fail(e: unknown, conversationId: string | null): void {
    if (e instanceof AuthError) this.state.needKey = true;
    else this.state.banner = { conversationId, text: e instanceof Error ? e.message : String(e) };
    this.changed();
  }

  // ---- the conversation list ----

  async refreshList(): Promise<void> {
    try {
      this.state.list = await api.conversations(this.state.query);
      for (const s of this.state.list) {
        const chat = this.state.chats.get(s.id);
        if (chat && chat.conversation.title !== s.title) chat.conversation = { ...chat.conversation, title: s.title };
      }
      this.changed();
    } catch (e) {
      this.fail(e, this.state.currentId);
    }
  }

  search(q: string): void {
    this.state.query = q;
    this.changed();
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => void this.refreshList(), 200);
  }

  newChat(): void {
    this.state.currentId = null;
    this.state.sidebarOpen = false;
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    this.changed();
  }

  async open(id: string): Promise<void> {
    this.state.sidebarOpen = false;
    const same = this.state.currentId === id;
    this.state.currentId = id;
    if (location.hash !== `#/c/${id}`) location.hash = `#/c/${id}`; // its hashchange finds `same`
    this.changed();
    const needed = !same || (!this.state.chats.has(id) && this.loading !== id);
    if (needed && !this.state.streaming.has(id)) await this.load(id);
  }

  /** Fetches a conversation; while a reply to it streams elsewhere (another tab, a reload), polls. */
  private async load(id: string): Promise<void> {
    clearTimeout(this.pollTimer);
    this.loading = id;
    try {
      const { conversation, messages } = await api.conversation(id);
      this.state.chats.set(id, { conversation, messages: new Map(messages.map((m) => [m.id, m])) });
      this.changed();
      if (messages.some((m) => m.status === 'streaming')) {
        this.pollTimer = setTimeout(() => {
          if (this.state.currentId === id && !this.state.streaming.has(id)) void this.load(id);
        }, 1000);
      }
    } catch (e) {
      this.fail(e, id);
    } finally {
      if (this.loading === id) this.loading = null;
    }
  }

  async rename(id: string, title: string): Promise<void> {
    const t = title.trim();
    if (!t) return;
    try {
      const c = await this.write(() => api.patchConversation(id, { title: t }));
      const chat = this.state.chats.get(id);
      if (chat) chat.conversation = { ...chat.conversation, title: c.title };
      this.state.list = this.state.list.map((s) => (s.id === id ? { ...s, title: c.title } : s));
      this.changed();
    } catch (e) {
      this.fail(e, id);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await api.deleteConversation(id);
      this.state.list = this.state.list.filter((s) => s.id !== id);
      this.state.chats.delete(id);
      if (this.state.currentId === id) this.newChat();
      this.changed();
    } catch (e) {
      this.fail(e, id);
    }
  }

  // ---- model, system prompt, DeepThink, temperature, theme ----

  get current(): Chat | undefined {
    return this.state.currentId ? this.state.chats.get(this.state.currentId) : undefined;
  }

  /**
   * The parameters of the chat on screen, or the remembered defaults for a new one. The answer
   * length is an app setting (the API keeps only think and temperature per conversation).
   */
  params(): ChatParams {
    const s = this.state.settings;
    const c = this.current?.conversation;
    let p: ChatParams;
    if (c) p = { model: c.model, system: c.system, settings: { ...DEFAULT_SETTINGS, ...c.settings } };
    else {
      const known = this.state.models.map((m) => m.id);
      const model = s.default_model && known.includes(s.default_model) ? s.default_model : known[0] ?? '';
      p = { model, system: s.system ?? '', settings: { think: s.think ?? DEFAULT_SETTINGS.think, temperature: s.temperature ?? DEFAULT_SETTINGS.temperature } };
    }
    if (s.max_tokens) p.maxTokens = s.max_tokens;
    return p;
  }

  /** Changes the chat on screen (if any) and remembers the choice for new chats. */
  async setParams(patch: { model?: string; system?: string; think?: Think; temperature?: number; max_tokens?: number | null }): Promise<void> {
    const p = this.params();
    const settings = { think: patch.think ?? p.settings.think, temperature: patch.temperature ?? p.settings.temperature };
    const next = { model: patch.model ?? p.model, system: patch.system ?? p.system, settings };
    const maxTokens = patch.max_tokens === undefined ? p.maxTokens ?? 0 : patch.max_tokens ?? 0;
    const remembered: AppSettings = { default_model: next.model, system: next.system, ...settings, max_tokens: maxTokens };
    Object.assign(this.state.settings, remembered);
    const chat = this.current;
    if (chat) chat.conversation = { ...chat.conversation, ...next };
    this.changed();
    if (this.local && patch.model) void this.local.ensure(next.model).catch(() => undefined);
    // The local state is already what was chosen; answers to older requests must not undo a newer choice.
    try {
      await this.write(async () => {
        if (chat) await api.patchConversation(chat.conversation.id, next);
        await api.putSettings(remembered);
      });
    } catch (e) {
      this.fail(e, this.state.currentId);
    }
  }

  async setTheme(theme: 'system' | 'light' | 'dark'): Promise<void> {
    this.state.settings = { ...this.state.settings, theme };
    applyTheme(theme);
    this.changed();
    try {
      await this.write(() => api.putSettings({ theme }));
    } catch (e) {
      this.fail(e, this.state.currentId);
    }
  }

  toggleSidebar(open = !this.state.sidebarOpen): void {
    this.state.sidebarOpen = open;
    this.changed();
  }

  dismissBanner(): void {
    this.state.banner = null;
    this.changed();
  }

  // ---- sending, streaming, stopping, branches ----

  isStreaming(id: string | null = this.state.currentId): boolean {
    return id !== null && this.state.streaming.has(id);
  }

  async send(content: string, attachments: Attachment[]): Promise<void> {
    const p = this.params();
    let id = this.state.currentId;
    if (!id) {
      try {
        const c = await api.createConversation({ model: p.model, system: p.system, settings: p.settings });
        id = c.id;
        this.state.chats.set(id, { conversation: c, messages: new Map() });
        this.state.list = [{ id, title: c.title, model: c.model, updated_at: c.updated_at }, ...this.state.list];
        this.state.currentId = id;
        location.hash = `#/c/${id}`;
      } catch (e) {
        return this.fail(e, null);
      }
    }
    const chat = this.state.chats.get(id)!;
    await this.receive(id, api.send(id, { parent_id: chat.conversation.current_leaf_id, content, attachments, ...this.generation() }));
  }

  /** Asks for another answer to the same question: a new sibling of `answer`. */
  async regenerate(answer: Message): Promise<void> {
    const id = answer.conversation_id;
    if (this.isStreaming(id)) return;
    await this.receive(id, api.regenerate(id, answer.id, this.generation()));
  }

  /** Sends an edited question as a sibling of `question`; the old branch stays. */
  async editResend(question: Message, content: string): Promise<void> {
    const id = question.conversation_id;
    if (this.isStreaming(id)) return;
    await this.receive(id, api.send(id, { parent_id: question.parent_id, content, attachments: question.attachments, ...this.generation() }));
  }

  async stop(): Promise<void> {
    const id = this.state.currentId;
    if (!id || !this.state.streaming.has(id)) return;
    const messageId = this.state.streaming.get(id)!;
    if (!messageId) {
      this.stopWanted.add(id); // sent as soon as the reply has an id
      return;
    }
    try {
      await api.stop(messageId);
    } catch (e) {
      this.fail(e, id);
    }
  }

  /** Shows the previous (-1) or next (+1) sibling of `m`, and the newest branch below it. */
  async switchBranch(m: Message, delta: -1 | 1): Promise<void> {
    const chat = this.state.chats.get(m.conversation_id);
    if (!chat || this.isStreaming(m.conversation_id)) return;
    const sibs = siblingsOf(chat.messages, m);
    const target = sibs[sibs.findIndex((s) => s.id === m.id) + delta];
    if (!target) return;
    const leaf = newestLeaf(chat.messages, target.id);
    chat.conversation = { ...chat.conversation, current_leaf_id: leaf };
    this.changed();
    try {
      await this.write(() => api.patchConversation(chat.conversation.id, { current_leaf_id: leaf }));
    } catch (e) {
      this.fail(e, chat.conversation.id);
    }
  }

  private generation(): Omit<SendBody, 'parent_id' | 'content' | 'attachments'> {
    const p = this.params();
    const g: Omit<SendBody, 'parent_id' | 'content' | 'attachments'> = { model: p.model, think: p.settings.think, temperature: p.settings.temperature };
    if (p.maxTokens) g.max_tokens = p.maxTokens;
    return g;
  }

  /** Applies a reply's events to its conversation as they come. */
  private async receive(id: string, events: AsyncGenerator<ReplyEvent>): Promise<void> {
    this.state.streaming.set(id, '');
    if (this.state.banner?.conversationId === id || this.state.banner?.conversationId === null) this.state.banner = null;
    this.changed();
    let replyId = '';
    try {
      for await (const ev of events) {
        const chat = this.state.chats.get(id);
        if (!chat) continue; // deleted meanwhile: the server still finishes it
        switch (ev.event) {
          case 'user':
          case 'assistant':
            this.put(chat, ev.message);
            chat.conversation = { ...chat.conversation, current_leaf_id: ev.message.id };
            if (ev.event === 'assistant') {
              replyId = ev.message.id;
              this.state.streaming.set(id, replyId);
              if (this.stopWanted.delete(id)) void this.stop();
            }
            break;
          case 'reasoning':
          case 'content': {
            const m = chat.messages.get(replyId);
            if (!m) break;
            this.tick(replyId, ev.event);
            this.put(chat, ev.event === 'reasoning' ? { ...m, reasoning: m.reasoning + ev.text } : { ...m, content: m.content + ev.text });
            break;
          }
          case 'done':
          case 'error':
            this.put(chat, ev.message);
            break;
        }
        this.changed();
      }
    } catch (e) {
      this.fail(e, id);
      if (!(e instanceof AuthError)) void this.load(id); // whatever the server kept
    } finally {
      this.state.streaming.delete(id);
      this.stopWanted.delete(id);
      this.changed();
      void this.refreshList();
    }
  }

  private tick(messageId: string, kind: 'reasoning' | 'content'): void {
    const clock = this.state.clocks.get(messageId);
    if (kind === 'reasoning' && !clock) this.state.clocks.set(messageId, { start: performance.now() });
    else if (kind === 'content' && clock && clock.end === undefined) clock.end = performance.now();
  }

  private put(chat: Chat, m: Message): void {
    chat.messages.set(m.id, m);
  }

  /** Runs the changes the app saves one after another, so the server gets them in the order made. */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const done = this.writes.then(fn);
    this.writes = done.catch(() => undefined);
    return done;
  }

}

function applyTheme(theme: AppSettings['theme']): void {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

export const store = new Store();
