/**
 * Memory per connection, from the idle baseline, the hold and the settle after closing: RSS (mean over each
 * window, and right after a forced GC) and the live V8 heap, raw and net of the idle node, plus nats-server.
 */
import type { ResourceSummary } from '../lib/limits.js';
import type { GcMeasurement } from '../lib/sampler.js';

/** The seed target: 100k connections per node at ≤ 2 KB of broker memory each (net of the idle node). */
const SEED_BYTES_PER_CONNECTION = 2048;

export interface MemoryFigures {
  /** Broker = supervisor + workers, summed; means over the window. */
  brokerRssBaseline: number;
  brokerRssHeld: number;
  rssPerConnRaw: number;
  rssPerConnNet: number;
  brokerHeapBaseline: number | null;
  brokerHeapHeld: number | null;
  /** True when the heap figures are live heap after a forced GC (else means over the windows). */
  heapAfterGc: boolean;
  heapPerConnNet: number | null;
  brokerHeapAfterClose: number | null;
  natsRssNet: number;
  natsPerConnNet: number;
  brokerRssAfterClose: number;
  /** RSS right after the forced GCs (less garbage; V8 returns some pages), when the probe ran them. */
  rssAfterGcBaseline: number | null;
  rssAfterGcHeld: number | null;
  rssAfterGcPerConnNet: number | null;
  /** The seed target: ≤ 2 KB of broker memory per connection, net. */
  seedBytesPerConnection: number;
  seedMet: boolean;
}

export interface GcPoints {
  baseline?: GcMeasurement;
  held?: GcMeasurement;
  afterClose?: GcMeasurement;
}

export function memoryFigures(
  baseline: ResourceSummary,
  hold: ResourceSummary,
  after: ResourceSummary,
  held: number,
  gc: GcPoints,
): MemoryFigures {
  const b = baseline.groups.broker;
  const h = hold.groups.broker;
  const n = Math.max(1, held);
  // Live heap after a forced GC when the probe could do it (garbage would otherwise swamp ~1 KB per
  // connection), else the mean heap over the window.
  const heapBase = gc.baseline?.heapUsedBytes ?? b.meanHeapUsedBytes ?? null;
  const heapHeld = gc.held?.heapUsedBytes ?? h.meanHeapUsedBytes ?? null;
  const natsNet = hold.groups.nats.meanRssBytes - baseline.groups.nats.meanRssBytes;
  const rssPerConnNet = (h.meanRssBytes - b.meanRssBytes) / n;
  return {
    brokerRssBaseline: b.meanRssBytes,
    brokerRssHeld: h.meanRssBytes,
    rssPerConnRaw: h.meanRssBytes / n,
    rssPerConnNet,
    brokerHeapBaseline: heapBase,
    brokerHeapHeld: heapHeld,
    heapAfterGc: gc.baseline !== undefined && gc.held !== undefined,
    heapPerConnNet: heapBase === null || heapHeld === null ? null : (heapHeld - heapBase) / n,
    natsRssNet: natsNet,
    natsPerConnNet: natsNet / n,
    brokerRssAfterClose: after.groups.broker.meanRssBytes,
    rssAfterGcBaseline: gc.baseline?.rssBytes ?? null,
    rssAfterGcHeld: gc.held?.rssBytes ?? null,
    rssAfterGcPerConnNet:
      gc.baseline === undefined || gc.held === undefined
        ? null
        : (gc.held.rssBytes - gc.baseline.rssBytes) / n,
    brokerHeapAfterClose: gc.afterClose?.heapUsedBytes ?? after.groups.broker.meanHeapUsedBytes ?? null,
    seedBytesPerConnection: SEED_BYTES_PER_CONNECTION,
    seedMet: held > 0 && rssPerConnNet <= SEED_BYTES_PER_CONNECTION,
  };
}
