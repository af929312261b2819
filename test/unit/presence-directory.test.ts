/**
 * The presence directory (src/presence/directory.ts): where each user's sockets are, per presence
 * shard, with the snapshot rule (a shard is incomplete until every live member answered its taking),
 * the maxUsers bound (joins refused, a snapshot past it leaves the shard incomplete) and member drops.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { PresenceDirectory, presenceShardOf, userKey } from '../../src/presence/directory.js';
import { SHARD_COUNT, shardOf } from '../../src/routing/shard.js';

const LIVE = ['a', 'b', 'c'];

test('presence directory - the presence shard is the documented hash, spread over the shards', () => {
  assert.equal(presenceShardOf('t1', 'u1'), shardOf('t1', '\u0001user\u0001u1'));
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(presenceShardOf('t', `user-${i}`));
  assert.ok(seen.size > SHARD_COUNT * 0.95, `5000 users land on ${seen.size} shards`);
});

test('presence directory - joins and leaves per member; targets name every member with a socket', () => {
  const d = new PresenceDirectory(100);
  const e = d.open(7);
  for (const m of LIVE) d.snapshot(7, e, m, [], true);
  const k = userKey('t', 'u');
  assert.equal(d.join(7, k, 'a'), 'ok');
  assert.equal(d.join(7, k, 'b'), 'ok');
  assert.equal(d.join(7, k, 'b'), 'ok', 'a repeated join is idempotent');
  assert.deepEqual(d.targets(7, k, LIVE), { known: ['a', 'b'], unsynced: [] });
  assert.equal(d.size, 1, 'one entry per user, whatever its members');
  d.leave(7, k, 'a');
  assert.deepEqual(d.targets(7, k, LIVE)?.known, ['b']);
  d.leave(7, k, 'c'); // never joined: nothing happens
  d.leave(7, k, 'b');
  assert.deepEqual(d.targets(7, k, LIVE)?.known, []);
  assert.equal(d.size, 0);
  assert.equal(d.join(8, k, 'a'), 'not_held', 'a shard not held here refuses');
  assert.equal(d.targets(8, k, LIVE), undefined);
});

test('presence directory - a shard is incomplete until every live member sent the snapshot of this taking', () => {
  const d = new PresenceDirectory(100);
  const first = d.open(3);
  const k = userKey('t', 'v');
  assert.deepEqual(d.targets(3, k, LIVE), { known: [], unsynced: LIVE }, 'nobody answered yet');
  d.snapshot(3, first, 'a', [k], true);
  d.snapshot(3, first, 'b', ['x'], false); // a part, not the last
  assert.deepEqual(d.targets(3, k, LIVE), { known: ['a'], unsynced: ['b', 'c'] });
  // Taken afresh (released and taken again): the older taking's answers no longer count.
  const second = d.open(3);
  d.snapshot(3, first, 'c', [k], true);
  assert.deepEqual(d.targets(3, k, LIVE), { known: [], unsynced: LIVE });
  for (const m of LIVE) d.snapshot(3, second, m, m === 'c' ? [k] : [], true);
  assert.deepEqual(d.targets(3, k, LIVE), { known: ['c'], unsynced: [] });
  assert.deepEqual(d.missing(3, [...LIVE, 'd']), ['d'], 'a member that appears must answer too');
});

test('presence directory - at maxUsers a new user is refused, known ones still join; a snapshot past it keeps the shard incomplete', () => {
  const d = new PresenceDirectory(3);
  const e = d.open(1);
  for (const m of LIVE) d.snapshot(1, e, m, [], true);
  for (let i = 0; i < 3; i++) assert.equal(d.join(1, `t\u0000u${i}`, 'a'), 'ok');
  assert.equal(d.join(1, 't\u0000u3', 'a'), 'full');
  assert.equal(d.join(1, 't\u0000u0', 'b'), 'ok', 'another socket of a recorded user costs no entry');
  assert.equal(d.size, 3);
  assert.equal(d.refused, 1);
  // Another shard taken while full: its snapshot cannot be recorded, so its pushes go to everyone.
  const e2 = d.open(2);
  d.snapshot(2, e2, 'a', ['t\u0000w1', 't\u0000w2'], true);
  for (const m of ['b', 'c']) d.snapshot(2, e2, m, [], true);
  assert.deepEqual(d.targets(2, 't\u0000w1', LIVE), { known: [], unsynced: LIVE });
  assert.equal(d.size, 3);
  d.close(1);
  assert.equal(d.size, 0, 'releasing a shard frees its entries');
  assert.equal(d.join(2, 't\u0000w1', 'a'), 'ok');
});

test('presence directory - a member that left loses its entries and must answer again', () => {
  const d = new PresenceDirectory(100);
  const e = d.open(5);
  d.snapshot(5, e, 'a', ['t\u00001', 't\u00002'], true);
  d.snapshot(5, e, 'b', ['t\u00002'], true);
  d.snapshot(5, e, 'c', [], true);
  assert.equal(d.size, 2);
  assert.deepEqual(d.members().sort(), ['a', 'b', 'c']);
  assert.equal(d.dropMember('a'), 2);
  assert.equal(d.size, 1);
  assert.deepEqual(d.targets(5, 't\u00002', LIVE), { known: ['b'], unsynced: ['a'] });
  assert.deepEqual(d.members().sort(), ['b', 'c']);
});
