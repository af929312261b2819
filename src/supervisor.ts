/**
 * A broker node as a small supervisor plus N worker processes that share the node's listening port
 * (DESIGN.md, "Processes"). uWebSockets.js listens with SO_REUSEPORT on Linux, so the kernel spreads
 * incoming connections over the workers; each worker is a full cluster member (`<nodeId>-w<i>`).
 * The supervisor restarts a crashed worker with backoff (bounded per window, then gives it up) and, on
 * stop(), drains every worker with SIGTERM (the worker closes its sockets with 1012, hands its shards over
 * and flushes its writer), with SIGKILL after a grace period.
 */
import { supervisorListenerGroup } from './listener-group.js';
import { createLogger, type Logger } from './log.js';
import { supervisorNodeMetrics } from './node-metrics.js';
import type { NodeDrainingIpc } from './parent-channel.js';
import { findFreePort, isTcpReachable } from './stack/process.js';
import {
  parseSupervisorOptions,
  restartDecision,
  type SupervisorOptions,
  workerEnv,
  workerExecArgv,
  workerId,
} from './supervisor-options.js';
import { spawnWorker, type WorkerProcess } from './worker-process.js';

export {
  defaultNodeId,
  parseSupervisorOptions,
  type SupervisorOptions,
  workerId,
} from './supervisor-options.js';

const PORT_PROBE_TIMEOUT_MS = 500;

export type WorkerState = 'starting' | 'ready' | 'backoff' | 'failed' | 'stopped';

export interface WorkerInfo {
  id: string;
  /** Pid of the current (or last) process of this worker. */
  pid: number;
  /** The node's shared port. */
  port: number;
  state: WorkerState;
  /** Restarts so far. */
  restarts: number;
}

export interface StopSummary {
  /** True when every worker that was running exited with code 0 within the grace period. */
  clean: boolean;
  workers: Array<{ id: string; code: number | null; signal: NodeJS.Signals | null; forced: boolean }>;
}

export interface Supervisor {
  readonly nodeId: string;
  /** The shared port (the one picked at start when configured as 0). */
  readonly port: number;
  /** A snapshot of every worker, in index order. */
  workers(): WorkerInfo[];
  /** Resolves 'failed' once every worker has been given up (the node serves nothing), 'stopped' after stop(). */
  readonly done: Promise<'stopped' | 'failed'>;
  /** Drains all workers (SIGTERM, SIGKILL after the grace period); resolves when all exited. Idempotent. */
  stop(): Promise<StopSummary>;
}

interface Slot {
  readonly id: string;
  readonly index: number;
  proc: WorkerProcess | undefined;
  pid: number;
  state: WorkerState;
  /** Times (ms since epoch) of this worker's restarts. */
  readonly restarts: number[];
  timer: NodeJS.Timeout | undefined;
}

/** Host to probe for "port already taken": a wildcard listen address is reachable on loopback. */
function probeHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/**
 * Starts the workers (the first alone, so it creates the schema of a fresh keyspace before the others race
 * to; then the rest together) and resolves once every one printed its ready line. Port 0 is replaced by a
 * free port picked here: uSockets sets SO_REUSEPORT only for a non-zero port, so a worker that asked the
 * kernel for any port could not share it.
 * Rejects, after stopping those already started, when the options are invalid, when the port already answers
 * (SO_REUSEPORT would otherwise silently share it with another node), or when a worker exits or times out
 * before ready.
 */
