/**
 * Samples process groups once a second from /proc: for each group (broker, generators, nats, cassandra)
 * the summed RSS and CPU (in cores: 1.0 = one core fully busy), plus the broker probe's heap when present,
 * and the machine's CPU. The series become the report's RSS/CPU charts and the "what was the limit" notes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GcKind, PROBE_GC_SIGNAL, type ProbeRecord } from '../probe/probe-record.js';
import { GcLogTail, jvmGcLogOf } from './jvm-gc-log.js';
import { CLOCK_TICKS_PER_S, readMachineCpu, readProcStat } from './proc.js';
import { readCpuPressureUs, StallProbe } from './stall-probe.js';

export const SAMPLE_INTERVAL_MS = 1000;
/** A probe record older than this belongs to a process that has gone (or stalled): ignored. */
const PROBE_STALE_MS = 5000;
const GC_POLL_MS = 100;

export interface GroupSample {
  processes: number;
  rssBytes: number;
  /** CPU used since the previous sample, in cores. */
  cpuCores: number;
  /** From the in-process probe (broker only); undefined when no probe file was readable. */
  heapUsedBytes?: number;
  heapTotalBytes?: number;
  externalBytes?: number;
  /** Highest event-loop utilisation among the group's probed processes, 0..1. */
  maxElu?: number;
  /** Longest event-loop delay among the group's probed processes over the interval, ms. */
  maxLoopDelayMs?: number;
  /** Longest GC pause in the group over the interval, ms: V8's from the probe, a JVM's from its GC log. */
  maxGcPauseMs?: number;
  /** That pause's kind when a Node probe saw it. */
  maxGcPauseKind?: GcKind | undefined;
}

export interface ResourceSample {
  /** Epoch ms. */
  at: number;
  groups: Record<string, GroupSample>;
  /** Whole-machine CPU busy since the previous sample, 0..1 (all cores). */
  machineBusy: number;
  /**
   * The longest time since the previous sample that an idle probe process waited past its timer, ms
   * (stall-probe.ts): how long no process could get a CPU. Undefined without the probe.
   */
  machineStallMs?: number;
  /** Share of the interval in which some task waited for a CPU (Linux PSI `some`), 0..1; undefined without PSI. */
  cpuPressure?: number;
}

export interface SamplerOptions {
  /** Group name → the pids that belong to it now (resolved on every sample). */
  groups: Record<string, () => readonly number[]>;
  /** Folder the probe writes `<pid>.json` into, when the broker runs with it. */
  probeDir?: string;
  intervalMs?: number;
  /** Runs the machine-stall probe (stall-probe.ts) while sampling. */
  stallProbe?: boolean;
}

function readProbes(dir: string): Map<number, ProbeRecord> {
  const out = new Map<number, ProbeRecord>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ProbeRecord;
      if (Date.now() - r.at < PROBE_STALE_MS) out.set(r.pid, r);
    } catch {
      // A file replaced mid-read: the next sample gets it.
    }
  }
  return out;
}

