// Text files attached to a question: read in the browser, counted by the server's tokenizer.
import { AuthError, api } from './api.js';
import type { Attachment } from './types.js';

export const MAX_ATTACHMENT_BYTES = 2 * 2 ** 20;

/** An attachment on its way: `tokens` is null while the server counts, `estimated` when it could not. */
export interface PendingAttachment extends Omit<Attachment, 'tokens'> {
  key: string;
  tokens: number | null;
  estimated?: boolean;
}

export async function readTextFile(file: File): Promise<string> {
  if (file.size > MAX_ATTACHMENT_BYTES) throw new Error(`${file.name} is larger than 2 MB; only text files up to 2 MB can be attached`);
  const content = await file.text();
  if (content.includes('\u0000')) throw new Error(`${file.name} is not a text file`);
  return content;
}

/** The server's count for `model`; where it cannot tell (say, an upstream model), about 4 characters a token. */
export async function countTokens(model: string, content: string): Promise<{ tokens: number; estimated: boolean }> {
  try {
    return { tokens: await api.tokenize(model, content), estimated: false };
  } catch (e) {
    if (e instanceof AuthError) throw e;
    return { tokens: Math.ceil(content.length / 4), estimated: true };
  }
}
