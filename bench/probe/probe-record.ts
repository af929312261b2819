/** What the broker-side memory probe (memory-reporter.ts) writes, shared with the bench's reader. */

/** Asks a probed process for a full garbage collection and a fresh record. */
export const PROBE_GC_SIGNAL = 'SIGUSR2';

export interface ProbeRecord {
  pid: number;
  /** Epoch ms of the reading. */
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Event-loop utilisation over the last interval, 0..1. */
  elu: number;
  /** The last forced collection (PROBE_GC_SIGNAL): when, and the heap and RSS right after it. */
  gc?: { at: number; heapUsed: number; rss: number; external: number };
}
