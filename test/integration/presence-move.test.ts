/**
 * Live delivery across members while presence shards move (issue #14), on real broker processes: a
 * visitor on node A and its agent on node B talk while a third node C joins (taking, among others,
 * the presence shards of both users and the conversation's shard) and then leaves gracefully (giving
 * them back). Every acknowledged message reaches both sockets live, once each, with no `sync`: the
 * new owner of a presence shard asks every member for its users and sends to those that have not
 * answered yet, and a push to a former owner is sent on to every member.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { presenceShardOf } from '../../src/presence/directory.js';
import { rendezvousOwner, SHARD_COUNT, shardOf } from '../../src/routing/shard.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('pmove');
const IDS = ['pm-a', 'pm-b', 'pm-c'];
const running: BrokerProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function broker(nodeId: string): Promise<BrokerProcess> {
  return startBroker({ nodeId, keyspace, readyTimeoutMs: 90_000 }).then((b) => {
    running.push(b);
    return b;
  });
}

async function held(node: BrokerProcess): Promise<number[]> {
  const r = await fetch(`${node.httpBase}/admin/shards`, { headers: ADMIN_HEADERS });
  return ((await r.json()) as { held: number[] }).held;
}

/** Until every node holds exactly its rendezvous share of the shards among `nodes`. */
async function settled(nodes: BrokerProcess[]): Promise<void> {
  const members = nodes.map((n) => n.nodeId).sort();
  for (const t0 = Date.now(); ; await sleep(100)) {
    const views = await Promise.all(nodes.map((n) => held(n).catch(() => [])));
    const ok = nodes.every((n, i) => {
      const share = [...Array(SHARD_COUNT).keys()].filter((s) => rendezvousOwner(s, members) === n.nodeId);
      return views[i]!.join(',') === share.join(',');
    });
    if (ok) return;
    assert.ok(Date.now() - t0 < 60_000, `shards not settled on ${members}`);
  }
}

/** An id whose shard (by `shard`) C takes when it joins A and B. */
function movingToC(prefix: string, shard: (id: string) => number): string {
  for (let i = 0; ; i++) if (rendezvousOwner(shard(`${prefix}${i}`), IDS) === 'pm-c') return `${prefix}${i}`;
}

async function sendAcked(c: TestClient, conv: string, cmid: string): Promise<Frame> {
  for (let attempt = 0; attempt < 60; attempt++) {
    c.send({ type: 'send', conv, cmid, body: `body of ${cmid}` });
    const f = await c.next(
      (x) => (x.type === 'ack' && x.cmid === cmid) || (x.type === 'error' && x.ref === cmid),
      15_000,
    );
    if (f.type === 'ack') return f;
    assert.ok(['busy', 'unavailable', 'timeout'].includes(String(f.code)), JSON.stringify(f));
    await sleep(Math.max(50, Number(f.retryAfterMs ?? 100)));
  }
  return assert.fail(`${cmid} never acked`);
}

before(async () => {
  const [a, b] = await Promise.all([broker('pm-a'), broker('pm-b')]);
  await settled([a!, b!]);
});

