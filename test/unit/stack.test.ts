import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import cassandra from 'cassandra-driver';
import { readProcStat } from '../../bench/lib/proc.js';
import {
  CASSANDRA_LOCAL_DATA_CENTER,
  findProjectRoot,
  readJvmOptions,
  startCassandra,
} from '../../src/stack/cassandra.js';
import { ensureLocalStack } from '../../src/stack/local-stack.js';
import { NATS_HOST, startNatsCluster, startNatsServer } from '../../src/stack/nats-server.js';
import { findFreePort, isTcpReachable } from '../../src/stack/process.js';
import { probeCql } from '../../src/store/cql-probe.js';
import { TEST_CASSANDRA } from '../harness/env.js';

// Generous: the suite runs beside Cassandra and broker processes on 2 cores.
const HTTP_PROBE_TIMEOUT_MS = 5_000;
const CASSANDRA_TEST_TIMEOUT_MS = 300_000;

/** GET a monitoring endpoint; null when it does not answer within HTTP_PROBE_TIMEOUT_MS. */
async function monitor(port: number | undefined, path: string): Promise<Record<string, unknown> | null> {
  assert.ok(port !== undefined, 'monitoring port is enabled');
  try {
    const res = await fetch(`http://${NATS_HOST}:${port}${path}`, {
      signal: AbortSignal.timeout(HTTP_PROBE_TIMEOUT_MS),
    });
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

test('stack - nats-server starts with JetStream on and accepts clients', async () => {
  await using server = await startNatsServer({ httpPort: 0, websocketPort: 0 });
  assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
  assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), true);
  assert.ok(server.websocketPort !== undefined);
  assert.equal(await isTcpReachable(NATS_HOST, server.websocketPort, 1_000), true);
  const jsz = await monitor(server.httpPort, '/jsz');
  assert.ok(jsz !== null);
  const config = jsz['config'] as { store_dir?: string } | undefined;
  assert.ok(config?.store_dir?.startsWith(server.dataDir), 'JetStream stores under dataDir');
});

test('stack - nats-server restart comes back on the same URL with a new process', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sb-stack-test-'));
  try {
    const server = await startNatsServer({ dataDir, serverName: 'restart-me' });
    const { url, pid } = server;
    await server.restart();
    assert.equal(server.url, url);
    assert.notEqual(server.pid, pid);
    assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), true);
    await server.stop();
    assert.equal(server.isRunning(), false);
    assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), false);
    await server.stop(); // harmless the second time
    await assert.rejects(server.restart(), /was stopped/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('stack - nats-server survives SIGKILL through restart', async () => {
  await using server = await startNatsServer();
  server.signal('SIGKILL');
  for (let i = 0; i < 50 && server.isRunning(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.isRunning(), false);
  assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), false);
  await server.restart();
  assert.equal(server.isRunning(), true);
  assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), true);
});

/**
 * Resolves once `pid` is stopped (state T in /proc/<pid>/stat): kill() only queues SIGSTOP, and a
 * request sent at once could still be answered (seen once in CI).
 */
async function untilStopped(pid: number): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    if (readProcStat(pid)?.state === 'T') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within 2 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('stack - SIGSTOP freezes nats-server, SIGCONT resumes it, stop works while frozen', async () => {
  const server = await startNatsServer({ httpPort: 0 });
  try {
    assert.notEqual(await monitor(server.httpPort, '/varz'), null);
    server.signal('SIGSTOP');
    await untilStopped(server.pid);
    assert.equal(await monitor(server.httpPort, '/varz'), null);
    server.signal('SIGCONT');
    assert.notEqual(await monitor(server.httpPort, '/varz'), null);
    server.signal('SIGSTOP');
  } finally {
    await server.stop();
  }
  assert.equal(server.isRunning(), false);
});

test('stack - a 3-server nats cluster routes every server to the other two', async () => {
  await using cluster = await startNatsCluster(3);
  assert.equal(cluster.urls.length, 3);
  assert.equal(new Set(cluster.urls).size, 3);
  for (const server of cluster.servers) {
    const routez = await monitor(server.httpPort, '/routez');
    assert.equal(routez?.['num_routes'], 2);
  }
  const [first] = cluster.servers;
  assert.ok(first !== undefined);
  await first.restart();
  await cluster.waitForRoutes();
  const routez = await monitor(first.httpPort, '/routez');
  assert.equal(routez?.['num_routes'], 2);
});

test('stack - cluster stop closes every client port', async () => {
  const cluster = await startNatsCluster(3, { jetstream: false });
  await cluster.stop();
  for (const server of cluster.servers) {
    assert.equal(await isTcpReachable(NATS_HOST, server.port, 1_000), false);
  }
});

