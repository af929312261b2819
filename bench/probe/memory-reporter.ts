/**
 * Preloaded into every broker process the bench starts (NODE_OPTIONS=--import <this file>), because /proc
 * shows RSS but not the V8 heap: once a second it writes process.memoryUsage() and the event-loop
 * utilisation to `$SB_BENCH_PROBE_DIR/<pid>.json` (write + rename, so a reader never sees half a file).
 * It does nothing without SB_BENCH_PROBE_DIR and never keeps a process alive. A node the bench did not
 * start (--url) has no probe; its heap is then reported as unknown.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const PROBE_INTERVAL_MS = 1000;

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
}

const dir = process.env['SB_BENCH_PROBE_DIR'];
if (dir) {
  const file = join(dir, `${process.pid}.json`);
  const tmp = `${file}.tmp`;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    const m = process.memoryUsage();
    const record: ProbeRecord = {
      pid: process.pid,
      at: Date.now(),
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      elu,
    };
    try {
      writeFileSync(tmp, JSON.stringify(record));
      renameSync(tmp, file);
    } catch {
      // The bench removed the folder (run over): nothing to report to.
    }
  }, PROBE_INTERVAL_MS);
  timer.unref();
}
