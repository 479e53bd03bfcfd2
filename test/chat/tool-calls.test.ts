// Tool calls of template models (Hermes / Qwen, DeepSeek-V3 / R1, DeepSeek-V3.1) from hand-written
// answers in each model's documented syntax, and the streaming hold-back before them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplateToolCalls, safeContentLength } from '../../src/chat/tool-calls.js';

const CALLS_BEGIN = '<｜tool▁calls▁begin｜>';
const CALLS_END = '<｜tool▁calls▁end｜>';
const CALL_BEGIN = '<｜tool▁call▁begin｜>';
const CALL_END = '<｜tool▁call▁end｜>';
const SEP = '<｜tool▁sep｜>';

describe('parseTemplateToolCalls: Hermes / Qwen', () => {
  it('one call after some text', () => {
    const text = 'Let me check.\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>';
    assert.deepEqual(parseTemplateToolCalls(text), {
      content: 'Let me check.',
      calls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":3}' }],
    });
  });

  it('several calls, nested arguments, no content', () => {
    const text = '<tool_call>\n{"name": "a", "arguments": {"x": [1, {"y": "z w"}]}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>';
    assert.deepEqual(parseTemplateToolCalls(text), {
      content: '',
      calls: [{ name: 'a', arguments: '{"x":[1,{"y":"z w"}]}' }, { name: 'b', arguments: '{}' }],
    });
  });

  it('arguments as JSON text, under "parameters", or absent', () => {
    const text = '<tool_call>{"name": "a", "arguments": "{\\"k\\": 1}"}</tool_call><tool_call>{"name": "b", "parameters": {"k": 2}}</tool_call><tool_call>{"name": "c"}</tool_call>';
    assert.deepEqual(parseTemplateToolCalls(text).calls, [
      { name: 'a', arguments: '{"k":1}' }, { name: 'b', arguments: '{"k":2}' }, { name: 'c', arguments: '{}' },
    ]);
  });

  it('an unclosed last call counts when it is whole', () => {
    assert.deepEqual(parseTemplateToolCalls('<tool_call>\n{"name": "a", "arguments": {"k": true}}\n'), {
      content: '', calls: [{ name: 'a', arguments: '{"k":true}' }],
    });
  });

  it('malformed calls stay in the content, good ones are taken', () => {
    const bad = '<tool_call>\n{"name": "a", "arguments": {"k": </tool_call>';
    assert.deepEqual(parseTemplateToolCalls(bad), { content: bad, calls: [] });
    const notObject = '<tool_call>{"name": "a", "arguments": [1]}</tool_call>';
    assert.deepEqual(parseTemplateToolCalls(notObject), { content: notObject, calls: [] });
    const noName = '<tool_call>{"arguments": {}}</tool_call>';
    assert.deepEqual(parseTemplateToolCalls(noName), { content: noName, calls: [] });
    const cut = 'x <tool_call>{"name": "a", "argum';
    assert.deepEqual(parseTemplateToolCalls(cut), { content: cut, calls: [] });
    const mixed = `${bad}\n<tool_call>{"name": "b", "arguments": {"n": 1}}</tool_call>`;
    assert.deepEqual(parseTemplateToolCalls(mixed), { content: bad, calls: [{ name: 'b', arguments: '{"n":1}' }] });
  });

  it('plain text is all content, untouched', () => {
    for (const text of ['', 'Hello.', '  spaced  \n', 'a <b>tag</b> and </tool_call> alone']) {
      assert.deepEqual(parseTemplateToolCalls(text), { content: text, calls: [] });
    }
  });
});

