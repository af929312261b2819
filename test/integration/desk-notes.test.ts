/**
 * Private notes (issue #17 item 2) over real sockets on a node with real NATS and Cassandra: a note is
 * acked like a message and takes the next seq, its agent gets it marked internal, the visitor never
 * does — not live, not in `sync` (also after a reconnect), not in the history API — and gets only a
 * content-free `skip` (live) or `skipped` seq (sync) in its place, so its seq stays gap-free. A new agent after a transfer gets the notes; business systems get
 * them marked internal. Visitors cannot write notes, agents only in their own conversations.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { type DeskEnv, outEvents, quietFor, startDeskEnv } from '../harness/desk.js';
import { TEST_JWT_SECRET } from '../harness/env.js';
import type { Frame } from '../harness/ws-client.js';

let env: DeskEnv;
const auth = createAuthenticator(TEST_JWT_SECRET);

before(async () => {
  env = await startDeskEnv('dnotes');
});
after(async () => {
  await env?.stop();
});

const items = (f: Frame) => f['items'] as Frame[];

describe('desk notes', () => {
  test('desk notes - the agent gets its note marked internal; the visitor never sees it, live, in sync, after reconnect or in history', async () => {
    const tenant = env.uid('t');
    const ev = await outEvents(env, tenant);
    const { conv, agent, visitor, visitorId } = await env.pair(tenant);
    const note = await env.acked(agent, {
      type: 'note',
      conv,
      cmid: 'n1',
      body: 'VIP customer, offer the refund without asking',
    });
    assert.equal(note['seq'], 2);
    const m = await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 2);
    assert.equal(m['internal'], true);
    assert.equal(m['body'], 'VIP customer, offer the refund without asking');
    // The next visible message reaches the visitor; the note before it never does.
    await env.acked(agent, { type: 'send', conv, cmid: 'a1', body: 'Your refund is on its way' });
    const live = await visitor.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 3);
    assert.equal(live['body'], 'Your refund is on its way');
    assert.deepEqual(await quietFor(visitor, 300, (f) => f.type === 'msg' && f.seq === 2), []);
    // In its place, a content-free `skip`, so the visitor's seq stays gap-free.
    const skip = await visitor.next((f) => f.type === 'skip' && f.conv === conv);
    assert.deepEqual(skip, { type: 'skip', conv, seq: 2 });

    // A note as the newest row: the visitor's sync stops before it and says how far it reached.
    await env.acked(agent, { type: 'note', conv, cmid: 'n2', body: 'watch for a chargeback' });
    visitor.send({ type: 'sync', conv, since: 3 });
    const tail = await visitor.next((f) => f.type === 'messages' && f.conv === conv);
    assert.deepEqual(items(tail), []);
    assert.deepEqual(tail['skipped'], [4]);

    // Reconnect and sync from scratch: seqs 1 and 3 only.
    await visitor.close();
    const again = await env.client(tenant, visitorId, 'visitor');
    again.send({ type: 'sync', conv, since: 0 });
    const all = await again.next((f) => f.type === 'messages' && f.conv === conv);
    assert.deepEqual(
      items(all).map((i) => i['seq']),
      [1, 3],
    );
    assert.deepEqual(all['skipped'], [2, 4]);
    assert.ok(!JSON.stringify(all).includes('VIP') && !JSON.stringify(all).includes('chargeback'));

    // The history API read with the visitor's token: no note either.
    const token = await auth.sign({ tenant, sub: visitorId, role: 'visitor' }, 600);
    const page = await env.http('GET', `/api/v1/conversations/${conv}/messages`, token);
    assert.equal(page.status, 200);
    assert.deepEqual(
      (page.body['items'] as Frame[]).map((i) => i['seq']),
      [3, 1],
    );

    // The agent's sync has everything, notes marked.
    agent.send({ type: 'sync', conv, since: 0 });
    const mine = await agent.next((f) => f.type === 'messages' && f.conv === conv);
    assert.deepEqual(
      items(mine).map((i) => [i['seq'], i['internal'] ?? false]),
      [
        [1, false],
        [2, true],
        [3, false],
        [4, true],
      ],
    );
    // Business systems get the note, marked internal.
    const [evNote] = await ev.wait((e) => e['type'] === 'message' && e['seq'] === 2);
    assert.equal(evNote?.['internal'], true);
    const [evMsg] = await ev.wait((e) => e['type'] === 'message' && e['seq'] === 3);
    assert.equal(evMsg?.['internal'], undefined);
    await ev.stop();
    await Promise.all([agent.close(), again.close()]);
  });

  test('desk notes - a new agent after a transfer gets the notes, live and in sync', async () => {
    const tenant = env.uid('t');
    const { conv, agent, visitor } = await env.pair(tenant);
    await env.acked(agent, { type: 'note', conv, cmid: 'n1', body: 'asked twice about the invoice' });
    const second = await env.client(tenant, 'ag-second', 'agent');
    await env.request(second, { type: 'status', status: 'online', capacity: 5 });
    await env.request(agent, { type: 'transfer', conv, to: { agent: 'ag-second' } });
    await second.next((f) => f.type === 'assigned' && f.conv === conv);
    const pushed = await second.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 2);
    assert.equal(pushed['internal'], true);
    assert.equal(pushed['body'], 'asked twice about the invoice');
    second.send({ type: 'sync', conv, since: 1 });
    const synced = await second.next((f) => f.type === 'messages' && f.conv === conv);
    assert.equal(items(synced)[0]?.['internal'], true);
    // The first agent no longer holds it: no more notes from it.
    await assert.rejects(env.acked(agent, { type: 'note', conv, cmid: 'n2', body: 'too late' }), {
      code: 'forbidden',
    });
    await Promise.all([agent.close(), second.close(), visitor.close()]);
  });

  test('desk notes - a repeated cmid stores one note; visitors cannot write notes', async () => {
    const tenant = env.uid('t');
    const { conv, agent, visitor } = await env.pair(tenant);
    const first = await env.acked(agent, { type: 'note', conv, cmid: 'dup', body: 'once' });
    const second = await env.acked(agent, { type: 'note', conv, cmid: 'dup', body: 'once' });
    assert.equal(second['seq'], first['seq']);
    assert.equal(second['id'], first['id']);
    visitor.send({ type: 'note', conv, cmid: 'v-note', body: 'let me in' });
    const refused = await visitor.next((f) => f.type === 'error' && f.ref === 'v-note');
    assert.equal(refused['code'], 'forbidden');
    agent.send({ type: 'sync', conv, since: 0 });
    const rows = await agent.next((f) => f.type === 'messages' && f.conv === conv);
    assert.equal(items(rows).length, 2);
    await Promise.all([agent.close(), visitor.close()]);
  });
});