after(async () => {
  await Promise.all(running.map((b) => b.stop()));
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

test('presence move - while a node joins and leaves, every acked message reaches both sockets live, once', async (t) => {
  const [a, b] = running as [BrokerProcess, BrokerProcess];
  const tenant = 'pmt';
  const visitorId = movingToC('v', (id) => presenceShardOf(tenant, id));
  const agentId = movingToC('ag', (id) => presenceShardOf(tenant, id));
  const conv = movingToC('conv', (id) => shardOf(tenant, id));
  const agent = await connectClient(
    `${b.wsBase}/ws/agent`,
    await auth.sign({ tenant, sub: agentId, role: 'agent' }, 600),
    'switchboard.v1.msgpack',
  );
  const visitor = await connectClient(
    `${a.wsBase}/ws/visitor`,
    await auth.sign({ tenant, sub: visitorId, role: 'visitor' }, 600),
    'switchboard.v1.json',
  );
  await sendAcked(visitor, conv, 'm0');
  await agent.next((f) => f.type === 'assigned' && f.conv === conv);

  // Messages flow all along; C joins, the shards settle, C leaves, they settle back.
  let phase = 'joining';
  const acked: number[] = [];
  let stop = false;
  const traffic = (async () => {
    for (let i = 1; !stop; i++) {
      acked.push(Number((await sendAcked(visitor, conv, `m${i}`)).seq));
      await sleep(20);
    }
  })();
  const c = await broker('pm-c');
  await settled([a, b, c]);
  assert.ok(
    (await held(c)).includes(presenceShardOf(tenant, visitorId)),
    'C took the visitor presence shard',
  );
  await sleep(500);
  phase = 'leaving';
  await c.stop();
  running.splice(running.indexOf(c), 1);
  await settled([a, b]);
  await sleep(500);
  stop = true;
  await traffic;
  assert.ok(acked.length >= 10, `${acked.length} messages acked while C ${phase}`);
  t.diagnostic(`${acked.length} messages acked while C joined and left`);

  const last = acked[acked.length - 1]!;
  const seqs = (c: TestClient) =>
    c
      .buffered()
      .filter((f) => f.type === 'msg' && f.conv === conv)
      .map((f) => Number(f.seq));
  // The last echo may still be on its way: wait for it on both sides (without taking it from the buffer).
  for (const t0 = Date.now(); Date.now() - t0 < 5000; await sleep(20))
    if (seqs(visitor).includes(last) && seqs(agent).includes(last)) break;
  const all = Array.from({ length: last }, (_, i) => i + 1);
  const toVisitor = seqs(visitor);
  const toAgent = seqs(agent);
  assert.deepEqual(
    [...toVisitor].sort((x, y) => x - y),
    all,
    'the visitor got every echo live, once',
  );
  assert.deepEqual(
    [...toAgent].sort((x, y) => x - y),
    all,
    'the agent got every message live, once',
  );
  await Promise.all([visitor.close(), agent.close()]);
});

test('presence full - past SB_PRESENCE_MAX_USERS a new user is closed 1012 before welcome; recorded users keep receiving', async () => {
  // A one-member cluster of its own (same keyspace): it owns every presence shard, and records 2 users.
  const node = await startBroker({
    nodeId: 'pf-a',
    keyspace,
    readyTimeoutMs: 90_000,
    env: { SB_CLUSTER: `${keyspace}_full`, SB_PRESENCE_MAX_USERS: '2' },
  });
  running.push(node);
  const url = `${node.wsBase}/ws/visitor`;
  const token = (sub: string) => auth.sign({ tenant: 'pft', sub, role: 'visitor' }, 600);
  const first = await connectClient(url, await token('v1'), 'switchboard.v1.json');
  const second = await connectClient(url, await token('v2'), 'switchboard.v1.json');
  await assert.rejects(
    connectClient(url, await token('v3'), 'switchboard.v1.json'),
    /closed 1012 before welcome/,
  );
  // Another device of a recorded user costs no entry, and gets that user's frames.
  const again = await connectClient(url, await token('v1'), 'switchboard.v1.json');
  await sendAcked(first, 'pf-conv', 'pf-1');
  const echo = await again.next((f) => f.type === 'msg' && f.conv === 'pf-conv');
  assert.equal(echo.cmid, 'pf-1');
  const metrics = await (await fetch(`${node.httpBase}/metrics`, { headers: ADMIN_HEADERS })).text();
  assert.match(metrics, /switchboard_presence_users\{[^}]*\} 2\b/);
  assert.match(metrics, /switchboard_presence_refused_total\{[^}]*\} 1\b/);
  await Promise.all([first.close(), second.close(), again.close()]);
});
