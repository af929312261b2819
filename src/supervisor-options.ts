/**
 * Options of a node supervisor (src/supervisor.ts): defaults from named constants, one parse function that
 * checks every field and returns a frozen object, and the restart policy as a pure function of the restart
 * history, so both are testable without processes.
 */
import { availableParallelism, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { boolFromEnv, intFromEnv } from './env-values.js';

export const DEFAULT_WORKER_READY_TIMEOUT_MS = 60_000;
export const DEFAULT_WORKER_STOP_GRACE_MS = 30_000;
/** At most this many restarts of one worker within DEFAULT_RESTART_WINDOW_MS; the next crash gives it up. */
export const DEFAULT_MAX_RESTARTS = 5;
export const DEFAULT_RESTART_WINDOW_MS = 60_000;
/** Delay before the first restart in a window; doubled for each further one, up to the maximum. */
export const DEFAULT_RESTART_BACKOFF_MS = 250;
export const DEFAULT_MAX_RESTART_BACKOFF_MS = 8_000;
/**
 * V8's young generation of each worker in a node of more than WORKERS_FOR_THROUGHPUT workers, MiB per
 * semi-space (issue #14). V8's default (16 MiB, so 32 MiB of new space) fills during start-up and stays
 * resident while a worker idles: measured on an idle worker, anonymous RSS 80 MiB with the default and 52-56
 * MiB with 2 (new space 32 -> 1 MiB). A node runs many workers to hold sockets (a 20k descriptor limit per
 * process: 7 workers for 100k), where each worker's message rate is a fraction of the node's; one or two
 * workers are the throughput shape, and keep V8's default there (more scavenges, more promotion otherwise).
 */
export const MANY_WORKERS_SEMI_SPACE_MB = 2;
/** Up to this many workers, V8's default young generation (the throughput shape; see above). */
export const WORKERS_FOR_THROUGHPUT = 2;
const MAX_SEMI_SPACE_MB = 1024;
/**
 * V8's old-generation growth of each worker in the throughput shape (at most WORKERS_FOR_THROUGHPUT workers):
 * a major GC starts when old space reaches (1 + percent / 100) times what the last one left live. V8's own
 * factor, picked from its GC and allocation speeds, was ~1.4-1.9 for a loaded worker, so a major GC came
 * every 10-20 s; each one's marking takes 260-420 ms of a helper thread's CPU, and on a small machine that
 * second is what misses the delivery p99 (BENCHMARKS.md, fifteenth session). At 300 (a limit of 4x the live
 * heap) they come 2-3 times less often, for a worker heap that peaks near 4x its live size (up to ~500 MiB at the
 * bench's 2 000 conversations with a full history cache). More workers keep V8's own factor: memory per
 * socket is their objective (issue #14).
 */
export const THROUGHPUT_HEAP_GROWING_PERCENT = 300;
const MAX_HEAP_GROWING_PERCENT = 1000;
/** Node's own --v8-pool-size default (its platform's worker threads). */
export const NODE_DEFAULT_V8_POOL_SIZE = 4;
const MAX_V8_POOL_SIZE = 1024;

/**
 * V8's helper threads per worker (Node's --v8-pool-size): the threads that run a major GC's concurrent
 * marking and sweeping, and background compiles. Node starts 4 whatever the machine. A major GC of a loaded
 * worker marks for 260-420 ms of helper CPU (BENCHMARKS.md, twelfth session); spread over 4 threads on 2
 * cores it can take both cores at once, stalling the worker's own main thread, Cassandra and everything else
 * for that moment. The default keeps the helpers to the CPUs a worker has beside its main thread: one
 * per CPU of the worker's share but one, at least one, at most Node's 4 (issue #13).
 */
export function defaultV8PoolSize(workers: number, cpus: number = availableParallelism()): number {
  return Math.min(NODE_DEFAULT_V8_POOL_SIZE, Math.max(1, Math.floor(cpus / workers) - 1));
}
/**
 * The default worker count: one per CPU but one, at least one. Each worker's main thread can use a whole
 * core, and beside it run its pool thread (screening, compression), V8's GC helpers, libuv and the kernel's
 * network processing: together about one more core's worth. On the 2-core bench machine one worker
 * delivered 3 900 and 4 400 msg/s within p99 89 ms in two sweeps and two workers 3 900 in one, the same hour
 * (BENCHMARKS.md, fifteenth session): with a second worker most messages cross a process (request, push,
 * echo), which costs about as much as the second core gives. Twenty-fifth session: one worker 4 900-8 200
 * msg/s in four sweeps, two 4 900, at ~190 µs of broker CPU per message against 83-120. Twenty-sixth, with
 * only the first worker owning shards (defaultShardOwners): two workers 7 400 at 103 µs, one 8 200 at 84.
 */
export function defaultWorkerCount(cpus: number = availableParallelism()): number {
  return Math.max(1, cpus - 1);
}

/**
 * How many of a node's workers own conversation shards by default: as many as the default worker count
 * allows for (CPUs but one), never more than there are workers. Workers beyond it exist to hold sockets
 * (a 20k descriptor limit per process: 6 workers for 100k on 2 CPUs) and are gateways only: their
 * clients' requests go to the owners over the member link, as half of them would anyway. Spread over
 * more processes than the CPUs can run, the owners' work (actor, store, driver) ran at one or two
 * messages per wake-up and cost more per message the more processes shared it (issue #13/#14).
 */
export function defaultShardOwners(workers: number, cpus: number = availableParallelism()): number {
  return Math.min(workers, defaultWorkerCount(cpus));
}

/** A sanity bound, not a tuning knob: each worker is a whole Node process and cluster member. */
export const MAX_WORKERS = 256;
const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_NODE_ID_CHARS = 64;

export interface SupervisorOptions {
  /** The node's id; worker i is `<nodeId>-w<i>`. */
  nodeId: string;
  /** Worker processes, default defaultWorkerCount(): one per CPU but one. */
  workers: number;
  /**
   * Workers w0 … w(n-1) own conversation shards; the rest are gateways only (SB_OWNS_SHARDS=0), and take
   * shards only while no owner is live (src/cluster/membership.ts). 1 to workers; default SB_SHARD_OWNERS
   * of `env` when set, else defaultShardOwners(workers).
   */
  shardOwners: number;
  /**
   * The gateways (workers beyond `shardOwners`) stand by, not listening, while the owners have room and
   * admit every upgrade (src/listener-group.ts); false: every worker listens from its start. Default
   * SB_GATEWAY_STANDBY of `env` when set, else true.
   */
  gatewayStandby: boolean;
  /** The shared listening port; 0 = a free one picked at start. */
  port: number;
  /** The host the workers listen on (SB_HOST), used to refuse a port that already answers. */
  host: string;
  /** The environment every worker starts with (SB_NODE_ID and SB_PORT are set over it). */
  env: NodeJS.ProcessEnv;
  /** The compiled cli.js the workers run; default the one next to this module. */
  cliPath: string;
  readyTimeoutMs: number;
  stopGraceMs: number;
  maxRestarts: number;
  restartWindowMs: number;
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  /**
   * --max-semi-space-size of each worker, MiB; 0 = V8's default. Default: MANY_WORKERS_SEMI_SPACE_MB for
   * nodes of more than WORKERS_FOR_THROUGHPUT workers, else 0.
   */
  semiSpaceMb: number;
  /** --v8-pool-size of each worker; 0 = Node's default (4). Default: defaultV8PoolSize(workers). */
  v8PoolSize: number;
  /**
   * --heap-growing-percent of each worker; 0 = V8's own factor. Default: THROUGHPUT_HEAP_GROWING_PERCENT for
   * nodes of at most WORKERS_FOR_THROUGHPUT workers, else 0.
   */
  heapGrowingPercent: number;
  /**
   * V8's allocation-site pretenuring in each worker. Default: off for nodes of at most WORKERS_FOR_THROUGHPUT
   * workers, on (V8's default) else. V8 allocates a literal straight into old space once most of its
   * allocation site's recent objects survived a scavenge. Under load it had done so for 13 sites, and the
   * message path's short-lived objects (a request, a decoded frame, a written row) were among what died in
   * old space. Off, old space grew 1.1-1.3 KB per message instead of 3.0-3.2 KB, and scavenges did not get
   * slower (BENCHMARKS.md, fifteenth session).
   */
  pretenuring: boolean;
}

/** A node id for a supervisor when none is configured: the host name made id-safe, plus the pid. */
export function defaultNodeId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 40);
  return `${host}-${process.pid}`;
}

