/**
 * Interactive input, line by line: multi-line messages (a trailing `\` continues the line; `"""`
 * opens a block that the next `"""` closes) and `/` commands.
 */

export type Assembled = { readonly kind: 'more' } | { readonly kind: 'done'; readonly text: string };

const FENCE = '"""';

export class InputAssembler {
  private lines: string[] = [];
  private inBlock = false;

  /** True while a message spans lines (the prompt shows "... "). */
  get pending(): boolean { return this.inBlock || this.lines.length > 0; }

  push(line: string): Assembled {
    if (this.inBlock) {
      const end = line.indexOf(FENCE);
      if (end < 0) { this.lines.push(line); return { kind: 'more' }; }
      this.lines.push(line.slice(0, end));
      return this.finish();
    }
    if (!this.pending && line.startsWith(FENCE)) {
      const rest = line.slice(FENCE.length);
      const end = rest.indexOf(FENCE);
      if (end >= 0) { this.lines.push(rest.slice(0, end)); return this.finish(); }
      this.inBlock = true;
      if (rest) this.lines.push(rest);
      return { kind: 'more' };
    }
    if (line.endsWith('\\')) { this.lines.push(line.slice(0, -1)); return { kind: 'more' }; }
    this.lines.push(line);
    return this.finish();
  }

  /** Drops a half-entered message (Ctrl-C). */
  reset(): void {
    this.lines = [];
    this.inBlock = false;
  }

  private finish(): Assembled {
    const text = this.lines.join('\n');
    this.reset();
    return { kind: 'done', text };
  }
}

export type ChatCommand =
  | { readonly name: 'help' | 'bye' | 'new' | 'clear' | 'stats' | 'show' }
  | { readonly name: 'system' | 'think' | 'save' | 'load' | 'history'; readonly text: string }
  | { readonly name: 'set'; readonly key?: string; readonly value?: string };

/** Parses a `/command`; undefined for ordinary text. Unknown commands are an Error naming /help. */
export function parseCommand(text: string): ChatCommand | undefined {
  const t = text.trim();
  if (!t.startsWith('/') || t.startsWith('//')) return undefined;
  const [word, ...rest] = t.slice(1).split(/\s+/);
  const arg = t.slice(1 + word.length).trim();
  switch (word) {
    case 'help': case '?': return { name: 'help' };
    case 'bye': case 'exit': case 'quit': return { name: 'bye' };
    case 'new': return { name: 'new' };
    case 'clear': return { name: 'clear' };
    case 'stats': return { name: 'stats' };
    case 'show': return { name: 'show' };
    case 'system': case 'think': case 'save': case 'load': case 'history':
      return { name: word, text: arg } as ChatCommand;
    case 'set': return { name: 'set', key: rest[0], value: rest.length > 1 ? arg.slice(rest[0].length).trim() : undefined };
    default: throw new Error(`unknown command /${word} (/help lists the commands)`);
  }
}

export const CHAT_HELP = `commands:
  /help                 this list
  /bye                  leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)
  /new                  start a new conversation (the system prompt stays)
  /clear                forget the conversation, as /new
  /think MODE           reasoning mode: none, low, high, max (DeepThink off, then rising effort); /think shows it
  /show                 the last reasoning in full (answers show it folded into one line)
  /system TEXT          set the system prompt (empty TEXT removes it)
  /set                  show the sampling settings
  /set NAME VALUE       change one: temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens
  /stats                token counts and speed of the last answer
  /save [TITLE]         name the conversation (every exchange is saved anyway, unless --no-history)
  /history [TEXT]       recent conversations (TEXT: those whose title or messages contain it)
  /load [ID|TITLE]      continue a saved conversation (an id prefix or the start of its title);
                        without one: the recent conversations
multi-line input: end a line with \\ to continue it, or wrap the message in """ … """.
Ctrl-C while the model writes stops the answer.
`;
