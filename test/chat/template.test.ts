// Chat templates in the style of the models' own (written here, checked by hand): DeepSeek-R1-Distill
// (Qwen) and Llama-3, rendered with @huggingface/jinja and tokenized with special tokens parsed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { openGGUF, type GGUFValue } from '../../src/formats/gguf.js';
import { tokenizerFromGGUF, type Tokenizer } from '../../src/tokenizer/index.js';
import { ChatTemplate, type ChatMessage } from '../../src/chat/template.js';
import { promptOpensReasoning } from '../../src/chat/reasoning.js';

const shared = (p: string): string => fileURLToPath(new URL(`../../../../shared/${p}`, import.meta.url));

/**
 * The real deepseek-llm byte-level BPE vocabulary (BOS <｜begin▁of▁sentence｜>) with extra tokens
 * appended the way a model's tokenizer adds them: [text, GGUF token type (3 control, 4 user-defined)].
 */
let base: Map<string, GGUFValue> | undefined;
function vocabWith(extra: [string, number][], opts: { template: string; bos?: string }): Tokenizer {
  if (!base) {
    const f = openGGUF(shared('models/llama-cpp-vocab/ggml-vocab-deepseek-llm.gguf'));
    base = new Map(f.metadata);
    f.close();
  }
  const m = new Map(base);
  const tokens = [...(m.get('tokenizer.ggml.tokens') as string[]), ...extra.map((e) => e[0])];
  m.set('tokenizer.ggml.tokens', tokens);
  m.set('tokenizer.ggml.token_type', [...(m.get('tokenizer.ggml.token_type') as number[]), ...extra.map((e) => e[1])]);
  m.set('tokenizer.chat_template', opts.template);
  if (opts.bos) m.set('tokenizer.ggml.bos_token_id', tokens.indexOf(opts.bos));
  return tokenizerFromGGUF(m);
}

// DeepSeek-R1-Distill-Qwen's template, without its tool-call branches: system text first, the
// reasoning of earlier answers dropped, and the generation prompt opening <think>.
const R1_TEMPLATE = String.raw`{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}
{% set ns = namespace(system_prompt='') %}
{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}
{{ bos_token }}{{ ns.system_prompt }}
{%- for message in messages %}
{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{%- endif %}
{%- if message['role'] == 'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}
{%- endfor -%}
{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\n' }}{% endif %}`;

// Llama-3-Instruct's template: a header per message, content trimmed, <|eot_id|> after each.
const LLAMA3_TEMPLATE = String.raw`{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;

const r1 = () => vocabWith([['<｜User｜>', 4], ['<｜Assistant｜>', 4], ['<think>', 4], ['</think>', 4]], { template: R1_TEMPLATE });
const llama3 = () => vocabWith([['<|begin_of_text|>', 3], ['<|start_header_id|>', 3], ['<|end_header_id|>', 3], ['<|eot_id|>', 3]],
  { template: LLAMA3_TEMPLATE, bos: '<|begin_of_text|>' });

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '<think>\n2 plus 2.\n</think>\n\n4' },
  { role: 'user', content: 'And 3+3?' },
];

test('R1-distill: system first, earlier reasoning dropped, generation prompt opens <think>', () => {
  const tok = r1();
  const chat = new ChatTemplate(tok);
  const text = chat.render(conversation);
  assert.equal(text, '<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜>' +
    '<｜User｜>And 3+3?<｜Assistant｜><think>\n');
  assert.equal(promptOpensReasoning(text), true);
  assert.equal(chat.render(conversation, { addGenerationPrompt: false }).endsWith('<｜User｜>And 3+3?'), true);
  assert.equal(promptOpensReasoning(chat.render(conversation, { addGenerationPrompt: false })), false);

  const ids = chat.encode(text);
  const id = (t: string) => tok.tokenId(t)!;
  // One BOS (the template's text BOS is not doubled by the tokenizer's), each marker one token.
  assert.equal(ids[0], tok.bos);
  assert.equal(ids.filter((x) => x === tok.bos).length, 1);
  for (const marker of ['<｜User｜>', '<｜Assistant｜>', '<｜end▁of▁sentence｜>']) assert.ok(ids.includes(id(marker)), marker);
  assert.equal(ids.filter((x) => x === id('<｜User｜>')).length, 2);
  assert.deepEqual(ids.slice(-2), [id('<think>'), tok.encode('\n', { addBos: false })[0]]);
  // Everything between the markers is the plain text's own tokens.
  assert.equal(tok.decode(ids), text);
});

test('Llama-3: headers, trimmed contents, <|eot_id|> after each message, BOS from the template only once', () => {
  const tok = llama3();
  const chat = new ChatTemplate(tok);
  const text = chat.render([{ role: 'system', content: 'Be brief. ' }, { role: 'user', content: '\nHi' }]);
  assert.equal(text, '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(promptOpensReasoning(text), false);
  const ids = chat.encode(text);
  const id = (t: string) => tok.tokenId(t)!;
  assert.equal(ids[0], id('<|begin_of_text|>'));
  assert.equal(ids.filter((x) => x === id('<|begin_of_text|>')).length, 1);
  assert.equal(ids.filter((x) => x === id('<|start_header_id|>')).length, 3);
  assert.equal(ids.filter((x) => x === id('<|eot_id|>')).length, 2);
  assert.equal(tok.decode(ids), text);
  // <|eot_id|> typed by a user in a plain prompt is text; from the template it is the control token.
  assert.ok(!tok.encode('<|eot_id|>', { addBos: false }).includes(id('<|eot_id|>')));
});

test('tools and extra variables reach the template', () => {
  const tok = vocabWith([], {
    template: '{% if tools %}{% for t in tools %}[{{ t.function.name }}]{% endfor %}{% endif %}{{ messages[0].content }}{% if enable_thinking is defined and not enable_thinking %}/no_think{% endif %}',
  });
  const chat = new ChatTemplate(tok);
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: {} } }];
  assert.equal(chat.render([{ role: 'user', content: 'x' }], { tools }), '[get_weather]x');
  assert.equal(chat.render([{ role: 'user', content: 'x' }]), 'x');
  assert.equal(chat.render([{ role: 'user', content: 'x' }], { variables: { enable_thinking: false } }), 'x/no_think');
});

test('template errors are clear', () => {
  const bad = vocabWith([], { template: '{% if %}' });
  assert.throws(() => new ChatTemplate(bad), /chat template does not parse/);
  const raising = new ChatTemplate(vocabWith([], { template: "{{ raise_exception('Conversation roles must alternate user/assistant') }}" }));
  assert.throws(() => raising.render([]), /chat template failed: .*Conversation roles must alternate/);
});

test('no template (stories260K): the texts concatenated, an answer continuing the text before it', () => {
  const f = openGGUF(shared('models/stories260K/stories260K.gguf'));
  const tok = tokenizerFromGGUF(f.metadata);
  f.close();
  const chat = new ChatTemplate(tok);
  assert.equal(chat.source, undefined);
  assert.equal(chat.render([{ role: 'user', content: 'Once upon a time' }]), 'Once upon a time');
  const text = chat.render([
    { role: 'system', content: 'A story.' },
    { role: 'user', content: 'Once upon a time' },
    { role: 'assistant', content: ', there was a girl.' },
    { role: 'user', content: 'The end.' },
  ]);
  assert.equal(text, 'A story.\nOnce upon a time, there was a girl.\nThe end.');
  // Same ids as the plain text, BOS first.
  assert.deepEqual(chat.encode('Once upon a time'), [1, 403, 407, 261, 378]);
});
