/**
 * The per-process socket limit (issue #14, src/gateway/socket-limit.ts): past SB_MAX_SOCKETS an upgrade
 * is refused `503 unavailable` with `retryAfterMs`, so a client retries (and the kernel spreads retries over
 * the node's workers) instead of the process running out of file descriptors; a freed slot is taken again.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { openFileLimit, resolveMaxSockets } from '../../src/gateway/socket-limit.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type TestClient, type UpgradeRefused } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('socklimit');
const LIMIT = 3;
let node: BrokerProcess;

before(async () => {
  node = await startBroker({ nodeId: 'socklimit-a', keyspace, env: { SB_MAX_SOCKETS: String(LIMIT) } });
});

after(async () => {
  await node?.stop();
});

async function open(user: string): Promise<TestClient> {
  const token = await auth.sign({ tenant: 'limits', sub: user, role: 'visitor' }, 600);
  return connectClient(`${node.wsBase}/ws/visitor`, token, 'switchboard.v1.json');
}

test('socket limit - the limit is the configured one, else the open-file limit minus the headroom', () => {
  assert.equal(resolveMaxSockets(5, 20_000), 5);
  assert.equal(resolveMaxSockets(0, 20_000), 19_000);
  assert.equal(resolveMaxSockets(0, 500), 1, 'never below one socket');
  const limits =
    'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n';
  assert.equal(openFileLimit(limits), 20_000);
  assert.equal(openFileLimit('garbage'), 1024);
});

test('socket limit - an upgrade past the limit is refused 503 unavailable with retryAfterMs, a freed slot is taken', async () => {
  const held = await Promise.all(Array.from({ length: LIMIT }, (_, i) => open(`u${i}`)));
  let refused: UpgradeRefused | undefined;
  try {
    const extra = await open('extra');
    await extra.close();
  } catch (err) {
    refused = err as UpgradeRefused;
  }
  assert.equal(refused?.status, 503, 'the socket past the limit is refused');
  const body = JSON.parse(refused.body) as { error: { code: string; retryAfterMs?: number } };
  assert.equal(body.error.code, 'unavailable');
  assert.equal(body.error.retryAfterMs, 1000);
  await held[0]!.close();
  const deadline = Date.now() + 5000;
  let again: TestClient | undefined;
  while (!again && Date.now() < deadline) {
    again = await open('again').catch(() => undefined);
    if (!again) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(again, 'a closed socket frees its slot');
  assert.equal(again.welcome.type, 'welcome');
  await Promise.all([again.close(), ...held.slice(1).map((c) => c.close())]);
});
