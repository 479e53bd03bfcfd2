// The conversation on screen (the branch ending at its current leaf), kept scrolled to the newest
// text while the reader is at the bottom.
import type { JSX } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { store, type State } from '../state.js';
import { pathTo } from '../tree.js';
import { MessageView } from './MessageView.js';

export function ChatView({ state }: { state: State }): JSX.Element {
  const chat = store.current;
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const path = chat ? pathTo(chat.messages, chat.conversation.current_leaf_id) : [];
  const banner = state.banner && (state.banner.conversationId === null || state.banner.conversationId === state.currentId) ? state.banner : null;

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  });
  useLayoutEffect(() => { atBottom.current = true; }, [state.currentId]);

  const onScroll = (): void => {
    const el = scroller.current;
    if (el) atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };

  return (
    <div class="chat-scroll" ref={scroller} onScroll={onScroll} data-testid="chat">
      <div class="chat-column">
        {!state.currentId && (
          <div class="empty-state" data-testid="empty-state">
            <div class="empty-logo" aria-hidden="true">m</div>
            <h2>Hi, I'm minke.</h2>
            <p>{state.models.length ? `How can I help you today? (${store.params().model})`
              : state.needKey ? 'This server needs an API key.' : state.ready ? 'The server has no models loaded.' : 'Connecting…'}</p>
          </div>
        )}
        {chat && path.map((m) => <MessageView key={m.id} m={m} chat={chat} state={state} />)}
        {banner && (
          <div class="chat-error" data-testid="chat-error" role="alert">
            <span>{banner.text}</span>
            <button class="icon-button small" aria-label="Dismiss" onClick={() => store.dismissBanner()}>×</button>
          </div>
        )}
      </div>
    </div>
  );
}
