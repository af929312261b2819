/**
 * A whole Switchboard cluster on one machine (`switchboard cluster up`): a 3-server NATS cluster with routes
 * and JetStream, a Cassandra (the local one on its port is reused when it answers), and N broker nodes, each
 * a supervisor with W workers, on ports base, base+1, ...; every worker connects to all NATS servers.
 * stop() takes it down in order: nodes first (they drain while NATS and Cassandra still serve), then NATS,
 * then Cassandra if this call started it.
 */
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { type StopSummary, type Supervisor, startSupervisor } from '../supervisor.js';
import { type CassandraHandle, findProjectRoot, startCassandra } from './cassandra.js';
import { type NatsClusterHandle, startNatsCluster } from './nats-server.js';
import { isTcpReachable } from './process.js';

export const LOCAL_CLUSTER_NATS_SERVERS = 3;
export { DEFAULT_CLUSTER_BASE_PORT, DEFAULT_CLUSTER_WORKERS } from './cluster-defaults.js';

const CASSANDRA_PROBE_TIMEOUT_MS = 500;

export interface LocalClusterOptions {
  /** Broker nodes (supervisors). */
  nodes: number;
  /** Workers per node. */
  workers: number;
  /** Node i (0-based) listens on basePort + i. */
  basePort: number;
  /** The local Cassandra's ports: reused when something answers on cassandraPort, else started there. */
  cassandraPort: number;
  cassandraStoragePort: number;
  cassandraJmxPort: number;
  /** Default `<project>/.stack`: NATS data in `cluster/nats`, a started Cassandra's in `local/cassandra`. */
  dataRoot?: string;
  /** The environment the workers start from (SB_NATS_URL and SB_CASSANDRA are set over it). */
  env: NodeJS.ProcessEnv;
  /** Listen host of the nodes (SB_HOST). */
  host: string;
  log: Logger;
  /** Progress lines (e.g. console.log). */
  say?: (line: string) => void;
}

export interface LocalCluster {
  readonly natsUrls: readonly string[];
  /** NATS monitoring URLs, in server order. */
  readonly natsMonitorUrls: readonly string[];
  readonly cassandraContactPoint: string;
  /** True when this call started Cassandra (and stop() will stop it). */
  readonly startedCassandra: boolean;
  readonly nodes: readonly Supervisor[];
  /** Nodes, then NATS, then a Cassandra this call started; resolves when all are down. Idempotent. */
  stop(): Promise<{ nodes: StopSummary[] }>;
}

/**
 * Starts everything and resolves once every node's workers are ready. Rejects, after stopping what it had
 * started, when a server or a node cannot start (for example a node port already in use).
 */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1) throw new Error('nodes must be a positive integer');
  if (!Number.isInteger(opts.basePort) || opts.basePort < 1 || opts.basePort + opts.nodes - 1 > 65535) {
    throw new Error('basePort must leave room for one port per node within 1-65535');
  }
  const say = opts.say ?? (() => {});
  const root = opts.dataRoot ?? join(findProjectRoot(), '.stack');
  const contactPoint = `127.0.0.1:${opts.cassandraPort}`;
  let nats: NatsClusterHandle | undefined;
  let cassandra: CassandraHandle | undefined;
  const nodes: Supervisor[] = [];
  let natsUrls: string[] = [];
  let natsMonitorUrls: string[] = [];

  const stopAll = async (): Promise<{ nodes: StopSummary[] }> => {
    const summaries = await Promise.all(nodes.map((n) => n.stop()));
    await nats?.stop();
    await cassandra?.stop();
    return { nodes: summaries };
  };

  try {
    const natsDir = join(root, 'cluster', 'nats');
    say(`starting ${LOCAL_CLUSTER_NATS_SERVERS} nats-servers with routes and JetStream (data in ${natsDir})`);
    const natsStarting = startNatsCluster(LOCAL_CLUSTER_NATS_SERVERS, {
      dataDir: natsDir,
      clusterName: 'sb-local-cluster',
    });
    // Cassandra may need a minute; it starts while the NATS cluster forms.
    const cassandraStarting = (async () => {
      if (await isTcpReachable('127.0.0.1', opts.cassandraPort, CASSANDRA_PROBE_TIMEOUT_MS)) {
        say(`Cassandra already running on ${contactPoint}`);
        return undefined;
      }
      const dataDir = join(root, 'local', 'cassandra');
      say(`starting Cassandra on ${contactPoint} (data in ${dataDir}), ~10-60 s`);
      return startCassandra({
        nativePort: opts.cassandraPort,
        storagePort: opts.cassandraStoragePort,
        jmxPort: opts.cassandraJmxPort,
        dataDir,
      });
    })();
    const [natsResult, cassandraResult] = await Promise.allSettled([natsStarting, cassandraStarting]);
    if (natsResult.status === 'fulfilled') nats = natsResult.value;
    if (cassandraResult.status === 'fulfilled') cassandra = cassandraResult.value;
    if (natsResult.status === 'rejected') throw natsResult.reason;
    if (cassandraResult.status === 'rejected') throw cassandraResult.reason;
    natsUrls = nats!.urls;
    natsMonitorUrls = nats!.servers.map((s) => `http://127.0.0.1:${s.httpPort}`);
    say(`NATS cluster formed: ${natsUrls.join(' ')}`);

    const env: NodeJS.ProcessEnv = {
      ...opts.env,
      SB_NATS_URL: natsUrls.join(','),
      // Every bucket and stream on all three servers: losing any one keeps the cluster acking.
      SB_NATS_REPLICAS: String(LOCAL_CLUSTER_NATS_SERVERS),
      SB_CASSANDRA: contactPoint,
    };
    const startNode = (i: number): Promise<Supervisor> =>
      startSupervisor(
        { nodeId: `n${i + 1}`, workers: opts.workers, port: opts.basePort + i, host: opts.host, env },
        opts.log.child({ node: `n${i + 1}` }),
      ).then((s) => {
        nodes.push(s);
        say(`node n${i + 1} ready on ${opts.host}:${s.port} (${opts.workers} worker(s))`);
        return s;
      });
    // The first node alone creates the schema of a fresh keyspace; the others then start together.
    await startNode(0);
    const rest = await Promise.allSettled(Array.from({ length: opts.nodes - 1 }, (_, i) => startNode(i + 1)));
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (err) {
    await stopAll();
    throw err;
  }

  nodes.sort((a, b) => a.port - b.port);
  let stopping: Promise<{ nodes: StopSummary[] }> | undefined;
  return {
    natsUrls,
    natsMonitorUrls,
    cassandraContactPoint: contactPoint,
    startedCassandra: cassandra !== undefined,
    nodes,
    stop: () => {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
