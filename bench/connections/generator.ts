/**
 * Entry point of one connections generator process: `init` → `ready` (tokens signed); `ramp` → one
 * `tick` per second (while the process lives) and `ramp-done`; `send` turns the senders on or off;
 * `acked` → every acknowledged message; `close` → `closed`.
 */
import { performance } from 'node:perf_hooks';
import { parentChannel } from '../lib/children.js';
import { startProfileControl } from '../probe/cpu-profiler.js';
import { ClientFleet } from './clients.js';
import type { ConnFromChild, ConnToChild } from './messages.js';

// The generators' own CPU is part of the machine's budget (issue #14): with SB_BENCH_GEN_PROFILE_DIR set,
// each generator is profiled like a broker (bench/probe/cpu-profiler.ts) while that folder holds a
// profile.json naming the window, e.g. a storm. BENCHMARKS.md "Profiling" has the recipe.
const profileDir = process.env['SB_BENCH_GEN_PROFILE_DIR'];
if (profileDir) startProfileControl(profileDir);

let fleet: ClientFleet | undefined;
let generator = 0;

const parent = parentChannel<ConnToChild, ConnFromChild>((msg) => {
  if (msg.type === 'init') {
    generator = msg.generator;
    const f = new ClientFleet(msg);
    fleet = f;
    f.prepare().then(() => parent.send({ type: 'ready', generator }), fatal);
    return;
  }
  const f = fleet;
  if (!f) return fatal(new Error(`${msg.type} before init`));
  if (msg.type === 'ramp') {
    startTicks(f, msg.startAt);
    f.ramp(msg.startAt).then((done) => parent.send(done), fatal);
  } else if (msg.type === 'send') {
    f.setSending(msg.on);
  } else if (msg.type === 'acked') {
    parent.send(f.ackedReport());
  } else if (msg.type === 'close') {
    f.closeAll().then(
      () =>
        parent.send({
          type: 'closed',
          generator,
          dropCodes: f.dropCodes,
          reconnectFailures: f.reconnectFailures,
          rtt: f.totalRtt(),
        }),
      fatal,
    );
  }
});

function fatal(err: unknown): void {
  parent.send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

/** Ticks on whole seconds after startAt, so every generator's second n covers the same wall-clock second. */
function startTicks(f: ClientFleet, startAt: number): void {
  let second = 0;
  let elu = performance.eventLoopUtilization();
  const tick = (): void => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    parent.send({
      type: 'tick',
      generator,
      second,
      opened: f.opened,
      failed: f.failed,
      open: f.open,
      dropped: f.dropped,
      reconnected: f.reconnected,
      reconnectFailed: f.reconnectFailed,
      reconnectFailures: f.reconnectFailures,
      pingsSent: f.pingsSent,
      pongs: f.pongs,
      sent: f.sent,
      acked: f.ackedCount,
      delivered: f.delivered,
      pending: f.pendingCount(),
      startedSenders: f.startedSenders,
      ...f.takeTick(),
      elu: u,
    });
    second++;
    setTimeout(tick, Math.max(0, startAt + (second + 1) * 1000 - Date.now())).unref();
  };
  setTimeout(tick, Math.max(0, startAt + 1000 - Date.now())).unref();
}
