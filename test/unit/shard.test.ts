import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { fnv1a32, rendezvousOwner, SHARD_COUNT, shardOf, shardOfPrefixed } from '../../src/routing/shard.js';

const THREE = ['node-a', 'node-b', 'node-c'];

function owners(members: readonly string[]): Array<string | undefined> {
  return Array.from({ length: SHARD_COUNT }, (_, shard) => rendezvousOwner(shard, members));
}

test('shard - fnv1a32 matches the published FNV-1a 32-bit vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('shard - fnv1a32 hashes the UTF-8 bytes and returns an unsigned 32-bit integer', () => {
  // Reference over bytes, with BigInt so no 32-bit trickery is shared with the code under test.
  const reference = (bytes: Uint8Array): number => {
    let h = 0x811c9dc5n;
    for (const b of bytes) h = ((h ^ BigInt(b)) * 0x01000193n) & 0xffffffffn;
    return Number(h);
  };
  for (const s of ['', 'x', 'é', '你好', '😀', 'acme\u0000order-1001', 'z'.repeat(1000)]) {
    const h = fnv1a32(s);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, s);
    assert.equal(h, reference(new TextEncoder().encode(s)), s);
  }
});

test('shard - shardOf is the documented stable hash', () => {
  // Pinned values: fnv1a32(utf8(tenant) ++ 0x00 ++ utf8(conv)) mod 1024. Changing them moves every
  // conversation in a running cluster, so they must never change.
  const pinned: Array<[string, string, number]> = [
    ['acme', 'order-1001', 612],
    ['t1', 'c1', 646],
    ['tenant', 'conv', 881],
    ['租户', '会话', 559],
    ['acme', '', 637],
    ['', '', 287],
  ];
  for (const [tenant, conv, shard] of pinned) assert.equal(shardOf(tenant, conv), shard, `${tenant}/${conv}`);
  assert.equal(shardOf('', ''), fnv1a32('\u0000') % SHARD_COUNT);
});

test('shard - hashed in parts, shardOf and shardOfPrefixed equal the hash of the whole key', () => {
  // Non-ASCII, astral and lone-surrogate characters at the edges of each part, where a split could differ.
  const parts = ['', 'a', 'acme', '租户', '😀x', 'x\ud83d', '\ude00y', 'conv-42', '\u0001user\u0001'];
  for (const tenant of parts)
    for (const a of parts) {
      assert.equal(shardOf(tenant, a), fnv1a32(`${tenant}\u0000${a}`) % SHARD_COUNT, `${tenant}/${a}`);
      for (const b of parts)
        assert.equal(shardOfPrefixed(tenant, a, b), shardOf(tenant, `${a}${b}`), `${tenant}/${a}/${b}`);
    }
});

test('shard - the separator keeps tenant and conv apart', () => {
  assert.notEqual(shardOf('ab', 'c'), shardOf('a', 'bc'));
});

test('shard - shardOf is always in [0, 1024)', () => {
  assert.equal(SHARD_COUNT, 1024);
  for (let i = 0; i < 5000; i++) {
    const s = shardOf(`tenant-${i % 7}`, `conv-${i}`);
    assert.ok(Number.isInteger(s) && s >= 0 && s < SHARD_COUNT, `conv-${i} -> ${s}`);
  }
});

test('rendezvous - the owner is deterministic and independent of member order', () => {
  const a = owners(THREE);
  assert.deepEqual(owners(THREE), a);
  assert.deepEqual(owners([...THREE].reverse()), a);
  for (const o of a) assert.ok(o !== undefined && THREE.includes(o));
});

test('rendezvous - three members each own 25%-42% of the shards', () => {
  const counts = new Map<string, number>();
  for (const o of owners(THREE)) counts.set(o as string, (counts.get(o as string) ?? 0) + 1);
  assert.equal(counts.size, 3);
  for (const [member, n] of counts) {
    assert.ok(n >= SHARD_COUNT * 0.25 && n <= SHARD_COUNT * 0.42, `${member} owns ${n}`);
  }
});

test('rendezvous - adding a member moves only the shards the new member wins', () => {
  const before = owners(THREE);
  const after = owners([...THREE, 'node-d']);
  let moved = 0;
  for (let shard = 0; shard < SHARD_COUNT; shard++) {
    if (before[shard] !== after[shard]) {
      moved++;
      assert.equal(after[shard], 'node-d', `shard ${shard}`);
    }
  }
  // The newcomer takes roughly a quarter, not nothing and not everything.
  assert.ok(moved > SHARD_COUNT * 0.15 && moved < SHARD_COUNT * 0.35, `moved ${moved}`);
});

test('rendezvous - removing a member moves only that member’s shards', () => {
  const before = owners(THREE);
  const after = owners(['node-a', 'node-c']);
  for (let shard = 0; shard < SHARD_COUNT; shard++) {
    if (before[shard] === 'node-b') assert.notEqual(after[shard], 'node-b');
    else assert.equal(after[shard], before[shard], `shard ${shard}`);
  }
});

test('rendezvous - a single member owns everything; no members owns nothing', () => {
  assert.ok(owners(['solo']).every((o) => o === 'solo'));
  assert.equal(rendezvousOwner(0, []), undefined);
  assert.equal(rendezvousOwner(1023, []), undefined);
});
