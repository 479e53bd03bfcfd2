/**
 * `POST /chat/completions` (also `/v1/…` and `/beta/…`): the DeepSeek / OpenAI chat dialect,
 * field by field as api-deepseek.md §3–§11 documents it — request → ChatJob, ChatRun → the
 * `chat.completion` object or its SSE chunks.
 */
import { randomUUID } from 'node:crypto';
import type { ThinkMode } from '../chat/format.js';
import type { ChatEvent, ChatJob, ChatOutcome, ChatRun, ChatTool, ChatToolCall, ChatTurn, ChatUsage, TokenLogprobInfo, ToolChoice } from './chat.js';
import { ApiError, badParam } from './errors.js';
import type { Exchange } from './http.js';
import { EventStream, PatientJson } from './respond.js';
import { checkStrictSchema } from './strict-schema.js';
import { array, contentText, object, oneOf, optBool, optInt, optNumber, optString, stopList, string, type Body } from './validate.js';

export const SYSTEM_FINGERPRINT = 'fp_minke_0.1';

/** DeepSeek's effort aliases → applied effort (§5; xhigh went from max to high when V4.1 added low). */
const EFFORT: Record<string, 'low' | 'high' | 'max'> = {
  minimal: 'low', low: 'low', medium: 'high', high: 'high', xhigh: 'high', max: 'max', ultra: 'max',
};

/** Thinking switch and effort (default high) → reasoning mode; the chat format decides what `low` means (V4 has no such level and thinks at `high`). */
export function thinkMode(enabled: boolean, effort: 'low' | 'high' | 'max' | undefined): ThinkMode {
  return !enabled ? 'none' : effort ?? 'high';
}

export function parseEffort(v: unknown, param: string): 'low' | 'high' | 'max' | undefined {
  if (v === undefined || v === null) return undefined;
  return EFFORT[oneOf(v, param, Object.keys(EFFORT))];
}

export function parseThinking(v: unknown, param = 'thinking'): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  const t = object(v, param);
  return oneOf(t.type, `${param}.type`, ['enabled', 'disabled'] as const) === 'enabled';
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** `tools`: ≤128 functions with valid names; on /beta, strict on all or none, schemas checked. */
export function parseTools(v: unknown, beta: boolean): ChatTool[] {
  if (v === undefined || v === null) return [];
  const tools = array(v, 'tools', 128).map((t, i): ChatTool => {
    const p = `tools[${i}]`;
    const tool = object(t, p);
    if (tool.type !== 'function') throw badParam(`${p}.type`, `${p}.type must be "function"`);
    const f = object(tool.function, `${p}.function`);
    const name = string(f.name, `${p}.function.name`);
    if (!TOOL_NAME.test(name)) throw badParam(`${p}.function.name`, `${p}.function.name must be 1–64 characters of a–z, A–Z, 0–9, _ and -, got ${JSON.stringify(name.slice(0, 80))}`);
    const parameters = f.parameters === undefined || f.parameters === null ? undefined : object(f.parameters, `${p}.function.parameters`);
    const strict = optBool(f.strict, `${p}.function.strict`);
    return { name, description: optString(f.description, `${p}.function.description`), parameters, strict };
  });
  const names = new Set<string>();
  for (const t of tools) {
    if (names.has(t.name)) throw badParam('tools', `two tools are named "${t.name}"`);
    names.add(t.name);
  }
  if (beta && tools.some((t) => t.strict)) {
    if (!tools.every((t) => t.strict)) throw badParam('tools', 'strict mode needs "strict": true on every function (they cannot be mixed)');
    tools.forEach((t, i) => checkStrictSchema(t.parameters ?? { type: 'object', properties: {}, required: [], additionalProperties: false }, `tools[${i}].function.parameters`));
  }
  return tools;
}

export function parseToolChoice(v: unknown, tools: readonly ChatTool[]): ToolChoice {
  if (v === undefined || v === null) return tools.length ? 'auto' : 'none';
  let choice: ToolChoice;
  if (typeof v === 'string') choice = oneOf(v, 'tool_choice', ['none', 'auto', 'required'] as const);
  else {
    const c = object(v, 'tool_choice');
    if (c.type !== 'function') throw badParam('tool_choice.type', 'tool_choice.type must be "function"');
    choice = { name: string(object(c.function, 'tool_choice.function').name, 'tool_choice.function.name') };
  }
  if (choice !== 'none' && choice !== 'auto' && !tools.length) throw badParam('tool_choice', 'tool_choice needs tools');
  if (typeof choice === 'object' && !tools.some((t) => t.name === (choice as { name: string }).name)) {
    throw badParam('tool_choice.function.name', `tool_choice names "${choice.name}", which is not in tools`);
  }
  return choice;
}

