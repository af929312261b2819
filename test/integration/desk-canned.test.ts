/**
 * Canned replies (issue #17 item 1) over real sockets, NATS and Cassandra: CRUD over the HTTP API for
 * the tenant (admin API key) and per agent (admin key or the agent's own token); looked up by shortcut
 * from the agent's socket, the agent's own before the tenant's, with placeholders filled from the
 * conversation and from its business context (a context responder on NATS answers the `order` kind).
 * Bounds at their limit: replies per tenant and per agent.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { ADMIN_KEY, API_KEY, DESK_LIMITS, DESK_TENANT, type DeskEnv, startDeskEnv } from '../harness/desk.js';
import { TEST_JWT_SECRET, TEST_NATS_URL } from '../harness/env.js';
import type { Frame } from '../harness/ws-client.js';

let env: DeskEnv;
let nats: Transport;
const auth = createAuthenticator(TEST_JWT_SECRET);

before(async () => {
  env = await startDeskEnv('dcanned');
  nats = await connectTransport([TEST_NATS_URL], 'desk-canned-context');
  // The shop's order system: answers the `order` context of any conversation.
  nats.subscribe(clusterNames(env.keyspace).bizContextSubject(DESK_TENANT, 'order'), (m) => {
    const q = JSON.parse(new TextDecoder().decode(m.data)) as { conv: string };
    m.respond(new TextEncoder().encode(JSON.stringify({ id: `SO-${q.conv.length}`, tracking: '1Z999' })));
  });
  await nats.flush();
});
after(async () => {
  await nats?.close();
  await env?.stop();
});

const shortcuts = (body: Record<string, unknown>) => (body['items'] as Frame[]).map((i) => i['shortcut']);

describe('desk canned replies', () => {
  test('desk canned - created over HTTP, filled from the conversation and its order context on the agent socket', async () => {
    const greet = 'Hi {{visitor}}, {{agent}} here. Order {{order.id}} ships with {{order.tracking}}.';
    const put = await env.http('PUT', '/api/v1/canned/ship', ADMIN_KEY, { title: 'Shipping', body: greet });
    assert.equal(put.status, 201);
    assert.equal((await env.http('PUT', '/api/v1/canned/ship', ADMIN_KEY, { body: greet })).status, 200);
    await env.http('PUT', '/api/v1/canned/odd', ADMIN_KEY, { body: 'Ref {{order.none}} for {{subject}}' });
    const list = await env.http('GET', '/api/v1/canned', ADMIN_KEY);
    assert.deepEqual(shortcuts(list.body), ['odd', 'ship']);

    const { conv, agent, visitor, agentId, visitorId } = await env.pair(DESK_TENANT);
    const filled = await env.request(agent, { type: 'canned', conv, shortcut: 'ship' }, 'canned');
    assert.equal(
      filled['body'],
      `Hi ${visitorId}, ${agentId} here. Order SO-${conv.length} ships with 1Z999.`,
    );
    assert.deepEqual(filled['missing'], []);
    const odd = await env.request(agent, { type: 'canned', conv, shortcut: 'odd' }, 'canned');
    assert.deepEqual(odd['missing'], ['order.none', 'subject']);

    // The agent's own reply of the same shortcut wins; deleted, the tenant's is back.
    const token = await auth.sign({ tenant: DESK_TENANT, sub: agentId, role: 'agent' }, 600);
    const own = await env.http('PUT', `/api/v1/agents/${agentId}/canned/ship`, token, {
      body: 'Mine: {{conv}}',
    });
    assert.equal(own.status, 201);
    const mine = await env.request(agent, { type: 'canned', conv, shortcut: 'ship' }, 'canned');
    assert.equal(mine['body'], `Mine: ${conv}`);
    const seen = await env.http('GET', '/api/v1/canned', token);
    assert.deepEqual(
      (seen.body['items'] as Frame[]).map((i) => [i['shortcut'], i['owner']]),
      [
        ['ship', agentId],
        ['odd', '*'],
      ],
    );
    assert.equal((await env.http('DELETE', `/api/v1/agents/${agentId}/canned/ship`, token)).status, 200);
    assert.equal((await env.http('DELETE', `/api/v1/agents/${agentId}/canned/ship`, token)).status, 404);
    const back = await env.request(agent, { type: 'canned', conv, shortcut: 'ship' }, 'canned');
    assert.match(String(back['body']), /^Hi /);
    await assert.rejects(env.request(agent, { type: 'canned', conv, shortcut: 'nope' }, 'canned'), {
      code: 'not_found',
    });
    // Visitors have no canned replies; an agent only for conversations it holds.
    await assert.rejects(env.request(visitor, { type: 'canned', conv, shortcut: 'ship' }, 'canned'), {
      code: 'forbidden',
    });
    const stranger = await env.client(DESK_TENANT, 'stranger', 'agent');
    await assert.rejects(env.request(stranger, { type: 'canned', conv, shortcut: 'ship' }, 'canned'), {
      code: 'forbidden',
    });
    assert.equal((await env.http('DELETE', '/api/v1/canned/odd', ADMIN_KEY)).status, 200);
    assert.equal((await env.http('DELETE', '/api/v1/canned/ship', ADMIN_KEY)).status, 200);
    await Promise.all([agent.close(), visitor.close(), stranger.close()]);
  });

  test('desk canned - bounds at their limit: replies per tenant and per agent; bad input is a clear 4xx', async () => {
    for (let i = 0; i < DESK_LIMITS.maxCannedPerTenant; i++)
      assert.equal(
        (await env.http('PUT', `/api/v1/canned/t${i}`, ADMIN_KEY, { body: `text ${i}` })).status,
        201,
      );
    const over = await env.http('PUT', '/api/v1/canned/one-more', ADMIN_KEY, { body: 'x' });
    assert.equal(over.status, 409);
    assert.equal((over.body['error'] as Record<string, unknown>)['code'], 'conflict');
    // Replacing one at the bound is fine.
    assert.equal((await env.http('PUT', '/api/v1/canned/t0', ADMIN_KEY, { body: 'new text' })).status, 200);

    const agentId = env.uid('ag');
    const token = await auth.sign({ tenant: DESK_TENANT, sub: agentId, role: 'agent' }, 600);
    for (let i = 0; i < DESK_LIMITS.maxCannedPerAgent; i++)
      assert.equal(
        (await env.http('PUT', `/api/v1/agents/${agentId}/canned/a${i}`, token, { body: 'mine' })).status,
        201,
      );
    assert.equal(
      (await env.http('PUT', `/api/v1/agents/${agentId}/canned/a9`, token, { body: 'x' })).status,
      409,
    );
    const listed = await env.http('GET', `/api/v1/agents/${agentId}/canned`, ADMIN_KEY);
    assert.equal((listed.body['items'] as Frame[]).length, DESK_LIMITS.maxCannedPerAgent);
    // Another agent's replies, an API key without admin, a bad template, shortcut or size.
    assert.equal((await env.http('GET', '/api/v1/agents/someone-else/canned', token)).status, 403);
    assert.equal((await env.http('PUT', '/api/v1/canned/x', API_KEY, { body: 'x' })).status, 403);
    assert.equal(
      (await env.http('PUT', '/api/v1/canned/bad', ADMIN_KEY, { body: 'Hi {{visitor' })).status,
      400,
    );
    assert.equal((await env.http('PUT', '/api/v1/canned/Bad%20Name', ADMIN_KEY, { body: 'x' })).status, 400);
    assert.equal(
      (await env.http('PUT', '/api/v1/canned/t1', ADMIN_KEY, { body: 'x'.repeat(100_000) })).status,
      413,
    );
  });
});
