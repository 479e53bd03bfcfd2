// The JSON automaton byte by byte (ConstraintState.feed), per feature: hand-written texts that must
// be accepted whole, accepted only as a prefix, or rejected; and the schema compiler's errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileJsonConstraint, type JsonConstraintOptions, type JsonSchema } from '../../src/engine/constrain/index.js';
import { storiesTokenizer } from './fixtures.js';

type Schema = JsonSchema | 'json' | 'json_object';

function check(schema: Schema, cases: { whole?: (string | Uint8Array)[]; partial?: string[]; reject?: (string | Uint8Array)[] }, opts?: JsonConstraintOptions): void {
  const c = compileJsonConstraint(schema, storiesTokenizer(), opts);
  const show = (t: string | Uint8Array) => (typeof t === 'string' ? JSON.stringify(t) : `bytes ${[...t].map((b) => b.toString(16)).join(' ')}`);
  for (const t of cases.whole ?? []) assert.equal(c.start().feed(t)?.canEnd, true, `${show(t)} should be a whole value`);
  for (const t of cases.partial ?? []) {
    const s = c.start().feed(t);
    assert.ok(s, `${show(t)} should be accepted as a prefix`);
    assert.equal(s.canEnd, false, `${show(t)} should not be a whole value`);
  }
  for (const t of cases.reject ?? []) assert.equal(c.start().feed(t), null, `${show(t)} should be rejected`);
}

test('JSON mode: values, nesting, whitespace inside and before', () => {
  check('json', {
    whole: ['{}', '[]', '0', '-0', '12', '-12.5e+3', '1E5', '0.25', '2e-7', 'true', 'false', 'null', '""',
      '{"a":[1,{"b":null}],"c":"d"}', '  {"a" : 1 }', '[ 1 , 2 ]', '{\n  "a": [\n    true\n  ]\n}'],
    partial: ['', '{', '{"a', '{"a":', '[1,', '"abc', '-', '1.', '1e', '1e+', 'tr', '{"a":1,'],
    reject: ['01', '.5', '+1', '1.e3', '--1', '{"a":1,}', '[1,]', '[,1]', '{a:1}', "'a'", '{"a" 1}', '[1 2]',
      'truth', 'nul ', '{} {}', '{}\n', '1 ', '}', ']', '{"a"::1}', '[}', '{]'],
  });
});

test('JSON mode: numbers stay finite doubles (digit caps)', () => {
  check('json', {
    whole: ['1'.repeat(20), '1.' + '5'.repeat(20), '1e99', '-1E-99'],
    reject: ['1'.repeat(21), '1.' + '5'.repeat(21), '1e100'],
  });
});

test('strings: escapes, control characters, UTF-8', () => {
  check('json', {
    whole: ['"a\\n\\t\\r\\b\\f\\/\\\\\\""', '"\\u00e9\\uD83D\\uDE00"', '"é😀日本"', '"\u007f"'],
    partial: ['"\\', '"\\u00', '"é', Buffer.from('"é').subarray(0, 2).toString('latin1')],
    reject: ['"\\x"', '"\\u12G4"', '"tab\tinside"', '"line\nbreak"', '"\\U0041"'],
  });
  const q = 0x22;
  check('json', {
    whole: [Uint8Array.of(q, 0xe2, 0x82, 0xac, q), Uint8Array.of(q, 0xf0, 0x9f, 0x98, 0x80, q)],
    reject: [
      Uint8Array.of(q, 0x80), // a continuation byte alone
      Uint8Array.of(q, 0xc0, 0x80), // overlong
      Uint8Array.of(q, 0xe0, 0x80), // overlong (3 bytes)
      Uint8Array.of(q, 0xed, 0xa0), // UTF-16 surrogate
      Uint8Array.of(q, 0xf4, 0x90), // past U+10FFFF
      Uint8Array.of(q, 0xf5),
      Uint8Array.of(q, 0xc3, q), // a character cut short
    ],
  });
});

