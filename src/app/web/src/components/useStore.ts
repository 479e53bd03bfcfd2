// Re-renders a component when the store announces a change.
import { useEffect, useReducer } from 'preact/hooks';
import { store, type State } from '../state.js';

export function useStore(): State {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(0)), []);
  return store.state;
}
