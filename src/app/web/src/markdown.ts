// Model output → safe HTML: markdown (marked, GFM), code blocks highlighted (highlight.js) with a
// copy button, math with KaTeX ($…$, $$…$$, \(…\), \[…\]); the result always goes through DOMPurify.
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import katex from 'katex';
import { Marked, type Tokens, type TokenizerAndRendererExtension } from 'marked';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const tex = (text: string, displayMode: boolean): string =>
  katex.renderToString(text, { displayMode, throwOnError: false, output: 'htmlAndMathml' });

interface MathToken extends Tokens.Generic {
  text: string;
  display: boolean;
}

/** A formula on its own: $$…$$ or \[…\] starting a block. */
const blockMath: TokenizerAndRendererExtension = {
  name: 'blockMath',
  level: 'block',
  start: (src) => {
    const i = src.search(/\$\$|\\\[/);
    return i < 0 ? undefined : i;
  },
  tokenizer(src) {
    const m = /^ {0,3}(?:\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\])[ \t]*(?:\n+|$)/.exec(src);
    if (m) return { type: 'blockMath', raw: m[0], text: (m[1] ?? m[2]).trim(), display: true } as MathToken;
  },
  renderer: (t) => `<div class="math-block">${tex((t as MathToken).text, true)}</div>\n`,
};

/** A formula in running text. `$` needs a non-space inside each end and no digit after, so prices stay prices. */
const inlineMath: TokenizerAndRendererExtension = {
  name: 'inlineMath',
  level: 'inline',
  start: (src) => {
    const i = src.search(/\$|\\\(|\\\[/);
    return i < 0 ? undefined : i;
  },
  tokenizer(src) {
    const forms: [RegExp, boolean][] = [
      [/^\$\$([^$]+?)\$\$/, true],
      [/^\\\[([\s\S]+?)\\\]/, true],
      [/^\\\(([\s\S]+?)\\\)/, false],
      [/^\$(?![\s$])((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)/, false],
    ];
    for (const [re, display] of forms) {
      const m = re.exec(src);
      if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display } as MathToken;
    }
  },
  renderer: (t) => tex((t as MathToken).text, (t as MathToken).display),
};

const marked = new Marked({
  gfm: true,
  extensions: [blockMath, inlineMath],
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? '').trim().split(/\s+/)[0].toLowerCase();
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      return `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(language || 'text')}</span>`
        + `<button type="button" class="code-copy" data-testid="code-copy">Copy</button></div>`
        + `<pre><code class="hljs${known ? ` language-${escapeHtml(language)}` : ''}">${body}</code></pre></div>\n`;
    },
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** Markdown → sanitised HTML. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { ADD_ATTR: ['target'] });
}
