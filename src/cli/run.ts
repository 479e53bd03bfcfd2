/**
 * `minke run [MODEL] [PROMPT]`: a completion streamed to stdout (sizes, progress and statistics go to
 * stderr). With PROMPT, or with the prompt piped on stdin: one answer. With neither and a terminal
 * on stdin: an interactive chat (chat.ts).
 *
 * Without --raw the prompt goes through the model's chat template as a user message (models with
 * no template, like llama2.c's stories, are completed as plain text either way); --raw completes
 * the text as it is. Reasoning is shown as display.ts describes.
 *
 * The chat saves its conversations in the app's database ($MINKE_HOME/minke.db, chat-history.ts)
 * unless --no-history; a database that cannot be opened turns the history off with a warning.
 */
import { THINK_MODES, type ThinkMode } from '../chat/format.js';
import { parseArgs, flag, unescape, UsageError, type FlagSpec } from './args.js';
import { chatLoop } from './chat.js';
import { ChatHistory } from './chat-history.js';
import { ChatSession, defaultSettings, type Settings } from './chat-session.js';
import { formatStats } from './display.js';
import { defaultModelPath, modelPathOf } from '../models/shipped.js';
import { loadForCli } from './load.js';

export const RUN_USAGE = `usage: minke run [MODEL [PROMPT]] [options]
  --raw                  plain completion of PROMPT, no chat template
  --system TEXT          system prompt
  --think MODE           reasoning: none, low, high or max (DeepSeek-V4: default none, as the app's
                         DeepThink off; low thinks as high except on V4.1; templates with a
                         thinking switch: their default)
  --temperature T        0 = greedy (default 0.8)
  --top-k K              (default 40; 0 = off)
  --top-p P              (default 0.95; 1 = off)
  --min-p P              (default 0.05; 0 = off)
  --repeat-penalty R     (default 1 = off)
  --seed S               random seed (same seed, same text)
  --max-tokens N         most tokens to generate (default: until the end of the text or the context)
  --stop S               stop before S (repeatable; \\n, \\t, \\xNN escapes)
  --ctx N                context length in tokens (default: the model's, at most 4096)
  --threads N            CPU threads (default: all cores)
  --backend B            cpu (default) or webgpu (any GPU; falls back to the CPU with a warning)
  --quiet                no progress or statistics on stderr
  --no-history           the chat saves nothing (default: each exchange in MINKE_HOME/minke.db,
                         shared with the web app; /history, /load)
With no PROMPT: read it from stdin when piped, else chat interactively (/help inside).
Reasoning (<think>…</think>) is shown dimmed on a terminal; when stdout is a pipe or file it goes
to stderr, so stdout holds the answer alone. Statistics go to stderr. In the chat on a terminal the
reasoning folds into one line once it ends ("▸ Thought for 3.2 s (45 tokens)"); /show prints it.
`;

const FLAGS: Record<string, FlagSpec> = {
  raw: { kind: 'boolean' },
  system: { kind: 'string' },
  think: { kind: 'string' },
  temperature: { kind: 'number', min: 0 },
  'top-k': { kind: 'int', min: 0 },
  'top-p': { kind: 'number', min: 0 },
  'min-p': { kind: 'number', min: 0 },
  'repeat-penalty': { kind: 'number', min: 0 },
  seed: { kind: 'int' },
  'max-tokens': { kind: 'int', min: 0 },
  stop: { kind: 'list' },
  ctx: { kind: 'int', min: 1 },
  threads: { kind: 'int', min: 1, short: 't' },
  backend: { kind: 'string' },
  quiet: { kind: 'boolean', short: 'q' },
  'no-history': { kind: 'boolean' },
  help: { kind: 'boolean', short: 'h' },
};

export async function runCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (flag.bool(args, 'help')) { process.stdout.write(RUN_USAGE); return 0; }
  const [modelArg, ...words] = args.positionals;
  const modelPath = modelArg === undefined ? defaultModelPath('run') : modelPathOf(modelArg);
  const settings = settingsFrom(args);
  const think = flag.str(args, 'think') as ThinkMode | undefined;
  if (think !== undefined && !THINK_MODES.includes(think)) throw new UsageError(`--think is one of ${THINK_MODES.join(', ')}, got ${JSON.stringify(think)}`);
  const stop = flag.list(args, 'stop').map(unescape);
  if (stop.some((s) => s === '')) throw new UsageError('--stop needs a non-empty string');

  let prompt: string | undefined = words.length ? words.join(' ') : undefined;
  if (prompt === undefined && !process.stdin.isTTY) prompt = stripNewline(await readAll(process.stdin));
  const quiet = flag.bool(args, 'quiet');
  const ctx = flag.num(args, 'ctx');
  const model = await loadForCli(modelPath, { threads: flag.num(args, 'threads'), backend: flag.backend(args), contextLength: ctx, log: quiet ? undefined : process.stderr });
  try {
    const session = new ChatSession(model, { raw: flag.bool(args, 'raw'), settings, stop, system: flag.str(args, 'system'), contextLength: ctx, think });
    try {
      if (prompt === undefined) {
        const history = flag.bool(args, 'no-history') || flag.bool(args, 'raw') ? undefined : await openHistory(modelPath);
        try {
          await chatLoop(session, { input: process.stdin, output: process.stdout, err: process.stderr, signals: process }, history);
        } finally {
          history?.store.close();
        }
        return 0;
      }
      return await answerOnce(session, prompt, quiet, flag.bool(args, 'raw'));
    } finally {
      session.close();
    }
  } finally {
    await model.close();
  }
}

/** One answer to stdout; Ctrl-C stops it (exit status 130, as for an interrupted program). */
async function answerOnce(session: ChatSession, prompt: string, quiet: boolean, raw: boolean): Promise<number> {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.on('SIGINT', onSigint);
  try {
    const r = await session.send(prompt, process.stdout, process.stderr, ac.signal);
    // A chat answer ends its line; a raw completion into a pipe or file is exactly the generated text.
    if (!raw || process.stdout.isTTY) process.stdout.write('\n');
    if (!quiet) process.stderr.write(`${formatStats(r)}\n`);
    return r.finishReason === 'aborted' ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** The chat's history in the app database, the model named as `minke serve` names it; undefined (with a warning) if it cannot be opened. */
async function openHistory(modelPath: string): Promise<ChatHistory | undefined> {
  const warn = (message: string) => { process.stderr.write(`minke: ${message}\n`); };
  try {
    const [{ ChatStore }, { defaultModelName }] = await Promise.all([import('../app/store.js'), import('../server/index.js')]);
    return new ChatHistory(ChatStore.open(ChatStore.defaultPath()), defaultModelName(modelPath), warn);
  } catch (e) {
    warn(`the chat history is off: ${(e as Error).message}`);
    return undefined;
  }
}

function settingsFrom(args: ReturnType<typeof parseArgs>): Settings {
  const s = defaultSettings();
  const pick = (name: string, key: keyof Settings) => { const v = flag.num(args, name); if (v !== undefined) s[key] = v; };
  pick('temperature', 'temperature');
  pick('top-k', 'topK');
  pick('top-p', 'topP');
  pick('min-p', 'minP');
  pick('repeat-penalty', 'repeatPenalty');
  pick('seed', 'seed');
  pick('max-tokens', 'maxTokens');
  if (!(s.topP > 0 && s.topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${s.topP}`);
  if (s.minP > 1) throw new UsageError(`--min-p must be in [0, 1], got ${s.minP}`);
  return s;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

/** A piped prompt loses the one newline that ends its last line. */
function stripNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}
