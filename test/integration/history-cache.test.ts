/**
 * The history cache over a real Cassandra store: sync and the first history page are answered from
 * the owner's cache (hit counters), reads beyond the tail and on non-owners go to Cassandra, a lost
 * shard drops its entries (failover: the new owner's writes are seen), and the cache stays within its
 * byte bound.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { shardOf } from '../../src/routing/shard.js';
import { CachedHistoryStore } from '../../src/store/cache.js';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import type { MessageRow } from '../../src/store/types.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';

const TENANT = 't1';
const keyspace = randomKeyspace('sbc');
const base = { contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace };
const stores: CassandraHistoryStore[] = [];

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await dropKeyspace(base);
});

async function inner(): Promise<CassandraHistoryStore> {
  const store = await openCassandraStore({ ...base, bucketSize: 50 });
  stores.push(store);
  return store;
}

function row(conv: string, seq: number, sender = 'v1'): MessageRow {
  return {
    tenant: TENANT,
    conv,
    seq,
    id: `id-${conv}-${seq}`,
    sender,
    senderRole: 'visitor',
    cmid: `c${seq}`,
    body: `message ${seq} 你好`,
    ts: Date.UTC(2026, 0, 1) + seq,
  };
}

/** A cache whose ownership of each shard the test sets. */
function cached(store: CassandraHistoryStore, maxBytes = 1 << 20, tailMessages = 20) {
  const held = new Set<number>();
  const cache = new CachedHistoryStore(store, {
    maxBytes,
    tailMessages,
    shardOf,
    holds: (shard) => held.has(shard),
  });
  return { cache, held };
}

