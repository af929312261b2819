/**
 * What the load runs against: a node the bench starts (`switchboard serve`, supervisor + N workers), or a
 * running node given by URL (the cluster and peers scenarios add their own targets); servers.ts provides
 * NATS and Cassandra. Each target names the broker's processes (re-read on
 * every sample, so restarted workers are followed) and those of NATS and Cassandra when they are local.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CASSANDRA_LOCAL_DATA_CENTER } from '../../src/stack/cassandra.js';
import { isTcpReachable } from '../../src/stack/process.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type CliProcess, PROBE_PATH, startCli } from './cli-process.js';
import { commandLine, connectedServerPids, pidsListeningOn, processTree, readProcStat } from './proc.js';
import {
  ensureServers,
  hostPort,
  isLocalHost,
  PRIVATE_NATS,
  type ServerOptions,
  type Servers,
  waitReady,
} from './servers.js';

/** The secret of nodes the bench starts; a --url target needs its own (--jwt-secret / SB_JWT_SECRET). */
export const BENCH_JWT_SECRET = 'switchboard-bench-secret-0123456789abcdefgh';
export const DEFAULT_BENCH_KEYSPACE = 'sb_bench';
const NODE_READY_TIMEOUT_MS = 120_000;

export interface TargetNode {
  nodeId: string;
  port: number;
  /** ws://127.0.0.1:PORT */
  wsBase: string;
  httpBase: string;
  workers: number;
}

/** How load clients talk to a target: Switchboard's own protocol, or a peer's (bench/peers/). */
export type ClientSpec =
  | { protocol: 'switchboard' }
  | { protocol: 'socketio' }
  /** NATS over its WebSocket listener; `persist` = JetStream publish (acked once stored) instead of a core publish. */
  | { protocol: 'nats'; persist: boolean };

export interface BrokerTarget {
  /** "started node", "started cluster" or "running node at …". */
  readonly description: string;
  /** How clients talk to it; Switchboard's protocol when absent. */
  readonly client?: ClientSpec;
  readonly nodes: readonly TargetNode[];
  readonly jwtSecret: string;
  /** Folder the broker processes' memory probe writes to (started targets only). */
  readonly probeDir: string | undefined;
  /** The node's processes now (supervisor + workers); empty when they are not on this machine. */
  brokerPids(): number[];
  natsPids(): number[];
  cassandraPids(): number[];
  /** Broker log file, for a started target. */
  readonly logFile: string | undefined;
  /**
   * A started node only: drains it (SIGTERM: sockets closed with 1012, shards handed over, writer
   * flushed), then starts it again on the same port; resolves once it serves again (issue #14's storm).
   */
  restart?(): Promise<void>;
  /** A started node only: the worker processes (not the supervisor) now. */
  workerPids?(): number[];
  stop(): Promise<void>;
}

/** Broker processes are the CLI's node processes under `roots` (not a nats-server or Cassandra they started). */
export function brokerTree(roots: readonly number[]): number[] {
  return [...new Set(processTree(roots))].filter((pid) => /\/cli\.js\b/.test(commandLine(pid)));
}

export function workDir(): { dir: string; probeDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  const probeDir = join(dir, 'probe');
  mkdirSync(probeDir);
  return { dir, probeDir };
}

export function brokerEnv(
  o: { natsUrl: string; cassandra: string; keyspace: string },
  probeDir: string,
  extra: NodeJS.ProcessEnv,
): NodeJS.ProcessEnv {
  const nodeOptions = [process.env['NODE_OPTIONS'], `--import=${PROBE_PATH}`].filter(Boolean).join(' ');
  return {
    ...process.env,
    SB_NATS_URL: o.natsUrl,
    SB_CASSANDRA: o.cassandra,
    SB_KEYSPACE: o.keyspace,
    SB_JWT_SECRET: BENCH_JWT_SECRET,
    SB_LOG_LEVEL: process.env['SB_LOG_LEVEL'] ?? 'warn',
    SB_BENCH_PROBE_DIR: probeDir,
    NODE_OPTIONS: nodeOptions,
    ...extra,
  };
}

export interface ServeReady {
  node: string;
  port: number;
  workers: { id: string; pid: number }[];
}

/**
 * Drops the bench's keyspace, so that a run starts from an empty history. Earlier runs' rows would
 * otherwise pile up (884 MB after a few days of runs) and Cassandra would compact them during the
 * measured window: 0.45 cores for a minute at the start of every run, and up to 1.5 cores for seconds
 * when a flush met a compaction (issue #13).
 */
export async function dropBenchKeyspace(cassandra: string, keyspace: string, say: (line: string) => void) {
  const t0 = Date.now();
  await dropKeyspace({
    contactPoints: [cassandra],
    localDataCenter: CASSANDRA_LOCAL_DATA_CENTER,
    keyspace,
  });
  say(
    `dropped keyspace ${keyspace} (earlier runs' history) in ${Date.now() - t0} ms; --keep-keyspace keeps it`,
  );
}

