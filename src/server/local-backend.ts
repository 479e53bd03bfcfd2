/**
 * A model loaded in this process, served through the engine: a ChatJob becomes a prompt in the
 * model's own chat format (V4 encoder or Jinja template), a constraint when the answer's shape is
 * forced (JSON mode, required tool calls), and an engine request whose tokens AnswerStream turns
 * into reasoning, content and tool calls.
 */
import { chatFormatFor, type ChatFormat } from '../chat/format.js';
import type { V4Version } from '../chat/deepseek-v4-encoding.js';
import { promptOpensReasoning } from '../chat/reasoning.js';
import type { ChatMessage } from '../chat/template.js';
import { compileJsonConstraint, type JsonConstraint } from '../engine/constrain/index.js';
import { compileToolCallConstraint } from '../engine/constrain/tool-calls.js';
import { EngineBusyError, type Engine, type RequestHandle, type EngineRequest, type EngineResult, type TokenConstraint, type TokenEvent } from '../engine/engine.js';
import type { SamplingOptions } from '../engine/sampler.js';
import type { LanguageModel } from '../models/model.js';
import { randomInt } from 'node:crypto';
import { AnswerStream, type ToolSyntax } from './answer.js';
import type { ChatBackend, ChatEvent, ChatJob, ChatOutcome, ChatRun, ChatTurn, CompletionJob, FinishReason, ModelInfo, TokenLogprobInfo } from './chat.js';
import { ApiError, PASS_BACK_MESSAGE, badParam } from './errors.js';

const FIM = { begin: '<｜fim▁begin｜>', hole: '<｜fim▁hole｜>', end: '<｜fim▁end｜>' };

export class LocalBackend implements ChatBackend {
  readonly info: ModelInfo;
  private readonly format: ChatFormat;
  private jsonObject?: JsonConstraint;

  constructor(name: string, readonly model: LanguageModel, readonly engine: Engine) {
    this.format = chatFormatFor(model);
    const tok = model.tokenizer;
    this.info = {
      id: name,
      ownedBy: 'minke',
      contextLength: engine.contextLength,
      reasoning: this.dsml() !== undefined || (this.format.kind === 'template' && /<think>/.test(tok.chatTemplate ?? '')),
      fim: Object.values(FIM).every((t) => tok.tokenId(t) !== undefined),
    };
  }

  /** The DeepSeek-V4 prompt format's version (its tool calls are DSML), or undefined for other formats. */
  private dsml(): V4Version | undefined {
    return this.format.kind === 'deepseek-v4' ? 'v4' : this.format.kind === 'deepseek-v4.1' ? 'v4.1' : undefined;
  }