export async function startSupervisor(
  options: Partial<SupervisorOptions> & Pick<SupervisorOptions, 'port'>,
  logger?: Logger,
): Promise<Supervisor> {
  const o = parseSupervisorOptions(options);
  const log = logger ?? createLogger({ logLevel: 'info', nodeId: o.nodeId });
  if (o.port !== 0 && (await isTcpReachable(probeHost(o.host), o.port, PORT_PROBE_TIMEOUT_MS))) {
    throw new Error(`port ${o.port} on ${o.host} is already in use (another node?)`);
  }

  const port = o.port === 0 ? await findFreePort(probeHost(o.host)) : o.port;
  let stopping: Promise<StopSummary> | undefined;
  let resolveDone: (r: 'stopped' | 'failed') => void = () => {};
  const done = new Promise<'stopped' | 'failed'>((resolve) => {
    resolveDone = resolve;
  });
  const slots: Slot[] = Array.from({ length: o.workers }, (_, i) => ({
    id: workerId(o.nodeId, i),
    index: i,
    proc: undefined,
    pid: 0,
    state: 'starting',
    restarts: [],
    timer: undefined,
  }));

  // Node-wide /metrics: whichever worker is scraped asks here, and every ready worker answers.
  const peerOf = (s: Slot): { id: string; send(m: object): boolean } | undefined => {
    const proc = s.proc;
    return proc && s.state === 'ready' ? { id: s.id, send: (m) => proc.send(m) } : undefined;
  };
  const nodeMetrics = supervisorNodeMetrics(() => slots.flatMap((s) => peerOf(s) ?? []));
  // Full workers leave the port's listener group while another one listens, and gateways stand by while
  // the owners are calm (listener-group.ts).
  const isOwner = (s: Slot): boolean => s.index < o.shardOwners || !o.gatewayStandby;
  const listeners = supervisorListenerGroup(() =>
    slots.flatMap((s) => {
      const p = peerOf(s);
      return p ? [{ ...p, owner: isOwner(s) }] : [];
    }),
  );

  const launch = async (slot: Slot): Promise<number> => {
    slot.state = 'starting';
    const proc = spawnWorker({
      id: slot.id,
      cliPath: o.cliPath,
      port,
      env: { ...o.env, ...workerEnv(o, slot.index) },
      execArgv: workerExecArgv(o),
      readyTimeoutMs: o.readyTimeoutMs,
      log,
    });
    slot.proc = proc;
    slot.pid = proc.pid;
    const peer = { id: slot.id, owner: isOwner(slot), send: (m: object) => proc.send(m) };
    proc.onMessage((msg) => {
      nodeMetrics.onMessage(peer, msg);
      listeners.onMessage(peer, msg);
    });
    // A failure before ready is reported through `ready`; only a crash after it goes here.
    void proc.exited.then((e) => {
      if (proc.isReady()) onCrash(slot, proc, `exit code ${e.code}, signal ${e.signal}`);
    });
    const got = await proc.ready;
    if (slot.proc === proc && proc.exitInfo() === null) {
      slot.state = 'ready';
      listeners.ready(peer);
    }
    log.info({ worker: slot.id, pid: proc.pid, port: got, restarts: slot.restarts.length }, 'worker ready');
    return got;
  };

  const onCrash = (slot: Slot, proc: WorkerProcess | undefined, why: string): void => {
    if (stopping || slot.proc !== proc || slot.state === 'backoff' || slot.state === 'failed') return;
    const crashedAt = Date.now();
    listeners.gone(slot.id);
    const decision = restartDecision(slot.restarts, crashedAt, o);
    if (!decision.restart) {
      slot.state = 'failed';
      log.error({ worker: slot.id, pid: slot.pid, why, reason: decision.reason }, 'worker given up');
      if (slots.every((s) => s.state === 'failed')) {
        log.fatal('every worker has been given up: the node serves nothing');
        resolveDone('failed');
      }
      return;
    }
    slot.state = 'backoff';
    log.warn(
      { worker: slot.id, pid: slot.pid, why, delayMs: decision.delayMs },
      'worker crashed: restarting',
    );
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (stopping) return;
      slot.restarts.push(Date.now());
      launch(slot).then(
        () =>
          log.info({ worker: slot.id, pid: slot.pid, downMs: Date.now() - crashedAt }, 'worker restarted'),
        (err: unknown) => onCrash(slot, slot.proc, err instanceof Error ? err.message : String(err)),
      );
    }, decision.delayMs);
  };

  const stop = (): Promise<StopSummary> => {
    stopping ??= (async () => {
      for (const s of slots) clearTimeout(s.timer);
      nodeMetrics.close();
      const live = slots.filter((s) => s.proc !== undefined && s.proc.exitInfo() === null);
      log.info({ workers: live.map((s) => s.id), graceMs: o.stopGraceMs }, 'draining workers');
      // Each worker learns which members stop with it (parent-channel.ts, NodeDrainingIpc).
      const draining: NodeDrainingIpc = { sb: 'node-draining', members: live.map((s) => s.id) };
      for (const s of live) s.proc!.send(draining);
      const results = await Promise.all(
        live.map(async (s) => {
          const r = await s.proc!.stop(o.stopGraceMs);
          return { id: s.id, code: r.code, signal: r.signal, forced: r.forced };
        }),
      );
      for (const s of slots) if (s.state !== 'failed') s.state = 'stopped';
      const clean = results.every((r) => r.code === 0 && !r.forced);
      log.info({ clean, workers: results }, 'workers stopped');
      resolveDone('stopped');
      return { clean, workers: results };
    })();
    return stopping;
  };

  try {
    // All at once: each worker's start is mostly its own CPU (loading, connecting) and the shared
    // setup it races for is idempotent (streams and buckets: "already in use" is success; migrations
    // under a cluster lock). One after the other cost a restarting node ~5 s more before its last
    // worker listened, while its clients were waiting to reconnect (issue #14, drain storm).
    await Promise.all(slots.map(launch));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    nodeId: o.nodeId,
    port,
    workers: () =>
      slots.map((s) => ({ id: s.id, pid: s.pid, port, state: s.state, restarts: s.restarts.length })),
    done,
    stop,
  };
}
