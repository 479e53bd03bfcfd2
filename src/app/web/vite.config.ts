// Builds the browser app into <repo>/dist/app/web, which `minke serve` serves at `/`.
// Relative base: the files work wherever the server mounts them. JSX goes through Vite 8's
// built-in oxc transform with Preact's automatic runtime, so no framework plugin is needed.
//
// The in-browser engine (src/app/browser/engine-worker.ts, a module Web Worker) is the engine's
// own TypeScript: Node's built-in modules resolve to the small shims in src/app/browser/shims,
// and the CPU kernels' .wasm files (built by `npm run build:wasm`) are copied beside the worker.
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const shim = (name: string) => here(`../browser/shims/${name}.ts`);
const NODE_SHIMS: Record<string, string> = {
  fs: shim('fs'), path: shim('path'), os: shim('os'),
  worker_threads: shim('node-only'), v8: shim('node-only'), module: shim('node-only'),
};

/** Emits the kernels' .wasm files into assets/, where the worker bundle looks for them. */
function kernelWasm(): Plugin {
  return {
    name: 'minke-kernel-wasm',
    generateBundle() {
      for (const name of ['kernels.wasm', 'kernels-relaxed.wasm']) {
        const file = here(`../../../dist/src/kernels/cpu/${name}`);
        if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build:wasm\` first`);
        this.emitFile({ type: 'asset', fileName: `assets/${name}`, source: fs.readFileSync(file) });
      }
    },
  };
}

export default defineConfig({
  root: here('.'),
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  resolve: {
    alias: [
      ...Object.entries(NODE_SHIMS).map(([name, file]) => ({ find: new RegExp(`^(node:)?${name}$`), replacement: file })),
      // Dawn for Node: never loaded in a page (navigator.gpu is there), so not bundled.
      { find: /^webgpu$/, replacement: shim('node-only') },
    ],
  },
  // Engine code reads a few MINKE_* settings from process.env; a page has none.
  define: { 'process.env': '{}' },
  worker: { format: 'es' },
  plugins: [kernelWasm()],
  build: {
    outDir: here('../../../dist/app/web'),
    emptyOutDir: true,
    target: 'es2022',
    // KaTeX and highlight.js make one ~600 KB bundle; it is served locally, so that is fine.
    chunkSizeWarningLimit: 1500,
  },
});
