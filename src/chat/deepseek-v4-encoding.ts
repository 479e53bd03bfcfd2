/**
 * DeepSeek-V4 chat encoder: messages → prompt string, byte-exact with the official
 * `encoding/encoding_dsv4.py` (spec deepseek-v4.md §13). V4 has no Jinja template; this is the
 * whole prompt format: tool results merged into user turns, reasoning dropped from earlier
 * turns, DSML tool calls, the Think-Max paragraph, quick-instruction task tokens.
 *
 * `version: 'v4.1'` writes DeepSeek-V4.1's variant (deepseek-v41.md §13): a `<｜System｜>` segment
 * opened right after BOS for the numeric reasoning effort (thinking mode) and/or a leading system
 * message, later system messages as `<｜System｜>` turns the assistant answers, DSML tag names with
 * a leading space, and `<｜deepseek_image｜>` for image parts. No Think-Max paragraph.
 *
 * JSON inside the prompt (tool schemas, response formats, non-string tool arguments) is written
 * the way Python's `json.dumps(value, ensure_ascii=False)` writes it, and tool-call argument
 * strings are read the way `json.loads` reads them (key order kept, ints vs floats kept).
 */

// ---------------------------------------------------------------------------------------------
// Special strings (each is one added token of the V4 tokenizer, §12)

export const V4_BOS = '<｜begin▁of▁sentence｜>';
export const V4_EOS = '<｜end▁of▁sentence｜>';
export const V4_USER = '<｜User｜>';
export const V4_ASSISTANT = '<｜Assistant｜>';
export const V4_LATEST_REMINDER = '<｜latest_reminder｜>';
export const V4_THINK_START = '<think>';
export const V4_THINK_END = '</think>';
/** The DSML marker; tags are written `<｜DSML｜name>` / `</｜DSML｜name>`. */
export const V4_DSML = '｜DSML｜';

/** Which model's prompt format: DeepSeek-V4 or DeepSeek-V4.1. */
export type V4Version = 'v4' | 'v4.1';

/** The names written after the DSML marker in each version's tool-call tags (open and close alike). */
export interface DsmlTags {
  readonly calls: string;
  readonly invoke: string;
  readonly parameter: string;
}
const DSML_TAGS: Readonly<Record<V4Version, DsmlTags>> = {
  v4: { calls: 'tool_calls', invoke: 'invoke', parameter: 'parameter' },
  'v4.1': { calls: ' calls', invoke: ' invoke', parameter: ' parameter' },
};

/** The DSML tag names of `version`; throws on an unknown version. */
export function dsmlTags(version: V4Version): DsmlTags {
  const tags = DSML_TAGS[version];
  if (!tags) throw new Error(`unknown DeepSeek-V4 encoding version "${String(version)}" (expected "v4" or "v4.1")`);
  return tags;
}

/** What a completion's tool-call block starts with in `version` (the content ends right before it). */
export function toolCallsStart(version: V4Version): string {
  return `\n\n<${V4_DSML}${dsmlTags(version).calls}`;
}
export const V4_TOOL_CALLS_START = toolCallsStart('v4');
export const V41_TOOL_CALLS_START = toolCallsStart('v4.1');

/** V4.1: opens the system segment (after BOS) and each later system turn (id 128799). */
export const V41_SYSTEM = '<｜System｜>';
/** V4.1: stands for one image in the text (id 129264); the pixels travel beside the prompt. */
export const V41_IMAGE = '<｜deepseek_image｜>';

export type V4Task = 'action' | 'query' | 'authority' | 'domain' | 'title' | 'read_url';

/** Quick-instruction task tokens. */
export const V4_TASK_TOKENS: Readonly<Record<V4Task, string>> = {
  action: '<｜action｜>',
  query: '<｜query｜>',
  authority: '<｜authority｜>',
  domain: '<｜domain｜>',
  title: '<｜title｜>',
  read_url: '<｜read_url｜>',
};

// ---------------------------------------------------------------------------------------------
// Fixed texts (official outputs; lengths and sha256 are listed in shared/spec/README.md)

/** Inserted right after BOS in Think-Max mode (476 UTF-8 bytes). */
export const V4_THINK_MAX_PREFIX =
  'Reasoning Effort: Absolute maximum with no shortcuts permitted.\n' +
  'You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, ' +
  'rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n' +
  'Explicitly write out your entire deliberation process, documenting every intermediate step, considered ' +
  'alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n';

