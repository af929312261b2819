/**
 * A node whose members all stop at once (a restart: SIGTERM to every worker) must not wait on request
 * deadlines while it drains (issue #14, drain storm). Each member closing an agent's socket used to report
 * the departure to the agent's actor, which told its tenant's queue, which acted on the conversations:
 * requests into members that were stopping too, which waited out their deadline (5 s by default, twice
 * here) and held each shard's release, and so the restart, that long. A stopping node now leaves the
 * departure to the actor's presence TTL, as after a crash (src/gateway/server.ts, `stopping`); the
 * second test checks that an agent who does not come back still loses its conversations.
 */
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';
import { client, request, tenantsFile, uid } from '../harness/reception.js';

const keyspace = randomKeyspace('nodestop');
/** Long enough that a stop waiting on one request deadline cannot pass for a quick one. */
const REQUEST_TIMEOUT_MS = 20_000;
const PRESENCE_MS = 300;
const GRACE_MS = 1000;
/**
 * The second test's tenant is configured: a configured tenant's queue is asked every reception tick on
 * the member holding its shard, which brings a queue whose member stopped back on another (actors'
 * timers die with their process).
 */
const KEPT = uid('kept');
const tenants = tenantsFile();
tenants.write(`version: 1\ntenants:\n  ${KEPT}: {}\n`);
const env = {
  SB_TENANTS_FILE: tenants.path,
  SB_RECEPTION_TICK_MS: '200',
  SB_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  SB_AGENT_PRESENCE_MS: String(PRESENCE_MS),
  SB_AGENT_GRACE_MS: String(GRACE_MS),
};
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

test("node stop - a stopped member's agent who does not come back loses its conversations", {
  timeout: 120_000,
}, async () => {
  const [stays, goes] = await Promise.all([start('c'), start('d')]);
  const gone = await client(goes, KEPT, 'gone', 'agent');
  await request(gone, { type: 'status', status: 'online', capacity: 2 });
  const v = await client(stays, KEPT, 'v', 'visitor');
  const conv = uid('c');
  v.send({ type: 'send', conv, cmid: `${conv}-1`, body: 'hello' });
  assert.equal((await v.next((f) => f.type === 'assigned' && f.conv === conv)).agent, 'gone');
  const stoppedAt = Date.now();
  await goes.stop();
  // No departure report: the agent's actor drops the member's sockets once they are not renewed for
  // its presence TTL (3 beats), or comes back without them on the other member; after the grace the
  // queue takes the conversation back, retrying if the conversation's shard was still moving.
  const back = await v.next((f) => f.type === 'queue' && f.conv === conv, 30_000);
  assert.equal(back.position, 1, 'the conversation waits again');
  assert.ok(Date.now() - stoppedAt >= GRACE_MS, 'not before the grace period');
  await v.close();
});
