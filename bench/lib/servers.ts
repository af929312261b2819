/**
 * The servers a started node needs. Cassandra is reused when it answers (else started, as `switchboard
 * start` does); the keyspace keeps the bench's rows apart. NATS is by default a private nats-server per run:
 * every node on one NATS joins one cluster (the membership and shard buckets are not scoped by keyspace),
 * so a bench node on a shared NATS would share its shards — and its load — with whatever else runs there.
 */
import { join } from 'node:path';
import { findProjectRoot } from '../../src/stack/cassandra.js';
import { ensureLocalStack, type LocalStack } from '../../src/stack/local-stack.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { pidsListeningOn } from './proc.js';

/** `--nats private`: a nats-server of the run's own (JetStream on, temporary data), stopped at the end. */
export const PRIVATE_NATS = 'private';
/** The CLI and test runner put Cassandra's storage port 2042 below its CQL port and JMX 199 above that. */
const CASSANDRA_STORAGE_PORT_OFFSET = 2042;
const CASSANDRA_JMX_OFFSET = 199;
/** The CQL port `switchboard start` uses (src/cli.ts), whose data lives in .stack/local. */
const LOCAL_CASSANDRA_PORT = 19042;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost']);
/** A node is loaded only once this many /readyz answers in a row say ready with every shard owned. */
const READY_STREAK = 5;
const READY_POLL_MS = 250;
const READY_WAIT_MS = 60_000;
const SHARDS = 1024;

export interface ServerOptions {
  /** A NATS URL, or PRIVATE_NATS. */
  natsUrl: string;
  cassandra: string;
  say(line: string): void;
}

export interface Servers {
  natsUrl: string;
  cassandra: string;
  natsPids(): number[];
  cassandraPids(): number[];
  /** Stops what this call started (nothing that was already running). */
  stop(): Promise<void>;
}

export function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host);
}

export function hostPort(spec: string, defaultPort: number): { host: string; port: number } {
  const url = spec.includes('://') ? new URL(spec) : new URL(`tcp://${spec}`);
  return { host: url.hostname, port: Number(url.port) || defaultPort };
}

export async function ensureServers(o: ServerOptions): Promise<Servers> {
  let privateNats: NatsServerHandle | undefined;
  let natsUrl = o.natsUrl;
  if (natsUrl === PRIVATE_NATS) {
    privateNats = await startNatsServer({ jetstream: true });
    natsUrl = privateNats.url;
    o.say(`started a private nats-server at ${natsUrl} (pass --nats <url> to use a shared one)`);
  }
  const nats = hostPort(natsUrl, 4222);
  const cass = hostPort(o.cassandra, 9042);
  let stack: LocalStack | undefined;
  try {
    if (isLocalHost(nats.host) && isLocalHost(cass.host)) {
      stack = await ensureLocalStack({
        natsPort: nats.port,
        cassandraPort: cass.port,
        cassandraStoragePort: cass.port - CASSANDRA_STORAGE_PORT_OFFSET,
        cassandraJmxPort: cass.port - CASSANDRA_STORAGE_PORT_OFFSET + CASSANDRA_JMX_OFFSET,
        // The CLI's own ports keep the CLI's data folder; other ports (tests) get a folder of their own.
        ...(cass.port === LOCAL_CASSANDRA_PORT
          ? {}
          : { dataRoot: join(findProjectRoot(), '.stack', `bench-${cass.port}`) }),
        say: o.say,
      });
    }
  } catch (err) {
    await privateNats?.stop();
    throw err;
  }
  const natsPids = privateNats ? [privateNats.pid] : pidsListeningOn(nats.port);
  const cassandraPids = pidsListeningOn(cass.port);
  return {
    natsUrl,
    cassandra: o.cassandra,
    natsPids: () => natsPids,
    cassandraPids: () => cassandraPids,
    async stop() {
      await stack?.stop();
      await privateNats?.stop();
    },
  };
}

/**
 * Waits until the node answers /readyz with 200 and (when it says) all shards owned, several times in a
 * row — each request may land on another worker. The load would otherwise meet `unavailable` answers
 * from a cluster still placing its shards. Resolves false (the run goes on) after the timeout.
 */
export async function waitReady(httpBase: string, timeoutMs = READY_WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${httpBase}/readyz`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { shardsOwned?: number };
      streak = res.ok && (body.shardsOwned === undefined || body.shardsOwned >= SHARDS) ? streak + 1 : 0;
    } catch {
      streak = 0;
    }
    if (streak >= READY_STREAK) return true;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  return false;
}