/** The id of worker `index` of node `nodeId` (also its SB_NODE_ID, so its cluster member id). */
export function workerId(nodeId: string, index: number): string {
  return `${nodeId}-w${index}`;
}

function nonNegativeInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
}

function positiveInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
}

/** What worker `index` sets over the node's environment: whether it owns conversation shards. */
export function workerEnv(
  o: Pick<SupervisorOptions, 'shardOwners' | 'gatewayStandby'>,
  index: number,
): NodeJS.ProcessEnv {
  const owner = index < o.shardOwners;
  return { SB_OWNS_SHARDS: owner ? '1' : '0', SB_GATEWAY_STANDBY: !owner && o.gatewayStandby ? '1' : '0' };
}

/** The Node flags a worker starts with (before its script). */
export function workerExecArgv(
  o: Pick<SupervisorOptions, 'semiSpaceMb' | 'v8PoolSize' | 'heapGrowingPercent' | 'pretenuring'>,
): string[] {
  return [
    ...(o.semiSpaceMb > 0 ? [`--max-semi-space-size=${o.semiSpaceMb}`] : []),
    ...(o.v8PoolSize > 0 ? [`--v8-pool-size=${o.v8PoolSize}`] : []),
    ...(o.heapGrowingPercent > 0 ? [`--heap-growing-percent=${o.heapGrowingPercent}`] : []),
    ...(o.pretenuring ? [] : ['--no-allocation-site-pretenuring']),
  ];
}

