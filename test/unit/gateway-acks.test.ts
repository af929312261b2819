import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ACK_HOLD_MS,
  flushOutboxes,
  holdAck,
  MAX_HELD_ACKS,
  queueFrame,
  releaseAcks,
} from '../../src/gateway/socket-outbox.js';

type Data = Parameters<typeof holdAck>[0];

/** A socket stand-in recording writes: what went out, and how many corked writes it took. */
function socket() {
  const writes: string[][] = [];
  let corked: string[] | undefined;
  const ws = {
    cork(cb: () => void) {
      corked = [];
      cb();
      writes.push(corked);
      corked = undefined;
    },
    send(payload: string) {
      if (corked) corked.push(payload);
      else writes.push([payload]);
      return 1;
    },
    getBufferedAmount: () => 0,
    end() {},
  };
  const data = { closed: false, ws, codec: { binary: false } } as unknown as Data;
  return { data, writes };
}

test('gateway acks - an ack waits for the next delivered frame and both leave in one corked write', () => {
  const { data, writes } = socket();
  holdAck(data, 'ack-1', 1 << 20);
  assert.deepEqual(writes, [], 'held');
  releaseAcks(data, 1 << 20, 'msg-1');
  assert.deepEqual(writes, [['ack-1', 'msg-1']]);
});

test('gateway acks - a held ack leaves after ACK_HOLD_MS without a delivery', async () => {
  const { data, writes } = socket();
  holdAck(data, 'ack-1', 1 << 20);
  await new Promise((r) => setTimeout(r, ACK_HOLD_MS + 20));
  assert.deepEqual(writes, [['ack-1']]);
});

test('gateway acks - at MAX_HELD_ACKS the held acks leave at once; a closed socket gets nothing', () => {
  const { data, writes } = socket();
  for (let i = 0; i < MAX_HELD_ACKS - 1; i++) holdAck(data, `ack-${i}`, 1 << 20);
  assert.equal(writes.length, 0);
  holdAck(data, 'last', 1 << 20);
  assert.equal(writes.length, 1);
  assert.equal(writes[0]?.length, MAX_HELD_ACKS);
  assert.equal(writes[0]?.at(-1), 'last');
  const closed = socket();
  holdAck(closed.data, 'ack', 1 << 20);
  (closed.data as { closed: boolean }).closed = true;
  releaseAcks(closed.data, 1 << 20, 'msg');
  assert.deepEqual(closed.writes, []);
});

const endOfTurn = () => new Promise((r) => setImmediate(r));

test('gateway acks - an echo queued before its ack: both leave at the end of the turn in one write, no timer', async () => {
  const { data, writes } = socket();
  queueFrame(data, 'echo-1', 1 << 20);
  holdAck(data, 'ack-1', 1 << 20);
  assert.deepEqual(writes, [], 'nothing before the end of the turn');
  assert.equal((data as { ackTimer?: unknown }).ackTimer, undefined, 'the ack is not held on a timer');
  await endOfTurn();
  assert.deepEqual(writes, [['echo-1', 'ack-1']]);
  await new Promise((r) => setTimeout(r, ACK_HOLD_MS + 20));
  assert.equal(writes.length, 1, 'nothing more after the hold time');
});

test('gateway acks - an outbox holds at most MAX_HELD_ACKS frames; closed sockets get nothing; flush is idempotent', async () => {
  const { data, writes } = socket();
  for (let i = 0; i < MAX_HELD_ACKS - 1; i++) queueFrame(data, `f-${i}`, 1 << 20);
  assert.equal(writes.length, 0);
  queueFrame(data, 'last', 1 << 20);
  assert.equal(writes.length, 1, 'a full outbox is written at once');
  assert.equal(writes[0]?.length, MAX_HELD_ACKS);
  queueFrame(data, 'next', 1 << 20);
  const closed = socket();
  queueFrame(closed.data, 'lost', 1 << 20);
  (closed.data as { closed: boolean }).closed = true;
  await endOfTurn();
  assert.deepEqual(writes.at(-1), ['next']);
  assert.equal(writes.length, 2);
  assert.deepEqual(closed.writes, []);
  flushOutboxes();
  assert.equal(writes.length, 2, 'nothing is written twice');
});
