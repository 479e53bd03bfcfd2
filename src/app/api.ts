/**
 * The app's HTTP API under /app/api (src/app/README.md is the contract): conversations, branching
 * messages, settings, and replies streamed as SSE while they are saved. Unknown ids in the path
 * are 404; a malformed body (or a body naming a message of another conversation) is 400.
 */
import type { ChatBackend } from '../server/chat.js';
import { ApiError, badParam } from '../server/errors.js';
import type { Exchange, Handler, Route } from '../server/http.js';
import { LocalBackend } from '../server/local-backend.js';
import { EventStream, sendJson } from '../server/respond.js';
import { array, object, oneOf, optInt, optNumber, optString, string, type Body } from '../server/validate.js';
import { deepseekTokenizer } from '../tokenizer/deepseek.js';
import { titleFrom } from './prompt.js';
import { Replies, type Reply } from './reply.js';
import { StoreError, THINKS, type Attachment, type ChatStore, type Conversation, type ConversationSettings, type StoredMessage, type Think } from './store.js';

const API = '/app/api';

export function appRoutes(store: ChatStore, replies: Replies = new Replies(store)): Route[] {
  const conversation = (id: string): Conversation => {
    const c = store.getConversation(id);
    if (!c) throw new ApiError(404, `conversation ${JSON.stringify(id)} does not exist`, { type: 'not_found_error' });
    return c;
  };

  /** A model name from the request, else the conversation's, else the default one. */
  const backendFor = (x: Exchange, requested: unknown, conv?: Conversation): ChatBackend => {
    const name = optString(requested, 'model') ?? (conv?.model || defaultModel(x, store));
    return x.server.registry.get(name);
  };

  /** The request's think / temperature / max_tokens over the conversation's settings. */
  const generation = (x: Exchange, conv: Conversation) => ({
    think: optThink(x.body.think, 'think') ?? conv.settings.think,
    temperature: optNumber(x.body.temperature, 'temperature', 0, 2) ?? conv.settings.temperature,
    maxTokens: optInt(x.body.max_tokens, 'max_tokens', 1, x.server.options.maxTokens),
  });

  /** The model and settings a message was sent with stay with its conversation. */
  const remember = (conv: Conversation, backend: ChatBackend, gen: { think: Think; temperature: number }, title?: string): void => {
    store.updateConversation(conv.id, { model: backend.info.id, settings: { think: gen.think, temperature: gen.temperature }, ...(title ? { title } : {}) });
  };

  const list: Handler = async (x) => {
    const q = new URL(x.req.url ?? '/', 'http://localhost').searchParams.get('q') ?? '';
    sendJson(x.res, 200, store.listConversations(q.trim() || undefined));
  };

  const create: Handler = async (x) => {
    const b = x.body;
    const model = b.model === undefined || b.model === null ? defaultModel(x, store) : x.server.registry.get(string(b.model, 'model')).info.id;
    sendJson(x.res, 200, store.createConversation({
      title: optString(b.title, 'title'), model, system: optString(b.system, 'system'), settings: optSettings(b.settings),
    }));
  };

  const get: Handler = async (x) => {
    const c = conversation(x.params.id);
    sendJson(x.res, 200, { conversation: c, messages: store.messages(c.id) });
  };

  const patch: Handler = async (x) => {
    const c = conversation(x.params.id);
    const b = x.body;
    const leaf = b.current_leaf_id;
    sendJson(x.res, 200, store.updateConversation(c.id, {
      title: optString(b.title, 'title'),
      model: b.model === undefined || b.model === null ? undefined : x.server.registry.get(string(b.model, 'model')).info.id,
      system: optString(b.system, 'system'),
      settings: optSettings(b.settings),
      current_leaf_id: leaf === undefined ? undefined : leaf === null ? null : string(leaf, 'current_leaf_id'),
    }));
  };

  const remove: Handler = async (x) => {
    const c = conversation(x.params.id);
    await replies.stopConversation(c.id);
    if (!store.deleteConversation(c.id)) throw new ApiError(404, `conversation ${JSON.stringify(c.id)} does not exist`, { type: 'not_found_error' });
    sendJson(x.res, 200, { deleted: true });
  };

  const send: Handler = async (x) => {
    const conv = conversation(x.params.id);
    const b = x.body;
    const parentId = b.parent_id === undefined || b.parent_id === null ? null : string(b.parent_id, 'parent_id');
    const content = b.content === undefined || b.content === null ? '' : string(b.content, 'content');
    const backend = backendFor(x, b.model, conv);
    const attachments = parseAttachments(b.attachments, backend);
    if (!content.trim() && !attachments.length) throw badParam('content', 'content is empty: write a message or attach a file');
    const gen = generation(x, conv);
    if (parentId !== null) notStreaming(store.getMessage(parentId), 'parent_id');
    const user = store.addMessage({
      conversation_id: conv.id, parent_id: parentId, role: 'user', content, attachments,
      model: backend.info.id, think: backend.info.reasoning ? gen.think : 'none',
    });
    remember(conv, backend, gen, conv.title ? undefined : titleFrom(content, attachments));
    const reply = replies.start({ conversationId: conv.id, userMessageId: user.id, backend, ...gen });
    await stream(x, reply, [['user', { message: user }]]);
  };

  const regenerate: Handler = async (x) => {
    const conv = conversation(x.params.id);
    const b = x.body;
    const id = string(b.message_id, 'message_id');
    const target = store.getMessage(id);
    if (!target || target.conversation_id !== conv.id) throw badParam('message_id', `message_id: message ${JSON.stringify(id)} is not in this conversation`);
    notStreaming(target, 'message_id');
    // An assistant message gets a sibling; a user message gets another answer.
    const userId = target.role === 'assistant' ? target.parent_id! : target.id;
    const backend = backendFor(x, b.model, conv);
    const gen = generation(x, conv);
    remember(conv, backend, gen);
    const reply = replies.start({ conversationId: conv.id, userMessageId: userId, backend, ...gen });
    await stream(x, reply, []);
  };

  const stop: Handler = async (x) => {
    if (!store.getMessage(x.params.id)) throw new ApiError(404, `message ${JSON.stringify(x.params.id)} does not exist`, { type: 'not_found_error' });
    const final = await replies.stop(x.params.id);
    sendJson(x.res, 200, { stopped: final !== undefined });
  };

  const getSettings: Handler = async (x) => sendJson(x.res, 200, store.getSettings());
  const putSettings: Handler = async (x) => sendJson(x.res, 200, store.putSettings(x.body));

  const tokenize: Handler = async (x) => {
    const backend = backendFor(x, x.body.model);
    sendJson(x.res, 200, { tokens: countTokens(backend, string(x.body.text, 'text')) });
  };

  const routes: [Route['method'], string, Handler, boolean?][] = [
    ['GET', '/conversations', list],
    ['POST', '/conversations', create, true],
    ['GET', '/conversations/:id', get],
    ['PATCH', '/conversations/:id', patch],
    ['DELETE', '/conversations/:id', remove],
    ['POST', '/conversations/:id/messages', send],
    ['POST', '/conversations/:id/regenerate', regenerate],
    ['POST', '/messages/:id/stop', stop, true],
    ['GET', '/settings', getSettings],
    ['PUT', '/settings', putSettings],
    ['POST', '/tokenize', tokenize],
  ];
  return routes.map(([method, path, handler, emptyBody]) => ({ method, paths: [API + path], handler: storeErrors(handler), emptyBody }));
}

