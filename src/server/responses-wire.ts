/**
 * ChatEvents → the Responses API wire: semantic stream events with a rising sequence_number
 * (response.created … response.completed / incomplete / failed; no `[DONE]`) and the `response`
 * object. Both come from one transcript, so a streamed answer and a whole one are the same
 * response. Output items: a reasoning item (thinking mode), a message, function calls.
 */
import type { ApiError } from './errors.js';
import { randomBytes } from 'node:crypto';
import type { ChatEvent, ChatOutcome, ChatUsage } from './chat.js';
import type { ResponsesEcho } from './responses-request.js';

export interface WireEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

type Status = 'in_progress' | 'completed' | 'incomplete';

type Item =
  | { type: 'reasoning'; id: string; summary: []; content: { type: 'reasoning_text'; text: string }[]; status: Status }
  | { type: 'message'; id: string; role: 'assistant'; status: Status; content: { type: 'output_text'; text: string; annotations: []; logprobs: [] }[] }
  | { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status: Status };

const reasoningItem = (): Item => ({ type: 'reasoning', id: newId('rs'), summary: [], content: [{ type: 'reasoning_text', text: '' }], status: 'in_progress' });
const messageItem = (): Item => ({ type: 'message', id: newId('msg'), role: 'assistant', status: 'in_progress', content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }] });

export const newId = (prefix: string): string => `${prefix}_${randomBytes(16).toString('hex')}`;

