/**
 * Delivery semantics over real sockets (docs/PROTOCOL.md, "Delivery semantics"), on broker processes
 * of one cluster: a repeated cmid stores once and returns the original ack (also from another node);
 * a receiver dedupes by seq, sees a gap and fills it with sync; after a forced disconnect (kill -9 of
 * the node holding the sockets) a client learns its conversations from `convs` and resumes each
 * from its last seen seq without loss; read receipts are persisted and relayed; typing is relayed
 * and never stored.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { MAX_SERVER_FRAME_BYTES } from '../../src/protocol/frames.js';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import {
  connectClient,
  type Frame,
  SeqTracker,
  type Sub,
  syncInto,
  type TestClient,
} from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('deliv');
let a: BrokerProcess;
let b: BrokerProcess;
let store: CassandraHistoryStore;
let seq = 0;
const uid = (p: string) => `${p}-${process.pid}-${++seq}`;

async function client(
  node: BrokerProcess,
  tenant: string,
  user: string,
  role: TokenRole,
  sub: Sub = 'switchboard.v1.json',
): Promise<TestClient> {
  const token = await auth.sign({ tenant, sub: user, role }, 600);
  const url = `${node.wsBase}/ws/${role}`;
  // One retry: a rare upgrade closes 1006 before welcome (a known, open issue of the gateway).
  return connectClient(url, token, sub).catch(() => connectClient(url, token, sub));
}

/** Sends with `cmid` until acked, retrying the same cmid on retryable errors (as a client must). */
async function sendAcked(c: TestClient, conv: string, cmid: string, body: string): Promise<Frame> {
  for (let attempt = 0; attempt < 40; attempt++) {
    c.send({ type: 'send', conv, cmid, body });
    const f = await c.next(
      (x) => (x.type === 'ack' && x.cmid === cmid) || (x.type === 'error' && x.ref === cmid),
      15_000,
    );
    if (f.type === 'ack') return f;
    if (!['busy', 'unavailable', 'timeout', 'rate_limited'].includes(String(f.code)))
      throw new Error(`send refused: ${f.code}`);
    await new Promise((r) => setTimeout(r, Math.max(100, Number(f.retryAfterMs ?? 100))));
  }
  throw new Error(`send ${cmid} never acked`);
}

/** A visitor opens a conversation and an agent (the tenant's only one) gets it. */
async function pair(vNode: BrokerProcess, aNode: BrokerProcess, sub: Sub = 'switchboard.v1.json') {
  const tenant = uid('t');
  const conv = uid('c');
  const agent = await client(aNode, tenant, 'ag', 'agent', sub);
  const visitor = await client(vNode, tenant, 'v', 'visitor', sub);
  await sendAcked(visitor, conv, 'm1', 'hello');
  await agent.next((f) => f.type === 'assigned' && f.conv === conv);
  return { tenant, conv, agent, visitor };
}

const isMsg = (conv: string) => (f: Frame) => f.type === 'msg' && f.conv === conv;

