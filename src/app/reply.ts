/**
 * Generating a reply and saving it as it streams. The reply belongs to the server, not to an HTTP
 * connection: a client that goes away leaves it running (it is still saved); `stop` ends it.
 * The text is written to SQLite before it is passed on (at most every `flushMs`), so whatever a
 * client has been shown is in the database even if the process is killed the next moment.
 */
import type { ChatBackend, ChatOutcome } from '../server/chat.js';
import { chatTurns } from './prompt.js';
import type { ChatStore, StoredMessage, Think, Usage } from './store.js';

export type ReplyEvent =
  | { readonly event: 'reasoning' | 'content'; readonly data: { text: string } }
  | { readonly event: 'done' | 'error'; readonly data: { message: StoredMessage } };

export interface ReplyRequest {
  readonly conversationId: string;
  /** The user message answered; the branch from the root to it is the prompt. */
  readonly userMessageId: string;
  readonly backend: ChatBackend;
  /** Requested thinking; 'none' for a model that cannot think. */
  readonly think: Think;
  readonly temperature: number;
  readonly maxTokens?: number;
}

/** A reply being generated. */
export class Reply {
  private readonly listeners = new Set<(e: ReplyEvent) => void>();
  private readonly abort = new AbortController();
  private endStatus: 'stopped' | 'interrupted' = 'stopped';
  /** The final message (status done, stopped, interrupted or error). */
  readonly finished: Promise<StoredMessage>;

  constructor(private readonly store: ChatStore, readonly message: StoredMessage, private readonly req: ReplyRequest, private readonly flushMs: number) {
    this.finished = this.run();
  }

