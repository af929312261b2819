/**
 * One node as a real child process: `switchboard serve --workers N --port 0` (a supervisor and its workers
 * on one port) against the suite's Cassandra and a nats-server of its own. Every process on one NATS
 * server joins one cluster (one members bucket, one set of shard subjects), so two files' nodes on the
 * suite's server would mix.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { randomKeyspace, TEST_ADMIN_TOKEN, TEST_CASSANDRA, TEST_JWT_SECRET } from './env.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const READY_TIMEOUT_MS = 45_000;

export interface ServedNode {
  /** The supervisor process. */
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly port: number;
  /** The workers as the ready line named them. */
  readonly workers: Array<{ id: string; pid: number }>;
  /** Every pino line of the supervisor and its workers so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Their stderr so far, for failure messages. */
  stderr(): string;
  /** The first log line that matches, waiting up to `timeoutMs` (fails the test after it). */
  waitForLog(
    match: (l: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
  /** Kills the supervisor if still running (SIGKILL) and stops the nats-server. */
  stop(): Promise<void>;
}

export async function startServedNode(o: {
  nodeId: string;
  workers: number;
  env?: Record<string, string>;
}): Promise<ServedNode> {
  const nats: NatsServerHandle = await startNatsServer();
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', String(o.workers), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SB_NODE_ID: o.nodeId,
      SB_NATS_URL: nats.url,
      SB_CASSANDRA: TEST_CASSANDRA,
      SB_KEYSPACE: randomKeyspace('serve'),
      SB_JWT_SECRET: TEST_JWT_SECRET,
      SB_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      SB_LEASE_TTL_MS: '3000',
      SB_LOG_LEVEL: 'info',
      ...o.env,
    },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr += `${line}\n`;
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a pino line
    }
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await nats.stop();
  };
  let ready: { port: number; workers: Array<{ id: string; pid: number }> };
  try {
    ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve not ready:\n${stderr}`)), READY_TIMEOUT_MS);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.startsWith('{"ready":true')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number; workers: Array<{ id: string; pid: number }> });
      });
      void exited.then((e) => reject(new Error(`serve exited with ${e.code} before ready:\n${stderr}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    process: child,
    exited,
    port: ready.port,
    workers: ready.workers,
    logs,
    stderr: () => stderr,
    async waitForLog(match, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find(match);
        if (hit) return hit;
        if (Date.now() > deadline)
          return assert.fail(`no matching log line within ${timeoutMs} ms:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop,
  };
}
