/**
 * The DeepSeek / OpenAI wire format as an upstream client sees it: a ChatJob or CompletionJob
 * rebuilt as the request body (api-deepseek.md §3–§4, §10–§11), and the streamed chunks that come
 * back (§7) mapped to ChatEvents — reasoning and content deltas with their logprobs, tool-call
 * fragments joined by index, finish reasons and usage in either spelling of the cache hits.
 */
import { randomUUID } from 'node:crypto';
import type { ChatEvent, ChatJob, ChatToolCall, ChatTurn, ChatUsage, CompletionJob, FinishReason, TokenLogprobInfo } from './chat.js';
import { ApiError } from './errors.js';

export type Json = Record<string, unknown>;

/** Seconds a client should wait before retrying an upstream that failed. */
export const RETRY_AFTER_S = 1;
const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'tool_calls', 'content_filter', 'insufficient_system_resource'];

/** Maps the upstream's per-chunk choice to ChatEvents. */
export interface Deltas {
  push(choice: Json): ChatEvent[];
  /** Events owed when the answer finishes (whole tool calls). */
  finish(model: string): ChatEvent[];
}

/** Chat chunks: reasoning and content deltas with their logprobs; tool calls gathered by index. */
export class ChatDeltas implements Deltas {
  private readonly calls = new Map<number, { id: string; name: string; args: string }>();

  push(choice: Json): ChatEvent[] {
    const out: ChatEvent[] = [];
    const delta = isObject(choice.delta) ? choice.delta : {};
    const lp = isObject(choice.logprobs) ? choice.logprobs : {};
    // vLLM's newer reasoning parsers name the field `reasoning`.
    const reasoning = text(delta.reasoning_content) ?? text(delta.reasoning);
    const reasoningLp = chatLogprobs(lp.reasoning_content);
    if (reasoning || reasoningLp) out.push({ type: 'reasoning', text: reasoning ?? '', ...(reasoningLp ? { logprobs: reasoningLp } : {}) });
    const content = text(delta.content);
    const contentLp = chatLogprobs(lp.content);
    if (content || contentLp) out.push({ type: 'content', text: content ?? '', ...(contentLp ? { logprobs: contentLp } : {}) });
    for (const tc of Array.isArray(delta.tool_calls) ? delta.tool_calls.filter(isObject) : []) {
      const index = typeof tc.index === 'number' ? tc.index : this.calls.size;
      const call = this.calls.get(index) ?? { id: '', name: '', args: '' };
      this.calls.set(index, call);
      const fn = isObject(tc.function) ? tc.function : {};
      if (typeof tc.id === 'string' && tc.id && !call.id) call.id = tc.id;
      if (typeof fn.name === 'string' && fn.name && !call.name) call.name = fn.name;
      if (typeof fn.arguments === 'string') call.args += fn.arguments;
    }
    return out;
  }

