/**
 * Latency histograms (HDR, via hdr-histogram-js — imported here only). Values are recorded in whole
 * microseconds so sub-millisecond loopback latencies keep their resolution; summaries are in milliseconds.
 * Generators ship histograms to the orchestrator as compressed base64 strings, which merge losslessly.
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';

/** 1 µs to 10 min at 3 significant digits: ~0.1 % error at any latency a chat user could notice. */
const LOWEST_US = 1;
const HIGHEST_US = 600_000_000;
const SIGNIFICANT_DIGITS = 3;
const US_PER_MS = 1000;

export type { Histogram };

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
  });
}

/** Records a latency in (fractional) milliseconds, clamped to the histogram's range. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.min(HIGHEST_US, Math.max(LOWEST_US, Math.round(ms * US_PER_MS))));
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

/** Adds an encoded histogram into `into` (an empty string adds nothing). */
export function addEncoded(into: Histogram, encoded: string): void {
  if (encoded === '') return;
  const h = decodeFromCompressedBase64(encoded);
  into.add(h);
  h.destroy();
}

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  // A percentile is the highest value equivalent to its bucket, which can lie just above the recorded
  // maximum: clamp it, so p99.9 ≤ max holds however few samples there are.
  const at = (p: number): number =>
    count === 0 ? 0 : Math.min(h.getValueAtPercentile(p), h.maxValue) / US_PER_MS;
  return {
    count,
    meanMs: count === 0 ? 0 : h.mean / US_PER_MS,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: count === 0 ? 0 : h.maxValue / US_PER_MS,
  };
}

export function emptySummary(): LatencySummary {
  return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
}