/** Merges `o` over the defaults, validates every field, returns a frozen object (env is copied, not frozen). */
export function parseSupervisorOptions(
  o: Partial<SupervisorOptions> & Pick<SupervisorOptions, 'port'>,
): Readonly<SupervisorOptions> {
  const opts: SupervisorOptions = {
    nodeId: o.nodeId ?? defaultNodeId(),
    workers: o.workers ?? defaultWorkerCount(),
    shardOwners: 0,
    gatewayStandby: true,
    port: o.port,
    host: o.host ?? '127.0.0.1',
    env: { ...(o.env ?? process.env) },
    cliPath: o.cliPath ?? fileURLToPath(new URL('./cli.js', import.meta.url)),
    readyTimeoutMs: o.readyTimeoutMs ?? DEFAULT_WORKER_READY_TIMEOUT_MS,
    stopGraceMs: o.stopGraceMs ?? DEFAULT_WORKER_STOP_GRACE_MS,
    maxRestarts: o.maxRestarts ?? DEFAULT_MAX_RESTARTS,
    restartWindowMs: o.restartWindowMs ?? DEFAULT_RESTART_WINDOW_MS,
    restartBackoffMs: o.restartBackoffMs ?? DEFAULT_RESTART_BACKOFF_MS,
    maxRestartBackoffMs: o.maxRestartBackoffMs ?? DEFAULT_MAX_RESTART_BACKOFF_MS,
    semiSpaceMb: 0,
    v8PoolSize: 0,
    heapGrowingPercent: 0,
    pretenuring: true,
  };
  const throughputShape = opts.workers <= WORKERS_FOR_THROUGHPUT;
  opts.semiSpaceMb = o.semiSpaceMb ?? (throughputShape ? 0 : MANY_WORKERS_SEMI_SPACE_MB);
  opts.heapGrowingPercent = o.heapGrowingPercent ?? (throughputShape ? THROUGHPUT_HEAP_GROWING_PERCENT : 0);
  opts.pretenuring = o.pretenuring ?? !throughputShape;
  opts.v8PoolSize = o.v8PoolSize ?? defaultV8PoolSize(opts.workers);
  opts.shardOwners =
    o.shardOwners ?? intFromEnv(opts.env, 'SB_SHARD_OWNERS') ?? defaultShardOwners(opts.workers);
  opts.gatewayStandby = o.gatewayStandby ?? boolFromEnv(opts.env, 'SB_GATEWAY_STANDBY') ?? true;
  if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > MAX_WORKERS) {
    throw new Error(`workers must be an integer from 1 to ${MAX_WORKERS}`);
  }
  if (!Number.isInteger(opts.shardOwners) || opts.shardOwners < 1 || opts.shardOwners > opts.workers) {
    throw new Error(`shardOwners must be an integer from 1 to workers (${opts.workers})`);
  }
  const lastWorker = workerId(opts.nodeId, opts.workers - 1);
  if (!NODE_ID_PATTERN.test(opts.nodeId) || lastWorker.length > MAX_NODE_ID_CHARS) {
    throw new Error(`nodeId must be A-Z a-z 0-9 _ - and leave room for the worker suffix (${lastWorker})`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error('port must be an integer from 0 to 65535');
  }
  if (opts.host === '') throw new Error('host must not be empty');
  if (opts.cliPath === '') throw new Error('cliPath must not be empty');
  positiveInt(opts.readyTimeoutMs, 'readyTimeoutMs');
  positiveInt(opts.stopGraceMs, 'stopGraceMs');
  nonNegativeInt(opts.maxRestarts, 'maxRestarts');
  positiveInt(opts.restartWindowMs, 'restartWindowMs');
  nonNegativeInt(opts.restartBackoffMs, 'restartBackoffMs');
  nonNegativeInt(opts.maxRestartBackoffMs, 'maxRestartBackoffMs');
  if (!Number.isInteger(opts.semiSpaceMb) || opts.semiSpaceMb < 0 || opts.semiSpaceMb > MAX_SEMI_SPACE_MB) {
    throw new Error(`semiSpaceMb must be an integer from 0 to ${MAX_SEMI_SPACE_MB}`);
  }
  if (!Number.isInteger(opts.v8PoolSize) || opts.v8PoolSize < 0 || opts.v8PoolSize > MAX_V8_POOL_SIZE) {
    throw new Error(`v8PoolSize must be an integer from 0 to ${MAX_V8_POOL_SIZE}`);
  }
  if (
    !Number.isInteger(opts.heapGrowingPercent) ||
    opts.heapGrowingPercent < 0 ||
    opts.heapGrowingPercent > MAX_HEAP_GROWING_PERCENT
  ) {
    throw new Error(`heapGrowingPercent must be an integer from 0 to ${MAX_HEAP_GROWING_PERCENT}`);
  }
  if (typeof opts.pretenuring !== 'boolean') throw new Error('pretenuring must be true or false');
  if (opts.maxRestartBackoffMs < opts.restartBackoffMs) {
    throw new Error('maxRestartBackoffMs must be at least restartBackoffMs');
  }
  return Object.freeze(opts);
}

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; reason: string };

/**
 * Whether a worker that crashed at `nowMs` is restarted, and after what delay. `history` holds the times of
 * its earlier restarts (any order); only those within the window count. The delay doubles with each restart
 * in the window: base, 2·base, 4·base, ... capped at the maximum.
 */
export function restartDecision(
  history: readonly number[],
  nowMs: number,
  o: Pick<SupervisorOptions, 'maxRestarts' | 'restartWindowMs' | 'restartBackoffMs' | 'maxRestartBackoffMs'>,
): RestartDecision {
  const recent = history.filter((t) => nowMs - t < o.restartWindowMs).length;
  if (recent >= o.maxRestarts) {
    return {
      restart: false,
      reason: `${recent} restarts within ${o.restartWindowMs} ms (limit ${o.maxRestarts})`,
    };
  }
  return { restart: true, delayMs: Math.min(o.restartBackoffMs * 2 ** recent, o.maxRestartBackoffMs) };
}
