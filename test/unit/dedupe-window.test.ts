/**
 * The compact de-duplication window (actors/dedupe-window.ts): at its limit the oldest message leaves,
 * candidates name every seq with the same (sender, cmid) hash, an inherited mark is taken once, and a
 * window of 0 remembers nothing.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { DedupeWindow } from '../../actors/dedupe-window.js';

test('dedupe window - holds the last `limit` messages by seq; the oldest leaves first', () => {
  const w = new DedupeWindow(3);
  for (let seq = 1; seq <= 4; seq++) w.add(seq, 'v1', `m${seq}`);
  assert.deepEqual(w.candidates('v1', 'm1'), [], 'seq 1 left when seq 4 came');
  assert.deepEqual(w.candidates('v1', 'm4'), [4]);
  assert.deepEqual(w.candidates('v1', 'm2'), [2]);
  assert.deepEqual(w.candidates('a1', 'm2'), [], 'cmids are scoped to their sender');
  assert.equal(w.size, 3);
  assert.equal(w.has(1), false);
  assert.equal(w.has(4), true);
});

test('dedupe window - an inherited message is taken once; one written here never is', () => {
  const w = new DedupeWindow(4);
  w.add(1, 'v1', 'old', true);
  w.add(2, 'v1', 'new');
  assert.equal(w.takeInherited(1), true);
  assert.equal(w.takeInherited(1), false);
  assert.equal(w.takeInherited(2), false);
  // Its slot reused by a later seq: the mark does not carry over.
  w.add(3, 'v1', 'a', true);
  w.add(7, 'v1', 'b');
  assert.equal(w.takeInherited(3), false, 'seq 3 left the window');
  assert.equal(w.takeInherited(7), false);
});

test('dedupe window - limit 0 remembers nothing; a bad limit is refused', () => {
  const w = new DedupeWindow(0);
  w.add(1, 'v1', 'm1');
  assert.deepEqual(w.candidates('v1', 'm1'), []);
  assert.equal(w.has(1), false);
  assert.throws(() => new DedupeWindow(-1), /non-negative integer/);
  assert.throws(() => new DedupeWindow(1.5), /non-negative integer/);
});