function parseToolCalls(v: unknown, param: string): ChatToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  return array(v, param).map((c, i) => {
    const call = object(c, `${param}[${i}]`);
    if (call.type !== undefined && call.type !== 'function') throw badParam(`${param}[${i}].type`, `${param}[${i}].type must be "function"`);
    const f = object(call.function, `${param}[${i}].function`);
    return { id: optString(call.id, `${param}[${i}].id`) ?? '', name: string(f.name, `${param}[${i}].function.name`), arguments: optString(f.arguments, `${param}[${i}].function.arguments`) ?? '{}' };
  });
}

export function parseMessages(v: unknown, beta: boolean): ChatTurn[] {
  const list = array(v, 'messages');
  if (list.length === 0) throw badParam('messages', 'messages must have at least one message');
  return list.map((raw, i): ChatTurn => {
    const p = `messages[${i}]`;
    const m = object(raw, p);
    const role = oneOf(m.role, `${p}.role`, ['system', 'user', 'assistant', 'tool'] as const);
    switch (role) {
      case 'system':
      case 'user':
        return { role, content: contentText(m.content, `${p}.content`, false) };
      case 'tool':
        return { role, content: contentText(m.content, `${p}.content`, false), toolCallId: string(m.tool_call_id, `${p}.tool_call_id`) };
      case 'assistant': {
        const prefix = optBool(m.prefix, `${p}.prefix`) ?? false;
        if (prefix && !beta) throw badParam(`${p}.prefix`, 'chat prefix completion ("prefix": true) is a beta feature: use the /beta base URL');
        if (prefix && i !== list.length - 1) throw badParam(`${p}.prefix`, '"prefix": true is only allowed on the last message');
        const toolCalls = parseToolCalls(m.tool_calls, `${p}.tool_calls`);
        const reasoning = optString(m.reasoning_content, `${p}.reasoning_content`);
        return { role, content: contentText(m.content, `${p}.content`, true), reasoning, toolCalls, prefix };
      }
    }
  });
}

export function parseResponseFormat(v: unknown): ChatJob['responseFormat'] {
  if (v === undefined || v === null) return 'text';
  const rf = object(v, 'response_format');
  const type = oneOf(rf.type, 'response_format.type', ['text', 'json_object', 'json_schema'] as const);
  if (type !== 'json_schema') return type;
  const js = object(rf.json_schema, 'response_format.json_schema');
  return { schema: object(js.schema, 'response_format.json_schema.schema') };
}

interface ChatRequest {
  readonly job: ChatJob;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

function parseChatRequest(body: Body, x: Exchange, backendReasoning: boolean): ChatRequest {
  const beta = x.beta;
  const messages = parseMessages(body.messages, beta);
  const tools = parseTools(body.tools, beta);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  const thinking = parseThinking(body.thinking) ?? true;
  const effort = parseEffort(body.reasoning_effort, 'reasoning_effort');
  const logprobs = optBool(body.logprobs, 'logprobs') ?? false;
  const topLogprobs = optInt(body.top_logprobs, 'top_logprobs', 0, 20) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw badParam('top_logprobs', 'top_logprobs needs "logprobs": true');
  const maxTokens = optInt(body.max_tokens ?? body.max_completion_tokens, body.max_tokens !== undefined ? 'max_tokens' : 'max_completion_tokens', 1, x.server.options.maxTokens);
  optNumber(body.presence_penalty, 'presence_penalty', -2, 2); // deprecated: accepted, no effect
  optNumber(body.frequency_penalty, 'frequency_penalty', -2, 2);
  optInt(body.n, 'n', 1, 1); // one choice per request, as DeepSeek
  const userId = optString(body.user_id, 'user_id');
  if (userId !== undefined && (!/^[A-Za-z0-9_-]*$/.test(userId) || Buffer.byteLength(userId) > 512)) throw badParam('user_id', 'user_id must be at most 512 characters of A–Z, a–z, 0–9, _ and -');
  const streamOptions = body.stream_options === undefined || body.stream_options === null ? {} : object(body.stream_options, 'stream_options');
  const job: ChatJob = {
    model: string(body.model, 'model'),
    messages,
    think: backendReasoning ? thinkMode(thinking, effort) : 'none',
    tools, toolChoice,
    parallelToolCalls: optBool(body.parallel_tool_calls, 'parallel_tool_calls') ?? true,
    responseFormat: parseResponseFormat(body.response_format),
    maxTokens,
    stop: stopList(body.stop),
    temperature: optNumber(body.temperature, 'temperature', 0, 2),
    topP: optNumber(body.top_p, 'top_p', 0, 1),
    seed: optInt(body.seed, 'seed', 0, 2 ** 32 - 1),
    logprobs, topLogprobs, userId,
    signal: x.signal,
  };
  return { job, stream: optBool(body.stream, 'stream') ?? false, includeUsage: optBool(streamOptions.include_usage, 'stream_options.include_usage') ?? false };
}

export function usageJson(u: ChatUsage): Record<string, unknown> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_cache_hit_tokens: u.cachedTokens,
    prompt_cache_miss_tokens: u.promptTokens - u.cachedTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

function logprobJson(l: TokenLogprobInfo): Record<string, unknown> {
  return { token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) };
}

