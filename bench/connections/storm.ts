/**
 * A reconnect storm (issue #14): with every socket held, either the whole node is restarted (`drain`:
 * SIGTERM, so each worker closes its sockets with 1012, hands its shards over and flushes its writer;
 * then the node is started again on the same port) or the worker process holding the most sockets is killed with SIGKILL (`kill`:
 * its sockets drop without a close frame, the supervisor restarts it, its shards wait for their leases).
 * Every client reconnects by itself with the documented backoff (bench/lib/backoff.ts); this records the
 * sockets open each second from the action on until every one is back or the timeout passes.
 */
import type { ResourceSummary } from '../lib/limits.js';
import { socketInodesOf } from '../lib/proc.js';
import type { BrokerTarget } from '../lib/target.js';
import { sleep } from '../lib/units.js';
import type { Fleet } from './fleet.js';

export type StormKind = 'drain' | 'kill';
export const STORM_KINDS: readonly StormKind[] = ['drain', 'kill'];
const CURVE_STEP_MS = 1000;
/** The objective: this share of the sockets back within STORM_OBJECTIVE_MS of the action. */
export const STORM_BACK_SHARE = 0.99;
export const STORM_OBJECTIVE_MS = 60_000;

export interface StormResult {
  kind: StormKind;
  /** Sockets open just before the action. */
  heldBefore: number;
  /** Seconds from the ramp's start to the action. */
  at: number;
  /** How long the action took (drain + start for `drain`), ms. */
  actionMs: number;
  killedPid?: number;
  /** Sockets of every kind the killed worker had open when chosen (its clients' and a few of its own). */
  killedSockets?: number;
  /**
   * Sockets open, each second from the action on, and the reconnect attempts that failed before
   * `welcome` in the second before it, by reason (which side a storm is waiting on, and when).
   */
  curve: StormPoint[];
  lowest: number;
  dropped: number;
  /** Time from the action until 99 % and 100 % of heldBefore were open again (null: not within the timeout). */
  back99Ms: number | null;
  back100Ms: number | null;
  /** Reconnect attempts that ended before `welcome` during the storm, by reason. */
  failedAttempts: number;
  /** Sends unanswered at the end of the storm. */
  pendingAfter: number;
  /** CPU of each process group from the action to the end of the storm (filled in by the scenario). */
  resources?: ResourceSummary;
}

/** First time in the curve (after its lowest point) at which `share` of `held` were open. */
export interface StormPoint {
  t: number;
  open: number;
  failed?: Record<string, number>;
}

/** What grew from `before` to `now`, by key (zeros left out). */
export function growth(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(now)) {
    const d = n - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

export function backWithin(
  curve: readonly { t: number; open: number }[],
  held: number,
  share: number,
): number | null {
  let low = 0;
  curve.forEach((p, i) => {
    if (p.open < curve[low]!.open) low = i;
  });
  for (let i = low; i < curve.length; i++) {
    if (curve[i]!.open >= Math.ceil(held * share)) return Math.round(curve[i]!.t * 1000);
  }
  return null;
}

export async function runStorm(
  kind: StormKind,
  fleet: Fleet,
  target: BrokerTarget,
  timeoutMs: number,
  say: (line: string) => void,
): Promise<StormResult> {
  // The worker to kill is chosen before the clock starts: counting 14k descriptors of each of 7 workers
  // in /proc took 12.9 s on a loaded machine (issue #14 run of 2026-12-03 20:35), all of it in the curve.
  let killedPid: number | undefined;
  let killedSockets: number | undefined;
  if (kind === 'kill') {
    // The worker holding the most sockets (after a drain the first worker up holds most of them; with
    // gateways on standby, the owner may hold them all).
    const pids = target.workerPids?.() ?? [];
    const held = pids.map((pid) => ({ pid, sockets: socketInodesOf(pid).length }));
    held.sort((a, b) => b.sockets - a.sockets);
    killedPid = held[0]?.pid;
    killedSockets = held[0]?.sockets;
    if (killedPid === undefined) throw new Error('--storm kill needs a node the bench started (not --url)');
  }
  const before = fleet.current();
  const heldBefore = before.open;
  const t0 = Date.now();
  const curve: StormPoint[] = [{ t: 0, open: heldBefore }];
  let failures = before.reconnectFailures;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(t0 + curve.length * CURVE_STEP_MS - Date.now());
      const c = fleet.current();
      curve.push({
        t: (Date.now() - t0) / 1000,
        open: c.open,
        failed: growth(failures, c.reconnectFailures),
      });
      failures = c.reconnectFailures;
    }
  })();
  if (kind === 'drain') {
    if (!target.restart) throw new Error('--storm drain needs a node the bench started (not --url)');
    say(`storm (drain): restarting the node with ${heldBefore} sockets held…`);
    await target.restart();
  } else if (killedPid !== undefined) {
    say(`storm (kill): kill -9 of worker pid ${killedPid} with ${heldBefore} sockets held…`);
    process.kill(killedPid, 'SIGKILL');
  }
  const actionMs = Date.now() - t0;
  say(`storm (${kind}): action took ${(actionMs / 1000).toFixed(1)} s; waiting for the clients to come back`);
  while (Date.now() - t0 < timeoutMs) {
    await sleep(CURVE_STEP_MS);
    const c = fleet.current();
    say(
      `storm (${kind}) +${Math.round((Date.now() - t0) / 1000)} s: open ${c.open} of ${heldBefore}, pending sends ${c.pending}`,
    );
    // Back when every socket reopened after the drop (the tick that shows it can lag by a second).
    if (Date.now() - t0 > actionMs + 2 * CURVE_STEP_MS && c.open >= heldBefore && c.dropped > before.dropped)
      break;
  }
  sampling = false;
  await sampler;
  const after = fleet.current();
  return {
    kind,
    heldBefore,
    at: (t0 - fleet.startAt) / 1000,
    actionMs,
    ...(killedPid === undefined ? {} : { killedPid }),
    ...(killedSockets === undefined ? {} : { killedSockets }),
    curve,
    lowest: Math.min(...curve.map((p) => p.open)),
    dropped: after.dropped - before.dropped,
    back99Ms: backWithin(curve, heldBefore, STORM_BACK_SHARE),
    back100Ms: backWithin(curve, heldBefore, 1),
    failedAttempts: after.reconnectFailed - before.reconnectFailed,
    pendingAfter: after.pending,
  };
}
