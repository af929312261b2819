/**
 * Runs real broker processes (`switchboard node`) for tests: each with its own port and node id,
 * ready when it prints its JSON ready line; stop() is a graceful SIGTERM, kill() a SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_ADMIN_TOKEN, TEST_CASSANDRA, TEST_JWT_SECRET, TEST_NATS_URL } from './env.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface BrokerProcess {
  readonly nodeId: string;
  readonly pid: number;
  readonly port: number;
  readonly wsBase: string;
  readonly httpBase: string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Sends a signal without waiting (SIGSTOP, SIGCONT...). */
  signal(sig: NodeJS.Signals): void;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  /** Everything the process wrote to stderr so far (its logs). */
  logs(): string;
}

export interface BrokerOptions {
  nodeId: string;
  keyspace: string;
  natsUrl?: string;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export async function startBroker(opts: BrokerOptions): Promise<BrokerProcess> {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'node'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SB_NODE_ID: opts.nodeId,
      SB_PORT: '0',
      SB_NATS_URL: opts.natsUrl ?? TEST_NATS_URL,
      SB_CASSANDRA: TEST_CASSANDRA,
      SB_KEYSPACE: opts.keyspace,
      // One cluster per keyspace (one per test file): test files share the test NATS server.
      SB_CLUSTER: opts.keyspace,
      SB_JWT_SECRET: TEST_JWT_SECRET,
      SB_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      SB_LEASE_TTL_MS: '3000',
      SB_LOG_LEVEL: 'warn',
      // Every test cluster creates its own integration streams on the shared test NATS: keep them in
      // memory (gone when the server stops) and small; no byte limit, which NATS would reserve up front.
      SB_INTEGRATION_STORAGE: 'memory',
      SB_INTEGRATION_STREAM_MAX_MSGS: '100000',
      ...opts.env,
    },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`broker ${opts.nodeId} not ready in time:\n${stderr}`)),
      opts.readyTimeoutMs ?? 30_000,
    );
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; port?: number };
        if (msg.ready && msg.port) {
          clearTimeout(timer);
          resolve(msg.port);
        }
      } catch {
        // not our line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker ${opts.nodeId} exited with ${code} before ready:\n${stderr}`));
    });
  });
  const end = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    nodeId: opts.nodeId,
    pid: child.pid!,
    port,
    wsBase: `ws://127.0.0.1:${port}`,
    httpBase: `http://127.0.0.1:${port}`,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    signal: (sig) => {
      child.kill(sig);
    },
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
    logs: () => stderr,
  };
}

export interface InProcessNode {
  readonly node: import('../../src/node.js').BrokerNode;
  readonly wsBase: string;
  readonly httpBase: string;
  stop(): Promise<void>;
}

/**
 * A broker node inside the test process (for tests that call the ChatApi facade directly), on a
 * free port, in the cluster named after `keyspace` like startBroker's processes, so both can mix.
 */
export async function startInProcessNode(opts: {
  nodeId: string;
  keyspace: string;
  chat?: Partial<import('../../src/config.js').NodeConfig['chat']>;
  /** A tenants YAML file (SB_TENANTS_FILE). */
  tenantsFile?: string;
}): Promise<InProcessNode> {
  const { parseConfig } = await import('../../src/config.js');
  const { startNode } = await import('../../src/node.js');
  const { createLogger } = await import('../../src/log.js');
  const config = parseConfig({
    nodeId: opts.nodeId,
    cluster: opts.keyspace,
    http: { host: '127.0.0.1', port: 0 },
    nats: { servers: [TEST_NATS_URL] },
    cassandra: { contactPoints: [TEST_CASSANDRA], keyspace: opts.keyspace },
    auth: { jwtSecret: TEST_JWT_SECRET },
    membership: { leaseTtlMs: 3000 },
    ...(opts.chat ? { chat: opts.chat } : {}),
    ...(opts.tenantsFile ? { tenants: { file: opts.tenantsFile } } : {}),
    logLevel: 'warn',
    integration: { storage: 'memory', streamMaxMsgs: 100_000 },
  });
  const node = await startNode(config, createLogger(config));
  return {
    node,
    wsBase: `ws://127.0.0.1:${node.port}`,
    httpBase: `http://127.0.0.1:${node.port}`,
    stop: () => node.stop(),
  };
}