export class ResourceSampler {
  readonly samples: ResourceSample[] = [];
  private readonly lastTicks = new Map<number, number>();
  /** Per pid: the tail of its JVM GC log, or null when it writes none (looked up once). */
  private readonly gcLogs = new Map<number, GcLogTail | null>();
  private lastMachine = readMachineCpu();
  private lastAt = Date.now();
  private lastPressureUs = readCpuPressureUs();
  private probe: StallProbe | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SamplerOptions) {}

  start(): void {
    if (this.opts.stallProbe) this.probe = new StallProbe();
    this.sample();
    this.timer = setInterval(
      () => this.samples.push(this.sample()),
      this.opts.intervalMs ?? SAMPLE_INTERVAL_MS,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.probe?.stop();
    this.probe = undefined;
  }

  /** Takes a sample now (not added to `samples`); CPU covers the time since the previous one. */
  sample(): ResourceSample {
    const at = Date.now();
    const elapsedS = Math.max(0.001, (at - this.lastAt) / 1000);
    this.lastAt = at;
    const probes = this.opts.probeDir ? readProbes(this.opts.probeDir) : new Map<number, ProbeRecord>();
    const groups: Record<string, GroupSample> = {};
    for (const [name, resolve] of Object.entries(this.opts.groups)) {
      const g: GroupSample = { processes: 0, rssBytes: 0, cpuCores: 0 };
      for (const pid of resolve()) {
        const st = readProcStat(pid);
        if (!st) continue;
        g.processes++;
        g.rssBytes += st.rssBytes;
        const before = this.lastTicks.get(pid);
        // A process first seen now contributes from the next sample on (its earlier CPU is not this interval's).
        if (before !== undefined) g.cpuCores += (st.cpuTicks - before) / CLOCK_TICKS_PER_S / elapsedS;
        this.lastTicks.set(pid, st.cpuTicks);
        const p = probes.get(pid);
        if (p) {
          g.heapUsedBytes = (g.heapUsedBytes ?? 0) + p.heapUsed;
          g.heapTotalBytes = (g.heapTotalBytes ?? 0) + p.heapTotal;
          g.externalBytes = (g.externalBytes ?? 0) + p.external;
          g.maxElu = Math.max(g.maxElu ?? 0, p.elu);
          if (p.loopDelayMaxMs !== undefined)
            g.maxLoopDelayMs = Math.max(g.maxLoopDelayMs ?? 0, p.loopDelayMaxMs);
          if (p.gcPauseMaxMs !== undefined && p.gcPauseMaxMs > (g.maxGcPauseMs ?? -1)) {
            g.maxGcPauseMs = p.gcPauseMaxMs;
            g.maxGcPauseKind = p.gcPauseMaxKind;
          }
        }
        const gcLog = this.gcLogOf(pid);
        const jvmPause = gcLog?.longestPauseSinceLast();
        if (jvmPause !== undefined && jvmPause > (g.maxGcPauseMs ?? -1)) {
          g.maxGcPauseMs = jvmPause;
          g.maxGcPauseKind = undefined;
        }
      }
      groups[name] = g;
    }
    const machine = readMachineCpu();
    const total = machine.totalTicks - this.lastMachine.totalTicks;
    const machineBusy = total > 0 ? (machine.busyTicks - this.lastMachine.busyTicks) / total : 0;
    this.lastMachine = machine;
    const out: ResourceSample = { at, groups, machineBusy };
    const stall = this.probe?.takeWorstMs();
    if (stall !== undefined) out.machineStallMs = stall;
    const pressureUs = readCpuPressureUs();
    if (pressureUs !== undefined && this.lastPressureUs !== undefined)
      out.cpuPressure = Math.min(1, Math.max(0, (pressureUs - this.lastPressureUs) / (elapsedS * 1e6)));
    this.lastPressureUs = pressureUs;
    return out;
  }

  private gcLogOf(pid: number): GcLogTail | null {
    let tail = this.gcLogs.get(pid);
    if (tail === undefined) {
      const path = jvmGcLogOf(pid);
      tail = path === undefined ? null : new GcLogTail(path);
      this.gcLogs.set(pid, tail);
    }
    return tail;
  }

  /** Samples taken within [fromMs, toMs] (epoch ms). */
  between(fromMs: number, toMs: number): ResourceSample[] {
    return this.samples.filter((s) => s.at >= fromMs && s.at <= toMs);
  }
}

export interface GroupStats {
  meanCpuCores: number;
  maxCpuCores: number;
  meanRssBytes: number;
  maxRssBytes: number;
  meanHeapUsedBytes?: number;
  maxElu?: number;
  /** Longest event-loop delay of the window, ms (probed processes only). */
  maxLoopDelayMs?: number;
  /** Longest GC pause of the window, ms (probed Node processes, JVMs with a GC log). */
  maxGcPauseMs?: number;
  /** Its kind, when a Node probe saw it (V8: minor = scavenge, major = mark-compact). */
  maxGcPauseKind?: GcKind | undefined;
}

