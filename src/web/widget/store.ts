/**
 * What the widget keeps across a page reload, in localStorage: its conversation id, the highest
 * applied `seq`, and the messages not yet acknowledged (each with its `cmid`, so a reload resends
 * them with the same `cmid` and the broker stores each once). Bounded: at most MAX_UNSENT messages
 * wait; the UI refuses more until some are acknowledged.
 */

export const MAX_UNSENT = 20;

export interface Unsent {
  cmid: string;
  conv: string;
  body: string;
  ts: number;
}

export interface Saved {
  conv: string | undefined;
  unsent: Unsent[];
}

/** Reads and writes one visitor's saved state; storage errors (private mode, quota) are ignored. */
export class WidgetStore {
  constructor(private readonly key: string) {}

  load(): Saved {
    try {
      const raw = localStorage.getItem(this.key);
      if (!raw) return { conv: undefined, unsent: [] };
      const v = JSON.parse(raw) as Partial<Saved>;
      const unsent = Array.isArray(v.unsent) ? v.unsent.slice(0, MAX_UNSENT) : [];
      return { conv: typeof v.conv === 'string' ? v.conv : undefined, unsent };
    } catch {
      return { conv: undefined, unsent: [] };
    }
  }

  save(s: Saved): void {
    try {
      localStorage.setItem(this.key, JSON.stringify({ conv: s.conv, unsent: s.unsent.slice(0, MAX_UNSENT) }));
    } catch {
      // Storage full or disabled: unsent messages then survive only in memory.
    }
  }
}
