/**
 * A model's raw output, as it streams, split into what the API returns: reasoning, answer content
 * and tool calls. Text that might be the start of tool-call syntax is held back until it is known
 * not to be; the calls themselves are parsed once the output is complete (they are emitted whole).
 */
import { partialSuffix, ReasoningSplitter } from '../chat/reasoning.js';
import { parseV4Completion } from '../chat/deepseek-v4-parse.js';
import { toolCallsStart, type V4Version } from '../chat/deepseek-v4-encoding.js';
import { parseTemplateToolCalls, safeContentLength } from '../chat/tool-calls.js';
import { parseForcedJsonToolCalls } from '../engine/constrain/tool-calls.js';
import type { ChatEvent, ChatToolCall, TokenLogprobInfo } from './chat.js';
import { randomBytes } from 'node:crypto';

/**
 * How tool calls look in the output: V4's DSML block, a template model's own syntax, the JSON
 * array of a forced call (tool_choice required / named), or none (no tools offered).
 */
export type ToolSyntax = 'dsml' | 'template' | 'forced-json' | 'none';

export interface AnswerOptions {
  /** The output has `<think>…</think>` reasoning (the format has a reasoning mode). */
  readonly reasoningTags: boolean;
  /** The prompt opened the reasoning block: output starts inside it. */
  readonly startInReasoning: boolean;
  readonly tools: ToolSyntax;
  /** 'dsml': which model's tag names (default 'v4'; V4.1 writes `<｜DSML｜ calls>`). */
  readonly dsml?: V4Version;
}

export class AnswerStream {
  private readonly splitter?: ReasoningSplitter;
  /** All answer text so far; [0, emitted) was sent as content. */
  private content = '';
  private emitted = 0;
  /** Logprobs of tokens whose text has not been sent yet, by part. */
  private pending: { reasoning: TokenLogprobInfo[]; content: TokenLogprobInfo[] } = { reasoning: [], content: [] };
  reasoningTokens = 0;

  /** Where a DSML block starts. The ReasoningSplitter drops whitespace at the start of the answer, so the block's leading "\n\n" may be gone. */
  private readonly dsmlStart: string;

  constructor(private readonly opts: AnswerOptions) {
    this.dsmlStart = toolCallsStart(opts.dsml ?? 'v4').trimStart();
    if (opts.reasoningTags) this.splitter = new ReasoningSplitter({ startInReasoning: opts.startInReasoning });
  }

  /** The text that became final with one sampled token (and that token's logprobs). */
  push(text: string, logprob?: TokenLogprobInfo): ChatEvent[] {
    const parts = this.splitter ? this.splitter.push(text) : { reasoning: '', answer: text };
    const inReasoning = parts.reasoning !== '' || (this.splitter?.inReasoning ?? false);
    if (logprob) this.pending[inReasoning ? 'reasoning' : 'content'].push(logprob);
    if (inReasoning) this.reasoningTokens++;
    return this.emit(parts.reasoning, parts.answer, false);
  }

  /** The output ended: the rest of the text, then the tool calls found in it. */
  end(): { events: ChatEvent[]; calls: ChatToolCall[] } {
    const rest = this.splitter?.flush() ?? { reasoning: '', answer: '' };
    const events = this.emit(rest.reasoning, rest.answer, true);
    const tail = this.content.slice(this.emitted);
    const calls = tail ? this.parseCalls(tail) : { content: '', calls: [] };
    if (calls.content || this.pending.content.length) events.push(this.event('content', calls.content));
    const out = calls.calls.map((c, i): ChatToolCall => ({ id: toolCallId(i), name: c.name, arguments: c.arguments }));
    out.forEach((call, index) => events.push({ type: 'tool_call', index, call }));
    return { events, calls: out };
  }

  private emit(reasoning: string, answer: string, final: boolean): ChatEvent[] {
    const events: ChatEvent[] = [];
    if (reasoning || (final && this.pending.reasoning.length)) events.push(this.event('reasoning', reasoning));
    this.content += answer;
    const safe = this.safeLength();
    if (safe > this.emitted) {
      events.push(this.event('content', this.content.slice(this.emitted, safe)));
      this.emitted = safe;
    }
    return events;
  }

  /** How much of the content can be sent now: everything before possible tool-call syntax. */
  private safeLength(): number {
    const c = this.content;
    switch (this.opts.tools) {
      case 'none': return c.length;
      case 'forced-json': return 0;
      case 'template': return safeContentLength(c);
      case 'dsml': {
        // Up to the block, or to a partial start of it; whitespace before either waits with it.
        let end = c.indexOf(this.dsmlStart);
        if (end < 0) end = c.length - partialSuffix(c, this.dsmlStart);
        return c.slice(0, end).trimEnd().length;
      }
    }
  }

  private parseCalls(tail: string): { content: string; calls: { name: string; arguments: string }[] } {
    switch (this.opts.tools) {
      case 'dsml': {
        const parsed = parseV4Completion('\n\n' + tail.trimStart(), { thinking: false, strict: false, version: this.opts.dsml });
        return parsed.toolCalls.length ? { content: parsed.content, calls: parsed.toolCalls } : { content: tail, calls: [] };
      }
      case 'template': return parseTemplateToolCalls(tail);
      case 'forced-json': {
        try {
          return { content: '', calls: parseForcedJsonToolCalls(tail) };
        } catch {
          return { content: tail, calls: [] }; // cut short (length): what was written stays visible
        }
      }
      default: return { content: tail, calls: [] };
    }
  }

  private event(type: 'reasoning' | 'content', text: string): ChatEvent {
    const logprobs = this.pending[type];
    this.pending[type] = [];
    return logprobs.length ? { type, text, logprobs } : { type, text };
  }
}

/** DeepSeek's tool call ids: `call_<index>_<random>`. */
export function toolCallId(index: number): string {
  return `call_${String(index).padStart(2, '0')}_${randomBytes(18).toString('base64url')}`;
}