before(async () => {
  [a, b] = await Promise.all([
    startBroker({ nodeId: 'deliv-a', keyspace, readyTimeoutMs: 90_000 }),
    startBroker({ nodeId: 'deliv-b', keyspace, readyTimeoutMs: 90_000 }),
  ]);
  store = await openCassandraStore({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: 'datacenter1',
    keyspace,
  });
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await store?.close(); // Test keyspaces pile up on the shared Cassandra (schema changes slow down with thousands of tables).
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

describe('delivery', () => {
  test('delivery - a repeated cmid (same socket, then another node) returns the original ack and stores once', async () => {
    const { conv, agent, visitor, tenant } = await pair(a, b, 'switchboard.v1.msgpack');
    const first = await sendAcked(visitor, conv, 'dup-1', 'Where is my parcel?');
    const again = await sendAcked(visitor, conv, 'dup-1', 'Where is my parcel? (retry)');
    assert.deepEqual(again, first);
    const elsewhere = await client(b, tenant, 'v', 'visitor', 'switchboard.v1.msgpack');
    assert.deepEqual(await sendAcked(elsewhere, conv, 'dup-1', 'third time'), first);
    await sendAcked(visitor, conv, 'dup-2', 'next');
    const got = await agent.next((f) => isMsg(conv)(f) && f.cmid === 'dup-2');
    assert.equal(got.seq, Number(first.seq) + 1, 'no seq was spent on the repeats');
    const stored = await store.after(tenant, conv, 0, 100);
    assert.deepEqual(
      stored.items.map((m) => m.cmid),
      ['m1', 'dup-1', 'dup-2'],
    );
    // The agent saw dup-1 exactly once.
    const seen = [...agent.buffered(), got].filter((f) => isMsg(conv)(f) && f.cmid === 'dup-1');
    assert.ok(seen.length <= 1);
    await Promise.all([agent.close(), visitor.close(), elsewhere.close()]);
  });

  test('delivery - a receiver that joins late sees a gap, fills it with sync, and dedupes the overlap', async () => {
    const { conv, agent, visitor, tenant } = await pair(a, b);
    for (let i = 2; i <= 4; i++) await sendAcked(visitor, conv, `m${i}`, `message ${i}`);
    // A second agent socket (another device) joins after seq 4: its first live msg is seq 5.
    const late = await client(a, tenant, 'ag', 'agent');
    for (let i = 5; i <= 6; i++) await sendAcked(visitor, conv, `m${i}`, `message ${i}`);
    const tracker = new SeqTracker();
    let gap = false;
    for (let i = 5; i <= 6; i++)
      gap = !tracker.offer(await late.next((f) => isMsg(conv)(f) && f.seq === i)) || gap;
    assert.ok(gap, 'the gap 1..4 was detected');
    assert.deepEqual(tracker.gaps[0], { after: 0, got: 5 });
    await syncInto(late, conv, tracker);
    assert.deepEqual(tracker.applied, [1, 2, 3, 4, 5, 6]);
    assert.ok(tracker.duplicates >= 2, 'seqs 5 and 6 came twice (live and from sync) and were ignored once');
    await Promise.all([agent.close(), visitor.close(), late.close()]);
  });

  test('delivery - a sync answer longer than the server frame bound stops early with more: true', async () => {
    const { conv, agent, visitor } = await pair(a, b);
    // 30 messages of 4,000 CJK characters: ~360 KB of bodies, above the 256 KiB frame bound.
    const body = '订单'.repeat(2000);
    for (let i = 2; i <= 31; i++) await sendAcked(visitor, conv, `big-${i}`, body);
    const seqs: number[] = [];
    let since = 0;
    let frames = 0;
    for (;;) {
      agent.send({ type: 'sync', conv, since, limit: 100 });
      const reply = await agent.next((f) => f.type === 'messages' && f.conv === conv, 15_000);
      frames++;
      assert.ok(
        Buffer.byteLength(JSON.stringify(reply)) <= MAX_SERVER_FRAME_BYTES,
        'every messages frame fits the bound',
      );
      const items = reply.items as Array<{ seq: number }>;
      seqs.push(...items.map((m) => m.seq));
      if (reply.more !== true) break;
      since = items.at(-1)?.seq ?? since;
    }
    assert.ok(frames >= 2, 'the answer was split');
    assert.deepEqual(
      seqs,
      Array.from({ length: 31 }, (_, i) => i + 1),
      'all of it, in order, once',
    );
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('delivery - read receipts are persisted per participant and told to the other one', async () => {
    const { conv, agent, visitor, tenant } = await pair(a, b);
    await sendAcked(visitor, conv, 'm2', 'second');
    const ref = uid('r');
    agent.send({ type: 'read', conv, seq: 2, ref });
    const done = await agent.next((f) => f.type === 'done' && f.ref === ref);
    assert.equal(done.seq, 2);
    const told = await visitor.next((f) => f.type === 'read' && f.conv === conv);
    assert.deepEqual([told.user, told.seq], ['ag', 2]);
    // Receipts only move forward, and only up to the last seq.
    agent.send({ type: 'read', conv, seq: 1, ref: 'back' });
    assert.equal((await agent.next((f) => f.type === 'done' && f.ref === 'back')).seq, 2);
    agent.send({ type: 'read', conv, seq: 99, ref: 'ahead' });
    assert.equal((await agent.next((f) => f.type === 'error' && f.ref === 'ahead')).code, 'invalid_field');
    visitor.send({ type: 'read', conv, seq: 1, ref: 'v-read' });
    await visitor.next((f) => f.type === 'done' && f.ref === 'v-read');
    const receipts = await store.chatStore().loadReceipts(tenant, conv);
    assert.deepEqual(Object.fromEntries(receipts), { ag: 2, v: 1 });
    // The agent's `convs` carries its read position.
    agent.send({ type: 'convs', ref: 'list' });
    const list = await agent.next((f) => f.type === 'convs' && f.ref === 'list');
    const item = (list.items as Frame[]).find((i) => i.conv === conv);
    assert.deepEqual([item?.lastSeq, item?.readSeq], [2, 2]);
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('delivery - typing is relayed to the other participant and never stored', async () => {
    const { conv, agent, visitor, tenant } = await pair(a, b);
    const before = await store.after(tenant, conv, 0, 100);
    visitor.send({ type: 'typing', conv });
    const t = await agent.next((f) => f.type === 'typing' && f.conv === conv);
    assert.equal(t.user, 'v');
    agent.send({ type: 'typing', conv });
    assert.equal((await visitor.next((f) => f.type === 'typing' && f.conv === conv)).user, 'ag');
    // A typing frame of someone else's conversation is refused.
    const stranger = await client(a, tenant, 'v2', 'visitor');
    stranger.send({ type: 'typing', conv });
    assert.equal((await stranger.next((f) => f.type === 'error')).code, 'forbidden');
    // No message row, no receipt, no seq spent: the next message is seq 2.
    const after = await store.after(tenant, conv, 0, 100);
    assert.equal(after.items.length, before.items.length);
    assert.equal((await store.chatStore().loadReceipts(tenant, conv)).size, 0);
    assert.equal((await sendAcked(visitor, conv, 'm2', 'next')).seq, 2);
    assert.equal(
      visitor.buffered().filter((f) => f.type === 'typing' && f.user === 'v').length,
      0,
      'not echoed',
    );
    await Promise.all([agent.close(), visitor.close(), stranger.close()]);
  });

  test('delivery - after kill -9 of the node holding the sockets, clients resume every conversation from convs + sync', async () => {
    const c = await startBroker({ nodeId: 'deliv-c', keyspace, readyTimeoutMs: 90_000 });
    const tenant = uid('t');
    const convs = [uid('c'), uid('c')];
    const agent = await client(c, tenant, 'ag', 'agent');
    const visitors = await Promise.all(convs.map((_, i) => client(a, tenant, `v${i}`, 'visitor')));
    const trackers = new Map<string, SeqTracker>(convs.map((conv) => [conv, new SeqTracker()]));
    for (const [i, conv] of convs.entries()) {
      await sendAcked(visitors[i]!, conv, 'm1', 'hello');
      await agent.next((f) => f.type === 'assigned' && f.conv === conv);
    }
    for (const [i, conv] of convs.entries()) await sendAcked(visitors[i]!, conv, 'm2', 'two');
    for (const conv of convs)
      for (let s = 1; s <= 2; s++)
        trackers.get(conv)!.offer(await agent.next((f) => isMsg(conv)(f) && f.seq === s));

    await c.kill();
    await agent.closed;
    // While the agent is away (and the dead node's shards fail over), the visitors keep writing.
    for (let n = 3; n <= 6; n++)
      for (const [i, conv] of convs.entries()) await sendAcked(visitors[i]!, conv, `m${n}`, `message ${n}`);

    const back = await client(b, tenant, 'ag', 'agent');
    back.send({ type: 'convs', ref: 'resume' });
    const list = await back.next((f) => f.type === 'convs' && f.ref === 'resume');
    const items = list.items as Frame[];
    assert.deepEqual(items.map((i) => i.conv).sort(), [...convs].sort());
    for (const item of items) {
      assert.equal(item.lastSeq, 6);
      assert.equal(item.status, 'assigned');
      const tracker = trackers.get(String(item.conv))!;
      await syncInto(back, String(item.conv), tracker);
      assert.deepEqual(tracker.applied, [1, 2, 3, 4, 5, 6]);
    }
    // And live again.
    await sendAcked(visitors[0]!, convs[0]!, 'm7', 'live');
    assert.ok(trackers.get(convs[0]!)!.offer(await back.next((f) => isMsg(convs[0]!)(f) && f.seq === 7)));
    // The visitor's convs lists its own conversation only.
    visitors[0]!.send({ type: 'convs' });
    const mine = await visitors[0]!.next((f) => f.type === 'convs');
    assert.deepEqual(
      (mine.items as Frame[]).map((i) => i.conv),
      [convs[0]],
    );
    await Promise.all([back.close(), ...visitors.map((v) => v.close())]);
  });
});
