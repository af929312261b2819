import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { TurnFlush } from '../../src/cluster/turn-flush.js';

test('turn flush - every outbox is flushed once per turn, together, however often it was asked', async () => {
  const flush = new TurnFlush(0);
  const runs: string[] = [];
  flush.register(() => runs.push('member link'));
  flush.register(() => runs.push('delivery link'));
  for (let i = 0; i < 5; i++) flush.schedule();
  assert.deepEqual(runs, [], 'nothing is flushed before the turn ends');
  await tick();
  assert.deepEqual(runs, ['member link', 'delivery link']);
  flush.schedule();
  await tick();
  assert.equal(runs.length, 4, 'a later turn is flushed again');
});

test('turn flush - with a linger the items of several turns wait for one flush', async () => {
  const flush = new TurnFlush(20);
  let runs = 0;
  flush.register(() => runs++);
  flush.schedule();
  await tick();
  flush.schedule();
  await tick();
  assert.equal(runs, 0, 'still lingering after two turns');
  await sleep(60);
  assert.equal(runs, 1);
});

test('turn flush - the linger is validated', () => {
  assert.throws(() => new TurnFlush(-1), /lingerMs must be a number ≥ 0/);
  assert.throws(() => new TurnFlush(Number.NaN), /lingerMs must be a number ≥ 0/);
});
