/**
 * A node's listener group (src/listener-group.ts), over in-process channels. A full worker asks at its
 * limit, leaves only while another worker listens, listens again with room (not at the first freed socket),
 * and those out of the group take the port back when the last listener exits. Gateway-only workers stand
 * by while the owners are calm, are woken when an owner is pressed, full or gone, and stand by again once
 * every owner is calm. The path over real processes and the kernel's SO_REUSEPORT group is in
 * test/integration/listener-group.test.ts.
 */
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { type TestContext, test } from 'node:test';
import {
  crowdOf,
  ListenerSeat,
  rejoinAt,
  SEAT_ASK_INTERVAL_MS,
  SEAT_CALM_MS,
  SEAT_PACED_GAP_MS,
  SEAT_RELISTEN_RETRY_MS,
  SEAT_WAKE_CROWD_MIN,
  SEAT_WAKE_CROWD_SHARE,
  SEAT_WAKE_PACED_MS,
  type SeatIpc,
  type SeatPeer,
  supervisorListenerGroup,
} from '../../src/listener-group.js';
import type { ParentChannel } from '../../src/parent-channel.js';

const quiet = { info: () => {}, warn: () => {} };
/** Upgrades a second each simulated worker admits: calm allows a tenth of that over SEAT_CALM_MS. */
const RATE = 10;
const tick = () => new Promise((r) => setImmediate(r));

/** A node of `n` workers with limit `max`, the first `owners` of them owners; counts and sockets simulated. */
async function node(n: number, max: number, owners = n) {
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
      owner: i < owners,
      send: (m) => {
        setImmediate(() => channel.emit('message', m));
        return true;
      },
    };
    const w = {
      id,
      peer,
      count: 0,
      admitted: 0,
      bound: false,
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
      standby: i >= owners,
      admitted: () => w.admitted,
      ratePerS: RATE,
      log: quiet,
      now: () => now,
    });
    return w;
  });
  for (const w of workers) {
    assert.ok(await w.seat.start());
    peers.push(w.peer);
    group.ready(w.peer);
  }
  await settle();
  return {
    group,
    workers,
    peers,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Moves the simulated clock and the mocked timers on by `ms`, then lets the messages it caused arrive. */
async function elapse(
  t: { mock: { timers: { tick(ms: number): void } } },
  advance: (ms: number) => void,
  ms: number,
): Promise<void> {
  advance(ms);
  t.mock.timers.tick(ms);
  await settle();
}

type Worker = Awaited<ReturnType<typeof node>>['workers'][number];

/**
 * With mocked timers, an owner holding `count` of its 100 sockets and a gateway: the owner presses and the
 * gateway is woken.
 */
async function ownerPressed(t: TestContext, count = 0) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { workers, advance } = await node(2, 100, 1);
  const [owner, gw] = workers as [Worker, Worker];
  owner.count = count;
  owner.seat.pressed();
  await settle();
  assert.ok(gw.bound, 'woken');
  return { owner, gw, advance };
}

/** Lets the IPC messages in flight (each hop a setImmediate) arrive. */
async function settle(): Promise<void> {
  for (let i = 0; i < 6; i++) await tick();
}

test('listener group - rejoin is a margin below the limit, at least one socket, never negative', () => {
  assert.equal(rejoinAt(19_000), 18_620);
  assert.equal(rejoinAt(100), 98);
  assert.equal(rejoinAt(5), 4);
  assert.equal(rejoinAt(1), 0);
});

test('listener group - a full worker leaves while another listens, and listens again with room', async () => {
  const { workers, group } = await node(2, 100);
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
  const { workers, group, advance } = await node(2, 10);
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
  const { workers, group, peers } = await node(3, 10);
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
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { workers } = await node(2, 10);
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
    standby: true,
    log: quiet,
  });
  assert.ok(await seat.start(), 'a gateway without a supervisor listens from its start');
  seat.grew();
  await tick();
  assert.equal(unlistened, false);
  assert.ok(seat.listening);
});

