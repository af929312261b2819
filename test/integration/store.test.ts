/**
 * The Cassandra history store against a real server (env SB_TEST_CASSANDRA, default 127.0.0.1:19042).
 * Each run uses its own random keyspaces and drops them at the end.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import cassandra from 'cassandra-driver';
import { BusyError } from '../../src/protocol/errors.js';
import {
  BODY_ENC_UTF8,
  type BodyEncoder,
  type EncodedBody,
  plainEncoder,
  setEncodedBody,
} from '../../src/store/body-codec.js';
import {
  type CassandraHistoryStore,
  type CassandraStoreHooks,
  type CassandraStoreOptions,
  dropKeyspace,
  openCassandraStore,
  parseCassandraStoreOptions,
} from '../../src/store/cassandra-store.js';
import type { MessageRow } from '../../src/store/types.js';
import { compressBodies } from '../../workers/compression.js';

const CONTACT_POINT = process.env['SB_TEST_CASSANDRA'] ?? '127.0.0.1:19042';
const LOCAL_DC = 'datacenter1';
const TENANT = 't1';
const T0_MS = Date.UTC(2025, 0, 1);

const keyspaces = new Set<string>();
const stores: CassandraHistoryStore[] = [];

function newKeyspace(): string {
  const keyspace = `sb_test_${randomBytes(6).toString('hex')}`;
  keyspaces.add(keyspace);
  return keyspace;
}

function options(keyspace: string, extra: Partial<CassandraStoreOptions> = {}): CassandraStoreOptions {
  return { contactPoints: [CONTACT_POINT], localDataCenter: LOCAL_DC, keyspace, ...extra };
}

async function open(
  keyspace: string,
  extra: Partial<CassandraStoreOptions> = {},
  hooks: CassandraStoreHooks = {},
) {
  const store = await openCassandraStore(options(keyspace, extra), hooks);
  stores.push(store);
  return store;
}

function message(conv: string, seq: number): MessageRow {
  return {
    tenant: TENANT,
    conv,
    seq,
    id: `01J${String(seq).padStart(23, '0')}`,
    sender: seq % 2 === 0 ? 'agent-1' : 'visitor-1',
    senderRole: seq % 2 === 0 ? 'agent' : 'visitor',
    cmid: `c${seq}`,
    body: `hello ${seq} — ünïcode ✓`,
    ts: T0_MS + seq,
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

let shared = '';
before(() => {
  shared = newKeyspace();
});

after(async () => {
  await Promise.all(stores.map((store) => store.close()));
  for (const keyspace of keyspaces) {
    await dropKeyspace(options(keyspace));
  }
});

test('store - options are validated with fixed messages', () => {
  const cases: [Partial<CassandraStoreOptions>, string][] = [
    [{ bucketSize: 0 }, 'bucketSize must be a positive integer'],
    [{ bucketSize: 1.5 }, 'bucketSize must be a positive integer'],
    [{ contactPoints: [] }, 'contactPoints must be a non-empty array of host[:port] strings'],
    [{ keyspace: 'bad-name' }, 'keyspace must be a CQL identifier'],
    [{ consistency: 'ALL' as never }, 'consistency must be one of ONE, LOCAL_ONE, LOCAL_QUORUM, QUORUM'],
    [{ writer: { maxPendingRows: 0 } }, 'writer.maxPendingRows must be a positive integer'],
    [{ writer: { lingerMs: -1 } }, 'writer.lingerMs must be a non-negative number'],
    [{ replication: "{'class': 'x'}; DROP KEYSPACE y" }, 'replication must be a CQL map literal'],
  ];
  for (const [extra, message] of cases) {
    assert.throws(
      () => parseCassandraStoreOptions(options('ks', extra)),
      (err: unknown) => err instanceof Error && err.message.startsWith(message),
      message,
    );
  }
  const config = parseCassandraStoreOptions(options('ks'));
  assert.equal(config.bucketSize, 1000);
  assert.equal(config.writer.maxBatchRows, 32);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.writer));
});

test('store - migrations apply concurrently and again, and are required without migrate', async () => {
  const keyspace = newKeyspace();
  await assert.rejects(open(keyspace, { migrate: false }));
  await Promise.all([open(keyspace), open(keyspace)]);
  const again = await open(keyspace);
  const checked = await open(keyspace, { migrate: false });
  await again.append(message('m1', 1));
  assert.deepEqual(
    (await checked.page(TENANT, 'm1', undefined, 10)).items.map((m) => m.seq),
    [1],
  );
});

test('store - the migration lock is taken only while migrations are missing', async () => {
  const keyspace = newKeyspace();
  let locked = 0;
  const migrationLock = <T>(migrate: () => Promise<T>): Promise<T> => {
    locked++;
    return migrate();
  };
  await open(keyspace, {}, { migrationLock });
  assert.equal(locked, 1, 'a fresh keyspace is migrated under the lock');
  // A restart: its keyspace is at every version, so its workers read it and do not queue for the lock.
  await Promise.all([open(keyspace, {}, { migrationLock }), open(keyspace, {}, { migrationLock })]);
  assert.equal(locked, 1);
});

test('store - append and page round trip, conversation record', async () => {
  const store = await open(shared);
  const row = message('rt', 1);
  await store.append(row);
  assert.deepEqual(await store.page(TENANT, 'rt', undefined, 10), { items: [row], next: null });
  assert.deepEqual(await store.page(TENANT, 'none', undefined, 10), { items: [], next: null });

  assert.equal(await store.loadConversation(TENANT, 'rt'), null, 'max_bucket alone is no record');
  const record = { tenant: TENANT, conv: 'rt', visitor: 'v1', agent: null, createdAt: T0_MS };
  await store.saveConversation(record, Date.now());
  assert.deepEqual(await store.loadConversation(TENANT, 'rt'), record);
  await store.saveConversation({ ...record, agent: 'a1' }, Date.now());
  assert.deepEqual(await store.loadConversation(TENANT, 'rt'), { ...record, agent: 'a1' });
});

test('store - a message row is one packed cell (no column cells, no nulls), and rows written before schema 7 still read', async () => {
  const store = await open(shared);
  const plain = message('cells', 1);
  const flagged: MessageRow = {
    ...message('cells', 2),
    review: true,
    card: { kind: 'order', title: 'Order 42', fields: { total: '9.90' } },
  };
  await store.append(plain);
  await store.append(flagged);
  const client = new cassandra.Client({ contactPoints: [CONTACT_POINT], localDataCenter: LOCAL_DC });
  try {
    const rs = await client.execute(
      `SELECT seq, writetime(packed) AS wp, writetime(id) AS wi, writetime(body) AS wb, writetime(flags) AS wf, writetime(card) AS wc FROM ${shared}.messages WHERE tenant = ? AND conv = ? AND bucket = 0`,
      [TENANT, 'cells'],
      { prepare: true },
    );
    assert.equal(rs.rows.length, 2);
    for (const r of rs.rows) {
      assert.notEqual(r.get('wp'), null, 'the packed cell is written');
      for (const col of ['wi', 'wb', 'wf', 'wc']) assert.equal(r.get(col), null, `no ${col} cell`);
    }
    // A row as schema 1-4 wrote it: columns, no packed cell.
    await client.execute(
      `INSERT INTO ${shared}.messages (tenant, conv, bucket, seq, id, sender, sender_role, cmid, body, body_enc, ts, flags) VALUES (?, ?, 0, 3, ?, ?, ?, ?, ?, 0, ?, 1)`,
      [
        TENANT,
        'cells',
        'legacy-id',
        'visitor-1',
        'visitor',
        'c3',
        Buffer.from('from before ✓'),
        new Date(T0_MS + 3),
      ],
      { prepare: true },
    );
  } finally {
    await client.shutdown();
  }
  const legacy: MessageRow = {
    ...message('cells', 3),
    id: 'legacy-id',
    sender: 'visitor-1',
    senderRole: 'visitor',
    body: 'from before ✓',
    review: true,
  };
  assert.deepEqual((await store.page(TENANT, 'cells', undefined, 10)).items, [legacy, flagged, plain]);
  const snapshot = await store.loadSnapshot(TENANT, 'cells', 3);
  assert.equal(snapshot.lastSeq, 3);
  assert.deepEqual(
    snapshot.recent.map((a) => [a.seq, a.id, a.cmid]),
    [
      [1, plain.id, 'c1'],
      [2, flagged.id, 'c2'],
      [3, 'legacy-id', 'c3'],
    ],
  );
});

test('store - 2,500 messages over 3 buckets page back newest first without gaps', async () => {
  const store = await open(shared, { bucketSize: 1000 });
  await Promise.all(range(1, 2500).map((seq) => store.append(message('big', seq))));
  const { statements, rows, ...settled } = store.stats();
  assert.deepEqual(settled, { pending: 0, inFlight: 0, retries: 0, failed: 0 });
  assert.equal(rows, 2500);
  assert.ok(statements < rows, `appended together, rows share statements (${statements} for ${rows})`);

  const seen: number[] = [];
  let cursor: number | undefined;
  let pages = 0;
  do {
    const page = await store.page(TENANT, 'big', cursor, 333);
    pages++;
    seen.push(...page.items.map((m) => m.seq));
    cursor = page.next ?? undefined;
    if (page.next !== null) assert.equal(page.next, page.items.at(-1)?.seq);
  } while (cursor !== undefined);
  assert.equal(pages, Math.ceil(2500 / 333));
  assert.deepEqual(seen, range(1, 2500).reverse());
  assert.deepEqual([...seen].reverse(), range(1, 2500));

  const across = await store.page(TENANT, 'big', 2001, 3);
  assert.deepEqual(
    across.items.map((m) => m.seq),
    [2000, 1999, 1998],
  );
  const first = await store.page(TENANT, 'big', 3, 5);
  assert.deepEqual(first, { items: [message('big', 2), message('big', 1)], next: null });
  const pastEnd = await store.page(TENANT, 'big', 1_000_000, 2);
  assert.deepEqual(
    pastEnd.items.map((m) => m.seq),
    [2500, 2499],
  );
});

test('store - rows of many conversations written in shared statements read back per conversation, in order', async () => {
  const store = await open(shared, { bucketSize: 3, writer: { maxInFlight: 1, maxBatchPartitions: 8 } });
  const convs = range(1, 30).map((i) => `multi-${i}`);
  // Every conversation's first row opens a bucket (max_bucket), and seq 3 opens the second one.
  await Promise.all(convs.flatMap((conv) => range(1, 4).map((seq) => store.append(message(conv, seq)))));
  const { statements, rows } = store.stats();
  assert.equal(rows, 120);
  assert.ok(
    statements <= 120 / 8,
    `statements took rows of several conversations (${statements} for 120 rows)`,
  );
  for (const conv of convs) {
    const page = await store.page(TENANT, conv, undefined, 10);
    assert.deepEqual(
      page.items.map((m) => [m.seq, m.cmid]),
      [4, 3, 2, 1].map((seq) => [seq, `c${seq}`]),
      conv,
    );
    assert.equal(
      (await store.loadSnapshot(TENANT, conv, 4)).lastSeq,
      4,
      `${conv}: max_bucket found its last row`,
    );
  }
});

test('store - loadSnapshot gives lastSeq and recent acks across a bucket boundary', async () => {
  const store = await open(shared, { bucketSize: 10 });
  const record = { tenant: TENANT, conv: 'snap', visitor: 'v1', agent: 'a1', createdAt: T0_MS };
  await store.saveConversation(record, Date.now());
  await Promise.all(range(1, 13).map((seq) => store.append(message('snap', seq))));

  const snapshot = await store.loadSnapshot(TENANT, 'snap', 5);
  assert.deepEqual(snapshot.record, record);
  assert.equal(snapshot.lastSeq, 13);
  assert.deepEqual(
    snapshot.recent.map((ack) => ack.cmid),
    ['c9', 'c10', 'c11', 'c12', 'c13'],
  );
  const ack = snapshot.recent.at(-1);
  assert.deepEqual(ack, {
    cmid: 'c13',
    sender: 'visitor-1',
    seq: 13,
    id: message('snap', 13).id,
    ts: T0_MS + 13,
  });

  assert.equal((await store.loadSnapshot(TENANT, 'snap', 50)).recent.length, 13);
  assert.deepEqual(await store.loadSnapshot(TENANT, 'snap', 0), { record, lastSeq: 13, recent: [] });
  assert.deepEqual(await store.loadSnapshot(TENANT, 'empty', 5), { record: null, lastSeq: 0, recent: [] });
});

test('store - a full writer rejects busy at once and keeps what it accepted', async () => {
  const store = await open(shared, { writer: { maxPendingRows: 5 } });
  const order: string[] = [];
  const appends = range(1, 50).map((seq) =>
    store.append(message('busy', seq)).then(
      () => order.push('ok'),
      (err: unknown) => {
        order.push('busy');
        throw err;
      },
    ),
  );
  const results = await Promise.allSettled(appends);
  const rejected = results.filter((r) => r.status === 'rejected');
  assert.ok(rejected.length > 0 && rejected.length < 50);
  for (const r of rejected) {
    assert.ok(r.reason instanceof BusyError);
    assert.equal(r.reason.code, 'busy');
    assert.equal(r.reason.capacity, 5);
  }
  // Immediate: every refusal settled before any accepted row was written.
  assert.deepEqual(order.slice(0, rejected.length), Array(rejected.length).fill('busy'));

  const written = range(1, 50).filter((_, i) => results[i]?.status === 'fulfilled');
  const page = await store.page(TENANT, 'busy', undefined, 500);
  assert.deepEqual(
    page.items.map((m) => m.seq),
    written.reverse(),
  );
});

test('store - page rejects a limit outside 1..500 with invalid_field', async () => {
  const store = await open(shared);
  for (const limit of [0, 501, 1.5, Number.NaN]) {
    await assert.rejects(store.page(TENANT, 'rt', undefined, limit), {
      code: 'invalid_field',
      message: 'limit must be an integer from 1 to 500',
    });
  }
  await assert.rejects(store.page(TENANT, 'rt', 0, 10), { code: 'invalid_field' });
});

/** A full garbage collection (the flag is set at run time, so the suite needs no --expose-gc). */
function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // A WeakRef's target lives at least until the end of the job that created or read it.
  return new Promise((resolve) =>
    setImmediate(() => {
      gc();
      resolve();
    }),
  );
}

