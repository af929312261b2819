/**
 * No-reply reassignment (issue #17 item 5) over real sockets, on two broker processes: an assigned
 * agent who leaves a visitor unanswered for the tenant's time loses the conversation (told with
 * `unassigned`, reason `no_reply`), the visitor is told (`requeued`), and the conversation goes to
 * the FRONT of the queue for another agent; an answer in time stops the clock; with nobody else it
 * comes back to the same agent; and the timer survives its queue's and conversation's shard moving
 * to the other member (graceful stop of the owner during the wait).
 *
 * The tenant-set time is 2 s, so the waits here are real but short (the time arithmetic
 * itself is unit-tested with a simulated clock in test/unit/reception-queue.test.ts).
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUEUE_ACTOR_ID } from '../../src/routing/actor-kind.js';
import { rendezvousOwner, shardOf } from '../../src/routing/shard.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';
import { client, frameOf, request, say, tenantsFile, uid } from '../harness/reception.js';

const keyspace = randomKeyspace('desknr');
/** The tenants' no-reply time: short, yet long enough for an answer on a loaded 2-core test machine. */
const REASSIGN_S = 2;
const WAIT_MS = REASSIGN_S * 1000;
const NODES = ['desknr-a', 'desknr-b'] as const;
const file = tenantsFile();
const T1 = uid('nr1');
const T2 = uid('nr2');
let T3 = uid('nr3');
// The moving test's tenant has its queue actor on the member that will be stopped (a).
while (rendezvousOwner(shardOf(T3, QUEUE_ACTOR_ID), NODES) !== NODES[0]) T3 = uid('nr3');
let a: BrokerProcess;
let b: BrokerProcess;

