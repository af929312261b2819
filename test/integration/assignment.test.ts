/**
 * Agents and assignment over real sockets, on two broker processes of one cluster (so the queue,
 * agent and conversation actors are spread over both): least-loaded, skills, queue positions,
 * accept, transfer to an agent and to a skill, close, re-queue after the agent's grace period,
 * agent and visitor on different nodes, role / tenant refusals of the new frames, and every bound
 * (queue length, agents per tenant, capacity, skills) at its limit.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { QUEUE_ACTOR_ID } from '../../src/routing/actor-kind.js';
import { rendezvousOwner, shardOf } from '../../src/routing/shard.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { client, request, uid } from '../harness/reception.js';
import type { Frame, TestClient } from '../harness/ws-client.js';

const _auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('assign');
const GRACE_MS = 1500;
const LIMITS = {
  SB_AGENT_GRACE_MS: String(GRACE_MS),
  SB_AGENT_PRESENCE_MS: '300',
  SB_QUEUE_MAX_WAITING: '3',
  SB_MAX_AGENTS_PER_TENANT: '3',
  SB_AGENT_MAX_CAPACITY: '4',
  SB_AGENT_DEFAULT_CAPACITY: '2',
};
let a: BrokerProcess;
let b: BrokerProcess;

async function agentOnline(c: TestClient, capacity: number, skills: string[] = []): Promise<Frame> {
  return request(c, { type: 'status', status: 'online', capacity, skills });
}

/** A visitor opens conversation `conv` with a first message; resolves with the ack. */
async function open(v: TestClient, conv: string): Promise<Frame> {
  v.send({ type: 'send', conv, cmid: `${conv}-1`, body: 'hello, I need help' });
  return v.next(
    (f) => (f.type === 'ack' || f.type === 'error') && (f.cmid === `${conv}-1` || f.ref === `${conv}-1`),
  );
}

const assignedTo = (conv: string) => (f: Frame) => f.type === 'assigned' && f.conv === conv;

