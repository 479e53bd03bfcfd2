// The bar above the chat: sidebar button (phone width), title, model picker, in browser mode the
// engine's state (loading, backend), settings.
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
      {state.browser && <EngineBadge state={state} />}
      <button class="icon-button" data-testid="settings-button" aria-label="Settings" onClick={onSettings}><IconGear /></button>
      <button class="icon-button only-narrow" data-testid="new-chat-narrow" aria-label="New chat" onClick={() => store.newChat()}><IconPlus /></button>
    </header>
  );
}

/** "minke-nano · WebGPU (…)", "Loading minke-nano… 40%", or why the model did not load. */
function EngineBadge({ state }: { state: State }): JSX.Element {
  const e = state.browser!.engine;
  const text = e.state === 'ready' ? e.label
    : e.state === 'loading' ? `Loading ${e.model}… ${Math.round(e.progress * 100)}%`
      : e.state === 'error' ? `${e.model} did not load: ${e.error}` : 'In this browser';
  return (
    <span class={`engine-badge ${e.state}`} data-testid="engine-status" data-state={e.state} data-backend={e.backend}
      title={[text, ...e.warnings].join('\n')}>{text}</span>
  );
}