test('listener group - a gateway stands by while the owner is calm, and is woken when it is pressed', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { workers, group, advance } = await node(2, 100, 1);
  const [owner, gw] = workers;
  assert.ok(owner!.bound, 'the owner listens from its start');
  assert.equal(gw!.bound, false, 'the gateway starts on standby');
  assert.ok(gw!.seat.standingBy);
  assert.deepEqual(group.out(), ['w1']);
  owner!.count = 30;
  owner!.seat.grew();
  await settle();
  assert.equal(gw!.bound, false, 'sockets alone, below the limit, do not wake it');

  // The owner's admission refused an upgrade (a storm): the gateway listens.
  owner!.seat.pressed();
  await settle();
  assert.ok(gw!.bound && gw!.seat.listening, 'woken');
  assert.deepEqual(group.out(), []);
  assert.ok(group.awake());
  gw!.count = 20;

  // Calm only at a check (every SEAT_CALM_MS) at least SEAT_CALM_MS after the last press.
  await elapse(t, advance, SEAT_CALM_MS / 2);
  owner!.seat.pressed();
  await elapse(t, advance, SEAT_CALM_MS / 2);
  assert.ok(gw!.bound, 'pressed again within the window: still awake');
  await elapse(t, advance, SEAT_CALM_MS);
  assert.equal(gw!.bound, false, 'calm: the gateway stands by');
  assert.equal(gw!.count, 20, 'keeping its sockets');
  assert.deepEqual(group.out(), ['w1']);
  assert.equal(group.awake(), false);
});

test('listener group - an owner above half its limit is not calm, so the gateways stay awake', async (t) => {
  const { owner, gw, advance } = await ownerPressed(t, 51);
  await elapse(t, advance, SEAT_CALM_MS * 3);
  assert.ok(gw!.bound, 'the owner holds more than half its limit');
  owner!.count = 50;
  await elapse(t, advance, SEAT_CALM_MS);
  assert.equal(gw!.bound, false, 'at half it is calm');
});

test('listener group - a full owner wakes the gateways, and leaves as soon as one listens', async () => {
  const { workers, group } = await node(3, 10, 1);
  const [owner, g1, g2] = workers;
  owner!.count = 10;
  owner!.seat.grew();
  await settle();
  assert.ok(g1!.bound && g2!.bound, 'both gateways listen');
  assert.equal(owner!.bound, false, 'its leave waited for them, not refused');
  assert.deepEqual(group.out(), ['w0']);
  assert.equal(owner!.seat.leaves, 1);
});

test('listener group - a leave that waits for a gateway is refused when that gateway exits first', async () => {
  const { workers, group, peers } = await node(2, 10, 1);
  const [owner, gw] = workers;
  gw!.listenOk = false; // it will not manage to listen
  owner!.count = 10;
  owner!.seat.grew();
  await settle();
  assert.ok(owner!.bound, 'waiting');
  peers.splice(1, 1);
  gw!.seat.close();
  group.gone(gw!.id);
  await settle();
  assert.ok(owner!.bound, 'refused: the port keeps its listener');
  assert.deepEqual(group.out(), []);
});

test('listener group - a gone owner wakes the gateways; the owner back, calm, puts them on standby', async () => {
  const { workers, group, peers } = await node(2, 10, 1);
  const [owner, gw] = workers;
  peers.splice(0, 1); // the owner's process exits
  group.gone(owner!.id);
  await settle();
  assert.ok(gw!.bound, 'the port keeps a listener while the owner is down');
  assert.deepEqual(group.out(), []);
  // Its next process listens, and counts as pressed until it says it is calm (SEAT_CALM_MS later).
  owner!.seat.close();
  peers.unshift(owner!.peer);
  group.ready(owner!.peer);
  await settle();
  assert.ok(gw!.bound, 'awake while the restarted owner has not been calm yet');
  group.onMessage(owner!.peer, { sb: 'seat-calm' });
  await settle();
  assert.ok(gw!.bound, 'the woken gateway has not said it is calm yet');
  group.onMessage(gw!.peer, { sb: 'seat-calm' });
  await settle();
  assert.equal(gw!.bound, false, 'back on standby');
  assert.deepEqual(group.out(), ['w1']);
});