before(async () => {
  [a, b] = await Promise.all([
    startBroker({ nodeId: 'assign-a', keyspace, env: LIMITS, readyTimeoutMs: 90_000 }),
    startBroker({ nodeId: 'assign-b', keyspace, env: LIMITS, readyTimeoutMs: 90_000 }),
  ]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]); // Test keyspaces pile up on the shared Cassandra (schema changes slow down with thousands of tables).
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

describe('assignment', () => {
  test('assignment - a new conversation goes to the least-loaded online agent, across nodes', async () => {
    const tenant = uid('t');
    const ag1 = await client(a, tenant, 'ag1', 'agent');
    const ag2 = await client(b, tenant, 'ag2', 'agent');
    await agentOnline(ag1, 3);
    await agentOnline(ag2, 3);
    const visitors = await Promise.all(
      [1, 2, 3, 4].map((i) => client(i % 2 ? b : a, tenant, `v${i}`, 'visitor')),
    );
    const convs = visitors.map((_, i) => uid(`c${i}`));
    const owners: string[] = [];
    for (const [i, v] of visitors.entries()) {
      assert.equal((await open(v, convs[i]!)).type, 'ack');
      const f = await v.next(assignedTo(convs[i]!));
      owners.push(String(f.agent));
    }
    // Alternating: each new conversation goes to whoever holds fewer.
    assert.deepEqual(
      owners.map((o) => owners.filter((x) => x === o).length),
      [2, 2, 2, 2],
    );
    // The agent (on the other node than its visitor, for half of them) got the visitor's first message.
    for (const [i, conv] of convs.entries()) {
      const agent = owners[i] === 'ag1' ? ag1 : ag2;
      const m = await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 1);
      assert.equal(m.from, `v${i + 1}`);
      // ...and answers it across nodes.
      agent.send({ type: 'send', conv, cmid: `r-${conv}`, body: 'On it.' });
      assert.equal(
        (await visitors[i]!.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 2)).body,
        'On it.',
      );
    }
    await Promise.all([ag1, ag2, ...visitors].map((c) => c.close()));
  });

  test('assignment - skills route conversations; without a skilled agent they wait with their position pushed', async () => {
    const tenant = uid('t');
    const general = await client(a, tenant, 'gen', 'agent');
    await agentOnline(general, 4);
    const v1 = await client(b, tenant, 'v1', 'visitor');
    const v2 = await client(b, tenant, 'v2', 'visitor');
    // Conversations created through the API carry a skill; over the socket: the create path is the same actor.
    // Here the skill comes from a transfer: open, then the general agent hands it to 'fr'.
    const c1 = uid('c');
    const c2 = uid('c');
    await open(v1, c1);
    await v1.next(assignedTo(c1));
    await open(v2, c2);
    await v2.next(assignedTo(c2));
    await general.next(assignedTo(c1));
    await general.next(assignedTo(c2));
    const t1 = await request(general, { type: 'transfer', conv: c1, to: { skill: 'fr' } });
    assert.equal(t1.status, 'queued');
    assert.equal((await v1.next((f) => f.type === 'queue' && f.conv === c1)).position, 1);
    await request(general, { type: 'transfer', conv: c2, to: { skill: 'fr' } });
    assert.equal((await v2.next((f) => f.type === 'queue' && f.conv === c2)).position, 2);
    // The general agent lost both.
    assert.equal((await general.next((f) => f.type === 'unassigned' && f.conv === c1)).reason, 'transfer');
    // A French-speaking agent comes online: it gets both, oldest first; positions are gone.
    const fr = await client(a, tenant, 'fr1', 'agent');
    await agentOnline(fr, 4, ['fr']);
    assert.equal((await v1.next(assignedTo(c1))).agent, 'fr1');
    assert.equal((await v2.next(assignedTo(c2))).agent, 'fr1');
    // The new agent got the history it had not seen.
    assert.equal((await fr.next((f) => f.type === 'msg' && f.conv === c1 && f.seq === 1)).from, 'v1');
    // The former agent can no longer write or read it.
    general.send({ type: 'send', conv: c1, cmid: 'late', body: 'still here?' });
    assert.equal((await general.next((f) => f.type === 'error' && f.ref === 'late')).code, 'forbidden');
    await Promise.all([general, fr, v1, v2].map((c) => c.close()));
  });

  test('assignment - positions move up as the queue drains; accept takes one by hand; close frees the slot', async () => {
    const tenant = uid('t');
    const ag = await client(a, tenant, 'ag', 'agent');
    await request(ag, { type: 'status', status: 'away', capacity: 1 });
    const vs = await Promise.all([1, 2, 3].map((i) => client(b, tenant, `v${i}`, 'visitor')));
    const convs = vs.map(() => uid('c'));
    for (const [i, v] of vs.entries()) {
      await open(v, convs[i]!);
      assert.equal((await v.next((f) => f.type === 'queue' && f.conv === convs[i])).position, i + 1);
    }
    // Away: nothing is assigned by itself, but the agent may take the second one by hand.
    const taken = await request(ag, { type: 'accept', conv: convs[1] });
    assert.equal(taken.agent, 'ag');
    assert.equal((await vs[1]!.next(assignedTo(convs[1]!))).agent, 'ag');
    assert.equal((await vs[2]!.next((f) => f.type === 'queue' && f.conv === convs[2])).position, 2);
    // Full now (capacity 1): accept is refused.
    await assert.rejects(request(ag, { type: 'accept', conv: convs[0] }), { code: 'forbidden' });
    // Online + close of the held one: the oldest waiting one comes next, the last moves to 1.
    await request(ag, { type: 'status', status: 'online' });
    const closed = await request(ag, { type: 'close', conv: convs[1], reason: 'done' });
    assert.equal(closed.op, 'close');
    assert.equal((await vs[1]!.next((f) => f.type === 'closed' && f.conv === convs[1])).reason, 'done');
    assert.equal((await vs[0]!.next(assignedTo(convs[0]!))).agent, 'ag');
    assert.equal((await vs[2]!.next((f) => f.type === 'queue' && f.conv === convs[2])).position, 1);
    await Promise.all([ag, ...vs].map((c) => c.close()));
  });

  test('assignment - transfer to a named agent; the target must be able to take it', async () => {
    const tenant = uid('t');
    const ag1 = await client(a, tenant, 'ag1', 'agent');
    await agentOnline(ag1, 2);
    const v = await client(b, tenant, 'v', 'visitor');
    const conv = uid('c');
    await open(v, conv);
    await v.next(assignedTo(conv));
    const ag2 = await client(b, tenant, 'ag2', 'agent');
    await request(ag2, { type: 'status', status: 'away', capacity: 2 });
    await assert.rejects(request(ag1, { type: 'transfer', conv, to: { agent: 'ag2' } }), {
      code: 'conflict',
    });
    await assert.rejects(request(ag1, { type: 'transfer', conv, to: { agent: 'nobody' } }), {
      code: 'conflict',
    });
    await agentOnline(ag2, 2);
    // Only the holder may transfer.
    await assert.rejects(request(ag2, { type: 'transfer', conv, to: { agent: 'ag2' } }), {
      code: 'forbidden',
    });
    const t = await request(ag1, { type: 'transfer', conv, to: { agent: 'ag2' } });
    assert.equal(t.agent, 'ag2');
    assert.equal((await ag2.next(assignedTo(conv))).agent, 'ag2');
    assert.equal((await ag1.next((f) => f.type === 'unassigned' && f.conv === conv)).reason, 'transfer');
    assert.equal(
      (await v.next((f) => f.type === 'assigned' && f.conv === conv && f.agent === 'ag2')).agent,
      'ag2',
    );
    await Promise.all([ag1, ag2, v].map((c) => c.close()));
  });

  test('assignment - an agent gone beyond the grace period has its conversations re-queued; within it, kept', async () => {
    const tenant = uid('t');
    const ag1 = await client(a, tenant, 'ag1', 'agent');
    await agentOnline(ag1, 2);
    const v = await client(b, tenant, 'v', 'visitor');
    const conv = uid('c');
    await open(v, conv);
    assert.equal((await v.next(assignedTo(conv))).agent, 'ag1');
    // A short drop and reconnect (to the other node) within the grace period keeps the conversation.
    await ag1.close();
    const back = await client(b, tenant, 'ag1', 'agent');
    await new Promise((r) => setTimeout(r, GRACE_MS + 1000));
    back.send({ type: 'send', conv, cmid: 'still', body: 'still mine' });
    assert.equal((await back.next((f) => f.type === 'ack' || f.type === 'error')).type, 'ack');
    // Gone for longer than the grace period: re-queued, then given to the agent that is there.
    const ag2 = await client(a, tenant, 'ag2', 'agent');
    await request(ag2, { type: 'status', status: 'away', capacity: 2 });
    await back.close();
    assert.equal((await v.next((f) => f.type === 'queue' && f.conv === conv)).position, 1);
    await agentOnline(ag2, 2);
    assert.equal(
      (await v.next((f) => f.type === 'assigned' && f.conv === conv && f.agent === 'ag2')).agent,
      'ag2',
    );
    await Promise.all([ag2, v].map((c) => c.close()));
  });

  test('assignment - visitors and agents of the wrong role, tenant or conversation are refused', async () => {
    const tenant = uid('t');
    const ag = await client(a, tenant, 'ag', 'agent');
    await agentOnline(ag, 2);
    const v = await client(b, tenant, 'v', 'visitor');
    const conv = uid('c');
    await open(v, conv);
    await v.next(assignedTo(conv));
    // Agent-only frames from a visitor, visitor-only from an agent.
    for (const frame of [
      { type: 'accept', conv },
      { type: 'transfer', conv, to: { skill: 'x' } },
      { type: 'status', status: 'online' },
    ])
      await assert.rejects(request(v, frame), { code: 'forbidden' });
    await assert.rejects(request(ag, { type: 'rate', conv, score: 5 }), { code: 'forbidden' });
    // Another visitor of the tenant; an agent not holding it; an agent of another tenant.
    const other = await client(a, tenant, 'v-other', 'visitor');
    const idle = await client(a, tenant, 'ag-idle', 'agent');
    const foreign = await client(b, uid('t'), 'ag', 'agent');
    for (const frame of [
      { type: 'read', conv, seq: 1 },
      { type: 'close', conv },
    ]) {
      await assert.rejects(request(other, frame), { code: 'forbidden' });
      await assert.rejects(request(idle, frame), { code: 'forbidden' });
      await assert.rejects(request(foreign, frame), { code: 'not_found' });
    }
    for (const c of [other, idle, foreign]) {
      c.send({ type: 'sync', conv, since: 0 });
      const f = await c.next((x) => x.type === 'error' || x.type === 'messages');
      assert.equal(f.type, 'error');
    }
    await assert.rejects(request(idle, { type: 'transfer', conv, to: { agent: 'ag-idle' } }), {
      code: 'forbidden',
    });
    // Bad fields are answered, the socket keeps serving.
    await assert.rejects(request(v, { type: 'rate', conv, score: 9 }), { code: 'invalid_field' });
    await assert.rejects(request(ag, { type: 'transfer', conv, to: { agent: 'a', skill: 'b' } }), {
      code: 'invalid_field',
    });
    const rated = await request(v, { type: 'rate', conv, score: 4, comment: 'quick' });
    assert.equal(rated.score, 4);
    await Promise.all([ag, v, other, idle, foreign].map((c) => c.close()));
  });

  test('assignment - limits: queue length, agents per tenant, capacity and skills', async () => {
    const tenant = uid('t');
    const vs = await Promise.all([1, 2, 3, 4].map((i) => client(a, tenant, `v${i}`, 'visitor')));
    const convs = vs.map(() => uid('c'));
    // No agent: three wait (SB_QUEUE_MAX_WAITING=3), the fourth is refused busy and closed.
    for (let i = 0; i < 3; i++) {
      assert.equal((await open(vs[i]!, convs[i]!)).type, 'ack');
      await vs[i]!.next((f) => f.type === 'queue' && f.conv === convs[i]);
    }
    const refused = await open(vs[3]!, convs[3]!);
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'busy');
    assert.equal((await vs[3]!.next((f) => f.type === 'closed' && f.conv === convs[3])).reason, 'queue_full');
    // Agents per tenant (SB_MAX_AGENTS_PER_TENANT=3): the fourth agent is refused busy. They connect
    // one after another so the first three are the roster.
    const agents: TestClient[] = [];
    for (let i = 1; i <= 4; i++) {
      const ag = await client(b, tenant, `ag${i}`, 'agent');
      agents.push(ag);
      if (i <= 3) await request(ag, { type: 'status', status: 'away', capacity: 4 });
    }
    await assert.rejects(request(agents[3]!, { type: 'status', status: 'online' }), { code: 'busy' });
    // Capacity above SB_AGENT_MAX_CAPACITY=4, and too many skills (16), are invalid.
    await assert.rejects(request(agents[0]!, { type: 'status', status: 'online', capacity: 5 }), {
      code: 'invalid_field',
    });
    const skills = Array.from({ length: 17 }, (_, i) => `s${i}`);
    await assert.rejects(request(agents[0]!, { type: 'status', status: 'online', skills }), {
      code: 'invalid_field',
    });
    await Promise.all([...vs, ...agents].map((c) => c.close()));
  });

  test('assignment - the tenant queue survives kill -9 of the node hosting its actor (state rebuilt from Cassandra)', async () => {
    const c = await startBroker({ nodeId: 'assign-c', keyspace, env: LIMITS, readyTimeoutMs: 90_000 });
    const members = [a.nodeId, b.nodeId, c.nodeId];
    // Wait until every node sees three members and every shard has an owner.
    for (let i = 0; i < 100; i++) {
      const views = await Promise.all(
        [a, b, c].map(async (n) => (await fetch(`${n.httpBase}/readyz`)).json() as Promise<Frame>),
      );
      if (views.every((v) => (v.members as string[]).length === 3 && v.shardsOwned === 1024)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // A tenant whose queue actor lives on c (rendezvous owner of its shard).
    let tenant = uid('t');
    while (rendezvousOwner(shardOf(tenant, QUEUE_ACTOR_ID), members) !== c.nodeId) tenant = uid('t');
    // An agent with room for one, away for now: it is in the stored roster when the queue moves.
    const ag = await client(b, tenant, 'ag', 'agent');
    await request(ag, { type: 'status', status: 'away', capacity: 1 });
    const v1 = await client(a, tenant, 'v1', 'visitor');
    const v2 = await client(a, tenant, 'v2', 'visitor');
    const [c1, c2] = [uid('c'), uid('c')];
    await open(v1, c1);
    assert.equal((await v1.next((f) => f.type === 'queue' && f.conv === c1)).position, 1);
    await open(v2, c2);
    assert.equal((await v2.next((f) => f.type === 'queue' && f.conv === c2)).position, 2);

    await c.kill();
    // The agent comes online once the queue's shard has a new owner.
    for (let attempt = 0; ; attempt++) {
      try {
        await request(ag, { type: 'status', status: 'online' });
        break;
      } catch (err) {
        if (
          attempt > 20 ||
          !['unavailable', 'timeout', 'busy'].includes((err as { code?: string }).code ?? '')
        )
          throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    // The rebuilt queue still knows both, in order: the older one is assigned, the other moves to 1.
    assert.equal((await v1.next(assignedTo(c1), 20_000)).agent, 'ag');
    assert.equal(
      (await v2.next((f) => f.type === 'queue' && f.conv === c2 && f.position === 1, 20_000)).position,
      1,
    );
    await Promise.all([v1, v2, ag].map((x) => x.close()));
  });
});
