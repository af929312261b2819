/**
 * `npm run bench -- faults`: the project's own Jepsen-style fault checker (issue #12). It starts, on this
 * machine, 3 nats-servers (a JetStream cluster), one Cassandra and 3 broker members, each broker in a
 * network namespace of its own (bench/faults/netns.ts); drives ~40 conversations whose visitors pipeline
 * and retry with the same cmid across reconnects while agents receive (clients.ts); runs a fault schedule
 * (schedule.ts); then stops the faults, keeps retrying every unacked cmid, quiesces, reads the run's
 * keyspace from Cassandra (history.ts) and scores every cmid (classify.ts). Writes
 * bench/results/faults-<timestamp>.{json,md}; the verdict fails on any violation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CASSANDRA_LOCAL_DATA_CENTER } from '../../src/stack/cassandra.js';
import { CLI_PATH } from '../lib/cli-process.js';
import { type CommonOptions, newRunId, progressFor } from '../lib/common.js';
import { sleep } from '../lib/units.js';
import { reportHeader, reportPaths, writeReport } from '../report/write.js';
import { type Classification, classify, type FaultRecovery, perSecond, recovery } from './classify.js';
import { FaultLoad, type LoadRecord, seededRandom } from './clients.js';
import { readHistory } from './history.js';
import { createNetwork, ensureNetworkTools, type Network } from './netns.js';
import { faultsCharts, faultsMarkdown, faultsSummary } from './report.js';
import {
  buildSchedule,
  DEFAULT_LEASE_TTL_MS,
  FAULT_KINDS,
  type FaultEvent,
  type FaultKind,
  injectFault,
  type Schedule,
} from './schedule.js';
import { type ShardSample, ShardWatch, type ShardWindow } from './shards.js';
import {
  type BrokerNode,
  brokerNode,
  brokerReady,
  FAULTS_ADMIN_TOKEN,
  FAULTS_JWT_SECRET,
  type JetStreamPlacement,
  jetStreamPlacement,
  type Servers,
  startServers,
} from './topology.js';

const BROKERS = 3;
const READY_TIMEOUT_MS = 90_000;
const QUIESCE_MS = 2000;

export interface FaultsOptions {
  schedule: 'short' | 'soak';
  /** soak: how long faults are injected. */
  durationMs: number;
  seed: number;
  tenants: number;
  conversationsPerTenant: number;
  agentsPerTenant: number;
  pipeline: number;
  ratePerS: number;
  ackTimeoutMs: number;
  warmupMs: number;
  /** After the schedule: how long unacked cmids keep being retried at most. */
  settleMs: number;
  /** SB_LEASE_TTL_MS of the brokers; the broker's default when undefined. */
  leaseTtlMs: number | undefined;
  /** SB_NATS_REPLICAS of the brokers: 3 on the 3-server cluster, as `cluster up` and production set it. */
  natsReplicas: number;
  /** The brokers' `switchboard` CLI; this build's when undefined (another build can be checked). */
  brokerCli?: string;
}

export const DEFAULT_FAULTS_OPTIONS: FaultsOptions = {
  schedule: 'short',
  durationMs: 30 * 60_000,
  seed: 12,
  tenants: 4,
  conversationsPerTenant: 10,
  agentsPerTenant: 2,
  pipeline: 4,
  ratePerS: 200,
  ackTimeoutMs: 6000,
  warmupMs: 15_000,
  settleMs: 30_000,
  leaseTtlMs: undefined,
  natsReplicas: 3,
};

export interface FaultWindow extends FaultEvent {
  recovery: FaultRecovery;
  /** Error frames by code between the fault's start and the end of its observation. */
  errors: Record<string, number>;
  /** Violations by kind whose client was told between the fault's start and the end of its observation. */
  violations: Record<string, number>;
  /** Shards listed by two members at once / by none, at worst, over the same time (/admin/shards). */
  shards: ShardWindow;
  ackTimeouts: number;
}

export interface FaultsVerdict {
  pass: boolean;
  /** One line per reason it failed (empty when it passed). */
  reasons: string[];
}

