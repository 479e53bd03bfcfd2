// The app API's shapes, as src/app/README.md defines them.

export type Think = 'none' | 'high' | 'max';

export interface ConversationSettings {
  think: Think;
  temperature: number;
}

export interface Conversation {
  id: string;
  title: string;
  model: string;
  system: string;
  settings: ConversationSettings;
  current_leaf_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface ConversationSummary {
  id: string;
  title: string;
  model: string;
  updated_at: number;
}

export interface Attachment {
  name: string;
  size: number;
  tokens: number;
  content: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  reasoning_seconds: number;
  seconds: number;
  tokens_per_second: number;
}

export type MessageStatus = 'done' | 'streaming' | 'stopped' | 'error' | 'interrupted';

export interface Message {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: 'user' | 'assistant';
  content: string;
  reasoning: string;
  status: MessageStatus;
  error: string | null;
  model: string;
  think: Think;
  attachments: Attachment[];
  usage: Usage | null;
  created_at: number;
  updated_at: number;
}

/** Settings kept by the server (key → JSON value); these are the keys the app uses. */
export interface AppSettings {
  theme?: 'system' | 'light' | 'dark';
  default_model?: string;
  think?: Think;
  temperature?: number;
  max_tokens?: number;
  system?: string;
}

export interface ModelEntry {
  id: string;
  owned_by: string;
}

/** One SSE event of a reply. */
export type ReplyEvent =
  | { event: 'user'; message: Message }
  | { event: 'assistant'; message: Message }
  | { event: 'reasoning'; text: string }
  | { event: 'content'; text: string }
  | { event: 'done'; message: Message }
  | { event: 'error'; message: Message };
