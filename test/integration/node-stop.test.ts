/**
 * A node whose members all stop at once (a restart: SIGTERM to every worker) must not wait on request
 * deadlines while it drains (issue #14, drain storm). Each member closing an agent's socket used to report
 * the departure to the agent's actor, which told its tenant's queue, which acted on the conversations:
 * requests into members that were stopping too, which waited out their deadline (5 s by default, twice
 * here) and held each shard's release, and so the restart, that long. A stopping node now leaves the
 * departure to the actor's presence TTL, as after a crash (src/gateway/server.ts, `stopping`).
 */
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';
import { client, request, uid } from '../harness/reception.js';

const keyspace = randomKeyspace('nodestop');
/** Long enough that a stop waiting on one request deadline cannot pass for a quick one. */
const REQUEST_TIMEOUT_MS = 20_000;
const env = { SB_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) };
const brokers: BrokerProcess[] = [];

after(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

async function start(id: string): Promise<BrokerProcess> {
  const b = await startBroker({ nodeId: `${keyspace}-${id}`, keyspace, env, readyTimeoutMs: 90_000 });
  brokers.push(b);
  return b;
}

test('node stop - members stopping together with agents online stop within one request deadline', {
  timeout: 120_000,
}, async () => {
  const [a, b] = await Promise.all([start('a'), start('b')]);
  const tenant = uid('t');
  // Agents on both members, each with a conversation, so their actors and the queue are busy on both.
  const agents = await Promise.all([a, b, a, b].map((node, i) => client(node, tenant, `ag${i}`, 'agent')));
  for (const ag of agents) await request(ag, { type: 'status', status: 'online', capacity: 2 });
  for (const [i, node] of [b, a].entries()) {
    const v = await client(node, tenant, `v${i}`, 'visitor');
    const conv = uid('c');
    v.send({ type: 'send', conv, cmid: `${conv}-1`, body: 'hello' });
    await v.next((f) => f.type === 'assigned' && f.conv === conv);
    await v.close();
  }
  const t0 = performance.now();
  await Promise.all([a.stop(), b.stop()]);
  const tookMs = performance.now() - t0;
  assert.ok(
    tookMs < REQUEST_TIMEOUT_MS / 2,
    `both members stopped in ${Math.round(tookMs)} ms, not after a ${REQUEST_TIMEOUT_MS} ms request deadline`,
  );
});
