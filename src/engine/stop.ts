/**
 * Stop strings over streamed text: text is released only once it can no longer be the start of a
 * stop string, so nothing that belongs to a stop string is ever emitted.
 */
export class StopMatcher {
  private held = '';

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) if (s === '') throw new Error('a stop string must not be empty');
  }

  /**
   * Adds `text`; returns what may be emitted now and whether a stop string was completed (then
   * `text` is everything before it, `matched` the stop string, and the rest is dropped).
   */
  push(text: string): { text: string; stopped: boolean; matched?: string } {
    const all = this.held + text;
    let first = -1, matched = '';
    for (const s of this.stops) {
      const i = all.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) { first = i; matched = s; }
    }
    if (first >= 0) {
      this.held = '';
      return { text: all.slice(0, first), stopped: true, matched };
    }
    const keep = this.partialTail(all);
    this.held = all.slice(all.length - keep);
    return { text: all.slice(0, all.length - keep), stopped: false };
  }

  /** The held-back tail, released when generation ends without completing a stop string. */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialTail(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) { best = n; break; }
      }
    }
    return best;
  }
}
