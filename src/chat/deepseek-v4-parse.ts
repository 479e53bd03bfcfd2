/**
 * DeepSeek-V4 completion parser: generated text → reasoning, content, tool calls (spec
 * deepseek-v4.md §13.5). Strict mode (default) accepts and rejects exactly what the official
 * `parse_message_from_completion_text` does and gives the same result; lenient mode, for a
 * server, never throws and keeps whatever it can. `version: 'v4.1'` reads DeepSeek-V4.1's
 * tool-call tags (`<｜DSML｜ calls>`, … with a leading space) with the same grammar.
 */
import {
  V4_BOS, V4_DSML, V4_EOS, V4_THINK_END, V4_THINK_START,
  dsmlTags, parsePythonJson, toPythonJson, toolCallsStart, type V4Version,
} from './deepseek-v4-encoding.js';

export interface V4ToolCall {
  name: string;
  /** JSON object text, e.g. `{"city": "Paris", "days": 3}`. */
  arguments: string;
}

export interface V4ParsedCompletion {
  reasoning: string;
  content: string;
  toolCalls: V4ToolCall[];
}

export interface V4ParseOptions {
  /** The prompt ended with `<think>`: the text starts with reasoning closed by `</think>`. */
  thinking: boolean;
  /** Throw on malformed text (default). With false, return what can be recovered instead. */
  strict?: boolean;
  /** Which model wrote it: 'v4' (default) or 'v4.1' (the tag names differ). */
  version?: V4Version;
}

/** The strings the tool-call grammar reads up to, in one version's spelling. */
interface Markup {
  blockStart: string;
  invokeOpen: string;
  invokeClose: string;
  paramOpen: string;
  /** The reference reads up to this, leaving its '<' in the value part. */
  paramClose: string;
  blockClose: string;
}

function markupOf(version: V4Version): Markup {
  const t = dsmlTags(version);
  return {
    blockStart: toolCallsStart(version),
    invokeOpen: `<${V4_DSML}${t.invoke}`,
    invokeClose: `</${V4_DSML}${t.invoke}`,
    paramOpen: `<${V4_DSML}${t.parameter}`,
    paramClose: `/${V4_DSML}${t.parameter}`,
    blockClose: `</${V4_DSML}${t.calls}>`,
  };
}
const MARKUP: Readonly<Record<V4Version, Markup>> = { v4: markupOf('v4'), 'v4.1': markupOf('v4.1') };

const SPECIAL_TOKENS = [V4_BOS, V4_EOS, V4_THINK_START, V4_THINK_END, V4_DSML];

// The reference's regexes; Python's `\s` and `$` (end, or before a final newline) spelled out.
const PY_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_END = '(?=\\n?$)';
const INVOKE_NAME_RE = new RegExp(`^${PY_SPACE}*name="(.*?)">\\n${PY_END}`, 's');
const PARAM_RE = new RegExp(`^ name="(.*?)" string="(true|false)">(.*?)<${PY_END}`, 's');

interface Read {
  /** Index after the stop string (or the text length). */
  next: number;
  /** Text from the start index up to the stop string. */
  body: string;
  /** The stop string that came first, or null when none occurs. */
  stop: string | null;
}

/** Reads from `from` up to the earliest of `stops`. */
function readUntil(text: string, from: number, stops: readonly string[]): Read {
  let at = text.length;
  let stop: string | null = null;
  for (const s of stops) {
    const p = text.indexOf(s, from);
    if (p !== -1 && p < at) { at = p; stop = s; }
  }
  return stop === null ? { next: text.length, body: text.slice(from), stop } : { next: at + stop.length, body: text.slice(from, at), stop };
}

function malformed(what: string): Error {
  return new Error(`malformed DeepSeek-V4 completion: ${what}`);
}

const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** Arguments rebuilt as JSON object text; `string="false"` values go in verbatim (as the reference). */
function argumentsJson(args: ReadonlyMap<string, { value: string; isString: boolean }>, lenient: boolean): string {
  const fields = [...args].map(([k, { value, isString }]) => {
    let v = isString ? toPythonJson(value) : value;
    if (!isString && lenient) {
      try { parsePythonJson(value); } catch { v = toPythonJson(value); } // not JSON: keep it as a string
    }
    return `${toPythonJson(k)}: ${v}`;
  });
  return `{${fields.join(', ')}}`;
}

/**
 * The DSML block after `\n\n<｜DSML｜tool_calls` (at `from`), read with the reference's grammar.
 * Returns the index where reading stopped (after `</｜DSML｜tool_calls>`, or the text end).
 */
