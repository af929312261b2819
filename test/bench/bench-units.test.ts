/** The bench's pure parts, without servers: option parsing, the sweep, sizing, histograms, limits, charts. */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { placementLine } from '../../bench/cluster/report.js';
import { connectionUser } from '../../bench/connections/messages.js';
import { planConnections } from '../../bench/connections/plan.js';
import { badSeconds, badSecondsNote } from '../../bench/e2e/bad-seconds.js';
import type { PhaseResult } from '../../bench/e2e/load.js';
import { emptyCounts } from '../../bench/e2e/messages.js';
import { DEFAULT_OBJECTIVE, judge, niceRate, SweepPlan } from '../../bench/e2e/sweep.js';
import { ingestStepMet } from '../../bench/ingest/scenario.js';
import {
  addEncoded,
  emptySummary,
  encodeHistogram,
  newHistogram,
  recordMs,
  summarize,
} from '../../bench/lib/histogram.js';
import { GcLogTail, jvmGcLogOf, longestPauseMs } from '../../bench/lib/jvm-gc-log.js';
import { analyseLimits, MACHINE_STALL_NOTE_MS, type ResourceSummary } from '../../bench/lib/limits.js';
import { SlotQueue } from '../../bench/lib/pool.js';
import { connectedPorts, connectedServerPids } from '../../bench/lib/proc.js';
import { addProfile, type CpuProfile, emptyTotals, stageTable } from '../../bench/lib/profile-stages.js';
import { groupStats, type ResourceSample } from '../../bench/lib/sampler.js';
import { StallProbe } from '../../bench/lib/stall-probe.js';
import { parseCount, parseDurationMs } from '../../bench/lib/units.js';
import { gcKindOf } from '../../bench/probe/probe-record.js';
import { lineChart, niceTicks } from '../../bench/report/svg-chart.js';

