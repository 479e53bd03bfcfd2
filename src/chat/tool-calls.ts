/**
 * Tool calls written by template models in their own syntax (tool_choice auto), pulled out of the
 * answer text:
 *   Hermes / Qwen2.5 / Qwen3:  <tool_call>\n{"name": NAME, "arguments": {…}}\n</tool_call>   (one or more)
 *   DeepSeek-V3 / R1:          <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{…}\n```<｜tool▁call▁end｜>
 *                              (\n between calls) <｜tool▁calls▁end｜>
 *   DeepSeek-V3.1:             <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{…}<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>
 * The DeepSeek markers are control tokens: the text must be decoded with special tokens rendered.
 * Malformed calls stay in the content; nothing here throws.
 */

export interface ParsedToolCall {
  readonly name: string;
  /** Compact JSON object text. */
  readonly arguments: string;
}

export interface ParsedToolCalls {
  /** The text around the calls (trimmed when calls were found). */
  content: string;
  calls: ParsedToolCall[];
}

const HERMES_OPEN = '<tool_call>';
const HERMES_CLOSE = '</tool_call>';
const DS_CALLS_BEGIN = '<｜tool▁calls▁begin｜>';
const DS_CALLS_END = '<｜tool▁calls▁end｜>';
const DS_CALL_BEGIN = '<｜tool▁call▁begin｜>';
const DS_CALL_END = '<｜tool▁call▁end｜>';
const DS_SEP = '<｜tool▁sep｜>';
/** Texts that begin tool-call syntax. */
const MARKERS = [HERMES_OPEN, DS_CALLS_BEGIN, DS_CALL_BEGIN];

type Obj = { readonly [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compact JSON of an object given as JSON text (or an object); null when it is not one. */
function objectJson(v: unknown): string | null {
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  return isObj(v) ? JSON.stringify(v) : null;
}

/** `{"name": …, "arguments": {…}}` (arguments also as JSON text, or under "parameters"; absent = none). */
function hermesCall(body: string): ParsedToolCall | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  if (!isObj(v) || typeof v.name !== 'string' || v.name === '') return null;
  const args = objectJson(v.arguments ?? v.parameters ?? {});
  return args === null ? null : { name: v.name, arguments: args };
}

function parseHermes(text: string): ParsedToolCalls {
  const calls: ParsedToolCall[] = [];
  let content = '';
  let i = 0;
  for (let open = text.indexOf(HERMES_OPEN); open >= 0; open = text.indexOf(HERMES_OPEN, i)) {
    const from = open + HERMES_OPEN.length;
    const close = text.indexOf(HERMES_CLOSE, from);
    // An unclosed last block counts when it holds a whole call (the output stopped right there).
    const end = close < 0 ? text.length : close + HERMES_CLOSE.length;
    const call = hermesCall(text.slice(from, close < 0 ? text.length : close));
    content += text.slice(i, call ? open : end);
    if (call) calls.push(call);
    i = end;
  }
  content += text.slice(i);
  return calls.length > 0 ? { content: content.trim(), calls } : { content: text, calls: [] };
}

/** One DeepSeek call body (between call-begin and call-end): V3's `TYPE<sep>NAME\n```json\nARGS\n```` or V3.1's `NAME<sep>ARGS`. */
function deepseekCall(body: string): ParsedToolCall | null {
  const sep = body.indexOf(DS_SEP);
  if (sep < 0) return null;
  const head = body.slice(0, sep).trim();
  const rest = body.slice(sep + DS_SEP.length);
  const fenced = /^([^\n]+)\n```(?:json)?[ \t]*\n([\s\S]*?)\n?```\s*$/.exec(rest);
  const [name, args] = fenced ? [fenced[1].trim(), fenced[2]] : [head, rest];
  const json = objectJson(args);
  return name && json !== null ? { name, arguments: json } : null;
}

/** The DeepSeek block starting at `start` (calls-begin, or a bare call-begin); null when it does not parse. */
function parseDeepseek(text: string, start: number): ParsedToolCalls | null {
  let i = start + (text.startsWith(DS_CALLS_BEGIN, start) ? DS_CALLS_BEGIN.length : 0);
  const calls: ParsedToolCall[] = [];
  const skipSpace = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  for (skipSpace(); text.startsWith(DS_CALL_BEGIN, i); skipSpace()) {
    const from = i + DS_CALL_BEGIN.length;
    const end = text.indexOf(DS_CALL_END, from);
    const call = end < 0 ? null : deepseekCall(text.slice(from, end));
    if (!call) return null;
    calls.push(call);
    i = end + DS_CALL_END.length;
  }
  if (calls.length === 0) return null;
  if (text.startsWith(DS_CALLS_END, i)) i += DS_CALLS_END.length;
  return { content: (text.slice(0, start) + text.slice(i)).trim(), calls };
}

function firstOf(text: string, marks: readonly string[]): number {
  let at = -1;
  for (const m of marks) {
    const p = text.indexOf(m);
    if (p >= 0 && (at < 0 || p < at)) at = p;
  }
  return at;
}

/** Splits a template model's answer into content and the tool calls it wrote. */
export function parseTemplateToolCalls(text: string): ParsedToolCalls {
  const ds = firstOf(text, [DS_CALLS_BEGIN, DS_CALL_BEGIN]);
  const hermes = text.indexOf(HERMES_OPEN);
  if (ds >= 0 && (hermes < 0 || ds < hermes)) return parseDeepseek(text, ds) ?? { content: text, calls: [] };
  if (hermes >= 0) return parseHermes(text);
  return { content: text, calls: [] };
}

/**
 * Length of the prefix of `text` that is surely content: it stops before the first tool-call
 * marker, or before the end of the text where it might be the start of one, and leaves out the
 * whitespace in front (held back until it is known what follows), for streaming hold-back.
 */
export function safeContentLength(text: string): number {
  let end = firstOf(text, MARKERS);
  if (end < 0) end = text.length;
  for (const m of MARKERS) {
    for (let n = Math.min(m.length - 1, text.length); n > 0; n--) {
      if (text.endsWith(m.slice(0, n))) { end = Math.min(end, text.length - n); break; }
    }
  }
  return text.slice(0, end).trimEnd().length;
}
