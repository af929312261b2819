/**
 * Shard ownership on real NATS: gateway-only members (a lease saying `shards: false`) and, first, a
 * member whose view of the cluster is stale (issue #12). After a partition heals or a
 * nats-server restarts, a member's watch can lag, so it sees no recent renewal of the others and judges
 * them dead. It must not take their shards on that word alone: only the bucket itself may say a holder's
 * lease expired. Real nats-server with JetStream (the test stack); the stale member's watch is cut by a
 * wrapper of our own Transport (the fault injected is "the watch stopped delivering"), its reads are not.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { systemClock } from '../../src/clock.js';
import { leaseOwnsShards, Membership } from '../../src/cluster/membership.js';
import { ShardOwnership } from '../../src/cluster/ownership.js';
import { connectTransport, type KvBucket, type Transport } from '../../src/cluster/transport.js';
import { SHARD_COUNT } from '../../src/routing/shard.js';
import { randomKeyspace, TEST_NATS_URL } from '../harness/env.js';

const LEASE_TTL_MS = 3000;
const transports: Transport[] = [];
const stops: Array<() => Promise<void>> = [];

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await Promise.all(transports.map((t) => t.close()));
});

/** The same transport, but KV watches deliver only what exists when they start, and nothing later. */
function withFrozenWatches(inner: Transport): Transport {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'kv') return Reflect.get(target, prop, receiver);
      return async (bucket: string, ttlMs: number): Promise<KvBucket> => {
        const kv = await target.kv(bucket, ttlMs);
        return {
          ...kv,
          watch: async (onEntry) => {
            let frozen = false;
            const stop = await kv.watch((e) => {
              if (!frozen) onEntry(e);
            });
            frozen = true;
            return stop;
          },
        };
      };
    },
  });
}

async function member(
  id: string,
  bucketPrefix: string,
  transport: Transport,
  /** Awaited by every release (drain) of a shard; lets a test hold a reconcile pass mid-way. */
  draining: () => Promise<void> = async () => {},
  ownsShards = true,
) {
  const membership = new Membership(transport, {
    nodeId: id,
    bucket: `${bucketPrefix}_members`,
    leaseTtlMs: LEASE_TTL_MS,
    clock: systemClock,
    ownsShards,
  });
  await membership.start();
  const acquired = new Set<number>();
  const ownership = new ShardOwnership(
    id,
    transport,
    membership,
    {
      acquired: (s) => acquired.add(s),
      release: async (s) => {
        acquired.delete(s);
        await draining();
      },
    },
    systemClock,
    `${bucketPrefix}_shards`,
    100,
  );
  ownership.onEvent((e) => log.push({ member: id, ...e }));
  await ownership.start();
  const stop = async () => {
    await ownership.stop();
    await membership.stop();
  };
  stops.push(stop);
  return { membership, ownership, acquired, stop };
}

/** Every ownership event of every member, in the order they happened. */
const log: Array<{ member: string; shard: number; kind: string }> = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('ownership - a member whose watch went stale does not take the shards of a live holder', async () => {
  const prefix = randomKeyspace('own');
  const ta = await connectTransport([TEST_NATS_URL], 'own-a');
  const tb = await connectTransport([TEST_NATS_URL], 'own-b');
  transports.push(ta, tb);
  const a = await member('a', prefix, ta);
  // A alone: it takes every shard.
  for (let i = 0; i < 100 && a.ownership.heldShards().length < SHARD_COUNT; i++) await sleep(100);
  assert.equal(a.ownership.heldShards().length, SHARD_COUNT);

  // B joins with a watch that delivers the present and then nothing: after one TTL, A looks dead to B.
  const b = await member('b', prefix, withFrozenWatches(tb));
  await sleep(LEASE_TTL_MS * 3);
  assert.equal(a.membership.leaseValid(), true, 'A keeps renewing: it is alive');
  // B may take only what A let go first (handover): never a shard A still served.
  for (const [i, e] of log.entries()) {
    if (e.member !== 'b' || e.kind !== 'acquired') continue;
    const aLetGo = log
      .slice(0, i)
      .some((x) => x.member === 'a' && x.shard === e.shard && x.kind !== 'acquired');
    assert.ok(aLetGo, `B acquired shard ${e.shard} while A still held it`);
  }
  // Every shard is held by exactly one member.
  const both = a.ownership.heldShards().filter((s) => b.ownership.holds(s));
  assert.deepEqual(both, [], 'no shard is held by both members');
  const union = new Set([...a.ownership.heldShards(), ...b.ownership.heldShards()]);
  assert.equal(union.size, SHARD_COUNT, 'every shard has a holder');
});

