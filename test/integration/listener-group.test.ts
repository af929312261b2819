/**
 * A full worker leaves its node's listener group (issue #14, src/listener-group.ts), on a real node: a
 * supervisor and 2 workers sharing one port with SO_REUSEPORT, each limited to LIMIT sockets. Once one worker
 * is full, new sockets all land on the other without a single `503` (the kernel would otherwise send half of
 * them to the full one); a node whose every worker is full still answers, `503` with `retryAfterMs`, and
 * serves its HTTP API; a worker with room again takes sockets again; and when the one worker listening is
 * killed, the full one takes the port back until it has been restarted. Its second worker is a gateway
 * (SB_SHARD_OWNERS=1): it stands by until the owner is full, and on another node, until the owner's upgrade
 * admission first refuses.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { rejoinAt, SEAT_ASK_INTERVAL_MS, SEAT_WAKE_PACED_MS } from '../../src/listener-group.js';
import { ADMIN_HEADERS, TEST_JWT_SECRET } from '../harness/env.js';
import { type ServedNode, startServedNode } from '../harness/serve.js';
import { connectClient, type TestClient, type UpgradeRefused } from '../harness/ws-client.js';

const LIMIT = 6;
const CHURN = 8;
const LOG_TIMEOUT_MS = 5_000;
const RESTART_TIMEOUT_MS = 20_000;
const auth = createAuthenticator(TEST_JWT_SECRET);
const nodeId = `lg${process.pid}`;
let node: ServedNode;
let seq = 0;
/** Open sockets by the worker that welcomed them. */
const held = new Map<string, TestClient[]>();

before(async () => {
  node = await startServedNode({
    nodeId,
    workers: 2,
    env: { SB_MAX_SOCKETS: String(LIMIT), SB_SHARD_OWNERS: '1' },
  });
});

after(async () => {
  await Promise.all([...held.values()].flat().map((c) => c.close().catch(() => {})));
  await node?.stop();
});

/** One attempt: the socket (recorded by worker), or the 503 that refused it. */
async function open(): Promise<TestClient | UpgradeRefused> {
  const token = await auth.sign({ tenant: 'seats', sub: `v${++seq}`, role: 'visitor' }, 600);
  try {
    const c = await connectClient(`ws://127.0.0.1:${node.port}/ws/visitor`, token, 'switchboard.v1.json');
    const w = String(c.welcome.node);
    held.set(w, [...(held.get(w) ?? []), c]);
    return c;
  } catch (err) {
    if (typeof (err as UpgradeRefused).status === 'number') return err as UpgradeRefused;
    throw err;
  }
}

const count = (w: string) => held.get(w)?.length ?? 0;
const isRefusal = (r: TestClient | UpgradeRefused): r is UpgradeRefused => 'status' in r;

async function closeOne(w: string): Promise<void> {
  const c = held.get(w)?.pop();
  assert.ok(c, `a socket on ${w} to close`);
  await c.close();
}

/** Opens until one lands; refusals must be `503` full (retried after what they said). */
async function openRetrying(): Promise<TestClient> {
  for (let i = 0; i < 20; i++) {
    const r = await open();
    if (!isRefusal(r)) return r;
    assert.equal(r.status, 503, r.body);
    const { error } = JSON.parse(r.body) as { error: { retryAfterMs: number } };
    await new Promise((res) => setTimeout(res, error.retryAfterMs));
  }
  return assert.fail('no socket welcomed in 20 attempts');
}

const logOf =
  (worker: string, msg: string, from = 0) =>
  (l: Record<string, unknown>) =>
    l.node === worker && l.msg === msg && (l.time as number) >= from;

test('listener group - a full worker stops taking connections, the other takes all of them', async () => {
  const [a, b] = node.workers.map((w) => w.id) as [string, string];
  let first: string | undefined;
  while (!first) {
    const r = await open();
    assert.ok(!isRefusal(r), `no worker is full yet, but: ${JSON.stringify(r)}`);
    if (count(a) === LIMIT) first = a;
    else if (count(b) === LIMIT) first = b;
  }
  // The gateway stood by while the owner had room: every socket so far is on the owner.
  assert.equal(first, a, 'the owner filled first');
  assert.equal(count(b), 0, 'the gateway took nothing while the owner had room');
  const other = first === a ? b : a;
  await node.waitForLog(logOf(first, 'full: left the listener group'), LOG_TIMEOUT_MS);
  // Every socket from now on lands on the other worker: none is refused by the full one.
  while (count(other) < LIMIT) {
    const r = await open();
    assert.ok(!isRefusal(r), `refused while ${other} had room: ${JSON.stringify(r)}`);
    assert.equal(r.welcome.node, other);
  }
  // And they keep doing so while it churns (without the group, each lands on the full one half the time).
  for (let i = 0; i < CHURN; i++) {
    await closeOne(other);
    const r = await openRetrying();
    assert.equal(r.welcome.node, other, `churn ${i}: landed on the full worker`);
  }
  assert.equal(count(first), LIMIT);

  // Both full: the last one listening stays, so clients are told when to retry and the API answers.
  const r = await open();
  assert.ok(isRefusal(r), 'a full node refuses');
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { error: { retryAfterMs: number } }).error.retryAfterMs, 1000);
  const health = await fetch(`http://127.0.0.1:${node.port}/healthz`, { headers: { connection: 'close' } });
  assert.equal(health.status, 200, 'a full node serves its HTTP API');

  // The first worker with room again (a margin below its limit) listens and takes the next socket.
  const t0 = Date.now();
  while (count(first) > rejoinAt(LIMIT)) await closeOne(first);
  await node.waitForLog(logOf(first, 'listening again', t0), LOG_TIMEOUT_MS);
  const back = await openRetrying();
  assert.equal(back.welcome.node, first, 'the only worker with room takes it');
});

