/**
 * Business systems end to end: two real broker processes (one cluster), a tenants file with routing
 * rules, a webhook, context kinds and an action, the example business system as a process, real
 * sockets and a local HTTP webhook receiver. Proves: a rule opens a conversation with a card and queues
 * it; the agent who gets it is pushed context (one kind answers, one is too slow, one is dead); a rule
 * notifies the assigned agent only; a repeated event id is handled once; events spread over both nodes
 * are each handled exactly once; an agent action is authorised, answered, posted and audited; the
 * conversation's events reach the webhook signed.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { verifySignature } from '../../src/integration/signature.js';
import { dropKeyspace, openCassandraStore } from '../../src/store/cassandra-store.js';
import { utcDay } from '../../src/store/schema.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { type BusinessSystemProcess, startBusinessSystem } from '../harness/business-system.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

const keyspace = randomKeyspace('biz');
const auth = createAuthenticator(TEST_JWT_SECRET);
const dir = mkdtempSync(join(tmpdir(), 'sb-biz-'));
const SECRET = 'whsec-business-test-0123';
const hooks: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
let receiver: Server;
let a: BrokerProcess;
let b: BrokerProcess;
let biz: BusinessSystemProcess;
const clients: TestClient[] = [];

const RULES = `version: 1
rules:
  - name: shipped
    match: { type: order.shipped }
    actions:
      - post:
          card: { kind: order, title: "Order {{order.id}} shipped", fields: { carrier: "{{shipment.carrier}}" } }
          ifNoConversation: open
  - name: refund
    match: { type: refund.approved }
    actions:
      - post: { text: "Refund {{refund.id}} approved" }
      - notify: { text: "refund {{refund.id}} approved for {{visitor}}" }
  - name: ping
    match: { type: "ping.>" }
    actions:
      - notify: { text: "ping {{n}}" }
`;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  writeFileSync(join(dir, 'rules.yaml'), RULES);
  writeFileSync(
    join(dir, 'tenants.yaml'),
    [
      'version: 1',
      'tenants:',
      '  acme:',
      '    integration:',
      '      rulesFile: rules.yaml',
      `      webhooks: [{ id: crm, url: "${hookUrl}", secret: ${SECRET}, events: [created, assigned, message] }]`,
      '      context: { kinds: [orders, shipments, tickets], timeoutMs: 500, ttlMs: 60000 }',
      '      actions: [{ name: mark-abnormal, roles: [agent] }, { name: issue-coupon, roles: [supervisor] }]',
      '',
    ].join('\n'),
  );
  const env = {
    SB_TENANTS_FILE: join(dir, 'tenants.yaml'),
    SB_INTEGRATION_STORAGE: 'memory',
    SB_RULES_POLL_MS: '200',
  };
  [a, b] = await Promise.all([
    startBroker({ nodeId: `${keyspace}-a`, keyspace, env }),
    startBroker({ nodeId: `${keyspace}-b`, keyspace, env }),
  ]);
  // orders answer at once, shipments too late for the 500 ms deadline, nobody serves tickets.
  biz = await startBusinessSystem(keyspace, [
    '--tenant',
    'acme',
    '--kinds',
    'orders,shipments',
    '--slow',
    'shipments=2000',
  ]);
});

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await biz?.stop();
  await Promise.allSettled([a?.stop(), b?.stop()]);
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  rmSync(dir, { recursive: true, force: true });
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

async function client(broker: BrokerProcess, user: string, role: TokenRole): Promise<TestClient> {
  const token = await auth.sign({ tenant: 'acme', sub: user, role }, 600);
  const open = () => connectClient(`${broker.wsBase}/ws/${role}`, token, 'switchboard.v1.json');
  const c = await open().catch(open);
  clients.push(c);
  return c;
}

async function publish(
  name: string,
  events: Array<{ type: string; id: string; data: object }>,
): Promise<Record<string, unknown>> {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const p = await startBusinessSystem(keyspace, [
    '--tenant',
    'acme',
    '--kinds',
    '',
    '--events',
    file,
    '--exit',
  ]);
  const line = await p.waitFor((l) => l['published'] !== undefined);
  await p.exited();
  return line;
}

let conv = '';
let bob: TestClient;
let alice: TestClient;

test('business - an event opens a conversation with a card; the agent who gets it is pushed context', async () => {
  bob = await client(b, 'bob', 'agent');
  bob.send({ type: 'status', status: 'online', capacity: 5, ref: 's1' });
  await bob.next((f) => f.type === 'done' && f.ref === 's1');
  await publish('shipped', [
    {
      type: 'order.shipped',
      id: 'ev-ship-1',
      data: { visitor: 'alice', order: { id: 'A-1001' }, shipment: { carrier: 'DHL' } },
    },
  ]);
  // Generous waits: on a loaded machine the first writes to a fresh keyspace are slow.
  const assigned = await bob.next((f) => f.type === 'assigned', 45_000);
  conv = assigned.conv as string;
  const ctx = await bob.next((f) => f.type === 'context' && f.conv === conv, 30_000);
  const items = ctx.items as Record<string, { orders?: Array<{ id: string }> }>;
  assert.deepEqual(Object.keys(items), ['orders']);
  assert.equal(items['orders']?.orders?.[0]?.id, 'A-1001');
  assert.deepEqual(ctx.missing, [
    { kind: 'shipments', reason: 'timeout' },
    { kind: 'tickets', reason: 'unavailable' },
  ]);
  // The card is in the conversation's history: the visitor sees it on connecting.
  alice = await client(a, 'alice', 'visitor');
  alice.send({ type: 'sync', conv, since: 0, limit: 10 });
  const history = await alice.next((f) => f.type === 'messages');
  const card = (history.items as Frame[])[0];
  assert.equal(card?.role, 'system');
  assert.deepEqual(card?.card, { kind: 'order', title: 'Order A-1001 shipped', fields: { carrier: 'DHL' } });
  // An agent can ask again. The cache is per member (the push may have come from the other node), so
  // ask twice: the second answer comes from this node's cache for the kind that answered.
  bob.send({ type: 'context', conv, ref: 'c1' });
  const first = await bob.next((f) => f.type === 'context' && f.ref === 'c1', 15_000);
  assert.ok('orders' in (first.items as object));
  bob.send({ type: 'context', conv, ref: 'c2' });
  const again = await bob.next((f) => f.type === 'context' && f.ref === 'c2', 15_000);
  assert.deepEqual(again.cached, ['orders']);
});

test('business - a rule notifies the assigned agent only; a repeated event id is handled once', async () => {
  assert.ok(conv, 'the first test opened the conversation');
  const ev = {
    type: 'refund.approved',
    id: 'ev-refund-1',
    data: { visitor: 'alice', refund: { id: 'R-7' } },
  };
  const line = await publish('refund', [ev, ev]);
  assert.equal(line['duplicates'], 1);
  const msg = await alice.next((f) => f.type === 'msg' && f.body === 'Refund R-7 approved', 15_000);
  assert.equal(msg.role, 'system');
  const notice = await bob.next((f) => f.type === 'notice', 15_000);
  assert.equal(notice.text, 'refund R-7 approved for alice');
  assert.equal(notice.conv, conv);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(bob.buffered().filter((f) => f.type === 'notice').length, 0, 'one notice only');
  assert.equal(alice.buffered().filter((f) => f.type === 'notice').length, 0, 'the visitor is not notified');
});

test('business - events spread over two nodes are each handled exactly once', async () => {
  const n = 40;
  await publish(
    'pings',
    Array.from({ length: n }, (_, i) => ({ type: 'ping.test', id: `ev-ping-${i}`, data: { conv, n: i } })),
  );
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = await bob.next((x) => x.type === 'notice' && String(x.text).startsWith('ping '), 15_000);
    seen.push((f.event as { id: string }).id);
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(bob.buffered().filter((f) => f.type === 'notice').length, 0, 'no event handled twice');
  assert.equal(new Set(seen).size, n);
});

test('business - an agent action is authorised, answered, posted into the conversation and audited', async () => {
  bob.send({ type: 'action', conv, name: 'mark-abnormal', args: { order: 'A-1001' }, ref: 'a1' });
  const r = await bob.next((f) => f.type === 'action_result' && f.ref === 'a1', 15_000);
  assert.equal(r.ok, true);
  assert.equal(r.message, 'order A-1001 marked abnormal');
  const posted = await alice.next(
    (f) => f.type === 'msg' && String(f.body).startsWith('mark-abnormal by bob'),
    15_000,
  );
  assert.equal(posted.body, 'mark-abnormal by bob: order A-1001 marked abnormal');
  bob.send({ type: 'action', conv, name: 'issue-coupon', args: {}, ref: 'a2' });
  assert.equal((await bob.next((f) => f.type === 'error' && f.ref === 'a2')).code, 'forbidden');
  alice.send({ type: 'action', conv, name: 'mark-abnormal', args: {}, ref: 'a3' });
  assert.equal((await alice.next((f) => f.type === 'error' && f.ref === 'a3')).code, 'forbidden');
  const store = await openCassandraStore({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: 'datacenter1',
    keyspace,
    migrate: false,
  });
  try {
    const audits = await store.actionAudits('acme', utcDay(Date.now()), 10);
    assert.deepEqual(audits.map((x) => `${x.agent}:${x.action}:${x.outcome}`).sort(), [
      'bob:issue-coupon:refused',
      'bob:mark-abnormal:ok',
    ]);
  } finally {
    await store.close();
  }
});

test('business - the conversation events reach the webhook, signed, once each', async () => {
  const want = (type: string) => hooks.filter((h) => h.headers['x-switchboard-event-type'] === type);
  for (
    let i = 0;
    i < 200 && (want('created').length === 0 || want('assigned').length === 0 || want('message').length < 3);
    i++
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(want('created').length, 1);
  assert.equal(want('assigned').length, 1);
  assert.ok(want('message').length >= 3, 'the card, the refund message and the action result');
  for (const h of hooks) {
    assert.ok(verifySignature(SECRET, h.headers['x-switchboard-signature'] as string, h.body), 'signed');
    assert.equal(JSON.parse(h.body).tenant, 'acme');
  }
  const ids = hooks.map((h) => h.headers['x-switchboard-event-id']);
  assert.equal(new Set(ids).size, ids.length, 'each event delivered once across the two nodes');
  assert.equal(want('closed').length, 0, 'types the endpoint did not ask for are not sent');
});