test('bench units - durations and counts parse with units, and bad values are refused', () => {
  const cases: [string, number][] = [
    ['30s', 30_000],
    ['2m', 120_000],
    ['500ms', 500],
    ['1.5', 1_500],
    ['1h', 3_600_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, text);
  assert.equal(parseCount('100k'), 100_000);
  assert.equal(parseCount('1.2m'), 1_200_000);
  assert.equal(parseCount('250'), 250);
  for (const bad of ['', 'ten', '5 parsecs', '-1s']) assert.throws(() => parseDurationMs(bad), bad);
  assert.throws(() => parseCount('lots'));
});

function phase(p99Ms: number, scheduled: number, delivered: number, errors = 0): PhaseResult {
  const counts = { ...emptyCounts(), scheduled, sent: scheduled, acked: scheduled - errors, delivered };
  if (errors > 0) counts.errors = { internal: errors };
  const lat = { ...emptySummary(), count: delivered, p50Ms: p99Ms / 4, p99Ms };
  return {
    phase: 0,
    offeredRate: 1000,
    startAt: 0,
    endAt: 0,
    warmupMs: 0,
    measuredMs: 1000,
    counts,
    ack: lat,
    delivery: lat,
    sendLag: emptySummary(),
    generatorElu: [0.2],
    series: [],
  };
}

test('bench units - the objective needs p99, delivery and failures all within bounds', () => {
  assert.deepEqual(judge(phase(50, 1000, 1000), DEFAULT_OBJECTIVE), { met: true, reasons: [] });
  assert.match(
    judge(phase(120, 1000, 1000), DEFAULT_OBJECTIVE).reasons.join(),
    /delivery p99 120\.0 ms > 89 ms/,
  );
  assert.match(judge(phase(50, 1000, 900), DEFAULT_OBJECTIVE).reasons.join(), /delivered 90\.0 %/);
  assert.match(
    judge(phase(50, 1000, 1000, 5), DEFAULT_OBJECTIVE).reasons.join(),
    /5 of 1000 messages failed/,
  );
  assert.equal(judge(phase(50, 0, 0), DEFAULT_OBJECTIVE).met, false, 'an empty phase never passes');
});

test('bench units - the sweep climbs geometrically, then bisects towards the capacity', () => {
  const capacity = 3100;
  const plan = new SweepPlan({ from: 500, factor: 2, max: 20_000, refine: 3, maxSteps: 16 });
  const tried: number[] = [];
  for (let r = plan.next(); r !== undefined; r = plan.next()) {
    tried.push(r);
    plan.record(r, r <= capacity);
  }
  assert.deepEqual(tried.slice(0, 4), [500, 1000, 2000, 4000]);
  assert.equal(tried[4], 3000, 'bisects between the last good and the first bad rate');
  assert.ok(plan.best !== undefined && plan.best <= capacity && plan.best >= 3000, `best ${plan.best}`);
  assert.ok(tried.length <= 7);
});

test('bench units - the sweep steps down when even the first rate misses, and stops at max', () => {
  const down = new SweepPlan({ from: 1000, factor: 2, max: 20_000, refine: 2, maxSteps: 16 });
  assert.equal(down.next(), 1000);
  down.record(1000, false);
  assert.equal(down.next(), 500);
  const capped = new SweepPlan({ from: 1000, factor: 4, max: 2000, refine: 2, maxSteps: 16 });
  const tried: number[] = [];
  for (let r = capped.next(); r !== undefined; r = capped.next()) {
    tried.push(r);
    capped.record(r, true);
  }
  assert.deepEqual(tried, [1000, 2000]);
  assert.equal(niceRate(1234), 1200);
  assert.equal(niceRate(56), 56);
});

test('bench units - connections are sized under the fd limit, one source address per generator', () => {
  const plan = planConnections({ target: 100_000, perGenerator: 16_000, sourceBase: 10 });
  assert.equal(plan.workers, 6, '100k / 17k per worker, rounded up');
  assert.equal(plan.generators, Math.ceil(100_000 / Math.min(16_000, plan.fdLimit - 500)));
  assert.equal(plan.ranges[0]?.from, 0);
  assert.equal(plan.ranges.at(-1)?.to, 100_000);
  for (const [i, r] of plan.ranges.entries()) {
    if (i > 0) assert.equal(r.from, plan.ranges[i - 1]?.to, 'contiguous');
  }
  assert.equal(new Set(plan.ranges.map((r) => r.localAddress)).size, plan.generators);
  assert.match(
    plan.ranges[0]?.localAddress ?? '',
    /^127\.([1-9]\d*)\.\d+\.10$/,
    'a fresh /24, never 127.0.0',
  );
  const pinned = planConnections({
    target: 40_000,
    perGenerator: 16_000,
    sourceBase: 10,
    sourceNet: '127.9.8',
  });
  assert.deepEqual(
    pinned.ranges.map((r) => r.localAddress),
    ['127.9.8.10', '127.9.8.11', '127.9.8.12'].slice(0, pinned.generators),
  );
  // Reconnects turn through more addresses of the /24, none shared between generators (plan.ts).
  const all = pinned.ranges.flatMap((r) => r.sourceAddresses);
  assert.equal(new Set(all).size, all.length, 'no address in two generators');
  for (const r of pinned.ranges) {
    assert.equal(r.sourceAddresses[0], r.localAddress);
    assert.ok(r.sourceAddresses.length >= 30, `${r.sourceAddresses.length} addresses`);
    assert.ok(r.sourceAddresses.every((a) => /^127\.9\.8\.(\d+)$/.test(a) && Number(a.split('.')[3]) <= 254));
  }
  assert.throws(
    () => planConnections({ target: 10, perGenerator: 16_000, sourceBase: 10, sourceNet: '10.0.0' }),
    /127\.a\.b/,
  );
  assert.throws(
    () => planConnections({ target: 100_000, workers: 1, perGenerator: 16_000, sourceBase: 10 }),
    /fd limit/,
  );
});

test('bench units - every tenant gets its share of agents', () => {
  const tenants = 20;
  const agents = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const u = connectionUser('r', i, 95, tenants);
    if (u.role === 'agent') agents.set(u.tenant, (agents.get(u.tenant) ?? 0) + 1);
  }
  assert.equal(agents.size, tenants);
  for (const n of agents.values()) assert.equal(n, 5);
});

