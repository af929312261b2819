#!/usr/bin/env node
/**
 * The `switchboard` command line: `start` (local stack + one supervised node), `serve` (one node =
 * supervisor + workers against running servers), `cluster up` (NATS cluster, Cassandra and N nodes on one
 * machine), `node` (one worker process: a single cluster member, configured by SB_* variables), `dev-token`
 * (a signed token for local use). Servers are configured by SB_* variables, read in config.ts only.
 */
import { createWriteStream } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { configFromEnv, DEFAULT_HTTP_PORT, type NodeConfig, parseConfig } from './config.js';
import type { TokenRole } from './gateway/auth.js';
import { createLogger } from './log.js';
import { DEFAULT_CLUSTER_BASE_PORT, DEFAULT_CLUSTER_WORKERS } from './stack/cluster-defaults.js';
import { defaultNodeId, type StopSummary, type Supervisor, startSupervisor, workerId } from './supervisor.js';
import { defaultWorkerCount } from './supervisor-options.js';

export const LOCAL_NATS_PORT = 14222;
export const LOCAL_CASSANDRA_PORT = 19042;
export const LOCAL_CASSANDRA_STORAGE_PORT = 17000;
export const LOCAL_CASSANDRA_JMX_PORT = 17199;
/** Exit code after a second Ctrl-C (no drain), as shells report SIGINT. */
const EXIT_INTERRUPTED = 130;

// Captured before any await: a worker spawned by a supervisor has an IPC channel, and the channel's end
// means the supervisor died (even by SIGKILL); the worker then drains itself instead of living on.
const supervised = typeof process.send === 'function';

function intOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function onOffOption(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError('must be on or off');
}