test('stack - a fresh local stack throws away the data a server it starts left, a reused one keeps it', async () => {
  // Cassandra answers on the test stack's port, so only nats-server is started here.
  const cassandraPort = Number(TEST_CASSANDRA.split(':')[1]);
  const root = await mkdtemp(join(tmpdir(), 'sb-local-stack-'));
  const marker = join(root, 'nats', 'left-by-an-earlier-run');
  try {
    for (const fresh of [false, true]) {
      await mkdir(join(root, 'nats'), { recursive: true });
      await writeFile(marker, 'old');
      const stack = await ensureLocalStack({
        natsPort: await findFreePort(NATS_HOST),
        cassandraPort,
        cassandraStoragePort: 1,
        cassandraJmxPort: 1,
        dataRoot: root,
        fresh,
      });
      try {
        assert.deepEqual(stack.started, ['nats-server']);
        assert.equal(existsSync(marker), !fresh, fresh ? 'fresh: the old data is gone' : 'kept by default');
      } finally {
        await stack.stop();
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('stack - the Cassandra it starts runs trie memtables with their cells off the heap', {
  skip:
    process.env['SB_TEST_CASSANDRA_STARTED'] === '1'
      ? false
      : "the suite reused a Cassandra it did not start (its cassandra.yaml is not the stack's)",
}, async () => {
  // What the server runs, read back from it: a skip-list memtable's flush stalled the writes around it.
  const client = new cassandra.Client({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: CASSANDRA_LOCAL_DATA_CENTER,
  });
  try {
    const rows = await client.execute(
      "SELECT name, value FROM system_views.settings WHERE name IN ('memtable_allocation_type', 'memtable.configurations')",
    );
    const settings = new Map(rows.rows.map((r) => [String(r['name']), String(r['value'])]));
    assert.equal(settings.get('memtable_allocation_type'), 'offheap_objects');
    assert.match(settings.get('memtable.configurations') ?? '', /default=trie\b/);
    assert.match(settings.get('memtable.configurations') ?? '', /trie=TrieMemtable/);
  } finally {
    await client.shutdown();
  }
});

test('stack - the project root holds package.json and the Cassandra deploy folder', () => {
  const root = findProjectRoot();
  const options = readJvmOptions(join(root, 'deploy', 'cassandra', 'jvm17-server.options'));
  assert.ok(options.includes('-XX:+UseG1GC'));
  assert.ok(options.includes('-Dio.netty.tryReflectionSetAccessible=true'));
  const i = options.indexOf('--add-exports');
  assert.equal(options[i + 1], 'java.base/jdk.internal.misc=ALL-UNNAMED');
  assert.equal(
    options.filter((o) => o === '--add-opens').length,
    14,
    'all --add-opens of Cassandra 5.0 jvm17-server.options',
  );
  assert.ok(options.every((o) => !o.startsWith('#') && o !== ''));
});

test('stack - startCassandra rejects bad options before launching anything', async () => {
  const dataDir = join(tmpdir(), 'sb-never-created');
  await assert.rejects(
    startCassandra({ nativePort: 29_142, storagePort: 29_142, jmxPort: 27_199, dataDir }),
    /must differ/,
  );
  await assert.rejects(
    startCassandra({ nativePort: 29_142, storagePort: 27_100, jmxPort: 27_199, dataDir, heapMb: 64 }),
    /heapMb/,
  );
  await assert.rejects(
    startCassandra({ nativePort: 0, storagePort: 27_100, jmxPort: 27_199, dataDir }),
    /nativePort must be a TCP port/,
  );
});

test('stack - startCassandra refuses a native port that is already taken', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, NATS_HOST, resolve));
  const address = blocker.address();
  assert.ok(address !== null && typeof address === 'object');
  try {
    await assert.rejects(
      startCassandra({
        nativePort: address.port,
        storagePort: 27_100,
        jmxPort: 27_199,
        dataDir: join(tmpdir(), 'sb-never-created'),
      }),
      /already in use|run npm run setup/,
    );
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('stack - probeCql answers null when nothing listens', async () => {
  assert.equal(await probeCql('127.0.0.1:1', 'datacenter1', 2_000), null);
});

test('stack - Cassandra starts from the Maven jars and answers CQL', {
  skip: process.env['SB_TEST_CASSANDRA_LAUNCH'] === '1' ? false : 'set SB_TEST_CASSANDRA_LAUNCH=1 (slow)',
  timeout: CASSANDRA_TEST_TIMEOUT_MS,
}, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sb-cassandra-test-'));
  try {
    const cassandra = await startCassandra({
      nativePort: 29_142,
      storagePort: 27_100,
      // Not the test stack's JMX port (27199), which is taken while the suite runs.
      jmxPort: 27_299,
      dataDir,
    });
    try {
      assert.equal(cassandra.contactPoint, '127.0.0.1:29142');
      assert.equal(cassandra.localDataCenter, 'datacenter1');
      assert.match(cassandra.releaseVersion, /^5\.0\./);
      assert.equal(
        await probeCql(cassandra.contactPoint, cassandra.localDataCenter, 10_000),
        cassandra.releaseVersion,
      );
    } finally {
      await cassandra.stop();
    }
    assert.equal(await isTcpReachable('127.0.0.1', 29_142, 1_000), false);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
