/**
 * An OpenAI Responses request (api-deepseek.md §14) as a ChatJob. The API is stateless here as at
 * DeepSeek: the whole conversation comes in `input` every time, as messages, function calls,
 * their outputs and reasoning items (whose text becomes the next assistant turn's reasoning).
 */
import type { ChatJob, ChatTool, ChatToolCall, ChatTurn, ToolChoice } from './chat.js';
import { badParam } from './errors.js';
import { parseEffort, thinkMode } from './openai-chat.js';
import { array, object, oneOf, optBool, optInt, optNumber, optString, string, type Body } from './validate.js';

export interface ResponsesRequest {
  readonly job: ChatJob;
  readonly stream: boolean;
  /** Echoed in the response object. */
  readonly echo: ResponsesEcho;
}

/** The request settings a response object repeats. */
export interface ResponsesEcho {
  readonly instructions: string | null;
  readonly maxOutputTokens: number | null;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly toolChoice: unknown;
  readonly tools: readonly unknown[];
  readonly effort: string | null;
  readonly format: Record<string, unknown>;
  readonly parallelToolCalls: boolean;
  readonly metadata: Record<string, unknown>;
}

export interface ResponsesContext {
  readonly reasoning: boolean;
  readonly maxTokens: number;
  readonly signal: AbortSignal;
}

const STATELESS = 'this server is stateless, as the DeepSeek Responses API: nothing is stored, so send the whole conversation in "input" every time';

export function parseResponsesRequest(body: Body, ctx: ResponsesContext): ResponsesRequest {
  if (body.previous_response_id !== undefined && body.previous_response_id !== null) throw badParam('previous_response_id', `previous_response_id cannot be used: ${STATELESS}`);
  if (body.conversation !== undefined && body.conversation !== null) throw badParam('conversation', `conversation cannot be used: ${STATELESS}`);
  if (optBool(body.store, 'store')) throw badParam('store', `"store": true cannot be used: ${STATELESS}`);
  if (optBool(body.background, 'background')) throw badParam('background', '"background": true is not supported; stream the response instead');
  const instructions = optString(body.instructions, 'instructions');
  const input = parseInput(body.input);
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  const reasoning = body.reasoning === undefined || body.reasoning === null ? {} : object(body.reasoning, 'reasoning');
  const off = reasoning.effort === 'none';
  const effort = off ? undefined : parseEffort(reasoning.effort, 'reasoning.effort');
  const text = body.text === undefined || body.text === null ? {} : object(body.text, 'text');
  const { responseFormat, format } = parseFormat(text.format);
  const maxTokens = optInt(body.max_output_tokens, 'max_output_tokens', 1, ctx.maxTokens);
  const temperature = optNumber(body.temperature, 'temperature', 0, 2);
  const topP = optNumber(body.top_p, 'top_p', 0, 1);
  const think = ctx.reasoning ? thinkMode(!off, effort) : 'none';
  const parallelToolCalls = optBool(body.parallel_tool_calls, 'parallel_tool_calls') ?? true;
  const job: ChatJob = {
    model: string(body.model, 'model'),
    messages: instructions === undefined ? input : [{ role: 'system', content: instructions }, ...input],
    think, tools, toolChoice, parallelToolCalls, responseFormat, maxTokens,
    stop: [], temperature, topP,
    logprobs: false, topLogprobs: 0,
    signal: ctx.signal,
  };
  const echo: ResponsesEcho = {
    instructions: instructions ?? null, maxOutputTokens: maxTokens ?? null, temperature: temperature ?? null, topP: topP ?? null,
    toolChoice: body.tool_choice ?? (tools.length ? 'auto' : 'none'), tools: (body.tools as unknown[] | undefined) ?? [],
    effort: think === 'none' ? null : typeof reasoning.effort === 'string' ? reasoning.effort : think,
    format, parallelToolCalls,
    metadata: body.metadata === undefined || body.metadata === null ? {} : object(body.metadata, 'metadata'),
  };
  return { job, stream: optBool(body.stream, 'stream') ?? false, echo };
}

interface Turn {
  role: ChatTurn['role'];
  content: string;
  reasoning?: string;
  toolCalls?: ChatToolCall[];
  toolCallId?: string;
}

/** `input`: a user message, or the conversation's items in order. */
function parseInput(v: unknown): ChatTurn[] {
  if (typeof v === 'string') return [{ role: 'user', content: string(v, 'input') }];
  const items = array(v, 'input');
  if (items.length === 0) throw badParam('input', 'input must have at least one item');
  const turns: Turn[] = [];
  let reasoning: string | undefined; // from a reasoning item, for the assistant turn after it
  const assistant = (): Turn => {
    const t: Turn = { role: 'assistant', content: '', reasoning };
    reasoning = undefined;
    turns.push(t);
    return t;
  };
  items.forEach((raw, i) => {
    const p = `input[${i}]`;
    const item = object(raw, p);
    const type = item.type ?? 'message';
    switch (type) {
      case 'message': {
        const role = oneOf(item.role, `${p}.role`, ['user', 'assistant', 'system', 'developer'] as const);
        const content = messageText(item.content, `${p}.content`);
        if (role === 'assistant') assistant().content = content;
        else turns.push({ role: role === 'developer' ? 'system' : role, content });
        break;
      }
      case 'function_call': {
        // Calls right after an assistant message (or each other) belong to that turn.
        const last = turns.at(-1);
        const turn = last?.role === 'assistant' && reasoning === undefined ? last : assistant();
        (turn.toolCalls ??= []).push({
          id: string(item.call_id, `${p}.call_id`), name: string(item.name, `${p}.name`), arguments: string(item.arguments, `${p}.arguments`),
        });
        break;
      }
      case 'function_call_output':
        turns.push({ role: 'tool', content: outputText(item.output, `${p}.output`), toolCallId: string(item.call_id, `${p}.call_id`) });
        break;
      case 'reasoning':
        reasoning = (reasoning ?? '') + reasoningText(item, p);
        break;
      case 'item_reference':
        throw badParam(`${p}.type`, `item references cannot be used: ${STATELESS}`);
      default:
        throw badParam(`${p}.type`, `input item type ${JSON.stringify(type)} is not supported (message, function_call, function_call_output and reasoning are)`);
    }
  });
  if (!turns.length) throw badParam('input', 'input has no message, function call or function output');
  return turns;
}

