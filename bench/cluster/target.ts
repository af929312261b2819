/**
 * The cluster scenario's target: `switchboard cluster up` (a 3-server NATS cluster, the local Cassandra on
 * 19042 and N supervised nodes), started as one child that prints a JSON ready line.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startCli } from '../lib/cli-process.js';
import { connectedPorts, pidsListeningOn } from '../lib/proc.js';
import { hostPort, waitReady } from '../lib/servers.js';
import {
  BENCH_JWT_SECRET,
  type BrokerTarget,
  brokerEnv,
  brokerTree,
  type ServeReady,
  workDir,
} from '../lib/target.js';

const CLUSTER_READY_TIMEOUT_MS = 240_000;

/** Which NATS server each node's workers are connected to (nats.js picks one of the list at random). */
export interface NatsPlacement {
  node: string;
  /** 1-based indexes into the cluster's NATS servers, one per worker connection found. */
  servers: number[];
}

export interface ClusterTarget extends BrokerTarget {
  natsPlacement(): NatsPlacement[];
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
}): Promise<ClusterTarget> {
  const { dir, probeDir } = workDir();
  const logFile = join(dir, 'cluster.log');
  o.say(
    `starting a ${o.nodes}-node cluster (${o.workers} worker(s) each) on ports ${o.basePort}+, log ${logFile}`,
  );
  const env = brokerEnv({ natsUrl: '', cassandra: '', keyspace: o.keyspace }, probeDir, {});
  // `cluster up` sets SB_NATS_URL / SB_CASSANDRA itself; empty values must not reach it.
  delete env['SB_NATS_URL'];
  delete env['SB_CASSANDRA'];
  const cluster = await startCli<ClusterReady>(
    [
      'cluster',
      'up',
      '--nodes',
      String(o.nodes),
      '--workers',
      String(o.workers),
      '--base-port',
      String(o.basePort),
    ],
    env,
    logFile,
    CLUSTER_READY_TIMEOUT_MS,
  );
  for (const n of cluster.ready.nodes) {
    if (!(await waitReady(`http://127.0.0.1:${n.port}`)))
      o.say(`warning: node ${n.node} did not report ready in time`);
  }
  const natsPids = cluster.ready.nats.flatMap((u) => pidsListeningOn(hostPort(u, 4222).port));
  const cassandraPids = pidsListeningOn(hostPort(cluster.ready.cassandra, 9042).port);
  const natsPorts = cluster.ready.nats.map((u) => hostPort(u, 4222).port);
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
    // Member traffic between nodes on different servers crosses a NATS route: both servers handle it.
    natsPlacement: () =>
      cluster.ready.nodes.map((n) => ({
        node: n.node,
        servers: n.workers.flatMap((w) =>
          connectedPorts([w.pid])
            .map((port) => natsPorts.indexOf(port) + 1)
            .filter((i) => i > 0),
        ),
      })),
    async stop() {
      await cluster.stop();
      rmSync(probeDir, { recursive: true, force: true });
    },
  };
}