test('whitespace and depth limits', () => {
  check('json', { whole: ['{  "a":1}', '  1'], reject: ['{   "a":1}', '   1', '[1,   2]'] }, { maxWhitespace: 2 });
  check('json', { whole: ['{"a":1}'], reject: ['{ "a":1}', ' 1'] }, { maxWhitespace: 0 });
  check('json', { whole: ['[[[1]]]', '{"a":{"b":[]}}'], reject: ['[[[[', '{"a":{"b":[{'] }, { maxDepth: 3 });
});

test('suffix: the value, then exactly this text (DSML parameters)', () => {
  const obj = { type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: false };
  check(obj, { whole: ['{"a":1}</p>', '{}</p>'], partial: ['{"a":1}', '{"a":1}</'], reject: ['{"a":1}</x', '{"a":1}</p>x', '{"a":1} </p>'] }, { suffix: '</p>' });
  check({ type: 'integer' }, { whole: ['12</p>'], partial: ['12', '12<'], reject: ['12 </p>', '12</p>3'] }, { suffix: '</p>' });
  const c = compileJsonConstraint(obj, storiesTokenizer(), { suffix: '</p>' });
  assert.equal(Buffer.from(c.start().feed('{"a":1')!.completion()).toString(), '}</p>');
  assert.equal(Buffer.from(c.start().feed('{}</')!.completion()).toString(), 'p>');
});

test('json_object: an object at the top', () => {
  check('json_object', { whole: ['{}', '{"x":[1]}'], reject: ['[]', '1', '"a"', 'null'] });
});

test('object: required, additionalProperties false, any order, each name once', () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' }, nick: { type: 'string' } },
    required: ['name', 'age'], additionalProperties: false,
  };
  check(schema, {
    whole: ['{"name":"x","age":3}', '{"age":3,"name":"x"}', '{"nick":"n","age":-1,"name":""}', '{ "name" : "x" , "age" : 3 }'],
    partial: ['{"name":"x"', '{"name":"x",', '{"na'],
    reject: ['{"name":"x"}', '{}', '{"name":"x","name"', '{"nam"', '{"namex', '{"other"', '{"age":1.5', '{"age":1e3', '{"age":"3"'],
  });
});

test('object keys: a name that is a prefix of another, used up', () => {
  const schema = { type: 'object', properties: { ab: { type: 'integer' }, abc: { type: 'integer' } }, additionalProperties: false };
  check(schema, {
    whole: ['{"ab":1,"abc":2}', '{"abc":2,"ab":1}', '{}'],
    partial: ['{"ab":1,"ab'],
    reject: ['{"ab":1,"ab"', '{"abc":1,"abc"', '{"ab":1,"abc":2,'],
  });
});

test('object keys with escapes and non-ASCII are matched as JSON.stringify writes them', () => {
  const schema = { type: 'object', properties: { 'q"t': { const: 1 }, 'back\\slash': { const: 2 }, 'ünï': { const: 3 }, 'tab\tkey': { const: 4 } }, additionalProperties: false };
  check(schema, {
    whole: ['{"q\\"t":1}', '{"back\\\\slash":2}', '{"ünï":3}', '{"tab\\tkey":4}'],
    reject: ['{"q\\u0022t"', '{"tab\tkey"', '{"q\\"t":2'],
  });
});

test('additionalProperties as a schema, and absent (any value)', () => {
  const typed = { type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: { type: 'string' } };
  check(typed, {
    whole: ['{"a":1,"b":"x"}', '{"ab":"x"}', '{"":"x"}', '{"b\\n":"y"}', '{"a\\"":"z"}'],
    reject: ['{"b":1', '{"a":"x"', '{"a":1,"a"', '{"b\\/"', '{"\\u0061"'],
  });
  check({ type: 'object', properties: { a: { type: 'integer' } } }, { whole: ['{"a":1,"z":[1,{}]}', '{"z":null}'], reject: ['{"a":"1"'] });
  // A required name outside `properties` takes the additionalProperties schema.
  check({ type: 'object', required: ['k'], additionalProperties: { type: 'boolean' } }, {
    whole: ['{"k":true}', '{"x":false,"k":true}'], reject: ['{}', '{"k":1'],
  });
});