  /** Calls `fn` with each event from now on; returns the unsubscribe. */
  listen(fn: (e: ReplyEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Ends the generation; the text so far is kept with this status. */
  stop(status: 'stopped' | 'interrupted' = 'stopped'): void {
    if (this.abort.signal.aborted) return;
    this.endStatus = status;
    this.abort.abort();
  }

  private emit(e: ReplyEvent): void {
    for (const fn of [...this.listeners]) fn(e);
  }

  private async run(): Promise<StoredMessage> {
    await null; // whoever started the reply subscribes before the first event
    const { backend, think, temperature, maxTokens } = this.req;
    const id = this.message.id;
    const t0 = performance.now();
    let tFirst: number | undefined, tReasonStart: number | undefined, tReasonEnd: number | undefined;
    let content = '', reasoning = '';
    let pending: { kind: 'reasoning' | 'content'; text: string }[] = [];
    let lastFlush = -Infinity, timer: NodeJS.Timeout | undefined, writeError: unknown;

    // Saves the text, then passes on what was saved (consecutive pieces of one kind as one event).
    const flush = (): void => {
      clearTimeout(timer);
      timer = undefined;
      if (!pending.length || writeError) return;
      try {
        this.store.updateMessage(id, { content, reasoning });
      } catch (err) {
        writeError = err;
        this.abort.abort();
        return;
      }
      lastFlush = performance.now();
      const out = pending;
      pending = [];
      for (const p of out) this.emit({ event: p.kind, data: { text: p.text } });
    };

    let outcome: ChatOutcome | undefined, failure: unknown;
    try {
      const conversation = this.store.getConversation(this.req.conversationId)!;
      const run = backend.chat({
        model: backend.info.id, messages: chatTurns(conversation.system, this.store.path(conversation.id, this.req.userMessageId)),
        think, tools: [], toolChoice: 'none', responseFormat: 'text', maxTokens, stop: [], temperature,
        logprobs: false, topLogprobs: 0, signal: this.abort.signal,
      });
      await run.ready;
      for await (const e of run) {
        if (e.type === 'tool_call' || !e.text) continue;
        const now = performance.now();
        tFirst ??= now;
        if (e.type === 'reasoning') { reasoning += e.text; tReasonStart ??= now; } else { content += e.text; tReasonEnd ??= now; }
        const last = pending.at(-1);
        if (last?.kind === e.type) last.text += e.text;
        else pending.push({ kind: e.type, text: e.text });
        if (now - lastFlush >= this.flushMs) flush();
        else timer ??= setTimeout(flush, this.flushMs - (now - lastFlush));
      }
      outcome = await run.outcome;
    } catch (err) {
      failure = err;
    }
    clearTimeout(timer);
    const end = performance.now();

    let status: StoredMessage['status'] = 'done', error: string | null = null;
    if (writeError) { status = 'error'; error = `the reply could not be saved: ${describe(writeError)}`; }
    else if (this.abort.signal.aborted) status = this.endStatus;
    else if (failure !== undefined) { status = 'error'; error = describe(failure); }
    else if (outcome?.finishReason === 'insufficient_system_resource') { status = 'error'; error = 'the reply was cut short: the server ran out of resources'; }

    const usage: Usage | null = outcome ? {
      prompt_tokens: outcome.usage.promptTokens,
      completion_tokens: outcome.usage.completionTokens,
      cached_tokens: outcome.usage.cachedTokens,
      reasoning_tokens: outcome.usage.reasoningTokens,
      // From the first reasoning text to the first answer text (or the end).
      reasoning_seconds: tReasonStart === undefined ? 0 : seconds((tReasonEnd ?? end) - tReasonStart),
      seconds: seconds(end - t0),
      // Decoding speed: the tokens after the first over the time since it came.
      tokens_per_second: tFirst !== undefined && end > tFirst && outcome.usage.completionTokens > 1
        ? round((outcome.usage.completionTokens - 1) / ((end - tFirst) / 1000), 2) : 0,
    } : null;

    let final: StoredMessage;
    try {
      final = this.store.updateMessage(id, { content, reasoning, status, error, usage });
    } catch (err) {
      // Not saved (the database is gone): the client still learns how the reply ended.
      final = { ...this.message, content, reasoning, status: 'error', error: `the reply could not be saved: ${describe(err)}`, usage, updated_at: Date.now() };
    }
    for (const p of pending) this.emit({ event: p.kind, data: { text: p.text } });
    this.emit({ event: final.status === 'error' ? 'error' : 'done', data: { message: final } });
    this.listeners.clear();
    return final;
  }
}

/** The replies running in this process, by assistant message id. */
export class Replies {
  private readonly running = new Map<string, Reply>();

  constructor(private readonly store: ChatStore, private readonly flushMs = 100) {}

  /** Adds the assistant message (status 'streaming') under the user message and starts generating it. */
  start(req: ReplyRequest): Reply {
    const think = req.backend.info.reasoning ? req.think : 'none';
    const message = this.store.addMessage({
      conversation_id: req.conversationId, parent_id: req.userMessageId, role: 'assistant', content: '',
      status: 'streaming', model: req.backend.info.id, think,
    });
    const reply = new Reply(this.store, message, { ...req, think }, this.flushMs);
    this.running.set(message.id, reply);
    void reply.finished.finally(() => this.running.delete(message.id));
    return reply;
  }

  get(messageId: string): Reply | undefined {
    return this.running.get(messageId);
  }

  /** Stops the reply and answers its final message; undefined when it is not running here. */
  async stop(messageId: string, status: 'stopped' | 'interrupted' = 'stopped'): Promise<StoredMessage | undefined> {
    const reply = this.running.get(messageId);
    if (!reply) return undefined;
    reply.stop(status);
    return reply.finished;
  }

  /** Stops the replies of one conversation (before it is deleted). */
  async stopConversation(conversationId: string): Promise<void> {
    await Promise.all([...this.running.values()].filter((r) => r.message.conversation_id === conversationId).map((r) => this.stop(r.message.id)));
  }

  /** Server shutdown: every running reply ends 'interrupted', its text kept. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.stop(id, 'interrupted')));
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const seconds = (ms: number): number => round(ms / 1000, 3);
