import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { BucketMap, newBucket, take } from '../../src/gateway/rate-limit.js';

test('rate limit - a bucket gives its burst, then one token per 1/rate seconds', () => {
  const b = newBucket(3, 0);
  assert.deepEqual([take(b, 0, 2, 3), take(b, 0, 2, 3), take(b, 0, 2, 3)], [0, 0, 0]);
  assert.equal(take(b, 0, 2, 3), 500, 'the next token is 500 ms away at 2/s');
  assert.equal(take(b, 250, 2, 3), 250);
  assert.equal(take(b, 500, 2, 3), 0);
  // Refill never exceeds the burst.
  assert.equal(take(b, 1_000_000, 2, 3), 0);
  assert.equal(b.tokens, 2);
});

test('rate limit - a lowered burst (a tenants-file reload) clamps the bucket', () => {
  const b = newBucket(100, 0);
  assert.equal(take(b, 0, 1, 2), 0);
  assert.ok(b.tokens <= 2);
});

test('rate limit - the bucket map is bounded: the oldest key is dropped and starts full again', () => {
  const m = new BucketMap(2);
  assert.equal(m.take('a', 0, 1, 1), 0);
  assert.ok(m.take('a', 0, 1, 1) > 0, 'a is empty');
  m.take('b', 0, 1, 1);
  m.take('c', 0, 1, 1); // evicts a
  assert.equal(m.size, 2);
  assert.equal(m.take('a', 0, 1, 1), 0, 'a was dropped, so it has a full bucket again');
  assert.equal(m.size, 2);
  assert.throws(() => new BucketMap(0), /maxEntries/);
});
