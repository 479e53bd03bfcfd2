// The branching message tree: messages with the same parent are siblings (an edited question, a
// regenerated answer); the path from the root to the current leaf is the conversation on screen.
import type { Message } from './types.js';

export type MessageMap = ReadonlyMap<string, Message>;

const byCreation = (a: Message, b: Message): number => a.created_at - b.created_at || (a.id < b.id ? -1 : 1);

export function childrenOf(messages: MessageMap, parentId: string | null): Message[] {
  const out: Message[] = [];
  for (const m of messages.values()) if (m.parent_id === parentId) out.push(m);
  return out.sort(byCreation);
}

/** The message and its siblings, oldest first. */
export const siblingsOf = (messages: MessageMap, m: Message): Message[] => childrenOf(messages, m.parent_id);

/** Root → leaf; empty when the leaf is unknown. */
export function pathTo(messages: MessageMap, leafId: string | null): Message[] {
  const path: Message[] = [];
  const seen = new Set<string>();
  for (let m = leafId ? messages.get(leafId) : undefined; m && !seen.has(m.id); m = m.parent_id ? messages.get(m.parent_id) : undefined) {
    seen.add(m.id);
    path.push(m);
  }
  return path.reverse();
}

/** The leaf reached from `id` by always following the newest child: where a switched-to branch ends. */
export function newestLeaf(messages: MessageMap, id: string): string {
  let leaf = id;
  for (let kids = childrenOf(messages, leaf); kids.length; kids = childrenOf(messages, leaf)) leaf = kids[kids.length - 1].id;
  return leaf;
}
