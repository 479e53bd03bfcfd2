/**
 * Node globals the engine uses that a worker lacks: setImmediate (the generation loop yields with
 * it between tokens). A MessageChannel turn, not setTimeout, which browsers clamp to 4 ms.
 */
const g = globalThis as { setImmediate?: (fn: () => void) => void };
if (!g.setImmediate) {
  const queue: (() => void)[] = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (fn) => { queue.push(fn); channel.port2.postMessage(0); };
}
export {};
