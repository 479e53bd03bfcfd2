/**
 * Chat prompts: the model's own Jinja chat template (GGUF `tokenizer.chat_template`,
 * tokenizer_config.json `chat_template`) rendered with @huggingface/jinja, then tokenized with
 * special tokens parsed. Models without a template (llama2.c stories models) get the messages'
 * texts concatenated, i.e. a plain completion.
 */
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from '../tokenizer/index.js';

export interface ChatMessage {
  /** 'system', 'user', 'assistant', 'tool', … — whatever the template understands. */
  readonly role: string;
  readonly content: string;
  /** Any other fields a template reads (tool_calls, name, …). */
  readonly [key: string]: unknown;
}

export interface ChatRenderOptions {
  /** End with the opening of an assistant turn (default true). */
  readonly addGenerationPrompt?: boolean;
  /** Tool definitions (JSON-schema objects), passed to the template as `tools`. */
  readonly tools?: readonly unknown[];
  /** Further template variables (e.g. enable_thinking). */
  readonly variables?: Readonly<Record<string, unknown>>;
}

export class ChatTemplate {
  /** Undefined when the model has no template (plain concatenation is used). */
  readonly source?: string;
  private readonly template?: Template;

  constructor(private readonly tokenizer: Tokenizer, source: string | undefined = tokenizer.chatTemplate) {
    this.source = source && source.trim() ? source : undefined;
    if (this.source !== undefined) {
      try {
        this.template = new Template(this.source);
      } catch (err) {
        throw new Error(`the model's chat template does not parse: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** The prompt text, special tokens written out as text (`<|im_start|>` …). */
  render(messages: readonly ChatMessage[], opts: ChatRenderOptions = {}): string {
    if (!this.template) return concatenate(messages);
    const vars: Record<string, unknown> = {
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: this.tokenText(this.tokenizer.bos),
      eos_token: this.tokenText(this.tokenizer.eos),
      ...opts.variables,
    };
    if (opts.tools) vars.tools = opts.tools;
    try {
      return this.template.render(vars);
    } catch (err) {
      throw new Error(`the model's chat template failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Token ids of `text` as rendered by `render`. The tokenizer adds BOS/EOS by its own rules, so a
   * BOS/EOS the template wrote as text is dropped first rather than doubled (as llama.cpp does).
   */
  encode(text: string): number[] {
    const tok = this.tokenizer;
    const bos = this.tokenText(tok.bos);
    const eos = this.tokenText(tok.eos);
    if (tok.addBos && bos && text.startsWith(bos)) text = text.slice(bos.length);
    if (tok.addEos && eos && text.endsWith(eos)) text = text.slice(0, -eos.length);
    return tok.encode(text, { parseSpecial: this.template !== undefined });
  }

  private tokenText(id: number | undefined): string {
    return id === undefined ? '' : this.tokenizer.tokenText(id);
  }
}

/**
 * No template: the texts in order, so a chat with a completion model reads as one document —
 * an assistant message continues the text before it, other messages start a new line.
 */
function concatenate(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) {
    if (out && m.role !== 'assistant' && !out.endsWith('\n')) out += '\n';
    out += m.content;
  }
  return out;
}
