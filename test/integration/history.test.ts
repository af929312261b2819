/**
 * History storage against a real Cassandra: schema v2 under concurrent migration, a 10k-message
 * conversation paged both ways, cmid de-duplication beyond the actor's recent window, listings,
 * audits and rows written with the v1 dictionary. Each file run uses its own keyspaces.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import {
  type Ack,
  type ConversationContext,
  conversationBehaviour,
  initialState,
  type SendMessage,
} from '../../actors/conversation.js';
import { type BodyEncoder, plainEncoder } from '../../src/store/body-codec.js';
import {
  type CassandraHistoryStore,
  type CassandraStoreHooks,
  type CassandraStoreOptions,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema.js';
import type { MessageRow } from '../../src/store/types.js';
import { V1_ROWS } from '../fixtures/compressed-v1.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';

const LOCAL_DC = 'datacenter1';
const TENANT = 't1';
const keyspaces = new Set<string>();
const stores: CassandraHistoryStore[] = [];

function options(keyspace: string, extra: Partial<CassandraStoreOptions> = {}): CassandraStoreOptions {
  // cmids rows on (they are off by default): these tests read them back.
  return { contactPoints: [TEST_CASSANDRA], localDataCenter: LOCAL_DC, keyspace, cmidTtlS: 86_400, ...extra };
}

async function open(
  keyspace: string,
  extra: Partial<CassandraStoreOptions> = {},
  hooks: CassandraStoreHooks = {},
): Promise<CassandraHistoryStore> {
  keyspaces.add(keyspace);
  const store = await openCassandraStore(options(keyspace, extra), hooks);
  stores.push(store);
  return store;
}

const shared = randomKeyspace('sbh');

after(async () => {
  await Promise.all(stores.map((store) => store.close()));
  for (const keyspace of keyspaces) await dropKeyspace(options(keyspace));
});

function row(
  conv: string,
  seq: number,
  body = `message ${seq}: where is my parcel? 我的快递到哪里了`,
): MessageRow {
  return {
    tenant: TENANT,
    conv,
    seq,
    id: `01J${String(seq).padStart(23, '0')}`,
    sender: seq % 2 === 0 ? 'agent-1' : 'visitor-1',
    senderRole: seq % 2 === 0 ? 'agent' : 'visitor',
    cmid: `c${seq}`,
    body,
    ts: Date.UTC(2026, 0, 1) + seq,
  };
}

test('history - migrations applied by four stores at once on a fresh keyspace, then again', async () => {
  const keyspace = randomKeyspace('sbm');
  const opened = await Promise.all([open(keyspace), open(keyspace), open(keyspace), open(keyspace)]);
  assert.equal(LATEST_SCHEMA_VERSION, 7);
  // Every v2 and v3 table is usable from every store (v4: the agent action audit, test/integration/events-in;
  // v5: the desk tables, test/integration/desk-*; v6: the reception tables, test/integration/reception-*;
  // v7: the packed message cell).
  await opened[0]!.append(row('m', 1));
  for (const store of opened) {
    assert.equal((await store.lookupCmid(TENANT, 'm', 'visitor-1', 'c1', 1))?.seq, 1);
    assert.equal((await store.message(TENANT, 'm', 1))?.body, row('m', 1).body);
    assert.deepEqual(await store.chatStore().listOpen(TENANT, 'nobody', 5), []);
    assert.deepEqual(await store.deskStore().listCanned(TENANT, '*', 5), []);
    assert.deepEqual(await store.messageAudits(TENANT, 'm', 5), []);
  }
  const again = await open(keyspace);
  const checked = await open(keyspace, { migrate: false });
  assert.equal((await checked.page(TENANT, 'm', undefined, 5)).items.length, 1);
  assert.equal((await again.lookupCmid(TENANT, 'm', 'visitor-1', 'nope', 1)) ?? null, null);
});

test('history - a 10k-message conversation spans 11 buckets and pages back and forth without gaps', async () => {
  const store = await open(shared, { bucketSize: 1000 });
  const total = 10_000;
  // Appended in waves, as actors would (a bounded writer refuses a 10k burst by design).
  for (let from = 1; from <= total; from += 2000) {
    await Promise.all(
      Array.from({ length: Math.min(2000, total - from + 1) }, (_, i) => store.append(row('big', from + i))),
    );
  }
  const backward: number[] = [];
  let before: number | undefined;
  let pages = 0;
  do {
    const page = await store.page(TENANT, 'big', before, 500);
    pages++;
    backward.push(...page.items.map((m) => m.seq));
    before = page.next ?? undefined;
  } while (before !== undefined);
  assert.equal(pages, 20);
  assert.equal(backward.length, total);
  assert.ok(
    backward.every((seq, i) => seq === total - i),
    'newest first, gap-free',
  );

  const forward: number[] = [];
  let since = 0;
  for (;;) {
    const { items, more } = await store.after(TENANT, 'big', since, 500);
    forward.push(...items.map((m) => m.seq));
    if (!more) break;
    since = items.at(-1)?.seq ?? since;
  }
  assert.equal(forward.length, total);
  assert.ok(
    forward.every((seq, i) => seq === i + 1),
    'oldest first, gap-free',
  );

  // Cursors in the middle, across a bucket boundary, both ways; bodies round-trip through compression.
  const mid = await store.page(TENANT, 'big', 5002, 4);
  assert.deepEqual(
    mid.items.map((m) => m.seq),
    [5001, 5000, 4999, 4998],
  );
  assert.deepEqual(mid.items[1], row('big', 5000));
  const up = await store.after(TENANT, 'big', 6997, 5);
  assert.deepEqual(
    up.items.map((m) => m.seq),
    [6998, 6999, 7000, 7001, 7002],
  );
});

test('history - a retry older than the recent window returns the original ack (cmids table)', async () => {
  const store = await open(shared, { bucketSize: 10 });
  const now = { t: Date.now() };
  let ids = 0;
  const ctx: ConversationContext = {
    store,
    clock: { now: () => now.t },
    chat: store.chatStore(),
    fence: () => ++now.t,
    newId: () => `id-${++ids}`,
    deliver: () => {},
    notify: () => {},
    emit: () => {},
    readMessage: (t, c, seq) => store.message(t, c, seq),
  };
  const send = (cmid: string): SendMessage => ({
    type: 'send',
    sender: 'v1',
    role: 'visitor',
    cmid,
    body: `text ${cmid}`,
  });
  const recentLimit = 4;
  const state = initialState(TENANT, 'dedupe', { record: null, lastSeq: 0, recent: [] }, recentLimit);
  const acks = [];
  for (let i = 1; i <= 25; i++) acks.push((await conversationBehaviour(state, send(`m${i}`), ctx)) as Ack);
  assert.equal(state.recent.has(12), false, 'm12 (seq 12) left the recent window');

  // m12 is in the previous bucket (bucket size 10, last seq 25 → buckets 2 and 1 are looked at).
  assert.deepEqual(await conversationBehaviour(state, send('m12'), ctx), acks[11]);
  assert.deepEqual(await conversationBehaviour(state, send('m25'), ctx), acks[24]);
  assert.equal(state.lastSeq, 25, 'retries stored nothing');

  // A fresh activation (another node after failover) with a small window: the same.
  const snapshot = await store.loadSnapshot(TENANT, 'dedupe', recentLimit);
  const again = initialState(TENANT, 'dedupe', snapshot, recentLimit);
  assert.deepEqual(await conversationBehaviour(again, send('m20'), ctx), acks[19]);
  const fresh = (await conversationBehaviour(again, send('m26'), ctx)) as Ack;
  assert.equal(fresh.seq, 26);
  assert.deepEqual(
    (await store.page(TENANT, 'dedupe', undefined, 500)).items.map((m) => m.seq),
    Array.from({ length: 26 }, (_, i) => 26 - i),
  );
});

test('history - conversations are listed by visitor, by agent and by day', async () => {
  const store = await open(shared);
  const day = Date.UTC(2026, 2, 3, 10);
  await store.saveConversation(
    { tenant: TENANT, conv: 'l1', visitor: 'vis', agent: null, createdAt: day },
    day,
  );
  await store.saveConversation(
    { tenant: TENANT, conv: 'l2', visitor: 'vis', agent: null, createdAt: day + 1000 },
    day,
  );
  await store.saveConversation(
    { tenant: TENANT, conv: 'l2', visitor: 'vis', agent: 'ag', createdAt: day + 1000 },
    day + 5,
  );
  await store.saveConversation(
    { tenant: 'other', conv: 'l3', visitor: 'vis', agent: 'ag', createdAt: day },
    day,
  );
  const convs = (list: { conv: string }[]) => list.map((c) => c.conv);
  assert.deepEqual(convs(await store.listConversations(TENANT, { visitor: 'vis' }, 10)), ['l2', 'l1']);
  assert.deepEqual(convs(await store.listConversations(TENANT, { agent: 'ag' }, 10)), ['l2']);
  assert.deepEqual(convs(await store.listConversations(TENANT, { day: '2026-03-03' }, 10)), ['l2', 'l1']);
  assert.deepEqual(convs(await store.listConversations(TENANT, { day: '2026-03-04' }, 10)), []);
  assert.deepEqual(convs(await store.listConversations(TENANT, { visitor: 'vis' }, 1)), ['l2']);
  await assert.rejects(store.listConversations(TENANT, { visitor: 'vis' }, 0), { code: 'invalid_field' });
});

test('history - reveals and blocks are written to their audit tables, newest first', async () => {
  const store = await open(shared);
  const ts = Date.UTC(2026, 4, 5, 6);
  const base = { tenant: TENANT, agent: 'a1', conv: 'c', seq: 3, kind: 'phone' };
  await store.auditReveal({ ...base, id: 'r1', ts, index: 0 });
  await store.auditReveal({ ...base, id: 'r2', ts: ts + 1, index: 1 });
  const reveals = await store.reveals(TENANT, '2026-05-05', 10);
  assert.deepEqual(
    reveals.map((r) => [r.id, r.index, r.agent, r.seq, r.kind]),
    [
      ['r2', 1, 'a1', 3, 'phone'],
      ['r1', 0, 'a1', 3, 'phone'],
    ],
  );
  const block = {
    tenant: TENANT,
    id: 'b1',
    ts,
    sender: 'v1',
    senderRole: 'visitor' as const,
    conv: 'c',
    cmid: 'm1',
    words: ['scam'],
    body: 'this is a s c a m',
  };
  await store.auditBlock(block);
  assert.deepEqual(await store.blocks(TENANT, '2026-05-05', 10), [block]);
  assert.deepEqual(await store.blocks('other', '2026-05-05', 10), []);
});

test('history - rows stored with dictionary v1 still read; incompressible text is stored plain', async () => {
  // A writer of the v1 era: its encoder hands the store the exact bytes v1 produced (the pinned fixture).
  const pinned = new Map(V1_ROWS.map((r) => [r.text, r]));
  const v1Writer: BodyEncoder = {
    compresses: true,
    encode: async (texts) =>
      texts.map((text) => {
        const r = pinned.get(text);
        assert.ok(r, 'fixture text');
        return { enc: r.enc, data: Buffer.from(r.base64, 'base64') };
      }),
  };
  const old = await open(shared, {}, { encoder: v1Writer });
  for (const [i, r] of V1_ROWS.entries()) await old.append(row('v1rows', i + 1, r.text));
  const reader = await open(shared, {}, { encoder: plainEncoder });
  const { items } = await reader.after(TENANT, 'v1rows', 0, 50);
  assert.deepEqual(
    items.map((m) => m.body),
    V1_ROWS.map((r) => r.text),
  );
  assert.equal((await reader.message(TENANT, 'v1rows', 2))?.body, V1_ROWS[1]?.text);
});