/** Each worker's `switchboard_listening`, from the node-wide /metrics. */
async function listeningGauges(): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${node.port}/metrics`, {
    headers: { connection: 'close', ...ADMIN_HEADERS },
  });
  const text = await res.text();
  return new Map(
    [...text.matchAll(/^switchboard_listening\{node="([^"]+)"\} (\d)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
}

test('listener group - when the one worker listening is killed, the full one takes the port until it is back', async () => {
  // Both full: exactly one of them listens.
  while (node.workers.some((w) => count(w.id) < LIMIT)) await openRetrying();
  // A full worker refused a leave asks again at the next upgrade that finds it full, after the interval.
  let gauges = await listeningGauges();
  for (let i = 0; i < 5 && [...gauges.values()].filter((v) => v === 1).length !== 1; i++) {
    await new Promise((r) => setTimeout(r, SEAT_ASK_INTERVAL_MS + 100));
    assert.ok(isRefusal(await open()), 'a full node refuses');
    gauges = await listeningGauges();
  }
  assert.equal(gauges.size, 2, JSON.stringify([...gauges]));
  const victimId = [...gauges].find(([, v]) => v === 1)?.[0];
  const survivor = [...gauges].find(([, v]) => v === 0)?.[0];
  const seats = node.logs.filter((l) => /listener group|listening again/.test(String(l.msg)));
  assert.ok(
    victimId && survivor,
    `one listens, one is out: ${JSON.stringify([...gauges])} ${JSON.stringify(seats)}`,
  );
  const t0 = Date.now();
  process.kill(node.workers.find((w) => w.id === victimId)!.pid, 'SIGKILL');
  held.set(victimId, []); // its sockets are gone with it
  await node.waitForLog(logOf(survivor, 'listening again', t0), LOG_TIMEOUT_MS);
  const health = await fetch(`http://127.0.0.1:${node.port}/healthz`, { headers: { connection: 'close' } });
  assert.equal(health.status, 200, 'the port has a listener while the killed worker restarts');
  await node.waitForLog(
    (l) => l.msg === 'worker restarted' && l.worker === victimId && (l.time as number) >= t0,
    RESTART_TIMEOUT_MS,
  );
  const c = await openRetrying();
  assert.equal(c.welcome.node, victimId, 'the restarted worker takes the sockets the full one cannot');
});

test('listener group - a gateway stands by while its owner admits the upgrades, and is woken by a storm', async () => {
  const paced = await startServedNode({
    nodeId: `lgp${process.pid}`,
    workers: 2,
    // Four upgrades at once, then one a second: knocking every 200 ms, most are refused for pace.
    env: { SB_SHARD_OWNERS: '1', SB_UPGRADE_BURST: '4', SB_UPGRADE_RATE: '1' },
  });
  const mine: TestClient[] = [];
  try {
    const [owner, gateway] = paced.workers.map((w) => w.id) as [string, string];
    const attempt = async (): Promise<TestClient | UpgradeRefused> => {
      const token = await auth.sign({ tenant: 'paced', sub: `p${++seq}`, role: 'visitor' }, 600);
      try {
        const c = await connectClient(
          `ws://127.0.0.1:${paced.port}/ws/visitor`,
          token,
          'switchboard.v1.json',
        );
        mine.push(c);
        return c;
      } catch (err) {
        if (typeof (err as UpgradeRefused).status === 'number') return err as UpgradeRefused;
        throw err;
      }
    };
    for (let i = 0; i < 4; i++) {
      const r = await attempt();
      assert.ok(!isRefusal(r), `within the burst: ${JSON.stringify(r)}`);
      assert.equal(r.welcome.node, owner, 'the gateway stands by');
    }
    // Refused on end: the gateway stands by for SEAT_WAKE_PACED_MS of it, then listens.
    let streakStart: number | undefined;
    const woken = () =>
      paced.logs.find(
        (l) => l.node === gateway && l.msg === 'listening again' && l.why === 'the owners are pressed',
      );
    while (!woken()) {
      const at = Date.now();
      const r = await attempt();
      if (isRefusal(r)) {
        assert.equal(r.status, 503, r.body);
        streakStart ??= at;
      } else assert.equal(r.welcome.node, owner, 'one admitted while pacing lands on the owner');
      if (streakStart !== undefined)
        assert.ok(Date.now() - streakStart < SEAT_WAKE_PACED_MS + LOG_TIMEOUT_MS, 'woken in time');
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(streakStart !== undefined);
    const wokeAt = woken()!.time as number;
    assert.ok(
      wokeAt - streakStart >= SEAT_WAKE_PACED_MS - 50,
      `not before SEAT_WAKE_PACED_MS of pacing (${wokeAt - streakStart} ms)`,
    );
    // The kernel now spreads new connections over both: one lands on the gateway soon.
    let onGateway = false;
    for (let i = 0; i < 30 && !onGateway; i++) {
      const r = await attempt();
      onGateway = !isRefusal(r) && r.welcome.node === gateway;
    }
    assert.ok(onGateway, 'a socket landed on the woken gateway');
  } finally {
    await Promise.all(mine.map((c) => c.close().catch(() => {})));
    await paced.stop();
  }
});
