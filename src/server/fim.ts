/**
 * `POST /beta/completions`: FIM and plain completion (§10) — `prompt` (+ `suffix`) in, the
 * `text_completion` object or its SSE chunks out. Non-thinking only, output capped at 4K tokens.
 */
import { randomUUID } from 'node:crypto';
import type { ChatOutcome, CompletionJob, TokenLogprobInfo } from './chat.js';
import { ApiError, badParam } from './errors.js';
import type { Exchange } from './http.js';
import { SYSTEM_FINGERPRINT, usageJson } from './openai-chat.js';
import { EventStream, PatientJson } from './respond.js';
import { object, optBool, optInt, optNumber, optString, stopList, string } from './validate.js';

const FIM_MAX_TOKENS = 4096;

export async function completions(x: Exchange): Promise<void> {
  const b = x.body;
  const backend = x.server.registry.get(b.model);
  optNumber(b.presence_penalty, 'presence_penalty', -2, 2);
  optNumber(b.frequency_penalty, 'frequency_penalty', -2, 2);
  const streamOptions = b.stream_options === undefined || b.stream_options === null ? {} : object(b.stream_options, 'stream_options');
  const job: CompletionJob = {
    model: string(b.model, 'model'),
    prompt: string(b.prompt, 'prompt'),
    suffix: optString(b.suffix, 'suffix'),
    maxTokens: optInt(b.max_tokens, 'max_tokens', 1, FIM_MAX_TOKENS) ?? 16,
    stop: stopList(b.stop),
    temperature: optNumber(b.temperature, 'temperature', 0, 2),
    topP: optNumber(b.top_p, 'top_p', 0, 1),
    seed: optInt(b.seed, 'seed', 0, 2 ** 32 - 1),
    logprobs: optInt(b.logprobs, 'logprobs', 0, 20) ?? 0,
    echo: optBool(b.echo, 'echo') ?? false,
    signal: x.signal,
  };
  if (job.echo && job.suffix) throw badParam('echo', 'echo cannot be combined with suffix');
  const includeUsage = optBool(streamOptions.include_usage, 'stream_options.include_usage') ?? false;
  const run = backend.complete(job);
  const head = { id: randomUUID(), object: 'text_completion', created: Math.floor(Date.now() / 1000), model: job.model, system_fingerprint: SYSTEM_FINGERPRINT };
  const lp = new LogprobTable(0); // the echo arrives as the first content event

  if (optBool(b.stream, 'stream')) {
    await run.ready;
    const sse = new EventStream(x.res, x.server.options.keepAliveMs);
    try {
      for await (const e of run) {
        if (e.type === 'tool_call') continue;
        const chunkLp = job.logprobs ? new LogprobTable(lp.offset) : undefined;
        chunkLp?.add(e.text, e.logprobs);
        lp.add(e.text, e.logprobs);
        sse.send({ ...head, choices: [{ index: 0, text: e.text, logprobs: chunkLp?.json() ?? null, finish_reason: null }] });
      }
      const outcome = await run.outcome;
      sse.send({ ...head, choices: [{ index: 0, text: '', logprobs: null, finish_reason: outcome.finishReason }] });
      if (includeUsage) sse.send({ ...head, choices: [], usage: usageJson(outcome.usage) });
      sse.send('[DONE]');
    } catch (err) {
      sse.send((err instanceof ApiError ? err : new ApiError(500, String(err), { type: 'server_error' })).toJSON());
    } finally {
      sse.end();
    }
    return;
  }
  const body = new PatientJson(x.res, x.server.options.keepAliveMs);
  let text = '';
  let outcome: ChatOutcome;
  try {
    for await (const e of run) if (e.type !== 'tool_call') { text += e.text; lp.add(e.text, e.logprobs); }
    outcome = await run.outcome;
  } catch (err) {
    body.cancel();
    throw err;
  }
  body.end({ ...head, choices: [{ index: 0, text, logprobs: job.logprobs ? lp.json() : null, finish_reason: outcome.finishReason }], usage: usageJson(outcome.usage) });
}

/** The legacy completions logprobs layout: parallel arrays, with each token's text offset. */
class LogprobTable {
  readonly tokens: string[] = [];
  readonly tokenLogprobs: number[] = [];
  readonly top: Record<string, number>[] = [];
  readonly textOffset: number[] = [];

  constructor(public offset: number) {}

  add(text: string, logprobs: readonly TokenLogprobInfo[] | undefined): void {
    for (const l of logprobs ?? []) {
      this.tokens.push(l.token);
      this.tokenLogprobs.push(l.logprob);
      this.top.push(Object.fromEntries(l.top.map((t) => [t.token, t.logprob])));
      this.textOffset.push(this.offset);
      this.offset += l.token.length;
    }
    if (!logprobs?.length) this.offset += text.length;
  }

  json(): Record<string, unknown> {
    return { tokens: this.tokens, token_logprobs: this.tokenLogprobs, top_logprobs: this.top, text_offset: this.textOffset };
  }
}
