/**
 * What the model sees of a conversation: the system prompt, then the branch on screen, each user
 * message with its attached files in front of its text. Earlier reasoning is not sent back (as in
 * DeepSeek's multi-turn rule: only the answers stay in the context).
 */
// No imports: the web app's browser mode builds its prompts with this module too.

/** An attached text file. */
interface Attachment { readonly name: string; readonly content: string }
/** A message of the branch, as stored (server) or kept in the browser. */
interface BranchMessage { readonly role: 'user' | 'assistant'; readonly content: string; readonly attachments?: readonly Attachment[] }
/** One turn of the chat the model is given (a server ChatTurn, a browser ChatTurn). */
export interface PromptTurn { readonly role: 'system' | 'user' | 'assistant'; readonly content: string }

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

/** The turns of a job from the conversation's system prompt and a branch (root first). */
export function chatTurns(system: string, branch: readonly BranchMessage[]): PromptTurn[] {
  const turns: PromptTurn[] = system ? [{ role: 'system', content: system }] : [];
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
