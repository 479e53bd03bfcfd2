// The client of the app API (/app/api) and the OpenAI-compatible /models, both at this origin.
// Paths are relative, so the app works wherever the server mounts it. `api` is what the app
// calls: this server client, or browser mode's local one (local-api.ts), chosen at start-up.
import { readSse } from './sse.js';
import type {
  AppSettings, Attachment, Conversation, ConversationSettings, ConversationSummary, Message, ModelEntry, ReplyEvent, Think,
} from './types.js';

const KEY_STORAGE = 'minke.apiKey';

/** The server has API keys and ours is missing or wrong. */
export class AuthError extends Error {}

export const apiKey = {
  get: (): string => localStorage.getItem(KEY_STORAGE) ?? '',
  set: (key: string): void => localStorage.setItem(KEY_STORAGE, key),
};

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h['content-type'] = 'application/json';
  const key = apiKey.get();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) throw new AuthError(await errorText(res));
  if (!res.ok) throw new Error(await errorText(res));
  return res;
}

/** The plain message of an error answer ({ error: { message } } or text). */
async function errorText(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const j = JSON.parse(text);
    const m = j?.error?.message ?? j?.message ?? j?.error;
    if (typeof m === 'string' && m) return m;
  } catch { /* not JSON: the text itself */ }
  return text.trim() || `${res.status} ${res.statusText}`;
}

const json = async <T>(method: string, path: string, body?: unknown): Promise<T> => (await request(method, path, body)).json() as Promise<T>;
const conv = (id: string): string => `app/api/conversations/${encodeURIComponent(id)}`;

export interface SendBody {
  parent_id: string | null;
  content: string;
  attachments?: Attachment[];
  model?: string;
  think?: Think;
  temperature?: number;
  max_tokens?: number;
}

export const serverApi = {
  models: async (): Promise<ModelEntry[]> => (await json<{ data: ModelEntry[] }>('GET', 'models')).data,
  conversations: (q = ''): Promise<ConversationSummary[]> =>
    json('GET', `app/api/conversations${q ? `?q=${encodeURIComponent(q)}` : ''}`),
  createConversation: (body: { title?: string; model?: string; system?: string; settings?: ConversationSettings }): Promise<Conversation> =>
    json('POST', 'app/api/conversations', body),
  conversation: (id: string): Promise<{ conversation: Conversation; messages: Message[] }> => json('GET', conv(id)),
  patchConversation: (id: string, patch: Partial<Pick<Conversation, 'title' | 'model' | 'system' | 'settings' | 'current_leaf_id'>>): Promise<Conversation> =>
    json('PATCH', conv(id), patch),
  deleteConversation: (id: string): Promise<unknown> => json('DELETE', conv(id)),
  send: (id: string, body: SendBody): AsyncGenerator<ReplyEvent> => replyStream(`${conv(id)}/messages`, body),
  regenerate: (id: string, messageId: string, extra: Omit<SendBody, 'parent_id' | 'content' | 'attachments'>): AsyncGenerator<ReplyEvent> =>
    replyStream(`${conv(id)}/regenerate`, { message_id: messageId, ...extra }),
  stop: (messageId: string): Promise<unknown> => json('POST', `app/api/messages/${encodeURIComponent(messageId)}/stop`, {}),
  settings: (): Promise<AppSettings> => json('GET', 'app/api/settings'),
  putSettings: (s: AppSettings): Promise<AppSettings> => json('PUT', 'app/api/settings', s),
  tokenize: async (model: string, text: string): Promise<number> => (await json<{ tokens: number }>('POST', 'app/api/tokenize', { model, text })).tokens,
};

export type Api = typeof serverApi;

/** The API the app uses (a live binding: `useApi` switches it for every importer). */
export let api: Api = serverApi;

export function useApi(impl: Api): void {
  api = impl;
}

/** POSTs and yields the reply's SSE events, parsed. */
async function* replyStream(path: string, body: unknown): AsyncGenerator<ReplyEvent> {
  const res = await request('POST', path, body);
  if (!res.body) throw new Error('the server sent no reply stream');
  for await (const r of readSse(res.body)) {
    let data: any;
    try { data = JSON.parse(r.data); } catch { throw new Error(`the server sent a malformed event: ${r.data.slice(0, 200)}`); }
    if (r.event === 'error' && !data?.message?.id) throw new Error(data?.error?.message ?? data?.message ?? 'the reply failed');
    yield { event: r.event, ...data } as ReplyEvent;
  }
}
