/**
 * What a browser page did, for the browser tests' waits on an open socket: token fetches and other
 * responses, failed requests, the page's sockets (created, first frame, errors, closed) and console
 * messages, plus Chromium's own log (a refused WebSocket handshake is reported there, not on the
 * page's console). A wait that times out throws with this trail and the node's log tail, so a CI
 * failure names its cause instead of "timeout".
 */
import type { Page } from 'playwright-core';

const MAX_LINES = 200;
const trails = new WeakMap<Page, string[]>();

/** Starts recording what `page` does (its last 200 lines). Call before `goto`. */
export async function recordTrail(page: Page): Promise<void> {
  const lines: string[] = [];
  trails.set(page, lines);
  const add = (line: string) => {
    lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (lines.length > MAX_LINES) lines.shift();
  };
  page.on('console', (m) => add(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => add(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (!r.url().includes('.css')) add(`${r.status()} ${r.request().method()} ${r.url().slice(0, 120)}`);
  });
  page.on('requestfailed', (r) => add(`failed ${r.url().slice(0, 120)}: ${r.failure()?.errorText}`));
  page.on('websocket', (ws) => {
    add(`ws created ${ws.url().split('?')[0]}`);
    let first = true;
    ws.on('framereceived', (f) => {
      if (!first) return;
      first = false;
      add(`ws first frame: ${String(f.payload).slice(0, 80)}`);
    });
    ws.on('socketerror', (e) => add(`ws error: ${e}`));
    ws.on('close', () => add('ws closed'));
  });
  // Chromium's log: handshake failures ("Unexpected response code: 503"), network errors.
  const cdp = await page.context().newCDPSession(page);
  cdp.on('Log.entryAdded', (e) => add(`chromium ${e.entry.level} ${e.entry.source}: ${e.entry.text}`));
  await cdp.send('Log.enable');
}

/** The lines recorded for `page` so far. */
export function pageTrail(page: Page): readonly string[] {
  return trails.get(page) ?? [];
}

/**
 * Waits for `selector` (an open-connection dot) on `page`; on timeout throws with what the page did
 * and the tail of `nodeLog` (the broker's log). A page that got there only after giving a socket up
 * (no `welcome` in time: the CI failures of the ninth and tenth sessions, whose cause is not known) is
 * printed all the same, so the next occurrence in a CI log shows what the node did meanwhile;
 * `expectGiveUp` is for the test that provokes one.
 */
export async function waitOpen(
  page: Page,
  selector: string,
  timeout: number,
  nodeLog: () => string,
  expectGiveUp = false,
): Promise<void> {
  try {
    await page.locator(selector).waitFor({ timeout });
    const trail = trails.get(page) ?? [];
    if (!expectGiveUp && trail.some((l) => l.includes('no welcome within'))) {
      const lines = [
        `# a socket of ${page.url().slice(0, 80)} was given up before it connected`,
        '--- the page:',
        ...trail,
        "--- the node's log tail:",
        nodeLog().slice(-4000),
      ];
      console.log(lines.join('\n'));
    }
  } catch (err) {
    const dot = await page
      .locator(selector.replace(/\.open$/, ''))
      .first()
      .getAttribute('class', { timeout: 1000 })
      .catch(() => null);
    const trail = (trails.get(page) ?? ['(not recorded)']).join('\n');
    throw new Error(
      `${(err as Error).message}\n--- dot: ${dot}\n--- the page:\n${trail}\n--- the node's log tail:\n${nodeLog().slice(-4000)}`,
    );
  }
}
