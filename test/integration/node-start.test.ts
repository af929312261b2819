/**
 * A node does its JetStream setup (the integration's streams and durable consumers) before it takes
 * shards (issue #14, the kill storm). Once it holds shards, its loop serves their traffic: a restarted
 * owner under 100k sockets took 26 and 28 s to be ready, almost all of it in this setup, and the clients
 * of its shards waited on it. The `node ready` line says when each step ended and how late the loop ran.
 */
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';

const keyspace = randomKeyspace('nodestart');
let broker: BrokerProcess | undefined;

after(async () => {
  await broker?.stop();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

test('node start - the JetStream setup ends before the node takes shards, and the ready line says so', async () => {
  broker = await startBroker({
    nodeId: `${keyspace}-a`,
    keyspace,
    env: { SB_LOG_LEVEL: 'info' },
    readyTimeoutMs: 90_000,
  });
  // The harness sees the ready line on stdout; the logs come on stderr, a pipe of their own that may be
  // read later (a CI run found it still empty): wait a little for the log's ready line.
  const b = broker;
  const readyLine = () =>
    b
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}')) // a line still being written is skipped
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['msg'] === 'node ready');
  const until = Date.now() + 10_000;
  while (readyLine() === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const ready = readyLine();
  assert.ok(ready, `a ready line was logged:\n${broker.logs()}`);
  const ms = ready['startMs'] as Record<string, number>;
  const order = [
    'nats',
    'integration.streams',
    'integration.consumers',
    'membership',
    'ownership',
    'integration',
    'gateway',
  ];
  for (const step of order) assert.equal(typeof ms[step], 'number', `step ${step} in ${JSON.stringify(ms)}`);
  for (let i = 1; i < order.length; i++) {
    const [a, b] = [order[i - 1]!, order[i]!];
    assert.ok(ms[a]! <= ms[b]!, `${a} (${ms[a]} ms) ended before ${b} (${ms[b]} ms)`);
  }
  const delay = ready['startLoopDelayMs'] as { max?: unknown; p99?: unknown };
  assert.ok(typeof delay.max === 'number' && typeof delay.p99 === 'number', JSON.stringify(delay));
  assert.ok(delay.p99 <= delay.max);
});
