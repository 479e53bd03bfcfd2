// The DeepThink block above an answer: streams while the model thinks, then folds to a summary
// line with how long it thought and how many tokens it spent.
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { seconds } from '../format.js';
import type { ThinkClock } from '../state.js';
import type { Message } from '../types.js';
import { IconChevron } from './icons.js';
import { Markdown } from './Markdown.js';

export function Reasoning({ m, clock }: { m: Message; clock: ThinkClock | undefined }): JSX.Element {
  const [open, setOpen] = useState(true);
  const thinking = m.status === 'streaming' && !m.content;
  let summary: string;
  if (thinking) summary = clock ? `Thinking… ${seconds((performance.now() - clock.start) / 1000)}` : 'Thinking…';
  else {
    const secs = m.usage?.reasoning_seconds ?? (clock ? ((clock.end ?? performance.now()) - clock.start) / 1000 : undefined);
    const tokens = m.usage?.reasoning_tokens;
    summary = `Thought${secs !== undefined ? ` for ${seconds(secs)}` : ''}${tokens !== undefined ? ` · ${tokens} tokens` : ''}`;
  }
  return (
    <div class={`reasoning${thinking ? ' thinking' : ''}`} data-testid="reasoning">
      <button class="reasoning-toggle" data-testid="reasoning-toggle" aria-expanded={open} onClick={() => setOpen(!open)}>
        <span data-testid="reasoning-summary">{summary}</span>
        <IconChevron open={open} />
      </button>
      {open && <div class="reasoning-body"><Markdown text={m.reasoning} testid="reasoning-content" /></div>}
    </div>
  );
}
