// Small display helpers.
import type { ConversationSummary, Usage } from './types.js';

export const seconds = (s: number): string => (s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`);

export const bytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;

/** "12 tokens · 35.2 tok/s · prompt 40, 32 cached" */
export function usageLine(u: Usage): string {
  const parts = [`${u.completion_tokens} tokens`];
  if (u.tokens_per_second > 0) parts.push(`${u.tokens_per_second.toFixed(1)} tok/s`);
  parts.push(`prompt ${u.prompt_tokens}, ${u.cached_tokens} cached`);
  return parts.join(' · ');
}

/** The sidebar's date groups, newest first, as the DeepSeek app shows them. */
export function groupByDay(list: readonly ConversationSummary[], now = Date.now()): { label: string; items: ConversationSummary[] }[] {
  const startOfToday = new Date(now).setHours(0, 0, 0, 0);
  const day = 86_400_000;
  const label = (t: number): string =>
    t >= startOfToday ? 'Today' : t >= startOfToday - day ? 'Yesterday' : t >= startOfToday - 7 * day ? 'Previous 7 days'
      : t >= startOfToday - 30 * day ? 'Previous 30 days' : 'Older';
  const groups: { label: string; items: ConversationSummary[] }[] = [];
  for (const c of list) {
    const l = label(c.updated_at);
    const last = groups[groups.length - 1];
    if (last?.label === l) last.items.push(c);
    else groups.push({ label: l, items: [c] });
  }
  return groups;
}