test('ownership - a lease renewed after a pause drops every shard held before it, even with a reconcile pass mid-way', async () => {
  const prefix = randomKeyspace('own');
  const ta = await connectTransport([TEST_NATS_URL], 'own-lapse-a');
  const tb = await connectTransport([TEST_NATS_URL], 'own-lapse-b');
  transports.push(ta, tb);
  let drained: Promise<void> = Promise.resolve();
  let drainStarted = false;
  const a = await member('a', prefix, ta, () => {
    drainStarted = true;
    return drained;
  });
  for (let i = 0; i < 100 && a.ownership.heldShards().length < SHARD_COUNT; i++) await sleep(100);
  assert.equal(a.ownership.heldShards().length, SHARD_COUNT);

  // A second member's lease appears: A hands over about half its shards, and each handover's drain
  // waits, so A's reconcile pass stays in progress (as one waiting on NATS does).
  let finishDrains!: () => void;
  drained = new Promise((r) => {
    finishDrains = r;
  });
  const members = await tb.kv(`${prefix}_members`, LEASE_TTL_MS);
  await members.put('b', new TextEncoder().encode(JSON.stringify({ id: 'b' })));
  for (let i = 0; i < 100 && !drainStarted; i++) await sleep(50);
  assert.ok(drainStarted, 'A started handing shards over');
  const kept = a.ownership.heldShards();
  assert.ok(kept.length > 0 && kept.length < SHARD_COUNT, `A keeps part of its shards (${kept.length})`);

  // The pause: A's event loop stops for longer than its lease (SIGSTOP of the process, as the cluster test
  // does, seen from inside). Others may take A's shards meanwhile; A learns it only from the watch, later.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LEASE_TTL_MS * 1.5);
  const resumedAt = log.length;
  for (let i = 0; i < 100 && !a.membership.leaseValid(); i++) await sleep(20);
  assert.equal(a.membership.leaseValid(), true, 'A renewed its lease after the pause');
  // The reconcile pass is still waiting on the drains: whatever A holds now, it held from before the pause.
  const stale = kept.filter((s) => a.ownership.holds(s));
  finishDrains();
  assert.deepEqual(stale, [], 'A still served shards it held before its lease lapsed');
  const fenced = new Set(
    log.slice(resumedAt).flatMap((e) => (e.member === 'a' && e.kind === 'fenced' ? [e.shard] : [])),
  );
  assert.deepEqual(
    kept.filter((s) => !fenced.has(s)),
    [],
    'every shard kept is fenced on resuming',
  );

  // And A recovers: B's lease was never renewed, so A takes every shard again under its new lease.
  for (let i = 0; i < 200 && a.ownership.heldShards().length < SHARD_COUNT; i++) await sleep(100);
  assert.equal(a.ownership.heldShards().length, SHARD_COUNT);
});