/** Drops `keyspace` unless `keepKeyspace`; a failed drop stops `servers` (what the run started) and throws. */
export async function startFromEmptyKeyspace(
  servers: Servers,
  keyspace: string,
  o: { keepKeyspace: boolean; say(line: string): void },
): Promise<void> {
  if (o.keepKeyspace) return;
  try {
    await dropBenchKeyspace(servers.cassandra, keyspace, o.say);
  } catch (err) {
    await servers.stop();
    throw err;
  }
}

export async function startNodeTarget(
  o: ServerOptions & { keyspace: string; keepKeyspace: boolean; workers: number; env?: NodeJS.ProcessEnv },
): Promise<BrokerTarget> {
  const servers = await ensureServers(o);
  await startFromEmptyKeyspace(servers, o.keyspace, o);
  const { dir, probeDir } = workDir();
  const logFile = join(dir, 'broker.log');
  o.say(`starting a node: ${o.workers} worker(s), keyspace ${o.keyspace}, log ${logFile}`);
  const env = brokerEnv({ ...o, natsUrl: servers.natsUrl }, probeDir, o.env ?? {});
  // The node being started counts as the broker from its spawn: a restart's start-up (six workers
  // loading, claiming shards) is the broker's CPU, not a gap in the report's series.
  let starting: number | undefined;
  const serve = (port: number): Promise<CliProcess<ServeReady>> =>
    startCli<ServeReady>(
      ['serve', '--workers', String(o.workers), '--port', String(port)],
      env,
      logFile,
      NODE_READY_TIMEOUT_MS,
      (pid) => {
        starting = pid;
      },
    );
  let node: CliProcess<ServeReady>;
  try {
    node = await serve(0);
  } catch (err) {
    await servers.stop();
    throw err;
  }
  const { port } = node.ready;
  const roots = (): number[] => [
    node.pid,
    ...(starting !== undefined && starting !== node.pid ? [starting] : []),
  ];
  if (!(await waitReady(`http://127.0.0.1:${port}`)))
    o.say('warning: the node did not report ready (all shards owned) in time');
  return {
    description: `started node (serve --workers ${o.workers})`,
    nodes: [
      {
        nodeId: node.ready.node,
        port,
        wsBase: `ws://127.0.0.1:${port}`,
        httpBase: `http://127.0.0.1:${port}`,
        workers: node.ready.workers.length,
      },
    ],
    jwtSecret: BENCH_JWT_SECRET,
    probeDir,
    logFile,
    brokerPids: () => brokerTree(roots()),
    natsPids: () => servers.natsPids(),
    cassandraPids: () => servers.cassandraPids(),
    workerPids: () => {
      const supervisors = roots();
      return brokerTree(supervisors).filter((pid) => !supervisors.includes(pid));
    },
    async restart() {
      await node.stop();
      node = await serve(port);
      await waitReady(`http://127.0.0.1:${port}`);
    },
    async stop() {
      await node.stop();
      await servers.stop();
      rmSync(probeDir, { recursive: true, force: true });
    },
  };
}

/** A running node (its workers share one port). Its processes are found only when they run on this machine. */
export async function attachTarget(o: {
  url: string;
  jwtSecret: string;
  natsUrl: string;
  cassandra: string;
}): Promise<BrokerTarget> {
  const url = new URL(o.url);
  const port = Number(url.port) || 80;
  if (!(await isTcpReachable(url.hostname, port, 2000))) throw new Error(`nothing answers at ${o.url}`);
  const listeners = isLocalHost(url.hostname) ? pidsListeningOn(port) : [];
  // The supervisor holds no listening socket; it is the workers' parent (when there is one).
  const parents = listeners
    .map((pid) => readProcStat(pid)?.ppid)
    .filter((pid): pid is number => pid !== undefined && /\/cli\.js\b/.test(commandLine(pid)));
  const roots = [...new Set([...parents, ...listeners])];
  // The node's NATS is usually not the bench's --nats (which defaults to "private", a server of the
  // bench's own): take the nats-server the node's processes are connected to.
  const given = o.natsUrl === PRIVATE_NATS ? [] : pidsListeningOn(hostPort(o.natsUrl, 4222).port);
  const natsPids = given.length > 0 ? given : connectedServerPids(brokerTree(roots), /nats-server/);
  const cassandraGiven = pidsListeningOn(hostPort(o.cassandra, 9042).port);
  const cassandraPids =
    cassandraGiven.length > 0 ? cassandraGiven : connectedServerPids(brokerTree(roots), /CassandraDaemon/);
  const ws = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss' : 'ws';
  return {
    description: `running node at ${o.url}`,
    nodes: [
      {
        nodeId: url.host,
        port,
        wsBase: `${ws}://${url.host}`,
        httpBase: `${ws === 'wss' ? 'https' : 'http'}://${url.host}`,
        workers: listeners.length,
      },
    ],
    jwtSecret: o.jwtSecret,
    probeDir: undefined,
    logFile: undefined,
    brokerPids: () => brokerTree(roots),
    natsPids: () => natsPids,
    cassandraPids: () => cassandraPids,
    async stop() {},
  };
}
