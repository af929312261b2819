/**
 * The console stays usable at the scale issue #15 names: 50 open conversations and 1,000 messages
 * in one of them. The list shows all 50 with their unread counts; the open conversation renders a
 * window of its newest messages (not all 1,000) and pages older ones in on request.
 */
import * as assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { type Browser, launchChromium } from '../harness/browser.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

const TENANT = 'scale';
const CONVERSATIONS = 50;
const MESSAGES = 1000;
/** Sends in flight at once from the loading client (below the shard mailbox bound). */
const WINDOW = 20;
const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('scale');
let broker: BrokerProcess;
let browser: Browser;
/** Several sockets of the loading visitor: the frame rate limit is per connection (50/s). */
let visitors: TestClient[] = [];
const SOCKETS = 5;

before(async () => {
  // One after the other: a failed start must not leave the other running unreferenced (after() stops both).
  browser = await launchChromium();
  broker = await startBroker({ nodeId: 'scale-a', keyspace, readyTimeoutMs: 60_000 });
  const token = await auth.sign({ tenant: TENANT, sub: 'v-load', role: 'visitor' }, 3600);
  visitors = await Promise.all(
    Array.from({ length: SOCKETS }, () =>
      connectClient(`${broker.wsBase}/ws/visitor`, token, 'switchboard.v1.json'),
    ),
  );
});

after(async () => {
  await Promise.all(visitors.map((v) => v.close()));
  await browser?.close();
  await broker?.stop();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

/** Sends every [conv, cmid, body], WINDOW at a time, each until acked (same cmid on retryable errors). */
async function sendAll(items: [string, string, string][]): Promise<void> {
  let next = 0;
  async function lane(_: unknown, n: number): Promise<void> {
    const visitor = visitors[n % SOCKETS]!;
    while (next < items.length) {
      const [conv, cmid, body] = items[next++]!;
      for (let attempt = 0; ; attempt++) {
        visitor.send({ type: 'send', conv, cmid, body });
        const f: Frame = await visitor.next(
          (x) => (x.type === 'ack' && x.cmid === cmid) || (x.type === 'error' && x.ref === cmid),
          20_000,
        );
        if (f.type === 'ack') break;
        const retry = ['busy', 'rate_limited', 'unavailable', 'timeout'].includes(String(f.code));
        assert.ok(attempt < 100 && retry, `send ${cmid}: ${String(f.code)} ${String(f.message)}`);
        await new Promise((r) => setTimeout(r, Math.max(100, Number(f.retryAfterMs ?? 100))));
      }
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, lane));
}

describe('console scale', { timeout: 170_000 }, () => {
  test('console - 50 open conversations and 1,000 messages in one: listed, windowed, paged', async () => {
    const token = await auth.sign({ tenant: TENANT, sub: 'ag-scale', role: 'agent' }, 3600);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const page = await ctx.newPage();
    await page.goto(`${broker.httpBase}/console#token=${token}`);
    await page.locator('.top .dot.open').waitFor({ timeout: 20_000 });
    // Capacity from the console's own control.
    await page.locator('.top .cap input').fill(String(CONVERSATIONS));
    await page.locator('.top .cap input').press('Enter');
    await page.locator('.top .load', { hasText: `/${CONVERSATIONS}` }).waitFor();

    const convs = Array.from({ length: CONVERSATIONS }, (_, i) => `load-${String(i).padStart(2, '0')}`);
    await sendAll(convs.map((c) => [c, `${c}-first`, `first message of ${c}`]));
    await page
      .locator('.convs li')
      .nth(CONVERSATIONS - 1)
      .waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('.convs li').count(), CONVERSATIONS);

    // Another conversation on screen (the console opens the first one assigned, in any order).
    await page.locator('.convs li', { hasText: convs[0]! }).click();
    await page.locator('.convs li.active', { hasText: convs[0]! }).waitFor();
    const big = convs[1]!;
    const bulk: [string, string, string][] = [];
    for (let i = 2; i <= MESSAGES; i++) bulk.push([big, `b-${i}`, `message ${i} of ${MESSAGES}`]);
    await sendAll(bulk);
    // Not on screen: counted as unread (999 if the console had opened it first and read message 1).
    await page
      .locator('.convs li', { hasText: big })
      .locator('.unread', { hasText: new RegExp(`^(${MESSAGES - 1}|${MESSAGES})$`) })
      .waitFor();

    const t0 = Date.now();
    await page.locator('.convs li', { hasText: big }).click();
    await page.locator('.messages .msg', { hasText: `message ${MESSAGES} of` }).waitFor();
    const shownMs = Date.now() - t0;
    const rendered = await page.locator('.messages .msg').count();
    assert.ok(rendered <= 50, `renders a window, not all ${MESSAGES}: ${rendered}`);
    assert.ok(shownMs < 5000, `opened in ${shownMs} ms`);
    assert.equal(await page.locator('.convs li', { hasText: big }).locator('.unread').count(), 0);

    await page.locator('.messages button.older').click();
    await page
      .locator('.messages .msg', { hasText: `message ${MESSAGES - 99} of` })
      .waitFor({ timeout: 10_000 })
      .catch(async (err: unknown) => {
        await page.screenshot({ path: join(tmpdir(), 'switchboard-console-scale.png') });
        throw err;
      });
    assert.equal(await page.locator('.messages .msg').count(), 100);
    await ctx.close();
  });
});
