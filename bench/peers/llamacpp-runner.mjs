// Native llama.cpp (CPU) through node-llama-cpp, as a runner of `npm run bench -- models`
// (protocol in runner.mjs). llama.cpp's defaults (F16 KV cache, flash attention "auto"), except
// that the weights are read into memory instead of mmapped: on this VM the page cache under a
// mapped model was reclaimed while it ran, and decode then timed disk reads.
import { getLlama, getModuleVersion } from 'node-llama-cpp';
import { serve } from './runner.mjs';

let llama, model, context, seq;

/** `n` decode steps from `first`, each evaluating one token and sampling greedily (end-of-generation included). */
async function decode(n, first) {
  let k = 0;
  for await (const _ of seq.evaluate([first], { temperature: 0, yieldEogToken: true })) if (++k >= n) break;
}

await serve({
  async load(cfg) {
    llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: cfg.threads });
    model = await llama.loadModel({ modelPath: cfg.model, useMmap: false });
    const n = cfg.prompt.length;
    context = await model.createContext({
      contextSize: Math.max(512, n + cfg.gen + 16), batchSize: Math.max(512, n),
      threads: { ideal: cfg.threads, min: cfg.threads }, sequences: 1,
    });
    seq = context.getSequence();
    return {
      engine: `node-llama-cpp ${await getModuleVersion()} (llama.cpp ${llama.llamaCppRelease.release}, prebuilt CPU)`,
      flash_attention: context.flashAttention,
    };
  },
  async rep(cfg) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(cfg.prompt); // no logits: prefill only
    const t1 = performance.now();
    await decode(cfg.gen, cfg.prompt[cfg.prompt.length - 1]);
    const t2 = performance.now();
    return { prefill_tps: +(cfg.prompt.length / ((t1 - t0) / 1000)).toFixed(2), decode_tps: +(cfg.gen / ((t2 - t1) / 1000)).toFixed(2) };
  },
  async close() {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
  },
});
