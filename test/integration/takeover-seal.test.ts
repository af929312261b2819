/**
 * The takeover seal and the cmid check on real Cassandra (issue #12): a write of an earlier owner that
 * lands after a new owner read the conversation's last seq stays invisible, whatever order the writes
 * arrive in; a cmids row whose message row was replaced never answers a retry.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import type { MessageRow } from '../../src/store/types.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';

const keyspace = randomKeyspace('sbt_seal');
const target = { contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace };
let store: CassandraHistoryStore;
const T0 = Date.UTC(2026, 0, 1);

before(async () => {
  // cmids rows on (off by default): the test checks that a stale one never answers a retry.
  store = await openCassandraStore({ ...target, cmidTtlS: 3600, writer: { lingerMs: 0 } });
});

after(async () => {
  await store?.close();
  await dropKeyspace(target);
});

function row(conv: string, seq: number, cmid: string, id: string, ts: number): MessageRow {
  return {
    tenant: 't',
    conv,
    seq,
    id,
    sender: 'v',
    senderRole: 'visitor',
    cmid,
    body: `body of ${cmid}`,
    ts,
  };
}

test('takeover seal - a late write of the old owner above the sealed seq is never visible', async () => {
  const conv = 'late-landing';
  await store.append(row(conv, 1, 'm1', 'old-1', T0));
  // The new owner took over at T0 + 10 s: it reads lastSeq 1 and seals above it.
  const snap = await store.loadSnapshot('t', conv, 10);
  assert.equal(snap.lastSeq, 1);
  await store.sealAbove('t', conv, snap.lastSeq, T0 + 10_000);
  // The old owner's write at seq 2 (fenced at T0 + 5 ms) reaches Cassandra only now.
  await store.append(row(conv, 2, 'm2', 'old-2', T0 + 5));
  assert.deepEqual(
    (await store.after('t', conv, 0, 10)).items.map((r) => r.id),
    ['old-1'],
  );
  assert.equal((await store.loadSnapshot('t', conv, 10)).lastSeq, 1, 'lastSeq does not see it either');
  assert.equal(await store.message('t', conv, 2), null);
  // The new owner's own write at seq 2, at its fence time (even the seal's millisecond), is visible.
  await store.append(row(conv, 2, 'm3', 'new-2', T0 + 10_000));
  assert.deepEqual(
    (await store.after('t', conv, 0, 10)).items.map((r) => r.cmid),
    ['m1', 'm3'],
  );
  // m2's cmids row still points at seq 2, which holds m3: the retry of m2 is not a duplicate.
  assert.equal(await store.lookupCmid('t', conv, 'v', 'm2', 2), null);
  const m3 = await store.lookupCmid('t', conv, 'v', 'm3', 2);
  assert.equal(m3?.id, 'new-2');
});

test('takeover seal - rows at or below the sealed seq stay, and a later owner can seal again', async () => {
  const conv = 'seal-twice';
  for (let seq = 1; seq <= 3; seq++) await store.append(row(conv, seq, `m${seq}`, `a-${seq}`, T0 + seq));
  await store.sealAbove('t', conv, 3, T0 + 1_000);
  await store.append(row(conv, 4, 'm4', 'b-4', T0 + 1_000));
  await store.sealAbove('t', conv, 4, T0 + 2_000);
  await store.append(row(conv, 5, 'late', 'b-5', T0 + 1_500)); // the second owner's late write
  await store.append(row(conv, 5, 'm5', 'c-5', T0 + 2_001));
  const items = (await store.after('t', conv, 0, 10)).items;
  assert.deepEqual(
    items.map((r) => [r.seq, r.id]),
    [
      [1, 'a-1'],
      [2, 'a-2'],
      [3, 'a-3'],
      [4, 'b-4'],
      [5, 'c-5'],
    ],
  );
});