function parseToolCallBlock(text: string, from: number, lenient: boolean, m: Markup): { next: number; calls: V4ToolCall[] } {
  const calls: V4ToolCall[] = [];
  let i = from;
  while (i < text.length) {
    let r = readUntil(text, i, [m.invokeOpen, m.blockClose]);
    if (r.body !== '>\n') throw malformed(`expected ">\\n" in the tool-call block, got ${quote(r.body)}`);
    i = r.next;
    if (r.stop === m.blockClose) break;
    if (r.stop === null) throw malformed('tool-call block ends without an invoke or its closing tag');

    r = readUntil(text, i, [m.paramOpen, m.invokeClose]);
    i = r.next;
    const nameMatch = INVOKE_NAME_RE.exec(r.body);
    if (!nameMatch) throw malformed(`bad invoke header ${quote(r.body)}`);
    const args = new Map<string, { value: string; isString: boolean }>();
    while (r.stop === m.paramOpen) {
      r = readUntil(text, i, [m.paramClose]);
      i = r.next;
      const p = PARAM_RE.exec(r.body);
      if (!p) throw malformed(`bad parameter ${quote(r.body)}`);
      if (args.has(p[1])) throw malformed(`duplicate parameter "${p[1]}" in a call of "${nameMatch[1]}"`);
      args.set(p[1], { value: p[3], isString: p[2] === 'true' });
      r = readUntil(text, i, [m.paramOpen, m.invokeClose]);
      i = r.next;
      if (r.body !== '>\n') throw malformed(`expected ">\\n" after a parameter, got ${quote(r.body)}`);
    }
    calls.push({ name: nameMatch[1], arguments: argumentsJson(args, lenient) });
  }
  return { next: i, calls };
}

function parseStrict(text: string, thinking: boolean, m: Markup): V4ParsedCompletion {
  let i = 0;
  let reasoning = '';
  if (thinking) {
    const r = readUntil(text, 0, [V4_THINK_END, m.blockStart]);
    if (r.stop !== V4_THINK_END) {
      throw malformed(r.stop === null ? 'thinking mode but no </think> ends the reasoning' : 'tool calls before </think>');
    }
    reasoning = r.body;
    i = r.next;
  }
  let r = readUntil(text, i, [V4_EOS, m.blockStart]);
  const content = r.body;
  i = r.next;
  let toolCalls: V4ToolCall[] = [];
  if (r.stop === m.blockStart) {
    const block = parseToolCallBlock(text, i, false, m);
    toolCalls = block.calls;
    r = readUntil(text, block.next, [V4_EOS]);
    if (r.body !== '') throw malformed(`text after the tool-call block: ${quote(r.body)}`);
    i = r.next;
  } else if (r.stop !== V4_EOS) {
    throw malformed('missing end-of-sentence token');
  }
  if (i !== text.length) throw malformed(`text after the end-of-sentence token: ${quote(text.slice(i))}`);
  for (const tok of SPECIAL_TOKENS) {
    if (content.includes(tok)) throw malformed(`special token ${tok} inside the content`);
    if (reasoning.includes(tok)) throw malformed(`special token ${tok} inside the reasoning`);
  }
  return { reasoning, content, toolCalls };
}

/**
 * Never throws: text after the first EOS is ignored; no `</think>` in thinking mode → all is
 * reasoning; a tool-call block that does not parse stays in the content; text after a parsed block
 * is appended to the content; a `string="false"` value that is not JSON becomes a JSON string.
 */
function parseLenient(text: string, thinking: boolean, m: Markup): V4ParsedCompletion {
  const eos = text.indexOf(V4_EOS);
  const body = eos === -1 ? text : text.slice(0, eos);
  let i = 0;
  let reasoning = '';
  if (thinking) {
    const end = body.indexOf(V4_THINK_END);
    if (end === -1) return { reasoning: body, content: '', toolCalls: [] };
    reasoning = body.slice(0, end);
    i = end + V4_THINK_END.length;
  }
  const start = body.indexOf(m.blockStart, i);
  if (start === -1) return { reasoning, content: body.slice(i), toolCalls: [] };
  const content = body.slice(i, start);
  try {
    const block = parseToolCallBlock(body, start + m.blockStart.length, true, m);
    return { reasoning, content: content + body.slice(block.next), toolCalls: block.calls };
  } catch {
    return { reasoning, content: body.slice(i), toolCalls: [] };
  }
}

/** Splits generated text (everything after the prompt, EOS included) into its parts. */
export function parseV4Completion(text: string, opts: V4ParseOptions): V4ParsedCompletion {
  const m = MARKUP[opts.version ?? 'v4'];
  if (!m) throw new Error(`unknown DeepSeek-V4 encoding version "${String(opts.version)}" (expected "v4" or "v4.1")`);
  return opts.strict === false ? parseLenient(text, opts.thinking, m) : parseStrict(text, opts.thinking, m);
}
