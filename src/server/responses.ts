/**
 * `POST /responses` (also `/v1/responses`): the OpenAI Responses dialect, stateless as at
 * DeepSeek (api-deepseek.md §14), over the same ChatBackend as every other dialect. Once the
 * stream has begun, a failure ends it with `response.failed`.
 */
import { ApiError } from './errors.js';
import type { Exchange } from './http.js';
import { PatientJson, streamTranscript } from './respond.js';
import { parseResponsesRequest } from './responses-request.js';
import { newId, ResponsesTranscript } from './responses-wire.js';

export async function responses(x: Exchange): Promise<void> {
  const backend = x.server.registry.get(x.body.model);
  const { job, stream, echo } = parseResponsesRequest(x.body, { reasoning: backend.info.reasoning, maxTokens: x.server.options.maxTokens, signal: x.signal });
  const run = backend.chat(job);
  const transcript = new ResponsesTranscript(newId('resp'), Math.floor(Date.now() / 1000), job.model, echo, job.think !== 'none');
  if (stream) return streamTranscript(x.res, x.server.options.keepAliveMs, run, transcript);
  const body = new PatientJson(x.res, x.server.options.keepAliveMs);
  try {
    transcript.start();
    for await (const e of run) transcript.push(e);
    transcript.finish(await run.outcome);
    body.end(transcript.response());
  } catch (err) {
    body.cancel();
    // Blank keep-alive lines already went out with a 200: the error can only be the body.
    if (!x.res.headersSent) throw err;
    const e = err instanceof ApiError ? err : new ApiError(500, err instanceof Error ? err.message : String(err), { type: 'server_error' });
    x.res.end(JSON.stringify(e.toJSON()));
  }
}
