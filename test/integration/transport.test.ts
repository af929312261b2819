/**
 * Our NATS transport on a real nats-server: request-reply errors map to our codes, a handler that
 * throws does not stop the connection, and the cluster lock admits one holder at a time.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withClusterLock } from '../../src/cluster/lock.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';

let nats: NatsServerHandle;
let t: Transport;
const handlerErrors: string[] = [];

before(async () => {
  nats = await startNatsServer();
  t = await connectTransport([nats.url], 'transport-test', (subject) => handlerErrors.push(subject));
});

after(async () => {
  await t?.close();
  await nats?.stop();
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

test('transport - a request nobody serves is unavailable, a silent responder a timeout', async () => {
  await assert.rejects(t.request('nobody.home', bytes('x'), 1000), { code: 'unavailable' });
  const sub = t.subscribe('silent', () => {});
  await t.flush();
  await assert.rejects(t.request('silent', bytes('x'), 200), { code: 'timeout' });
  sub.unsubscribe();
});

test('transport - a handler that throws is contained and the connection keeps serving', async () => {
  let calls = 0;
  const sub = t.subscribe('echo', (m) => {
    calls++;
    if (calls === 1) throw new Error('boom');
    m.respond(bytes(`echo ${text(m.data)}`));
  });
  await t.flush();
  await assert.rejects(t.request('echo', bytes('first'), 300), { code: 'timeout' });
  assert.deepEqual(handlerErrors, ['echo']);
  assert.equal(text(await t.request('echo', bytes('second'), 2000)), 'echo second');
  sub.unsubscribe();
});

test('transport - the cluster lock admits one holder at a time', async () => {
  const other = await connectTransport([nats.url], 'transport-test-2');
  let inside = 0;
  let maxInside = 0;
  const order: string[] = [];
  const hold = (tr: Transport, name: string) =>
    withClusterLock(tr, 'test-lock', async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      order.push(name);
      await new Promise((r) => setTimeout(r, 300));
      inside--;
    });
  await Promise.all([hold(t, 'a'), hold(other, 'b')]);
  assert.equal(maxInside, 1);
  assert.deepEqual([...order].sort(), ['a', 'b']);
  await other.close();
});

test('transport - a prepared consumer starts consuming with no setup request of its own', async () => {
  const js = t.jetstream();
  const stream = 'prep_test';
  await js.ensureStream({
    name: stream,
    subjects: ['prep.test.>'],
    retention: 'limits',
    maxAgeMs: 60_000,
    maxMsgs: 100,
    maxBytes: 0,
    maxMsgSize: 1024,
    duplicateWindowMs: 1000,
    storage: 'memory',
  });
  await js.publish('prep.test.a', bytes('one'));
  const spec = { stream, durable: 'prep', ackWaitMs: 5000, maxDeliver: 3, maxAckPending: 10 };
  // Every JetStream API request, as the server sees it (a core subscription sees requests like any message).
  const seen: string[] = [];
  const monitor = t.subscribe('$JS.API.>', (m) => seen.push(m.subject));
  await t.flush();
  const setup = () => seen.filter((s) => !s.startsWith('$JS.API.CONSUMER.MSG.NEXT.'));

  await js.prepare(spec);
  await t.flush();
  assert.ok(
    setup().some((s) => s.startsWith(`$JS.API.CONSUMER.CREATE.${stream}`)),
    `prepare created the consumer: ${setup().join(', ')}`,
  );
  seen.length = 0;

  const got: string[] = [];
  const c = await js.consume(spec, { maxInFlight: 4, retryDelayMs: 100 }, async (m) => {
    got.push(text(m.data));
    m.ack();
  });
  const end = Date.now() + 5000;
  while (got.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await t.flush();
  assert.deepEqual(got, ['one'], 'the prepared consumer delivers');
  assert.deepEqual(setup(), [], 'and consume made no setup request: only pulls');
  await c.stop();

  // Prepared once, consumed once: a second consume sets the consumer up again.
  seen.length = 0;
  const again = await js.consume(spec, { maxInFlight: 4, retryDelayMs: 100 }, async (m) => m.ack());
  await t.flush();
  assert.ok(setup().length > 0, 'an unprepared consume sets the consumer up');
  await again.stop();
  monitor.unsubscribe();
});

test('transport - a setup call JetStream cannot answer yet is retried, and the node hears of each retry', async () => {
  // A server without JetStream answers no JetStream request: to a setup call that is the transient
  // "not yet" of a forming cluster, tried again with backoff. Membership and ownership take the
  // transport's listener for their lease and watch retries too (src/cluster/membership.ts).
  const plain = await startNatsServer({ jetstream: false });
  const heard: Array<{ what: string; attempt: number }> = [];
  const onSetupRetry = (what: string, _err: unknown, attempt: number) => heard.push({ what, attempt });
  const p = await connectTransport([plain.url], 'transport-retry-test', () => {}, { onSetupRetry });
  try {
    assert.equal(p.onSetupRetry, onSetupRetry, 'the listener is the transport’s, for its users');
    const opening = p.kv('retry_test', 0);
    opening.catch(() => {});
    const end = Date.now() + 10_000;
    while (heard.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      heard.slice(0, 2).map((h) => [h.what, h.attempt]),
      [
        ['kv bucket retry_test', 1],
        ['kv bucket retry_test', 2],
      ],
    );
    // Closing ends the retries: the next attempt fails for good, not transiently.
    await p.close();
    await assert.rejects(opening);
  } finally {
    await p.close().catch(() => {});
    await plain.stop();
  }
});
