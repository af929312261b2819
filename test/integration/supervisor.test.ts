/**
 * One node = supervisor + 2 workers on one port (`switchboard serve --workers 2`), as a real child process
 * against real NATS and Cassandra: the kernel spreads sockets over both workers (SO_REUSEPORT), the workers
 * are cluster members that route to each other, a SIGKILLed worker comes back, and SIGTERM drains with 1012.
 * It runs its own nats-server: every process on one NATS server joins one cluster (one members bucket, one
 * set of shard subjects), so sharing the suite's server with slice.test.ts would mix the two files' nodes.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_DRAIN_RETRY_AFTER_MS } from '../../src/gateway/admission.js';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { PRESENCE_LINGER_MS } from '../../src/presence/presence.js';
import { SHARD_COUNT } from '../../src/routing/shard.js';
import { defaultShardOwners } from '../../src/supervisor-options.js';
import { ADMIN_HEADERS, TEST_JWT_SECRET } from '../harness/env.js';
import { type ServedNode, startServedNode } from '../harness/serve.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

const RESTART_TIMEOUT_MS = 15_000;
/** The supervisor's default grace before SIGKILL; a drain must finish well within it. */
const STOP_GRACE_MS = 30_000;
const SPREAD_SOCKETS = 20;
const MAX_ATTEMPTS = 40;

const auth = createAuthenticator(TEST_JWT_SECRET);
const nodeId = `sup${process.pid}`;
const [w0, w1] = [`${nodeId}-w0`, `${nodeId}-w1`];
let node: ServedNode;
let port = 0;
let workers: Array<{ id: string; pid: number }> = [];
let seq = 0;
const uid = (p: string) => `${p}-${process.pid}-${++seq}`;

async function connect(tenant: string, user: string, role: TokenRole): Promise<TestClient> {
  const token = await auth.sign({ tenant, sub: user, role }, 600);
  return connectClient(`ws://127.0.0.1:${port}/ws/${role}`, token, 'switchboard.v1.json');
}

/** Connects until the kernel hands the socket to worker `id`; closes the misses. */
async function connectTo(id: string, tenant: string, user: string, role: TokenRole): Promise<TestClient> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const c = await connect(tenant, user, role);
    if (c.welcome.node === id) return c;
    await c.close();
  }
  return assert.fail(`no socket landed on ${id} in ${MAX_ATTEMPTS} attempts`);
}

const isMsg = (conv: string, s: number) => (f: Frame) => f.type === 'msg' && f.conv === conv && f.seq === s;

before(async () => {
  // Both workers listen from the start: this file is about two workers sharing the port and routing to
  // each other. A gateway that stands by while its owner is calm is test/integration/listener-group.test.ts.
  node = await startServedNode({ nodeId, workers: 2, env: { SB_GATEWAY_STANDBY: '0' } });
  port = node.port;
  workers = node.workers;
});

after(async () => {
  await node?.stop();
});