test('store - a body encoded with its screen is written as it is, without an encode of its own; a row whose text changed since is encoded', async () => {
  let encoded = 0;
  const encoder: BodyEncoder = {
    compresses: true,
    encode: async (texts) => {
      encoded += texts.length;
      return compressBodies(texts);
    },
  };
  const keyspace = newKeyspace();
  const store = await openCassandraStore(options(keyspace), { encoder });
  stores.push(store);
  const before = message('preset', 1);
  before.body = 'Where is my parcel? It was due on Monday and the tracking page says nothing.';
  setEncodedBody(before, compressBodies([before.body])[0]!);
  await store.append(before);
  assert.equal(encoded, 0, 'the preset bytes were written');
  const changed = message('preset', 2);
  setEncodedBody(changed, compressBodies([changed.body])[0]!);
  changed.body = 'another text';
  await store.append(changed);
  assert.equal(encoded, 1, 'encoded again: the preset bytes were of another text');
  assert.deepEqual(
    (await store.page(TENANT, 'preset', undefined, 10)).items.map((r) => r.body),
    ['another text', before.body], // newest first
  );
  // An encoder that stores plain text (compression off) encodes every row: preset bytes are not used.
  let plainEncoded = 0;
  const plainSpy: BodyEncoder = {
    compresses: false,
    encode: (texts) => {
      plainEncoded += texts.length;
      return plainEncoder.encode(texts);
    },
  };
  const plainStore = await openCassandraStore(options(keyspace), { encoder: plainSpy });
  stores.push(plainStore);
  const plain = message('preset-plain', 1);
  setEncodedBody(plain, compressBodies([plain.body])[0]!);
  await plainStore.append(plain);
  assert.equal(plainEncoded, 1);
  assert.equal((await plainStore.page(TENANT, 'preset-plain', undefined, 10)).items[0]?.body, plain.body);
});