test('enum and const: any JSON values, exact text', () => {
  check({ enum: ['a', 1, null, { k: [1] }, 'a"b'] }, {
    whole: ['"a"', '1', 'null', '{"k":[1]}', '"a\\"b"', ' "a"'],
    reject: ['"b"', '2', '10', '1.0', '{"k":[2]}', '"\\u0061"', '{ "k":[1]}'],
  });
  check({ const: 'fixed' }, { whole: ['"fixed"'], reject: ['"fixe"', '"fixedd"'] });
  check({ type: 'integer', enum: [1, 2.5, 'x', 3] }, { whole: ['1', '3'], reject: ['2.5', '"x"'] });
});

test('types: boolean, null, number, integer, type lists, nullable', () => {
  check({ type: 'boolean' }, { whole: ['true', 'false'], reject: ['null', '1', '"true"'] });
  check({ type: 'null' }, { whole: ['null'], reject: ['false'] });
  check({ type: 'number' }, { whole: ['1', '-2.5e3'], reject: ['"1"', 'true'] });
  check({ type: 'integer' }, { whole: ['1', '-0', '123'], reject: ['1.0', '1e2', '.1'] });
  check({ type: ['string', 'null'] }, { whole: ['"a"', 'null'], reject: ['1'] });
  check({ type: ['integer', 'number'] }, { whole: ['1.5', '2'] });
  check({ type: 'string', nullable: true }, { whole: ['"a"', 'null'], reject: ['true'] });
});

test('anyOf: alternatives tracked together until one is ruled out', () => {
  const schema = {
    anyOf: [
      { type: 'object', properties: { kind: { const: 'a' }, x: { type: 'integer' } }, required: ['kind', 'x'], additionalProperties: false },
      { type: 'object', properties: { kind: { const: 'b' }, y: { type: 'string' } }, required: ['kind', 'y'], additionalProperties: false },
      { type: 'array', items: { type: 'boolean' } },
    ],
  };
  check(schema, {
    whole: ['{"kind":"a","x":1}', '{"kind":"b","y":"s"}', '{"x":1,"kind":"a"}', '[true]'],
    reject: ['{"kind":"a","y":"s"}', '{"kind":"c"', '{"x":1,"y"', '[1]'],
  });
  // Overlapping alternatives: both readings stay open.
  check({ anyOf: [{ type: 'string' }, { enum: ['x'] }, { type: 'integer' }, { type: 'number' }] }, {
    whole: ['"x"', '"xy"', '1', '1.5'],
  });
  check({ oneOf: [{ type: 'string' }, { type: 'boolean' }] }, { whole: ['"s"', 'true'], reject: ['1'] });
});

test('arrays: items, minItems / maxItems, prefixItems, item lists', () => {
  check({ type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 3 }, {
    whole: ['[1,2]', '[1,2,3]'], partial: ['[1', '[1,2,3'], reject: ['[]', '[1]', '[1,2,3,', '[1,"a"'],
  });
  check({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false }, {
    whole: ['["a",1]', '[]', '["a"]'], reject: ['["a",1,', '[1'],
  });
  check({ type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'boolean' } }, { whole: ['["a",true,false]'], reject: ['["a","b"'] });
  check({ type: 'array', items: [{ type: 'null' }], additionalItems: false }, { whole: ['[null]'], reject: ['[null,'] });
  check({ type: 'array', maxItems: 0 }, { whole: ['[]'], reject: ['[1'] });
});

test('$ref: definitions, recursion, allOf of one', () => {
  const tree = {
    $defs: {
      node: {
        type: 'object',
        properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } },
        required: ['v'], additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  };
  check(tree, { whole: ['{"v":1}', '{"v":1,"kids":[{"v":2,"kids":[]},{"kids":[{"v":4}],"v":3}]}'], reject: ['{"kids":[{}]'] });
  check({ definitions: { s: { type: 'string' } }, allOf: [{ $ref: '#/definitions/s' }] }, { whole: ['"x"'], reject: ['1'] });
  // A recursive list with no end in its required part can only be left empty … or not at all.
  check({ type: 'object', properties: { next: { $ref: '#' }, v: { type: 'integer' } }, required: ['v'], additionalProperties: false }, {
    whole: ['{"v":1,"next":{"v":2}}'],
  });
});

