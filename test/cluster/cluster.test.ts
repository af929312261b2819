/**
 * The cluster runtime under faults, on real processes: 3 nats-servers with routes, broker nodes
 * (`switchboard node`) each on its own NATS server, Cassandra. Kill -9, SIGSTOP past the lease,
 * a node joining, sustained overload — and the guarantees checked from history afterwards.
 */
import * as assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { rendezvousOwner, SHARD_COUNT } from '../../src/routing/shard.js';
import { type NatsClusterHandle, startNatsCluster } from '../../src/stack/nats-server.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { assertHistoryKeepsAcks, readAll, SteadyLoad, sleep } from '../harness/load.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

// Short enough for quick failovers, long enough that a loaded 2-core box renews in time.
const LEASE_TTL_MS = 4000;
/** Lines of each member's log printed when a history check fails. */
const LOG_TAIL_LINES = 80;
const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('cluster');
let nats: NatsClusterHandle;
const running: BrokerProcess[] = [];

function broker(id: string, server: number, env: Record<string, string> = {}): Promise<BrokerProcess> {
  return startBroker({
    nodeId: id,
    keyspace,
    natsUrl: nats.urls[server % nats.urls.length]!,
    env: { SB_LEASE_TTL_MS: String(LEASE_TTL_MS), ...env },
  }).then((b) => {
    running.push(b);
    return b;
  });
}

interface View {
  status: string;
  members: string[];
  shardsOwned: number;
  held: number[];
}

async function view(node: BrokerProcess): Promise<View> {
  const ready = (await (await fetch(`${node.httpBase}/readyz`)).json()) as View;
  const shards = (await (
    await fetch(`${node.httpBase}/admin/shards`, { headers: ADMIN_HEADERS })
  ).json()) as View;
  return { ...ready, held: shards.held };
}

/**
 * Waits until every node in `nodes` sees exactly those members, every shard is owned, and each
 * node holds exactly its rendezvous share; returns the time it took.
 */
async function settled(nodes: BrokerProcess[], timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  const members = nodes.map((n) => n.nodeId).sort();
  const share = (id: string) =>
    [...Array(SHARD_COUNT).keys()].filter((s) => rendezvousOwner(s, members) === id).join(',');
  for (;;) {
    const views = await Promise.all(nodes.map((n) => view(n).catch(() => undefined)));
    const ok = views.every(
      (v, i) =>
        v !== undefined &&
        v.members.join(',') === members.join(',') &&
        v.shardsOwned === SHARD_COUNT &&
        v.held.join(',') === share(nodes[i]!.nodeId),
    );
    if (ok) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`not settled on ${members}: ${JSON.stringify(views)}`);
    await sleep(50);
  }
}

/** Sends and waits for the ack, retrying the same cmid on transient errors as a client would. */
async function sendUntilAck(
  c: TestClient,
  frame: { conv: string; cmid: string; body: string },
): Promise<Frame> {
  for (let attempt = 0; attempt < 10; attempt++) {
    c.send({ type: 'send', ...frame });
    const f = await c.next(
      (x) => (x.type === 'ack' || x.type === 'error') && (x.cmid === frame.cmid || x.ref === frame.cmid),
    );
    if (f.type === 'ack') return f;
    assert.ok(
      ['busy', 'unavailable', 'timeout'].includes(String(f.code)),
      `unexpected error ${JSON.stringify(f)}`,
    );
    await sleep(200);
  }
  return assert.fail(`no ack for ${frame.cmid}`);
}

async function verifyLoad(load: SteadyLoad, node: BrokerProcess, tenant: string, n: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const rows = await readAll(node, tenant, load.visitor(i), load.conv(i));
    try {
      assertHistoryKeepsAcks(load.conv(i), rows, load.acked.get(load.conv(i))!);
    } catch (err) {
      // A broken guarantee is rare and timing-bound: keep what the members said (CI keeps only the output).
      for (const b of running)
        console.error(
          `--- ${b.nodeId} log, last ${LOG_TAIL_LINES} lines:\n${b.logs().split('\n').slice(-LOG_TAIL_LINES).join('\n')}`,
        );
      throw err;
    }
    total += rows.length;
  }
  return total;
}

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((b) => b.stop()));
}

before(async () => {
  nats = await startNatsCluster(3);
});

