/**
 * The terminal chat's history, kept in the web app's SQLite database (src/app/store.ts): one
 * conversation per chat, created at its first exchange and titled from its first message; each
 * exchange is a user message and an assistant message at the end of the conversation's current
 * branch. The answer is written while it streams (at most every SAVE_EVERY_MS), so Ctrl-C, a crash
 * or a closed terminal keeps what was shown; the store marks replies left `streaming` as
 * `interrupted` when it next opens.
 *
 * A failing write (a full disk, a locked file) does not stop the chat: it is reported once per
 * exchange through `warn`.
 */
import { titleFrom, userContent } from '../app/prompt.js';
import type { ChatStore, Conversation, StoredMessage, Think } from '../app/store.js';
import type { ThinkMode } from '../chat/format.js';
import type { ChatMessage } from '../chat/template.js';
import type { TurnResult } from './chat-session.js';
import { DIM, UNDIM, formatThought } from './display.js';

const SAVE_EVERY_MS = 250;
const LIST_LIMIT = 20;

/** What a conversation records of the chat's settings at each exchange. */
export interface TurnSettings {
  readonly system: string;
  readonly think: ThinkMode;
  readonly temperature: number;
}

export class ChatHistory {
  private conv?: Conversation;
  /** The message the next question follows (the last answer of the branch being continued). */
  private parentId: string | null = null;
  /** A title given by /save before the first exchange. */
  private pendingTitle?: string;

  constructor(readonly store: ChatStore, readonly model: string, private readonly warn: (message: string) => void) {}

  get conversation(): Conversation | undefined { return this.conv; }

  /** The next exchange starts a new conversation. */
  startNew(): void {
    this.conv = undefined;
    this.parentId = null;
    this.pendingTitle = undefined;
  }