test('listener group - a new owner tells its supervisor it is calm after SEAT_CALM_MS', async (t) => {
  const { gw, advance } = await ownerPressed(t);
  // Calm comes SEAT_CALM_MS after the last press, not before.
  await elapse(t, advance, SEAT_CALM_MS - 1);
  assert.ok(gw!.bound);
  await elapse(t, advance, 1);
  assert.equal(gw!.bound, false, 'calm');
});

test('listener group - a gateway restarted while the owner is pressed listens at once', async () => {
  const { workers, group, peers } = await node(2, 100, 1);
  const [owner, gw] = workers;
  owner!.seat.pressed();
  await settle();
  assert.ok(gw!.bound);
  peers.splice(1, 1);
  group.gone(gw!.id);
  gw!.seat.close();
  gw!.bound = false;
  const channel = new (class extends EventEmitter implements ParentChannel<SeatIpc> {
    connected = true;
    send = (): boolean => true;
  })();
  const again = new ListenerSeat({
    max: 100,
    count: () => 0,
    listen: async () => {
      gw!.bound = true;
      return true;
    },
    unlisten: () => {
      gw!.bound = false;
    },
    parent: channel,
    standby: true,
    log: quiet,
  });
  const peer: SeatPeer = {
    id: gw!.id,
    owner: false,
    send: (m) => {
      setImmediate(() => channel.emit('message', m));
      return true;
    },
  };
  assert.ok(await again.start());
  assert.equal(gw!.bound, false, 'it starts on standby');
  peers.push(peer);
  group.ready(peer);
  await settle();
  assert.ok(gw!.bound, 'and is woken at once');
  again.close();
});

test('listener group - while a gateway takes upgrades the gateways stay awake, though the owner is calm', async (t) => {
  const { gw, advance } = await ownerPressed(t);
  // A ramp spread over both: the owner is quiet, but the gateway admits more than a tenth of its rate.
  gw!.admitted += (RATE * SEAT_CALM_MS) / 1000 / 10 + 1;
  await elapse(t, advance, SEAT_CALM_MS);
  assert.ok(gw!.bound, 'the owner is calm only because the gateway takes the sockets');
  await elapse(t, advance, SEAT_CALM_MS);
  assert.equal(gw!.bound, false, 'both calm: standby');
});

test('listener group - pacing wakes the gateways only after SEAT_WAKE_PACED_MS without a pause', async () => {
  const { workers, advance } = await node(2, 100, 1);
  const [owner, gw] = workers;
  // A burst: refusals for 4 s, a pause longer than SEAT_PACED_GAP_MS, 4 s more: two short streaks.
  for (let t = 0; t < 4_000; t += 500) {
    owner!.seat.paced();
    advance(500);
  }
  advance(SEAT_PACED_GAP_MS + 1);
  for (let t = 0; t < 4_000; t += 500) {
    owner!.seat.paced();
    advance(500);
  }
  await settle();
  assert.equal(gw!.bound, false, 'no streak lasted SEAT_WAKE_PACED_MS');
  // The second streak goes on: at SEAT_WAKE_PACED_MS from its start the owner presses.
  for (let t = 4_000; t < SEAT_WAKE_PACED_MS; t += 500) {
    owner!.seat.paced();
    advance(500);
  }
  await settle();
  assert.equal(gw!.bound, false, 'not yet');
  owner!.seat.paced();
  await settle();
  assert.ok(gw!.bound, 'woken');
});

test('listener group - a crowd of refusals within a second wakes the gateways at once', async () => {
  const { workers, advance } = await node(2, 100, 1);
  const [owner, gw] = workers;
  const crowd = crowdOf(RATE);
  assert.equal(crowdOf(1000), 1000 * SEAT_WAKE_CROWD_SHARE, 'a share of a high rate');
  assert.equal(crowd, SEAT_WAKE_CROWD_MIN, 'the least crowd at a low rate');
  // One refusal short of a crowd in each second, for less than a streak: no press.
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < crowd - 1; i++) owner!.seat.paced();
    advance(SEAT_PACED_GAP_MS);
  }
  await settle();
  assert.equal(gw!.bound, false, 'fewer than a crowd in each second');
  advance(SEAT_PACED_GAP_MS + 1);
  for (let i = 0; i < crowd; i++) owner!.seat.paced();
  await settle();
  assert.ok(gw!.bound, 'a crowd within one second wakes the gateway');
});
