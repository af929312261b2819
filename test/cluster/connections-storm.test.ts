/**
 * The connections bench's reconnect storms as a test (issue #14), small: 2,000 sockets on a 3-worker node,
 * 100 of them sending; the node drained and restarted (SIGTERM), then one worker killed with SIGKILL.
 * Every socket must come back (with the clients' documented backoff), none may be closed before its
 * `welcome` by anything but the restart itself, and every acknowledged message must be in Cassandra.
 * Under test/cluster because it restarts whole nodes and times the clients' return: it runs alone.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connectionsScenario } from '../../bench/connections/scenario.js';
import { PRIVATE_NATS } from '../../bench/lib/servers.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';

const TEST_TIMEOUT_MS = 4 * 60_000;
/**
 * Each worker admits 100 upgrades a second (issue #14, src/gateway/admission.ts), so 2,000 sockets meet
 * the admission in the ramp and in both storms: refused upgrades must come back when told, and still all.
 */
const UPGRADE_RATE_PER_S = 100;
process.env['SB_UPGRADE_RATE'] = String(UPGRADE_RATE_PER_S);
process.env['SB_UPGRADE_BURST'] = String(UPGRADE_RATE_PER_S);
const out = mkdtempSync(join(tmpdir(), 'sb-storm-smoke-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('connections storm - 2,000 sockets: all back after a drain and after kill -9 of a worker, no acked message lost', {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  const target = 2000;
  const { report, files } = await connectionsScenario(
    {
      natsUrl: PRIVATE_NATS,
      cassandra: TEST_CASSANDRA,
      keyspace: randomKeyspace('storm'),
      keepKeyspace: false,
      jwtSecret: TEST_JWT_SECRET,
      out,
      quiet: true,
      command: 'connections-storm.test',
    },
    {
      target,
      workers: 3,
      perGenerator: 1000,
      visitorPercent: 95,
      tenants: 10,
      rampRate: 0,
      concurrency: 64,
      hold: 2000,
      pingInterval: 5000,
      settle: 1000,
      sourceBase: 60,
      senders: 100,
      sendRate: 100,
      mix: 4000,
      mixWarmup: 1000,
      storm: ['drain', 'kill'],
      stormTimeout: 60_000,
    },
    new AbortController().signal,
  );
  assert.equal(report.ramp.opened, target, `every socket opened (${JSON.stringify(report.ramp.failures)})`);
  assert.ok(report.ramp.refused > 0, 'the admission refused ramp upgrades, which came back when told');
  assert.equal(report.storms.length, 2);
  for (const s of report.storms) {
    assert.equal(s.heldBefore, target, `${s.kind}: every socket held before the storm`);
    assert.ok(s.dropped > 0, `${s.kind}: the storm dropped sockets`);
    assert.notEqual(s.back100Ms, null, `${s.kind}: every socket came back (lowest ${s.lowest})`);
  }
  const [drain, kill] = report.storms;
  assert.ok(drain!.dropped >= target, 'a drain closes every socket');
  // Only the killed worker's own sockets: with the gateways on standby after the drain, that may be all.
  assert.ok(
    kill!.killedSockets !== undefined && kill!.dropped <= kill!.killedSockets,
    'a killed worker drops only its own sockets',
  );
  // Before `welcome` a reconnect may meet a closed port (ECONNREFUSED), a full or cut-off worker (503) or
  // time out; never a socket upgraded and then closed, nor a frame before `welcome`.
  for (const reason of Object.keys(report.reconnectFailures)) {
    assert.match(
      reason,
      /^(ECONNREFUSED|ECONNRESET|timeout|http-503(-full|-paced|-cut-off)?)$/,
      `reconnect failure ${reason}`,
    );
  }
  const refused = Object.entries(report.reconnectFailures).filter(([k]) => k.startsWith('http-503'));
  assert.ok(
    refused.reduce((a, [, n]) => a + n, 0) > 0,
    `the admission refused reconnects in the storms (${JSON.stringify(report.reconnectFailures)})`,
  );
  const check = report.sends.check;
  assert.ok(check, 'the acked messages were checked');
  assert.ok(check.acked > 100, `messages acked through the storms (${check.acked})`);
  assert.equal(check.lost, 0, `no acked message lost: ${check.examples.join('; ')}`);
  assert.equal(check.duplicated, 0, 'no cmid stored twice');
  assert.equal(
    report.sends.unanswered,
    0,
    `every send answered in the end: ${report.sends.unansweredExamples.join('; ')}`,
  );
  const md = readFileSync(files.find((f) => f.endsWith('.md'))!, 'utf8');
  assert.match(md, /## Reconnect storms/);
  assert.ok(
    files.some((f) => f.endsWith('-reconnect.svg')),
    'the reconnect chart',
  );
});
