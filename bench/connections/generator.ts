/**
 * Entry point of one connections generator process: `init` → `ready`; `ramp` → one `tick` per second
 * (while the process lives) and `ramp-done`; `close` → `closed`.
 */
import { performance } from 'node:perf_hooks';
import { parentChannel } from '../lib/children.js';
import { ClientFleet } from './clients.js';
import type { ConnFromChild, ConnToChild } from './messages.js';

let fleet: ClientFleet | undefined;
let generator = 0;

const parent = parentChannel<ConnToChild, ConnFromChild>((msg) => {
  if (msg.type === 'init') {
    generator = msg.generator;
    fleet = new ClientFleet(msg);
    parent.send({ type: 'ready', generator });
  } else if (msg.type === 'ramp') {
    const f = fleet;
    if (!f) return fatal(new Error('ramp before init'));
    startTicks(f, msg.startAt);
    f.ramp(msg.startAt).then((done) => parent.send(done), fatal);
  } else if (msg.type === 'close') {
    const f = fleet;
    if (!f) return fatal(new Error('close before init'));
    f.closeAll().then(
      () => parent.send({ type: 'closed', generator, dropCodes: f.dropCodes, rtt: f.totalRtt() }),
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
      pingsSent: f.pingsSent,
      pongs: f.pongs,
      rtt: f.takeRtt(),
      elu: u,
    });
    second++;
    setTimeout(tick, Math.max(0, startAt + (second + 1) * 1000 - Date.now())).unref();
  };
  setTimeout(tick, Math.max(0, startAt + 1000 - Date.now())).unref();
}