test('no dead ends: an optional property with no finite value is never offered', () => {
  const loop = { type: 'object', properties: { me: { $ref: '#/properties/x' }, x: { type: 'object', properties: { y: { $ref: '#/properties/x' } }, required: ['y'] } } };
  check(loop, { whole: ['{}'], reject: ['{"me"', '{"x"'] });
  check({ anyOf: [{ type: 'string' }, { type: 'object', properties: { r: { $ref: '#/anyOf/1' } }, required: ['r'] }] }, {
    whole: ['"s"'], reject: ['{'],
  });
});

test('schema errors name the problem', () => {
  const tok = storiesTokenizer();
  const fails = (schema: JsonSchema, re: RegExp) => assert.throws(() => compileJsonConstraint(schema, tok), re);
  fails({ type: 'string', pattern: '^a' }, /keyword 'pattern' is not supported/);
  fails({ type: 'number', minimum: 1 }, /'minimum'/);
  fails({ $ref: 'http://example.com/s.json' }, /only local \$ref/);
  fails({ $ref: '#/$defs/missing' }, /does not resolve/);
  fails({ type: 'integer', enum: ['a'] }, /no value of enum is of type integer/);
  fails({ type: 'array', minItems: 3, maxItems: 2 }, /at least 3 and at most 2/);
  fails({ type: 'object', required: ['x'], additionalProperties: false }, /required property 'x' is not allowed/);
  fails({ type: 'strings' }, /type must be one of/);
  fails(false, /allows no value/);
  fails({ type: 'object', properties: { a: { $ref: '#' } }, required: ['a'] }, /no finite JSON value/);
  fails({ type: 'object', properties: { a: { type: 'string' } }, allOf: [{}] }, /'allOf' next to 'type', 'properties'/);
  fails({ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, /cycle/);
  fails({ type: 'object', properties: { '\u0001': { type: 'string' } } }, /needs a \\u escape/);
  assert.throws(() => compileJsonConstraint('json', tok, { maxDepth: 0 }), /maxDepth/);
  // lenient: what cannot be enforced is left out.
  assert.equal(compileJsonConstraint({ type: 'string', pattern: '^a', format: 'email' }, tok, { lenient: true }).start().feed('"b"')?.canEnd, true);
});

test('completion(): the shortest text that finishes the value, accepted by the automaton', () => {
  const tok = storiesTokenizer();
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, t: { type: 'array', items: { enum: ['x', 'yy'] }, minItems: 2 }, n: { type: 'number' } },
    required: ['name', 't'], additionalProperties: false,
  };
  const c = compileJsonConstraint(schema, tok);
  const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
  assert.equal(text(c.start().completion()), '{"name":"","t":["x","x"]}');
  assert.equal(text(c.start().feed('{"t":["yy"')!.completion()), ',"x"],"name":""}');
  assert.equal(text(c.start().feed('{"na')!.completion()), 'me":"","t":["x","x"]}');
  assert.equal(text(c.start().feed('{"name":"a\\u00')!.completion()), '00","t":["x","x"]}');
  assert.equal(text(c.start().feed('{"n":1.')!.completion()), '0,"name":"","t":["x","x"]}');
  const json = compileJsonConstraint('json', tok);
  assert.equal(text(json.start().feed('[{"a":[tr')!.completion()), 'ue]}]');
  assert.equal(json.start().feed('[1]')!.completion().length, 0);
  // Half a character: the completion finishes it first.
  const half = json.start().feed(Uint8Array.of(0x22, 0xe6))!;
  assert.deepEqual([...half.completion()], [0x80, 0x80, 0x22]);
  for (const [s, t] of [[schema, '{"n":-'], ['json', '{"a":{"b":[1,{"c'], [schema, '{"name":"\\']] as const) {
    const st = compileJsonConstraint(s as Schema, tok).start().feed(t)!;
    assert.equal(st.feed(st.completion())?.canEnd, true, t);
  }
});
