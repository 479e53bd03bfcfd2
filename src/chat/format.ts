/**
 * How a model's conversations become prompt tokens: its own Jinja template (dense models, V3), or
 * DeepSeek-V4's Python-defined encoder (V4 ships no template). One interface for the CLI and the
 * server, with the reasoning mode as a first-class option: `none` (non-think), `high` (think),
 * `max` (Think Max, V4's longer-reasoning prompt).
 */
import type { LanguageModel } from '../models/model.js';
import { encodeV4Messages, type V4Message } from './deepseek-v4-encoding.js';
import { ChatTemplate, type ChatMessage } from './template.js';

export type ThinkMode = 'none' | 'high' | 'max';
export const THINK_MODES: readonly ThinkMode[] = ['none', 'high', 'max'];

export interface ChatFormatOptions {
  /** Reasoning mode; absent = the format's default (V4: none; a template: its own default). */
  readonly think?: ThinkMode;
  /** Tool definitions (OpenAI function list). */
  readonly tools?: readonly unknown[];
}

export interface ChatFormat {
  /** 'deepseek-v4', 'template' (the model's Jinja template) or 'plain' (no template). */
  readonly kind: string;
  /** The prompt text, ending with the opening of the assistant's turn. */
  render(messages: readonly ChatMessage[], opts?: ChatFormatOptions): string;
  /** Token ids of a rendered prompt (special tokens written as text are parsed). */
  encode(text: string): number[];
}

/** The chat format of a loaded model. */
export function chatFormatFor(model: LanguageModel): ChatFormat {
  if (model.description.architecture === 'deepseek_v4') return deepseekV4Format(model);
  return templateFormat(new ChatTemplate(model.tokenizer));
}

function templateFormat(template: ChatTemplate): ChatFormat {
  return {
    kind: template.source === undefined ? 'plain' : 'template',
    // Qwen3 templates read enable_thinking, DeepSeek-V3.1's `thinking`; templates that always
    // think (R1) ignore both.
    render: (messages, opts = {}) => template.render(messages, {
      tools: opts.tools,
      variables: opts.think === undefined ? undefined : { enable_thinking: opts.think !== 'none', thinking: opts.think !== 'none' },
    }),
    encode: (text) => template.encode(text),
  };
}

function deepseekV4Format(model: LanguageModel): ChatFormat {
  const tok = model.tokenizer;
  return {
    kind: 'deepseek-v4',
    render: (messages, opts = {}) => {
      const think = opts.think ?? 'none';
      const msgs = messages.map((m) => ({ ...m }) as unknown as V4Message);
      if (opts.tools?.length) {
        // The V4 encoder reads tools from the system message; add one when there is none.
        const sys = msgs.find((m) => m.role === 'system');
        if (sys) sys.tools = opts.tools as V4Message['tools'];
        else msgs.unshift({ role: 'system', content: '', tools: opts.tools as V4Message['tools'] });
      }
      return encodeV4Messages(msgs, { thinking: think !== 'none', reasoningEffort: think === 'max' ? 'max' : 'high' });
    },
    encode: (text) => tok.encode(text, { parseSpecial: true }),
  };
}