  chat(job: ChatJob): ChatRun {
    checkPassBack(job);
    const think = this.info.reasoning ? job.think : 'none';
    const forced = job.tools.length > 0 && (job.toolChoice === 'required' || typeof job.toolChoice === 'object');
    if (forced && think !== 'none') throw badParam('tool_choice', `tool_choice "required" or a named function is not supported in thinking mode; disable thinking or use "auto"`);
    const dsml = this.dsml();
    const v4 = dsml !== undefined;
    const tools = job.toolChoice === 'none' ? [] : job.tools;

    const messages = job.messages.map(toChatMessage);
    const prefix = job.messages.at(-1)?.prefix ? job.messages.at(-1)! : undefined;
    let text: string;
    try {
      if (prefix && !v4) text = this.format.render(messages.slice(0, -1), { think, tools: openAiTools(tools) }) + prefix.content;
      else text = this.format.render(messages, { think, tools: tools.length ? openAiTools(tools) : undefined });
    } catch (err) {
      throw new ApiError(400, `the messages cannot be rendered for this model: ${err instanceof Error ? err.message : String(err)}`, { param: 'messages' });
    }
    const prompt = this.format.encode(text);
    const startInReasoning = !prefix && think !== 'none' && promptOpensReasoning(text);

    let constraint: TokenConstraint | undefined;
    let syntax: ToolSyntax = tools.length === 0 ? 'none' : v4 ? 'dsml' : 'template';
    if (forced) {
      const name = typeof job.toolChoice === 'object' ? job.toolChoice.name : undefined;
      constraint = compileToolCallConstraint(tools, { syntax: v4 ? 'dsml' : 'json', dsml, name, parallel: job.parallelToolCalls, maxWhitespace: 1 }, this.model.tokenizer).start();
      if (!v4) syntax = 'forced-json';
    } else if (job.responseFormat !== 'text') {
      const rf = job.responseFormat;
      if (rf === 'json_object') constraint = (this.jsonObject ??= compileJsonConstraint('json_object', this.model.tokenizer)).start();
      else constraint = schemaConstraint(rf.schema, this.model.tokenizer).start();
      if (startInReasoning) constraint = new AfterReasoning(constraint, this.model.tokenizer.tokenId('</think>'));
    }

    // V4 without thinking answers directly; templates that always think (R1) are split regardless.
    const answer = new AnswerStream({ reasoningTags: this.info.reasoning && (think !== 'none' || !v4), startInReasoning, tools: syntax, dsml });
    return this.submit({
      prompt,
      sampling: sampling(job.temperature, job.topP, think !== 'none', job.seed),
      maxTokens: job.maxTokens,
      stop: job.stop,
      signal: job.signal,
      logprobs: job.logprobs,
      topLogprobs: job.topLogprobs,
      skipSpecial: tools.length === 0,
      constraint,
      cachePartition: job.userId,
    }, answer);
  }

