/**
 * Labels on conversations (issue #17 item 3) over real sockets, NATS and Cassandra: set and removed from
 * the agent's socket and the HTTP API, stored with the conversation (read back from Cassandra), listed
 * and filtered by label through the HTTP API, carried by out events (a `labeled` event, and `labels`
 * on every later event). Bounds at their limit: labels per conversation and label length.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openCassandraStore } from '../../src/store/cassandra-store.js';
import { utcMonth } from '../../src/store/desk-store.js';
import { API_KEY, DESK_LIMITS, DESK_TENANT, type DeskEnv, outEvents, startDeskEnv } from '../harness/desk.js';
import { TEST_CASSANDRA } from '../harness/env.js';
import type { Frame } from '../harness/ws-client.js';

let env: DeskEnv;

before(async () => {
  env = await startDeskEnv('dlabels');
});
after(async () => {
  await env?.stop();
});

const convsOf = (body: Record<string, unknown>) => (body['items'] as Frame[]).map((i) => i['conv']);

describe('desk labels', () => {
  test('desk labels - an agent labels its conversation; the HTTP API lists and filters by label; events carry them', async () => {
    const ev = await outEvents(env, DESK_TENANT);
    const { conv, agent, visitor } = await env.pair(DESK_TENANT);
    const other = await env.pair(DESK_TENANT);
    const done = await env.request(agent, { type: 'label', conv, add: ['vip', 'refund'] });
    assert.deepEqual(done['labels'], ['refund', 'vip']);
    const pushed = await agent.next((f) => f.type === 'labels' && f.conv === conv);
    assert.deepEqual(pushed['labels'], ['refund', 'vip']);
    const [labeled] = await ev.wait((e) => e['type'] === 'labeled' && e['conv'] === conv);
    assert.deepEqual(
      [labeled?.['labels'], labeled?.['added']],
      [
        ['refund', 'vip'],
        ['vip', 'refund'],
      ],
    );
    // Later events of the conversation name its labels.
    await env.acked(agent, { type: 'send', conv, cmid: 'after-label', body: 'looking into it' });
    const [msg] = await ev.wait((e) => e['type'] === 'message' && e['conv'] === conv && e['seq'] === 2);
    assert.deepEqual(msg?.['labels'], ['refund', 'vip']);

    // The HTTP API: the shop labels the other conversation; listing by label finds each.
    const set = await env.http('POST', `/api/v1/conversations/${other.conv}/labels`, API_KEY, {
      add: ['vip'],
    });
    assert.equal(set.status, 200);
    assert.deepEqual(set.body['labels'], ['vip']);
    const vip = await env.http('GET', '/api/v1/conversations?label=vip', API_KEY);
    assert.equal(vip.status, 200);
    assert.deepEqual(new Set(convsOf(vip.body)), new Set([conv, other.conv]));
    assert.equal(vip.body['month'], utcMonth(Date.now()));
    const refund = await env.http('GET', '/api/v1/conversations?label=refund', API_KEY);
    assert.deepEqual(convsOf(refund.body), [conv]);
    // Removed: gone from the listing, from the conversation, and from the next events.
    await env.request(agent, { type: 'label', conv, remove: ['vip'] });
    const after = await env.http('GET', '/api/v1/conversations?label=vip', API_KEY);
    assert.deepEqual(convsOf(after.body), [other.conv]);
    const old = await env.http('GET', '/api/v1/conversations?label=vip&month=2001-01', API_KEY);
    assert.deepEqual(convsOf(old.body), []);
    assert.equal(
      (await env.http('GET', '/api/v1/conversations?label=vip&month=2001-13', API_KEY)).status,
      400,
    );
    assert.equal((await env.http('GET', '/api/v1/conversations', API_KEY)).status, 400);

    // Stored with the conversation: read back from Cassandra.
    const store = await openCassandraStore({
      contactPoints: [TEST_CASSANDRA],
      localDataCenter: 'datacenter1',
      keyspace: env.keyspace,
      migrate: false,
    });
    try {
      const meta = await store.chatStore().loadMeta(DESK_TENANT, conv);
      assert.deepEqual(Object.keys(meta?.labels ?? {}), ['refund']);
    } finally {
      await store.close();
    }
    await ev.stop();
    await Promise.all([agent.close(), visitor.close(), other.agent.close(), other.visitor.close()]);
  });

  test('desk labels - bounds at their limit: labels per conversation and label length', async () => {
    const tenant = env.uid('t');
    const { conv, agent, visitor } = await env.pair(tenant);
    const longest = 'l'.repeat(DESK_LIMITS.maxLabelChars);
    const full = await env.request(agent, { type: 'label', conv, add: ['a', 'b', longest] });
    assert.equal((full['labels'] as string[]).length, DESK_LIMITS.maxLabelsPerConversation);
    await assert.rejects(env.request(agent, { type: 'label', conv, add: ['d'] }), { code: 'invalid_field' });
    // Swapping one for another in one frame stays within the bound.
    const swapped = await env.request(agent, { type: 'label', conv, add: ['d'], remove: ['a'] });
    assert.deepEqual(swapped['labels'], ['b', 'd', longest]);
    await env.request(agent, { type: 'label', conv, remove: ['b'] });
    await assert.rejects(env.request(agent, { type: 'label', conv, add: [`${longest}x`] }), {
      code: 'invalid_field',
    });
    await assert.rejects(env.request(agent, { type: 'label', conv, add: ['no spaces'] }), {
      code: 'invalid_field',
    });
    // Visitors do not label; agents only their own conversations.
    await assert.rejects(env.request(visitor, { type: 'label', conv, add: ['x'] }), { code: 'forbidden' });
    const stranger = await env.client(tenant, 'stranger', 'agent');
    await assert.rejects(env.request(stranger, { type: 'label', conv, add: ['x'] }), { code: 'forbidden' });
    await Promise.all([agent.close(), visitor.close(), stranger.close()]);
  });
});
