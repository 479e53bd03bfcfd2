// Chat settings: where the model runs (the server, or this browser: its backend and a model
// picked from disk), model, system prompt, temperature, answer length, theme. Changes apply to
// the chat on screen and become the defaults for new chats.
import type { JSX } from 'preact';
import { store, type State } from '../state.js';

export function SettingsPanel({ state, onClose }: { state: State; onClose: () => void }): JSX.Element {
  const p = store.params();
  return (
    <div class="modal-backdrop" onClick={(e) => { if (e.target === e.currentTarget) onClose(); }}
      onKeyDown={(e) => { if (e.key === 'Escape') onClose(); }}>
      <div class="modal settings" data-testid="settings-panel" role="dialog" aria-label="Settings">
        <h2>Settings</h2>
        <BrowserSettings state={state} />
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

/** The mode switch; in browser mode the backend and the model files to open. */
function BrowserSettings({ state }: { state: State }): JSX.Element {
  const b = state.browser;
  const folder = { webkitdirectory: true } as Record<string, unknown>; // not in the JSX types; a DOM property
  const pick = (e: Event): void => {
    const input = e.currentTarget as HTMLInputElement;
    const files = Array.from(input.files ?? []);
    input.value = '';
    void store.pickModel(files);
  };
  return (
    <>
      <label class="check">
        <input type="checkbox" data-testid="browser-mode-toggle" checked={!!b} disabled={b?.noServer}
          onChange={(e) => store.setBrowserMode(e.currentTarget.checked)} />
        Run in this browser
      </label>
      {b?.noServer && <p class="hint" data-testid="no-server-hint">No minke server answers here, so the model runs in this browser and chats are kept in it.</p>}
      {b && (
        <>
          <label>Backend
            <select data-testid="backend-select" value={b.backend}
              onChange={(e) => store.setBackend(e.currentTarget.value as 'webgpu' | 'cpu')}>
              <option value="webgpu">WebGPU (CPU if there is no GPU)</option>
              <option value="cpu">CPU (WASM)</option>
            </select>
          </label>
          <label>Open a model folder (config.json, .safetensors, tokenizer files)
            <input type="file" data-testid="model-folder-input" {...folder} onChange={pick} />
          </label>
          <label>Open a .gguf model
            <input type="file" data-testid="model-gguf-input" accept=".gguf" onChange={pick} />
          </label>
        </>
      )}
    </>
  );
}