export function responsesUsage(u: ChatUsage): Record<string, unknown> {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** How a response ended, from the outcome (or a failure). */
interface End {
  readonly status: 'completed' | 'incomplete' | 'failed';
  readonly incomplete?: 'max_output_tokens' | 'content_filter';
  readonly error?: { code: string; message: string };
  readonly usage?: ChatUsage;
}

function endOf(outcome: ChatOutcome): End {
  const usage = outcome.usage;
  switch (outcome.finishReason) {
    case 'length': return { status: 'incomplete', incomplete: 'max_output_tokens', usage };
    case 'content_filter': return { status: 'incomplete', incomplete: 'content_filter', usage };
    case 'insufficient_system_resource': return { status: 'failed', error: { code: 'server_error', message: 'the server ran short of resources and cut the output short; retry later' }, usage };
    default: return { status: 'completed', usage };
  }
}

export class ResponsesTranscript {
  private seq = 0;
  private readonly output: Item[] = [];
  private open = false;
  private end?: End;

  /** `thinking`: the output starts with a reasoning item (even when empty: it is passed back). */
  constructor(readonly id: string, readonly createdAt: number, readonly model: string, private readonly echo: ResponsesEcho, private readonly thinking: boolean) {}

  start(): WireEvent[] {
    const out = [this.wire('response.created', { response: this.response() }), this.wire('response.in_progress', { response: this.response() })];
    if (this.thinking) out.push(...this.begin(reasoningItem()));
    return out;
  }

  push(e: ChatEvent): WireEvent[] {
    if (e.type === 'tool_call') {
      const { id: call_id, name, arguments: args } = e.call;
      const item: Item = { type: 'function_call', id: newId('fc'), call_id, name, arguments: '', status: 'in_progress' };
      const out = this.begin(item);
      item.arguments = args;
      out.push(this.wire('response.function_call_arguments.delta', { ...this.at(), delta: args }));
      out.push(this.wire('response.function_call_arguments.done', { ...this.at(), name, arguments: args }));
      out.push(...this.close('completed'));
      return out;
    }
    if (!e.text) return [];
    const kind = e.type === 'reasoning' ? 'reasoning' : 'message';
    const out = this.open && this.current?.type === kind ? [] : this.begin(kind === 'reasoning' ? reasoningItem() : messageItem());
    const item = this.current!;
    if (item.type === 'reasoning') {
      item.content[0].text += e.text;
      out.push(this.wire('response.reasoning_text.delta', { ...this.at(), content_index: 0, delta: e.text }));
    } else if (item.type === 'message') {
      item.content[0].text += e.text;
      out.push(this.wire('response.output_text.delta', { ...this.at(), content_index: 0, delta: e.text, logprobs: [] }));
    }
    return out;
  }

  /** The last events: open items closed, an empty message if nothing was answered, the final state. */
  finish(outcome: ChatOutcome): WireEvent[] {
    return this.conclude(endOf(outcome));
  }

  /** The generation failed after the stream began. */
  fail(err: ApiError): WireEvent[] {
    return this.conclude({ status: 'failed', error: { code: 'server_error', message: err.message } });
  }

  /** The response object: in progress, or final after finish() / fail(). */
  response(): Record<string, unknown> {
    const e = this.end;
    const r = this.echo;
    return {
      id: this.id, object: 'response', created_at: this.createdAt, status: e?.status ?? 'in_progress', background: false,
      error: e?.error ?? null, incomplete_details: e?.incomplete ? { reason: e.incomplete } : null,
      instructions: r.instructions, max_output_tokens: r.maxOutputTokens, model: this.model,
      output: structuredClone(this.output), parallel_tool_calls: r.parallelToolCalls, previous_response_id: null,
      reasoning: { effort: r.effort, summary: null }, store: false, temperature: r.temperature,
      text: { format: r.format }, tool_choice: r.toolChoice, tools: r.tools, top_p: r.topP, truncation: 'disabled',
      usage: e?.usage ? responsesUsage(e.usage) : null, metadata: r.metadata,
    };
  }

  private conclude(end: End): WireEvent[] {
    const itemStatus: Status = end.status === 'completed' ? 'completed' : 'incomplete';
    const out = this.close(itemStatus);
    if (!this.output.some((i) => i.type !== 'reasoning') && end.status !== 'failed') {
      out.push(...this.begin(messageItem()));
      out.push(...this.close(itemStatus));
    }
    this.end = end;
    const name = end.status === 'completed' ? 'response.completed' : end.status === 'incomplete' ? 'response.incomplete' : 'response.failed';
    out.push(this.wire(name, { response: this.response() }));
    return out;
  }

  private get current(): Item | undefined {
    return this.output.at(-1);
  }

  private at(): { item_id: string; output_index: number } {
    return { item_id: this.current!.id, output_index: this.output.length - 1 };
  }

  private wire(type: string, fields: Record<string, unknown>): WireEvent {
    return { event: type, data: { type, sequence_number: this.seq++, ...fields } };
  }

  /** Closes the open item, then adds `item` (announced empty) and its content part. */
  private begin(item: Item): WireEvent[] {
    const out = this.close('completed');
    this.output.push(item);
    this.open = true;
    // Announced without its content part, which content_part.added then brings (as OpenAI does).
    const announced = item.type === 'function_call' ? structuredClone(item) : { ...structuredClone(item), content: [] };
    out.push(this.wire('response.output_item.added', { output_index: this.output.length - 1, item: announced }));
    if (item.type !== 'function_call') out.push(this.wire('response.content_part.added', { ...this.at(), content_index: 0, part: structuredClone(item.content[0]) }));
    return out;
  }

  private close(status: Status): WireEvent[] {
    if (!this.open) return [];
    this.open = false;
    const item = this.current!;
    item.status = status;
    const out: WireEvent[] = [];
    if (item.type === 'reasoning') out.push(this.wire('response.reasoning_text.done', { ...this.at(), content_index: 0, text: item.content[0].text }));
    if (item.type === 'message') out.push(this.wire('response.output_text.done', { ...this.at(), content_index: 0, text: item.content[0].text, logprobs: [] }));
    if (item.type !== 'function_call') out.push(this.wire('response.content_part.done', { ...this.at(), content_index: 0, part: structuredClone(item.content[0]) }));
    out.push(this.wire('response.output_item.done', { output_index: this.output.length - 1, item: structuredClone(item) }));
    return out;
  }
}
