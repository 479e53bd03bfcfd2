// The bar above the chat: sidebar button (phone width), title, model picker, settings.
import type { JSX } from 'preact';
import { store, type State } from '../state.js';
import { IconGear, IconMenu, IconPlus } from './icons.js';

export function Header({ state, onSettings }: { state: State; onSettings: () => void }): JSX.Element {
  const chat = store.current;
  const { model } = store.params();
  const ids = state.models.map((m) => m.id);
  if (model && !ids.includes(model)) ids.unshift(model); // a conversation's model that is gone
  return (
    <header class="header">
      <button class="icon-button only-narrow" data-testid="sidebar-toggle" aria-label="Conversations" onClick={() => store.toggleSidebar()}>
        <IconMenu />
      </button>
      <h1 class="chat-title" data-testid="chat-title">{chat?.conversation.title || 'New chat'}</h1>
      <select class="model-select" data-testid="model-select" aria-label="Model" value={model}
        onChange={(e) => void store.setParams({ model: e.currentTarget.value })}>
        {ids.length === 0 && <option value="">no models</option>}
        {ids.map((id) => (
          <option key={id} value={id}>{id}{state.models.find((m) => m.id === id)?.owned_by === 'upstream' ? ' (upstream)' : ''}</option>
        ))}
      </select>
      <button class="icon-button" data-testid="settings-button" aria-label="Settings" onClick={onSettings}><IconGear /></button>
      <button class="icon-button only-narrow" data-testid="new-chat-narrow" aria-label="New chat" onClick={() => store.newChat()}><IconPlus /></button>
    </header>
  );
}
