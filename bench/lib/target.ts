/**
 * What the load runs against: a node the bench starts (`switchboard serve`, supervisor + N workers), a
 * local cluster it starts (`switchboard cluster up`), or a running node given by URL. Servers that answer
 * are reused; otherwise ensureLocalStack starts them. Each target names the broker's processes (re-read on
 * every sample, so restarted workers are followed) and those of NATS and Cassandra when they are local.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTcpReachable } from '../../src/stack/process.js';
import { ensureLocalStack, type LocalStack } from '../../src/stack/local-stack.js';
import { type CliProcess, PROBE_PATH, startCli } from './cli-process.js';
import { commandLine, pidsListeningOn, processTree, readProcStat } from './proc.js';

/** The secret of nodes the bench starts; a --url target needs its own (--jwt-secret / SB_JWT_SECRET). */
export const BENCH_JWT_SECRET = 'switchboard-bench-secret-0123456789abcdefgh';
export const DEFAULT_BENCH_KEYSPACE = 'sb_bench';
const NODE_READY_TIMEOUT_MS = 120_000;
const CLUSTER_READY_TIMEOUT_MS = 240_000;
/** The CLI and test runner put Cassandra's storage port 2042 below its CQL port and JMX 199 above that. */
const CASSANDRA_STORAGE_PORT_OFFSET = 2042;
const CASSANDRA_JMX_OFFSET = 199;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost']);

export interface TargetNode {
  nodeId: string;
  port: number;
  /** ws://127.0.0.1:PORT */
  wsBase: string;
  httpBase: string;
  workers: number;
}

export interface BrokerTarget {
  /** "started node", "started cluster" or "running node at …". */
  readonly description: string;
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
  stop(): Promise<void>;
}

export interface ServerOptions {
  natsUrl: string;
  cassandra: string;
  keyspace: string;
  say(line: string): void;
}

function hostPort(spec: string, defaultPort: number): { host: string; port: number } {
  const url = spec.includes('://') ? new URL(spec) : new URL(`tcp://${spec}`);
  return { host: url.hostname, port: Number(url.port) || defaultPort };
}

/** Reuses NATS and Cassandra when they answer, else starts them (local addresses only). */
export async function ensureServers(o: ServerOptions): Promise<LocalStack | undefined> {
  const nats = hostPort(o.natsUrl, 4222);
  const cass = hostPort(o.cassandra, 9042);
  if (!LOCAL_HOSTS.has(nats.host) || !LOCAL_HOSTS.has(cass.host)) return undefined;
  return ensureLocalStack({
    natsPort: nats.port,
    cassandraPort: cass.port,
    cassandraStoragePort: cass.port - CASSANDRA_STORAGE_PORT_OFFSET,
    cassandraJmxPort: cass.port - CASSANDRA_STORAGE_PORT_OFFSET + CASSANDRA_JMX_OFFSET,
    say: o.say,
  });
}

/** Broker processes are the CLI's node processes under `roots` (not a nats-server or Cassandra they started). */
function brokerTree(roots: readonly number[]): number[] {
  return [...new Set(processTree(roots))].filter((pid) => /\/cli\.js\b/.test(commandLine(pid)));
}

function workDir(): { dir: string; probeDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  const probeDir = join(dir, 'probe');
  mkdirSync(probeDir);
  return { dir, probeDir };
}

function brokerEnv(o: ServerOptions, probeDir: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
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

interface ServeReady {
  node: string;
  port: number;
  workers: { id: string; pid: number }[];
}

export async function startNodeTarget(
  o: ServerOptions & { workers: number; env?: NodeJS.ProcessEnv },
): Promise<BrokerTarget> {
  const stack = await ensureServers(o);
  const { dir, probeDir } = workDir();
  const logFile = join(dir, 'broker.log');
  o.say(`starting a node: ${o.workers} worker(s), keyspace ${o.keyspace}, log ${logFile}`);
  let node: CliProcess<ServeReady>;
  try {
    node = await startCli<ServeReady>(
      ['serve', '--workers', String(o.workers), '--port', '0'],
      brokerEnv(o, probeDir, o.env ?? {}),
      logFile,
      NODE_READY_TIMEOUT_MS,
    );
  } catch (err) {
    await stack?.stop();
    throw err;
  }
  const { port } = node.ready;
  const natsPids = pidsListeningOn(hostPort(o.natsUrl, 4222).port);
  const cassandraPids = pidsListeningOn(hostPort(o.cassandra, 9042).port);
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
    brokerPids: () => brokerTree([node.pid]),
    natsPids: () => natsPids,
    cassandraPids: () => cassandraPids,
    async stop() {
      await node.stop();
      await stack?.stop();
      rmSync(probeDir, { recursive: true, force: true });
    },
  };
}

interface ClusterReady {
  nats: string[];
  cassandra: string;
  nodes: ServeReady[];
}

/** `switchboard cluster up`: a 3-server NATS cluster, the local Cassandra (19042) and `nodes` nodes. */
export async function startClusterTarget(o: {
  nodes: number;
  workers: number;
  basePort: number;
  keyspace: string;
  say(line: string): void;
}): Promise<BrokerTarget> {
  const { dir, probeDir } = workDir();
  const logFile = join(dir, 'cluster.log');
  o.say(`starting a ${o.nodes}-node cluster (${o.workers} worker(s) each) on ports ${o.basePort}+, log ${logFile}`);
  const env = brokerEnv(
    { natsUrl: '', cassandra: '', keyspace: o.keyspace, say: o.say },
    probeDir,
    {},
  );
  // `cluster up` sets SB_NATS_URL / SB_CASSANDRA itself; empty values must not reach it.
  delete env['SB_NATS_URL'];
  delete env['SB_CASSANDRA'];
  const cluster = await startCli<ClusterReady>(
    ['cluster', 'up', '--nodes', String(o.nodes), '--workers', String(o.workers), '--base-port', String(o.basePort)],
    env,
    logFile,
    CLUSTER_READY_TIMEOUT_MS,
  );
  const natsPids = cluster.ready.nats.flatMap((u) => pidsListeningOn(hostPort(u, 4222).port));
  const cassandraPids = pidsListeningOn(hostPort(cluster.ready.cassandra, 9042).port);
  return {
    description: `started cluster (cluster up --nodes ${o.nodes} --workers ${o.workers})`,
    nodes: cluster.ready.nodes.map((n) => ({
      nodeId: n.node,
      port: n.port,
      wsBase: `ws://127.0.0.1:${n.port}`,
      httpBase: `http://127.0.0.1:${n.port}`,
      workers: n.workers.length,
    })),
    jwtSecret: BENCH_JWT_SECRET,
    probeDir,
    logFile,
    // The `cluster up` process hosts the supervisors; its nats-server children are not broker processes.
    brokerPids: () => brokerTree([cluster.pid]),
    natsPids: () => natsPids,
    cassandraPids: () => cassandraPids,
    async stop() {
      await cluster.stop();
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
  const listeners = LOCAL_HOSTS.has(url.hostname) ? pidsListeningOn(port) : [];
  // The supervisor holds no listening socket; it is the workers' parent (when there is one).
  const parents = listeners
    .map((pid) => readProcStat(pid)?.ppid)
    .filter((pid): pid is number => pid !== undefined && /\/cli\.js\b/.test(commandLine(pid)));
  const roots = [...new Set([...parents, ...listeners])];
  const natsPids = pidsListeningOn(hostPort(o.natsUrl, 4222).port);
  const cassandraPids = pidsListeningOn(hostPort(o.cassandra, 9042).port);
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
