/**
 * `npm run bench -- connections`: measure the node's idle memory, ramp authenticated clients to the
 * target from several generator processes (each on its own loopback address), let it settle, hold every
 * connection with pings on, then close them all and see what memory comes back. Memory per connection
 * is reported raw (all node processes / connections) and net of the idle baseline.
 */
import { type CommonOptions, newRunId, progressFor, startSampling } from '../lib/common.js';
import { analyseLimits, summarizeResources } from '../lib/limits.js';
import { type GcMeasurement, measureAfterGc } from '../lib/sampler.js';
import { kernelMemory, nodeMemory } from '../lib/smaps.js';
import { attachTarget, startNodeTarget } from '../lib/target.js';
import { formatMs, sleep } from '../lib/units.js';
import { reportHeader, reportPaths, writeReport } from '../report/write.js';
import { Fleet, mergeEncoded, sumRecords } from './fleet.js';
import { type GcPoints, memoryFigures } from './memory.js';
import { planConnections } from './plan.js';
import { type ConnectionsReport, connectionsCharts, connectionsMarkdown } from './report.js';
import type { MixResult } from './report-storm.js';
import { runStorm, type StormKind, type StormResult } from './storm.js';
import { type AckCheck, checkAcked } from './verify.js';

const PROGRESS_POLL_MS = 1000;

/** The longest the mix's warm-up waits for every sender's conversation to start and its backlog to drain. */
const MIX_START_MAX_MS = 60_000;
const MIX_START_POLL_MS = 250;
const STORM_WAIT_POLL_MS = 500;
/** How long the senders must stay settled (all started, few sends outstanding) before the window opens. */
const MIX_SETTLED_MS = 2_000;
/**
 * Sends outstanding (sent, not yet acknowledged) at which the warm-up's backlog counts as drained: a tenth
 * of a second of the offered rate, at least 20. In steady state at 1 000 msg/s about 15 are outstanding.
 */
export function mixSettledPending(rate: number): number {
  return Math.max(20, Math.ceil(rate / 10));
}

export interface ConnectionsOptions {
  target: number;
  workers?: number;
  perGenerator: number;
  visitorPercent: number;
  tenants: number;
  rampRate: number;
  concurrency: number;
  hold: number;
  pingInterval: number;
  settle: number;
  sourceBase: number;
  sourceNet?: string;
  /** Visitors that send messages during the mix and the storms (the e2e load among the held sockets). */
  senders: number;
  /** Messages per second offered by all senders together. */
  sendRate: number;
  /** How long the mixed load runs before the storms, ms (0: none). */
  mix: number;
  /**
   * How long the senders send before the mix's window opens, ms: each sender's first message starts its
   * conversation (actor, assignment, first rows), which the e2e bench also leaves out of its window.
   */
  mixWarmup: number;
  /** Reconnect storms after the mix, in order. */
  storm: StormKind[];
  stormTimeout: number;
}

/** After the storms, how long the senders get to have their last messages answered. */
const DRAIN_SENDS_MS = 60_000;
const GC_RELEASE_MS = 3000;

