// One message on screen: a question (plain text, attachments, edit) or an answer (reasoning,
// markdown, status, usage, regenerate); both can copy and switch between sibling branches.
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { copyText } from '../clipboard.js';
import { bytes, usageLine } from '../format.js';
import { store, type Chat, type State } from '../state.js';
import { siblingsOf } from '../tree.js';
import type { Message } from '../types.js';
import { IconCopy, IconEdit, IconRetry } from './icons.js';
import { Markdown } from './Markdown.js';
import { Reasoning } from './Reasoning.js';

export function MessageView({ m, chat, state }: { m: Message; chat: Chat; state: State }): JSX.Element {
  const busy = state.streaming.has(m.conversation_id);
  const [editing, setEditing] = useState(false);
  return (
    <div class={`message ${m.role}`} data-testid="message" data-role={m.role} data-status={m.status} data-id={m.id}>
      {m.role === 'user' ? <Question m={m} busy={busy} editing={editing} setEditing={setEditing} /> : <Answer m={m} state={state} />}
      <div class="message-actions">
        <CopyButton text={m.content} />
        {m.role === 'user' ? (
          <button class="icon-button small" data-testid="edit-message" aria-label="Edit" disabled={busy || editing}
            onClick={() => setEditing(true)}><IconEdit /></button>
        ) : (
          <button class="icon-button small" data-testid="regenerate" aria-label="Regenerate" disabled={busy}
            onClick={() => void store.regenerate(m)}><IconRetry /></button>
        )}
        <BranchNav m={m} chat={chat} busy={busy} />
        {m.role === 'assistant' && m.usage && <span class="message-stats" data-testid="message-stats">{usageLine(m.usage)}</span>}
      </div>
    </div>
  );
}

function Question({ m, busy, editing, setEditing }: { m: Message; busy: boolean; editing: boolean; setEditing: (on: boolean) => void }): JSX.Element {
  const [draft, setDraft] = useState(m.content);
  useEffect(() => { if (editing) setDraft(m.content); }, [editing]);
  const submit = (): void => {
    if (!draft.trim() || busy) return;
    setEditing(false);
    void store.editResend(m, draft);
  };
  return (
    <div class="bubble">
      {m.attachments.length > 0 && (
        <div class="attachments">
          {m.attachments.map((a) => (
            <span key={a.name} class="attachment-chip" data-testid="message-attachment" title={bytes(a.size)}>
              {a.name} · {a.tokens} tokens
            </span>
          ))}
        </div>
      )}
      {editing ? (
        <div class="edit-box">
          <textarea data-testid="edit-input" value={draft} rows={Math.min(10, draft.split('\n').length + 1)}
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
              if (e.key === 'Escape') setEditing(false);
            }} />
          <div class="edit-buttons">
            <button class="secondary" data-testid="edit-cancel" onClick={() => setEditing(false)}>Cancel</button>
            <button class="primary" data-testid="edit-send" disabled={busy || !draft.trim()} onClick={submit}>Send</button>
          </div>
        </div>
      ) : <div class="plain" data-testid="message-content">{m.content}</div>}
    </div>
  );
}

function Answer({ m, state }: { m: Message; state: State }): JSX.Element {
  const streaming = m.status === 'streaming';
  const thinkingNow = streaming && m.think !== 'none' && !m.content;
  return (
    <div class="answer">
      {(m.reasoning || thinkingNow) && <Reasoning m={m} clock={state.clocks.get(m.id)} />}
      {m.content && <Markdown text={m.content} testid="message-content" />}
      {streaming && !m.content && !thinkingNow && <div class="typing" data-testid="typing"><span /><span /><span /></div>}
      {streaming && m.content && <span class="cursor" />}
      {m.status === 'stopped' && <div class="note" data-testid="message-note">Stopped</div>}
      {m.status === 'interrupted' && <div class="note" data-testid="message-note">Interrupted — the answer was cut off before it was complete</div>}
      {m.status === 'error' && <div class="message-error" data-testid="message-error">{m.error || 'The answer failed'}</div>}
    </div>
  );
}

function CopyButton({ text }: { text: string }): JSX.Element {
  const [done, setDone] = useState(false);
  return (
    <button class="icon-button small" data-testid="copy-message" aria-label={done ? 'Copied' : 'Copy'} title={done ? 'Copied' : 'Copy'}
      onClick={() => void copyText(text).then((ok) => { setDone(ok); setTimeout(() => setDone(false), 1500); })}>
      {done ? <span class="copied">Copied</span> : <IconCopy />}
    </button>
  );
}

/** ‹ 2/3 › between a message and its siblings (edited questions, regenerated answers). */
function BranchNav({ m, chat, busy }: { m: Message; chat: Chat; busy: boolean }): JSX.Element | null {
  const sibs = siblingsOf(chat.messages, m);
  if (sibs.length < 2) return null;
  const i = sibs.findIndex((s) => s.id === m.id);
  return (
    <span class="branch-nav" data-testid="branch-nav">
      <button class="icon-button small" data-testid="branch-prev" aria-label="Previous version" disabled={busy || i === 0}
        onClick={() => void store.switchBranch(m, -1)}>‹</button>
      <span data-testid="branch-label">{i + 1}/{sibs.length}</span>
      <button class="icon-button small" data-testid="branch-next" aria-label="Next version" disabled={busy || i === sibs.length - 1}
        onClick={() => void store.switchBranch(m, 1)}>›</button>
    </span>
  );
}
