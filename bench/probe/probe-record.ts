/** What the broker-side memory probe (memory-reporter.ts) writes, shared with the bench's reader. */

/** Asks a probed process for a full garbage collection and a fresh record. */
export const PROBE_GC_SIGNAL = 'SIGUSR2';

/** V8's collection kinds, as Node's `gc` performance entries name them (perf_hooks constants). */
export type GcKind = 'minor' | 'major' | 'incremental' | 'weak callbacks';

/** The kind of a `gc` entry's `detail.kind` (NODE_PERFORMANCE_GC_MINOR 1, MAJOR 4, INCREMENTAL 8, WEAKCB 16). */
export function gcKindOf(kind: number | undefined): GcKind | undefined {
  if (kind === 1) return 'minor';
  if (kind === 4) return 'major';
  if (kind === 8) return 'incremental';
  if (kind === 16) return 'weak callbacks';
  return undefined;
}

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
  /** The longest event-loop delay over the last interval, ms (a stall: GC, a long task, no CPU). */
  loopDelayMaxMs?: number;
  /** The longest V8 garbage-collection pause over the last interval, ms (0 when none). */
  gcPauseMaxMs?: number;
  /** That pause's kind, from the gc entry's `detail.kind` (absent when none). */
  gcPauseMaxKind?: GcKind;
  /** The last forced collection (PROBE_GC_SIGNAL): when, and the heap and RSS right after it. */
  gc?: { at: number; heapUsed: number; rss: number; external: number };
}

/** The file in the probe folder that switches CPU profiling on (see cpu-profiler.ts). */
export const PROFILE_CONTROL_FILE = 'profile.json';
/** Sampling interval of the broker's CPU profiles, µs. */
export const PROFILE_SAMPLING_US = 500;

/** What profile.json holds: the id of the window being profiled. */
export interface ProfileControl {
  id: string;
}

/** CPU of one profiled process over the profile's window (from process.cpuUsage and /proc). */
export interface ProfileCpu {
  pid: number;
  id: string;
  wallUs: number;
  /** All threads: the main thread, the worker pool's threads, GC and libuv helpers. */
  processCpuUs: number;
  /** The main thread alone (the event loop the profile samples). */
  mainThreadCpuUs: number;
}
