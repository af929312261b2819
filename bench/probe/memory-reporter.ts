/**
 * Preloaded into every broker process the bench starts (NODE_OPTIONS=--import <this file>), because /proc
 * shows RSS but not the V8 heap: once a second it writes process.memoryUsage() and the event-loop
 * utilisation to `$SB_BENCH_PROBE_DIR/<pid>.json` (write + rename, so a reader never sees half a file).
 * With them, the longest event-loop delay and the longest GC pause of the interval: the stalls that make a
 * latency tail. On SIGUSR2 it runs a full garbage collection first and records the heap after it, so the connections
 * scenario can compare live heap (not garbage) before and after the ramp. It does nothing without
 * SB_BENCH_PROBE_DIR and never keeps a process alive. It also takes CPU profiles when the bench asks
 * (`e2e --profile`, cpu-profiler.ts). A node the bench did not start (--url) has no probe.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startProfileControl } from './cpu-profiler.js';
import { type GcKind, gcKindOf, PROBE_GC_SIGNAL, type ProbeRecord } from './probe-record.js';

const PROBE_INTERVAL_MS = 1000;
/** Resolution of the event-loop delay histogram, ms. */
const LOOP_DELAY_RESOLUTION_MS = 5;

const dir = process.env['SB_BENCH_PROBE_DIR'];
if (dir) {
  const file = join(dir, `${process.pid}.json`);
  const tmp = `${file}.tmp`;
  let last = performance.eventLoopUtilization();
  let elu = 0;
  let gcFigures: ProbeRecord['gc'];
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  let loopDelayMaxMs = 0;
  let gcPauseMaxMs = 0;
  let gcPauseMaxKind: GcKind | undefined;
  let gcPauseNow = 0;
  let gcKindNow: GcKind | undefined;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration <= gcPauseNow) continue;
      gcPauseNow = entry.duration;
      gcKindNow = gcKindOf((entry as { detail?: { kind?: number } | null }).detail?.kind);
    }
  }).observe({ entryTypes: ['gc'] });
  const write = (): void => {
    let m: NodeJS.MemoryUsage;
    try {
      m = process.memoryUsage();
    } catch {
      // EMFILE: reading the RSS opens /proc/self/stat, and a worker at its descriptor limit (a storm
      // filling the survivors of a kill -9) has none to spare. The probe skips the sample; it must never
      // be what takes the process down (it did: five workers exited at once in a 100k kill storm).
      return;
    }
    const record: ProbeRecord = {
      pid: process.pid,
      at: Date.now(),
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      elu,
      loopDelayMaxMs,
      gcPauseMaxMs,
      ...(gcPauseMaxKind ? { gcPauseMaxKind } : {}),
      ...(gcFigures ? { gc: gcFigures } : {}),
    };
    try {
      writeFileSync(tmp, JSON.stringify(record));
      renameSync(tmp, file);
    } catch {
      // The bench removed the folder (run over): nothing to report to.
    }
  };
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    elu = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    loopDelayMaxMs = loopDelay.max / 1e6;
    loopDelay.reset();
    gcPauseMaxMs = gcPauseNow;
    gcPauseMaxKind = gcKindNow;
    gcPauseNow = 0;
    gcKindNow = undefined;
    write();
  }, PROBE_INTERVAL_MS);
  timer.unref();
  // `gc` is exposed to contexts created after the flag is set; the process keeps its own flags otherwise.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  process.on(PROBE_GC_SIGNAL, () => {
    gc();
    const m = process.memoryUsage();
    gcFigures = { at: Date.now(), heapUsed: m.heapUsed, rss: m.rss, external: m.external };
    write();
  });
  startProfileControl(dir);
}