test('bench units - histograms merge losslessly across processes', () => {
  const a = newHistogram();
  const b = newHistogram();
  for (let i = 1; i <= 990; i++) recordMs(a, 1);
  for (let i = 1; i <= 10; i++) recordMs(b, 200);
  const merged = newHistogram();
  addEncoded(merged, encodeHistogram(a));
  addEncoded(merged, encodeHistogram(b));
  addEncoded(merged, '');
  const s = summarize(merged);
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50Ms - 1) < 0.01);
  assert.ok(Math.abs(s.p999Ms - 200) < 0.5, `p99.9 ${s.p999Ms}`);
});

test('bench units - charts are well-formed SVG with round ticks and escaped text', () => {
  assert.deepEqual(niceTicks(0, 97), [0, 20, 40, 60, 80, 100]);
  const svg = lineChart({
    title: 'p99 <by> rate & more',
    xLabel: 's',
    yLabel: 'ms',
    logY: true,
    hline: { y: 89, label: 'objective' },
    series: [
      {
        name: 'a',
        points: [
          [0, 1],
          [1, 10],
          [2, 100],
        ],
      },
      {
        name: 'b',
        points: [
          [0, 0],
          [1, 5],
        ],
        dashed: true,
      },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /p99 &lt;by&gt; rate &amp; more/);
  assert.equal(svg.match(/<path /g)?.length, 2, 'one line per series');
  assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
  const empty = lineChart({
    title: 'empty',
    xLabel: 'x',
    yLabel: 'y',
    series: [{ name: 'none', points: [] }],
  });
  assert.ok(!empty.includes('NaN') && !empty.includes('Infinity'), 'an empty chart still renders');
});

function resources(machineBusy: number, brokerElu: number): ResourceSummary {
  const g = (cores: number) => ({ meanCpuCores: cores, maxCpuCores: cores, meanRssBytes: 1, maxRssBytes: 1 });
  return {
    cores: 2,
    machineBusy,
    groups: { broker: { ...g(1), maxElu: brokerElu }, generators: g(0.3), nats: g(0.1), cassandra: g(0.4) },
  };
}

test('bench units - the limit is read from the evidence, the bench itself first', () => {
  const own = analyseLimits({ resources: resources(0.99, 1), generatorElu: [0.95], sendLagP99Ms: 50 });
  assert.equal(own.limitedBy, 'generator');
  assert.ok(own.generatorLimited);
  const starved = analyseLimits({ resources: resources(0.99, 1), generatorElu: [0.3], sendLagP99Ms: 45 });
  assert.equal(starved.limitedBy, "machine CPU (largest user: broker; a broker worker's loop at 100 %)");
  assert.equal(
    starved.generatorLimited,
    false,
    'late sends on a saturated machine are the machine, not the bench',
  );
  assert.ok(starved.notes.some((n) => n.includes('starved of CPU')));
  const machine = analyseLimits({ resources: resources(0.97, 0.6), generatorElu: [0.3], sendLagP99Ms: 2 });
  assert.equal(machine.limitedBy, 'machine CPU (largest user: broker)');
  const loop = analyseLimits({ resources: resources(0.6, 0.97), generatorElu: [0.3], sendLagP99Ms: 2 });
  assert.equal(
    loop.limitedBy,
    'broker event loop (a worker at 97 %)',
    'a saturated loop with cores to spare',
  );
  const idle = analyseLimits({ resources: resources(0.3, 0.2), generatorElu: [0.1], sendLagP99Ms: 1 });
  assert.match(idle.limitedBy, /^none seen/);
  const failing = analyseLimits({ resources: resources(0.3, 0.2), generatorElu: [0.1], failedRatio: 0.5 });
  assert.match(failing.limitedBy, /failures or stalls/);
  // A shared machine: the run's groups use 0.6 of 2 busy cores; the generators' loops read busy because
  // they wait for CPU, not because the bench is the limit.
  const shared = resources(1, 0.5);
  for (const g of ['broker', 'generators', 'nats', 'cassandra'] as const)
    shared.groups[g].meanCpuCores = 0.15;
  const crowded = analyseLimits({ resources: shared, generatorElu: [1] });
  assert.equal(crowded.limitedBy, 'machine CPU (largest user: processes outside the run, 1.40 cores)');
  assert.ok(crowded.notes.some((n) => n === 'Processes outside the run used 1.40 cores of the machine.'));
});

test('bench ingest - a paced step meets the objective only when 99 % of its rate was accepted', () => {
  const step = {
    rate: 4000,
    accepted: 80_000,
    durationS: 20,
    ackP99Ms: 50,
    deliveryP99Ms: 70,
    failedRatio: 0,
  };
  assert.equal(ingestStepMet(step, 89), true);
  assert.equal(
    ingestStepMet({ ...step, accepted: 44_080 }, 89),
    false,
    '2,204/s of 4,000 offered: saturated',
  );
  assert.equal(
    ingestStepMet({ ...step, rate: 0, accepted: 44_080 }, 89),
    true,
    'unpaced: capacity, judged on latency',
  );
  assert.equal(ingestStepMet({ ...step, deliveryP99Ms: 90 }, 89), false);
  assert.equal(ingestStepMet({ ...step, failedRatio: 0.002 }, 89), false);
  assert.equal(ingestStepMet({ ...step, accepted: 0, rate: 0 }, 89), false);
});

test('bench units - late sends are the limit only when they are a large part of the p99 (issue #13)', () => {
  // 21-25 ms of send lag under a delivery p99 of 241-396 ms: the servers, not the generator.
  const small = analyseLimits({
    resources: resources(0.8, 0.5),
    generatorElu: [0.4],
    sendLagP99Ms: 25,
    latencyP99Ms: 300,
  });
  assert.notEqual(small.limitedBy, 'generator (late sends)');
  assert.equal(small.generatorLimited, false);
  assert.ok(small.notes.some((n) => n.includes('small part of the p99')));
  const large = analyseLimits({
    resources: resources(0.8, 0.5),
    generatorElu: [0.4],
    sendLagP99Ms: 80,
    latencyP99Ms: 120,
  });
  assert.equal(large.limitedBy, 'generator (late sends)');
});

test('bench units - a broker loop near saturation is named as the limit, not "not throughput" (issue #13)', () => {
  const near = analyseLimits({
    resources: resources(0.7, 0.84),
    generatorElu: [0.3],
    sendLagP99Ms: 2,
    latencyP99Ms: 150,
  });
  assert.match(near.limitedBy, /^broker event loop near saturation \(a worker peaked at 84 %/);
  assert.doesNotMatch(near.limitedBy, /not throughput/);
  const calm = analyseLimits({ resources: resources(0.5, 0.6), generatorElu: [0.3], latencyP99Ms: 150 });
  assert.match(calm.limitedBy, /^none seen/);
});

test('bench units - the servers a process is connected to are found by their command line (--url nats CPU)', async () => {
  const server = spawn(
    process.execPath,
    [
      '-e',
      "const s=require('net').createServer(c=>c.on('error',()=>{})).listen(0,'127.0.0.1',()=>console.log(s.address().port))",
      'fake-nats-server-marker',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise<number>((resolve) =>
      server.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
    );
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    try {
      assert.ok(connectedPorts([process.pid]).includes(port));
      assert.deepEqual(connectedServerPids([process.pid], /fake-nats-server-marker/), [server.pid]);
      assert.deepEqual(connectedServerPids([process.pid], /no-such-server/), []);
    } finally {
      socket.destroy();
    }
  } finally {
    server.kill();
  }
});

test('bench units - the cluster report says where each node connected to NATS and whether member traffic crosses a route', () => {
  assert.equal(
    placementLine([{ node: 'n1', servers: [2] }]),
    'NATS placement (read at the end of the run): n1 → nats 2 (one node: no member traffic).',
  );
  assert.match(
    placementLine([
      { node: 'n1', servers: [1] },
      { node: 'n2', servers: [1] },
      { node: 'n3', servers: [1] },
    ]),
    /n1 → nats 1; n2 → nats 1; n3 → nats 1 \(every node on one server: member traffic crosses no route\)/,
  );
  assert.match(
    placementLine([
      { node: 'n1', servers: [1] },
      { node: 'n2', servers: [3] },
      { node: 'n3', servers: [] },
    ]),
    /n2 → nats 3; n3 → not found \(a node not found: routes unknown\)/,
  );
  assert.match(
    placementLine([
      { node: 'n1', servers: [1] },
      { node: 'n2', servers: [3] },
    ]),
    /\(nodes on 2 servers: member traffic between them crosses a NATS route\)/,
  );
});

test('bench units - profile samples go to the stage of the innermost project frame or single-stage library', () => {
  const f = (functionName: string, url: string) => ({ functionName, url });
  const P = 'file:///w/dist/';
  const M = 'file:///w/node_modules/';
  // id: frame, parent
  const frames: [number, ReturnType<typeof f>, number | undefined][] = [
    [1, f('(root)', ''), undefined],
    [2, f('onSend', `${P}actors/conversation.js`), 1],
    [3, f('publish', `${M}nats/lib/nats-base-client/nats.js`), 2], // nats under an actor: fan-out
    [4, f('writeBuffer', ''), 3],
    [5, f('execute', `${M}cassandra-driver/lib/client.js`), 2],
    [6, f('writeBuffer', ''), 5], // a socket write under the driver: the driver's
    [7, f('sendBounded', `${P}src/gateway/server.js`), 1],
    [8, f('send', ''), 7],
    [9, f('(garbage collector)', ''), 1],
    [10, f('(idle)', ''), 1],
    [11, f('processTicksAndRejections', 'node:internal/process/task_queues'), 1],
    [12, f('flushOutbox', `${P}src/gateway/server.js`), 1],
    [13, f('cork', ''), 12], // the outbox's corked write: sending, not frame handling
    [14, f('onMessage', `${P}src/gateway/server.js`), 1],
    [15, f('flushOutbox', `${P}src/gateway/socket-outbox.js`), 1],
    [16, f('cork', ''), 15], // the outbox in its own module since the gateway's split
    [17, f('handleSend', `${P}src/gateway/socket-frames.js`), 1],
    [18, f('handleSync', `${P}src/gateway/socket-frames.js`), 1],
  ];
  const profile: CpuProfile = {
    startTime: 0,
    endTime: 0,
    nodes: frames.map(([id, callFrame]) => ({
      id,
      callFrame,
      children: frames.filter(([, , parent]) => parent === id).map(([child]) => child),
    })),
    samples: [4, 6, 8, 9, 10, 11, 2, 13, 14, 16, 17, 18],
    timeDeltas: [0, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
  };
  const t = stageTable(addProfile(emptyTotals(), profile), 2, 1);
  const us = Object.fromEntries(t.rows.map((r) => [r.stage, r.usPerMessage]));
  assert.equal(us['fan-out (NATS publish + deliver)'], 50);
  assert.equal(us['driver (cassandra-driver)'], 50);
  assert.equal(us['encode + send (uWS)'], 150);
  assert.equal(us['decode + validate'], 100);
  assert.equal(us['screen (gateway side)'], 50);
  assert.equal(us.GC, 50);
  assert.equal(us['Node I/O (net, streams, timers)'], 50);
  assert.equal(us.actor, 50);
  assert.equal(t.sampledUsPerMessage, 550, 'idle is not counted');
});

test('bench units - a tail miss names its longest stall: broker loop delay or GC, Cassandra GC (issue #13)', () => {
  const r = resources(0.5, 0.4);
  r.groups.broker.maxLoopDelayMs = 41;
  r.groups.broker.maxGcPauseMs = 12;
  r.groups.cassandra.maxGcPauseMs = 212.4;
  const a = analyseLimits({ resources: r, generatorElu: [0.2], sendLagP99Ms: 1 });
  assert.match(a.limitedBy, /^none seen .*; longest: Cassandra GC pause 212 ms\)$/);
  assert.ok(
    a.notes.includes(
      'Stalls (longest in the window): broker event-loop delay 41 ms, broker GC pause 12 ms, Cassandra GC pause 212 ms.',
    ),
  );
  // A V8 pause names its kind (from the probe's gc entries), and may be the longest.
  r.groups.broker.maxGcPauseMs = 300;
  r.groups.broker.maxGcPauseKind = 'major';
  const named = analyseLimits({ resources: r, generatorElu: [0.2], sendLagP99Ms: 1 });
  assert.match(named.limitedBy, /; longest: broker GC pause 300 ms \(major\)\)$/);
  assert.ok(
    named.notes.some((n) => n.includes('broker GC pause 300 ms (major), Cassandra GC pause 212 ms.')),
  );
  // Without probes or GC logs there is nothing to name.
  const bare = analyseLimits({ resources: resources(0.5, 0.4), generatorElu: [0.2] });
  assert.ok(!bare.notes.some((n) => n.startsWith('Stalls')));
  assert.doesNotMatch(bare.limitedBy, /longest/);
});

test('bench units - a JVM GC log is followed from where it ended: longest pause per read, partial lines, rotation', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sb-gclog-'));
  const path = join(dir, 'gc.log');
  const line = (ms: string) =>
    `[2026-12-03T23:38:37.586+0000][680.554s] GC(34) Pause Young (Normal) (G1 Evacuation Pause) 845M->542M(1024M) ${ms}ms\n`;
  try {
    await writeFile(path, line('500.0'));
    const tail = new GcLogTail(path);
    assert.equal(tail.longestPauseSinceLast(), 0, 'what was logged before it was first seen does not count');
    await appendFile(
      path,
      `${line('34.142')}[2026-12-03T23:38:38.000+0000][681.0s] Using G1\n${line('48.471')}`,
    );
    assert.equal(tail.longestPauseSinceLast(), 48.471);
    assert.equal(tail.longestPauseSinceLast(), 0, 'nothing new');
    // A line still being written counts once it is whole.
    const half = line('77.5');
    await appendFile(path, half.slice(0, 40));
    assert.equal(tail.longestPauseSinceLast(), 0);
    await appendFile(path, half.slice(40));
    assert.equal(tail.longestPauseSinceLast(), 77.5);
    // Rotated: the new file is read from its start.
    await writeFile(path, line('3.25'));
    assert.equal(tail.longestPauseSinceLast(), 3.25);
    assert.equal(
      longestPauseMs('GC(1) Concurrent Mark Cycle 120.1ms\n'),
      0,
      'concurrent phases are not pauses',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bench units - the GC log of a process is found from its -Xlog argument', async () => {
  const child = spawn(
    process.execPath,
    // `--`: without it node refuses -Xlog as a bad option and exits 9 at once, and the test passed only
    // when it read /proc/<pid>/cmdline before that exit (CI on a busy machine lost the race).
    ['-e', 'setTimeout(() => {}, 5000)', '--', '-Xlog:gc:file=/tmp/x/gc.log:time,uptime:filecount=2'],
    {
      stdio: 'ignore',
    },
  );
  try {
    await once(child, 'spawn');
    assert.equal(jvmGcLogOf(child.pid ?? 0), '/tmp/x/gc.log');
    assert.equal(child.exitCode, null, 'the child is still running when its cmdline is read');
    assert.equal(jvmGcLogOf(process.pid), undefined);
  } finally {
    child.kill();
  }
});

test('bench units - the longest V8 pause of a window keeps its kind (gc entry detail.kind)', () => {
  assert.equal(gcKindOf(1), 'minor');
  assert.equal(gcKindOf(4), 'major');
  assert.equal(gcKindOf(8), 'incremental');
  assert.equal(gcKindOf(16), 'weak callbacks');
  assert.equal(gcKindOf(undefined), undefined);
  const sample = (ms: number, kind: 'minor' | 'major'): ResourceSample => ({
    at: 0,
    machineBusy: 0.5,
    groups: { broker: { processes: 1, rssBytes: 1, cpuCores: 0.5, maxGcPauseMs: ms, maxGcPauseKind: kind } },
  });
  const stats = groupStats([sample(12, 'minor'), sample(40, 'major'), sample(30, 'minor')], 'broker');
  assert.equal(stats.maxGcPauseMs, 40);
  assert.equal(stats.maxGcPauseKind, 'major');
});

test('bench units - a machine stall longer than the note threshold is named as the longest stall (issue #13)', () => {
  const r = resources(0.5, 0.4);
  r.groups.broker.maxLoopDelayMs = 120;
  r.maxMachineStallMs = 368;
  r.cpuPressure = 0.42;
  const a = analyseLimits({ resources: r, generatorElu: [0.2], sendLagP99Ms: 1 });
  assert.match(a.limitedBy, /longest: machine stall \(an idle probe process waited for a CPU\) 368 ms\)$/);
  assert.ok(a.notes.some((n) => n.includes('some task waited for a CPU 42 % of the time')));
  r.maxMachineStallMs = MACHINE_STALL_NOTE_MS - 1;
  const b = analyseLimits({ resources: r, generatorElu: [0.2], sendLagP99Ms: 1 });
  assert.match(
    b.limitedBy,
    /longest: broker event-loop delay 120 ms\)$/,
    'ordinary scheduling is not a stall',
  );
});

test('bench units - each second over the objective names the stalls seen in it and the next', () => {
  const MiB = 1024 * 1024;
  const latency = (p99Ms: number) => ({
    count: 100,
    meanMs: p99Ms / 2,
    p50Ms: p99Ms / 2,
    p90Ms: p99Ms,
    p99Ms,
    p999Ms: p99Ms,
    maxMs: p99Ms,
  });
  const second = (t: number, p99: number, measured = true) => ({
    t,
    measured,
    counts: { ...emptyCounts(), delivered: 100, acked: 100 },
    ack: latency(p99),
    delivery: latency(p99),
    maxSendLagMs: 1,
    maxGeneratorElu: 0.2,
  });
  const series = [
    second(0, 300, false),
    second(1, 20),
    second(2, 150),
    second(3, 20),
    second(4, 200),
    second(5, 95),
    second(6, 120),
  ];
  // Resource sample t covers (t - 1, t].
  const res = [
    { t: 1, brokerHeapUsedBytes: 100 * MiB, cassandraCpuCores: 0.3 },
    { t: 2, brokerHeapUsedBytes: 200 * MiB, cassandraCpuCores: 0.3 },
    { t: 3, brokerHeapUsedBytes: 250 * MiB, cassandraCpuCores: 0.3, machineStallMs: 310 },
    { t: 4, brokerHeapUsedBytes: 260 * MiB, cassandraCpuCores: 0.3 },
    { t: 5, brokerHeapUsedBytes: 90 * MiB, cassandraCpuCores: 0.3, machineStallMs: 40 },
    { t: 6, brokerHeapUsedBytes: 100 * MiB, cassandraCpuCores: 0.3 },
    { t: 7, brokerHeapUsedBytes: 110 * MiB, cassandraCpuCores: 0.3 },
    { t: 8, brokerHeapUsedBytes: 120 * MiB, cassandraCpuCores: 1.2 },
  ];
  const bad = badSeconds(series, res, 'delivery', 89);
  assert.deepEqual(
    bad.map((b) => [b.t, b.causes]),
    [
      [2, ['machine stall 310 ms']],
      [4, ['broker major GC (heap 260 → 90 MiB)']],
      [5, []],
      [6, ['Cassandra at 1.20 cores']],
    ],
  );
  const note = badSecondsNote(bad, 6) ?? '';
  assert.match(note, /^Seconds over the objective: 4 of 6, 3 with a stall seen /);
  assert.match(note, /t=5 s p99 95 ms: no stall seen/);
  assert.equal(badSecondsNote([], 6), undefined);
});

test('bench units - a memtable flush second is a Cassandra burst below twice the mean', () => {
  // A fixed run at 4 400 msg/s with a skip-list memtable: Cassandra 0.43-0.49 cores a second, 0.78 in the
  // flush's second, whose p99 was 101 ms.
  const latency = (p99Ms: number) => ({
    count: 100,
    meanMs: 5,
    p50Ms: 5,
    p90Ms: 8,
    p99Ms,
    p999Ms: p99Ms,
    maxMs: p99Ms,
  });
  const series = Array.from({ length: 20 }, (_, t) => ({
    t,
    measured: true,
    counts: { ...emptyCounts(), delivered: 100, acked: 100 },
    ack: latency(t === 10 ? 101 : 20),
    delivery: latency(t === 10 ? 101 : 20),
    maxSendLagMs: 1,
    maxGeneratorElu: 0.2,
  }));
  const res = series.map((s) => ({
    t: s.t + 1,
    cassandraCpuCores: s.t === 10 ? 0.78 : 0.43 + (s.t % 4) * 0.02,
  }));
  assert.deepEqual(
    badSeconds(series, res, 'delivery', 89).map((b) => [b.t, b.causes]),
    [[10, ['Cassandra at 0.78 cores']]],
  );
});

test('bench units - the stall probe reports how long it could not run', async () => {
  const probe = new StallProbe();
  try {
    const deadline = Date.now() + 10_000;
    while (probe.takeWorstMs() === undefined) {
      assert.ok(Date.now() < deadline, 'the probe reports within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = probe.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 400));
    process.kill(pid, 'SIGCONT');
    await new Promise((r) => setTimeout(r, 600));
    const worst = probe.takeWorstMs() ?? 0;
    assert.ok(worst >= 300, `a probe stopped for 400 ms reports it (${worst} ms)`);
    await new Promise((r) => setTimeout(r, 600));
    assert.ok((probe.takeWorstMs() ?? 0) < 300, 'each call covers the time since the previous one');
  } finally {
    probe.stop();
  }
});

test('bench units - the reconnect queue keeps at most its limit in flight, in order, and its array bounded (issue #14)', async () => {
  assert.throws(() => new SlotQueue(0, async () => undefined), /limit must be ≥ 1/);
  let inFlight = 0;
  let peak = 0;
  let peakWaiting = 0;
  const started: number[] = [];
  const q: SlotQueue<number> = new SlotQueue(4, async (n) => {
    started.push(n);
    inFlight++;
    peak = Math.max(peak, inFlight);
    assert.ok(q.inFlight <= 4);
    await new Promise((r) => setTimeout(r, 1 + (n % 3)));
    inFlight--;
  });
  // A queue that never empties: items arrive while earlier ones run, as reconnects do in a storm.
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 25; i++) q.push(round * 25 + i);
    const array = (q as unknown as { waiting: number[] }).waiting.length;
    assert.ok(array <= 2 * q.length, `array ${array} for ${q.length} waiting`);
    peakWaiting = Math.max(peakWaiting, q.length);
    await new Promise((r) => setTimeout(r, 2));
  }
  while (q.length > 0 || q.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(peak, 4, 'the limit is used and never passed');
  assert.deepEqual(
    started,
    Array.from({ length: 500 }, (_, i) => i),
    'each item started once, in the order pushed',
  );
  assert.ok(peakWaiting > 25, 'items did wait for slots');
  // stop() drops what waits; what runs finishes; nothing starts after.
  let ran = 0;
  const s = new SlotQueue<number>(1, async () => {
    ran++;
    await new Promise((r) => setTimeout(r, 5));
  });
  for (let i = 0; i < 10; i++) s.push(i);
  s.stop();
  s.push(99);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(ran, 1);
  assert.equal(s.length, 0);
});