export async function connectionsScenario(
  common: CommonOptions,
  o: ConnectionsOptions,
  signal: AbortSignal,
): Promise<{ files: string[]; summary: string; report: ConnectionsReport }> {
  const plan = planConnections(o);
  const ui = progressFor(common);
  const startedAt = new Date();
  ui.say(
    `plan: ${o.target} connections, ${plan.workers} broker workers, ${plan.generators} generators (${plan.ranges[0]?.localAddress}…), fd limit ${plan.fdLimit}`,
  );
  const target = common.url
    ? await attachTarget({
        url: common.url,
        jwtSecret: common.jwtSecret,
        natsUrl: common.natsUrl,
        cassandra: common.cassandra,
      })
    : await startNodeTarget({
        workers: plan.workers,
        natsUrl: common.natsUrl,
        cassandra: common.cassandra,
        keyspace: common.keyspace,
        keepKeyspace: common.keepKeyspace,
        say: (l) => ui.say(l),
      });
  const { sampler, setGenerators } = startSampling(target);
  // Epoch ms of each stage's edges; the report gives them in seconds from the ramp's start.
  const marks = {
    mixFrom: 0,
    mixTo: 0,
    baselineFrom: 0,
    baselineTo: 0,
    rampFrom: 0,
    rampTo: 0,
    holdFrom: 0,
    holdTo: 0,
    closeFrom: 0,
    closeTo: 0,
    afterTo: 0,
  };
  let fleet: Fleet | undefined;
  try {
    ui.say(`measuring the idle node for ${o.settle / 1000} s (baseline)…`);
    marks.baselineFrom = Date.now();
    await sleep(o.settle);
    const gc: GcPoints = {};
    const measureGc = async (): Promise<GcMeasurement | undefined> =>
      target.probeDir === undefined ? undefined : measureAfterGc(target.brokerPids(), target.probeDir);
    gc.baseline = await measureGc();
    // V8 gives the pages a GC freed back over a second or two; read /proc after that.
    await sleep(GC_RELEASE_MS);
    const nodeMem: ConnectionsReport['nodeMemory'] = { baseline: nodeMemory(target.brokerPids()) };
    const kernel: ConnectionsReport['kernel'] = { baseline: kernelMemory() };
    marks.baselineTo = Date.now();
    const f = await Fleet.start(plan, {
      runId: newRunId(),
      base: target.nodes[0]!.wsBase,
      jwtSecret: target.jwtSecret,
      visitorPercent: o.visitorPercent,
      tenants: o.tenants,
      concurrency: o.concurrency,
      totalRampRate: o.rampRate,
      pingIntervalMs: o.pingInterval,
      totalSenders: o.senders,
      totalSendRate: o.sendRate,
    });
    fleet = f;
    setGenerators(() => f.pids());
    ui.begin('connections', o.target);
    let lastOpened = 0;
    const poll = setInterval(() => {
      const c = f.current();
      ui.update(
        c.opened,
        `| ${c.opened - lastOpened}/s | open ${c.open} | failed ${c.failed} | generator loop ${Math.round(c.elu * 100)} %`,
      );
      lastOpened = c.opened;
    }, PROGRESS_POLL_MS);
    const rampDone = await f.ramp();
    clearInterval(poll);
    ui.end();
    marks.rampFrom = f.startAt;
    marks.rampTo = Math.max(...rampDone.map((r) => r.lastAt || f.startAt));
    const opened = rampDone.reduce((a, r) => a + r.opened, 0);
    ui.say(
      `ramp: ${opened} of ${o.target} opened in ${((marks.rampTo - f.startAt) / 1000).toFixed(1)} s; settling ${o.settle / 1000} s`,
    );
    await sleep(o.settle);
    marks.holdFrom = Date.now();
    const holdS = Math.ceil(o.hold / 1000);
    ui.begin('hold (s)', holdS);
    for (let s = 1; s <= holdS && !signal.aborted; s++) {
      await sleep(1000);
      const c = f.current();
      ui.update(s, `| open ${c.open} | dropped ${c.dropped} | generator loop ${Math.round(c.elu * 100)} %`);
    }
    ui.end();
    marks.holdTo = Date.now();
    const heldAtEnd = f.current().open;
    gc.held = await measureGc();
    await sleep(GC_RELEASE_MS);
    nodeMem.held = nodeMemory(target.brokerPids());
    kernel.held = kernelMemory();
    let mix: MixResult | undefined;
    if (o.senders > 0 && o.mix > 0 && !signal.aborted) {
      ui.say(
        `mixed load: ${o.senders} senders at ${o.sendRate} msg/s for ${o.mixWarmup / 1000} s of warm-up and ${o.mix / 1000} s among ${heldAtEnd} held`,
      );
      const sendFrom = Date.now();
      f.setSending(true);
      await sleep(o.mixWarmup);
      // The window opens once every sender's conversation has started (its first message acknowledged)
      // and the start's backlog has drained (few sends outstanding, for MIX_SETTLED_MS), however long that
      // takes beyond --mix-warmup, up to MIX_START_MAX_MS. 2 000 conversations starting at once kept a
      // 6-worker node busy for 15-25 s, and a fixed 10 s put that start in the window. Waiting for the
      // starts alone still let acks of warm-up sends land in it (acked exceeded sent by up to 416, and the
      // window's ack p99 went from ~100 ms to ~1 s in those runs, on either code; 2026-12-08).
      const settledAt = mixSettledPending(o.sendRate);
      let settledSince: number | undefined;
      while (Date.now() - sendFrom < MIX_START_MAX_MS && !signal.aborted) {
        const senders = f.current();
        if (senders.startedSenders >= o.senders && senders.pending <= settledAt) {
          settledSince ??= Date.now();
          if (Date.now() - settledSince >= MIX_SETTLED_MS) break;
        } else settledSince = undefined;
        await sleep(MIX_START_POLL_MS);
      }
      const started = f.current().startedSenders;
      const pendingAtWindow = f.current().pending;
      marks.mixFrom = Date.now();
      f.beginWindow();
      await sleep(o.mix);
      marks.mixTo = Date.now();
      const lat = f.endWindow();
      // Tick n reports the totals at startAt + (n + 1) s: the last one before the window is its zero.
      const tl = f.timeline();
      const zero = tl.filter((x) => f.startAt + (x.t + 1) * 1000 <= marks.mixFrom).at(-1);
      const end = tl.at(-1);
      mix = {
        senders: o.senders,
        offeredRate: o.sendRate,
        warmupMs: marks.mixFrom - sendFrom,
        startedSenders: started,
        pendingAtWindow,
        durationMs: marks.mixTo - marks.mixFrom,
        sent: (end?.sent ?? 0) - (zero?.sent ?? 0),
        acked: (end?.acked ?? 0) - (zero?.acked ?? 0),
        delivered: (end?.delivered ?? 0) - (zero?.delivered ?? 0),
        ack: lat.ack,
        delivery: lat.delivery,
        resources: summarizeResources(sampler.between(marks.mixFrom, marks.mixTo)),
        memory: nodeMemory(target.brokerPids()),
      };
    }
    const storms: StormResult[] = [];
    for (const kind of o.storm) {
      if (signal.aborted) break;
      // A storm measures the way back from everything held: after one that ran out of time, the next waits
      // (up to --storm-timeout again) for the clients still reconnecting, or it would start short and not
      // be measured at all.
      const backBy = Date.now() + o.stormTimeout;
      if (storms.length > 0 && f.current().open < heldAtEnd) {
        ui.say(
          `waiting for ${heldAtEnd - f.current().open} clients still reconnecting before the ${kind} storm…`,
        );
        while (f.current().open < heldAtEnd && Date.now() < backBy && !signal.aborted)
          await sleep(STORM_WAIT_POLL_MS);
      }
      const from = Date.now();
      const storm = await runStorm(kind, f, target, o.stormTimeout, (l) => ui.say(l));
      // Who had the CPU while the clients came back: at 100k on 2 shared cores it was not the broker.
      storm.resources = summarizeResources(sampler.between(from, Date.now()));
      storms.push(storm);
    }
    f.setSending(false);
    let ackCheck: AckCheck | undefined;
    let unanswered = 0;
    let unansweredExamples: string[] = [];
    let sendErrors: Record<string, number> = {};
    let sendRetried: Record<string, number> = {};
    if (o.senders > 0) {
      const until = Date.now() + DRAIN_SENDS_MS;
      // Ask the generators themselves, not their last tick: a send a generator started just before it
      // heard that sending stopped is still unanswered although its last tick said 0 pending.
      let reports = await f.acked();
      while (reports.some((r) => r.unanswered > 0) && Date.now() < until) {
        await sleep(1000);
        reports = await f.acked();
      }
      unanswered = reports.reduce((a, r) => a + r.unanswered, 0);
      unansweredExamples = reports.flatMap((r) => r.unansweredExamples);
      sendErrors = sumRecords(reports.map((r) => r.errors));
      sendRetried = sumRecords(reports.map((r) => r.retried));
      const acked = reports.flatMap((r) => r.acked);
      ui.say(`checking ${acked.length} acknowledged messages against Cassandra…`);
      ackCheck = await checkAcked(common.cassandra, common.keyspace, acked);
    }
    ui.say(`closing every socket…`);
    marks.closeFrom = Date.now();
    const closed = await f.closeAll();
    marks.closeTo = Date.now();
    await sleep(o.settle);
    gc.afterClose = await measureGc();
    marks.afterTo = Date.now();
    nodeMem.afterClose = nodeMemory(target.brokerPids());
    const timeline = f.timeline();
    const holdSeconds = timeline.filter(
      (x) => f.startAt + x.t * 1000 >= marks.holdFrom && f.startAt + (x.t + 1) * 1000 <= marks.holdTo,
    );
    const baseline = summarizeResources(sampler.between(marks.baselineFrom, marks.baselineTo));
    const rampRes = summarizeResources(sampler.between(f.startAt, marks.rampTo));
    const holdRes = summarizeResources(sampler.between(marks.holdFrom, marks.holdTo));
    const afterRes = summarizeResources(sampler.between(marks.closeTo, marks.afterTo));
    const report: ConnectionsReport = {
      ...reportHeader('connections', startedAt, common.command),
      target: { description: target.description, nodes: target.nodes, keyspace: common.keyspace },
      options: o,
      plan,
      ramp: {
        opened,
        failed: rampDone.reduce((a, r) => a + r.failed, 0),
        failures: sumRecords(rampDone.map((r) => r.failures)),
        refused: rampDone.reduce((a, r) => a + (r.refused ?? 0), 0),
        resets: rampDone.reduce((a, r) => a + (r.resets ?? 0), 0),
        byWorker: sumRecords(rampDone.map((r) => r.byWorker)),
        durationMs: marks.rampTo - f.startAt,
        handshake: mergeEncoded(rampDone.map((r) => r.handshake)),
        resources: rampRes,
      },
      hold: {
        durationMs: marks.holdTo - marks.holdFrom,
        heldAtEnd,
        minHeld: Math.min(heldAtEnd, ...holdSeconds.map((x) => x.open)),
        dropped: f.current().dropped,
        dropCodes: sumRecords(closed.map((c) => c.dropCodes)),
        pingRtt: mergeEncoded(closed.map((c) => c.rtt)),
        pingsSent: timeline.at(-1)?.pingsSent ?? 0,
        pongs: timeline.at(-1)?.pongs ?? 0,
        resources: holdRes,
      },
      baseline,
      afterClose: { resources: afterRes, closeMs: marks.closeTo - marks.closeFrom },
      memory: memoryFigures(baseline, holdRes, afterRes, heldAtEnd, gc),
      gc,
      nodeMemory: nodeMem,
      kernel,
      ...(mix ? { mix } : {}),
      storms,
      sends: {
        unanswered,
        unansweredExamples,
        errors: sendErrors,
        retried: sendRetried,
        ...(ackCheck ? { check: ackCheck } : {}),
      },
      reconnectFailures: sumRecords(closed.map((c) => c.reconnectFailures)),
      limits: analyseLimits({
        resources: rampRes,
        generatorElu: [Math.max(0, ...timeline.map((x) => x.maxGeneratorElu))],
        failedRatio: (o.target - heldAtEnd) / o.target,
      }),
      marks: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, (v - f.startAt) / 1000])),
      timeline,
      resourceSeries: sampler.samples.map((s) => ({
        t: (s.at - f.startAt) / 1000,
        brokerRssBytes: s.groups['broker']?.rssBytes ?? 0,
        brokerHeapUsedBytes: s.groups['broker']?.heapUsedBytes ?? null,
        brokerCpuCores: s.groups['broker']?.cpuCores ?? 0,
        generatorsCpuCores: s.groups['generators']?.cpuCores ?? 0,
        natsRssBytes: s.groups['nats']?.rssBytes ?? 0,
        natsCpuCores: s.groups['nats']?.cpuCores ?? 0,
        machineBusy: s.machineBusy,
      })),
    };
    const paths = reportPaths(common.out, 'connections', startedAt);
    const files = writeReport(paths, report, connectionsMarkdown(report, paths), connectionsCharts(report));
    const m = report.memory;
    const summary =
      `connections: held ${heldAtEnd} of ${o.target} (ramp ${(report.ramp.durationMs / 1000).toFixed(1)} s, ${report.ramp.failed} failed); ` +
      `broker RSS ${Math.round(m.rssPerConnNet)} B/connection net (${Math.round(m.rssPerConnRaw)} raw), ` +
      `heap ${m.heapPerConnNet === null ? '?' : Math.round(m.heapPerConnNet)} B/connection net, handshake p99 ${formatMs(report.ramp.handshake.p99Ms)}`;
    return { files, summary, report };
  } finally {
    sampler.stop();
    await fleet?.stop();
    ui.say('stopping…');
    await target.stop();
  }
}