before(async () => {
  file.write(
    `version: 1\ntenants:\n${[T1, T2, T3].map((t) => `  ${t}:\n    reception: { noReplyReassignS: ${REASSIGN_S} }\n`).join('')}`,
  );
  const env = {
    SB_TENANTS_FILE: file.path,
    SB_RECEPTION_TICK_MS: '200',
    SB_AGENT_PRESENCE_MS: '300',
    SB_AGENT_GRACE_MS: '20000',
  };
  [a, b] = await Promise.all([
    startBroker({ nodeId: NODES[0], keyspace, env, readyTimeoutMs: 180_000 }),
    startBroker({ nodeId: NODES[1], keyspace, env, readyTimeoutMs: 180_000 }),
  ]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

describe('reception no-reply', () => {
  test('reception no-reply - an unanswered visitor goes to the front of the queue for another agent; both told', async () => {
    const ag1 = await client(a, T1, 'ag1', 'agent');
    await request(ag1, { type: 'status', status: 'online', capacity: 1 });
    const [v1, v2, v3] = await Promise.all(
      ['v1', 'v2', 'v3'].map((v, i) => client(i ? a : b, T1, v, 'visitor')),
    );
    const [c1, c2, c3] = [uid('c1'), uid('c2'), uid('c3')];
    await say(v1!, c1, 'my parcel is late');
    assert.equal((await ag1.next(frameOf('assigned', c1))).agent, 'ag1');
    const t0 = Date.now(); // the wait starts at the assignment (a little before this frame arrived)
    // A second agent only now (an agent starts online when its first socket connects).
    const ag2 = await client(b, T1, 'ag2', 'agent');
    await request(ag2, { type: 'status', status: 'online', capacity: 1 });
    await say(v2!, c2, 'hello');
    await ag2.next(frameOf('assigned', c2));
    await say(ag2, c2, 'Hi, how can I help?');
    await say(v3!, c3, 'anyone?');
    assert.equal((await v3!.next(frameOf('queue', c3))).position, 1);
    // ag1 does not answer c1: after 1 s it loses it, and its visitor is told.
    const lost = await ag1.next(frameOf('unassigned', c1), 5000);
    assert.equal(lost.reason, 'no_reply');
    assert.ok(Date.now() - t0 >= WAIT_MS - 200, `not before the tenant-set time (${Date.now() - t0} ms)`);
    assert.equal((await v1!.next(frameOf('requeued', c1))).reason, 'no_reply');
    // c1 is at the front now (c3 was first): and ag1, free again, gets c3 — not c1 back. It answers at once.
    assert.equal((await ag1.next(frameOf('assigned', c3))).agent, 'ag1');
    await say(ag1, c3, 'Yes, here.');
    assert.equal((await v1!.next(frameOf('queue', c1))).position, 1);
    // ag2 answered c2 in time: it keeps it. Once it closes c2, c1 (at the front) goes to ag2.
    assert.equal(
      ag2.buffered().some((f) => f.type === 'unassigned'),
      false,
    );
    await request(ag2, { type: 'close', conv: c2 });
    assert.equal(
      (await v1!.next((f) => f.type === 'assigned' && f.conv === c1 && f.agent !== 'ag1')).agent,
      'ag2',
    );
    // The new agent has the visitor's message, and the wait restarted for it: it answers in time.
    const m = await ag2.next((f) => f.type === 'msg' && f.conv === c1 && f.seq === 1);
    assert.equal(m.body, 'my parcel is late');
    await say(ag2, c1, 'Let me look.');
    await new Promise((r) => setTimeout(r, WAIT_MS + 600));
    assert.equal(ag2.buffered().filter((f) => f.type === 'unassigned').length, 0, 'answered in time: kept');
    assert.equal(ag1.buffered().filter((f) => f.type === 'unassigned').length, 0);
    await Promise.all([ag1, ag2, v1!, v2!, v3!].map((c) => c.close()));
  });

  test('reception no-reply - an answer stops the clock; with nobody else it stays until another agent is there', async () => {
    const ag = await client(b, T2, 'solo', 'agent');
    await request(ag, { type: 'status', status: 'online', capacity: 2 });
    const v = await client(a, T2, 'v', 'visitor');
    const conv = uid('c');
    await say(v, conv, 'question one');
    await ag.next(frameOf('assigned', conv));
    await new Promise((r) => setTimeout(r, WAIT_MS / 4));
    await say(ag, conv, 'answer one');
    await new Promise((r) => setTimeout(r, WAIT_MS + 500));
    assert.equal(ag.buffered().filter((f) => f.type === 'unassigned').length, 0, 'answered in time');
    // A new unanswered message starts the clock again. Nobody else could take it: it stays (no churn).
    await say(v, conv, 'question two');
    await new Promise((r) => setTimeout(r, WAIT_MS + 800));
    assert.equal(ag.buffered().filter((f) => f.type === 'unassigned').length, 0, 'no other agent: kept');
    assert.equal(v.buffered().filter((f) => f.type === 'requeued').length, 0);
    // Another agent comes: at the next look (within one no-reply time) the conversation goes to it.
    const other = await client(a, T2, 'other', 'agent');
    await request(other, { type: 'status', status: 'online', capacity: 2 });
    assert.equal((await ag.next(frameOf('unassigned', conv), 5000)).reason, 'no_reply');
    assert.equal((await v.next(frameOf('requeued', conv))).reason, 'no_reply');
    assert.equal((await other.next(frameOf('assigned', conv))).agent, 'other');
    await Promise.all([ag.close(), v.close(), other.close()]);
  });

  test('reception no-reply - the timer survives its shard moving to the other member during the wait', async () => {
    // A conversation on the same member as the tenant's queue actor (a): both move when a stops.
    let conv = uid('c');
    while (rendezvousOwner(shardOf(T3, conv), NODES) !== NODES[0]) conv = uid('c');
    const ag1 = await client(b, T3, 'ag1', 'agent');
    await request(ag1, { type: 'status', status: 'online', capacity: 1 });
    const v = await client(b, T3, 'v', 'visitor');
    await say(v, conv, 'hello?');
    assert.equal((await ag1.next(frameOf('assigned', conv))).agent, 'ag1');
    const ag2 = await client(b, T3, 'ag2', 'agent');
    await request(ag2, { type: 'status', status: 'online', capacity: 1 });
    // The owner of the queue and of the conversation leaves while the visitor waits.
    await a.stop();
    const lost = await ag1.next(frameOf('unassigned', conv), 15_000);
    assert.equal(lost.reason, 'no_reply');
    assert.equal((await v.next(frameOf('requeued', conv))).reason, 'no_reply');
    assert.equal((await ag2.next(frameOf('assigned', conv), 10_000)).agent, 'ag2');
    await Promise.all([ag1.close(), ag2.close(), v.close()]);
  });
});
