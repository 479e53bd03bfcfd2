/**
 * The app's storage: conversations, their branching messages, and settings in one SQLite file
 * (better-sqlite3, WAL). Every write is its own committed transaction, so a process killed at any
 * moment leaves everything written so far (WAL commits survive a process crash; synchronous=NORMAL
 * only risks the last commits on a power loss). The schema is versioned with `PRAGMA user_version`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { minkeHome } from '../server/index.js';
import { MIGRATIONS } from './schema.js';

export type Think = 'none' | 'high' | 'max';
export type MessageStatus = 'done' | 'streaming' | 'stopped' | 'error' | 'interrupted';

export interface ConversationSettings { think: Think; temperature: number }

export interface Conversation {
  id: string; title: string; model: string; system: string; settings: ConversationSettings;
  current_leaf_id: string | null; created_at: number; updated_at: number;
}

export interface Attachment { name: string; size: number; tokens: number; content: string }

export interface Usage {
  prompt_tokens: number; completion_tokens: number; cached_tokens: number; reasoning_tokens: number;
  reasoning_seconds: number; seconds: number; tokens_per_second: number;
}

export interface StoredMessage {
  id: string; conversation_id: string; parent_id: string | null; role: 'user' | 'assistant';
  content: string; reasoning: string; status: MessageStatus; error: string | null; model: string;
  think: Think; attachments: Attachment[]; usage: Usage | null; created_at: number; updated_at: number;
}

export type ConversationSummary = Pick<Conversation, 'id' | 'title' | 'model' | 'updated_at'>;
/** Fields a conversation is created or updated with; `settings` may be partial (the rest stays). */
export type ConversationInit = Partial<Pick<Conversation, 'title' | 'model' | 'system'>> & { settings?: Partial<ConversationSettings> };
export type ConversationPatch = ConversationInit & Partial<Pick<Conversation, 'current_leaf_id'>>;
export type NewMessage = Pick<StoredMessage, 'conversation_id' | 'parent_id' | 'role' | 'content'> & Partial<StoredMessage>;

/** Bad input to the store (an unknown id, a wrong role or parent, a malformed value). */
export class StoreError extends Error {
  constructor(message: string, readonly notFound = false) {
    super(message);
    this.name = 'StoreError';
  }
}

export const THINKS: readonly Think[] = ['none', 'high', 'max'];
export const STATUSES: readonly MessageStatus[] = ['done', 'streaming', 'stopped', 'error', 'interrupted'];
export const DEFAULT_SETTINGS: ConversationSettings = { think: 'none', temperature: 1 };

interface ConversationRow { id: string; title: string; model: string; system: string; settings: string; current_leaf_id: string | null; created_at: number; updated_at: number }
interface MessageRow {
  id: string; conversation_id: string; parent_id: string | null; role: 'user' | 'assistant'; content: string; reasoning: string;
  status: MessageStatus; error: string | null; model: string; think: Think; attachments: string; usage: string | null;
  writer_pid: number | null; created_at: number; updated_at: number;
}

export class ChatStore {
  private constructor(private readonly db: Database.Database, readonly file: string) {}

