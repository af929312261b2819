/**
 * Pure parts of the connections scenario's issue #14 additions: the reconnect delay against what the docs
 * and the browser clients say, the storm's "back within" reading of a curve, the acked-versus-stored
 * comparison and the /proc smaps figures.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LeanSocket, REFUSALS, upgradeRequest } from '../../bench/connections/lean-ws.js';
import { stormTimeline, stormVerdict } from '../../bench/connections/report-storm.js';
import { backWithin, growth } from '../../bench/connections/storm.js';
import { compareAcked } from '../../bench/connections/verify.js';
import {
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
  reconnectDelayMs,
  refusedDelayMs,
} from '../../bench/lib/backoff.js';
import { PROBE_PATH } from '../../bench/lib/cli-process.js';
import { nodeMemory } from '../../bench/lib/smaps.js';
import { toldDelayMs } from '../../src/web/shared/connection.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

test('connections units - the reconnect delay is the one PROTOCOL.md documents and the browser clients use', () => {
  const web = readFileSync(root('src/web/shared/connection.ts'), 'utf8');
  assert.match(web, new RegExp(`BACKOFF_BASE_MS = ${RECONNECT_BASE_MS};`));
  assert.match(
    web,
    new RegExp(`BACKOFF_MAX_MS = ${RECONNECT_MAX_MS.toLocaleString('en').replace(',', '_')};`),
  );
  const doc = readFileSync(root('docs/PROTOCOL.md'), 'utf8');
  assert.match(doc, /cap = min\(15 s, 500 ms × 2\^n\)/);
  assert.equal(RECONNECT_BASE_MS, 500);
  assert.equal(RECONNECT_MAX_MS, 15_000);
  // Equal jitter: [cap/2, cap], never 0, capped.
  assert.equal(
    reconnectDelayMs(0, () => 0),
    250,
  );
  assert.equal(
    reconnectDelayMs(0, () => 1),
    500,
  );
  assert.equal(
    reconnectDelayMs(3, () => 0),
    2000,
  );
  assert.equal(
    reconnectDelayMs(30, () => 1),
    15_000,
  );
  assert.equal(
    reconnectDelayMs(30, () => 0),
    7500,
  );
});

test('connections units - a storm is back when the share is open again after its lowest point', () => {
  const curve = [
    { t: 0, open: 100 },
    { t: 1, open: 40 },
    { t: 2, open: 0 },
    { t: 3, open: 98 },
    { t: 4, open: 99 },
    { t: 5, open: 100 },
  ];
  assert.equal(backWithin(curve, 100, 0.99), 4000);
  assert.equal(backWithin(curve, 100, 1), 5000);
  assert.equal(backWithin(curve.slice(0, 4), 100, 0.99), null, 'not back within the curve');
});

test('connections units - failed reconnect attempts are counted per second and shown per 5 s by reason', () => {
  assert.deepEqual(growth({ closed: 3, timeout: 1 }, { closed: 5, timeout: 1, 'http-503': 2 }), {
    closed: 2,
    'http-503': 2,
  });
  const md = stormTimeline({
    kind: 'drain',
    curve: [
      { t: 0, open: 100 },
      { t: 1.01, open: 0, failed: { ECONNREFUSED: 4 } },
      { t: 5, open: 0, failed: { ECONNREFUSED: 1, closed: 2 } },
      { t: 6.02, open: 40, failed: {} },
      { t: 10.1, open: 90, failed: { 'http-503': 7 } },
    ],
  }).join('\n');
  assert.match(md, /\| after the action \| open \| ECONNREFUSED \| closed \| http-503 \|/);
  assert.match(md, /\| 0–5 s \| 0 \| 5 \| 2 \| 0 \|/);
  assert.match(md, /\| 5–10 s \| 40 \| 0 \| 0 \| 0 \|/);
  assert.match(md, /\| 10–15 s \| 90 \| 0 \| 0 \| 7 \|/);
  assert.deepEqual(stormTimeline({ kind: 'kill', curve: [{ t: 0, open: 5 }] }), [], 'no samples, no table');
});

test('connections units - acked versus stored: lost, moved and duplicated are found', () => {
  const stored = new Map([
    [
      't/c1',
      [
        { seq: 1, cmid: 'm1' },
        { seq: 2, cmid: 'm2' },
        { seq: 3, cmid: 'm2' },
      ],
    ],
    ['t/c2', [{ seq: 1, cmid: 'x' }]],
  ]);
  const r = compareAcked(
    [
      ['t', 'c1', 'm1', 1],
      ['t', 'c1', 'm2', 2],
      ['t', 'c2', 'm1', 1],
      ['t', 'c3', 'm1', 1],
    ],
    stored,
  );
  assert.equal(r.acked, 4);
  assert.equal(r.lost, 2, 'a different cmid at the seq, and no row at all');
  assert.equal(r.duplicated, 1);
  assert.equal(r.examples.length, 3);
});

test('connections units - node memory counts each mapped file once and every anonymous page', () => {
  const m = nodeMemory([process.pid, process.pid]);
  assert.equal(m.processes.length, 2);
  const [a, b] = m.processes as [(typeof m.processes)[0], (typeof m.processes)[0]];
  assert.ok(a.anonBytes > 0 && a.fileBytes > 0);
  assert.equal(m.rssSumBytes, a.rssBytes + b.rssBytes);
  // The same process twice: its files once, its anonymous pages twice (two reads: allow a little drift).
  const expected = a.anonBytes + b.anonBytes + Math.max(a.fileBytes, b.fileBytes);
  assert.ok(Math.abs(m.sharedOnceBytes - expected) < 1024 * 1024, `${m.sharedOnceBytes} vs ${expected}`);
  assert.ok(m.sharedOnceBytes < m.rssSumBytes - a.fileBytes / 2);
  // PSS splits each page among the processes that map it: a process's own PSS is at most its RSS, and
  // the same process read twice counts its pages twice (PSS is per process).
  assert.ok(a.pssBytes > 0 && a.pssBytes <= a.rssBytes + 1024 * 1024, `${a.pssBytes} vs ${a.rssBytes}`);
  assert.equal(m.pssSumBytes, a.pssBytes + b.pssBytes);
});

test('connections units - a refused upgrade waits what its retryAfterMs says, plus up to a quarter (PROTOCOL.md step 7)', async () => {
  const doc = readFileSync(root('docs/PROTOCOL.md'), 'utf8');
  assert.match(doc, /wait `retryAfterMs × \(1 \+ random\(\) \/ 4\)` and do \*\*not\*\* raise `n`/);
  assert.equal(
    refusedDelayMs(2000, () => 0),
    2000,
  );
  assert.equal(
    refusedDelayMs(2000, () => 0.999_999),
    2500,
  );
  // The browser clients wait the same after a drain's notice.
  for (const r of [0, 0.5, 0.999_999])
    assert.equal(
      toldDelayMs(2000, () => r),
      refusedDelayMs(2000, () => r),
    );
  assert.match(doc, /a drain's notice/);
  // The lean client reads retryAfterMs from the refusal's JSON body, even when the body comes later.
  const body = JSON.stringify({
    error: {
      code: 'unavailable',
      message: 'this process holds its limit of 19000 sockets; retry',
      retryAfterMs: 1234,
    },
  });
  const server = createServer((sock) => {
    sock.on('error', () => undefined); // the client resets the connection once it has read the refusal
    sock.once('data', () => {
      sock.write(`HTTP/1.1 503 Service Unavailable\r\ncontent-length: ${body.length}\r\n\r\n`);
      setTimeout(() => sock.end(body), 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const target = { host: '127.0.0.1', port };
  const ended = await new Promise<{
    reason: string;
    retryAfterMs: number | undefined;
    refusal: string | undefined;
  }>((resolve) => {
    new LeanSocket(target, undefined, upgradeRequest(target, 'visitor', 't'), 5000, {
      onWelcome: () => assert.fail('no welcome'),
      onFrame: () => undefined,
      onEnd: (_w, _code, reason, retryAfterMs, refusal) => resolve({ reason, retryAfterMs, refusal }),
    });
  });
  server.close();
  // …and which refusal it was, from the broker's message (a socket limit here).
  assert.deepEqual(ended, { reason: 'http-503', retryAfterMs: 1234, refusal: 'full' });
  // The broker still words its three refusals as the bench reads them.
  // (the socket limit's message is a template: its number is put in by hand)
  const gateway = readFileSync(root('src/gateway/server.ts'), 'utf8').replace(/\$\{maxSockets\}/g, '19000');
  for (const [re, kind] of REFUSALS) assert.match(gateway, re, `the broker's '${kind}' refusal`);
});

test('connections units - a storm that began short of the held sockets is not measured, else met by its 99 % time', () => {
  assert.equal(
    stormVerdict({ heldBefore: 63_363, back99Ms: 0 }, 100_000),
    'not measured: began with 63363 of 100000 held',
  );
  assert.equal(stormVerdict({ heldBefore: 100_000, back99Ms: 14_000 }, 100_000), 'met');
  assert.equal(
    stormVerdict({ heldBefore: 99_990, back99Ms: 14_000 }, 100_000),
    'met',
    'a few short is still a start',
  );
  assert.equal(stormVerdict({ heldBefore: 100_000, back99Ms: 61_000 }, 100_000), 'not met');
  assert.equal(stormVerdict({ heldBefore: 100_000, back99Ms: null }, 100_000), 'not met');
});

test('connections units - the bench probe survives a process at its descriptor limit (EMFILE)', async () => {
  // A worker filled to its limit in a kill storm: reading /proc for the RSS fails with EMFILE. The probe
  // skips that sample; before, its uncaught error took the worker down.
  const dir = mkdtempSync(join(tmpdir(), 'sb-probe-'));
  const script = [
    "const fs = require('node:fs');",
    'const held = [];',
    "try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }",
    // Two probe ticks (1 s apart) at the limit, then free the descriptors and let one more tick land.
    'setTimeout(() => { for (const fd of held) fs.closeSync(fd); }, 2500);',
    "setTimeout(() => console.log('alive'), 4000);",
  ].join('\n');
  const child = spawn(
    'bash',
    ['-c', `ulimit -n 256 && exec "${process.execPath}" --import="${PROBE_PATH}" -e "$0"`, script],
    {
      env: { ...process.env, SB_BENCH_PROBE_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    assert.equal(code, 0, `the process exited ${code}: ${err.slice(0, 400)}`);
    assert.match(out, /alive/);
    const record = JSON.parse(readFileSync(join(dir, `${child.pid}.json`), 'utf8')) as { rss: number };
    assert.ok(record.rss > 0, 'the probe reported again once descriptors were free');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