/** V4.1 reasoning effort: a named level or a number 1–100. */
export const V41_EFFORT_LEVELS: Readonly<Record<'low' | 'high' | 'max', number>> = { low: 50, high: 75, max: 100 };

/** V4.1: what follows `<｜System｜>` in thinking mode (effort `n`, 1–100). */
export function v41EffortText(n: number): string {
  return `Reasoning Effort: ${n} (range 1-100, the higher the value, the more thorough the reasoning)\n\n`;
}

/** Tools block up to the schema lines, with `version`'s tag names. */
export function toolsPreamble(version: V4Version): string {
  const t = dsmlTags(version);
  const m = V4_DSML;
  return '## Tools\n\n' +
    "You have access to a set of tools to help answer the user's question. You can invoke tools by writing a " +
    `"<${m}${t.calls}>" block like the following:\n\n` +
    `<${m}${t.calls}>\n` +
    `<${m}${t.invoke} name="$TOOL_NAME">\n` +
    `<${m}${t.parameter} name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</${m}${t.parameter}>\n` +
    '...\n' +
    `</${m}${t.invoke}>\n` +
    `<${m}${t.invoke} name="$TOOL_NAME2">\n` +
    '...\n' +
    `</${m}${t.invoke}>\n` +
    `</${m}${t.calls}>\n\n` +
    'String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, ' +
    'arrays, objects), pass the value in JSON format and set `string="false"`.\n\n' +
    `If thinking_mode is enabled (triggered by ${V4_THINK_START}), you MUST output your complete reasoning inside ` +
    `${V4_THINK_START}...${V4_THINK_END} BEFORE any tool calls or final response.\n\n` +
    `Otherwise, output directly after ${V4_THINK_END} with tool calls or final response.\n\n` +
    '### Available Tool Schemas\n\n';
}

/** V4's tools block up to the schema lines (890 bytes). */
export const V4_TOOLS_PREAMBLE = toolsPreamble('v4');

/** Tools block after the last schema line (99 bytes). */
export const V4_TOOLS_CLOSING =
  '\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n';

/** Header in front of a response format's JSON. */
export const V4_RESPONSE_FORMAT_HEADER =
  '## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n';

// ---------------------------------------------------------------------------------------------
// Python-compatible JSON

/** A number that Python holds as a float (prints `3.0`, not `3`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/**
 * A JSON value as Python's json module sees it. Parsed objects are `Map`s (insertion order, as a
 * Python dict; plain JS objects put integer-like keys first), parsed ints are `bigint`s and parsed
 * floats `PyFloat`s. A plain JS `number` prints as an int when it is a safe integer.
 */
export type PyJson =
  | null | boolean | number | bigint | string | PyFloat
  | readonly PyJson[] | ReadonlyMap<string, PyJson> | { readonly [key: string]: PyJson | undefined };