describe('parseTemplateToolCalls: DeepSeek', () => {
  it('V3 / R1: function<sep>NAME and a fenced JSON block, calls separated by a newline', () => {
    const text = `I'll look.${CALLS_BEGIN}${CALL_BEGIN}function${SEP}get_weather\n\`\`\`json\n{"city": "Paris"}\n\`\`\`${CALL_END}\n`
      + `${CALL_BEGIN}function${SEP}get_time\n\`\`\`json\n{"zone": "CET", "fmt": {"h": 24}}\n\`\`\`${CALL_END}${CALLS_END}`;
    assert.deepEqual(parseTemplateToolCalls(text), {
      content: "I'll look.",
      calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }, { name: 'get_time', arguments: '{"zone":"CET","fmt":{"h":24}}' }],
    });
  });

  it('V3.1: NAME<sep>ARGS, several calls', () => {
    const text = `${CALLS_BEGIN}${CALL_BEGIN}search${SEP}{"q": "minke whale"}${CALL_END}${CALL_BEGIN}ping${SEP}{}${CALL_END}${CALLS_END}`;
    assert.deepEqual(parseTemplateToolCalls(text), {
      content: '',
      calls: [{ name: 'search', arguments: '{"q":"minke whale"}' }, { name: 'ping', arguments: '{}' }],
    });
  });

  it('a missing closing block marker, or a bare call', () => {
    assert.deepEqual(parseTemplateToolCalls(`${CALLS_BEGIN}${CALL_BEGIN}ping${SEP}{"a": 1}${CALL_END}`).calls, [{ name: 'ping', arguments: '{"a":1}' }]);
    assert.deepEqual(parseTemplateToolCalls(`ok ${CALL_BEGIN}ping${SEP}{"a": 1}${CALL_END}`), { content: 'ok', calls: [{ name: 'ping', arguments: '{"a":1}' }] });
  });

  it('malformed blocks stay in the content', () => {
    for (const text of [
      `${CALLS_BEGIN}${CALL_BEGIN}ping${SEP}{"a": 1}`, // cut before the call end
      `${CALLS_BEGIN}${CALL_BEGIN}ping {"a": 1}${CALL_END}${CALLS_END}`, // no separator
      `${CALLS_BEGIN}${CALL_BEGIN}ping${SEP}[1, 2]${CALL_END}${CALLS_END}`, // not an object
      `${CALLS_BEGIN}${CALL_BEGIN}function${SEP}get\n\`\`\`json\n{"a": \n\`\`\`${CALL_END}${CALLS_END}`, // bad JSON
      `${CALLS_BEGIN}${CALL_BEGIN}${SEP}{}${CALL_END}${CALLS_END}`, // no name
      `${CALLS_BEGIN}${CALLS_END}`, // no calls
    ]) {
      assert.deepEqual(parseTemplateToolCalls(text), { content: text, calls: [] }, text);
    }
  });
});

describe('safeContentLength', () => {
  it('everything when no tool-call syntax can start', () => {
    assert.equal(safeContentLength(''), 0);
    assert.equal(safeContentLength('Hello world.'), 12);
    assert.equal(safeContentLength('a <b>bold</b> c'), 15);
  });

  it('stops before a marker and the whitespace in front of it', () => {
    assert.equal(safeContentLength('Let me check.\n\n<tool_call>\n{"name"'), 'Let me check.'.length);
    assert.equal(safeContentLength(`Sure${CALLS_BEGIN}${CALL_BEGIN}`), 4);
    assert.equal(safeContentLength(`Sure ${CALL_BEGIN}x`), 4);
    assert.equal(safeContentLength('<tool_call>'), 0);
  });

  it('holds back a possible start of a marker at the end', () => {
    assert.equal(safeContentLength('Hi <'), 2);
    assert.equal(safeContentLength('Hi <tool_c'), 2);
    assert.equal(safeContentLength('Hi <｜tool▁ca'), 2);
    assert.equal(safeContentLength('Hi <t'), 2);
    assert.equal(safeContentLength('Hi <tx'), 6);
    assert.equal(safeContentLength('a\n\n'), 1); // trailing whitespace waits for what follows
  });

  it('what streams out before the calls plus the parse of the rest is the whole content', () => {
    const text = 'The weather:\n<tool_call>\n{"name": "w", "arguments": {}}\n</tool_call>';
    let emitted = 0;
    let out = '';
    for (let n = 1; n <= text.length; n++) {
      const safe = safeContentLength(text.slice(0, n));
      if (safe > emitted) { out += text.slice(emitted, safe); emitted = safe; }
    }
    const rest = parseTemplateToolCalls(text.slice(emitted));
    assert.equal(out + rest.content, 'The weather:');
    assert.deepEqual(rest.calls, [{ name: 'w', arguments: '{}' }]);
  });
});