export interface FaultsReport {
  schema: number;
  scenario: 'faults';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: ReturnType<typeof reportHeader>['machine'];
  options: FaultsOptions;
  runId: string;
  keyspace: string;
  topology: {
    brokers: { nodeId: string; namespace: string; address: string }[];
    nats: string[];
    cassandra: string;
    /** Where JetStream put its streams once the cluster was up (replicas per stream). */
    placement: JetStreamPlacement | undefined;
  };
  schedule: { name: string; seed: number; steps: number; faultsMs: number };
  faults: FaultWindow[];
  /** How many times each kind of fault ran. */
  faultCounts: Record<FaultKind, number>;
  load: {
    sent: number;
    acked: number;
    pushes: number;
    unackedAtEnd: number;
    errors: Record<string, number>;
    ackTimeouts: number;
    sockets: LoadRecord['sockets'];
    largestFrameBytes: number;
  };
  classification: Classification;
  /** False when the keyspace had no `cmids` table to check against the messages. */
  cmidTable: boolean;
  protocol: { counts: LoadRecord['protocolCounts']; examples: LoadRecord['protocol'] };
  /** Acks per second from t0 (the load's start). */
  acksPerSecond: number[];
  /** The brokers' own shard lists, sampled every 500 ms: double-held and unheld shards over time. */
  shardSamples: ShardSample[];
  timings: { startupMs: number; loadMs: number; settleMs: number; readMs: number; totalMs: number };
  verdict: FaultsVerdict;
  /** Set when the run ended early (a server would not start, interrupted). */
  aborted?: string;
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

/** The verdict: every violation class and protocol finding fails the run. */
export function verdictOf(c: Classification, protocol: LoadRecord['protocolCounts']): FaultsVerdict {
  const reasons: string[] = [];
  for (const [kind, n] of Object.entries(c.violationCounts)) if (n > 0) reasons.push(`${n} × ${kind}`);
  for (const [kind, n] of Object.entries(protocol)) if (n > 0) reasons.push(`${n} × ${kind}`);
  return { pass: reasons.length === 0, reasons };
}

export interface FaultsRun {
  report: FaultsReport;
  files: string[];
  summary: string;
}

export async function faultsScenario(
  common: CommonOptions,
  o: FaultsOptions,
  signal: AbortSignal,
): Promise<FaultsRun> {
  if (common.url)
    throw new Error('faults starts its own cluster (real processes it can kill); --url is not used');
  const ui = progressFor(common);
  const say = (l: string): void => ui.say(l);
  const startedAt = new Date();
  const tStart = performance.now();
  const runId = newRunId();
  const keyspace = `sbf_${runId}`;
  const random = seededRandom(o.seed);
  const leaseTtlMs = o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const schedule: Schedule = buildSchedule(o.schedule, random, {
    seed: o.seed,
    brokers: BROKERS,
    natsServers: 3,
    leaseTtlMs,
    durationMs: o.durationMs,
  });
  ensureNetworkTools(say);
  const workDir = mkdtempSync(join(tmpdir(), 'sbf-run-'));
  say(`fault run ${runId}: keyspace ${keyspace}, logs in ${workDir}`);
  let network: Network | undefined;
  let servers: Servers | undefined;
  const brokers: BrokerNode[] = [];
  let load: FaultLoad | undefined;
  let watch: ShardWatch | undefined;
  // Broker logs are kept when the run fails (or SB_FAULTS_KEEP_LOGS=1): they explain a violation.
  let keepLogs = process.env['SB_FAULTS_KEEP_LOGS'] === '1';
  try {
    network = createNetwork(BROKERS, say);
    servers = await startServers(workDir, say);
    say(`NATS ${servers.nats.urls.join(' ')}; Cassandra ${servers.cassandra.contactPoint}`);
    const settings = {
      keyspace,
      cluster: runId,
      natsUrls: servers.nats.urls,
      cassandra: servers.cassandra.contactPoint,
      leaseTtlMs: o.leaseTtlMs,
      natsReplicas: o.natsReplicas,
      logDir: workDir,
      cli: o.brokerCli ?? CLI_PATH,
    };
    for (const [i, host] of network.brokers.entries()) brokers.push(brokerNode(`b${i + 1}`, host, settings));
    // The first member creates the keyspace's schema; the others then start together.
    await brokers[0]!.start();
    await Promise.all(brokers.slice(1).map((b) => b.start()));
    for (const b of brokers) {
      if (!(await brokerReady(b, READY_TIMEOUT_MS))) throw new Error(`${b.nodeId} never owned all shards`);
    }
    const placement = await jetStreamPlacement(servers.natsMonitorUrls);
    say(`brokers ready: ${brokers.map((b) => `${b.nodeId} ${b.wsBase}`).join(', ')}`);
    const startupMs = performance.now() - tStart;

    // The load's clock is the report's t0.
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;
    load = new FaultLoad(
      {
        runId,
        tenants: o.tenants,
        conversationsPerTenant: o.conversationsPerTenant,
        agentsPerTenant: o.agentsPerTenant,
        pipeline: o.pipeline,
        ratePerS: o.ratePerS,
        ackTimeoutMs: o.ackTimeoutMs,
        jwtSecret: FAULTS_JWT_SECRET,
      },
      brokers.map((b) => b.wsBase),
      seededRandom(o.seed + 1),
      t0,
    );
    watch = new ShardWatch(brokers, FAULTS_ADMIN_TOKEN, now);
    watch.start();
    await load.start();
    const l = load;
    const status = setInterval(() => {
      const r = l.record;
      say(
        `  t=${(now() / 1000).toFixed(0)} s: sent ${r.sent.length}, acked ${r.acks.length}, unacked ${l.unacked()}, ` +
          `errors ${r.errors.length}, visitors connected ${l.connected()}`,
      );
    }, 10_000);
    const events: FaultEvent[] = [];
    try {
      say(`warm-up ${(o.warmupMs / 1000).toFixed(0)} s`);
      await sleep(o.warmupMs);
      const faultsFrom = now();
      for (const step of schedule.steps) {
        if (signal.aborted) break;
        if (schedule.durationMs !== undefined && now() - faultsFrom >= schedule.durationMs) break;
        events.push(await injectFault(step, { brokers, servers, network, now, say, signal }));
      }
    } finally {
      clearInterval(status);
    }
    const loadEndMs = now();
    load.stopProducing();
    const settleFrom = performance.now();
    say(
      `schedule done: no new messages; retrying ${load.unacked()} unacked for up to ${o.settleMs / 1000} s`,
    );
    while (load.unacked() > 0 && performance.now() - settleFrom < o.settleMs && !signal.aborted)
      await sleep(250);
    const unackedAtEnd = load.unacked();
    await sleep(QUIESCE_MS);
    load.close();
    watch.stop();
    const settleMs = performance.now() - settleFrom;
    const endMs = now();

    say('reading the messages and cmids tables');
    const readFrom = performance.now();
    const history = await readHistory(
      servers.cassandra.contactPoint,
      CASSANDRA_LOCAL_DATA_CENTER,
      keyspace,
      (tenant) => tenant.startsWith(runId),
    );
    const readMs = performance.now() - readFrom;
    const rec = load.record;
    const classification = classify({
      sent: rec.sent,
      acks: rec.acks,
      pushes: rec.pushes,
      stored: history.stored,
      cmidIndex: history.cmidIndex,
    });
    const shardWatch = watch;
    const ackTimes = rec.acks.map((a) => a.at).sort((a, b) => a - b);
    const faults: FaultWindow[] = events.map((e) => ({
      ...e,
      recovery: recovery(ackTimes, e),
      errors: countBy(
        rec.errors.filter((x) => x.at >= e.startMs && x.at < e.untilMs),
        (x) => x.code,
      ),
      ackTimeouts: rec.ackTimeouts.filter((t) => t >= e.startMs && t < e.untilMs).length,
      violations: Object.fromEntries(
        Object.entries(classification.violationTimes)
          .map(
            ([kind, times]) => [kind, times.filter((t) => t >= e.startMs && t < e.untilMs).length] as const,
          )
          .filter(([, n]) => n > 0),
      ),
      shards: shardWatch.window(e.startMs, e.untilMs),
    }));
    const faultCounts = Object.fromEntries(
      FAULT_KINDS.map((k) => [k, events.filter((e) => e.kind === k).length]),
    ) as Record<FaultKind, number>;
    const verdict = verdictOf(classification, rec.protocolCounts);
    if (!verdict.pass) keepLogs = true;
    const report: FaultsReport = {
      ...reportHeader('faults', startedAt, common.command),
      options: o,
      runId,
      keyspace,
      topology: {
        brokers: brokers.map((b) => ({ nodeId: b.nodeId, namespace: b.host.ns, address: b.host.address })),
        nats: [...servers.nats.urls],
        cassandra: servers.cassandra.contactPoint,
        placement,
      },
      schedule: {
        name: schedule.name,
        seed: schedule.seed,
        steps: events.length,
        faultsMs: Math.round(loadEndMs - o.warmupMs),
      },
      faults,
      faultCounts,
      load: {
        sent: rec.sent.length,
        acked: classification.acks,
        pushes: rec.pushes.length,
        unackedAtEnd,
        errors: countBy(rec.errors, (x) => x.code),
        ackTimeouts: rec.ackTimeouts.length,
        sockets: rec.sockets,
        largestFrameBytes: rec.largestFrameBytes,
      },
      classification,
      cmidTable: history.cmidTable,
      protocol: { counts: rec.protocolCounts, examples: rec.protocol },
      acksPerSecond: perSecond(ackTimes, endMs),
      shardSamples: watch.samples,
      timings: {
        startupMs: Math.round(startupMs),
        loadMs: Math.round(loadEndMs),
        settleMs: Math.round(settleMs),
        readMs: Math.round(readMs),
        totalMs: Math.round(performance.now() - tStart),
      },
      verdict,
      ...(signal.aborted ? { aborted: 'interrupted' } : {}),
    };
    const paths = reportPaths(common.out, 'faults', startedAt);
    const files = writeReport(paths, report, faultsMarkdown(report, paths), faultsCharts(report));
    return { report, files, summary: faultsSummary(report) };
  } catch (err) {
    keepLogs = true;
    throw err;
  } finally {
    load?.close();
    watch?.stop();
    say('stopping brokers, NATS, Cassandra; removing the network');
    await Promise.allSettled(brokers.map((b) => b.stop()));
    await servers?.stop().catch(() => {});
    network?.teardown();
    if (keepLogs) say(`logs kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}