describe('supervisor', () => {
  test('supervisor - two workers share one port and the kernel spreads sockets over both', async () => {
    assert.deepEqual(
      workers.map((w) => w.id),
      [w0, w1],
    );
    const tenant = uid('t');
    const clients = await Promise.all(
      Array.from({ length: SPREAD_SOCKETS }, (_, i) => connect(tenant, `v${i}`, 'visitor')),
    );
    const perWorker = new Map<unknown, number>();
    for (const c of clients) perWorker.set(c.welcome.node, (perWorker.get(c.welcome.node) ?? 0) + 1);
    await Promise.all(clients.map((c) => c.close()));
    assert.deepEqual([...perWorker.keys()].sort(), [w0, w1], JSON.stringify([...perWorker]));
  });

  test('supervisor - a visitor on one worker and an agent on the other exchange messages', async () => {
    const tenant = uid('t');
    const conv = uid('c');
    const agent = await connectTo(w0, tenant, 'agent1', 'agent');
    const visitor = await connectTo(w1, tenant, 'v1', 'visitor');
    visitor.send({ type: 'send', conv, cmid: 'm1', body: 'hello from w1' });
    assert.equal((await visitor.next((f) => f.type === 'ack')).seq, 1);
    assert.equal((await agent.next(isMsg(conv, 1))).body, 'hello from w1');
    agent.send({ type: 'send', conv, cmid: 'r1', body: 'hello from w0' });
    assert.equal((await agent.next((f) => f.type === 'ack')).seq, 2);
    assert.equal((await visitor.next(isMsg(conv, 2))).body, 'hello from w0');
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('supervisor - the workers beyond the CPUs but one hold sockets only and own no shard', async () => {
    const owners = [w0, w1].slice(0, defaultShardOwners(2));
    type Shards = { node: string; shardOwners: string[]; held: number[] };
    const seen = new Map<string, Shards>();
    const settled = () =>
      seen.size === 2 && [...seen.values()].reduce((n, s) => n + s.held.length, 0) === SHARD_COUNT;
    // Until both workers answered and their shards add up (the handovers after start may still be going).
    for (let i = 0; i < MAX_ATTEMPTS * 5 && !settled(); i++) {
      // A new connection per request, so the kernel may pick either worker.
      const res = await fetch(`http://127.0.0.1:${port}/admin/shards`, {
        headers: { connection: 'close', ...ADMIN_HEADERS },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Shards;
      seen.set(body.node, body);
      if (!settled()) await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...seen.keys()].sort(), [w0, w1], 'both workers answered');
    assert.ok(
      settled(),
      `every shard held: ${JSON.stringify([...seen].map(([id, s]) => [id, s.held.length]))}`,
    );
    for (const [id, s] of seen) {
      assert.deepEqual(s.shardOwners, owners, `${id}'s view of the owners`);
      if (!owners.includes(id)) assert.deepEqual(s.held, [], `${id} holds sockets only`);
    }
  });

  test('supervisor - /metrics answers for the whole node, whichever worker takes the scrape', async () => {
    for (let i = 0; i < 6; i++) {
      // A new connection per scrape, so the kernel may pick either worker.
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
        headers: { connection: 'close', ...ADMIN_HEADERS },
      });
      assert.equal(res.status, 200);
      const text = await res.text();
      for (const id of [w0, w1])
        assert.match(
          text,
          new RegExp(`^switchboard_sockets\\{node="${id}"\\} \\d+$`, 'm'),
          `series of ${id}`,
        );
      assert.equal(text.match(/^# TYPE switchboard_sockets gauge$/gm)?.length, 1, 'one family, merged');
      assert.doesNotMatch(text, /^# switchboard: /m, 'every worker answered');
    }
  });

  test('supervisor - a SIGKILLed worker is restarted and takes sockets again', async (t) => {
    const victim = workers.find((w) => w.id === w1)!;
    const t0 = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    const restarted = await node.waitForLog(
      (l) => l.msg === 'worker restarted' && l.worker === w1 && l.pid !== victim.pid,
      RESTART_TIMEOUT_MS,
    );
    t.diagnostic(`worker ${w1} back after ${Date.now() - t0} ms (supervisor: downMs ${restarted.downMs})`);
    assert.notEqual(restarted.pid, victim.pid);
    assert.doesNotThrow(() => process.kill(restarted.pid as number, 0), 'the new worker process is alive');
    const c = await connectTo(w1, uid('t'), 'v', 'visitor');
    c.send({ type: 'ping', ref: 'p' });
    assert.equal((await c.next((f) => f.type === 'pong')).ref, 'p');
    await c.close();
  });

  test('supervisor - a SIGKILLed shard owner: its conversations wait for its restart, and a retried send is stored once', async (t) => {
    const owner = workers.find((w) => w.id === w0)!;
    const conv = uid('c');
    const visitor = await connectTo(w1, uid('t'), 'v', 'visitor');
    const answer = (cmid: string) => (f: Frame) =>
      (f.type === 'ack' || f.type === 'error') && f.cmid === cmid;
    visitor.send({ type: 'send', conv, cmid: 'k1', body: 'before' });
    assert.equal((await visitor.next(answer('k1'))).seq, 1);
    const t0 = Date.now();
    process.kill(owner.pid, 'SIGKILL');
    // Sent after the kill, retried with the same cmid after each error, as a client does.
    const errors: unknown[] = [];
    let ack: Frame | undefined;
    while (!ack && Date.now() - t0 < RESTART_TIMEOUT_MS * 2) {
      visitor.send({ type: 'send', conv, cmid: 'k2', body: 'during' });
      const f = await visitor.next(answer('k2'), RESTART_TIMEOUT_MS);
      if (f.type === 'ack') ack = f;
      else {
        errors.push(f.code);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const restarted = await node.waitForLog(
      (l) => l.msg === 'worker restarted' && l.worker === w0 && l.pid !== owner.pid,
      RESTART_TIMEOUT_MS,
    );
    t.diagnostic(
      `owner ${w0} back after ${restarted.downMs} ms; the send acked ${Date.now() - t0} ms after the kill, errors before it: ${JSON.stringify(errors)}`,
    );
    assert.ok(ack, `no ack for k2 within ${RESTART_TIMEOUT_MS * 2} ms (errors ${JSON.stringify(errors)})`);
    assert.equal(ack.seq, 2);
    // Stored once: the next message takes the next seq.
    visitor.send({ type: 'send', conv, cmid: 'k3', body: 'after' });
    assert.equal((await visitor.next(answer('k3'))).seq, 3);
    await visitor.close();
  });

  test('supervisor - SIGTERM drains: sockets close with 1012 and the supervisor exits 0', async () => {
    const tenant = uid('t');
    const open = [await connectTo(w0, tenant, 'a', 'visitor'), await connectTo(w1, tenant, 'b', 'visitor')];
    const t0 = Date.now();
    node.process.kill('SIGTERM');
    const closes = await Promise.all(open.map((c) => c.closed));
    assert.deepEqual(
      closes.map((c) => c.code),
      [1012, 1012],
    );
    // Before its 1012, each socket was told when to come back: the first of its process's drain slots.
    for (const c of open) {
      const notice = await c.next((f) => f.type === 'error', 1);
      assert.equal(notice.code, 'unavailable');
      assert.equal(notice.ref, undefined);
      assert.equal(notice.retryAfterMs, DEFAULT_DRAIN_RETRY_AFTER_MS);
    }
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      node.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('supervisor did not exit within the grace period')),
          STOP_GRACE_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < STOP_GRACE_MS);
    const stopped = await node.waitForLog((l) => l.msg === 'workers stopped', 1_000);
    assert.equal(stopped.clean, true);
    // Both workers were told they stop together, so neither waited out the presence linger: there
    // was no other member left to route a push to them (Presence.retire).
    const steps = node.logs.filter((l) => l.msg === 'node stopped').map((l) => l.ms as { presence: number });
    assert.equal(steps.length, 2, 'each worker logged its stop');
    for (const ms of steps)
      assert.ok(ms.presence < PRESENCE_LINGER_MS / 2, `presence step ${ms.presence} ms`);
  });
});
