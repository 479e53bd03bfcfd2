// Chat settings: model, system prompt, temperature, answer length, theme. Changes apply to the
// chat on screen and become the defaults for new chats.
import type { JSX } from 'preact';
import { store, type State } from '../state.js';

export function SettingsPanel({ state, onClose }: { state: State; onClose: () => void }): JSX.Element {
  const p = store.params();
  return (
    <div class="modal-backdrop" onClick={(e) => { if (e.target === e.currentTarget) onClose(); }}
      onKeyDown={(e) => { if (e.key === 'Escape') onClose(); }}>
      <div class="modal settings" data-testid="settings-panel" role="dialog" aria-label="Settings">
        <h2>Settings</h2>
        <label>Model
          <select data-testid="settings-model" value={p.model} onChange={(e) => void store.setParams({ model: e.currentTarget.value })}>
            {state.models.map((m) => <option key={m.id} value={m.id}>{m.id}{m.owned_by === 'upstream' ? ' (upstream)' : ''}</option>)}
          </select>
        </label>
        <label>System prompt
          <textarea data-testid="system-input" rows={4} placeholder="None" value={p.system}
            onChange={(e) => void store.setParams({ system: e.currentTarget.value })} />
        </label>
        <label>Temperature <output data-testid="temperature-value">{p.settings.temperature.toFixed(1)}</output>
          <input type="range" data-testid="temperature-input" min={0} max={2} step={0.1} value={p.settings.temperature}
            onChange={(e) => void store.setParams({ temperature: Number(e.currentTarget.value) })} />
        </label>
        <label>Max answer tokens
          <input type="number" data-testid="max-tokens-input" min={1} step={1} placeholder="server default"
            value={p.maxTokens ?? ''}
            onChange={(e) => {
              const n = Math.floor(Number(e.currentTarget.value));
              void store.setParams({ max_tokens: e.currentTarget.value && n > 0 ? n : null });
            }} />
        </label>
        <label>Theme
          <select data-testid="theme-select" value={state.settings.theme ?? 'system'}
            onChange={(e) => void store.setTheme(e.currentTarget.value as 'system' | 'light' | 'dark')}>
            <option value="system">System</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
        <div class="modal-buttons">
          <button class="primary" data-testid="settings-close" onClick={onClose}>Done</button>
        </div>
      </div>
    </div>
  );
}
