/**
 * Strict function schemas (/beta, `strict: true`): only the JSON-Schema pieces DeepSeek allows
 * (object, string, number, integer, boolean, array, enum, anyOf; $ref/$defs for reuse), and every
 * object lists all its properties in `required` and sets `additionalProperties: false` (§8).
 */
import { badParam } from './errors.js';

const TYPES = new Set(['object', 'string', 'number', 'integer', 'boolean', 'array', 'null']);
const KEYWORDS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'anyOf', 'description', 'title',
  'default', '$ref', '$defs', 'definitions', 'const', 'pattern', 'format', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems',
]);

export function checkStrictSchema(schema: unknown, at: string, depth = 0): void {
  if (depth > 32) throw badParam(at, `${at}: the schema nests deeper than 32 levels`);
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw badParam(at, `${at} must be a JSON-Schema object`);
  const s = schema as Record<string, unknown>;
  for (const k of Object.keys(s)) if (!KEYWORDS.has(k)) throw badParam(at, `${at}: "${k}" is not supported in strict mode`);
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  for (const t of types) if (typeof t !== 'string' || !TYPES.has(t)) throw badParam(at, `${at}: type ${JSON.stringify(t)} is not supported in strict mode`);
  if (s.type === undefined && s.enum === undefined && s.anyOf === undefined && s.$ref === undefined && s.const === undefined) {
    throw badParam(at, `${at}: strict mode needs a "type", "enum", "anyOf" or "$ref"`);
  }
  if (types.includes('object')) {
    const props = (s.properties ?? {}) as Record<string, unknown>;
    if (typeof props !== 'object' || Array.isArray(props)) throw badParam(at, `${at}.properties must be an object`);
    if (s.additionalProperties !== false) throw badParam(at, `${at}: strict mode needs "additionalProperties": false on every object`);
    const required = Array.isArray(s.required) ? s.required : [];
    for (const name of Object.keys(props)) {
      if (!required.includes(name)) throw badParam(at, `${at}: strict mode needs every property in "required"; "${name}" is missing`);
      checkStrictSchema(props[name], `${at}.properties.${name}`, depth + 1);
    }
  }
  if (s.items !== undefined) checkStrictSchema(s.items, `${at}.items`, depth + 1);
  if (s.anyOf !== undefined) {
    if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) throw badParam(at, `${at}.anyOf must be a non-empty array`);
    s.anyOf.forEach((a, i) => checkStrictSchema(a, `${at}.anyOf[${i}]`, depth + 1));
  }
  for (const defs of [s.$defs, s.definitions]) {
    if (defs === undefined) continue;
    if (typeof defs !== 'object' || defs === null) throw badParam(at, `${at}: $defs must be an object`);
    for (const [k, d] of Object.entries(defs)) checkStrictSchema(d, `${at}.$defs.${k}`, depth + 1);
  }
}
