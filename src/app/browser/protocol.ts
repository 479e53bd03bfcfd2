/** Messages between the page and the in-browser engine (engine-worker.ts). */
/** Reasoning mode, as chat/format.ts's ThinkMode (this file is shared with the page, which has no Node types). */
export type ThinkMode = 'none' | 'high' | 'max';

/** One file of a model: fetched from `url` (cached in OPFS, revalidated by ETag) or a File the user picked. */
export interface ModelFile {
  /** The file's name in the model directory (config.json, model.safetensors, …). */
  readonly path: string;
  readonly url?: string;
  readonly file?: File;
  /** Bytes, where known (progress). */
  readonly size?: number;
}

export interface ChatTurn { readonly role: 'system' | 'user' | 'assistant'; readonly content: string }

export type EngineRequest =
  | { type: 'load'; name: string; files: ModelFile[]; backend: 'webgpu' | 'cpu' }
  | { type: 'chat'; id: string; messages: ChatTurn[]; think?: ThinkMode; temperature?: number; maxTokens?: number }
  | { type: 'stop'; id: string };

export type EngineReply =
  | { type: 'progress'; done: number; total: number }
  | { type: 'loaded'; name: string; backend: string; adapter?: string; architecture: string; warnings: string[] }
  | { type: 'delta'; id: string; reasoning: string; content: string }
  | { type: 'done'; id: string; finishReason: string; promptTokens: number; completionTokens: number; tokensPerSecond: number }
  | { type: 'error'; id?: string; message: string };