/** Python `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expText] = Math.abs(x).toExponential().split('e'); // shortest digits, "d.ddde±N"
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const point = exp + 1; // digits before the decimal point
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f',
};

/** A string as `json.dumps(s, ensure_ascii=False)` writes it (only `"`, `\` and C0 controls escaped). */
export function pythonJsonString(s: string): string {
  return `"${s.replace(/["\\\x00-\x1f]/g, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** `json.dumps(value, ensure_ascii=False)`: separators `", "` and `": "`, keys in the order given. */
export function toPythonJson(value: PyJson | undefined): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': return value.toString();
    case 'number': return Number.isSafeInteger(value) ? String(value === 0 ? 0 : value) : pythonFloatRepr(value);
    case 'string': return pythonJsonString(value);
  }
  if (value instanceof PyFloat) return pythonFloatRepr(value.value);
  if (Array.isArray(value)) return `[${value.map((v) => toPythonJson(v)).join(', ')}]`;
  const entries = value instanceof Map
    ? [...(value as ReadonlyMap<string, PyJson>).entries()]
    : Object.entries(value as { [key: string]: PyJson | undefined }).filter(([, v]) => v !== undefined);
  return `{${entries.map(([k, v]) => `${pythonJsonString(k)}: ${toPythonJson(v)}`).join(', ')}}`;
}

/** Python truthiness of a JSON value (`if response_format:`). */
function pyTruthy(v: PyJson | undefined): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === 0n || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (v instanceof PyFloat) return v.value !== 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const SIMPLE_UNESCAPES: Readonly<Record<string, string>> = {
  '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t',
};

/**
 * `json.loads(text)` of CPython: NaN/Infinity/-Infinity accepted, raw control characters in
 * strings rejected, duplicate keys keep the first position and the last value. Throws on invalid.
 */
export function parsePythonJson(text: string): PyJson {
  let i = 0;
  const fail = (what: string): never => { throw new Error(`invalid JSON: ${what} at offset ${i}`); };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i];
      if (c === '"') { i++; return out; }
      if (c < ' ') fail('control character in string');
      if (c !== '\\') { out += c; i++; continue; }
      const e = text[i + 1];
      if (e === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16)); // surrogate halves pair up by themselves
        i += 6;
        continue;
      }
      const u = e === undefined ? undefined : SIMPLE_UNESCAPES[e];
      if (u === undefined) fail('bad escape');
      out += u;
      i += 2;
    }
  };
  const value = (): PyJson => {
    const c = text[i];
    if (c === '"') return str();
    if (c === '{') {
      i++;
      const obj = new Map<string, PyJson>();
      ws();
      if (text[i] === '}') { i++; return obj; }
      for (;;) {
        if (text[i] !== '"') fail('expected a property name in double quotes');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        ws();
        obj.set(key, value());
        ws();
        if (text[i] === '}') { i++; return obj; }
        if (text[i] !== ',') fail("expected ',' or '}'");
        i++;
        ws();
      }
    }
    if (c === '[') {
      i++;
      const arr: PyJson[] = [];
      ws();
      if (text[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ']') { i++; return arr; }
        if (text[i] !== ',') fail("expected ',' or ']'");
        i++;
        ws();
      }
    }
    for (const [word, v] of [['null', null], ['true', true], ['false', false], ['NaN', new PyFloat(NaN)],
      ['Infinity', new PyFloat(Infinity)], ['-Infinity', new PyFloat(-Infinity)]] as const) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (!m) return fail('expected a value');
    i += m[0].length;
    return m[1] !== undefined || m[2] !== undefined ? new PyFloat(Number(m[0])) : BigInt(m[0]);
  };
  if (text.startsWith('\ufeff')) fail('byte order mark');
  ws();
  const v = value();
  ws();
  if (i !== text.length) fail('extra data');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Messages

export type V4ReasoningEffort = 'high' | 'max';
/** V4.1: a named level (low 50, high 75, max 100) or a whole number 1–100. */
export type V41ReasoningEffort = 'low' | 'high' | 'max' | number;
export type V4Role = 'system' | 'user' | 'assistant' | 'tool' | 'developer' | 'latest_reminder';

/**
 * OpenAI content part; only `text` parts carry text, others render as `[Unsupported TYPE]` — except
 * in V4.1, where `image` / `image_url` parts render as `<｜deepseek_image｜>`.
 */
export interface V4ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}
export type V4Content = string | V4ContentPart[];

/** OpenAI function tool: `{type: 'function', function: {name, description, parameters}}`. */
export interface V4Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: PyJson; [key: string]: PyJson | undefined };
}

/** OpenAI tool call; `arguments` is JSON text (anything unparsable renders as one `arguments` parameter). */
export interface V4ToolCallIn {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string; id?: string };
}

export interface V4Message {
  role: V4Role;
  content?: V4Content | null;
  /** system / developer: tools offered. */
  tools?: V4Tool[];
  /** system / developer: schema the reply must follow. */
  response_format?: PyJson;
  /** assistant: calls it made. */
  tool_calls?: V4ToolCallIn[];
  /** tool: the call this result answers. */
  tool_call_id?: string;
  /** assistant: its reasoning. */
  reasoning_content?: string | null;
  /** assistant: leave the turn open (no EOS), for prefilling a partial answer. */
  wo_eos?: boolean;
  /** quick-instruction task: the turn ends in the task token instead of a normal assistant prefix. */
  task?: V4Task | null;
  /** carried through like the reference does; not rendered. */
  mask?: unknown;
}

export interface V4EncodeOptions {
  /** Prompt format: 'v4' (default) or 'v4.1'. */
  version?: V4Version;
  thinking: boolean;
  /** V4: 'high' | 'max'; V4.1: 'low' | 'high' | 'max' or 1–100. Null or absent = 'high'. */
  reasoningEffort?: V4ReasoningEffort | V41ReasoningEffort | null;
  /** Drop reasoning of turns before the last user turn (thinking mode). Default true; forced off by tools. */
  dropThinking?: boolean;
  /** Write BOS when no context is given. Default true. */
  addBos?: boolean;
  /** Turns already in the KV cache: only `messages` are rendered, as their continuation. */
  context?: V4Message[];
}

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_result'; toolUseId: string; content: V4Content };

/** A message after pre-processing: user turns carry their blocks. */
interface Turn extends V4Message {
  blocks?: Block[];
}

/**
 * Text of a content field. Lists are joined the way the reference joins a tool result's list
 * (text parts by a blank line, other parts as `[Unsupported TYPE]`); the reference takes lists only
 * there, so for other roles this is our extension. A missing content is empty.
 */
function contentText(content: V4Content | null | undefined, version: V4Version): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => {
    if (p.type === 'text') return p.text ?? '';
    if (version === 'v4.1' && (p.type === 'image' || p.type === 'image_url')) return V41_IMAGE;
    return `[Unsupported ${p.type ?? 'None'}]`;
  }).join('\n\n');
}

/** V4.1: the image token may only come from image parts, so that tokens and images pair up. */
function checkNoImageToken(m: V4Message): void {
  const parts = typeof m.content === 'string' ? [m.content] : (m.content ?? []).map((p) => (p.type === 'text' ? p.text ?? '' : ''));
  if (typeof m.reasoning_content === 'string') parts.push(m.reasoning_content);
  if (parts.some((t) => t.includes(V41_IMAGE))) {
    throw new Error(`a ${m.role} message holds the image token ${V41_IMAGE} as text; send images as image content parts`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-processing (§13.3)

/** Runs of user/tool messages become one user turn of text and tool_result blocks. */
function mergeToolMessages(messages: readonly V4Message[], version: V4Version): Turn[] {
  const out: Turn[] = [];
  for (const m of messages) {
    const last = out.length > 0 ? out[out.length - 1] : undefined;
    if (m.role === 'tool') {
      const block: Block = { type: 'tool_result', toolUseId: m.tool_call_id ?? '', content: m.content ?? '' };
      if (last?.role === 'user' && last.blocks) last.blocks.push(block);
      else out.push({ role: 'user', blocks: [block] });
    } else if (m.role === 'user') {
      const block: Block = { type: 'text', text: contentText(m.content, version) };
      if (last?.role === 'user' && last.blocks && last.task == null) {
        last.blocks.push(block);
      } else {
        // Only these fields survive (a user message's tools are dropped, as in the reference).
        const turn: Turn = { role: 'user', content: m.content, blocks: [block] };
        if ('task' in m) turn.task = m.task;
        if ('wo_eos' in m) turn.wo_eos = m.wo_eos;
        if ('mask' in m) turn.mask = m.mask;
        out.push(turn);
      }
    } else {
      out.push({ ...m });
    }
  }
  return out;
}

/** Orders the tool results of each user turn like the calls of the latest assistant turn with calls. */
function sortToolResults(turns: readonly Turn[]): Turn[] {
  let order = new Map<string, number>();
  return turns.map((t) => {
    if (t.role === 'assistant' && t.tool_calls && t.tool_calls.length > 0) {
      order = new Map();
      t.tool_calls.forEach((tc, k) => {
        const id = tc.id || tc.function?.id || '';
        if (id) order.set(id, k);
      });
      return t;
    }
    if (t.role !== 'user' || !t.blocks) return t;
    const results = t.blocks.filter((b) => b.type === 'tool_result');
    if (results.length < 2 || order.size === 0) return t;
    const rank = (b: Block) => (b.type === 'tool_result' ? order.get(b.toolUseId) ?? 0 : 0);
    const sorted = [...results].sort((a, b) => rank(a) - rank(b)); // stable, like Python's sorted
    let k = 0;
    return { ...t, blocks: t.blocks.map((b) => (b.type === 'tool_result' ? sorted[k++] : b)) };
  });
}

/** A turn the assistant answers: user, developer and, in V4.1, a system message after the first turn. */
function asksAssistant(t: Turn, i: number, version: V4Version): boolean {
  return t.role === 'user' || t.role === 'developer' || (version === 'v4.1' && t.role === 'system' && i > 0);
}

function lastUserIndex(turns: readonly Turn[], version: V4Version): number {
  for (let i = turns.length - 1; i >= 0; i--) if (asksAssistant(turns[i], i, version)) return i;
  return -1;
}

const KEPT_BEFORE_LAST_USER = new Set<string>(['user', 'system', 'tool', 'latest_reminder', 'direct_search_results']);

/** Before the last user turn: assistant turns lose their reasoning, developer turns disappear. */
function dropThinking(turns: readonly Turn[], version: V4Version): Turn[] {
  const lastUser = lastUserIndex(turns, version);
  const out: Turn[] = [];
  turns.forEach((t, i) => {
    if (KEPT_BEFORE_LAST_USER.has(t.role) || i >= lastUser) {
      out.push(t);
    } else if (t.role === 'assistant') {
      const { reasoning_content: _dropped, ...rest } = t;
      out.push(rest);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering (§13.4)

function renderTools(tools: readonly V4Tool[], version: V4Version): string {
  const schemas = tools.map((t) => {
    if (!t.function) throw new Error(`tool without a "function" object: ${JSON.stringify(t)}`);
    return toPythonJson(t.function);
  });
  return toolsPreamble(version) + schemas.join('\n') + V4_TOOLS_CLOSING;
}

/** Tools block and response format appended to system / developer content. */
function renderSystemExtras(t: Turn, version: V4Version): string {
  let s = '';
  if (t.tools && t.tools.length > 0) s += '\n\n' + renderTools(t.tools, version);
  if (pyTruthy(t.response_format)) s += '\n\n' + V4_RESPONSE_FORMAT_HEADER + toPythonJson(t.response_format);
  return s;
}

function dsmlParameter(key: string, value: PyJson, tag: string): string {
  const isString = typeof value === 'string';
  return `<${V4_DSML}${tag} name="${key}" string="${isString}">${isString ? value : toPythonJson(value)}</${V4_DSML}${tag}>`;
}

/** The parameters of one call; arguments that are not JSON become one `arguments` parameter. */
function dsmlParameters(args: unknown, tag: string): string {
  let parsed: PyJson;
  try {
    if (typeof args !== 'string') throw new Error('not a string');
    parsed = parsePythonJson(args);
  } catch {
    return dsmlParameter('arguments', (args ?? null) as PyJson, tag);
  }
  if (!(parsed instanceof Map)) {
    throw new Error(`tool call arguments must be a JSON object, got ${JSON.stringify(args)}`);
  }
  return [...parsed.entries()].map(([k, v]) => dsmlParameter(k, v, tag)).join('\n');
}

function renderToolCalls(calls: readonly V4ToolCallIn[], version: V4Version): string {
  const t = dsmlTags(version);
  const invokes = calls.map((tc) => {
    if (typeof tc.function?.name !== 'string') throw new Error(`tool call without a function name: ${JSON.stringify(tc)}`);
    return `<${V4_DSML}${t.invoke} name="${tc.function.name}">\n${dsmlParameters(tc.function.arguments, t.parameter)}\n</${V4_DSML}${t.invoke}>`;
  });
  return `\n\n<${V4_DSML}${t.calls}>\n${invokes.join('\n')}\n</${V4_DSML}${t.calls}>`;
}

function renderUserBlocks(blocks: readonly Block[], version: V4Version): string {
  return blocks
    .map((b) => (b.type === 'text' ? b.text : `<tool_result>${contentText(b.content, version)}</tool_result>`))
    .join('\n\n');
}

interface RenderState {
  version: V4Version;
  turns: readonly Turn[];
  lastUser: number;
  thinking: boolean;
  drop: boolean;
  /** V4: 'high' | 'max'; V4.1: the number 1–100. */
  effort: V4ReasoningEffort | number;
}

/** What comes before turn `i` itself: V4's Think-Max paragraph, V4.1's system segment. */
function turnPrefix(i: number, st: RenderState): string {
  const t = st.turns[i];
  if (st.version === 'v4') return i === 0 && st.thinking && st.effort === 'max' ? V4_THINK_MAX_PREFIX : '';
  if (i > 0) return t.role === 'system' ? V41_SYSTEM : '';
  // Turn 0: one segment holds the effort line (thinking) and a leading system message.
  const effort = st.thinking ? v41EffortText(st.effort as number) : '';
  return effort || t.role === 'system' ? V41_SYSTEM + effort : '';
}

function renderTurn(i: number, st: RenderState): string {
  const t = st.turns[i];
  const v = st.version;
  let s = turnPrefix(i, st);
  switch (t.role) {
    case 'system':
      s += contentText(t.content, v) + renderSystemExtras(t, v);
      break;
    case 'developer':
      if (!t.content || t.content.length === 0) throw new Error('developer message without content');
      s += V4_USER + contentText(t.content, v) + renderSystemExtras(t, v);
      break;
    case 'user':
      s += V4_USER + (t.blocks && t.blocks.length > 0 ? renderUserBlocks(t.blocks, v) : contentText(t.content, v));
      break;
    case 'latest_reminder':
      s += V4_LATEST_REMINDER + contentText(t.content, v);
      break;
    case 'assistant': {
      const prevHasTask = i > 0 && st.turns[i - 1].task != null;
      const keepReasoning = st.thinking && !prevHasTask && (!st.drop || i > st.lastUser);
      if (keepReasoning) s += (t.reasoning_content ?? '') + V4_THINK_END;
      s += contentText(t.content, v);
      if (t.tool_calls && t.tool_calls.length > 0) s += renderToolCalls(t.tool_calls, v);
      if (!t.wo_eos) s += V4_EOS;
      break;
    }
    default:
      throw new Error(`unknown message role "${String(t.role)}"`);
  }
  // The generation prompt follows only the last turn or a turn the assistant (or a reminder) follows.
  const next = st.turns[i + 1];
  if (next && next.role !== 'assistant' && next.role !== 'latest_reminder') return s;
  if (t.task != null) {
    const token = V4_TASK_TOKENS[t.task];
    if (token === undefined) throw new Error(`unknown task "${String(t.task)}"; valid: ${Object.keys(V4_TASK_TOKENS).join(', ')}`);
    s += t.task === 'action' ? V4_ASSISTANT + (st.thinking ? V4_THINK_START : V4_THINK_END) + token : token;
  } else if (asksAssistant(t, i, v)) {
    const openThinking = st.thinking && (!st.drop || i >= st.lastUser);
    s += V4_ASSISTANT + (openThinking ? V4_THINK_START : V4_THINK_END);
  }
  return s;
}

/** The effort as the version renders it: V4 'high' | 'max', V4.1 a number 1–100. */
function resolveEffort(version: V4Version, effort: V4ReasoningEffort | V41ReasoningEffort | null): V4ReasoningEffort | number {
  if (version === 'v4') {
    if (effort !== null && effort !== 'high' && effort !== 'max') {
      throw new Error(`invalid reasoning effort "${String(effort)}" (expected "high", "max" or null)`);
    }
    return effort ?? 'high';
  }
  if (effort === null) return V41_EFFORT_LEVELS.high;
  if (typeof effort === 'number' && Number.isInteger(effort) && effort >= 1 && effort <= 100) return effort;
  if (typeof effort === 'string' && Object.hasOwn(V41_EFFORT_LEVELS, effort)) return V41_EFFORT_LEVELS[effort as keyof typeof V41_EFFORT_LEVELS];
  throw new Error(`invalid reasoning effort ${JSON.stringify(effort)} for DeepSeek-V4.1 (expected "low", "high", "max", a whole number 1–100, or null)`);
}

/** Renders `messages` (after `opts.context`, if any) into the V4 (or V4.1) prompt text. */
export function encodeV4Messages(messages: V4Message[], opts: V4EncodeOptions): string {
  const version = opts.version ?? 'v4';
  dsmlTags(version); // rejects an unknown version
  const effort = resolveEffort(version, opts.reasoningEffort ?? null);
  const rawContext = opts.context ?? [];
  if (version === 'v4.1') [...rawContext, ...messages].forEach(checkNoImageToken);
  // As the reference: the new messages are sorted after the raw context (its assistant calls set
  // the order), the context itself is merged and sorted on its own.
  const fresh = sortToolResults([...rawContext, ...mergeToolMessages(messages, version)]).slice(rawContext.length);
  const context = rawContext.length > 0 ? sortToolResults(mergeToolMessages(rawContext, version)) : [];
  let turns: Turn[] = [...context, ...fresh];

  let prompt = (opts.addBos ?? true) && context.length === 0 ? V4_BOS : '';
  // Tool use keeps every turn's reasoning.
  const drop = (opts.dropThinking ?? true) && !turns.some((t) => t.tools && t.tools.length > 0);
  let first = context.length;
  if (opts.thinking && drop) {
    turns = dropThinking(turns, version);
    first = dropThinking(context, version).length;
  }
  const st: RenderState = { version, turns, lastUser: lastUserIndex(turns, version), thinking: opts.thinking, drop, effort };
  for (let i = first; i < turns.length; i++) prompt += renderTurn(i, st);
  return prompt;
}
