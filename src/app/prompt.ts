/**
 * What the model sees of a conversation: the system prompt, then the branch on screen, each user
 * message with its attached files in front of its text. Earlier reasoning is not sent back (as in
 * DeepSeek's multi-turn rule: only the answers stay in the context).
 */
import type { ChatTurn } from '../server/chat.js';
import type { Attachment, Conversation, StoredMessage } from './store.js';

/**
 * A user message as the model reads it: each file as `[file NAME]` and its content in a code fence
 * (longer than any backtick run inside it), then the text.
 *   [file notes.md]\n```\n…content…\n```\n\nTEXT
 */
export function userContent(text: string, attachments: readonly Pick<Attachment, 'name' | 'content'>[] = []): string {
  const files = attachments.map((a) => {
    const longest = Math.max(0, ...(a.content.match(/`+/g) ?? []).map((run) => run.length));
    const fence = '`'.repeat(Math.max(3, longest + 1));
    const body = a.content.endsWith('\n') ? a.content : `${a.content}\n`;
    return `[file ${a.name}]\n${fence}\n${body}${fence}\n`;
  });
  return files.length ? `${files.join('\n')}\n${text}` : text;
}

/** The turns of a job from `conversation`'s system prompt and a branch (root first). */
export function chatTurns(conversation: Pick<Conversation, 'system'>, branch: readonly StoredMessage[]): ChatTurn[] {
  const turns: ChatTurn[] = conversation.system ? [{ role: 'system', content: conversation.system }] : [];
  for (const m of branch) turns.push({ role: m.role, content: m.role === 'user' ? userContent(m.content, m.attachments) : m.content });
  return turns;
}

/** A title from the first user message (or its first file's name): about 40 characters, cut at a word. */
export function titleFrom(text: string, attachments: readonly Pick<Attachment, 'name'>[] = []): string {
  const flat = text.replace(/\s+/g, ' ').trim() || attachments[0]?.name || '';
  const chars = [...flat]; // code points: never half a surrogate pair
  if (chars.length <= 40) return flat;
  const cut = chars.slice(0, 41).join(''); // a space as the 41st character ends a whole word
  const space = cut.lastIndexOf(' ');
  return `${(space >= 20 ? cut.slice(0, space) : chars.slice(0, 40).join('')).trimEnd()}…`;
}
