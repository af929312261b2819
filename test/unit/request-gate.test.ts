/** The bound on a process's Cassandra requests: in flight, waiting in line, and what happens at each limit. */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatedClient, RequestGate } from '../../src/store/request-gate.js';

interface Pending {
  resolve(v: string): void;
  reject(e: unknown): void;
}

/** A request that settles when told, and the gate's view of who started. */
function harness(maxInFlight: number, maxWaiting: number, maxWaitMs = 10_000) {
  let now = 0;
  const gate = new RequestGate(maxInFlight, maxWaiting, maxWaitMs, () => now);
  const started: string[] = [];
  const pending = new Map<string, Pending>();
  const run = (id: string) =>
    gate.run(
      () =>
        new Promise<string>((resolve, reject) => {
          started.push(id);
          pending.set(id, { resolve, reject });
        }),
    );
  return {
    gate,
    started,
    run,
    finish: (id: string) => pending.get(id)!.resolve(id),
    fail: (id: string) => pending.get(id)!.reject(new Error(`failed ${id}`)),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test('request gate - at most maxInFlight run; the rest wait and start in arrival order as others end', async () => {
  const h = harness(2, 10);
  const results = Promise.allSettled(['a', 'b', 'c', 'd'].map((id) => h.run(id)));
  await tick();
  assert.deepEqual(h.started, ['a', 'b']);
  assert.deepEqual(h.gate.stats(), { inFlight: 2, waiting: 2, refusedFull: 0, refusedLate: 0 });
  h.finish('b');
  await tick();
  assert.deepEqual(h.started, ['a', 'b', 'c']);
  h.fail('a'); // a failure frees its turn too, and reaches its caller
  await tick();
  assert.deepEqual(h.started, ['a', 'b', 'c', 'd']);
  h.finish('c');
  h.finish('d');
  const settled = await results;
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    ['failed a', 'b', 'c', 'd'],
  );
  assert.deepEqual(h.gate.stats(), { inFlight: 0, waiting: 0, refusedFull: 0, refusedLate: 0 });
});

test('request gate - with the line full a request is refused at once, unavailable with a retry delay', async () => {
  const h = harness(1, 2);
  const kept = ['a', 'b', 'c'].map((id) => h.run(id));
  await assert.rejects(h.run('d'), (err: { code?: string; retryAfterMs?: number }) => {
    assert.equal(err.code, 'unavailable');
    assert.ok((err.retryAfterMs ?? 0) > 0);
    return true;
  });
  await tick();
  assert.deepEqual(h.started, ['a'], 'the refused request never reached the driver');
  assert.equal(h.gate.stats().refusedFull, 1);
  for (const id of ['a', 'b', 'c']) {
    await tick();
    h.finish(id);
  }
  assert.deepEqual(await Promise.all(kept), ['a', 'b', 'c']);
});

test('request gate - a request whose turn comes after maxWaitMs is refused, not run', async () => {
  const h = harness(1, 10, 1000);
  const a = h.run('a');
  const late = h.run('late');
  h.advance(400);
  const onTime = h.run('on-time');
  h.advance(700); // 'late' has waited 1100 ms, 'on-time' 700 ms
  h.finish('a');
  await assert.rejects(late, { code: 'unavailable' });
  await tick();
  assert.deepEqual(h.started, ['a', 'on-time']);
  assert.equal(h.gate.stats().refusedLate, 1);
  h.finish('on-time');
  assert.equal(await a, 'a');
  assert.equal(await onTime, 'on-time');
});

test('request gate - maxWaiting 0 refuses whatever finds every slot taken; a throw in the request frees its slot', async () => {
  const h = harness(1, 0);
  const a = h.run('a');
  await assert.rejects(h.run('b'), { code: 'unavailable' });
  h.finish('a');
  await a;
  const gate = new RequestGate(1, 0, 1000);
  await assert.rejects(
    gate.run(() => {
      throw new Error('sync throw');
    }),
    /sync throw/,
  );
  assert.equal(await gate.run(async () => 'next'), 'next');
});

test('request gate - a gated client passes statements and batches through, bounded', async () => {
  const calls: string[] = [];
  let release: () => void = () => {};
  const client = {
    execute: (query: string) => {
      calls.push(query);
      return new Promise<never>((resolve) => {
        release = () => resolve({ rows: [] } as never);
      });
    },
    batch: async (queries: unknown[]) => {
      calls.push(`batch of ${queries.length}`);
      return { rows: [] } as never;
    },
  };
  const gated = gatedClient(client, new RequestGate(1, 1, 1000));
  const first = gated.execute('SELECT 1', []);
  const second = gated.batch(['INSERT 1', 'INSERT 2']);
  await assert.rejects(gated.execute('SELECT 3', []), { code: 'unavailable' });
  await tick();
  assert.deepEqual(calls, ['SELECT 1']);
  release();
  await first;
  await second;
  assert.deepEqual(calls, ['SELECT 1', 'batch of 2']);
});

test('request gate - bounds are checked', () => {
  assert.throws(() => new RequestGate(0, 1, 1000), /maxInFlight/);
  assert.throws(() => new RequestGate(1, -1, 1000), /maxWaiting/);
});
