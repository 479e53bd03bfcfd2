// Builds the browser app into <repo>/dist/app/web, which `minke serve` serves at `/`.
// Relative base: the files work wherever the server mounts them. JSX goes through Vite 8's
// built-in oxc transform with Preact's automatic runtime, so no framework plugin is needed.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../../dist/app/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // KaTeX and highlight.js make one ~600 KB bundle; it is served locally, so that is fine.
    chunkSizeWarningLimit: 1500,
  },
});