// A failed test must not leave its brokers in the next test's cluster.
afterEach(stopAll);

after(async () => {
  await stopAll();
  await nats?.stop();
});

describe('cluster', () => {
  test('cluster - seven members starting together settle on their rendezvous shares', async (t) => {
    const nodes = await Promise.all(Array.from({ length: 7 }, (_, i) => broker(`c0-${i}`, i)));
    const ms = await settled(nodes, 60_000);
    t.diagnostic(`7 members settled ${ms} ms after all were ready`);
    await stopAll();
  });

  test('cluster - visitors and agents on different nodes get every message once, in seq order', async () => {
    const nodes = await Promise.all([broker('c1-a', 0), broker('c1-b', 1), broker('c1-c', 2)]);
    await settled(nodes);
    const N = 12;
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const tenant = `t1-${i}`;
        const conv = `conv-${i}`;
        const vTok = await auth.sign({ tenant, sub: 'v', role: 'visitor' }, 600);
        const aTok = await auth.sign({ tenant, sub: 'ag', role: 'agent' }, 600);
        const agent = await connectClient(
          `${nodes[(i + 1) % 3]!.wsBase}/ws/agent`,
          aTok,
          'switchboard.v1.json',
        );
        const visitor = await connectClient(
          `${nodes[i % 3]!.wsBase}/ws/visitor`,
          vTok,
          'switchboard.v1.msgpack',
        );
        for (let k = 1; k <= N; k++) {
          const who = k % 3 === 0 ? agent : visitor;
          const ack = await sendUntilAck(who, { conv, cmid: `m${k}`, body: `text ${k}` });
          assert.equal(ack.seq, k);
        }
        await sleep(200);
        for (const c of [agent, visitor]) {
          const seqs = c
            .buffered()
            .filter((x) => x.type === 'msg')
            .map((x) => x.seq as number);
          assert.deepEqual(
            seqs,
            Array.from({ length: N }, (_, j) => j + 1),
          );
        }
        await Promise.all([agent.close(), visitor.close()]);
      }),
    );
    await stopAll();
  });

  test('cluster - kill -9 of a node under load loses no acked message and stores none twice', async (t) => {
    const nodes = await Promise.all([broker('c2-a', 0), broker('c2-b', 1), broker('c2-c', 2)]);
    await settled(nodes);
    const tenant = 't2';
    let targets: BrokerProcess[] = nodes;
    const load = new SteadyLoad({ tenant, conversations: 12, targets: () => targets, ackTimeoutMs: 3000 });
    await sleep(2500);
    const victim = nodes[2]!;
    targets = nodes.slice(0, 2);
    const killedAt = Date.now();
    await victim.kill();
    running.splice(running.indexOf(victim), 1);
    const failoverMs = await settled(nodes.slice(0, 2));
    t.diagnostic(
      `every shard had an owner again ${failoverMs} ms after kill -9 (lease TTL ${LEASE_TTL_MS} ms)`,
    );
    console.log(
      `cluster failover: all ${SHARD_COUNT} shards owned again ${Date.now() - killedAt} ms after kill -9`,
    );
    await sleep(2500);
    await load.stop();
    const stored = await verifyLoad(load, nodes[0]!, tenant, 12);
    t.diagnostic(
      `acked ${load.stats.acked}, stored ${stored}, retries ${load.stats.retries}: ${JSON.stringify(load.stats.errors)}`,
    );
    assert.ok(load.stats.acked > 100, `too few acks: ${load.stats.acked}`);
    assert.ok(stored >= load.stats.acked);
    await stopAll();
  });

  test('cluster - SIGSTOP past the lease then SIGCONT: no seq written twice by two owners', async (t) => {
    const nodes = await Promise.all([broker('c3-a', 0), broker('c3-b', 1), broker('c3-c', 2)]);
    await settled(nodes);
    const tenant = 't3';
    const paused = nodes[2]!;
    const load = new SteadyLoad({
      tenant,
      conversations: 12,
      targets: () => nodes.slice(0, 2),
      intervalMs: 5,
      ackTimeoutMs: 3000,
    });
    await sleep(1500);
    paused.signal('SIGSTOP');
    await sleep(LEASE_TTL_MS * 2 + 1000);
    paused.signal('SIGCONT');
    // The resumed node must fence itself, then rejoin and take its shards back.
    await settled(nodes, 40_000);
    await sleep(1500);
    await load.stop();
    const stored = await verifyLoad(load, nodes[0]!, tenant, 12);
    t.diagnostic(`acked ${load.stats.acked}, stored ${stored}, errors ${JSON.stringify(load.stats.errors)}`);
    assert.ok(load.stats.acked > 100);
    await stopAll();
  });

  test('cluster - a joining node takes only the shards rendezvous hashing gives it', async (t) => {
    const [a, b] = await Promise.all([broker('c4-a', 0), broker('c4-b', 1)]);
    await settled([a!, b!]);
    const tenant = 't4';
    const load = new SteadyLoad({ tenant, conversations: 8, targets: () => [a!, b!], ackTimeoutMs: 3000 });
    await sleep(1000);
    const before = new Map([
      [a!.nodeId, new Set((await view(a!)).held)],
      [b!.nodeId, new Set((await view(b!)).held)],
    ]);
    const c = await broker('c4-c', 2);
    const members = [a!.nodeId, b!.nodeId, c.nodeId];
    const joinMs = await settled([a!, b!, c]);
    const after = await Promise.all([a!, b!, c].map(view));
    for (const [i, id] of [a!.nodeId, b!.nodeId].entries()) {
      const kept = after[i]!.held;
      assert.ok(
        kept.every((s) => before.get(id)!.has(s)),
        `${id} gained shards it did not hold`,
      );
      for (const s of before.get(id)!) {
        if (!kept.includes(s))
          assert.equal(rendezvousOwner(s, members), c.nodeId, `shard ${s} moved, not to the new node`);
      }
    }
    t.diagnostic(`join settled in ${joinMs} ms; new node took ${after[2]!.held.length} shards`);
    await sleep(1000);
    await load.stop();
    await verifyLoad(load, a!, tenant, 8);
    await stopAll();
  });

  test('cluster - sustained overload answers busy and RSS stays bounded', async (t) => {
    const node = await broker('c5-a', 0, { SB_SHARD_MAILBOX: '8' });
    await settled([node]);
    const token = await auth.sign({ tenant: 't5', sub: 'flood', role: 'visitor' }, 600);
    // Connecting is not what this test is about: retry the rare upgrade that closes before welcome
    // (a known issue, see the closing note of the first session).
    const connect = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await connectClient(`${node.wsBase}/ws/visitor`, token, 'switchboard.v1.msgpack');
        } catch (err) {
          if (attempt >= 3) throw err;
        }
      }
    };
    const sockets = await Promise.all(Array.from({ length: 16 }, connect));
    let busy = 0;
    let acked = 0;
    let n = 0;
    let running = true;
    const pump = (c: (typeof sockets)[number]) => {
      c.ws.on('message', () => {
        for (const f of c.buffered()) {
          void c.next((x) => x === f);
          if (f.type === 'error' && f.code === 'busy') busy++;
          if (f.type === 'ack') acked++;
          if (running) c.send({ type: 'send', conv: 'hot', cmid: `f${++n}`, body: 'flood' });
        }
      });
      for (let k = 0; k < 32; k++) c.send({ type: 'send', conv: 'hot', cmid: `f${++n}`, body: 'flood' });
    };
    sockets.forEach(pump);
    const samples: number[] = [];
    for (let s = 0; s < 16; s++) {
      await sleep(500);
      samples.push(node.rss());
    }
    running = false;
    await Promise.all(sockets.map((c) => c.close()));
    const mb = (b: number) => Math.round(b / 2 ** 20);
    const firstHalf = Math.max(...samples.slice(0, 8));
    const secondHalf = Math.max(...samples.slice(8));
    t.diagnostic(`8 s overload: ${acked} acked, ${busy} busy; RSS MB ${samples.map(mb).join(' ')}`);
    assert.ok(busy > 0, 'overload must produce busy answers');
    assert.ok(acked > 0, 'the node must keep serving under overload');
    assert.ok(secondHalf < 400 * 2 ** 20, `RSS ${mb(secondHalf)} MB over the 400 MB bound`);
    assert.ok(
      secondHalf - firstHalf < 64 * 2 ** 20,
      `RSS grew ${mb(secondHalf - firstHalf)} MB during overload`,
    );
    await stopAll();
  });
});
