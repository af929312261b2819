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
