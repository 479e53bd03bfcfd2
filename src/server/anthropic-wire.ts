/**
 * ChatEvents → the Anthropic Messages wire: the stream's named events (message_start, one
 * content_block_start / _delta… / _stop per block, message_delta, message_stop) and the whole
 * `message` object. Both come from one transcript, so a streamed answer and a whole one are the
 * same message.
 */
import type { ApiError } from './errors.js';
import type { ChatEvent, ChatOutcome, ChatUsage, FinishReason } from './chat.js';

/** One SSE event: its `event:` name and its data. */
export interface WireEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

type Block =
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export type StopReason = 'end_turn' | 'max_tokens' | 'tool_use' | 'refusal' | 'stop_sequence';

/**
 * Why the answer ended. A run the server cut short for lack of resources reads as max_tokens (the
 * answer is truncated: a client continues or retries), a content filter as Anthropic's refusal.
 * A stop string that ended it is `stop_sequence` (when the backend reports which one).
 */
export function stopReason(reason: FinishReason, stopSequence?: string): StopReason {
  if (reason === 'stop' && stopSequence !== undefined) return 'stop_sequence';
  switch (reason) {
    case 'length':
    case 'insufficient_system_resource': return 'max_tokens';
    case 'tool_calls': return 'tool_use';
    case 'content_filter': return 'refusal';
    case 'stop': return 'end_turn';
  }
}

/** Anthropic counts cache reads apart from input_tokens (their sum is the prompt). */
export function anthropicUsage(u: ChatUsage): Record<string, number> {
  return {
    input_tokens: u.promptTokens - u.cachedTokens,
    output_tokens: u.completionTokens,
    cache_read_input_tokens: u.cachedTokens,
    cache_creation_input_tokens: 0,
  };
}

/** Tool arguments as the input object (a call cut short becomes {}: Anthropic's input is an object). */
export function toolInput(args: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(args);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {};
  } catch {
    return {};
  }
}

export class AnthropicTranscript {
  private readonly blocks: Block[] = [];
  private open = false;

  /** `thinking`: the answer has a thinking block (first, even when empty: it is passed back). */
  constructor(readonly id: string, readonly model: string, private readonly thinking: boolean) {}

  start(): WireEvent[] {
    const message = { ...this.head(), content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage({ promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 }) };
    const out: WireEvent[] = [{ event: 'message_start', data: { type: 'message_start', message } }];
    if (this.thinking) out.push(...this.begin({ type: 'thinking', thinking: '', signature: '' }));
    return out;
  }

  push(e: ChatEvent): WireEvent[] {
    if (e.type === 'tool_call') {
      const input = toolInput(e.call.arguments);
      const { id, name } = e.call;
      // Announced with an empty input, which the one input_json_delta then fills.
      const out = this.begin({ type: 'tool_use', id, name, input }, { type: 'tool_use', id, name, input: {} });
      out.push(this.delta({ type: 'input_json_delta', partial_json: JSON.stringify(input) }), ...this.close());
      return out;
    }
    if (!e.text) return [];
    const kind = e.type === 'reasoning' ? 'thinking' : 'text';
    const out = this.current?.type === kind && this.open ? [] : this.begin(kind === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : { type: 'text', text: '' });
    const b = this.current!;
    if (b.type === 'thinking') { b.thinking += e.text; out.push(this.delta({ type: 'thinking_delta', thinking: e.text })); }
    else if (b.type === 'text') { b.text += e.text; out.push(this.delta({ type: 'text_delta', text: e.text })); }
    return out;
  }

  finish(outcome: ChatOutcome): WireEvent[] {
    return [
      ...this.close(),
      { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: stopReason(outcome.finishReason, outcome.stopSequence), stop_sequence: outcome.stopSequence ?? null }, usage: anthropicUsage(outcome.usage) } },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ];
  }

  /** A failure after the stream began: Anthropic's `error` event. */
  fail(err: ApiError): WireEvent[] {
    return [{ event: 'error', data: err.toAnthropic() }];
  }

  /** The whole message, once the run has ended. */
  message(outcome: ChatOutcome): Record<string, unknown> {
    return { ...this.head(), content: this.blocks, stop_reason: stopReason(outcome.finishReason, outcome.stopSequence), stop_sequence: outcome.stopSequence ?? null, usage: anthropicUsage(outcome.usage) };
  }

  private head(): Record<string, unknown> {
    return { id: this.id, type: 'message', role: 'assistant', model: this.model };
  }

  private get current(): Block | undefined {
    return this.blocks.at(-1);
  }

  private begin(block: Block, announced: Block = block): WireEvent[] {
    const out = this.close();
    this.blocks.push(block);
    this.open = true;
    out.push({ event: 'content_block_start', data: { type: 'content_block_start', index: this.blocks.length - 1, content_block: { ...announced } } });
    return out;
  }

  private delta(delta: Record<string, unknown>): WireEvent {
    return { event: 'content_block_delta', data: { type: 'content_block_delta', index: this.blocks.length - 1, delta } };
  }

  /** Ends the open block; a thinking block gets its (empty: nothing is signed here) signature first. */
  private close(): WireEvent[] {
    if (!this.open) return [];
    this.open = false;
    const index = this.blocks.length - 1;
    const out: WireEvent[] = [];
    if (this.current!.type === 'thinking') out.push(this.delta({ type: 'signature_delta', signature: '' }));
    out.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index } });
    return out;
  }
}
