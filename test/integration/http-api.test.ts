/**
 * The HTTP API for business systems and admins against a real broker (real NATS, real Cassandra):
 * create a conversation, post bot messages (idempotent, pushed to the visitor), read it, list a
 * visitor's conversations, the queue, agent status, transfer and close; API-key isolation between
 * tenants and scopes; body limits; the in-flight bound.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { hashApiKey } from '../../src/tenants.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const dir = mkdtempSync(join(tmpdir(), 'sb-http-'));
const API = 'sbk_http_api_key_0123456789';
const ADMIN = 'sbk_http_admin_key_0123456789';
const OTHER = 'sbk_http_other_tenant_0123456789';
const DESK = 'sbk_http_desk_0123456789';
const MAX_BODY = 2048;
const INFLIGHT = 4;
let node: BrokerProcess;
let n = 0;
const uid = (p: string) => `${p}-${process.pid}-${++n}`;

// A NATS server of our own: the JetStream reservations of every test cluster add up on the shared one.
let nats: NatsServerHandle;

before(async () => {
  const file = join(dir, 'tenants.yaml');
  writeFileSync(
    file,
    `version: 1
tenants:
  shop:
    apiKeys:
      - { id: orders, sha256: ${hashApiKey(API)}, scopes: [api] }
      - { id: ops, sha256: ${hashApiKey(ADMIN)}, scopes: [api, admin] }
  desk:
    apiKeys:
      - { id: desk, sha256: ${hashApiKey(DESK)}, scopes: [api, admin] }
  other:
    apiKeys:
      - { id: orders, sha256: ${hashApiKey(OTHER)}, scopes: [api, admin] }
`,
  );
  nats = await startNatsServer();
  node = await startBroker({
    nodeId: 'http-a',
    natsUrl: nats.url,
    readyTimeoutMs: 120_000,
    keyspace: randomKeyspace('httpapi'),
    env: {
      // The shared test Cassandra (every run's keyspaces) can take seconds per request under load.
      SB_CASSANDRA_TIMEOUT_MS: '30000',
      SB_TENANTS_FILE: file,
      SB_HTTP_MAX_BODY_BYTES: String(MAX_BODY),
      SB_HTTP_MAX_INFLIGHT: String(INFLIGHT),
    },
  });
});

after(async () => {
  await node?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Res {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: { code: string; message: string; retryAfterMs?: number } };
}

async function call(
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
  ct = 'application/json',
): Promise<Res> {
  const headers: Record<string, string> = {};
  if (key) headers['x-api-key'] = key;
  if (body !== undefined) headers['content-type'] = ct;
  const res = await fetch(`${node.httpBase}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

const token = (tenant: string, sub: string, role: TokenRole) => auth.sign({ tenant, sub, role }, 600);

describe('http api', () => {
  test('http api - create a conversation for a known customer, idempotently', async () => {
    const conv = uid('c');
    const created = await call('POST', '/api/v1/conversations', API, {
      visitor: 'cust-1',
      conv,
      subject: 'order 1001',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body['conv'], conv);
    assert.equal(created.body['visitor'], 'cust-1');
    assert.equal(created.body['tenant'], 'shop');
    assert.ok(['queued', 'assigned'].includes(String(created.body['status'])));
    const again = await call('POST', '/api/v1/conversations', API, { visitor: 'cust-1', conv });
    assert.equal(again.status, 201);
    assert.equal(again.body['createdAt'], created.body['createdAt']);
    const stolen = await call('POST', '/api/v1/conversations', API, { visitor: 'cust-2', conv });
    assert.equal(stolen.status, 409);
    assert.equal(stolen.body.error?.code, 'conflict');
    const view = await call('GET', `/api/v1/conversations/${conv}`, API);
    assert.equal(view.status, 200);
    assert.equal(view.body['visitor'], 'cust-1');
    // Without conv, an id is made.
    const fresh = await call('POST', '/api/v1/conversations', API, { visitor: 'cust-1' });
    assert.equal(fresh.status, 201);
    assert.match(String(fresh.body['conv']), /^c-/);
  });

  test('http api - a bot message is stored once per cmid, pushed to the visitor, in history', async () => {
    const conv = uid('c');
    const visitorId = uid('v');
    assert.equal(
      (await call('POST', '/api/v1/conversations', API, { visitor: visitorId, conv })).status,
      201,
    );
    const v = await connectClient(
      `${node.wsBase}/ws/visitor`,
      await token('shop', visitorId, 'visitor'),
      'switchboard.v1.json',
    );
    try {
      const post = await call('POST', `/api/v1/conversations/${conv}/messages`, API, {
        cmid: 'ship-1',
        body: 'Your parcel has shipped.',
        card: {
          kind: 'shipment',
          title: 'Parcel 42',
          fields: { carrier: 'DHL' },
          url: 'https://track.example/42',
        },
      });
      assert.equal(post.status, 201, JSON.stringify(post.body));
      assert.equal(post.body['seq'], 1);
      const retry = await call('POST', `/api/v1/conversations/${conv}/messages`, API, {
        cmid: 'ship-1',
        body: 'again',
      });
      assert.equal(retry.status, 201);
      assert.deepEqual(retry.body, post.body, 'the retry answers the original ack');
      const pushed = await v.next((f: Frame) => f.type === 'msg' && f.conv === conv);
      assert.equal(pushed['body'], 'Your parcel has shipped.');
      assert.equal(pushed['role'], 'bot');
      assert.equal(pushed['from'], 'orders', 'from defaults to the API key id');
      const sys = await call('POST', `/api/v1/conversations/${conv}/messages`, API, {
        cmid: 'sys-1',
        body: 'An agent will be with you shortly.',
        role: 'system',
        from: 'router',
      });
      assert.equal(sys.body['seq'], 2);
      const history = await call('GET', `/api/v1/conversations/${conv}/messages`, API);
      assert.equal(history.status, 200);
      const items = history.body['items'] as Frame[];
      assert.deepEqual(
        items.map((m) => [m['seq'], m['role'], m['from']]),
        [
          [2, 'system', 'router'],
          [1, 'bot', 'orders'],
        ],
      );
    } finally {
      await v.close();
    }
  });

  test('http api - bad message bodies are answered with stable codes', async () => {
    const conv = uid('c');
    await call('POST', '/api/v1/conversations', API, { visitor: 'cust-3', conv });
    const path = `/api/v1/conversations/${conv}/messages`;
    const cases: [unknown, string, number, string?][] = [
      [{ body: 'x' }, 'invalid_field', 400],
      [{ cmid: 'a b', body: 'x' }, 'invalid_field', 400],
      [{ cmid: 'm', body: '   ' }, 'invalid_field', 400],
      [{ cmid: 'm', body: 'x', role: 'agent' }, 'invalid_field', 400],
      [{ cmid: 'm', body: 'x', card: { kind: 'k' } }, 'invalid_field', 400],
      [{ cmid: 'm', body: 'x'.repeat(4001) }, 'payload_too_large', 413],
      ['{not json', 'invalid_field', 400],
      ['[1,2]', 'invalid_field', 400],
      [{ cmid: 'm', body: 'x' }, 'unsupported_media_type', 415, 'text/plain'],
    ];
    for (const [body, code, status, ct] of cases) {
      const r = await call('POST', path, API, body, ct);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, code, JSON.stringify(body));
    }
    // A body over SB_HTTP_MAX_BODY_BYTES is refused without being buffered.
    const big = await call('POST', path, API, { cmid: 'big', body: 'y'.repeat(MAX_BODY) });
    assert.equal(big.status, 413);
    assert.equal(big.body.error?.code, 'payload_too_large');
    assert.equal(
      (await call('POST', `/api/v1/conversations/${uid('nope')}/messages`, API, { cmid: 'm', body: 'x' }))
        .status,
      404,
    );
  });

  test('http api - keys act for their own tenant only; scopes and kinds are enforced', async () => {
    const conv = uid('c');
    await call('POST', '/api/v1/conversations', API, { visitor: 'cust-4', conv });
    const msg = { cmid: 'x1', body: 'hello' };
    assert.equal((await call('POST', `/api/v1/conversations/${conv}/messages`, undefined, msg)).status, 401);
    assert.equal((await call('POST', `/api/v1/conversations/${conv}/messages`, 'sbk_nope', msg)).status, 401);
    const foreign = await call('POST', `/api/v1/conversations/${conv}/messages`, OTHER, msg);
    assert.equal(foreign.status, 404, 'another tenant never sees it');
    assert.equal((await call('GET', `/api/v1/conversations/${conv}`, OTHER)).status, 404);
    assert.equal((await call('GET', `/api/v1/conversations/${conv}/messages`, OTHER)).status, 404);
    assert.equal((await call('POST', `/api/v1/conversations/${conv}/close`, OTHER, {})).status, 404);
    // Scope admin is needed for the queue and agent status.
    assert.equal((await call('GET', '/api/v1/queue', API)).status, 403);
    assert.equal((await call('PUT', '/api/v1/agents/ag-x/status', API, { status: 'online' })).status, 403);
    // A user token is not an API key on business routes.
    const userToken = await token('shop', 'cust-4', 'visitor');
    const res = await fetch(`${node.httpBase}/api/v1/conversations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ visitor: 'cust-4' }),
    });
    assert.equal(res.status, 403);
    // A visitor listing of one tenant does not show another's.
    const listing = await call('GET', '/api/v1/visitors/cust-4/conversations', API);
    assert.ok((listing.body['items'] as { conv: string }[]).some((i) => i.conv === conv));
    const otherListing = await call('GET', '/api/v1/visitors/cust-4/conversations', OTHER);
    assert.deepEqual(otherListing.body['items'], []);
  });

  test('http api - agent status, assignment, queue, transfer and close', async () => {
    const agentId = uid('ag');
    const agent = await connectClient(
      `${node.wsBase}/ws/agent`,
      await token('desk', agentId, 'agent'),
      'switchboard.v1.json',
    );
    try {
      const st = await call('PUT', `/api/v1/agents/${agentId}/status`, DESK, {
        status: 'online',
        capacity: 1,
        skills: ['billing'],
      });
      assert.equal(st.status, 200, JSON.stringify(st.body));
      assert.deepEqual(
        [st.body['status'], st.body['skills'], st.body['connected']],
        ['online', ['billing'], true],
      );
      assert.equal(
        (await call('PUT', `/api/v1/agents/${agentId}/status`, DESK, { status: 'busy' })).status,
        400,
      );

      const conv = uid('c');
      const created = await call('POST', '/api/v1/conversations', DESK, {
        visitor: uid('v'),
        conv,
        skill: 'billing',
      });
      assert.equal(created.status, 201);
      assert.equal(created.body['status'], 'assigned', JSON.stringify(created.body));
      assert.equal(created.body['agent'], agentId);
      assert.equal((await agent.next((f) => f.type === 'assigned' && f.conv === conv)).conv, conv);

      // The agent is full (capacity 1): the next one waits in the queue, with its position.
      const waiting = uid('c');
      const w = await call('POST', '/api/v1/conversations', DESK, {
        visitor: uid('v'),
        conv: waiting,
        skill: 'billing',
      });
      assert.equal(w.body['status'], 'queued');
      const queue = await call('GET', '/api/v1/queue', DESK);
      assert.equal(queue.status, 200);
      assert.deepEqual(
        (queue.body['items'] as { conv: string; position: number }[]).map((e) => [e.conv, e.position]),
        [[waiting, 1]],
      );

      // Transfer to a skill nobody has: back to the queue, at the front.
      const tr = await call('POST', `/api/v1/conversations/${conv}/transfer`, DESK, { skill: 'french' });
      assert.equal(tr.status, 200, JSON.stringify(tr.body));
      assert.equal(
        (await call('POST', `/api/v1/conversations/${conv}/transfer`, DESK, { agent: 'x', skill: 'y' }))
          .status,
        400,
      );
      const closed = await call('POST', `/api/v1/conversations/${conv}/close`, DESK, { reason: 'resolved' });
      assert.equal(closed.status, 200, JSON.stringify(closed.body));
      assert.equal(closed.body['status'], 'closed');
      const again = await call('POST', `/api/v1/conversations/${conv}/close`, DESK, {});
      assert.equal(again.status, 200, 'close is idempotent');
      const late = await call('POST', `/api/v1/conversations/${conv}/messages`, DESK, {
        cmid: 'late',
        body: 'hi',
      });
      assert.equal(late.status, 409);
      assert.equal(late.body.error?.code, 'conversation_closed');
    } finally {
      await agent.close();
    }
  });

  test('http api - requests beyond SB_HTTP_MAX_INFLIGHT get 503 busy; aborted requests free their slot', async () => {
    const conv = uid('c');
    await call('POST', '/api/v1/conversations', API, { visitor: 'cust-5', conv });
    // Hold INFLIGHT requests open: headers sent, body unfinished, so each handler waits for its body.
    const held: Socket[] = [];
    for (let k = 0; k < INFLIGHT; k++) {
      const s = connect(node.port, '127.0.0.1');
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(
        `POST /api/v1/conversations/${conv}/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${API}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cmid":',
      );
      held.push(s);
    }
    const path = `/api/v1/conversations/${conv}/messages`;
    let busy: Res | undefined;
    const deadline = Date.now() + 10_000;
    while (!busy && Date.now() < deadline) {
      const r = await call('GET', path, API);
      if (r.status === 503) busy = r;
      else assert.equal(r.status, 200);
    }
    assert.ok(busy, 'a request beyond the bound is refused');
    assert.equal(busy.body.error?.code, 'busy');
    assert.ok(Number(busy.headers.get('retry-after')) >= 1);
    // The clients go away without finishing their bodies: their slots come back.
    for (const s of held) s.destroy();
    const until = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < until) {
      status = (await call('GET', path, API)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200, 'the node serves again');
    const results = await Promise.all(Array.from({ length: INFLIGHT }, () => call('GET', path, API)));
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
      'all slots are free again',
    );
  });
});
