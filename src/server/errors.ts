/**
 * API errors: every refusal the server makes is an ApiError with an HTTP status from the
 * documented table (api-deepseek.md §16) and the OpenAI-shaped body
 * `{"error":{"message","type","param","code"}}`; the Anthropic dialect renders the same error in
 * its own shape.
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'overloaded_error';

export class ApiError extends Error {
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Seconds a client should wait before retrying (429/503). */
  readonly retryAfter?: number;

  constructor(readonly status: number, message: string, opts: { type?: ErrorType; param?: string | null; code?: string | null; retryAfter?: number } = {}) {
    super(message);
    this.name = 'ApiError';
    this.type = opts.type ?? defaultType(status);
    this.param = opts.param ?? null;
    this.code = opts.code === undefined ? this.type : opts.code;
    this.retryAfter = opts.retryAfter;
  }

  /** The OpenAI / DeepSeek body. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** The Anthropic body. */
  toAnthropic(): { type: 'error'; error: { type: string; message: string } } {
    const type = this.status === 429 ? 'rate_limit_error' : this.status === 503 ? 'overloaded_error' : this.type === 'server_error' ? 'api_error' : this.type;
    return { type: 'error', error: { type, message: this.message } };
  }
}

function defaultType(status: number): ErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'overloaded_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** 400 for a field with the wrong value; `param` names the field. */
export function badParam(param: string, message: string): ApiError {
  return new ApiError(400, message, { param });
}

/** The exact text DeepSeek answers when a thinking-mode tool conversation drops reasoning_content. */
export const PASS_BACK_MESSAGE = 'The reasoning_content in the thinking mode must be passed back to the API.';
