/**
 * Webhooks on a real nats-server (JetStream) against a local HTTP receiver: signed deliveries that
 * verify, retries with backoff until the receiver recovers, dead letters after the last attempt, the
 * breaker that stops calling a failing endpoint, and each event delivered once by two members sharing
 * the consumer.
 */
import * as assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { StaticIntegrationSource } from '../../src/integration/settings.js';
import { verifySignature } from '../../src/integration/signature.js';
import { ensureIntegrationStreams, type StreamBounds } from '../../src/integration/streams.js';
import { type DeadLetter, WebhookDelivery, type WebhookOptions } from '../../src/integration/webhooks.js';
import { randomKeyspace, TEST_NATS_URL } from '../harness/env.js';

const names = clusterNames(randomKeyspace('wh'));
const bounds: StreamBounds = {
  dedupeWindowMs: 60_000,
  streamMaxMsgs: 10_000,
  streamMaxBytes: 0,
  eventMaxBytes: 64 * 1024,
  streamMaxAgeMs: 600_000,
  storage: 'memory',
};
const opts: WebhookOptions = {
  maxAttempts: 4,
  backoffMs: 30,
  maxBackoffMs: 200,
  timeoutMs: 300,
  inFlight: 8,
  breakerFailures: 100,
  breakerOpenMs: 1000,
  ackWaitMs: 5000,
  maxDeliver: 3,
};
const quietLog = { warn() {}, error() {} };

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
const failFirst = new Map<string, number>();
let server: Server;
let base = '';
let t: Transport;
const secret = 'whsec-0123456789abcdef';

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/dead')) res.writeHead(500).end('no');
      else if (path.startsWith('/gone')) res.writeHead(410).end('gone');
      else if (path.startsWith('/slow')) setTimeout(() => res.writeHead(200).end(), 1000);
      else if ((failFirst.get(path) ?? 0) > 0) {
        failFirst.set(path, failFirst.get(path)! - 1);
        res.writeHead(503).end('later');
      } else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await connectTransport([TEST_NATS_URL], 'webhooks-test');
  await ensureIntegrationStreams(t.jetstream(), names, bounds);
});