  /** Opens (creating the file and its folders) and migrates `file`; replies left streaming by a dead process become 'interrupted'. */
  static open(file: string): ChatStore {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (err) {
      throw new Error(`cannot open the chat database ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000'); // the terminal chat and the server may share the file
      migrate(db, file);
      const store = new ChatStore(db, file);
      store.recoverInterrupted();
      return store;
    } catch (err) {
      db.close();
      if (err instanceof Error && /not a database|malformed/i.test(err.message)) throw new Error(`${file} is not a minke chat database (${err.message})`);
      throw err;
    }
  }

  /** $MINKE_HOME/minke.db (MINKE_HOME defaults to ~/.minke). */
  static defaultPath(): string {
    return path.join(minkeHome(), 'minke.db');
  }

  /** Newest first; `query` matches titles and message text (case-insensitive for ASCII). */
  listConversations(query?: string): ConversationSummary[] {
    if (!query) return this.db.prepare('SELECT id, title, model, updated_at FROM conversations ORDER BY updated_at DESC, rowid DESC').all() as ConversationSummary[];
    const like = `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return this.db.prepare(`SELECT id, title, model, updated_at FROM conversations c
      WHERE title LIKE :like ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE :like ESCAPE '\\')
      ORDER BY updated_at DESC, rowid DESC`).all({ like }) as ConversationSummary[];
  }

  createConversation(init: ConversationInit = {}): Conversation {
    const now = Date.now();
    const c: Conversation = {
      id: randomUUID(),
      title: text(init.title ?? '', 'title'),
      model: text(init.model ?? '', 'model'),
      system: text(init.system ?? '', 'system'),
      settings: settingsOf(init.settings, DEFAULT_SETTINGS),
      current_leaf_id: null, created_at: now, updated_at: now,
    };
    this.db.prepare(`INSERT INTO conversations (id, title, model, system, settings, current_leaf_id, created_at, updated_at)
      VALUES (:id, :title, :model, :system, :settings, NULL, :created_at, :updated_at)`).run({ ...c, settings: JSON.stringify(c.settings) });
    return c;
  }

  getConversation(id: string): Conversation | undefined {
    const row = this.db.prepare('SELECT * FROM conversations WHERE id = ?').get(id) as ConversationRow | undefined;
    return row && conversationOf(row);
  }

  updateConversation(id: string, patch: ConversationPatch): Conversation {
    const c = this.needConversation(id);
    const next: Conversation = {
      ...c,
      title: patch.title === undefined ? c.title : text(patch.title, 'title'),
      model: patch.model === undefined ? c.model : text(patch.model, 'model'),
      system: patch.system === undefined ? c.system : text(patch.system, 'system'),
      settings: patch.settings === undefined ? c.settings : settingsOf(patch.settings, c.settings),
      current_leaf_id: patch.current_leaf_id === undefined ? c.current_leaf_id : patch.current_leaf_id,
      updated_at: Date.now(),
    };
    if (next.current_leaf_id !== null && next.current_leaf_id !== c.current_leaf_id) this.needMessageIn(id, next.current_leaf_id, 'current_leaf_id');
    this.db.prepare(`UPDATE conversations SET title = :title, model = :model, system = :system, settings = :settings,
      current_leaf_id = :current_leaf_id, updated_at = :updated_at WHERE id = :id`).run({ ...next, settings: JSON.stringify(next.settings) });
    return next;
  }

  /** Deletes the conversation and all its messages; false when there was none. */
  deleteConversation(id: string): boolean {
    return this.db.prepare('DELETE FROM conversations WHERE id = ?').run(id).changes > 0;
  }

  /** Every message of every branch, oldest first. */
  messages(conversationId: string): StoredMessage[] {
    this.needConversation(conversationId);
    const rows = this.db.prepare('SELECT * FROM messages WHERE conversation_id = ? ORDER BY created_at, rowid').all(conversationId) as MessageRow[];
    return rows.map(messageOf);
  }

  /** The branch from the root to `leafId` (default: the conversation's current leaf), root first. */
  path(conversationId: string, leafId?: string | null): StoredMessage[] {
    const c = this.needConversation(conversationId);
    const leaf = leafId === undefined ? c.current_leaf_id : leafId;
    if (leaf === null) return [];
    this.needMessageIn(conversationId, leaf, 'leaf');
    const rows = this.db.prepare(`WITH RECURSIVE up(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM messages WHERE id = ?
        UNION ALL SELECT m.id, m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.parent_id)
      SELECT messages.* FROM up JOIN messages ON messages.id = up.id ORDER BY up.depth DESC`).all(leaf) as MessageRow[];
    return rows.map(messageOf);
  }

  getMessage(id: string): StoredMessage | undefined {
    const row = this.db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
    return row && messageOf(row);
  }

  /**
   * Adds a message and makes it the conversation's current leaf. Roles alternate: a user message
   * starts the conversation or answers an assistant message; an assistant message answers a user one.
   */
  addMessage(m: NewMessage): StoredMessage {
    const conv = this.needConversation(m.conversation_id);
    if (m.role !== 'user' && m.role !== 'assistant') throw new StoreError(`role must be "user" or "assistant", got ${JSON.stringify(m.role)}`);
    const parent = m.parent_id === null ? undefined : this.needMessageIn(conv.id, m.parent_id, 'parent_id');
    if (m.role === 'assistant' && parent?.role !== 'user') throw new StoreError('an assistant message must answer a user message (parent_id must be a user message)');
    if (m.role === 'user' && parent && parent.role !== 'assistant') throw new StoreError('a user message must start the conversation (parent_id null) or follow an assistant message');
    const now = Date.now();
    const status = oneOf(m.status ?? 'done', STATUSES, 'status');
    const msg: StoredMessage = {
      id: randomUUID(), conversation_id: conv.id, parent_id: m.parent_id, role: m.role,
      content: text(m.content, 'content'), reasoning: text(m.reasoning ?? '', 'reasoning'),
      status, error: m.error ?? null, model: text(m.model ?? conv.model, 'model'),
      think: oneOf(m.think ?? 'none', THINKS, 'think'), attachments: attachmentsOf(m.attachments ?? []),
      usage: m.usage ? usageOf(m.usage) : null, created_at: now, updated_at: now,
    };
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO messages (id, conversation_id, parent_id, role, content, reasoning, status, error, model, think, attachments, usage, writer_pid, created_at, updated_at)
        VALUES (:id, :conversation_id, :parent_id, :role, :content, :reasoning, :status, :error, :model, :think, :attachments, :usage, :writer_pid, :created_at, :updated_at)`).run({
        ...msg, attachments: JSON.stringify(msg.attachments), usage: msg.usage && JSON.stringify(msg.usage),
        writer_pid: status === 'streaming' ? process.pid : null,
      });
      this.db.prepare('UPDATE conversations SET current_leaf_id = ?, updated_at = ? WHERE id = ?').run(msg.id, now, conv.id);
    })();
    return msg;
  }

  updateMessage(id: string, patch: Partial<Pick<StoredMessage, 'content' | 'reasoning' | 'status' | 'error' | 'usage'>>): StoredMessage {
    const m = this.getMessage(id);
    if (!m) throw new StoreError(`message ${JSON.stringify(id)} does not exist`, true);
    const next: StoredMessage = {
      ...m,
      content: patch.content === undefined ? m.content : text(patch.content, 'content'),
      reasoning: patch.reasoning === undefined ? m.reasoning : text(patch.reasoning, 'reasoning'),
      status: patch.status === undefined ? m.status : oneOf(patch.status, STATUSES, 'status'),
      error: patch.error === undefined ? m.error : patch.error,
      usage: patch.usage === undefined ? m.usage : patch.usage && usageOf(patch.usage),
      updated_at: Date.now(),
    };
    this.db.prepare(`UPDATE messages SET content = :content, reasoning = :reasoning, status = :status, error = :error, usage = :usage,
      writer_pid = CASE WHEN :status = 'streaming' THEN coalesce(writer_pid, :pid) ELSE NULL END, updated_at = :updated_at WHERE id = :id`).run({
      ...next, usage: next.usage && JSON.stringify(next.usage), pid: process.pid,
    });
    return next;
  }

  getSettings(): Record<string, unknown> {
    const rows = this.db.prepare('SELECT key, value FROM settings ORDER BY key').all() as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
  }

  /** Sets each key to its JSON value (null removes the key); answers all settings. */
  putSettings(values: Record<string, unknown>): Record<string, unknown> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new StoreError('settings must be an object of key → JSON value');
    const put = this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    const del = this.db.prepare('DELETE FROM settings WHERE key = ?');
    this.db.transaction(() => {
      for (const [key, value] of Object.entries(values)) {
        if (value === undefined) continue;
        if (value === null) del.run(key);
        else put.run(key, JSON.stringify(value));
      }
    })();
    return this.getSettings();
  }

  /** `PRAGMA integrity_check`: 'ok', or the problems found, one a line. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('\n');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Replies whose writing process is gone: their text so far stays, marked 'interrupted'. */
  private recoverInterrupted(): void {
    const rows = this.db.prepare("SELECT id, writer_pid FROM messages WHERE status = 'streaming'").all() as { id: string; writer_pid: number | null }[];
    const mark = this.db.prepare("UPDATE messages SET status = 'interrupted', writer_pid = NULL, updated_at = ? WHERE id = ? AND status = 'streaming'");
    for (const r of rows) if (r.writer_pid === null || !processAlive(r.writer_pid)) mark.run(Date.now(), r.id);
  }

  private needConversation(id: string): Conversation {
    const c = this.getConversation(id);
    if (!c) throw new StoreError(`conversation ${JSON.stringify(id)} does not exist`, true);
    return c;
  }

  private needMessageIn(conversationId: string, id: string, what: string): StoredMessage {
    const m = typeof id === 'string' ? this.getMessage(id) : undefined;
    if (!m) throw new StoreError(`${what}: message ${JSON.stringify(id)} does not exist`);
    if (m.conversation_id !== conversationId) throw new StoreError(`${what}: message ${JSON.stringify(id)} belongs to another conversation`);
    return m;
  }
}

function migrate(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) throw new Error(`${file} has chat schema version ${version}, newer than this minke knows (${MIGRATIONS.length}); update minke`);
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function conversationOf(r: ConversationRow): Conversation {
  return { ...r, settings: { ...DEFAULT_SETTINGS, ...(JSON.parse(r.settings) as Partial<ConversationSettings>) } };
}

function messageOf(r: MessageRow): StoredMessage {
  const { writer_pid: _, ...rest } = r;
  return { ...rest, attachments: JSON.parse(r.attachments) as Attachment[], usage: r.usage === null ? null : JSON.parse(r.usage) as Usage };
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new StoreError(`${what} must be a string, got ${v === null ? 'null' : typeof v}`);
  return v;
}

function oneOf<T extends string>(v: unknown, values: readonly T[], what: string): T {
  if (!values.includes(v as T)) throw new StoreError(`${what} must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

function finite(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new StoreError(`${what} must be a number ≥ 0, got ${JSON.stringify(v)}`);
  return v;
}

/** Full settings from a partial `given` over `base`. */
function settingsOf(given: Partial<ConversationSettings> | undefined, base: ConversationSettings): ConversationSettings {
  if (given === undefined) return { ...base };
  if (typeof given !== 'object' || given === null) throw new StoreError('settings must be an object { think, temperature }');
  const s = { ...base, ...given };
  const temperature = finite(s.temperature, 'settings.temperature');
  if (temperature > 2) throw new StoreError(`settings.temperature must be between 0 and 2, got ${temperature}`);
  return { think: oneOf(s.think, THINKS, 'settings.think'), temperature };
}

function attachmentsOf(v: unknown): Attachment[] {
  if (!Array.isArray(v)) throw new StoreError('attachments must be an array');
  return v.map((a: Partial<Attachment>, i) => {
    if (typeof a !== 'object' || a === null) throw new StoreError(`attachments[${i}] must be an object { name, size, tokens, content }`);
    return { name: text(a.name, `attachments[${i}].name`), size: finite(a.size, `attachments[${i}].size`), tokens: finite(a.tokens, `attachments[${i}].tokens`), content: text(a.content, `attachments[${i}].content`) };
  });
}

function usageOf(u: Usage): Usage {
  const keys = ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens', 'reasoning_seconds', 'seconds', 'tokens_per_second'] as const;
  if (typeof u !== 'object' || u === null) throw new StoreError('usage must be an object');
  return Object.fromEntries(keys.map((k) => [k, finite(u[k], `usage.${k}`)])) as unknown as Usage;
}