/** The SSE answer of a reply: `first` events, then the reply's own until it ends or the client goes. */
async function stream(x: Exchange, reply: Reply, first: [string, unknown][]): Promise<void> {
  const sse = new EventStream(x.res, x.server.options.keepAliveMs);
  for (const [event, data] of first) sse.send(data, event);
  sse.send({ message: reply.message }, 'assistant');
  await new Promise<void>((resolve) => {
    const off = reply.listen((e) => {
      sse.send(e.data, e.event);
      if (e.event === 'done' || e.event === 'error') end();
    });
    // The client going away ends this answer only; the reply goes on being generated and saved.
    const end = (): void => { off(); x.signal.removeEventListener('abort', end); resolve(); };
    if (x.signal.aborted) end();
    else x.signal.addEventListener('abort', end, { once: true });
  });
  sse.end();
}

/** Store refusals in the API's error shape: unknown records 404, bad values 400. */
function storeErrors(handler: Handler): Handler {
  return async (x) => {
    try {
      await handler(x);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      throw err.notFound ? new ApiError(404, err.message, { type: 'not_found_error' }) : new ApiError(400, err.message);
    }
  };
}

/** The `default_model` setting when it is served, else the first model. */
function defaultModel(x: Exchange, store: ChatStore): string {
  const names = x.server.registry.names();
  const chosen = store.getSettings().default_model;
  return typeof chosen === 'string' && names.includes(chosen) ? chosen : names[0];
}

function notStreaming(m: StoredMessage | undefined, param: string): void {
  if (m?.status === 'streaming') throw badParam(param, `${param}: message ${JSON.stringify(m.id)} is still being generated; stop it first`);
}

function optThink(v: unknown, param: string): Think | undefined {
  return v === undefined || v === null ? undefined : oneOf(v, param, THINKS);
}

function optSettings(v: unknown): Partial<ConversationSettings> | undefined {
  if (v === undefined || v === null) return undefined;
  const s = object(v, 'settings');
  const out: Partial<ConversationSettings> = {};
  const think = optThink(s.think, 'settings.think');
  const temperature = optNumber(s.temperature, 'settings.temperature', 0, 2);
  if (think !== undefined) out.think = think;
  if (temperature !== undefined) out.temperature = temperature;
  return out;
}

/** `[{ name, content, size?, tokens? }]`; size and tokens are counted when not given. */
function parseAttachments(v: unknown, backend: ChatBackend): Attachment[] {
  if (v === undefined || v === null) return [];
  return array(v, 'attachments', 64).map((raw, i) => {
    const p = `attachments[${i}]`;
    const a: Body = object(raw, p);
    const content = string(a.content, `${p}.content`);
    return {
      name: string(a.name, `${p}.name`),
      size: optInt(a.size, `${p}.size`, 0, Number.MAX_SAFE_INTEGER) ?? Buffer.byteLength(content),
      tokens: optInt(a.tokens, `${p}.tokens`, 0, Number.MAX_SAFE_INTEGER) ?? countTokens(backend, content),
      content,
    };
  });
}

/** Tokens of `text` for a model: its own tokenizer, or DeepSeek's for an upstream model (an estimate). */
function countTokens(backend: ChatBackend, text: string): number {
  const tok = backend instanceof LocalBackend ? backend.model.tokenizer : deepseekTokenizer('v4');
  return text ? tok.encode(text, { addBos: false, addEos: false }).length : 0;
}
