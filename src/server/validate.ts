/**
 * Reading request bodies field by field: each reader checks one field's type and range and throws
 * a 400 naming the field (`param`) and what was wrong — so no malformed request gets further.
 */
import { badParam } from './errors.js';

export type Body = Record<string, unknown>;

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

export function object(v: unknown, param: string): Body {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badParam(param, `${param} must be an object, got ${typeName(v)}`);
  return v as Body;
}

export function array(v: unknown, param: string, max = Infinity): unknown[] {
  if (!Array.isArray(v)) throw badParam(param, `${param} must be an array, got ${typeName(v)}`);
  if (v.length > max) throw badParam(param, `${param} has ${v.length} items; at most ${max} are allowed`);
  return v;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function string(v: unknown, param: string): string {
  if (typeof v !== 'string') throw badParam(param, `${param} must be a string, got ${typeName(v)}`);
  if (LONE_SURROGATE.test(v)) throw badParam(param, `${param} is not valid Unicode (it has a lone surrogate)`);
  return v;
}

export function optString(v: unknown, param: string): string | undefined {
  return v === undefined || v === null ? undefined : string(v, param);
}

export function optBool(v: unknown, param: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(param, `${param} must be a boolean, got ${typeName(v)}`);
  return v;
}

export function optNumber(v: unknown, param: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badParam(param, `${param} must be a number, got ${typeName(v)}`);
  if (v < min || v > max) throw badParam(param, `${param} must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function optInt(v: unknown, param: string, min: number, max: number): number | undefined {
  const n = optNumber(v, param, min, max);
  if (n !== undefined && !Number.isInteger(n)) throw badParam(param, `${param} must be an integer, got ${n}`);
  return n;
}

export function oneOf<T extends string>(v: unknown, param: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) throw badParam(param, `${param} must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v) ?? typeName(v)}`);
  return v as T;
}

/** `stop`: a string or up to 16 strings. */
export function stopList(v: unknown, param = 'stop'): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v ? [string(v, param)] : [];
  return array(v, param, 16).map((s, i) => string(s, `${param}[${i}]`)).filter((s) => s !== '');
}

/** Text of a message content: a string, or text parts (other part kinds are refused by name). */
export function contentText(v: unknown, param: string, nullable: boolean): string {
  if (v === undefined || v === null) {
    if (nullable) return '';
    throw badParam(param, `${param} is required`);
  }
  if (typeof v === 'string') return string(v, param);
  return array(v, param).map((p, i) => {
    const part = object(p, `${param}[${i}]`);
    if (part.type !== 'text') throw badParam(`${param}[${i}].type`, `content part type ${JSON.stringify(part.type)} is not supported by this model (only "text")`);
    return string(part.text, `${param}[${i}].text`);
  }).join('\n\n');
}