/** A message's content: a string, or input_text / output_text parts (a refusal counts as text). */
function messageText(v: unknown, param: string): string {
  if (typeof v === 'string') return string(v, param);
  return array(v, param).map((raw, i) => {
    const p = `${param}[${i}]`;
    const part = object(raw, p);
    switch (part.type) {
      case 'input_text':
      case 'output_text': return string(part.text, `${p}.text`);
      case 'refusal': return string(part.refusal, `${p}.refusal`);
      default: throw badParam(`${p}.type`, `content part type ${JSON.stringify(part.type)} is not supported by this model (input_text, output_text and refusal are)`);
    }
  }).join('\n\n');
}

function outputText(v: unknown, param: string): string {
  if (typeof v === 'string') return string(v, param);
  return array(v, param).map((raw, i) => {
    const part = object(raw, `${param}[${i}]`);
    if (part.type !== 'input_text') throw badParam(`${param}[${i}].type`, `function output part type ${JSON.stringify(part.type)} is not supported (only input_text)`);
    return string(part.text, `${param}[${i}].text`);
  }).join('\n\n');
}

/** The reasoning text of a reasoning item (its reasoning_text parts; a client may send none). */
function reasoningText(item: Body, param: string): string {
  if (item.content === undefined || item.content === null) return '';
  return array(item.content, `${param}.content`).map((raw, i) => {
    const part = object(raw, `${param}.content[${i}]`);
    if (part.type !== 'reasoning_text') throw badParam(`${param}.content[${i}].type`, `${param}.content[${i}].type must be "reasoning_text"`);
    return string(part.text, `${param}.content[${i}].text`);
  }).join('');
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Function tools only: {type: "function", name, description, parameters, strict}. */
function parseTools(v: unknown): ChatTool[] {
  if (v === undefined || v === null) return [];
  const names = new Set<string>();
  return array(v, 'tools', 128).map((raw, i): ChatTool => {
    const p = `tools[${i}]`;
    const t = object(raw, p);
    if (t.type !== 'function') throw badParam(`${p}.type`, `tool type ${JSON.stringify(t.type)} is not supported (only "function")`);
    const name = string(t.name, `${p}.name`);
    if (!TOOL_NAME.test(name)) throw badParam(`${p}.name`, `${p}.name must be 1–64 characters of a–z, A–Z, 0–9, _ and -, got ${JSON.stringify(name.slice(0, 80))}`);
    if (names.has(name)) throw badParam('tools', `two tools are named "${name}"`);
    names.add(name);
    const parameters = t.parameters === undefined || t.parameters === null ? undefined : object(t.parameters, `${p}.parameters`);
    return { name, description: optString(t.description, `${p}.description`), parameters, strict: optBool(t.strict, `${p}.strict`) };
  });
}

function parseToolChoice(v: unknown, tools: readonly ChatTool[]): ToolChoice {
  if (v === undefined || v === null) return tools.length ? 'auto' : 'none';
  let choice: ToolChoice;
  if (typeof v === 'string') choice = oneOf(v, 'tool_choice', ['none', 'auto', 'required'] as const);
  else {
    const c = object(v, 'tool_choice');
    if (c.type !== 'function') throw badParam('tool_choice.type', `tool_choice type ${JSON.stringify(c.type)} is not supported (a mode string, or {"type": "function", "name"})`);
    choice = { name: string(c.name, 'tool_choice.name') };
  }
  if (choice !== 'none' && choice !== 'auto' && !tools.length) throw badParam('tool_choice', 'tool_choice needs tools');
  if (typeof choice === 'object' && !tools.some((t) => t.name === (choice as { name: string }).name)) {
    throw badParam('tool_choice.name', `tool_choice names "${choice.name}", which is not in tools`);
  }
  return choice;
}

/** `text.format`: text, json_object, or json_schema (enforced). */
function parseFormat(v: unknown): { responseFormat: ChatJob['responseFormat']; format: Record<string, unknown> } {
  if (v === undefined || v === null) return { responseFormat: 'text', format: { type: 'text' } };
  const f = object(v, 'text.format');
  const type = oneOf(f.type, 'text.format.type', ['text', 'json_object', 'json_schema'] as const);
  if (type !== 'json_schema') return { responseFormat: type, format: { type } };
  const schema = object(f.schema, 'text.format.schema');
  string(f.name, 'text.format.name');
  return { responseFormat: { schema }, format: f };
}
