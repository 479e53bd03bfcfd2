/**
 * `POST /anthropic/v1/messages`: the Anthropic Messages dialect (api-deepseek.md §15) over the
 * same ChatBackend as every other dialect. Errors go out in Anthropic's shape (the route's
 * `anthropic` flag); once the stream has begun, a failure is an `error` event.
 */
import { randomBytes } from 'node:crypto';
import { parseAnthropicRequest, resolveAnthropicModel } from './anthropic-request.js';
import { AnthropicTranscript } from './anthropic-wire.js';
import { ApiError } from './errors.js';
import type { Exchange } from './http.js';
import { PatientJson, streamTranscript } from './respond.js';

export async function anthropicMessages(x: Exchange): Promise<void> {
  const registry = x.server.registry;
  const name = resolveAnthropicModel(x.body.model, registry.names());
  const backend = registry.get(name ?? x.body.model); // an unknown name gets the registry's 400
  const { job, stream } = parseAnthropicRequest(x.body, {
    model: backend.info.id, reasoning: backend.info.reasoning, maxTokens: x.server.options.maxTokens, signal: x.signal,
  });
  const run = backend.chat(job);
  const transcript = new AnthropicTranscript(`msg_${randomBytes(18).toString('base64url')}`, job.model, job.think !== 'none');
  if (stream) return streamTranscript(x.res, x.server.options.keepAliveMs, run, transcript);
  const body = new PatientJson(x.res, x.server.options.keepAliveMs);
  try {
    transcript.start();
    for await (const e of run) transcript.push(e);
    body.end(transcript.message(await run.outcome));
  } catch (err) {
    body.cancel();
    // Blank keep-alive lines already went out with a 200: the error can only be the body.
    if (x.res.headersSent) x.res.end(JSON.stringify(asApiError(err).toAnthropic()));
    else throw err;
  }
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(500, err instanceof Error ? err.message : String(err), { type: 'server_error' });
}
