// Entry point: mount the app, load what the server (or, in browser mode, this browser) has, follow
// the address bar.
import { render } from 'preact';
import 'katex/dist/katex.min.css';
import './styles.css';
import { App } from './components/App.js';
import { store } from './state.js';

render(<App />, document.getElementById('app')!);
window.addEventListener('hashchange', () => void store.route());
void store.init();
