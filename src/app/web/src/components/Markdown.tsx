// Model output as rendered markdown; the code blocks' copy buttons work by delegation, since the
// HTML is a string from the renderer.
import type { JSX } from 'preact';
import { useMemo } from 'preact/hooks';
import { copyText } from '../clipboard.js';
import { renderMarkdown } from '../markdown.js';

export function Markdown({ text, testid }: { text: string; testid: string }): JSX.Element {
  const html = useMemo(() => renderMarkdown(text), [text]);
  const onClick = (e: MouseEvent): void => {
    const button = (e.target as Element).closest<HTMLButtonElement>('.code-copy');
    const code = button?.closest('.code-block')?.querySelector('code');
    if (!button || !code) return;
    void copyText(code.textContent ?? '').then((ok) => {
      button.textContent = ok ? 'Copied' : 'Copy failed';
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
  };
  return <div class="markdown" data-testid={testid} onClick={onClick} dangerouslySetInnerHTML={{ __html: html }} />;
}
