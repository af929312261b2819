/**
 * Smoke runs of the bench scenarios with tiny numbers against real processes (a started node, a private
 * nats-server, the test Cassandra): each must produce its JSON and Markdown report and charts, with figures that are
 * sane (counts add up, percentiles ordered, memory positive). Speed is not asserted.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import cassandra from 'cassandra-driver';
import type { ConnectionsReport } from '../../bench/connections/report.js';
import { connectionsScenario } from '../../bench/connections/scenario.js';
import { e2eScenario } from '../../bench/e2e/scenario.js';
import { DEFAULT_OBJECTIVE } from '../../bench/e2e/sweep.js';
import { eventsScenario } from '../../bench/events/scenario.js';
import { ingestScenario } from '../../bench/ingest/scenario.js';
import type { CommonOptions } from '../../bench/lib/common.js';
import type { LatencySummary } from '../../bench/lib/histogram.js';
import { PRIVATE_NATS } from '../../bench/lib/servers.js';
import { dropBenchKeyspace } from '../../bench/lib/target.js';
import { storageScenario } from '../../bench/storage/scenario.js';
import { CASSANDRA_LOCAL_DATA_CENTER } from '../../src/stack/cassandra.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';

const SMOKE_TIMEOUT_MS = 180_000;
const out = mkdtempSync(join(tmpdir(), 'sb-bench-smoke-'));
after(() => rmSync(out, { recursive: true, force: true }));

function common(): CommonOptions {
  return {
    // A nats-server of the smoke run's own: every node on one NATS joins one cluster, so a smoke node on
    // the shared test NATS would take shards (and messages) of the integration tests running beside it.
    natsUrl: PRIVATE_NATS,
    cassandra: TEST_CASSANDRA,
    keyspace: randomKeyspace('bsmoke'),
    keepKeyspace: false,
    jwtSecret: TEST_JWT_SECRET,
    out,
    quiet: true,
    command: 'bench-smoke.test',
  };
}

function assertOrdered(s: LatencySummary, what: string): void {
  assert.ok(s.count > 0, `${what}: no samples`);
  assert.ok(s.p50Ms > 0 && s.p50Ms <= s.p90Ms && s.p90Ms <= s.p99Ms, `${what}: percentiles out of order`);
  assert.ok(s.p99Ms <= s.p999Ms && s.p999Ms <= s.maxMs, `${what}: tail out of order`);
  assert.ok(s.meanMs > 0 && s.meanMs <= s.maxMs, `${what}: mean outside the range`);
}

function assertFiles(files: string[]): void {
  assert.ok(
    files.some((f) => f.endsWith('.json')),
    'a JSON report',
  );
  assert.ok(
    files.some((f) => f.endsWith('.md')),
    'a Markdown report',
  );
  const svgs = files.filter((f) => f.endsWith('.svg'));
  assert.ok(svgs.length >= 3, 'charts');
  for (const f of files) assert.ok(existsSync(f), `${f} written`);
  for (const f of svgs) assert.match(readFileSync(f, 'utf8'), /^<svg[\s\S]*<\/svg>\n$/);
  const md = readFileSync(files.find((f) => f.endsWith('.md'))!, 'utf8');
  // Every chart the report links exists next to it.
  for (const [, name] of md.matchAll(/!\[[^\]]*\]\(\.\/([^)]+)\)/g)) {
    assert.ok(existsSync(join(out, name!)), `linked chart ${name} exists`);
  }
}

test("bench - a started node's keyspace is dropped first: earlier runs' rows are gone", async () => {
  const keyspace = randomKeyspace('bdrop');
  const client = new cassandra.Client({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: CASSANDRA_LOCAL_DATA_CENTER,
  });
  await client.connect();
  try {
    await client.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    );
    await client.execute(`CREATE TABLE ${keyspace}.t (k int PRIMARY KEY)`);
    await client.execute(`INSERT INTO ${keyspace}.t (k) VALUES (1)`);
    const said: string[] = [];
    await dropBenchKeyspace(TEST_CASSANDRA, keyspace, (l) => said.push(l));
    const left = await client.execute(
      'SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?',
      [keyspace],
    );
    assert.equal(left.rowLength, 0, 'the keyspace is gone');
    assert.match(said.join('\n'), new RegExp(`dropped keyspace ${keyspace}`));
    // A keyspace that does not exist (the first run) is no error.
    await dropBenchKeyspace(TEST_CASSANDRA, keyspace, () => {});
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await client.shutdown();
  }
});

test('bench - e2e smoke run writes a sane report', { timeout: SMOKE_TIMEOUT_MS }, async () => {
  const rate = 40;
  const durationMs = 3000;
  const { report, files } = await e2eScenario(
    common(),
    {
      workers: 1,
      rate,
      conversations: 6,
      convsPerAgent: 2,
      agentsPerTenant: 2,
      generators: 1,
      bodyChars: 40,
      ackTimeoutMs: 5000,
      setupConcurrency: 4,
      warmupMs: 1000,
      durationMs,
      drainMs: 3000,
      objective: DEFAULT_OBJECTIVE,
    },
    new AbortController().signal,
  );
  assertFiles(files);
  const json = JSON.parse(readFileSync(files.find((f) => f.endsWith('.json'))!, 'utf8')) as typeof report;
  assert.equal(json.scenario, 'e2e');
  assert.equal(json.run.setup.conversations, 6, `conversations opened: ${JSON.stringify(json.run.setup)}`);
  assert.equal(json.run.setup.sockets, 9, '6 visitors + 3 agents');
  const [phase] = json.run.phases;
  assert.ok(phase);
  const c = phase.counts;
  // The schedule is exact: rate × measured window messages, all of them sent.
  assert.equal(c.scheduled, (rate * durationMs) / 1000);
  assert.equal(c.sent + c.notSent, c.scheduled);
  assert.ok(c.acked <= c.sent && c.delivered <= c.sent);
  assert.ok(c.acked >= c.sent * 0.9, `most messages acked (${c.acked} of ${c.sent})`);
  assert.ok(c.delivered >= c.sent * 0.9, `most messages delivered (${c.delivered} of ${c.sent})`);
  assertOrdered(phase.ack, 'ack');
  assertOrdered(phase.delivery, 'delivery');
  assert.ok(phase.rates.deliveredPerS > 0 && phase.rates.deliveredPerS <= rate * 1.1);
  assert.ok(phase.series.length >= 4, 'one point per second');
  assert.ok(phase.resources.groups.broker.maxRssBytes > 0, 'broker RSS sampled');
  assert.ok(phase.resources.groups.generators.meanCpuCores > 0, 'generator CPU sampled');
  assert.ok(phase.resources.groups.broker.meanHeapUsedBytes! > 0, 'broker heap from the probe');
  assert.equal(typeof phase.verdict.met, 'boolean');
  assert.ok(phase.limits.notes.length > 0);
});

test('bench - connections smoke run writes a sane report', { timeout: SMOKE_TIMEOUT_MS }, async () => {
  const target = 120;
  const { report, files } = await connectionsScenario(
    common(),
    {
      target,
      workers: 2,
      perGenerator: 60,
      visitorPercent: 90,
      tenants: 4,
      rampRate: 0,
      concurrency: 16,
      hold: 2000,
      pingInterval: 500,
      settle: 1000,
      sourceBase: 40,
      // A small mix: its window opens only once every sender's conversation has started.
      senders: 10,
      sendRate: 20,
      mix: 2000,
      mixWarmup: 0,
      storm: [],
      stormTimeout: 30_000,
    },
    new AbortController().signal,
  );
  assertFiles(files);
  const json = JSON.parse(readFileSync(files.find((f) => f.endsWith('.json'))!, 'utf8')) as ConnectionsReport;
  assert.equal(json.scenario, 'connections');
  assert.equal(json.plan.generators, 2);
  const [a, b] = json.plan.ranges.map((r) => r.localAddress);
  assert.match(a ?? '', /^127\.\d+\.\d+\.40$/);
  assert.equal(b, a?.replace(/40$/, '41'), 'one fresh /24 per run, one address per generator');
  assert.equal(json.ramp.opened + json.ramp.failed, target);
  assert.ok(json.ramp.opened >= target * 0.95, `opened ${json.ramp.opened} of ${target}`);
  assert.ok(json.hold.heldAtEnd <= json.ramp.opened && json.hold.heldAtEnd >= json.ramp.opened * 0.95);
  assert.equal(
    Object.values(json.ramp.byWorker).reduce((a, b) => a + b, 0),
    json.ramp.opened,
    'every socket attributed to a worker',
  );
  assertOrdered(json.ramp.handshake, 'handshake');
  assert.ok(json.hold.pongs > 0 && json.hold.pongs <= json.hold.pingsSent, 'pings answered');
  const m = json.memory;
  assert.ok(m.brokerRssBaseline > 0 && m.brokerRssHeld > 0 && m.rssPerConnRaw > 0);
  assert.ok(Number.isFinite(m.rssPerConnNet) && Number.isFinite(m.natsPerConnNet));
  assert.ok(m.heapAfterGc, 'heap measured after a forced GC by the probe');
  assert.ok(m.brokerHeapBaseline! > 0 && m.brokerHeapHeld! > 0);
  assert.equal(json.gc.held?.processes, 3, 'supervisor + 2 workers probed');
  assert.ok(report.timeline.length > 0);
  const mix = json.mix;
  assert.ok(mix, 'the mixed load ran');
  assert.equal(mix.startedSenders, 10, 'the window opened after every conversation had started');
  assert.ok(mix.warmupMs >= 2000, `warm-up ${mix.warmupMs} ms: at least the 2 s the senders stay settled`);
  assert.ok(
    mix.pendingAtWindow !== undefined && mix.pendingAtWindow <= 20,
    `the warm-up's backlog had drained when the window opened: ${mix.pendingAtWindow} sends outstanding`,
  );
  assert.ok(mix.sent >= 20 && mix.acked >= 20, `sent ${mix.sent}, acked ${mix.acked} at 20 msg/s for 2 s`);
  assert.ok((json.sends.check?.acked ?? 0) >= mix.acked, 'every ack of the window is checked');
  assert.equal(json.sends.check?.lost, 0, 'every acked message read back from Cassandra');
  assert.equal(json.sends.check?.duplicated, 0);
});

test('bench - events smoke run routes every event and times context look-ups', {
  timeout: SMOKE_TIMEOUT_MS,
}, async () => {
  const { report, files } = await eventsScenario(
    common(),
    {
      events: 60,
      visitors: 6,
      outstanding: 16,
      workers: 1,
      responders: [1, 3],
      lookups: 40,
      lookupConcurrency: 4,
      deadlineMs: 800,
      drainMs: 15_000,
      pacedSeconds: 2,
    },
    new AbortController().signal,
  );
  assert.ok(files.some((f) => f.endsWith('.json')) && files.some((f) => f.endsWith('.md')));
  const json = JSON.parse(readFileSync(files.find((f) => f.endsWith('.json'))!, 'utf8')) as typeof report;
  const [saturated, paced] = json.routed;
  assert.equal(saturated?.routed, 60, 'every event routed into its conversation');
  assert.ok(paced && paced.rate > 0 && paced.routed === paced.published, 'the paced run routes all it sends');
  const sane = (l: LatencySummary, what: string) =>
    assert.ok(l.count > 0 && l.p50Ms > 0 && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms, `${what}: percentiles`);
  sane(saturated.latency, 'routed');
  assert.deepEqual(
    json.context.map((c) => [c.responders, c.lookups, c.complete]),
    [
      [1, 40, 40],
      [3, 40, 40],
    ],
  );
  for (const c of json.context) sane(c.latency, `context N=${c.responders}`);
});

test('bench smoke - storage: writes at the bound, pages cached and uncached, bytes and filter figures', {
  timeout: SMOKE_TIMEOUT_MS,
}, async () => {
  const { report, files } = await storageScenario(common(), {
    rows: 600,
    conversations: 30,
    maxPendingRows: 60,
    pageReads: 30,
    filterTexts: 600,
  });
  for (const ext of ['.json', '.md'])
    assert.ok(
      files.some((f) => f.endsWith(ext) && existsSync(f)),
      ext,
    );
  assert.equal(report.write.rows, 600);
  assert.ok(report.write.rowsPerS > 0);
  // Few samples: only the body of the distribution is checked (HDR rounding may put p99.9 above max).
  const sane = (l: LatencySummary, what: string) =>
    assert.ok(l.count > 0 && l.p50Ms > 0 && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms, `${what}: percentiles`);
  sane(report.write.appendLatency, 'append');
  for (const [kind, s] of Object.entries(report.pages)) sane(s, kind);
  assert.ok(report.cache.hits >= 60, 'cached reads were answered by the cache');
  assert.ok(report.bytes.storedBytesPerMessage < report.bytes.rawBytesPerMessage, 'compression saves bytes');
  for (const op of ['filter', 'policy', 'pii'] as const) {
    assert.ok(report.filter[op].textsPerS > 0 && report.filter[op].meanBatch > 1, `${op} is micro-batched`);
  }
});

test('bench - ingest smoke run writes a sane report', { timeout: SMOKE_TIMEOUT_MS }, async () => {
  const { report, files } = await ingestScenario(
    common(),
    {
      rates: [50, 0],
      connections: 4,
      conversations: 20,
      tenants: 2,
      workers: 1,
      stepDurationMs: 2000,
      stepWarmupMs: 500,
      bodyChars: 60,
      objectiveP99Ms: DEFAULT_OBJECTIVE.p99Ms,
      verifyConversations: 20,
    },
    new AbortController().signal,
  );
  assertFiles(files);
  assert.equal(report.scenario, 'ingest');
  assert.equal(report.setup.conversations, 20);
  assert.equal(report.setup.sockets, 20, 'every visitor socket opened');
  assert.equal(report.steps.length, 2);
  for (const s of report.steps) {
    assert.ok(s.acceptedPerS > 0, 'posts accepted');
    assertOrdered(s.ack, `ack at ${s.offeredRate}`);
    assertOrdered(s.delivery, `delivery at ${s.offeredRate}`);
    assert.equal(s.otherNon2xx + s.errors, 0, `no failures: ${JSON.stringify(s.statusCounts)}`);
    assert.ok(s.resources.groups.broker.meanRssBytes > 0);
  }
  assert.ok(report.steps[0]!.acceptedPerS < 80, 'the paced step keeps near its rate');
  assert.deepEqual(report.verify.short, [], 'every acknowledged post is stored');
  assert.ok(report.verify.acked > 0 && report.verify.stored >= report.verify.acked);
  assert.doesNotMatch(
    readFileSync(files.find((f) => f.endsWith('.json'))!, 'utf8'),
    /sbk_/,
    'no API key in the report',
  );
});
