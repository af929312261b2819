/**
 * Which seconds of a measured window broke the latency objective, and what happened on the machine in
 * them. A step's p99 is decided by its worst seconds; on a shared 2-core machine these are stalls, and
 * the report should say whose: the machine's (an idle probe process could not get a CPU), the broker's
 * major GC (its heap fell), or a Cassandra burst (a flush or compaction taking far more than its share).
 * Issue #13: "none seen; a miss here is tail latency from stalls" did not say which.
 */
import { MACHINE_STALL_NOTE_MS } from '../lib/limits.js';
import type { SecondPoint } from './aggregate.js';

/** A heap that fell by at least this share between two samples was collected by a major GC. */
export const HEAP_FALL_SHARE = 0.25;
/**
 * Cassandra above this many cores, and at least CASSANDRA_BURST_EXTRA_CORES above its median second over the
 * window, is a burst. A memtable flush adds ~0.3 cores for a second: at 4 400 msg/s (Cassandra ~0.46) a flush
 * second at 0.78 cores had p99 101 ms, and the older rule (twice the mean) called it "no stall seen"
 * (BENCHMARKS.md, twenty-fifth session). The other seconds of a loaded Cassandra stay within ~0.1 core of
 * its median; the median, unlike the mean, does not move with the bursts themselves.
 */
export const CASSANDRA_BURST_CORES = 0.6;
export const CASSANDRA_BURST_EXTRA_CORES = 0.25;
/**
 * A second's latency shows the stalls of the samples that cover it and the next one: a message scheduled
 * in second k may be delivered in k + 1. Resource sample t covers (t - 1, t].
 */
const AFTER_S = 2;

export interface SecondResources {
  t: number;
  brokerHeapUsedBytes?: number;
  cassandraCpuCores: number;
  machineStallMs?: number;
}

export interface BadSecond {
  t: number;
  p99Ms: number;
  causes: string[];
}

const MiB = 1024 * 1024;

/** The measured seconds whose p99 of `metric` was over `p99Ms`, each with the stalls seen around it. */
export function badSeconds(
  series: readonly SecondPoint[],
  resources: readonly SecondResources[],
  metric: 'delivery' | 'ack',
  p99Ms: number,
): BadSecond[] {
  const measuredRes = resources.filter((r) => series.some((s) => s.measured && r.t > s.t && r.t <= s.t + 1));
  const cassSorted = measuredRes.map((r) => r.cassandraCpuCores).sort((a, b) => a - b);
  const cassMedian = cassSorted.length === 0 ? 0 : cassSorted[Math.floor(cassSorted.length / 2)]!;
  const burst = Math.max(CASSANDRA_BURST_CORES, cassMedian + CASSANDRA_BURST_EXTRA_CORES);
  const out: BadSecond[] = [];
  for (const s of series) {
    if (!s.measured || s.counts.delivered + s.counts.acked === 0) continue;
    const p99 = s[metric].p99Ms;
    if (!(p99 > p99Ms)) continue;
    const causes: string[] = [];
    let stall = 0;
    let fall: [number, number] | undefined;
    let cass = 0;
    for (let i = 0; i < resources.length; i++) {
      const r = resources[i]!;
      if (r.t <= s.t || r.t > s.t + AFTER_S) continue;
      stall = Math.max(stall, r.machineStallMs ?? 0);
      cass = Math.max(cass, r.cassandraCpuCores);
      const prev = resources[i - 1]?.brokerHeapUsedBytes;
      const now = r.brokerHeapUsedBytes;
      if (prev !== undefined && now !== undefined && now < prev * (1 - HEAP_FALL_SHARE)) fall = [prev, now];
    }
    if (stall >= MACHINE_STALL_NOTE_MS) causes.push(`machine stall ${stall.toFixed(0)} ms`);
    if (fall)
      causes.push(`broker major GC (heap ${Math.round(fall[0] / MiB)} → ${Math.round(fall[1] / MiB)} MiB)`);
    if (cass >= burst) causes.push(`Cassandra at ${cass.toFixed(2)} cores`);
    out.push({ t: s.t, p99Ms: p99, causes });
  }
  return out;
}

/** One report line: how many seconds missed, and the stalls seen in each; undefined when none missed. */
export function badSecondsNote(bad: readonly BadSecond[], measuredSeconds: number): string | undefined {
  if (bad.length === 0) return undefined;
  const each = bad.map(
    (b) =>
      `t=${b.t} s p99 ${b.p99Ms.toFixed(0)} ms: ${b.causes.length === 0 ? 'no stall seen' : b.causes.join(', ')}`,
  );
  const explained = bad.filter((b) => b.causes.length > 0).length;
  return (
    `Seconds over the objective: ${bad.length} of ${measuredSeconds}, ${explained} with a stall seen ` +
    `(machine stall ≥ ${MACHINE_STALL_NOTE_MS} ms, broker heap falling ≥ ${Math.round(HEAP_FALL_SHARE * 100)} %, ` +
    `Cassandra ≥ ${CASSANDRA_BURST_CORES} cores and ${CASSANDRA_BURST_EXTRA_CORES} over its median): ${each.join('; ')}.`
  );
}
