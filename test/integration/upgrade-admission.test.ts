/**
 * Upgrade admission (issue #14, src/gateway/admission.ts): past a worker's upgrade rate an upgrade is
 * refused `503 unavailable` with `retryAfterMs` before its token is read, and later refusals are told
 * later slots; an upgrade that comes back when told is admitted.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type TestClient, type UpgradeRefused } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('admission');
const BURST = 2;
let node: BrokerProcess;

before(async () => {
  // One upgrade per second after a burst of two; one worker, so every upgrade meets the same bucket.
  node = await startBroker({
    nodeId: 'admission-a',
    keyspace,
    env: { SB_UPGRADE_RATE: '1', SB_UPGRADE_BURST: String(BURST), SB_UPGRADE_MAX_RETRY_MS: '5000' },
  });
});

after(async () => {
  await node?.stop();
});

async function open(user: string, token?: string): Promise<TestClient> {
  const t = token ?? (await auth.sign({ tenant: 'admission', sub: user, role: 'visitor' }, 600));
  return connectClient(`${node.wsBase}/ws/visitor`, t, 'switchboard.v1.json');
}

function refusal(err: unknown): { status: number; code: string; retryAfterMs?: number } {
  const r = err as UpgradeRefused;
  const body = JSON.parse(r.body) as { error: { code: string; retryAfterMs?: number } };
  return { status: r.status, ...body.error };
}

test('upgrade admission - past the burst, upgrades are refused 503 before the token check, told growing delays; one that waits is admitted', async () => {
  const held = [await open('a'), await open('b')];
  // A bad token past the rate is refused by admission (503), not by the token check (401).
  const bad = await open('x', 'not-a-token').then(
    (c) => c,
    (err: unknown) => refusal(err),
  );
  assert.ok(!('welcome' in bad), 'the upgrade past the burst is not admitted');
  assert.equal(bad.status, 503, 'refused before the token is read');
  assert.equal(bad.code, 'unavailable');
  const first = bad.retryAfterMs ?? 0;
  assert.ok(first >= 250, `a retry delay is given (${first} ms)`);
  const second = await open('c').then(
    () => assert.fail('the second upgrade past the burst is refused too'),
    (err: unknown) => refusal(err),
  );
  assert.equal(second.status, 503);
  assert.ok((second.retryAfterMs ?? 0) > first, `a later slot (${second.retryAfterMs} > ${first} ms)`);
  await new Promise((r) => setTimeout(r, second.retryAfterMs));
  const again = await open('c');
  assert.equal(again.welcome.type, 'welcome', 'an upgrade that came back when told is admitted');
  await Promise.all([again.close(), ...held.map((c) => c.close())]);
});
