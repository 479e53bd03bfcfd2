/**
 * A task as a DeepSeek-V4 conversation for supervised fine-tuning, in each reasoning mode:
 * `none` answers directly, `high` reasons inside <think>, `max` adds the Think-Max prompt — the
 * same rendering (encodeV4Messages, tools in a leading system message) that `chatFormatFor`
 * gives a V4 model at inference, so training text and prompts agree byte for byte.
 */
import { encodeV4Messages, type V4EncodeOptions, type V4Message } from '../../chat/deepseek-v4-encoding.js';
import { THINK_MODES, type ThinkMode } from '../../chat/format.js';
import type { Task } from './types.js';

/** A piece of the rendered text; `train`: the assistant wrote it (the loss covers it). */
export interface SftSegment {
  readonly text: string;
  readonly train: boolean;
}

export interface SftExample {
  readonly messages: V4Message[];
  /** The whole conversation as V4 prompt text (BOS first, each assistant turn ending in EOS). */
  readonly text: string;
  /** `text` cut into prompt parts and assistant parts, in order; they meet at special tokens, so each tokenizes alone as it does inside `text`. */
  readonly segments: SftSegment[];
}

/** The encoder options of a reasoning mode, as chat/format.ts sets them. */
export function v4EncodeOptions(mode: ThinkMode): V4EncodeOptions {
  if (!THINK_MODES.includes(mode)) throw new Error(`reasoning mode must be one of ${THINK_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  return { thinking: mode !== 'none', reasoningEffort: mode === 'max' ? 'max' : 'high' };
}

/** The conversation of `task` with its answer: the user's question, any tool round, the reply. */
export function taskMessages(task: Task, mode: ThinkMode): V4Message[] {
  const think = v4EncodeOptions(mode).thinking;
  const reasoning = (text: string): Partial<V4Message> => (think ? { reasoning_content: text } : {});
  const out: V4Message[] = [];
  const tu = task.toolUse;
  if (tu) out.push({ role: 'system', content: '', tools: [...tu.tools] });
  out.push({ role: 'user', content: task.prompt });
  if (tu) {
    if (tu.results.length !== tu.calls.length) throw new Error(`task ${task.task}: ${tu.calls.length} tool calls but ${tu.results.length} results`);
    out.push({
      role: 'assistant', content: '', ...reasoning(tu.callReasoning),
      tool_calls: tu.calls.map((c, k) => ({ id: `call_${k}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } })),
    });
    tu.results.forEach((r, k) => out.push({ role: 'tool', tool_call_id: `call_${k}`, content: r }));
  }
  out.push({ role: 'assistant', content: task.answer, ...reasoning(task.reasoning) });
  return out;
}

/** `task` rendered in `mode`, cut into the prompt parts and the assistant's parts. */
export function renderTaskV4(task: Task, mode: ThinkMode): SftExample {
  const opts = v4EncodeOptions(mode);
  const messages = taskMessages(task, mode);
  const text = encodeV4Messages(messages, opts);
  const segments: SftSegment[] = [];
  let at = 0;
  messages.forEach((m, j) => {
    if (m.role !== 'assistant') return;
    // Up to the assistant's turn (with the generation prompt), then up to the end of the turn.
    const prompt = encodeV4Messages(messages.slice(0, j), opts);
    const end = encodeV4Messages(messages.slice(0, j + 1), opts);
    const start = prompt.length;
    if (!text.startsWith(prompt) || !text.startsWith(end) || start < at || start > end.length) {
      throw new Error(`task ${task.task}: the rendering of turn ${j} is not a prefix of the whole conversation`);
    }
    if (start > at) segments.push({ text: text.slice(at, start), train: false });
    segments.push({ text: text.slice(start, end.length), train: true });
    at = end.length;
  });
  if (at < text.length) segments.push({ text: text.slice(at), train: false });
  return { messages, text, segments };
}
