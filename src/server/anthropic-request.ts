/**
 * An Anthropic Messages request (DeepSeek's `/anthropic` endpoint, api-deepseek.md §15) as a
 * ChatJob: system and content blocks become chat turns (thinking → reasoning, tool_use → tool
 * calls, tool_result → tool turns), `thinking` / `output_config.effort` the reasoning mode.
 * Fields DeepSeek ignores (top_k, container, mcp_servers, service_tier, cache_control, …) are
 * ignored here too.
 */
import { createHash } from 'node:crypto';
import type { ChatJob, ChatTool, ChatToolCall, ChatTurn, ToolChoice } from './chat.js';
import { ApiError, badParam } from './errors.js';
import { parseEffort, thinkMode } from './openai-chat.js';
import { array, object, oneOf, optBool, optInt, optNumber, optString, stopList, string, type Body } from './validate.js';

export interface AnthropicRequest {
  readonly job: ChatJob;
  readonly stream: boolean;
}

export interface AnthropicContext {
  /** The registered model the request resolved to. */
  readonly model: string;
  /** That model can think. */
  readonly reasoning: boolean;
  /** The server's largest max_tokens. */
  readonly maxTokens: number;
  readonly signal: AbortSignal;
}

/** The registered model an Anthropic model name means: its own name, or any `claude*` → the first model. */
export function resolveAnthropicModel(requested: unknown, names: readonly string[]): string | undefined {
  if (typeof requested !== 'string') return undefined;
  if (names.includes(requested)) return requested;
  return requested.startsWith('claude') ? names[0] : undefined;
}

export function parseAnthropicRequest(body: Body, ctx: AnthropicContext): AnthropicRequest {
  if (body.max_tokens === undefined || body.max_tokens === null) throw badParam('max_tokens', 'max_tokens is required');
  const maxTokens = optInt(body.max_tokens, 'max_tokens', 1, ctx.maxTokens);
  const system = parseSystem(body.system);
  const messages = parseMessages(body.messages);
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  const choice = body.tool_choice === undefined || body.tool_choice === null ? {} : object(body.tool_choice, 'tool_choice');
  const thinking = parseThinking(body.thinking) ?? true; // DeepSeek: thinking defaults on (§5)
  const config = body.output_config === undefined || body.output_config === null ? {} : object(body.output_config, 'output_config');
  const effort = parseEffort(config.effort, 'output_config.effort');
  const metadata = body.metadata === undefined || body.metadata === null ? {} : object(body.metadata, 'metadata');
  const job: ChatJob = {
    model: ctx.model,
    messages: system === undefined ? messages : [{ role: 'system', content: system }, ...messages],
    think: ctx.reasoning ? thinkMode(thinking, effort) : 'none',
    tools, toolChoice,
    parallelToolCalls: !(optBool(choice.disable_parallel_tool_use, 'tool_choice.disable_parallel_tool_use') ?? false),
    responseFormat: 'text',
    maxTokens,
    stop: stopList(body.stop_sequences, 'stop_sequences'),
    temperature: optNumber(body.temperature, 'temperature', 0, 2),
    topP: optNumber(body.top_p, 'top_p', 0, 1),
    logprobs: false, topLogprobs: 0,
    userId: userId(optString(metadata.user_id, 'metadata.user_id')),
    signal: ctx.signal,
  };
  return { job, stream: optBool(body.stream, 'stream') ?? false };
}

/** `thinking.type`: enabled (or Anthropic's newer `adaptive`) / disabled; budget_tokens is ignored. */
function parseThinking(v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  return oneOf(object(v, 'thinking').type, 'thinking.type', ['enabled', 'adaptive', 'disabled'] as const) !== 'disabled';
}

/** `system`: a string or text blocks. */
function parseSystem(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return string(v, 'system');
  return array(v, 'system').map((b, i) => textOf(b, `system[${i}]`)).join('\n\n');
}

function textOf(v: unknown, param: string): string {
  const block = object(v, param);
  if (block.type !== 'text') throw badParam(`${param}.type`, `${param}.type must be "text", got ${JSON.stringify(block.type)}`);
  return string(block.text, `${param}.text`);
}

interface Turn {
  role: ChatTurn['role'];
  content: string;
  reasoning?: string;
  toolCalls?: ChatToolCall[];
  toolCallId?: string;
  prefix?: boolean;
}

function parseMessages(v: unknown): ChatTurn[] {
  const list = array(v, 'messages');
  if (list.length === 0) throw badParam('messages', 'messages must have at least one message');
  const turns: Turn[] = [];
  list.forEach((raw, i) => {
    const p = `messages[${i}]`;
    const m = object(raw, p);
    const role = oneOf(m.role, `${p}.role`, ['user', 'assistant'] as const);
    if (typeof m.content === 'string') turns.push({ role, content: string(m.content, `${p}.content`) });
    else if (role === 'user') turns.push(...userTurns(array(m.content, `${p}.content`), `${p}.content`));
    else turns.push(assistantTurn(array(m.content, `${p}.content`), `${p}.content`));
  });
  // A last assistant message is a prefill: the answer continues it.
  const last = turns.at(-1)!;
  if (last.role === 'assistant' && !last.toolCalls) last.prefix = true;
  return turns;
}

