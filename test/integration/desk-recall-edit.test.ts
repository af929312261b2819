/**
 * Recall and edit (issue #17 item 4) over real sockets, real NATS and Cassandra: each is a new row that
 * names its target, acked once durable, de-duplicated by cmid; every reader (live push, `sync`, the
 * history API, the Cassandra store read directly) sees the target's current state with a marker; a
 * visitor never reads a recalled body again, nor the edited versions of it; the replaced bodies are in
 * the audit only an `audit` API key reads. Bounds at their limit: the recall window, the edit size and
 * the edits per message (test/harness/desk.ts DESK_LIMITS).
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { openCassandraStore } from '../../src/store/cassandra-store.js';
import {
  ADMIN_KEY,
  API_KEY,
  AUDIT_KEY,
  DESK_LIMITS,
  DESK_TENANT,
  type DeskEnv,
  outEvents,
  startDeskEnv,
} from '../harness/desk.js';
import { TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import type { Frame, TestClient } from '../harness/ws-client.js';

let env: DeskEnv;
const auth = createAuthenticator(TEST_JWT_SECRET);

before(async () => {
  env = await startDeskEnv('drecall');
});
after(async () => {
  await env?.stop();
});

const items = (f: Frame) => f['items'] as Frame[];

async function syncAll(c: TestClient, conv: string): Promise<Frame> {
  c.send({ type: 'sync', conv, since: 0 });
  return c.next((f) => f.type === 'messages' && f.conv === conv);
}

describe('desk recall and edit', () => {
  test('desk recall - a visitor recalls its message: both sides are told, and no reader sees the body again', async () => {
    const { conv, agent, visitor, visitorId } = await env.pair(DESK_TENANT);
    const ev = await outEvents(env, DESK_TENANT);
    const secret = 'my card is 4111 1111 1111 1111 oops';
    // What no reader may see again. Not '4111' alone: ids carry the test's pid, and a pid such as
    // 24111 puts it in every id (a CI run failed so).
    const leaked = (v: unknown) => JSON.stringify(v).includes('4111 1111');
    const sent = await env.acked(visitor, { type: 'send', conv, cmid: 'oops', body: secret });
    await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === sent['seq']);
    const recall = await env.acked(visitor, { type: 'recall', conv, cmid: 'undo', seq: sent['seq'] });
    assert.equal(recall['seq'], 3);
    for (const c of [visitor, agent]) {
      const m = await c.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 3);
      assert.equal(m['change'], 'recall');
      assert.equal(m['target'], 2);
      assert.equal(m['body'], '');
    }
    // The same cmid again: the same ack, nothing stored twice.
    const again = await env.acked(visitor, { type: 'recall', conv, cmid: 'undo', seq: sent['seq'] });
    assert.equal(again['id'], recall['id']);

    // Reconnect and sync: the message reads recalled, without its body.
    await visitor.close();
    const back = await env.client(DESK_TENANT, visitorId, 'visitor');
    const synced = await syncAll(back, conv);
    const target = items(synced).find((i) => i['seq'] === 2);
    assert.equal(target?.['recalled'], true);
    assert.equal(target?.['body'], '');
    assert.equal(items(synced).length, 3);
    assert.ok(!leaked(synced), JSON.stringify(synced));
    // The history API (visitor token) and the agent's sync: the same.
    const token = await auth.sign({ tenant: DESK_TENANT, sub: visitorId, role: 'visitor' }, 600);
    const page = await env.http('GET', `/api/v1/conversations/${conv}/messages`, token);
    assert.equal(page.status, 200);
    assert.ok(!leaked(page.body), JSON.stringify(page.body));
    assert.equal((page.body['items'] as Frame[]).find((i) => i['seq'] === 2)?.['recalled'], true);
    const agentView = await syncAll(agent, conv);
    assert.equal(items(agentView).find((i) => i['seq'] === 2)?.['recalled'], true);
    assert.ok(!leaked(agentView), JSON.stringify(agentView));
    // Business systems: the recall goes out as a message event with change and target.
    const [e] = await ev.wait((x) => x['type'] === 'message' && x['seq'] === 3);
    assert.equal(e?.['change'], 'recall');
    assert.equal(e?.['target'], 2);

    // The original stays in the audit, for auditors only.
    const audit = await env.http('GET', `/api/v1/conversations/${conv}/audit`, AUDIT_KEY);
    assert.equal(audit.status, 200);
    const entries = audit.body['items'] as Frame[];
    assert.equal(entries.length, 1);
    assert.deepEqual(
      [entries[0]?.['kind'], entries[0]?.['target'], entries[0]?.['changeSeq'], entries[0]?.['body']],
      ['recall', 2, 3, secret],
    );
    for (const key of [API_KEY, ADMIN_KEY]) {
      const refused = await env.http('GET', `/api/v1/conversations/${conv}/audit`, key);
      assert.equal(refused.status, 403);
    }
    const agentToken = await auth.sign({ tenant: DESK_TENANT, sub: 'x', role: 'agent' }, 600);
    assert.equal((await env.http('GET', `/api/v1/conversations/${conv}/audit`, agentToken)).status, 403);
    await ev.stop();
    await Promise.all([back.close(), agent.close()]);
  });

  test('desk recall - the window is the tenant bound: inside it a recall works, past it the answer is conflict', async () => {
    const tenant = env.uid('t');
    const { conv, agent, visitor } = await env.pair(tenant);
    const quick = await env.acked(agent, { type: 'send', conv, cmid: 'q', body: 'wrong answer' });
    await env.acked(agent, { type: 'recall', conv, cmid: 'rq', seq: quick['seq'] });
    const slow = await env.acked(agent, { type: 'send', conv, cmid: 's', body: 'kept answer' });
    await new Promise((r) => setTimeout(r, DESK_LIMITS.recallWindowS * 1000 + 300));
    await assert.rejects(env.acked(agent, { type: 'recall', conv, cmid: 'rs', seq: slow['seq'] }), {
      code: 'conflict',
    });
    // Only the sender recalls; a recall is not itself recalled; a message is recalled once.
    const fresh = await env.acked(visitor, { type: 'send', conv, cmid: 'vf', body: 'mine' });
    await assert.rejects(env.acked(agent, { type: 'recall', conv, cmid: 'x1', seq: fresh['seq'] }), {
      code: 'forbidden',
    });
    const r = await env.acked(visitor, { type: 'recall', conv, cmid: 'x2', seq: fresh['seq'] });
    await assert.rejects(env.acked(visitor, { type: 'recall', conv, cmid: 'x3', seq: r['seq'] }), {
      code: 'invalid_field',
    });
    await assert.rejects(env.acked(visitor, { type: 'recall', conv, cmid: 'x4', seq: fresh['seq'] }), {
      code: 'conflict',
    });
    await assert.rejects(env.acked(visitor, { type: 'recall', conv, cmid: 'x5', seq: 999 }), {
      code: 'not_found',
    });
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('desk edit - an agent edits its message: the visitor sees the new text with a marker; size and count bounds at their limit', async () => {
    const { conv, agent, visitor } = await env.pair(DESK_TENANT);
    const m = await env.acked(agent, { type: 'send', conv, cmid: 'e0', body: 'Your order ships Monday' });
    const seq = m['seq'];
    const atLimit = 'x'.repeat(DESK_LIMITS.maxEditChars - 8);
    const edit = await env.acked(agent, {
      type: 'edit',
      conv,
      cmid: 'e1',
      seq,
      body: `Tuesday ${atLimit}`,
    });
    const live = await visitor.next((f) => f.type === 'msg' && f.conv === conv && f.seq === edit['seq']);
    assert.deepEqual([live['change'], live['target'], live['body']], ['edit', seq, `Tuesday ${atLimit}`]);
    // One character past maxEditChars.
    await assert.rejects(
      env.acked(agent, {
        type: 'edit',
        conv,
        cmid: 'e2',
        seq,
        body: 'y'.repeat(DESK_LIMITS.maxEditChars + 1),
      }),
      { code: 'payload_too_large' },
    );
    await env.acked(agent, { type: 'edit', conv, cmid: 'e3', seq, body: 'ships Wednesday' });
    // maxEditsPerMessage (2) reached.
    await assert.rejects(env.acked(agent, { type: 'edit', conv, cmid: 'e4', seq, body: 'Thursday' }), {
      code: 'invalid_field',
    });
    const synced = await syncAll(visitor, conv);
    const target = items(synced).find((i) => i['seq'] === seq);
    assert.deepEqual([target?.['edited'], target?.['body']], [true, 'ships Wednesday']);
    // Visitors do not edit; agents edit only their own messages.
    visitor.send({ type: 'edit', conv, cmid: 've', seq: 1, body: 'changed' });
    assert.equal((await visitor.next((f) => f.type === 'error' && f.ref === 've'))['code'], 'forbidden');
    await assert.rejects(env.acked(agent, { type: 'edit', conv, cmid: 'ae', seq: 1, body: 'changed' }), {
      code: 'forbidden',
    });
    const audit = await env.http('GET', `/api/v1/conversations/${conv}/audit`, AUDIT_KEY);
    assert.deepEqual(
      (audit.body['items'] as Frame[]).map((a) => [a['kind'], a['body']]),
      [
        ['edit', 'Your order ships Monday'],
        ['edit', `Tuesday ${atLimit}`],
      ],
    );
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('desk recall - recalling an edited message hides every version, in the cache and in Cassandra alike', async () => {
    const tenant = env.uid('t');
    const { conv, agent, visitor, visitorId } = await env.pair(tenant);
    const m = await env.acked(agent, { type: 'send', conv, cmid: 'v1', body: 'discount code ALPHA' });
    const e = await env.acked(agent, { type: 'edit', conv, cmid: 'v2', seq: m['seq'], body: 'code BRAVO' });
    await env.acked(agent, { type: 'recall', conv, cmid: 'v3', seq: m['seq'] });
    await visitor.close();
    const back = await env.client(tenant, visitorId, 'visitor');
    const synced = await syncAll(back, conv);
    const text = JSON.stringify(synced);
    assert.ok(!text.includes('ALPHA') && !text.includes('BRAVO'), text);
    const byseq = new Map(items(synced).map((i) => [i['seq'], i]));
    assert.equal(byseq.get(m['seq'])?.['recalled'], true);
    assert.equal(byseq.get(e['seq'])?.['recalled'], true);
    assert.equal(byseq.get(e['seq'])?.['change'], 'edit');
    // Straight from Cassandra (no cache): the same current state.
    const store = await openCassandraStore({
      contactPoints: [TEST_CASSANDRA],
      localDataCenter: 'datacenter1',
      keyspace: env.keyspace,
      migrate: false,
    });
    try {
      const rows = (await store.after(tenant, conv, 0, 100)).items;
      assert.ok(!JSON.stringify(rows).includes('ALPHA') && !JSON.stringify(rows).includes('BRAVO'));
      assert.deepEqual(
        rows.map((r) => [r.seq, r.recalled ?? false]),
        [
          [1, false],
          [2, true],
          [3, true],
          [4, false],
        ],
      );
      const page = (await store.page(tenant, conv, undefined, 10)).items;
      assert.equal(page.find((r) => r.seq === 2)?.body, '');
      assert.equal((await store.message(tenant, conv, 3))?.recalled, true);
    } finally {
      await store.close();
    }
    await Promise.all([agent.close(), back.close()]);
  });
});
