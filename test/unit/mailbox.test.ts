import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { BusyError } from '../../src/protocol/errors.js';
import { BUSY_RETRY_AFTER_MS, Mailbox } from '../../src/routing/mailbox.js';

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Resolves once `cond` holds, checking after each macrotask turn (at most 100 turns). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await tick();
  assert.ok(cond(), 'condition reached');
}

test('mailbox - items are consumed in FIFO order', async () => {
  const seen: number[] = [];
  const box = new Mailbox<number>('fifo', 100, async (n) => {
    await tick();
    seen.push(n);
  });
  for (let i = 0; i < 50; i++) box.offer(i);
  await until(() => seen.length === 50);
  assert.deepEqual(
    seen,
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('mailbox - one item at a time: the next starts only after the previous settled', async () => {
  let running = 0;
  let maxRunning = 0;
  let done = 0;
  const box = new Mailbox<number>('serial', 10, async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await tick();
    await tick();
    running--;
    done++;
  });
  for (let i = 0; i < 10; i++) box.offer(i);
  await until(() => done === 10);
  assert.equal(maxRunning, 1);
});

test('mailbox - offering past capacity throws BusyError without queueing', async () => {
  const first = gate();
  const seen: string[] = [];
  const box = new Mailbox<string>('shard 7', 2, async (s) => {
    if (s === 'in-flight') await first.promise;
    seen.push(s);
  });
  box.offer('in-flight'); // taken by the consumer at once, so it does not count against capacity
  box.offer('q1');
  box.offer('q2');
  assert.equal(box.size, 2);
  const err = (() => {
    try {
      box.offer('overflow');
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof BusyError);
  assert.equal(err.code, 'busy');
  assert.equal(err.queue, 'shard 7');
  assert.equal(err.capacity, 2);
  assert.equal(err.retryAfterMs, BUSY_RETRY_AFTER_MS);
  assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 0);
  assert.match(err.message, /shard 7/);
  first.open();
  await until(() => seen.length === 3);
  assert.deepEqual(seen, ['in-flight', 'q1', 'q2']);
  // Room again once drained.
  box.offer('later');
  await until(() => seen.length === 4);
});

test('mailbox - a consumer that rejects does not stop the drain', async () => {
  const seen: number[] = [];
  const box = new Mailbox<number>('rejects', 10, async (n) => {
    seen.push(n);
    if (n % 2 === 0) throw new Error(`fail ${n}`);
  });
  for (let i = 0; i < 6; i++) box.offer(i);
  await until(() => seen.length === 6);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
  assert.equal(box.busy, false);
});

test('mailbox - a consumer that throws synchronously does not stop the drain', async () => {
  const seen: number[] = [];
  // Not an async function: the throw happens before any promise exists.
  const consume = (n: number): Promise<void> => {
    seen.push(n);
    // Item 1 throws while item 2 already waits behind it.
    if (n === 1) throw new Error('sync failure');
    return Promise.resolve();
  };
  const box = new Mailbox<number>('sync-throw', 10, consume);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    for (let i = 0; i < 3; i++) box.offer(i);
    await until(() => seen.length === 3 || !box.busy);
    await tick();
    await tick();
    assert.deepEqual(seen, [0, 1, 2]);
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('mailbox - busy is true while consuming or while items wait, false when idle', async () => {
  const g = gate();
  let done = 0;
  const box = new Mailbox<number>('flag', 4, async () => {
    await g.promise;
    done++;
  });
  assert.equal(box.busy, false);
  assert.equal(box.size, 0);
  box.offer(1);
  assert.equal(box.busy, true, 'busy while the consumer runs, queue empty');
  assert.equal(box.size, 0);
  box.offer(2);
  assert.equal(box.size, 1);
  g.open();
  await until(() => done === 2);
  await tick();
  assert.equal(box.busy, false);
  assert.equal(box.size, 0);
});

test('mailbox - capacity must be a positive integer', () => {
  const noop = async (): Promise<void> => {};
  for (const capacity of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new Mailbox('bad', capacity, noop), {
      message: /capacity must be a positive integer/,
    });
  }
});
