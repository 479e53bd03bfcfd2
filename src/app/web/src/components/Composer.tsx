// The message box: Enter sends, Shift+Enter is a newline; DeepThink with its effort; attached
// text files with their token counts; send becomes stop while an answer streams.
import type { JSX } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { countTokens, readTextFile, type PendingAttachment } from '../attachments.js';
import { bytes } from '../format.js';
import { store, type State } from '../state.js';
import type { Think } from '../types.js';
import { IconAtom, IconClip, IconSend, IconStop } from './icons.js';

const EFFORT_KEY = 'minke.effort';
let nextKey = 0;

export function Composer({ state }: { state: State }): JSX.Element {
  const [text, setText] = useState('');
  const [files, setFiles] = useState<PendingAttachment[]>([]);
  const [attachError, setAttachError] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const busy = store.isStreaming();
  const { model, settings } = store.params();
  const think = settings.think;
  const counting = files.some((f) => f.tokens === null);
  const canSend = !busy && !counting && !!model && (text.trim() !== '' || files.length > 0);

  useLayoutEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
  }, [text]);

  const send = (): void => {
    if (!canSend) return;
    const attachments = files.map(({ name, size, tokens, content }) => ({ name, size, tokens: tokens ?? 0, content }));
    setText('');
    setFiles([]);
    setAttachError('');
    void store.send(text, attachments);
  };

  const attach = async (list: FileList | null): Promise<void> => {
    setAttachError('');
    for (const file of Array.from(list ?? [])) {
      const key = `f${nextKey++}`;
      try {
        const content = await readTextFile(file);
        setFiles((fs) => [...fs, { key, name: file.name, size: file.size, content, tokens: null }]);
        const { tokens, estimated } = await countTokens(model, content);
        setFiles((fs) => fs.map((f) => (f.key === key ? { ...f, tokens, estimated } : f)));
      } catch (e) {
        setFiles((fs) => fs.filter((f) => f.key !== key));
        setAttachError(e instanceof Error ? e.message : String(e));
      }
    }
    if (picker.current) picker.current.value = '';
  };

  const setThink = (t: Think): void => {
    if (t !== 'none') localStorage.setItem(EFFORT_KEY, t);
    void store.setParams({ think: t });
  };
  const lastEffort = (): Think => (localStorage.getItem(EFFORT_KEY) === 'max' ? 'max' : 'high');

  return (
    <div class="composer-wrap">
      <div class="composer" data-testid="composer"
        onDragOver={(e) => e.preventDefault()}
        onDrop={(e) => { e.preventDefault(); void attach(e.dataTransfer?.files ?? null); }}>
        {files.length > 0 && (
          <div class="attachments">
            {files.map((f) => (
              <span key={f.key} class="attachment-chip" data-testid="attachment" title={bytes(f.size)}>
                {f.name} · <span data-testid="attachment-tokens">
                  {f.tokens === null ? 'counting…' : `${f.estimated ? '~' : ''}${f.tokens} tokens`}
                </span>
                <button class="chip-remove" data-testid="attachment-remove" aria-label={`Remove ${f.name}`}
                  onClick={() => setFiles((fs) => fs.filter((x) => x.key !== f.key))}>×</button>
              </span>
            ))}
          </div>
        )}
        {attachError && <div class="error-text" data-testid="attach-error">{attachError}</div>}
        <textarea ref={area} data-testid="composer-input" rows={1} placeholder="Message minke"
          value={text} onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
          }} />
        <div class="composer-row">
          <button class={`pill${think !== 'none' ? ' on' : ''}`} data-testid="think-toggle" aria-pressed={think !== 'none'}
            onClick={() => setThink(think === 'none' ? lastEffort() : 'none')}>
            <IconAtom /> DeepThink
          </button>
          {think !== 'none' && (
            <span class="effort" data-testid="think-effort" role="group" aria-label="Thinking effort">
              <button data-testid="effort-high" aria-pressed={think === 'high'} class={think === 'high' ? 'on' : ''} onClick={() => setThink('high')}>High</button>
              <button data-testid="effort-max" aria-pressed={think === 'max'} class={think === 'max' ? 'on' : ''} onClick={() => setThink('max')}>Max</button>
            </span>
          )}
          <span class="spacer" />
          <input ref={picker} type="file" multiple hidden data-testid="attach-input"
            accept="text/*,.md,.txt,.json,.csv,.tsv,.xml,.yaml,.yml,.toml,.ini,.log,.ts,.tsx,.js,.jsx,.mjs,.py,.rs,.go,.c,.h,.cpp,.hpp,.java,.kt,.rb,.php,.sh,.sql,.html,.css"
            onChange={(e) => void attach(e.currentTarget.files)} />
          <button class="icon-button" data-testid="attach-button" aria-label="Attach text files" title="Attach text files"
            onClick={() => picker.current?.click()}><IconClip /></button>
          {busy ? (
            <button class="send stop" data-testid="stop" aria-label="Stop" onClick={() => void store.stop()}><IconStop /></button>
          ) : (
            <button class="send" data-testid="send" aria-label="Send" disabled={!canSend} onClick={send}><IconSend /></button>
          )}
        </div>
      </div>
      <div class="composer-hint">{state.models.length ? 'Enter to send, Shift+Enter for a new line' : ''}</div>
    </div>
  );
}
