/**
 * The one chat contract under every API dialect. OpenAI chat completions, Anthropic messages and
 * the Responses API each translate their request into a ChatJob and the ChatEvents back into
 * their own wire shape; a ChatBackend (a local model through the engine, or an upstream
 * OpenAI-compatible endpoint) runs the job. So every dialect works with every model.
 */
import type { ThinkMode } from '../chat/format.js';

export interface ChatTool {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments object. */
  readonly parameters?: Record<string, unknown>;
  readonly strict?: boolean;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { readonly name: string };

export interface ChatToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON object text. */
  readonly arguments: string;
}

export interface ChatTurn {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  /** assistant: its reasoning (undefined = not sent back; '' = sent back empty). */
  readonly reasoning?: string;
  readonly toolCalls?: readonly ChatToolCall[];
  /** tool: the call this result answers. */
  readonly toolCallId?: string;
  /** assistant, last message: the answer starts with this text (prefix completion). */
  readonly prefix?: boolean;
}

export interface ChatJob {
  /** The model name as the client addressed it. */
  readonly model: string;
  readonly messages: readonly ChatTurn[];
  /** Reasoning mode after the effort mapping: none = thinking disabled. */
  readonly think: ThinkMode;
  readonly tools: readonly ChatTool[];
  readonly toolChoice: ToolChoice;
  /** More than one call per answer may be made (OpenAI parallel_tool_calls; default true). */
  readonly parallelToolCalls?: boolean;
  /** The answer is one JSON object (json_object) or follows a schema (json_schema: an extension, enforced). */
  readonly responseFormat: 'text' | 'json_object' | { readonly schema: Record<string, unknown> };
  readonly maxTokens?: number;
  readonly stop: readonly string[];
  readonly temperature?: number;
  readonly topP?: number;
  /** Sampling seed (an extension: DeepSeek documents none); random when absent. */
  readonly seed?: number;
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  /** Partitions the prefix cache and scheduling (DeepSeek `user_id`). */
  readonly userId?: string;
  readonly signal: AbortSignal;
}

/** Raw completion (FIM `/beta/completions`): text in, text out, no chat format. */
export interface CompletionJob {
  readonly model: string;
  readonly prompt: string;
  readonly suffix?: string;
  readonly maxTokens?: number;
  readonly stop: readonly string[];
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly logprobs: number;
  readonly echo: boolean;
  readonly signal: AbortSignal;
}

export interface TokenLogprobInfo {
  readonly token: string;
  readonly logprob: number;
  /** UTF-8 bytes of the token (may be part of a character). */
  readonly bytes: number[];
  readonly top: readonly { token: string; logprob: number; bytes: number[] }[];
}

export type ChatEvent =
  | { readonly type: 'reasoning'; readonly text: string; readonly logprobs?: readonly TokenLogprobInfo[] }
  | { readonly type: 'content'; readonly text: string; readonly logprobs?: readonly TokenLogprobInfo[] }
  /** One whole tool call (`index` counts calls in this answer from 0). */
  | { readonly type: 'tool_call'; readonly index: number; readonly call: ChatToolCall };

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'insufficient_system_resource';

export interface ChatUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly cachedTokens: number;
  readonly reasoningTokens: number;
}

export interface ChatOutcome {
  readonly finishReason: FinishReason;
  /** The stop string that ended the answer, when one did (local models report it). */
  readonly stopSequence?: string;
  readonly usage: ChatUsage;
}

/** A job in flight: its events as they come, then its outcome (which also ends the events). */
export interface ChatRun extends AsyncIterable<ChatEvent> {
  readonly outcome: Promise<ChatOutcome>;
  /**
   * Settles when the run is known to start (an upstream answered): a refusal then becomes an HTTP
   * error status instead of an error event in a stream already opened. Absent: it has started.
   */
  readonly ready?: Promise<void>;
}

export interface ModelInfo {
  readonly id: string;
  readonly ownedBy: string;
  /** Context length in tokens, when known. */
  readonly contextLength?: number;
  /** Thinking can be turned on (the model or its format has a reasoning mode). */
  readonly reasoning: boolean;
  /** Fill-in-the-middle with a suffix is possible. */
  readonly fim: boolean;
}

export interface ChatBackend {
  readonly info: ModelInfo;
  /** Validates the job against the model (throws ApiError) and starts it. */
  chat(job: ChatJob): ChatRun;
  complete(job: CompletionJob): ChatRun;
  close(): Promise<void>;
}