function toolCallJson(c: ChatToolCall, index?: number): Record<string, unknown> {
  return { ...(index !== undefined ? { index } : {}), id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } };
}

export async function chatCompletions(x: Exchange): Promise<void> {
  const backend = x.server.registry.get(x.body.model);
  const { job, stream, includeUsage } = parseChatRequest(x.body, x, backend.info.reasoning);
  const run = backend.chat(job);
  const head = { id: randomUUID(), created: Math.floor(Date.now() / 1000), model: job.model, system_fingerprint: SYSTEM_FINGERPRINT };
  if (stream) await streamChat(x, run, head, job, includeUsage);
  else await wholeChat(x, run, head, job);
}

async function wholeChat(x: Exchange, run: ChatRun, head: Record<string, unknown>, job: ChatJob): Promise<void> {
  const body = new PatientJson(x.res, x.server.options.keepAliveMs);
  let content = '', reasoning = '';
  const calls: ChatToolCall[] = [];
  const lp = { content: [] as unknown[], reasoning_content: [] as unknown[] };
  let outcome: ChatOutcome;
  try {
    for await (const e of run) {
      if (e.type === 'tool_call') { calls.push(e.call); continue; }
      if (e.type === 'reasoning') reasoning += e.text;
      else content += e.text;
      for (const l of e.logprobs ?? []) lp[e.type === 'reasoning' ? 'reasoning_content' : 'content'].push(logprobJson(l));
    }
    outcome = await run.outcome;
  } catch (err) {
    body.cancel();
    throw err;
  }
  const message: Record<string, unknown> = { role: 'assistant', content };
  if (job.think !== 'none') message.reasoning_content = reasoning;
  if (calls.length) message.tool_calls = calls.map((c) => toolCallJson(c));
  body.end({
    ...head, object: 'chat.completion',
    choices: [{ index: 0, message, logprobs: job.logprobs ? lp : null, finish_reason: outcome.finishReason }],
    usage: usageJson(outcome.usage),
  });
}

async function streamChat(x: Exchange, run: ChatRun, head: Record<string, unknown>, job: ChatJob, includeUsage: boolean): Promise<void> {
  await run.ready;
  const sse = new EventStream(x.res, x.server.options.keepAliveMs);
  const thinking = job.think !== 'none';
  const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) => sse.send({
    ...head, object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }],
    ...(includeUsage ? { usage: null } : {}),
  });
  try {
    chunk(thinking ? { role: 'assistant', content: null, reasoning_content: '' } : { role: 'assistant', content: '' });
    for await (const e of run) chunk(...deltaOf(e, thinking, job.logprobs));
    const outcome = await run.outcome;
    chunk({}, { finish_reason: outcome.finishReason });
    if (includeUsage) sse.send({ ...head, object: 'chat.completion.chunk', choices: [], usage: usageJson(outcome.usage) });
    sse.send('[DONE]');
  } catch (err) {
    // Headers are out: the failure becomes an error event, then the stream ends.
    const e = err instanceof ApiError ? err : new ApiError(500, err instanceof Error ? err.message : String(err), { type: 'server_error' });
    sse.send(e.toJSON());
  } finally {
    sse.end();
  }
}

function deltaOf(e: ChatEvent, thinking: boolean, logprobs: boolean): [Record<string, unknown>, Record<string, unknown>?] {
  if (e.type === 'tool_call') return [{ tool_calls: [toolCallJson(e.call, e.index)] }];
  const delta = e.type === 'reasoning' ? { content: null, reasoning_content: e.text } : thinking ? { content: e.text, reasoning_content: null } : { content: e.text };
  if (!logprobs || !e.logprobs?.length) return [delta];
  return [delta, { logprobs: { [e.type === 'reasoning' ? 'reasoning_content' : 'content']: e.logprobs.map(logprobJson) } }];
}
