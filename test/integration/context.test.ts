/**
 * Context look-ups on a real nats-server, answered by the example business system process: one kind
 * answers at once, one too late, one has no responder; the merge returns inside the deadline naming what
 * is missing, answers are cached for the TTL, and the breaker stops asking a kind that keeps failing.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { ContextLookup } from '../../src/integration/context.js';
import { StaticIntegrationSource } from '../../src/integration/settings.js';
import { type BusinessSystemProcess, startBusinessSystem } from '../harness/business-system.js';
import { randomKeyspace, TEST_NATS_URL } from '../harness/env.js';

const cluster = randomKeyspace('ctx');
const names = clusterNames(cluster);
let t: Transport;
let biz: BusinessSystemProcess;
const DEADLINE_MS = 400;

before(async () => {
  t = await connectTransport([TEST_NATS_URL], 'context-test');
  // orders answer at once; shipments after 1.5 s (past the deadline); nobody answers "tickets".
  biz = await startBusinessSystem(cluster, [
    '--tenant',
    'acme',
    '--kinds',
    'orders,shipments',
    '--slow',
    'shipments=1500',
  ]);
});

after(async () => {
  await biz?.stop();
  await t?.close();
});

function source(ttlMs: number) {
  const s = new StaticIntegrationSource();
  s.set('acme', { context: { kinds: ['orders', 'shipments', 'tickets'], timeoutMs: DEADLINE_MS, ttlMs } });
  return s;
}

test('context - merges what answered in time and names the slow and the dead kinds', async () => {
  const ctx = new ContextLookup(t, names, source(60_000), {
    cacheEntries: 100,
    breakerFailures: 10,
    breakerOpenMs: 60_000,
  });
  const started = Date.now();
  const r = await ctx.lookup('acme', 'c-1', { visitor: 'alice', agent: 'bob' });
  const took = Date.now() - started;
  assert.deepEqual(Object.keys(r.items), ['orders']);
  assert.equal((r.items['orders'] as { orders: Array<{ id: string }> }).orders[0]?.id, 'A-1001');
  assert.deepEqual(r.missing, [
    { kind: 'shipments', reason: 'timeout' },
    { kind: 'tickets', reason: 'unavailable' },
  ]);
  // Bounded by the deadline, not by the slow system (generous margin for a loaded machine).
  assert.ok(took < DEADLINE_MS + 1000, `took ${took} ms`);
  const line = await biz.waitFor((l) => l['context'] === 'orders' && l['conv'] === 'c-1');
  assert.ok(line);
});

test('context - answers are cached for the TTL; fresh asks again', async () => {
  const ctx = new ContextLookup(t, names, source(60_000), {
    cacheEntries: 100,
    breakerFailures: 10,
    breakerOpenMs: 60_000,
  });
  await ctx.lookup('acme', 'c-2', { visitor: 'alice', agent: 'bob' });
  const again = await ctx.lookup('acme', 'c-2', { visitor: 'alice', agent: 'bob' });
  assert.deepEqual(again.cached, ['orders']);
  assert.equal(biz.lines.filter((l) => l['context'] === 'orders' && l['conv'] === 'c-2').length, 1);
  const fresh = await ctx.lookup('acme', 'c-2', { visitor: 'alice', agent: 'bob' }, { fresh: true });
  assert.deepEqual(fresh.cached, []);
  assert.ok('orders' in fresh.items);
});

test('context - the cache is bounded: the least recently used conversation goes first', async () => {
  const ctx = new ContextLookup(t, names, source(60_000), {
    cacheEntries: 2,
    breakerFailures: 10,
    breakerOpenMs: 60_000,
  });
  for (const conv of ['b-1', 'b-2', 'b-3']) await ctx.lookup('acme', conv, { visitor: 'alice', agent: null });
  assert.equal(ctx.stats().cacheEntries, 2);
  const first = await ctx.lookup('acme', 'b-1', { visitor: 'alice', agent: null });
  assert.deepEqual(first.cached, [], 'b-1 was evicted');
  const third = await ctx.lookup('acme', 'b-3', { visitor: 'alice', agent: null });
  assert.deepEqual(third.cached, ['orders']);
});

test('context - an open breaker skips a failing kind without waiting for it', async () => {
  const ctx = new ContextLookup(t, names, source(0), {
    cacheEntries: 100,
    breakerFailures: 2,
    breakerOpenMs: 60_000,
  });
  for (let i = 0; i < 2; i++) await ctx.lookup('acme', `k-${i}`, { visitor: 'alice', agent: null });
  const asked = ctx.stats().asked;
  const started = Date.now();
  const r = await ctx.lookup('acme', 'k-9', { visitor: 'alice', agent: null });
  assert.deepEqual(r.missing, [
    { kind: 'shipments', reason: 'circuit_open' },
    { kind: 'tickets', reason: 'circuit_open' },
  ]);
  assert.equal(ctx.stats().asked, asked + 1, 'only orders was asked');
  assert.ok(Date.now() - started < DEADLINE_MS, 'no deadline was spent on the open kinds');
  assert.ok('orders' in r.items);
});
