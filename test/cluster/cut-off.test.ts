/**
 * A member cut off from the cluster (issue #12): its NATS stops answering while its sockets and Cassandra
 * are fine. It cannot renew its lease, so it stops acking, and one lease TTL after its last renewal it
 * closes its sockets with 1012 (reconnectElsewhere) and refuses new ones with 503 `unavailable`, so that
 * clients move to a node that can serve them instead of getting `timeout` for the whole cut. When NATS
 * comes back it takes sockets again.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type UpgradeRefused } from '../harness/ws-client.js';

const keyspace = randomKeyspace('cutoff');
const auth = createAuthenticator(TEST_JWT_SECRET);
let nats: NatsServerHandle;
let broker: BrokerProcess;

before(async () => {
  nats = await startNatsServer({});
  broker = await startBroker({ nodeId: 'cutoff-a', keyspace, natsUrl: nats.url, readyTimeoutMs: 90_000 });
});

after(async () => {
  nats?.signal('SIGCONT');
  await broker?.stop();
  await nats?.stop();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

test('cut off - a member that cannot reach NATS closes its sockets with 1012 and refuses upgrades until it can', async () => {
  const token = await auth.sign({ tenant: 't', sub: 'v1', role: 'visitor' }, 600);
  const url = `${broker.wsBase}/ws/visitor`;
  const c = await connectClient(url, token, 'switchboard.v1.json');
  const t0 = Date.now();
  nats.signal('SIGSTOP'); // NATS hangs: no renewal answers, no error either
  const closed = await Promise.race([
    c.closed,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('socket not closed in 20 s')), 20_000),
    ),
  ]);
  const after = Date.now() - t0;
  assert.equal(closed.code, 1012);
  assert.match(closed.reason, /cut off/);
  // Lease TTL 3 s in tests: closed once a whole TTL passed without a renewal, not long after.
  assert.ok(after >= 2_000 && after < 10_000, `closed after ${after} ms`);
  const refused = await connectClient(url, token, 'switchboard.v1.json').then(
    () => assert.fail('an upgrade was accepted while cut off'),
    (e: UpgradeRefused) => e,
  );
  assert.equal(refused.status, 503);
  assert.match(refused.body, /unavailable/);

  nats.signal('SIGCONT');
  let back: Awaited<ReturnType<typeof connectClient>> | undefined;
  for (let i = 0; i < 60 && back === undefined; i++) {
    back = await connectClient(url, token, 'switchboard.v1.json').catch(async () => {
      await new Promise((r) => setTimeout(r, 500));
      return undefined;
    });
  }
  assert.ok(back, 'the member takes sockets again once NATS answers');
  await back.close();
});
