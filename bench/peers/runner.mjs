// The child-process side of `npm run bench -- models` (bench/models.ts): one process per peer
// engine and model, driven over stdin/stdout so the bench can alternate engines repetition by
// repetition on the same file. Protocol, one JSON object per line; replies carry the "@@bench "
// prefix because native and Emscripten code may print to stdout too:
//   in  {"model": PATH, "threads": N, "prompt": [token ids], "gen": N}   load, then warm up
//   out @@bench {"ready": true, "engine": "...", "load_ms": N, ...}
//   in  {"rep": I}       one repetition: prefill the prompt on an empty context, then N decode steps
//   out @@bench {"prefill_tps": X, "decode_tps": Y, "other_cores": Z, "seconds": S}
// Closing stdin ends the runner; a failure answers {"error": "..."} and exits with 1.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const reply = (o) => process.stdout.write('@@bench ' + JSON.stringify(o) + '\n');

/** CPU seconds the whole machine was busy (/proc/stat counts in 1/100 s), minus this process's own. */
function othersBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // user nice system irq softirq steal
  const own = process.cpuUsage(); // every thread of this process, workers included
  return busy - (own.user + own.system) / 1e6;
}

/**
 * Serves the protocol for `engine`:
 *   load(cfg)  → facts to report (engine name, …); loads the model and warms it up
 *   rep(cfg)   → {prefill_tps, decode_tps} of one repetition
 *   close()
 */
export async function serve(engine) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let cfg;
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      if (cfg === undefined) {
        cfg = msg;
        const t0 = performance.now();
        const facts = await engine.load(cfg);
        reply({ ready: true, ...facts, load_ms: Math.round(performance.now() - t0) });
        continue;
      }
      const o0 = othersBusySeconds();
      const t0 = performance.now();
      const r = await engine.rep(cfg, msg.rep);
      const seconds = (performance.now() - t0) / 1000;
      const other = Math.max(0, (othersBusySeconds() - o0) / seconds);
      reply({ ...r, other_cores: +other.toFixed(2), seconds: +seconds.toFixed(2) });
    }
    await engine.close();
  } catch (err) {
    reply({ error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  process.exit(0);
}