test('ownership - gateway-only members take no shard while an owner is live, all of them while none is, and hand them back', async () => {
  const prefix = randomKeyspace('own');
  const [ta, tb, tc] = await Promise.all(
    ['a', 'b', 'c'].map((n) => connectTransport([TEST_NATS_URL], `own-gw-${n}`)),
  );
  transports.push(ta!, tb!, tc!);
  const noop = async () => {};
  const b = await member('b', prefix, tb!, noop, false);
  const c = await member('c', prefix, tc!, noop, false);
  const held = (...ms: Array<{ ownership: ShardOwnership }>) =>
    ms.reduce((n, m) => n + m.ownership.heldShards().length, 0);
  const waitFor = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await sleep(100);
    assert.ok(ok(), what);
  };
  // Only gateways live: they are the owners of last resort and split the shards.
  await waitFor('the gateways hold every shard while no owner is live', () => held(b, c) === SHARD_COUNT);
  assert.deepEqual(b.membership.shardOwners(), ['b', 'c']);

  // An owner joins: the gateways hand every shard over to it and take none back while it lives.
  const a = await member('a', prefix, ta!);
  await waitFor('the owner holds every shard', () => held(a) === SHARD_COUNT && held(b, c) === 0);
  assert.deepEqual(b.membership.shardOwners(), ['a']);
  assert.deepEqual(b.membership.members(), ['a', 'b', 'c']);
  const joinedAt = log.length;
  await sleep(LEASE_TTL_MS);
  assert.equal(held(b, c), 0, 'a gateway took a shard while the owner was live');
  assert.deepEqual(
    log.slice(joinedAt).filter((e) => e.kind === 'acquired'),
    [],
    'no shard moved while the owner was live',
  );

  // The owner leaves: the gateways take every shard again, each held once.
  await a.stop();
  await waitFor('the gateways hold every shard once the owner left', () => held(b, c) === SHARD_COUNT);
  assert.deepEqual(
    b.ownership.heldShards().filter((s) => c.ownership.holds(s)),
    [],
    'no shard is held by two members',
  );
  assert.ok(held(b) > 0 && held(c) > 0, 'both gateways share the shards');

  // It comes back (a restarted worker has the same id): the shards go back to it.
  const again = await member('a', prefix, ta!);
  await waitFor('the owner holds every shard again', () => held(again) === SHARD_COUNT && held(b, c) === 0);
});

test('membership - a lease says its member owns shards unless it says shards: false', () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  assert.equal(leaseOwnsShards(enc({ id: 'a', http: 'h:1' })), true, 'a lease from before the field');
  assert.equal(leaseOwnsShards(enc({ id: 'a', shards: true })), true);
  assert.equal(leaseOwnsShards(enc({ id: 'a', shards: false })), false);
  assert.equal(
    leaseOwnsShards(new TextEncoder().encode('not json')),
    true,
    'an unreadable lease counts as an owner',
  );
  assert.equal(leaseOwnsShards(enc(null)), true);
});

/**
 * The same transport, but the first `failures` puts and watches of every bucket fail as NATS does while a
 * freshly created stream has no leader yet: a NatsError whose code and message are "503".
 */
function withLeaderlessStart(inner: Transport, failures: number): Transport & { failed: () => number } {
  let failed = 0;
  const noLeader = () => {
    failed++;
    return Object.assign(new Error('503'), { code: '503' });
  };
  const proxy = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'failed') return () => failed;
      if (prop !== 'kv') return Reflect.get(target, prop, receiver);
      return async (bucket: string, ttlMs: number): Promise<KvBucket> => {
        const kv = await target.kv(bucket, ttlMs);
        let puts = 0;
        let watches = 0;
        return {
          ...kv,
          put: async (key, value) => {
            if (puts++ < failures) throw noLeader();
            await kv.put(key, value);
          },
          watch: async (onEntry) => {
            if (watches++ < failures) throw noLeader();
            return kv.watch(onEntry);
          },
        };
      };
    },
  });
  return proxy as Transport & { failed: () => number };
}

test('membership - a start that meets a leaderless bucket (NATS 503) retries until its lease and watch are up', async () => {
  const prefix = randomKeyspace('own');
  const t = await connectTransport([TEST_NATS_URL], 'own-503');
  transports.push(t);
  const flaky = withLeaderlessStart(t, 2);
  const m = await member('m', prefix, flaky);
  assert.equal(flaky.failed(), 6, "the lease's first two puts and both watches' first two opens failed 503");
  assert.equal(m.membership.leaseValid(), true, 'the lease was put after the 503s');
  for (let i = 0; i < 100 && m.ownership.heldShards().length < SHARD_COUNT; i++) await sleep(100);
  assert.equal(m.ownership.heldShards().length, SHARD_COUNT, 'the member took every shard');
  // What is stored: the bucket holds the lease the member put.
  const kv = await t.kv(`${prefix}_members`, LEASE_TTL_MS);
  const lease = await kv.get('m');
  assert.ok(lease !== null && !lease.deleted, 'the lease is in the bucket');
});