/** A user message's blocks in order: runs of text become user turns, tool results tool turns. */
function userTurns(blocks: unknown[], param: string): Turn[] {
  const turns: Turn[] = [];
  let text: string[] = [];
  const flush = () => { if (text.length) turns.push({ role: 'user', content: text.join('\n\n') }); text = []; };
  blocks.forEach((raw, i) => {
    const p = `${param}[${i}]`;
    const b = object(raw, p);
    switch (b.type) {
      case 'text': text.push(string(b.text, `${p}.text`)); break;
      case 'tool_result': {
        flush();
        const content = b.content === undefined || b.content === null ? ''
          : typeof b.content === 'string' ? string(b.content, `${p}.content`)
            : array(b.content, `${p}.content`).map((c, j) => textOf(c, `${p}.content[${j}]`)).join('\n\n');
        // The chat turn has no error flag; the model learns of the failure from the text.
        const failed = optBool(b.is_error, `${p}.is_error`) ?? false;
        turns.push({ role: 'tool', content: failed ? `Error: ${content}` : content, toolCallId: string(b.tool_use_id, `${p}.tool_use_id`) });
        break;
      }
      default: throw unsupportedBlock(b.type, p);
    }
  });
  flush();
  if (!turns.length) throw badParam(param, `${param} must have at least one block`);
  return turns;
}

/** An assistant message's blocks: text → content, thinking → reasoning, tool_use → tool calls. */
function assistantTurn(blocks: unknown[], param: string): Turn {
  const text: string[] = [];
  let reasoning: string | undefined;
  const calls: ChatToolCall[] = [];
  blocks.forEach((raw, i) => {
    const p = `${param}[${i}]`;
    const b = object(raw, p);
    switch (b.type) {
      case 'text': text.push(string(b.text, `${p}.text`)); break;
      case 'thinking': reasoning = (reasoning ?? '') + string(b.thinking, `${p}.thinking`); break;
      case 'redacted_thinking': break; // opaque to this server
      case 'tool_use': calls.push({
        id: string(b.id, `${p}.id`),
        name: string(b.name, `${p}.name`),
        arguments: JSON.stringify(object(b.input, `${p}.input`)),
      }); break;
      default: throw unsupportedBlock(b.type, p);
    }
  });
  return { role: 'assistant', content: text.join('\n\n'), reasoning, toolCalls: calls.length ? calls : undefined };
}

function unsupportedBlock(type: unknown, param: string): ApiError {
  return badParam(`${param}.type`, `content block type ${JSON.stringify(type)} is not supported here (text, thinking, redacted_thinking, tool_use and tool_result are)`);
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/** Custom tools only: {name, description, input_schema}. */
function parseTools(v: unknown): ChatTool[] {
  if (v === undefined || v === null) return [];
  const names = new Set<string>();
  return array(v, 'tools', 128).map((raw, i): ChatTool => {
    const p = `tools[${i}]`;
    const t = object(raw, p);
    if (t.type !== undefined && t.type !== null && t.type !== 'custom') throw badParam(`${p}.type`, `tool type ${JSON.stringify(t.type)} is not supported (only custom tools with an input_schema)`);
    const name = string(t.name, `${p}.name`);
    if (!TOOL_NAME.test(name)) throw badParam(`${p}.name`, `${p}.name must be 1–128 characters of a–z, A–Z, 0–9, _ and -, got ${JSON.stringify(name.slice(0, 80))}`);
    if (names.has(name)) throw badParam('tools', `two tools are named "${name}"`);
    names.add(name);
    return { name, description: optString(t.description, `${p}.description`), parameters: object(t.input_schema, `${p}.input_schema`) };
  });
}

/** auto / any (must call some tool) / tool (must call this one) / none; disable_parallel_tool_use is read apart. */
function parseToolChoice(v: unknown, tools: readonly ChatTool[]): ToolChoice {
  if (v === undefined || v === null) return tools.length ? 'auto' : 'none';
  const c = object(v, 'tool_choice');
  const type = oneOf(c.type, 'tool_choice.type', ['auto', 'any', 'tool', 'none'] as const);
  if (type === 'auto' || type === 'none') return type;
  if (!tools.length) throw badParam('tool_choice', `tool_choice "${type}" needs tools`);
  if (type === 'any') return 'required';
  const name = string(c.name, 'tool_choice.name');
  if (!tools.some((t) => t.name === name)) throw badParam('tool_choice.name', `tool_choice names "${name}", which is not in tools`);
  return { name };
}

/**
 * metadata.user_id partitions the cache and scheduling. Anthropic allows any text there (Claude
 * Code sends JSON); what is not a DeepSeek-style id is hashed into one.
 */
function userId(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  return /^[A-Za-z0-9_-]{1,512}$/.test(v) ? v : createHash('sha256').update(v).digest('hex');
}
