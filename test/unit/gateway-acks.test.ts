import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACK_HOLD_MS, holdAck, MAX_HELD_ACKS, releaseAcks } from '../../src/gateway/server.js';

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