test('history cache - the owner answers sync and the first page from memory; older pages from Cassandra', async () => {
  const store = await inner();
  const { cache, held } = cached(store);
  held.add(shardOf(TENANT, 'hot'));
  await cache.saveConversation({ tenant: TENANT, conv: 'hot', visitor: 'v1', agent: null, createdAt: 1 }, 1);
  for (let seq = 1; seq <= 30; seq++) await store.append(row('hot', seq)); // written before activation
  await cache.loadSnapshot(TENANT, 'hot', 8); // actor activation seeds the tail (newest 20)
  for (let seq = 31; seq <= 40; seq++) await cache.append(row('hot', seq));

  const before = cache.stats();
  const first = await cache.page(TENANT, 'hot', undefined, 10);
  const synced = await cache.after(TENANT, 'hot', 35, 100);
  const record = await cache.loadConversation(TENANT, 'hot');
  const one = await cache.message(TENANT, 'hot', 33);
  const hits = cache.stats();
  assert.equal(hits.hits - before.hits, 4, 'four reads, all from the cache');
  assert.equal(hits.misses, before.misses);
  // Same answers as Cassandra.
  assert.deepEqual(first, await store.page(TENANT, 'hot', undefined, 10));
  assert.deepEqual(synced, await store.after(TENANT, 'hot', 35, 100));
  assert.deepEqual(record, await store.loadConversation(TENANT, 'hot'));
  assert.deepEqual(one, await store.message(TENANT, 'hot', 33));

  // The tail holds seqs 21..40: a page reaching below it, and a sync from before it, go to Cassandra.
  const older = await cache.page(TENANT, 'hot', 25, 10);
  assert.deepEqual(
    older.items.map((m) => m.seq),
    [24, 23, 22, 21, 20, 19, 18, 17, 16, 15],
  );
  const fromStart = await cache.after(TENANT, 'hot', 0, 100);
  assert.equal(fromStart.items.length, 40);
  assert.equal(cache.stats().misses - hits.misses, 2);

  // The push to a newly assigned agent: the newest rows after a seq, oldest first, from memory only.
  const seqs = (rows: MessageRow[]) => rows.map((m) => m.seq);
  assert.deepEqual(seqs(cache.cachedAfter(TENANT, 'hot', 30, 32)), [31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
  assert.deepEqual(seqs(cache.cachedAfter(TENANT, 'hot', 30, 3)), [38, 39, 40]);
  assert.deepEqual(cache.cachedAfter(TENANT, 'hot', 31, 32)[0], await store.message(TENANT, 'hot', 32));
  assert.deepEqual(
    seqs(cache.cachedAfter(TENANT, 'hot', 0, 100)),
    Array.from({ length: 20 }, (_, i) => 21 + i),
    'only what the tail holds',
  );
  assert.deepEqual(cache.cachedAfter(TENANT, 'hot', 40, 32), []);
  assert.deepEqual(
    cache.cachedAfter(TENANT, 'hot', 30, 2.5),
    [],
    'a limit that is not an integer reads nothing',
  );
  assert.deepEqual(cache.cachedAfter(TENANT, 'cold', 0, 32), [], 'nothing cached: nothing read');
  held.delete(shardOf(TENANT, 'hot'));
  assert.deepEqual(cache.cachedAfter(TENANT, 'hot', 30, 32), [], 'a shard not held: nothing');
  assert.equal(cache.stats().misses - hits.misses, 2, 'never a Cassandra read');
});

test('history cache - a short conversation is served whole; a non-owner always reads Cassandra', async () => {
  const store = await inner();
  const { cache, held } = cached(store);
  const shard = shardOf(TENANT, 'short');
  held.add(shard);
  await cache.loadSnapshot(TENANT, 'short', 8);
  for (let seq = 1; seq <= 5; seq++) await cache.append(row('short', seq));
  const s0 = cache.stats();
  assert.deepEqual(
    (await cache.page(TENANT, 'short', undefined, 50)).items.map((m) => m.seq),
    [5, 4, 3, 2, 1],
  );
  assert.deepEqual(await cache.page(TENANT, 'short', 3, 50), await store.page(TENANT, 'short', 3, 50));
  assert.equal(cache.stats().hits - s0.hits, 2);

  held.delete(shard); // not (or no longer) the owner: never trusted
  const s1 = cache.stats();
  await cache.page(TENANT, 'short', undefined, 50);
  await cache.after(TENANT, 'short', 0, 50);
  assert.equal(cache.stats().hits, s1.hits);
  assert.equal(cache.stats().misses - s1.misses, 2);
  assert.equal(cache.stats().entries, 0, 'the entry of a shard not held is dropped on sight');
});

test('history cache - failover: a shard taken by another member drops its entries, its writes are seen', async () => {
  const storeA = await inner();
  const storeB = await inner();
  const a = cached(storeA);
  const b = cached(storeB);
  const shard = shardOf(TENANT, 'moving');
  a.held.add(shard);
  await a.cache.loadSnapshot(TENANT, 'moving', 8);
  for (let seq = 1; seq <= 10; seq++) await a.cache.append(row('moving', seq));
  assert.equal((await a.cache.after(TENANT, 'moving', 0, 100)).items.length, 10);

  // A loses the shard (released or fenced), B takes it, activates the actor and writes on.
  a.held.delete(shard);
  a.cache.dropShard(shard);
  assert.ok(a.cache.stats().invalidated >= 1);
  b.held.add(shard);
  await b.cache.loadSnapshot(TENANT, 'moving', 8);
  for (let seq = 11; seq <= 15; seq++) await b.cache.append(row('moving', seq, 'v2'));

  // Later A takes the shard back. A sync reaches A before its actor is activated again: the dropped
  // entry cannot answer it with the stale ten messages; Cassandra does, with B's five.
  b.held.delete(shard);
  b.cache.dropShard(shard);
  a.held.add(shard);
  const misses = a.cache.stats().misses;
  const items = (await a.cache.after(TENANT, 'moving', 0, 100)).items;
  assert.equal(a.cache.stats().misses, misses + 1);
  assert.deepEqual(
    items.map((m) => m.seq),
    Array.from({ length: 15 }, (_, i) => i + 1),
  );
  assert.equal(items.at(-1)?.sender, 'v2');
});

test('history cache - bounded by bytes: many conversations never exceed maxBytes', async () => {
  const store = await inner();
  const maxBytes = 20_000;
  const { cache, held } = cached(store, maxBytes, 10);
  for (let c = 0; c < 30; c++) {
    const conv = `many${c}`;
    held.add(shardOf(TENANT, conv));
    await cache.loadSnapshot(TENANT, conv, 4);
    for (let seq = 1; seq <= 10; seq++) await cache.append(row(conv, seq));
    assert.ok(cache.stats().bytes <= maxBytes, `${cache.stats().bytes} bytes`);
  }
  assert.ok(cache.stats().entries < 30, 'least recently used conversations were evicted');
  // An evicted conversation still reads correctly (from Cassandra).
  assert.equal((await cache.after(TENANT, 'many0', 0, 100)).items.length, 10);
  assert.throws(
    () => new CachedHistoryStore(store, { maxBytes: -1, tailMessages: 1, shardOf, holds: () => true }),
    { message: 'cache maxBytes must be a non-negative integer' },
  );
});

test('history cache - a cached row reads back as it was appended: the agents view, cards, flags', async () => {
  const store = await inner();
  const { cache, held } = cached(store);
  held.add(shardOf(TENANT, 'fields'));
  await cache.loadSnapshot(TENANT, 'fields', 4);
  const rows: MessageRow[] = [
    { ...row('fields', 1), agentBody: row('fields', 1).body },
    { ...row('fields', 2), body: 'call 555-0100 😀', agentBody: 'call ***', review: true },
    {
      ...row('fields', 3, 'bot'),
      senderRole: 'bot',
      card: {
        kind: 'order',
        title: '订单 42',
        fields: { status: 'shipped' },
        url: 'https://shop.example/o/42',
      },
    },
    { ...row('fields', 4, 'a1'), senderRole: 'agent', internal: true },
  ];
  for (const r of rows) await cache.append(r);
  const before = cache.stats().hits;
  assert.deepEqual((await cache.after(TENANT, 'fields', 0, 10)).items, rows);
  assert.deepEqual((await cache.page(TENANT, 'fields', undefined, 10)).items, rows.slice().reverse());
  assert.deepEqual(await cache.message(TENANT, 'fields', 3), rows[2]);
  assert.equal(cache.stats().hits - before, 3, 'all three from the cache');
  const copy = await cache.message(TENANT, 'fields', 1);
  if (copy) copy.body = 'changed by a caller';
  assert.equal((await cache.message(TENANT, 'fields', 1))?.body, rows[0]?.body, 'each read is a new object');
});