  /** Saves the question and an empty, streaming answer; undefined (after a warning) when the store fails. */
  beginTurn(user: string, s: TurnSettings): TurnRecorder | undefined {
    try {
      // The store's schema knows none / high / max; low (a thinking mode too) is recorded as high.
      const think: Think = s.think === 'low' ? 'high' : s.think;
      const settings = { think, temperature: s.temperature };
      const conv = this.conv
        ? this.store.updateConversation(this.conv.id, { system: s.system, settings })
        : this.store.createConversation({ title: this.pendingTitle ?? (titleFrom(user) || 'Untitled'), model: this.model, system: s.system, settings });
      this.conv = conv;
      this.pendingTitle = undefined;
      // Each message becomes the conversation's current leaf as it is added.
      const common = { conversation_id: conv.id, model: this.model, think };
      const question = this.store.addMessage({ ...common, parent_id: this.parentId, role: 'user', content: user, status: 'done' });
      const reply = this.store.addMessage({ ...common, parent_id: question.id, role: 'assistant', content: '', status: 'streaming' });
      this.parentId = reply.id;
      return new TurnRecorder(this.store, reply.id, this.warn);
    } catch (e) {
      this.warn(`history: this exchange is not saved: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** `/save [TITLE]`: names the conversation; returns the line to show. */
  save(title: string): string {
    if (!this.conv) {
      if (!title) return 'nothing to save yet: the conversation is saved from its first message\n';
      this.pendingTitle = title;
      return `the conversation will be saved as ${JSON.stringify(title)}\n`;
    }
    if (title) this.conv = this.store.updateConversation(this.conv.id, { title });
    return `saved as ${JSON.stringify(this.conv.title)} (${shortId(this.conv.id)})\n`;
  }

  /** `/history [TEXT]`: the recent conversations, newest first. */
  list(query = ''): string {
    const all = this.store.listConversations(query || undefined);
    if (!all.length) return query ? `no conversation contains ${JSON.stringify(query)}\n` : 'no saved conversations yet\n';
    const lines = all.slice(0, LIST_LIMIT).map((c) =>
      `  ${shortId(c.id)}  ${formatDate(c.updated_at)}  ${c.title || '(untitled)'}  [${c.model}]${c.id === this.conv?.id ? '  (this chat)' : ''}\n`);
    const more = all.length > LIST_LIMIT ? `  … and ${all.length - LIST_LIMIT} more (/history TEXT searches them)\n` : '';
    return lines.join('') + more + '/load ID-or-title continues one\n';
  }

  /**
   * `/load KEY`: the conversation whose id is KEY or starts with it, or whose title is KEY or starts
   * with it (case-insensitive; an exact title picks the newest); it becomes this chat's, and its
   * branch on screen is returned — up to its last answer, which the next question follows.
   */
  open(key: string): { conversation: Conversation; path: StoredMessage[] } {
    const found = this.store.getConversation(this.find(key).id);
    if (!found) throw new Error(`conversation ${JSON.stringify(key)} was just deleted`);
    const path = this.store.path(found.id);
    // A question left without an answer (the web app's reply failed to start) is not continued.
    while (path.length && path[path.length - 1].role === 'user') path.pop();
    this.conv = found;
    this.parentId = path.length ? path[path.length - 1].id : null;
    this.pendingTitle = undefined;
    return { conversation: found, path };
  }

  private find(key: string): { id: string; title: string } {
    const all = this.store.listConversations();
    const k = key.toLowerCase();
    const byId = all.find((c) => c.id === key);
    if (byId) return byId;
    const byTitle = all.find((c) => c.title.toLowerCase() === k);
    if (byTitle) return byTitle;
    for (const matches of [all.filter((c) => c.id.toLowerCase().startsWith(k)), all.filter((c) => c.title.toLowerCase().startsWith(k))]) {
      if (matches.length === 1) return matches[0];
      if (matches.length > 1) {
        const names = matches.slice(0, 5).map((c) => `${shortId(c.id)} ${JSON.stringify(c.title)}`).join(', ');
        throw new Error(`${matches.length} conversations match ${JSON.stringify(key)} (${names}${matches.length > 5 ? ', …' : ''}): give more of the id or title`);
      }
    }
    throw new Error(`no conversation has the id or title ${JSON.stringify(key)} (/history lists them)`);
  }
}

/** Keeps one streaming answer saved. */
export class TurnRecorder {
  private lastSave = -Infinity;
  private latest = { answer: '', reasoning: '' };
  private failed = false;

  constructor(private readonly store: ChatStore, readonly messageId: string, private readonly warn: (message: string) => void) {}

  /** The answer so far; saved when the last save is SAVE_EVERY_MS old. */
  progress(parts: { answer: string; reasoning: string }): void {
    this.latest = parts;
    const now = performance.now();
    if (now - this.lastSave < SAVE_EVERY_MS) return;
    this.lastSave = now;
    this.write({ content: parts.answer, reasoning: parts.reasoning });
  }

  /** The finished (or stopped) answer, with its usage. */
  finish(r: TurnResult): void {
    const seconds = r.prefillSeconds + r.decodeSeconds;
    this.write({
      content: r.answer,
      reasoning: r.reasoning,
      status: r.finishReason === 'aborted' ? 'stopped' : 'done',
      usage: {
        prompt_tokens: r.contextTokens,
        completion_tokens: r.generatedTokens,
        cached_tokens: r.cachedTokens,
        reasoning_tokens: r.reasoning ? r.reasoningTokens : 0,
        // The printer's clock starts before the prompt is tokenized: the reasoning cannot outlast the answer.
        reasoning_seconds: r.reasoning ? Math.min(r.reasoningSeconds, seconds) : 0,
        seconds,
        tokens_per_second: r.decodeTokensPerSecond,
      },
    });
  }

  /** The answer failed: what was shown is kept, with the error. */
  fail(message: string): void {
    this.write({ content: this.latest.answer, reasoning: this.latest.reasoning, status: 'error', error: message });
  }

  private write(patch: Parameters<ChatStore['updateMessage']>[1]): void {
    if (this.failed) return;
    try {
      this.store.updateMessage(this.messageId, patch);
    } catch (e) {
      this.failed = true;
      this.warn(`history: this answer is not saved: ${(e as Error).message}`);
    }
  }
}

/** A conversation's messages as the chat template takes them (attached files before the text, as the app sends them). */
export function toChatMessages(path: readonly StoredMessage[]): ChatMessage[] {
  return path.map((m) => m.role === 'user'
    ? { role: 'user', content: userContent(m.content, m.attachments) }
    : { role: 'assistant', content: m.content, ...(m.reasoning ? { reasoning_content: m.reasoning } : {}) });
}

/** A loaded conversation as the chat shows it: prompts, folded reasoning, answers. */
export function formatTranscript(path: readonly StoredMessage[], tty: boolean): string {
  const dim = (s: string) => (tty ? DIM + s + UNDIM : s);
  let out = '';
  for (const m of path) {
    if (m.role === 'user') {
      const files = m.attachments.length ? dim(`(attached: ${m.attachments.map((a) => a.name).join(', ')})`) + '\n' : '';
      out += `>>> ${m.content.replace(/\n/g, '\n... ')}\n${files}`;
      continue;
    }
    if (m.reasoning) out += dim(formatThought(m.usage?.reasoning_seconds, m.usage?.reasoning_tokens)) + '\n';
    out += m.content;
    if (m.status === 'error') out += `\nerror: ${m.error ?? 'unknown'}`;
    else if (m.status !== 'done') out += `\n[${m.status}]`;
    out += '\n\n';
  }
  return out;
}

/** Enough of an id to tell conversations apart in a list (and to /load by). */
export function shortId(id: string): string { return id.slice(0, 8); }

function formatDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
