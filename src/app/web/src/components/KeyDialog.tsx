// Asked once when the server wants an API key; the key stays in this browser (localStorage).
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { apiKey } from '../api.js';
import { store } from '../state.js';

export function KeyDialog(): JSX.Element {
  const [key, setKey] = useState('');
  const save = (e: Event): void => {
    e.preventDefault();
    if (key.trim()) store.submitKey(key);
  };
  return (
    <div class="modal-backdrop">
      <form class="modal" data-testid="key-dialog" onSubmit={save}>
        <h2>API key</h2>
        <p>This server requires an API key. It is kept in this browser only.</p>
        {apiKey.get() && <p class="error-text" data-testid="api-key-refused">The saved key was refused.</p>}
        <input type="password" data-testid="api-key-input" autoFocus placeholder="sk-…" value={key}
          onInput={(e) => setKey(e.currentTarget.value)} />
        <div class="modal-buttons">
          <button type="submit" class="primary" data-testid="api-key-save" disabled={!key.trim()}>Save</button>
        </div>
      </form>
    </div>
  );
}
