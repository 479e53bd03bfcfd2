/**
 * The interactive chat of `minke run MODEL` (stdin a terminal): readline with history, multi-line
 * input, `/` commands. Ctrl-C while an answer streams stops that answer; at the prompt it drops
 * the line being typed, and a second Ctrl-C at an empty prompt leaves.
 *
 * With a ChatHistory every exchange is saved, as it streams, in the web app's database, and
 * /save, /load, /history and /new work on its conversations. On a terminal the reasoning is folded
 * into one line once it ends (display.ts); /show prints it.
 */
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { formatTranscript, shortId, toChatMessages, type ChatHistory, type TurnRecorder } from './chat-history.js';
import { CHAT_HELP, InputAssembler, parseCommand, type ChatCommand } from './chat-input.js';
import type { ChatSession } from './chat-session.js';
import { DIM, UNDIM, formatStats, type Out } from './display.js';

export interface ChatIO {
  readonly input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly output: Out & NodeJS.WritableStream;
  readonly err: Out;
  /** Where Ctrl-C arrives while an answer streams (the process; tests pass their own emitter). */
  readonly signals: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

const PROMPT = '>>> ';
const MORE = '... ';

export async function chatLoop(session: ChatSession, io: ChatIO, history?: ChatHistory): Promise<void> {
  const terminal = io.input.isTTY === true && io.output.isTTY === true;
  const rl = readline.createInterface({ input: io.input, output: io.output, terminal, historySize: 1000 });
  const lines = lineQueue(rl);
  const input = new InputAssembler();
  let armedExit = false;

  rl.on('SIGINT', () => {
    // Ctrl-C at the prompt: drop what is typed; at an empty prompt twice in a row: leave.
    if (rl.line !== '' || input.pending) {
      input.reset();
      armedExit = false;
      io.output.write('^C\n');
      rl.write(null, { ctrl: true, name: 'u' });
      rl.setPrompt(PROMPT);
      rl.prompt();
      return;
    }
    if (armedExit) { io.output.write('\n'); rl.close(); return; }
    armedExit = true;
    io.output.write('\n(Ctrl-C again or /bye to leave)\n');
    rl.prompt();
  });

  if (terminal) io.output.write(`type /help for commands, /bye to leave${history ? '; conversations are saved (/history)' : ''}\n`);
  for (;;) {
    rl.setPrompt(input.pending ? MORE : PROMPT);
    if (terminal) rl.prompt();
    const line = await lines.next();
    if (line === undefined) break;
    armedExit = false;
    const got = input.push(line);
    if (got.kind === 'more') continue;
    const text = got.text;
    if (text.trim() === '') continue;
    let cmd;
    try {
      cmd = parseCommand(text);
    } catch (e) {
      io.output.write(`${(e as Error).message}\n`);
      continue;
    }
    if (cmd) {
      if (cmd.name === 'bye') break;
      io.output.write(runCommand(session, cmd, history, terminal));
      continue;
    }
    await answer(session, text, io, rl, terminal, history);
  }
  rl.close();
}

function runCommand(session: ChatSession, cmd: ChatCommand, history: ChatHistory | undefined, tty: boolean): string {
  const dim = (text: string) => (tty ? DIM + text + UNDIM : text);
  try {
    switch (cmd.name) {
      case 'help': return CHAT_HELP;
      case 'new':
      case 'clear':
        session.clear();
        history?.startNew();
        return 'new conversation\n';
      case 'system':
        session.system = cmd.text || undefined;
        return cmd.text ? 'system prompt set\n' : 'system prompt removed\n';
      case 'think': return cmd.text ? session.set('think', cmd.text) + '\n' : `think = ${session.think ?? 'default'}\n`;
      case 'show': {
        const r = session.lastReasoning();
        return r ? dim(r) + '\n' : 'no reasoning in this conversation yet\n';
      }
      case 'stats': return session.last ? formatStats(session.last) + '\n' : 'no answer yet\n';
      case 'set':
        if (cmd.key === undefined) return session.describeSettings();
        if (cmd.value === undefined) return `/set ${cmd.key} needs a value\n`;
        return session.set(cmd.key, cmd.value) + '\n';
      case 'save': return history ? history.save(cmd.text) : NO_HISTORY;
      case 'history': return history ? history.list(cmd.text) : NO_HISTORY;
      case 'load': {
        if (!history) return NO_HISTORY;
        if (!cmd.text) return history.list();
        const { conversation: c, path } = history.open(cmd.text);
        session.restore(toChatMessages(path), c.system || undefined);
        session.think = c.settings.think;
        const turns = path.filter((m) => m.role === 'user').length;
        return `loaded ${JSON.stringify(c.title)} (${shortId(c.id)}, ${turns} exchange${turns === 1 ? '' : 's'}, model ${c.model}, think = ${c.settings.think})\n\n` +
          formatTranscript(path, tty);
      }
      case 'bye': return '';
    }
  } catch (e) {
    return `${(e as Error).message}\n`;
  }
}

const NO_HISTORY = 'history is off (--no-history): conversations are not saved\n';

/**
 * One answer, with Ctrl-C aborting it: readline stops reading and the terminal leaves raw mode
 * meanwhile. With a history the exchange is saved as it streams.
 */
async function answer(session: ChatSession, text: string, io: ChatIO, rl: readline.Interface, terminal: boolean, history?: ChatHistory): Promise<void> {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  rl.pause();
  if (terminal) io.input.setRawMode?.(false);
  io.signals.on('SIGINT', onSigint);
  let record: TurnRecorder | undefined;
  try {
    record = history?.beginTurn(text, { system: session.system ?? '', think: session.think ?? 'none', temperature: session.settings.temperature });
    const r = await session.send(text, io.output, io.err, ac.signal, { fold: terminal, onProgress: (p) => record?.progress(p) });
    record?.finish(r);
    if (r.finishReason === 'context') io.output.write('\n[the context is full: /new to start over]');
    io.output.write(r.finishReason === 'aborted' ? '\n[stopped]\n\n' : '\n\n');
  } catch (e) {
    record?.fail((e as Error).message);
    const hint = session.messages.length ? ' (/new starts a new conversation)' : '';
    io.output.write(`\nerror: ${(e as Error).message}${hint}\n\n`);
  } finally {
    io.signals.off('SIGINT', onSigint);
    if (terminal) io.input.setRawMode?.(true);
    rl.resume();
  }
}

/** readline's lines as a pull queue; `undefined` once input ends. */
function lineQueue(rl: readline.Interface): { next(): Promise<string | undefined> } {
  const queue: string[] = [];
  let closed = false;
  let waiting: ((l: string | undefined) => void) | undefined;
  rl.on('line', (l) => {
    if (waiting) { const w = waiting; waiting = undefined; w(l); } else queue.push(l);
  });
  rl.on('close', () => {
    closed = true;
    if (waiting) { const w = waiting; waiting = undefined; w(undefined); }
  });
  return {
    next: () => {
      if (queue.length) return Promise.resolve(queue.shift());
      if (closed) return Promise.resolve(undefined);
      return new Promise((resolve) => { waiting = resolve; });
    },
  };
}
