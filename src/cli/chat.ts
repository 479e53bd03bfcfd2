/**
 * The interactive chat of `minke run MODEL` (stdin a terminal): readline with history, multi-line
 * input, `/` commands. Ctrl-C while an answer streams stops that answer; at the prompt it drops
 * the line being typed, and a second Ctrl-C at an empty prompt leaves.
 */
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { CHAT_HELP, InputAssembler, parseCommand } from './chat-input.js';
import type { ChatSession } from './chat-session.js';
import { formatStats, type Out } from './display.js';

export interface ChatIO {
  readonly input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly output: Out & NodeJS.WritableStream;
  readonly err: Out;
  /** Where Ctrl-C arrives while an answer streams (the process; tests pass their own emitter). */
  readonly signals: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

const PROMPT = '>>> ';
const MORE = '... ';

export async function chatLoop(session: ChatSession, io: ChatIO): Promise<void> {
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

  if (terminal) io.output.write('type /help for commands, /bye to leave\n');
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
      io.output.write(runCommand(session, cmd));
      continue;
    }
    await answer(session, text, io, rl, terminal);
  }
  rl.close();
}

function runCommand(session: ChatSession, cmd: NonNullable<ReturnType<typeof parseCommand>>): string {
  try {
    switch (cmd.name) {
      case 'help': return CHAT_HELP;
      case 'clear': session.clear(); return 'conversation cleared\n';
      case 'system':
        session.system = cmd.text || undefined;
        return cmd.text ? 'system prompt set\n' : 'system prompt removed\n';
      case 'stats': return session.last ? formatStats(session.last) + '\n' : 'no answer yet\n';
      case 'set':
        if (cmd.key === undefined) return session.describeSettings();
        if (cmd.value === undefined) return `/set ${cmd.key} needs a value\n`;
        return session.set(cmd.key, cmd.value) + '\n';
      case 'bye': return '';
    }
  } catch (e) {
    return `${(e as Error).message}\n`;
  }
}

/** One answer, with Ctrl-C aborting it: readline stops reading and the terminal leaves raw mode meanwhile. */
async function answer(session: ChatSession, text: string, io: ChatIO, rl: readline.Interface, terminal: boolean): Promise<void> {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  rl.pause();
  if (terminal) io.input.setRawMode?.(false);
  io.signals.on('SIGINT', onSigint);
  try {
    const r = await session.send(text, io.output, io.err, ac.signal);
    if (r.finishReason === 'context') io.output.write('\n[the context is full: /clear to start over]');
    io.output.write(r.finishReason === 'aborted' ? '\n[stopped]\n\n' : '\n\n');
  } catch (e) {
    const hint = session.messages.length ? ' (/clear starts a new conversation)' : '';
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
