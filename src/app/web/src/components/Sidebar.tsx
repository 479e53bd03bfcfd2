// The conversation list: new chat, search, rename, delete; the theme switch at the bottom.
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { groupByDay } from '../format.js';
import { store, type State } from '../state.js';
import type { ConversationSummary } from '../types.js';
import { IconAuto, IconEdit, IconMoon, IconPlus, IconSun, IconTrash } from './icons.js';

export function Sidebar({ state }: { state: State }): JSX.Element {
  return (
    <aside class="sidebar" data-testid="sidebar">
      <div class="brand">minke</div>
      <button class="new-chat" data-testid="new-chat" onClick={() => store.newChat()}><IconPlus /> New chat</button>
      <input class="search" data-testid="search-input" type="search" placeholder="Search chats" value={state.query}
        onInput={(e) => store.search(e.currentTarget.value)} />
      <nav class="conversation-list" data-testid="conversation-list">
        {state.list.length === 0 && <div class="list-empty">{state.query ? 'Nothing found' : 'No chats yet'}</div>}
        {groupByDay(state.list).map((g) => (
          <section key={g.label}>
            <h2 class="group-label">{g.label}</h2>
            {g.items.map((c) => <Item key={c.id} c={c} active={c.id === state.currentId} />)}
          </section>
        ))}
      </nav>
      <ThemeSwitch theme={state.settings.theme ?? 'system'} />
    </aside>
  );
}

function Item({ c, active }: { c: ConversationSummary; active: boolean }): JSX.Element {
  const [renaming, setRenaming] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => { if (renaming) input.current?.select(); }, [renaming]);
  useEffect(() => {
    if (!confirming) return;
    const t = setTimeout(() => setConfirming(false), 4000);
    return () => clearTimeout(t);
  }, [confirming]);

  const finish = (save: boolean): void => {
    if (save && input.current) void store.rename(c.id, input.current.value);
    setRenaming(false);
  };

  return (
    <div class={`conversation${active ? ' active' : ''}`} data-testid="conversation-item" data-id={c.id}>
      {renaming ? (
        <input ref={input} class="rename-input" data-testid="rename-input" defaultValue={c.title}
          onKeyDown={(e) => { if (e.key === 'Enter') finish(true); if (e.key === 'Escape') finish(false); }}
          onBlur={() => finish(true)} />
      ) : (
        <button class="conversation-open" data-testid="conversation-title" title={c.title} onClick={() => void store.open(c.id)}>
          {c.title || 'New chat'}
        </button>
      )}
      {!renaming && (
        <span class="conversation-actions">
          {confirming ? (
            <button class="danger small" data-testid="delete-confirm" onClick={() => void store.remove(c.id)}>Delete?</button>
          ) : (
            <>
              <button class="icon-button small" data-testid="rename-button" aria-label="Rename" onClick={() => setRenaming(true)}><IconEdit /></button>
              <button class="icon-button small" data-testid="delete-button" aria-label="Delete" onClick={() => setConfirming(true)}><IconTrash /></button>
            </>
          )}
        </span>
      )}
    </div>
  );
}

const NEXT = { system: 'light', light: 'dark', dark: 'system' } as const;

function ThemeSwitch({ theme }: { theme: 'system' | 'light' | 'dark' }): JSX.Element {
  return (
    <button class="theme-toggle" data-testid="theme-toggle" data-theme={theme} onClick={() => void store.setTheme(NEXT[theme])}
      title="Switch between system, light and dark">
      {theme === 'light' ? <IconSun /> : theme === 'dark' ? <IconMoon /> : <IconAuto />}
      <span>{theme === 'system' ? 'System theme' : theme === 'light' ? 'Light' : 'Dark'}</span>
    </button>
  );
}