test('store - a durable row lets go of its stored bytes; a failed write keeps them for its repeat', async () => {
  const made: WeakRef<EncodedBody>[] = [];
  const encoder: BodyEncoder = {
    compresses: true,
    encode: async (texts) =>
      texts.map((text) => {
        const body: EncodedBody = { enc: BODY_ENC_UTF8, data: new TextEncoder().encode(text) };
        made.push(new WeakRef(body));
        return body;
      }),
  };
  const keyspace = newKeyspace();
  const store = await openCassandraStore(options(keyspace), { encoder });
  stores.push(store);
  // The rows stay referenced (as the actors' recent windows keep them); only their bytes may go.
  const rows = range(1, 40).map((seq) => message('bytes', seq));
  await Promise.all(rows.map((row) => store.append(row)));
  assert.equal(made.length, rows.length, 'one encoding per row');
  await collectGarbage();
  assert.equal(made.filter((ref) => ref.deref() !== undefined).length, 0, 'no durable row keeps its bytes');

  // A write that fails is repeated by the actor with the same bytes: they must stay with the row.
  await dropKeyspace(options(keyspace));
  const failed = message('bytes', 41);
  await assert.rejects(store.append(failed));
  await collectGarbage();
  assert.equal(made.length, rows.length + 1);
  assert.notEqual(made.at(-1)?.deref(), undefined, 'the failed row keeps its encoded body');
  // Used after the collections, so both stayed reachable through them.
  assert.deepEqual([rows.at(-1)?.seq, failed.seq], [40, 41]);
});