function positiveIntOption(value: string): number {
  const n = intOption(value);
  if (n === 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/**
 * On the first SIGINT/SIGTERM (or a call of the returned function) runs `stop` and exits with the code it
 * resolves (0 when none); a second signal exits at once. Further calls of the returned function are ignored.
 */
function stopOnSignals(stop: () => Promise<unknown>): (reason: string) => void {
  let stopping = false;
  const begin = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${reason}: stopping…`);
    stop().then(
      (code) => process.exit(typeof code === 'number' ? code : 0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) process.exit(EXIT_INTERRUPTED);
    begin(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return begin;
}

const exitCodeOf = (summaries: readonly StopSummary[]): number => (summaries.every((s) => s.clean) ? 0 : 1);

/** Validates the configuration the workers will read, once, so a bad SB_* fails here and not in N workers. */
function workerConfig(nodeId: string, port: number): Readonly<NodeConfig> {
  const env = configFromEnv();
  return parseConfig({ ...env, nodeId: workerId(nodeId, 0), http: { ...env.http, port } });
}

function readyLine(sup: Supervisor): Record<string, unknown> {
  return {
    node: sup.nodeId,
    port: sup.port,
    workers: sup.workers().map(({ id, pid, port }) => ({ id, pid, port })),
  };
}

/** Exits 1 when every worker of `sup` was given up: better a restart by the service manager than a dead node. */
function exitWhenAllFailed(sup: Supervisor): void {
  void sup.done.then((r) => {
    if (r === 'failed') process.exit(1);
  });
}

function printAddresses(host: string, port: number): void {
  const base = `${host}:${port}`;
  console.log(`visitor socket  ws://${base}/ws/visitor   (subprotocol switchboard.v1.json or .msgpack)`);
  console.log(`agent socket    ws://${base}/ws/agent`);
  console.log(`history API     http://${base}/api/v1/conversations/<conv>/messages`);
  console.log(`health          http://${base}/healthz  http://${base}/readyz`);
  console.log(`agent console   http://${base}/console   widget http://${base}/widget.js (docs/WIDGET.md)`);
}

/** The node id and worker config of `start` / `serve`: --port wins over SB_PORT. */
function nodeSettings(port: number | undefined) {
  const env = configFromEnv();
  const nodeId = env.nodeId ?? defaultNodeId();
  return { env, nodeId, config: workerConfig(nodeId, port ?? env.http?.port ?? DEFAULT_HTTP_PORT) };
}

const program = new Command('switchboard').description('Switchboard chat broker');
const portHelp = `shared HTTP/WebSocket port (default: SB_PORT, else ${DEFAULT_HTTP_PORT}; 0 = any free port)`;
const workersHelp =
  'worker processes sharing the port; by default one per available CPU but one (at least one)';

program
  .command('start')
  .description('start nats-server and Cassandra (when not running) and one node (supervisor + workers)')
  .option('-p, --port <port>', portHelp, intOption)
  .option('-w, --workers <n>', workersHelp, positiveIntOption, defaultWorkerCount())
  .action(async (opts: { port?: number; workers: number }) => {
    const { env, nodeId, config } = nodeSettings(opts.port);
    const { ensureLocalStack } = await import('./stack/local-stack.js');
    const stack = await ensureLocalStack({
      natsPort: LOCAL_NATS_PORT,
      cassandraPort: LOCAL_CASSANDRA_PORT,
      cassandraStoragePort: LOCAL_CASSANDRA_STORAGE_PORT,
      cassandraJmxPort: LOCAL_CASSANDRA_JMX_PORT,
      say: (l) => console.log(`stack: ${l}`),
    });
    const natsServers = env.nats?.servers ?? [stack.natsUrl];
    const contactPoints = env.cassandra?.contactPoints ?? [stack.cassandraContactPoint];
    let sup: Supervisor;
    try {
      sup = await startSupervisor(
        {
          nodeId,
          workers: opts.workers,
          port: config.http.port,
          host: config.http.host,
          env: { ...process.env, SB_NATS_URL: natsServers.join(','), SB_CASSANDRA: contactPoints.join(',') },
        },
        createLogger({ logLevel: config.logLevel, nodeId }),
      );
    } catch (err) {
      await stack.stop();
      throw err;
    }
    if (config.auth.devSecret) console.log('warning: SB_JWT_SECRET is unset, using the development secret');
    printAddresses(config.http.host, sup.port);
    if (config.auth.devTokens) {
      console.log(
        `demo shop       http://${config.http.host}:${sup.port}/demo   (development mode: demo tokens)`,
      );
    }
    console.log(`NATS            ${natsServers.join(',')}   Cassandra ${contactPoints.join(',')}`);
    console.log('tokens          npm run dev-token -- --tenant acme --sub alice --role visitor');
    const ids = sup.workers().map((w) => `${w.id} (pid ${w.pid})`);
    console.log(`workers         ${ids.join(', ')}`);
    console.log(`switchboard ready: node ${nodeId} on ${config.http.host}:${sup.port} (Ctrl-C to stop)`);
    exitWhenAllFailed(sup);
    stopOnSignals(async () => {
      const summary = await sup.stop();
      await stack.stop();
      return exitCodeOf([summary]);
    });
  });

interface ServeOptions {
  port?: number;
  workers: number;
  shardOwners?: number;
  semiSpaceMb?: number;
  v8PoolSize?: number;
  heapGrowingPercent?: number;
  pretenuring?: boolean;
}

program
  .command('serve')
  .description('run one node (supervisor + workers) against running NATS and Cassandra (SB_* variables)')
  .option('-p, --port <port>', portHelp, intOption)
  .option('-w, --workers <n>', workersHelp, positiveIntOption, defaultWorkerCount())
  .option(
    '--shard-owners <n>',
    'workers that own conversation shards, the first n (the rest hold sockets only; default: SB_SHARD_OWNERS, else the workers, at most the CPUs but one)',
    positiveIntOption,
  )
  .option(
    '--semi-space-mb <n>',
    "each worker's V8 semi-space, MiB (0 = V8's default; default 2 with more than 2 workers, else 0)",
    intOption,
  )
  .option(
    '--v8-pool-size <n>',
    "each worker's V8 helper threads (GC marking and sweeping; 0 = Node's 4; default: the CPUs per worker but one, 1 to 4)",
    intOption,
  )
  .option(
    '--heap-growing-percent <n>',
    "each worker's V8 old-generation growth before a major GC (0 = V8's own; default 300 with at most 2 workers, else 0)",
    intOption,
  )
  .option(
    '--pretenuring <on|off>',
    "V8's allocation-site pretenuring in each worker (default off with at most 2 workers, else on)",
    onOffOption,
  )
  .action(async (opts: ServeOptions) => {
    const { nodeId, config } = nodeSettings(opts.port);
    const sup = await startSupervisor(
      {
        nodeId,
        workers: opts.workers,
        ...(opts.shardOwners === undefined ? {} : { shardOwners: opts.shardOwners }),
        port: config.http.port,
        host: config.http.host,
        env: process.env,
        ...(opts.semiSpaceMb === undefined ? {} : { semiSpaceMb: opts.semiSpaceMb }),
        ...(opts.v8PoolSize === undefined ? {} : { v8PoolSize: opts.v8PoolSize }),
        ...(opts.heapGrowingPercent === undefined ? {} : { heapGrowingPercent: opts.heapGrowingPercent }),
        ...(opts.pretenuring === undefined ? {} : { pretenuring: opts.pretenuring }),
      },
      createLogger({ logLevel: config.logLevel, nodeId }),
    );
    // One line on stdout that service managers and tests wait for.
    console.log(JSON.stringify({ ready: true, ...readyLine(sup) }));
    exitWhenAllFailed(sup);
    stopOnSignals(async () => exitCodeOf([await sup.stop()]));
  });

program
  .command('cluster')
  .description('a local multi-node cluster')
  .command('up')
  .description('start a 3-server NATS cluster, Cassandra (unless running) and N nodes; Ctrl-C stops all')
  .option('-n, --nodes <n>', 'broker nodes', positiveIntOption, 3)
  .option('-w, --workers <n>', 'worker processes per node', positiveIntOption, DEFAULT_CLUSTER_WORKERS)
  .option(
    '--base-port <port>',
    'port of the first node; node i listens on base+i',
    positiveIntOption,
    DEFAULT_CLUSTER_BASE_PORT,
  )
  .action(async (opts: { nodes: number; workers: number; basePort: number }) => {
    const config = workerConfig('n1', opts.basePort);
    const log = createLogger({ logLevel: config.logLevel });
    const { startLocalCluster } = await import('./stack/local-cluster.js');
    const cluster = await startLocalCluster({
      nodes: opts.nodes,
      workers: opts.workers,
      basePort: opts.basePort,
      cassandraPort: LOCAL_CASSANDRA_PORT,
      cassandraStoragePort: LOCAL_CASSANDRA_STORAGE_PORT,
      cassandraJmxPort: LOCAL_CASSANDRA_JMX_PORT,
      env: process.env,
      host: config.http.host,
      log,
      say: (l) => console.log(`cluster: ${l}`),
    });
    if (config.auth.devSecret) console.log('warning: SB_JWT_SECRET is unset, using the development secret');
    cluster.natsUrls.forEach((url, i) => {
      console.log(`NATS ${i + 1}          ${url}   (monitoring ${cluster.natsMonitorUrls[i]})`);
    });
    const cassandraNote = cluster.startedCassandra ? 'started' : 'already running';
    console.log(
      `Cassandra       ${cluster.cassandraContactPoint} (${cassandraNote}), keyspace ${config.cassandra.keyspace}`,
    );
    for (const node of cluster.nodes) {
      const base = `${config.http.host}:${node.port}`;
      const ids = node.workers().map((w) => `${w.id} (pid ${w.pid})`);
      console.log(
        `node ${node.nodeId.padEnd(10)} ws://${base}/ws/{visitor,agent}  http://${base}  ${ids.join(', ')}`,
      );
    }
    console.log('tokens          npm run dev-token -- --tenant acme --sub alice --role visitor');
    const ready = {
      ready: true,
      nats: cluster.natsUrls,
      cassandra: cluster.cassandraContactPoint,
      nodes: cluster.nodes.map(readyLine),
    };
    console.log(JSON.stringify(ready));
    for (const node of cluster.nodes) {
      void node.done.then((r) => {
        if (r === 'failed') log.error({ node: node.nodeId }, 'every worker of this node has been given up');
      });
    }
    stopOnSignals(async () => exitCodeOf((await cluster.stop()).nodes));
  });

program
  .command('node')
  .description('run one worker process (a single cluster member) against running NATS and Cassandra')
  .action(async () => {
    const config = parseConfig(configFromEnv());
    const { startNode } = await import('./node.js');
    const node = await startNode(config, createLogger(config));
    // One line on stdout that supervisors and tests wait for.
    console.log(JSON.stringify({ ready: true, node: node.nodeId, port: node.port }));
    const begin = stopOnSignals(() => node.stop());
    if (supervised) {
      // stdout is a pipe to the supervisor, which reads only the ready line: once it is gone, a write
      // there must not kill the drain with EPIPE.
      process.stdout.on('error', () => {});
      if (process.connected) process.once('disconnect', () => begin('supervisor gone'));
      else begin('supervisor gone');
    }
  });

program
  .command('dev-token')
  .description('print a signed token for local use (uses SB_JWT_SECRET or the development secret)')
  .requiredOption('--tenant <tenant>', 'tenant id')
  .requiredOption('--sub <user>', 'user id')
  .requiredOption('--role <role>', 'visitor or agent')
  .option('--ttl <seconds>', 'lifetime in seconds', intOption, 24 * 3600)
  .action(async (opts: { tenant: string; sub: string; role: string; ttl: number }) => {
    if (opts.role !== 'visitor' && opts.role !== 'agent')
      throw new InvalidArgumentError("role must be 'visitor' or 'agent'");
    const config = parseConfig(configFromEnv());
    const { createAuthenticator } = await import('./gateway/auth.js');
    const auth = createAuthenticator(config.auth.jwtSecret);
    const token = await auth.sign(
      { tenant: opts.tenant, sub: opts.sub, role: opts.role as TokenRole },
      opts.ttl,
    );
    // Verify our own output so a bad tenant/sub is reported here, not at the first connection.
    await auth.verify(token);
    console.log(token);
  });

program
  .command('export')
  .description(
    "write one conversation's full history as JSON lines, oldest first (Cassandra from SB_CASSANDRA...)",
  )
  .requiredOption('--tenant <tenant>', 'tenant id')
  .requiredOption('--conv <conv>', 'conversation id')
  .option('--out <file>', 'write to this file instead of stdout')
  .action(async (opts: { tenant: string; conv: string; out?: string }) => {
    const config = parseConfig(configFromEnv());
    const { openCassandraStore } = await import('./store/cassandra-store.js');
    const { exportConversation } = await import('./store/export.js');
    const store = await openCassandraStore({
      contactPoints: config.cassandra.contactPoints,
      localDataCenter: config.cassandra.localDataCenter,
      keyspace: config.cassandra.keyspace,
      consistency: config.cassandra.consistency,
      migrate: false,
    });
    const out = opts.out === undefined ? process.stdout : createWriteStream(opts.out);
    try {
      const count = await exportConversation(store, opts.tenant, opts.conv, out);
      if (out !== process.stdout)
        await new Promise<void>((resolve, reject) =>
          out.end((err?: unknown) => (err ? reject(err) : resolve())),
        );
      console.error(`exported ${count} messages of ${opts.tenant}/${opts.conv}`);
    } finally {
      await store.close();
    }
  });

program
  .command('rules')
  .description('routing rules of business events (docs/INTEGRATION.md)')
  .command('test')
  .description('print what the broker would do with an event under a rules file (exit 1: bad rules file)')
  .argument('<rules>', 'the rules YAML file')
  .argument(
    '<event>',
    'the event payload as JSON; its "type" field names the event type unless --type is given',
  )
  .option('--type <type>', 'event type (the subject suffix after events.)')
  .option('--tenant <tenant>', 'tenant the event is for', 'acme')
  .option('--id <id>', 'event id (Nats-Msg-Id)')
  .option('--json', 'print the plan as JSON')
  .action(
    async (
      rules: string,
      event: string,
      opts: { type?: string; tenant: string; id?: string; json?: boolean },
    ) => {
      const { rulesTest } = await import('./integration/rules-test-command.js');
      const result = rulesTest(rules, event, opts);
      (result.code === 0 ? console.log : console.error)(result.output);
      process.exitCode = result.code;
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`switchboard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
