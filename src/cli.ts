#!/usr/bin/env node
/**
 * The `switchboard` command line: `start` (local stack + one node), `node` (one broker node
 * against running servers, configured by SB_* variables), `dev-token` (a signed token for local use).
 */
import { Command, InvalidArgumentError } from 'commander';
import { configFromEnv, DEFAULT_HTTP_PORT, parseConfig } from './config.js';
import { createAuthenticator, type TokenRole } from './gateway/auth.js';
import { createLogger } from './log.js';
import { type BrokerNode, startNode } from './node.js';
import { ensureLocalStack } from './stack/local-stack.js';

export const LOCAL_NATS_PORT = 14222;
export const LOCAL_CASSANDRA_PORT = 19042;
export const LOCAL_CASSANDRA_STORAGE_PORT = 17000;
export const LOCAL_CASSANDRA_JMX_PORT = 17199;

function intOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** Stops `node`, then `after`, on the first SIGINT/SIGTERM; a second signal exits at once. */
function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`\n${sig}: stopping…`);
    stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

const program = new Command('switchboard').description('Switchboard chat broker');

program
  .command('start')
  .description('start nats-server and Cassandra (when not running) and one broker node; Ctrl-C stops all')
  .option('-p, --port <port>', 'gateway HTTP/WebSocket port', intOption, DEFAULT_HTTP_PORT)
  .action(async (opts: { port: number }) => {
    const stack = await ensureLocalStack({
      natsPort: LOCAL_NATS_PORT,
      cassandraPort: LOCAL_CASSANDRA_PORT,
      cassandraStoragePort: LOCAL_CASSANDRA_STORAGE_PORT,
      cassandraJmxPort: LOCAL_CASSANDRA_JMX_PORT,
      say: (l) => console.log(`stack: ${l}`),
    });
    const env = configFromEnv();
    const config = parseConfig({
      ...env,
      http: { ...env.http, port: env.http?.port ?? opts.port },
      nats: { servers: env.nats?.servers ?? [stack.natsUrl] },
      cassandra: {
        ...env.cassandra,
        contactPoints: env.cassandra?.contactPoints ?? [stack.cassandraContactPoint],
      },
    });
    let node: BrokerNode;
    try {
      node = await startNode(config, createLogger(config));
    } catch (err) {
      await stack.stop();
      throw err;
    }
    const base = `${config.http.host}:${node.port}`;
    if (config.auth.devSecret) console.log('warning: SB_JWT_SECRET is unset, using the development secret');
    console.log(`visitor socket  ws://${base}/ws/visitor   (subprotocol switchboard.v1.json or .msgpack)`);
    console.log(`agent socket    ws://${base}/ws/agent`);
    console.log(`history API     http://${base}/api/v1/conversations/<conv>/messages`);
    console.log(`health          http://${base}/healthz  http://${base}/readyz`);
    console.log(
      `NATS            ${config.nats.servers.join(',')}   Cassandra ${config.cassandra.contactPoints.join(',')}`,
    );
    console.log('tokens          npm run dev-token -- --tenant acme --sub alice --role visitor');
    console.log(`switchboard ready: node ${node.nodeId} on ${base} (Ctrl-C to stop)`);
    stopOnSignals(async () => {
      await node.stop();
      await stack.stop();
    });
  });

program
  .command('node')
  .description('run one broker node against running NATS and Cassandra (configured by SB_* variables)')
  .action(async () => {
    const config = parseConfig(configFromEnv());
    const node = await startNode(config, createLogger(config));
    // One line on stdout that supervisors and tests wait for.
    console.log(JSON.stringify({ ready: true, node: node.nodeId, port: node.port }));
    stopOnSignals(() => node.stop());
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
    const auth = createAuthenticator(config.auth.jwtSecret);
    const token = await auth.sign(
      { tenant: opts.tenant, sub: opts.sub, role: opts.role as TokenRole },
      opts.ttl,
    );
    // Verify our own output so a bad tenant/sub is reported here, not at the first connection.
    await auth.verify(token);
    console.log(token);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`switchboard: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
