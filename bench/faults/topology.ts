/**
 * The processes of a fault run, all on this machine and all started here: a 3-server NATS cluster with
 * JetStream on the bridge's NATS address, one Cassandra on the bridge's Cassandra address (never a shared
 * one: the run pauses it), and one broker member (`switchboard node`, one process) in each broker's
 * network namespace. Each can be killed, paused and restarted by the schedule.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type CassandraHandle, findProjectRoot, startCassandra } from '../../src/stack/cassandra.js';
import { NATS_HOST, type NatsClusterHandle, startNatsCluster } from '../../src/stack/nats-server.js';
import { findFreePort } from '../../src/stack/process.js';
import { waitReady } from '../lib/servers.js';
import { CASSANDRA_ADDRESS, type Host, inNamespace, NATS_ADDRESS } from './netns.js';

export const FAULTS_JWT_SECRET = 'switchboard-faults-secret-0123456789abcdefgh';
export const FAULTS_ADMIN_TOKEN = 'switchboard-faults-admin-token-0123456789';
/** Every broker listens on this port in its own namespace (each namespace has its own port space). */
export const BROKER_PORT = 8080;
const CASSANDRA_NATIVE_PORT = 9042;
const CASSANDRA_STORAGE_PORT = 7000;
const CASSANDRA_HEAP_MB = 768;
const BROKER_READY_TIMEOUT_MS = 60_000;
const BROKER_STOP_GRACE_MS = 15_000;

export interface BrokerNode {
  readonly nodeId: string;
  readonly host: Host;
  readonly wsBase: string;
  readonly httpBase: string;
  /** Pid of the current process; undefined while it is down. */
  pid(): number | undefined;
  isRunning(): boolean;
  signal(sig: NodeJS.Signals): void;
  /** Starts the process (again); resolves at its ready line. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after a grace period); resolves when it exited. */
  stop(): Promise<void>;
  /** Waits for the process to exit (after a SIGKILL). */
  exited(): Promise<void>;
  readonly logFile: string;
}

export interface BrokerSettings {
  keyspace: string;
  cluster: string;
  natsUrls: readonly string[];
  cassandra: string;
  leaseTtlMs: number | undefined;
  /** SB_NATS_REPLICAS: copies of every KV bucket and stream (3 on this 3-server cluster, as `cluster up`). */
  natsReplicas: number;
  logDir: string;
  /** The `switchboard` CLI the brokers run (default: this build's dist/src/cli.js). */
  cli: string;
}

function brokerEnv(nodeId: string, host: Host, s: BrokerSettings): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SB_NODE_ID: nodeId,
    SB_HOST: host.address,
    SB_PORT: String(BROKER_PORT),
    SB_NATS_URL: s.natsUrls.join(','),
    SB_CASSANDRA: s.cassandra,
    SB_KEYSPACE: s.keyspace,
    SB_CLUSTER: s.cluster,
    SB_JWT_SECRET: FAULTS_JWT_SECRET,
    SB_ADMIN_TOKEN: FAULTS_ADMIN_TOKEN,
    SB_LOG_LEVEL: process.env['SB_LOG_LEVEL'] ?? 'warn',
    SB_NATS_REPLICAS: String(s.natsReplicas),
    ...(s.leaseTtlMs === undefined ? {} : { SB_LEASE_TTL_MS: String(s.leaseTtlMs) }),
  };
}

/** A broker member in `host`'s namespace; not started until start(). */
export function brokerNode(nodeId: string, host: Host, s: BrokerSettings): BrokerNode {
  const logFile = join(s.logDir, `${nodeId}.log`);
  let child: ChildProcess | undefined;
  let exit: Promise<void> = Promise.resolve();
  let running = false;
  const start = async (): Promise<void> => {
    if (running) throw new Error(`broker ${nodeId} is already running`);
    const fd = openSync(logFile, 'a');
    const [cmd, args] = inNamespace(host, process.execPath, [s.cli, 'node']);
    // `ip netns exec` execs the command, so the child's pid is the broker's own: signals reach it.
    const c = spawn(cmd, args, { env: brokerEnv(nodeId, host, s), stdio: ['ignore', 'pipe', fd] });
    closeSync(fd);
    child = c;
    running = true;
    exit = new Promise<void>((resolve) =>
      c.once('exit', () => {
        running = false;
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.kill('SIGKILL');
        reject(new Error(`broker ${nodeId} not ready in ${BROKER_READY_TIMEOUT_MS} ms (log ${logFile})`));
      }, BROKER_READY_TIMEOUT_MS);
      createInterface({ input: c.stdout! }).on('line', (line) => {
        if (line.startsWith('{') && line.includes('"ready":true')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exit.then(() => {
        clearTimeout(timer);
        reject(new Error(`broker ${nodeId} exited before ready:\n${tail(logFile)}`));
      });
    });
    // After the ready line nobody reads stdout: keep draining it so a write never blocks.
    c.stdout?.resume();
  };
  return {
    nodeId,
    host,
    wsBase: `ws://${host.address}:${BROKER_PORT}`,
    httpBase: `http://${host.address}:${BROKER_PORT}`,
    logFile,
    pid: () => (running ? child?.pid : undefined),
    isRunning: () => running,
    signal(sig) {
      if (running) child?.kill(sig);
    },
    start,
    async stop() {
      if (!running) return;
      child?.kill('SIGCONT');
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), BROKER_STOP_GRACE_MS);
      await exit;
      clearTimeout(timer);
    },
    exited: () => exit,
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '';
  }
}