after(async () => {
  await t?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

async function publishOut(tenant: string, type: string, id: string, extra: object = {}): Promise<Uint8Array> {
  const body = enc({ id, type, tenant, conv: 'c1', ts: Date.now(), ...extra });
  await t.jetstream().publish(names.outSubject(tenant, type), body, id);
  return body;
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function deadLetters(tenant: string, count: number): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  const c = await t.jetstream().consume(
    {
      stream: names.deadLetterStream,
      durable: `test-dlq-${tenant}`,
      filterSubject: names.webhookDeadLetterSubject(tenant),
      ackWaitMs: 5000,
      maxDeliver: 1,
      maxAckPending: 100,
    },
    { maxInFlight: 10, retryDelayMs: 100 },
    async (m) => {
      out.push(JSON.parse(new TextDecoder().decode(m.data)) as DeadLetter);
      m.ack();
    },
  );
  try {
    await until(`${count} dead letters`, () => out.length >= count);
  } finally {
    await c.stop();
  }
  return out;
}

function endpoint(id: string, path: string, events: string[] = []) {
  return { id, url: `${base}${path}`, secret, events };
}

test('webhooks - a delivery is signed, verifiable, and carries the event id and type', async () => {
  const source = new StaticIntegrationSource();
  source.set('t1', {
    webhooks: [endpoint('main', '/t1'), endpoint('only-closed', '/t1-closed', ['closed'])],
  });
  const wh = new WebhookDelivery(t.jetstream(), names, source, opts, quietLog);
  await wh.start();
  try {
    const body = await publishOut('t1', 'message', 'ev-sig-1', { body: 'hello' });
    const r = await until('the delivery', () => received.find((x) => x.path === '/t1'));
    assert.equal(r.body, new TextDecoder().decode(body));
    assert.equal(r.headers['x-switchboard-event-id'], 'ev-sig-1');
    assert.equal(r.headers['x-switchboard-event-type'], 'message');
    assert.equal(r.headers['content-type'], 'application/json');
    const sig = r.headers['x-switchboard-signature'] as string;
    assert.ok(verifySignature(secret, sig, r.body), 'the signature verifies with the secret');
    assert.ok(!verifySignature('another-secret-0000', sig, r.body), 'and not with another secret');
    assert.ok(!verifySignature(secret, sig, `${r.body} `), 'and not for another body');
    const future = Math.floor(Date.now() / 1000) + 3600;
    assert.ok(!verifySignature(secret, sig, r.body, future), 'and not an hour later (replay)');
    // The endpoint that wants only `closed` events got nothing.
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(received.filter((x) => x.path === '/t1-closed').length, 0);
  } finally {
    await wh.stop();
  }
});

test('webhooks - failures are retried with backoff until the receiver recovers', async () => {
  failFirst.set('/t2', 2);
  const source = new StaticIntegrationSource();
  source.set('t2', { webhooks: [endpoint('e', '/t2')] });
  const wh = new WebhookDelivery(t.jetstream(), names, source, opts, quietLog);
  await wh.start();
  try {
    await publishOut('t2', 'closed', 'ev-retry-1');
    await until('the third attempt', () => received.filter((x) => x.path === '/t2').length >= 3);
    const attempts = received.filter((x) => x.path === '/t2').map((x) => x.headers['x-switchboard-attempt']);
    assert.deepEqual(attempts, ['1', '2', '3']);
    await until('delivered', () => wh.stats().delivered === 1);
    assert.equal(wh.stats().deadLettered, 0);
  } finally {
    await wh.stop();
  }
});

test('webhooks - after the last attempt a dead letter is recorded; a 410 is not retried', async () => {
  const source = new StaticIntegrationSource();
  source.set('t3', {
    webhooks: [endpoint('down', '/dead3'), endpoint('gone', '/gone3'), endpoint('slow', '/slow3')],
  });
  const wh = new WebhookDelivery(t.jetstream(), names, source, opts, quietLog);
  await wh.start();
  try {
    await publishOut('t3', 'rated', 'ev-dead-1', { rating: 1 });
    const letters = await deadLetters('t3', 3);
    const byEndpoint = new Map(letters.map((l) => [l.endpoint, l]));
    assert.equal(byEndpoint.get('down')?.lastStatus, 500);
    assert.equal(byEndpoint.get('down')?.eventId, 'ev-dead-1');
    assert.equal((byEndpoint.get('down')!.event as { rating: number }).rating, 1);
    assert.equal(byEndpoint.get('gone')?.lastStatus, 410);
    assert.equal(byEndpoint.get('slow')?.lastStatus, null);
    assert.match(byEndpoint.get('slow')?.lastError ?? '', /no answer within 300 ms/);
    assert.equal(received.filter((x) => x.path === '/dead3').length, opts.maxAttempts);
    assert.equal(received.filter((x) => x.path === '/gone3').length, 1, 'a 410 is final');
  } finally {
    await wh.stop();
  }
});

test('webhooks - an open breaker stops calling a failing endpoint', async () => {
  const source = new StaticIntegrationSource();
  source.set('t4', { webhooks: [endpoint('down', '/dead4')] });
  const wh = new WebhookDelivery(
    t.jetstream(),
    names,
    source,
    { ...opts, breakerFailures: 3, breakerOpenMs: 60_000, inFlight: 1 },
    quietLog,
  );
  await wh.start();
  try {
    for (let i = 0; i < 4; i++) await publishOut('t4', 'message', `ev-brk-${i}`);
    const letters = await deadLetters('t4', 4);
    assert.equal(letters.filter((l) => l.endpoint === 'down').length, 4);
    // 4 events x 4 attempts would be 16 calls; the breaker opened after 3 and stayed open.
    assert.equal(received.filter((x) => x.path === '/dead4').length, 3);
    assert.ok(wh.stats().shortCircuited >= 13);
    assert.match(letters[3]!.lastError, /circuit open/);
  } finally {
    await wh.stop();
  }
});

test('webhooks - two members sharing the consumer deliver each event once', async () => {
  const source = new StaticIntegrationSource();
  source.set('t5', { webhooks: [endpoint('e', '/t5')] });
  const t2 = await connectTransport([TEST_NATS_URL], 'webhooks-test-2');
  const a = new WebhookDelivery(t.jetstream(), names, source, opts, quietLog);
  const b = new WebhookDelivery(t2.jetstream(), names, source, opts, quietLog);
  await a.start();
  await b.start();
  try {
    const n = 40;
    for (let i = 0; i < n; i++) await publishOut('t5', 'message', `ev-once-${i}`);
    // The same id again inside the duplicate window is stored once, so it is not delivered twice.
    await publishOut('t5', 'message', 'ev-once-0');
    await until('every event', () => received.filter((x) => x.path === '/t5').length >= n);
    await new Promise((r) => setTimeout(r, 300));
    const ids = received.filter((x) => x.path === '/t5').map((x) => x.headers['x-switchboard-event-id']);
    assert.equal(ids.length, n);
    assert.equal(new Set(ids).size, n);
    assert.ok(a.stats().delivered > 0 && b.stats().delivered > 0, 'both members took a share');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await t2.close();
  }
});

test('webhooks - with no webhook configured nothing consumes sb_out; one added later gets the events after it, not before', async () => {
  const source = new StaticIntegrationSource();
  const wh = new WebhookDelivery(t.jetstream(), names, source, opts, quietLog);
  await wh.start();
  try {
    assert.equal(wh.consuming, false, 'no tenant has a webhook: the member does not pull events');
    await publishOut('t6', 'message', 'ev-before');
    await new Promise((r) => setTimeout(r, 20));
    source.set('t6', { webhooks: [endpoint('e', '/t6')] });
    await until('the consumer to start', () => wh.consuming);
    await publishOut('t6', 'message', 'ev-after');
    await until('the delivery', () => received.find((x) => x.path === '/t6'));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      received.filter((x) => x.path === '/t6').map((x) => x.headers['x-switchboard-event-id']),
      ['ev-after'],
      'the event published while no webhook existed is not sent to the new one',
    );
    source.set('t6', { webhooks: [] });
    await until('the consumer to stop', () => !wh.consuming);
  } finally {
    await wh.stop();
  }
});
