// The page: conversation sidebar, the chat on screen, the composer; dialogs on top.
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { store } from '../state.js';
import { ChatView } from './ChatView.js';
import { Composer } from './Composer.js';
import { Header } from './Header.js';
import { KeyDialog } from './KeyDialog.js';
import { SettingsPanel } from './SettingsPanel.js';
import { Sidebar } from './Sidebar.js';
import { useStore } from './useStore.js';

export function App(): JSX.Element {
  const state = useStore();
  const [settingsOpen, setSettingsOpen] = useState(false);
  return (
    <div class={`app${state.sidebarOpen ? ' sidebar-open' : ''}`} data-testid="app" data-ready={state.ready ? 'true' : 'false'}>
      <Sidebar state={state} />
      <div class="sidebar-backdrop" data-testid="sidebar-backdrop" onClick={() => store.toggleSidebar(false)} />
      <main class="main">
        <Header state={state} onSettings={() => setSettingsOpen(true)} />
        <ChatView state={state} />
        <Composer state={state} />
      </main>
      {settingsOpen && <SettingsPanel state={state} onClose={() => setSettingsOpen(false)} />}
      {state.needKey && <KeyDialog />}
    </div>
  );
}
