/**
 * The widget and the console in both languages and both colour schemes, with a real conversation
 * behind them (Chinese and English, a masked phone number), against a real broker. Checks that the
 * CJK font is there (without fonts-noto-cjk Chinese renders as boxes) and that each view renders;
 * with SB_UPDATE_SCREENSHOTS=1 it writes the PNGs shown in the README to docs/images/.
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { type Browser, launchChromium, type Page } from '../harness/browser.js';
import { type BusinessSystemProcess, startBusinessSystem } from '../harness/business-system.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { recordTrail, waitOpen } from '../harness/page-trail.js';
import { type Shop, startShop } from './shop-server.js';

const TENANT = 'shots';
const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('shots');
const OUT = process.env['SB_UPDATE_SCREENSHOTS']
  ? fileURLToPath(new URL('../../../docs/images/', import.meta.url))
  : join(tmpdir(), 'switchboard-screenshots');
let broker: BrokerProcess;
let shop: Shop;
let browser: Browser;
let agentToken: string;
let biz: BusinessSystemProcess;
const dir = mkdtempSync(join(tmpdir(), 'sb-shots-'));

before(async () => {
  mkdirSync(OUT, { recursive: true });
  // One after the other: a failed start must not leave the other running unreferenced (after() stops both).
  browser = await launchChromium();
  // The example business system answers the console's context look-ups and actions.
  writeFileSync(
    join(dir, 'tenants.yaml'),
    [
      'version: 1',
      'tenants:',
      `  ${TENANT}:`,
      '    integration:',
      '      context: { kinds: [orders, shipments], timeoutMs: 2000, ttlMs: 60000 }',
      '      actions: [{ name: mark-abnormal, roles: [agent] }]',
      '',
    ].join('\n'),
  );
  broker = await startBroker({
    nodeId: 'shots-a',
    keyspace,
    readyTimeoutMs: 60_000,
    env: { SB_TENANTS_FILE: join(dir, 'tenants.yaml') },
  });
  biz = await startBusinessSystem(keyspace, ['--tenant', TENANT, '--kinds', 'orders,shipments']);
  shop = await startShop({ broker: broker.httpBase, tenant: TENANT, auth });
  agentToken = await auth.sign({ tenant: TENANT, sub: 'lin', role: 'agent', perms: ['pii.reveal'] }, 3600);
});

after(async () => {
  await browser?.close();
  await biz?.stop();
  await broker?.stop();
  await shop?.close();
  rmSync(dir, { recursive: true, force: true });
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

const COMBOS = [
  { lang: 'en', locale: 'en-US', dark: false },
  { lang: 'en', locale: 'en-US', dark: true },
  { lang: 'zh-CN', locale: 'zh-CN', dark: false },
  { lang: 'zh-CN', locale: 'zh-CN', dark: true },
] as const;

async function page(locale: string, dark: boolean, width: number, height: number): Promise<Page> {
  const ctx = await browser.newContext({
    locale,
    colorScheme: dark ? 'dark' : 'light',
    viewport: { width, height },
    deviceScaleFactor: 1,
  });
  const p = await ctx.newPage();
  await recordTrail(p);
  return p;
}

/**
 * A shop page with the widget open and connected. The wait is long (the widget backs off after a refused
 * or failed attempt: 0.5, 1, 2, 4 s...); a timeout says what the page and the node did.
 */
async function widget(visitor: string, locale: string, dark: boolean): Promise<Page> {
  const p = await page(locale, dark, 420, 580);
  await p.goto(`${shop.base}/?visitor=${visitor}&open=1`);
  await waitOpen(p, 'switchboard-widget .dot.open', 60_000, () => broker.logs());
  return p;
}

async function say(p: Page, text: string): Promise<void> {
  await p.locator('switchboard-widget textarea').fill(text);
  await p.locator('switchboard-widget textarea').press('Enter');
}

describe('screenshots', { timeout: 300_000 }, () => {
  test('screenshots - widget and console in zh-CN and en, light and dark (with context and an action)', async () => {
    const agent = await page('en-US', false, 1280, 760);
    await agent.goto(`${broker.httpBase}/console#token=${agentToken}`);
    await waitOpen(agent, '.top .dot.open', 20_000, () => broker.logs());

    const zh = await widget('v-zh', 'zh-CN', false);
    await say(zh, '你好，我的订单 1001 什么时候发货？我的电话是 13812345678');
    await agent.locator('.convs li', { hasText: 'v-zh' }).click();
    await agent.locator('.messages .msg.visitor', { hasText: '订单 1001' }).waitFor();
    await agent.locator('#reply').fill('您好！订单 1001 已于今天发货，预计明天送达。');
    await agent.locator('#reply').press('Enter');
    await zh.locator('switchboard-widget .msg.theirs', { hasText: '预计明天送达' }).waitFor();

    const en = await widget('v-en', 'en-US', false);
    await say(en, 'Hi! Can I still change the delivery address of order 2002?');
    await agent.locator('.convs li', { hasText: 'v-en' }).click();
    await agent.locator('.messages .msg.visitor', { hasText: 'order 2002' }).waitFor();
    await agent.locator('#reply').fill('Yes. Send me the new address and I will update it before it ships.');
    await agent.locator('#reply').press('Enter');
    await en.locator('switchboard-widget .msg.theirs', { hasText: 'new address' }).waitFor();
    await say(en, 'Great, thank you!');
    await agent.locator('.messages .msg.visitor', { hasText: 'Great' }).waitFor();

    // The business context pushed at assignment, and an agent action with its result.
    await agent.locator('.context details summary', { hasText: 'orders' }).waitFor();
    await agent.locator('.context .action input').first().fill('mark-abnormal');
    await agent.locator('.context .action input').nth(1).fill('{"order":"2002"}');
    await agent.locator('.context .action button').click();
    await agent.locator('.context .result.ok', { hasText: 'mark-abnormal' }).waitFor();
    await agent.locator('.messages .msg.system', { hasText: 'mark-abnormal' }).waitFor();

    const cjk = await zh.evaluate('document.fonts.check(\'16px "Noto Sans CJK SC"\')');
    assert.equal(cjk, true, 'the Noto CJK font is installed (apt-get install fonts-noto-cjk)');

    for (const c of COMBOS) {
      const theme = c.dark ? 'dark' : 'light';
      const visitor = c.lang === 'en' ? 'v-en' : 'v-zh';
      const w = await widget(visitor, c.locale, c.dark);
      await w.locator('switchboard-widget .msg.theirs').first().waitFor();
      const title = (await w.locator('switchboard-widget .title').textContent()) ?? '';
      assert.equal(title, c.lang === 'en' ? 'Chat with us' : '在线客服');
      await w.locator('switchboard-widget').screenshot({ path: join(OUT, `widget-${c.lang}-${theme}.png`) });
      await w.context().close();

      const con = await page(c.locale, c.dark, 1280, 760);
      await con.goto(`${broker.httpBase}/console#token=${agentToken}`);
      await con.locator('.convs li', { hasText: visitor }).click();
      await con.locator('.messages .msg.agent').first().waitFor();
      await con.locator('.context details').first().waitFor();
      await waitOpen(con, '.top .dot.open', 30_000, () => broker.logs());
      await con.screenshot({ path: join(OUT, `console-${c.lang}-${theme}.png`) });
      await con.context().close();
    }
  });
});