  complete(job: CompletionJob): ChatRun {
    const tok = this.model.tokenizer;
    let prompt: number[];
    if (job.suffix !== undefined && job.suffix !== '') {
      if (!this.info.fim) throw badParam('suffix', `model "${this.info.id}" has no fill-in-the-middle tokens, so "suffix" cannot be used`);
      prompt = tok.encode(FIM.begin + job.prompt + FIM.hole + job.suffix + FIM.end, { parseSpecial: true });
    } else {
      prompt = tok.encode(job.prompt);
    }
    if (prompt.length === 0) throw badParam('prompt', 'the prompt is empty');
    const answer = new AnswerStream({ reasoningTags: false, startInReasoning: false, tools: 'none' });
    return this.submit({
      prompt, sampling: sampling(job.temperature, job.topP, false, job.seed), maxTokens: job.maxTokens, stop: job.stop,
      signal: job.signal, logprobs: job.logprobs > 0, topLogprobs: job.logprobs,
    }, answer, job.echo ? job.prompt : undefined);
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private submit(req: EngineRequest, answer: AnswerStream, echo?: string): ChatRun {
    let handle: RequestHandle;
    try {
      handle = this.engine.submit(req);
    } catch (err) {
      if (err instanceof EngineBusyError) {
        throw err.retryable ? new ApiError(429, `the server is busy: ${err.message}; retry later`, { retryAfter: 1 }) : new ApiError(400, err.message);
      }
      throw err;
    }
    const tok = this.model.tokenizer;
    const info = (t: TokenEvent): TokenLogprobInfo | undefined => t.logprob === undefined ? undefined : {
      ...piece(tok, t.token), logprob: t.logprob,
      top: (t.top ?? []).map((a) => ({ ...piece(tok, a.token), logprob: a.logprob })),
    };
    let resolveOutcome!: (o: ChatOutcome) => void, rejectOutcome!: (e: unknown) => void;
    const outcome = new Promise<ChatOutcome>((res, rej) => { resolveOutcome = res; rejectOutcome = rej; });
    outcome.catch(() => undefined);
    async function* events(): AsyncGenerator<ChatEvent> {
      if (echo) yield { type: 'content', text: echo };
      let result: EngineResult | undefined, failed = false, generated = 0;
      try {
        for await (const t of handle) {
          if (t.token >= 0) generated++;
          yield* answer.push(t.text, t.token >= 0 ? info(t) : undefined);
        }
        result = await handle.result;
      } catch (err) {
        // Cut by the engine (memory, a kernel failure): what was generated stands, marked retryable.
        failed = true;
        if (!(err instanceof Error && /memory|allocat/i.test(err.message))) console.error(`minke: generation failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      const end = answer.end();
      yield* end.events;
      const reason: FinishReason = failed ? 'insufficient_system_resource'
        : end.calls.length ? 'tool_calls'
          : result!.finishReason === 'length' || result!.finishReason === 'context' ? 'length' : 'stop';
      const usage = {
        promptTokens: req.prompt.length,
        completionTokens: generated, // also right when the engine failed mid-answer
        cachedTokens: result?.cachedTokens ?? 0,
        reasoningTokens: answer.reasoningTokens,
      };
      resolveOutcome({ finishReason: reason, usage, ...(reason === 'stop' && result?.stopSequence ? { stopSequence: result.stopSequence } : {}) });
    }
    const gen = events();
    return {
      outcome,
      [Symbol.asyncIterator]: () => ({
        next: () => gen.next().catch((e) => { rejectOutcome(e); throw e; }),
        return: () => gen.return(undefined),
      }),
    };
  }
}

function schemaConstraint(schema: Record<string, unknown>, tokenizer: LanguageModel['tokenizer']): JsonConstraint {
  try {
    return compileJsonConstraint(schema, tokenizer, { lenient: true }); // keywords decoding cannot enforce are ignored, as for tools
  } catch (err) {
    throw badParam('response_format.json_schema.schema', `the schema cannot be enforced: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** In thinking mode with tools, every assistant turn must carry its reasoning (DeepSeek's rule). */
function checkPassBack(job: ChatJob): void {
  if (job.think === 'none') return;
  const toolUse = job.tools.length > 0 || job.messages.some((m) => m.toolCalls?.length);
  if (!toolUse) return;
  if (job.messages.some((m) => m.role === 'assistant' && !m.prefix && m.reasoning === undefined)) throw new ApiError(400, PASS_BACK_MESSAGE);
}

function toChatMessage(m: ChatTurn): ChatMessage {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.reasoning !== undefined) out.reasoning_content = m.reasoning;
  if (m.toolCalls?.length) out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.prefix) out.wo_eos = true;
  return out as unknown as ChatMessage;
}

function openAiTools(tools: ChatJob['tools']): unknown[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}) } }));
}

/**
 * OpenAI sampling: temperature and top_p only (default 1), a fresh seed per request unless one is
 * given. Thinking mode ignores temperature and top_p, as DeepSeek does.
 */
function sampling(temperature: number | undefined, topP: number | undefined, thinking: boolean, seed?: number): SamplingOptions {
  if (!thinking && topP === 0) temperature = 0; // nothing but the top token: greedy
  return {
    temperature: thinking ? 1 : temperature ?? 1, topP: thinking || !topP ? 1 : topP,
    topK: 0, minP: 0, repeatPenalty: 1, seed: seed ?? randomInt(2 ** 32),
  };
}

function piece(tok: LanguageModel['tokenizer'], id: number): { token: string; bytes: number[] } {
  const bytes = tok.piece(id);
  return { token: new TextDecoder().decode(bytes), bytes: [...bytes] };
}

/** Leaves the reasoning free and applies `inner` to the answer after `</think>`. */
class AfterReasoning implements TokenConstraint {
  constructor(private readonly inner: TokenConstraint, private readonly close: number | undefined, private readonly open = true) {}
  get done(): boolean { return !this.open && this.inner.done; }
  maskLogits(logits: Float32Array): void { if (!this.open) this.inner.maskLogits(logits); }
  accept(token: number): TokenConstraint {
    if (this.open) return new AfterReasoning(this.inner, this.close, token !== this.close);
    return new AfterReasoning(this.inner.accept(token), this.close, false);
  }
}
