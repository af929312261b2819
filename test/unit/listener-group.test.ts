/**
 * A full worker leaves its node's listener group (src/listener-group.ts), over in-process channels: it
 * asks at its limit, leaves only while another worker listens, listens again with room (not at the first
 * freed socket), and those out of the group take the port back when the last listener exits. The path
 * over real processes and the kernel's SO_REUSEPORT group is in test/integration/listener-group.test.ts.
 */
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import {
  ListenerSeat,
  rejoinAt,
  SEAT_ASK_INTERVAL_MS,
  SEAT_RELISTEN_RETRY_MS,
  type SeatIpc,
  type SeatPeer,
  supervisorListenerGroup,
} from '../../src/listener-group.js';
import type { ParentChannel } from '../../src/parent-channel.js';

const quiet = { info: () => {}, warn: () => {} };
const tick = () => new Promise((r) => setImmediate(r));

/** A node of `n` workers with limit `max`, each worker's count and listening socket simulated. */
function node(n: number, max: number) {
  let now = 0;
  const peers: SeatPeer[] = [];
  const group = supervisorListenerGroup(() => peers);
  const workers = Array.from({ length: n }, (_, i) => {
    const id = `w${i}`;
    const channel = new (class extends EventEmitter implements ParentChannel<SeatIpc> {
      connected = true;
      send = (m: SeatIpc): boolean => {
        setImmediate(() => group.onMessage(peer, m));
        return true;
      };
    })();
    const peer: SeatPeer = {
      id,
      send: (m) => {
        setImmediate(() => channel.emit('message', m));
        return true;
      },
    };
    peers.push(peer);
    const w = {
      id,
      count: 0,
      bound: true,
      listenOk: true,
      seat: undefined as unknown as ListenerSeat,
    };
    w.seat = new ListenerSeat({
      max,
      count: () => w.count,
      listen: async () => {
        if (w.listenOk) w.bound = true;
        return w.listenOk;
      },
      unlisten: () => {
        w.bound = false;
      },
      parent: channel,
      log: quiet,
      now: () => now,
    });
    return w;
  });
  return {
    group,
    workers,
    peers,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

test('listener group - rejoin is a margin below the limit, at least one socket, never negative', () => {
  assert.equal(rejoinAt(19_000), 18_620);
  assert.equal(rejoinAt(100), 98);
  assert.equal(rejoinAt(5), 4);
  assert.equal(rejoinAt(1), 0);
});

test('listener group - a full worker leaves while another listens, and listens again with room', async () => {
  const { workers, group } = node(2, 100);
  const [a] = workers;
  a!.count = 99;
  a!.seat.grew();
  await tick();
  await tick();
  assert.ok(a!.bound && a!.seat.listening, 'below its limit it stays');
  a!.count = 100;
  a!.seat.grew();
  await tick();
  await tick();
  assert.equal(a!.bound, false, 'at its limit it stops listening');
  assert.equal(a!.seat.listening, false);
  assert.equal(a!.seat.leaves, 1);
  assert.deepEqual(group.out(), ['w0']);
  a!.count = 99;
  a!.seat.shrank();
  await tick();
  assert.equal(a!.bound, false, 'one freed socket is not room: it would flap');
  a!.count = 98;
  a!.seat.shrank();
  await tick();
  await tick();
  assert.ok(a!.bound && a!.seat.listening, 'at the margin below its limit it listens again');
  assert.deepEqual(group.out(), [], 'and the supervisor counts it in');
});

test('listener group - the last worker listening is refused, and asks again only after the interval', async () => {
  const { workers, group, advance } = node(2, 10);
  const [a, b] = workers;
  a!.count = 10;
  a!.seat.grew();
  await tick();
  await tick();
  assert.equal(a!.bound, false);
  b!.count = 10;
  b!.seat.grew();
  await tick();
  await tick();
  assert.ok(b!.bound && b!.seat.listening, 'the port keeps a listener: the full node answers 503 there');
  assert.deepEqual(group.out(), ['w0']);
  a!.count = 5;
  a!.seat.shrank();
  await tick();
  await tick();
  assert.ok(a!.bound, 'w0 has room again');
  b!.seat.grew();
  await tick();
  await tick();
  assert.ok(b!.bound, 'within the interval a refused worker does not ask again');
  advance(SEAT_ASK_INTERVAL_MS);
  b!.seat.grew();
  await tick();
  await tick();
  assert.equal(b!.bound, false, 'after it, it asks, and leaves now that w0 listens');
  assert.deepEqual(group.out(), ['w1']);
});

test('listener group - when the last listener exits, the workers out of the group take the port back', async () => {
  const { workers, group, peers } = node(3, 10);
  const [a, b, c] = workers;
  for (const w of [a!, b!]) {
    w.count = 10;
    w.seat.grew();
    await tick();
    await tick();
  }
  assert.deepEqual(group.out(), ['w0', 'w1']);
  peers.splice(2, 1); // w2's process exits: the supervisor no longer counts it ready
  group.gone(c!.id);
  await tick();
  await tick();
  assert.ok(a!.bound && b!.bound, 'both listen again, full, so a client is told 503 and when to retry');
  assert.deepEqual(group.out(), []);
});

test('listener group - one that cannot listen again stays out and retries; without a supervisor nobody leaves', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { workers } = node(2, 10);
  const [a] = workers;
  a!.count = 10;
  a!.seat.grew();
  await tick();
  await tick();
  a!.listenOk = false;
  a!.count = 0;
  a!.seat.shrank();
  await tick();
  assert.equal(a!.bound, false);
  assert.equal(a!.seat.listening, false);
  a!.listenOk = true;
  t.mock.timers.tick(SEAT_RELISTEN_RETRY_MS);
  await tick();
  assert.ok(a!.bound && a!.seat.listening, 'the retry listens');
  a!.seat.close();

  const alone = new EventEmitter() as unknown as ParentChannel<SeatIpc>;
  let unlistened = false;
  const seat = new ListenerSeat({
    max: 1,
    count: () => 1,
    listen: async () => true,
    unlisten: () => {
      unlistened = true;
    },
    parent: alone,
    log: quiet,
  });
  seat.grew();
  await tick();
  assert.equal(unlistened, false);
  assert.ok(seat.listening);
});
