/**
 * How a model's conversations become prompt tokens: its own Jinja template (dense models, V3), or
 * DeepSeek-V4's / V4.1's Python-defined encoder (they ship no template). One interface for the CLI
 * and the server, with the reasoning mode as a first-class option: `none` (non-think), `low`
 * (V4.1's effort 50; V4 and templates think as at `high`), `high` (think; V4.1 effort 75), `max`
 * (V4's Think-Max prompt, V4.1's effort 100).
 */
import type { LanguageModel } from '../models/model.js';
import { encodeV4Messages, type V4Message, type V4Version } from './deepseek-v4-encoding.js';
import { ChatTemplate, type ChatMessage } from './template.js';

export type ThinkMode = 'none' | 'low' | 'high' | 'max';
export const THINK_MODES: readonly ThinkMode[] = ['none', 'low', 'high', 'max'];

export interface ChatFormatOptions {
  /** Reasoning mode; absent = the format's default (V4: none; a template: its own default). */
  readonly think?: ThinkMode;
  /** Tool definitions (OpenAI function list). */
  readonly tools?: readonly unknown[];
}

export interface ChatFormat {
  /** 'deepseek-v4', 'deepseek-v4.1', 'template' (the model's Jinja template) or 'plain' (no template). */
  readonly kind: string;
  /** The prompt text, ending with the opening of the assistant's turn. */
  render(messages: readonly ChatMessage[], opts?: ChatFormatOptions): string;
  /** Token ids of a rendered prompt (special tokens written as text are parsed). */
  encode(text: string): number[];
}

/** The chat format of a loaded model. */
export function chatFormatFor(model: LanguageModel): ChatFormat {
  if (model.description.architecture === 'deepseek_v4') return deepseekV4Format(model, 'v4');
  if (model.description.architecture === 'deepseek_v41') return deepseekV4Format(model, 'v4.1');
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

function deepseekV4Format(model: LanguageModel, version: V4Version): ChatFormat {
  const tok = model.tokenizer;
  return {
    kind: version === 'v4' ? 'deepseek-v4' : 'deepseek-v4.1',
    render: (messages, opts = {}) => {
      const think = opts.think ?? 'none';
      const msgs = messages.map((m) => ({ ...m }) as unknown as V4Message);
      if (opts.tools?.length) {
        // The encoder reads tools from the system message; add one when there is none. (V4.1: only
        // a first system message opens the prompt; later ones are turns of their own.)
        const sys = version === 'v4' ? msgs.find((m) => m.role === 'system') : msgs[0]?.role === 'system' ? msgs[0] : undefined;
        if (sys) sys.tools = opts.tools as V4Message['tools'];
        else msgs.unshift({ role: 'system', content: '', tools: opts.tools as V4Message['tools'] });
      }
      // V4 has no low level: it thinks as at high.
      const effort = think === 'max' || (think === 'low' && version === 'v4.1') ? think : 'high';
      return encodeV4Messages(msgs, { version, thinking: think !== 'none', reasoningEffort: effort });
    },
    encode: (text) => tok.encode(text, { parseSpecial: true }),
  };
}