/** Mean/max of one group over some samples (zeros when there are none). */
export function groupStats(samples: readonly ResourceSample[], group: string): GroupStats {
  const gs = samples.map((s) => s.groups[group]).filter((g): g is GroupSample => g !== undefined);
  const mean = (f: (g: GroupSample) => number): number =>
    gs.length === 0 ? 0 : gs.reduce((a, g) => a + f(g), 0) / gs.length;
  const heaps = gs.filter((g) => g.heapUsedBytes !== undefined);
  const elus = gs.filter((g) => g.maxElu !== undefined);
  const stats: GroupStats = {
    meanCpuCores: mean((g) => g.cpuCores),
    maxCpuCores: Math.max(0, ...gs.map((g) => g.cpuCores)),
    meanRssBytes: mean((g) => g.rssBytes),
    maxRssBytes: Math.max(0, ...gs.map((g) => g.rssBytes)),
  };
  if (heaps.length > 0)
    stats.meanHeapUsedBytes = heaps.reduce((a, g) => a + (g.heapUsedBytes ?? 0), 0) / heaps.length;
  if (elus.length > 0) stats.maxElu = Math.max(...elus.map((g) => g.maxElu ?? 0));
  const delays = gs.flatMap((g) => (g.maxLoopDelayMs === undefined ? [] : [g.maxLoopDelayMs]));
  if (delays.length > 0) stats.maxLoopDelayMs = Math.max(...delays);
  let longest: GroupSample | undefined;
  for (const g of gs) if ((g.maxGcPauseMs ?? -1) > (longest?.maxGcPauseMs ?? -1)) longest = g;
  if (longest?.maxGcPauseMs !== undefined) {
    stats.maxGcPauseMs = longest.maxGcPauseMs;
    if (longest.maxGcPauseKind !== undefined) stats.maxGcPauseKind = longest.maxGcPauseKind;
  }
  return stats;
}

export function meanMachineBusy(samples: readonly ResourceSample[]): number {
  return samples.length === 0 ? 0 : samples.reduce((a, s) => a + s.machineBusy, 0) / samples.length;
}

/** The longest machine stall the probe saw over some samples, ms; undefined when none carried one. */
export function maxMachineStall(samples: readonly ResourceSample[]): number | undefined {
  const seen = samples.flatMap((s) => (s.machineStallMs === undefined ? [] : [s.machineStallMs]));
  return seen.length === 0 ? undefined : Math.max(...seen);
}

/** Mean CPU pressure (PSI `some`) over some samples, 0..1; undefined when none carried it. */
export function meanCpuPressure(samples: readonly ResourceSample[]): number | undefined {
  const seen = samples.flatMap((s) => (s.cpuPressure === undefined ? [] : [s.cpuPressure]));
  return seen.length === 0 ? undefined : seen.reduce((a, b) => a + b, 0) / seen.length;
}

export interface GcMeasurement {
  processes: number;
  heapUsedBytes: number;
  rssBytes: number;
  externalBytes: number;
}

/**
 * Asks every probed process among `pids` for a full garbage collection (the probe's SIGUSR2) and sums the
 * heap and RSS right after it. Only processes that have written a probe record are signalled — a process
 * without the probe would be killed by SIGUSR2. Undefined when none answered within `timeoutMs`.
 */
export async function measureAfterGc(
  pids: readonly number[],
  probeDir: string,
  timeoutMs = 10_000,
): Promise<GcMeasurement | undefined> {
  const probed = readProbes(probeDir);
  const targets = pids.filter((p) => probed.has(p));
  if (targets.length === 0) return undefined;
  const requestedAt = Date.now();
  for (const pid of targets) {
    try {
      process.kill(pid, PROBE_GC_SIGNAL);
    } catch {
      // Gone since: it no longer counts.
    }
  }
  const deadline = requestedAt + timeoutMs;
  for (;;) {
    const now = readProbes(probeDir);
    const done = targets.map((p) => now.get(p)).filter((r) => r?.gc !== undefined && r.gc.at >= requestedAt);
    if (done.length === targets.length || Date.now() > deadline) {
      if (done.length === 0) return undefined;
      return {
        processes: done.length,
        heapUsedBytes: done.reduce((a, r) => a + (r?.gc?.heapUsed ?? 0), 0),
        rssBytes: done.reduce((a, r) => a + (r?.gc?.rss ?? 0), 0),
        externalBytes: done.reduce((a, r) => a + (r?.gc?.external ?? 0), 0),
      };
    }
    await new Promise((r) => setTimeout(r, GC_POLL_MS));
  }
}