  finish(model: string): ChatEvent[] {
    const calls = [...this.calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
    this.calls.clear();
    return calls.map((c, index): ChatEvent => {
      if (!c.name) throw new ApiError(500, `${model}: the upstream sent a tool call without a function name`, { type: 'server_error' });
      const call: ChatToolCall = { id: c.id || `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, name: c.name, arguments: c.args || '{}' };
      return { type: 'tool_call', index, call };
    });
  }
}

/** Completion chunks: `text` with the legacy parallel-array logprobs. */
export class TextDeltas implements Deltas {
  push(choice: Json): ChatEvent[] {
    const t = text(choice.text);
    const lp = legacyLogprobs(choice.logprobs);
    return t || lp ? [{ type: 'content', text: t ?? '', ...(lp ? { logprobs: lp } : {}) }] : [];
  }

  finish(): ChatEvent[] {
    return [];
  }
}

/** The DeepSeek chat request a ChatJob stands for (api-deepseek.md §3–§4), streamed with usage. */
export function chatBody(job: ChatJob, model: string): Json {
  const body: Json = {
    model,
    messages: job.messages.map(turnJson),
    stream: true,
    stream_options: { include_usage: true },
    thinking: { type: job.think === 'none' ? 'disabled' : 'enabled' },
  };
  if (job.think !== 'none') body.reasoning_effort = job.think;
  if (job.tools.length) {
    body.tools = job.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}), ...(t.strict !== undefined ? { strict: t.strict } : {}) },
    }));
    body.tool_choice = typeof job.toolChoice === 'object' ? { type: 'function', function: { name: job.toolChoice.name } } : job.toolChoice;
  }
  const rf = job.responseFormat;
  if (rf === 'json_object') body.response_format = { type: 'json_object' };
  else if (rf !== 'text') body.response_format = { type: 'json_schema', json_schema: { name: 'response', schema: rf.schema, strict: true } };
  if (job.maxTokens !== undefined) body.max_tokens = job.maxTokens;
  if (job.stop.length) body.stop = [...job.stop];
  if (job.temperature !== undefined) body.temperature = job.temperature;
  if (job.topP !== undefined) body.top_p = job.topP;
  if (job.seed !== undefined) body.seed = job.seed;
  if (job.logprobs) {
    body.logprobs = true;
    if (job.topLogprobs > 0) body.top_logprobs = job.topLogprobs;
  }
  if (job.userId !== undefined) body.user_id = job.userId;
  return body;
}

function turnJson(m: ChatTurn): Json {
  const out: Json = { role: m.role, content: m.content };
  if (m.role === 'assistant') {
    if (m.reasoning !== undefined) out.reasoning_content = m.reasoning;
    if (m.toolCalls?.length) out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    if (m.prefix) out.prefix = true;
  }
  if (m.role === 'tool' && m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  return out;
}

/** The FIM / completion request (api-deepseek.md §10), streamed with usage. */
export function completionBody(job: CompletionJob, model: string): Json {
  const body: Json = { model, prompt: job.prompt, stream: true, stream_options: { include_usage: true } };
  if (job.suffix !== undefined) body.suffix = job.suffix;
  if (job.maxTokens !== undefined) body.max_tokens = job.maxTokens;
  if (job.stop.length) body.stop = [...job.stop];
  if (job.temperature !== undefined) body.temperature = job.temperature;
  if (job.topP !== undefined) body.top_p = job.topP;
  if (job.seed !== undefined) body.seed = job.seed;
  if (job.logprobs > 0) body.logprobs = job.logprobs;
  if (job.echo) body.echo = true;
  return body;
}

export function parseChunk(data: string, model: string): Json {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new ApiError(503, `${model}: the upstream sent an event that is not JSON: ${JSON.stringify(data.slice(0, 200))}`, { type: 'overloaded_error', retryAfter: RETRY_AFTER_S });
  }
  if (!isObject(chunk)) throw new ApiError(503, `${model}: the upstream sent an event that is not a JSON object`, { type: 'overloaded_error', retryAfter: RETRY_AFTER_S });
  // An error inside a stream whose headers were already 200 (minke, DeepSeek): its type says the status.
  if (chunk.error !== undefined && chunk.error !== null) {
    const e = isObject(chunk.error) ? chunk.error : { message: String(chunk.error) };
    const message = `${model}: ${typeof e.message === 'string' ? e.message : JSON.stringify(e)}`;
    const type = e.type;
    if (type === 'invalid_request_error') throw new ApiError(400, message, { param: typeof e.param === 'string' ? e.param : null });
    if (type === 'rate_limit_error') throw new ApiError(429, message, { retryAfter: RETRY_AFTER_S });
    if (type === 'server_error' || type === 'api_error') throw new ApiError(500, message, { type: 'server_error' });
    throw new ApiError(503, message, { type: 'overloaded_error', retryAfter: RETRY_AFTER_S });
  }
  return chunk;
}

export function finishReason(r: string): FinishReason {
  if ((FINISH_REASONS as readonly string[]).includes(r)) return r as FinishReason;
  if (r === 'function_call') return 'tool_calls';
  if (r === 'abort') return 'insufficient_system_resource'; // vLLM: the engine dropped the request
  return 'stop';
}

/** Usage in DeepSeek's or OpenAI's spelling of the cache hits. */
export function usageOf(u: Json): ChatUsage {
  const prompt = count(u.prompt_tokens);
  const details = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const completionDetails = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
  return {
    promptTokens: prompt,
    completionTokens: count(u.completion_tokens),
    cachedTokens: Math.min(prompt, typeof u.prompt_cache_hit_tokens === 'number' ? count(u.prompt_cache_hit_tokens) : count(details.cached_tokens)),
    reasoningTokens: count(completionDetails.reasoning_tokens),
  };
}

/** Chat logprobs entries (`{token, logprob, bytes, top_logprobs}`), or undefined when there are none. */
function chatLogprobs(v: unknown): TokenLogprobInfo[] | undefined {
  if (!Array.isArray(v) || !v.length) return undefined;
  return v.filter(isObject).map((l) => ({
    ...tokenText(l.token, l.bytes),
    logprob: Number(l.logprob),
    top: (Array.isArray(l.top_logprobs) ? l.top_logprobs.filter(isObject) : []).map((t) => ({ ...tokenText(t.token, t.bytes), logprob: Number(t.logprob) })),
  }));
}

/** Completion logprobs (`{tokens, token_logprobs, top_logprobs: [{token: logprob}]}`). */
function legacyLogprobs(v: unknown): TokenLogprobInfo[] | undefined {
  if (!isObject(v) || !Array.isArray(v.tokens) || !v.tokens.length) return undefined;
  const lps = Array.isArray(v.token_logprobs) ? v.token_logprobs : [];
  const tops = Array.isArray(v.top_logprobs) ? v.top_logprobs : [];
  return v.tokens.map((tok, i) => ({
    ...tokenText(tok, undefined),
    logprob: Number(lps[i]),
    top: Object.entries(isObject(tops[i]) ? tops[i] : {}).map(([t, lp]) => ({ ...tokenText(t, undefined), logprob: Number(lp) })),
  }));
}

function tokenText(token: unknown, bytes: unknown): { token: string; bytes: number[] } {
  const t = typeof token === 'string' ? token : '';
  return { token: t, bytes: Array.isArray(bytes) ? bytes.map(Number) : [...Buffer.from(t, 'utf8')] };
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