export interface Servers {
  readonly nats: NatsClusterHandle;
  readonly cassandra: CassandraHandle;
  /** Monitoring URL of each nats-server (127.0.0.1), in server order. */
  readonly natsMonitorUrls: readonly string[];
  stop(): Promise<void>;
}

/**
 * Starts the NATS cluster and a fresh Cassandra (data under `<project>/.stack/faults`, wiped first) in
 * parallel. Rejects, after stopping what started, when either fails.
 */
export async function startServers(workDir: string, say: (line: string) => void): Promise<Servers> {
  const cassandraDir = join(findProjectRoot(), '.stack', 'faults', 'cassandra');
  rmSync(cassandraDir, { recursive: true, force: true });
  mkdirSync(cassandraDir, { recursive: true });
  const jmxPort = await findFreePort(NATS_HOST);
  say(`starting 3 nats-servers on ${NATS_ADDRESS} and Cassandra on ${CASSANDRA_ADDRESS} (~30-60 s)`);
  const [nats, cassandra] = await Promise.allSettled([
    startNatsCluster(3, { host: NATS_ADDRESS, dataDir: join(workDir, 'nats'), clusterName: 'sbf' }),
    startCassandra({
      host: CASSANDRA_ADDRESS,
      nativePort: CASSANDRA_NATIVE_PORT,
      storagePort: CASSANDRA_STORAGE_PORT,
      jmxPort,
      dataDir: cassandraDir,
      heapMb: CASSANDRA_HEAP_MB,
    }),
  ]);
  if (nats.status === 'rejected' || cassandra.status === 'rejected') {
    await Promise.allSettled([
      nats.status === 'fulfilled' ? nats.value.stop() : undefined,
      cassandra.status === 'fulfilled' ? cassandra.value.stop() : undefined,
    ]);
    throw nats.status === 'rejected' ? nats.reason : (cassandra as PromiseRejectedResult).reason;
  }
  const n = nats.value;
  const c = cassandra.value;
  return {
    nats: n,
    cassandra: c,
    natsMonitorUrls: n.servers.map((s) => `http://${NATS_HOST}:${s.httpPort}`),
    async stop() {
      for (const s of n.servers) s.signal('SIGCONT');
      c.signal('SIGCONT');
      await Promise.allSettled([n.stop(), c.stop()]);
    },
  };
}

/** Waits until the broker answers /readyz with every shard owned (several times in a row). */
export function brokerReady(b: BrokerNode, timeoutMs: number): Promise<boolean> {
  return waitReady(b.httpBase, timeoutMs);
}

export interface JetStreamPlacement {
  /** Server name of the JetStream meta leader, as one server reports it. */
  metaLeader: string | undefined;
  /** Stream (KV buckets are streams `KV_<bucket>`) → server name of its leader. */
  streamLeaders: Record<string, string>;
  /** Stream → its replica count. */
  replicas: Record<string, number>;
}

interface Jsz {
  meta_cluster?: { leader?: string };
  account_details?: {
    stream_detail?: { name: string; config?: { num_replicas?: number }; cluster?: { leader?: string } }[];
  }[];
}

/** Where JetStream's leaders are now, merged from every server's monitoring endpoint (each lists what it hosts). */
export async function jetStreamPlacement(monitorUrls: readonly string[]): Promise<JetStreamPlacement> {
  const out: JetStreamPlacement = { metaLeader: undefined, streamLeaders: {}, replicas: {} };
  for (const url of monitorUrls) {
    try {
      const res = await fetch(`${url}/jsz?accounts=true&streams=true&config=true`, {
        signal: AbortSignal.timeout(1500),
      });
      if (!res.ok) continue;
      const jsz = (await res.json()) as Jsz;
      out.metaLeader ??= jsz.meta_cluster?.leader || undefined;
      for (const acc of jsz.account_details ?? []) {
        for (const s of acc.stream_detail ?? []) {
          if (s.cluster?.leader) out.streamLeaders[s.name] = s.cluster.leader;
          out.replicas[s.name] = s.config?.num_replicas ?? 1;
        }
      }
    } catch {
      // That server is down or paused: the others report what they host.
    }
  }
  return out;
}
