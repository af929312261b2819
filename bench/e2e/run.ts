/**
 * The e2e engine shared by the `e2e` and `cluster` scenarios: against a target that is already up, open
 * the conversations, then run one fixed-rate phase or a sweep, sampling resources all along, and turn each
 * phase into a PhaseReport (rates, latencies, resources, objective verdict, what limited it).
 */
import {
  analyseLimits,
  type LimitAnalysis,
  type ResourceSummary,
  summarizeResources,
} from '../lib/limits.js';
import type { StageTable } from '../lib/profile-stages.js';
import { profileWindow } from '../lib/profiles.js';
import type { Progress } from '../lib/progress.js';
import type { ResourceSampler } from '../lib/sampler.js';
import type { BrokerTarget } from '../lib/target.js';
import { formatMs, formatRate, sleep } from '../lib/units.js';
import { badSeconds, badSecondsNote } from './bad-seconds.js';
import {
  E2eLoad,
  type LoadShape,
  PHASE_START_DELAY_MS,
  type PhaseResult,
  type SecondPoint,
  type SetupSummary,
} from './load.js';
import { errorTotal, type Population } from './messages.js';
import { judge, type Objective, type SweepOptions, SweepPlan, type Verdict } from './sweep.js';

/** Pause between sweep steps, so one step's backlog (writer batches, GC) does not bleed into the next. */
const SWEEP_REST_MS = 3000;

export interface E2eRunOptions extends LoadShape {
  rate: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  objective: Objective;
  /** Sweep instead of one phase at `rate`. */
  sweep?: SweepOptions & { warmupMs: number; durationMs: number };
  /**
   * Profile the broker's main threads over each measured window (started nodes only) and report a
   * per-stage table; the raw `.cpuprofile` files are kept in this folder.
   */
  profileDir?: string;
  /**
   * An unreported phase at the first rate before the measured ones, so a freshly started Cassandra
   * (JIT, caches, first memtables) and the broker's JIT warm up outside the first step (issue #13).
   * 0 = none.
   */
  initialWarmupMs?: number;
}

export interface ResourcePoint {
  t: number;
  brokerRssBytes: number;
  brokerHeapUsedBytes?: number;
  brokerCpuCores: number;
  generatorsCpuCores: number;
  natsCpuCores: number;
  cassandraCpuCores: number;
  machineBusy: number;
  /** The longest wait of the idle stall probe for a CPU in this sample, ms (bench/lib/stall-probe.ts). */
  machineStallMs?: number;
}

export interface PhaseReport extends PhaseResult {
  rates: { offered: number; sentPerS: number; ackedPerS: number; deliveredPerS: number };
  resources: ResourceSummary;
  resourceSeries: ResourcePoint[];
  verdict: Verdict;
  limits: LimitAnalysis;
  /** Per-stage µs per delivered message from CPU profiles of the measured window (`--profile`). */
  profile?: StageTable;
}

export interface E2eRun {
  setup: SetupSummary;
  phases: PhaseReport[];
  /** `capped`: even the sweep's highest rate (--sweep-max) met the objective, so capacity is higher still. */
  sweep?: { bestRate: number | null; objective: Objective; capped: boolean };
}

export async function runE2e(
  target: BrokerTarget,
  sampler: ResourceSampler,
  population: Population,
  o: E2eRunOptions,
  ui: Progress,
  signal: AbortSignal,
  /** The load's generator pids are added to the sampler's `generators` group through this. */
  registerGenerators: (pids: () => number[]) => void,
): Promise<E2eRun> {
  ui.begin('sockets', o.conversations + Math.ceil(o.conversations / o.convsPerAgent));
  const load = await E2eLoad.start(target, population, o, (total, opened, failed) => {
    ui.update(opened, `of ${total} opened, ${failed} failed`);
  });
  const s = load.setup;
  const failedSockets = Object.values(s.socketFailures).reduce((a, b) => a + b, 0);
  ui.update(s.sockets + failedSockets, `of ${s.sockets + failedSockets} opened, ${failedSockets} failed`);
  ui.end();
  registerGenerators(() => load.generatorPids());
  ui.say(
    `setup: ${s.sockets} sockets (${JSON.stringify(s.socketFailures)} failed), ${s.conversations} conversations open ` +
      `(${s.conversationsFailed} failed ${JSON.stringify(s.conversationFailures)}) in ${(s.setupMs / 1000).toFixed(1)} s; per worker ${JSON.stringify(s.byWorker)}`,
  );
  const onAbort = (): void => load.endPhase();
  signal.addEventListener('abort', onAbort);
  const phases: PhaseReport[] = [];
  try {
    const runPhase = async (rate: number, warmupMs: number, durationMs: number): Promise<PhaseReport> => {
      const seconds = Math.ceil((warmupMs + durationMs) / 1000);
      ui.begin(`${formatRate(rate)} msg/s`, seconds);
      const profiling =
        o.profileDir !== undefined && target.probeDir !== undefined
          ? profileWindow(
              target.probeDir,
              `p${phases.length}-${Math.round(rate)}`,
              PHASE_START_DELAY_MS + warmupMs,
              durationMs,
              o.profileDir,
            )
          : undefined;
      let result: PhaseResult;
      try {
        result = await load.runPhase({ rate, warmupMs, durationMs, drainMs: o.drainMs }, (p) =>
          ui.update(Math.min(seconds, p.t + 1), liveInfo(p, warmupMs)),
        );
      } catch (err) {
        profiling?.cancel();
        throw err;
      }
      ui.end();
      const report = phaseReport(result, sampler, o.objective);
      const table = await profiling?.collect(result.counts.delivered);
      if (table) report.profile = table;
      ui.say(phaseLine(report, o.objective));
      return report;
    };
    const firstRate = o.sweep ? o.sweep.from : o.rate;
    if ((o.initialWarmupMs ?? 0) > 0 && !signal.aborted) {
      const seconds = Math.ceil((o.initialWarmupMs ?? 0) / 1000);
      ui.begin(`warm-up at ${formatRate(firstRate)} msg/s (not reported)`, seconds);
      await load.runPhase(
        { rate: firstRate, warmupMs: o.initialWarmupMs ?? 0, durationMs: 1000, drainMs: 2000 },
        (p) => ui.update(Math.min(seconds, p.t + 1), liveInfo(p, o.initialWarmupMs ?? 0)),
      );
      ui.end();
      await sleep(SWEEP_REST_MS);
    }
    if (!o.sweep) {
      // Interrupted during the setup: nothing to measure (the listener above only sees later aborts).
      if (!signal.aborted) phases.push(await runPhase(o.rate, o.warmupMs, o.durationMs));
      return { setup: s, phases };
    }
    const plan = new SweepPlan(o.sweep);
    for (let rate = plan.next(); rate !== undefined && !signal.aborted; rate = plan.next()) {
      const report = await runPhase(rate, o.sweep.warmupMs, o.sweep.durationMs);
      phases.push(report);
      plan.record(rate, report.verdict.met);
      await sleep(SWEEP_REST_MS);
    }
    const best = plan.best ?? null;
    const capped = best !== null && best >= o.sweep.max;
    return { setup: s, phases, sweep: { bestRate: best, objective: o.objective, capped } };
  } finally {
    signal.removeEventListener('abort', onAbort);
    await load.stop();
  }
}

function liveInfo(p: SecondPoint, warmupMs: number): string {
  const c = p.counts;
  const errors = errorTotal(c) + c.lostAck;
  const stage = p.measured ? '' : p.t * 1000 < warmupMs ? ' (warm-up)' : ' (drain)';
  return `| sent ${c.sent}/s delivered ${c.delivered}/s | delivery p99 ${formatMs(p.delivery.p99Ms)} | busy ${c.busy} errors ${errors}${stage}`;
}

function phaseLine(r: PhaseReport, o: Objective): string {
  const verdict = r.verdict.met ? 'meets' : `misses (${r.verdict.reasons.join('; ')})`;
  return (
    `${formatRate(r.offeredRate)} msg/s offered: delivered ${formatRate(r.rates.deliveredPerS)}/s, ` +
    `delivery p50 ${formatMs(r.delivery.p50Ms)} p99 ${formatMs(r.delivery.p99Ms)} max ${formatMs(r.delivery.maxMs)}, ` +
    `ack p99 ${formatMs(r.ack.p99Ms)}, busy ${r.counts.busy}, errors ${errorTotal(r.counts)} — ` +
    `${verdict} the objective (${o.metric} p99 ≤ ${o.p99Ms} ms); limit: ${r.limits.limitedBy}`
  );
}

export function phaseReport(
  result: PhaseResult,
  sampler: ResourceSampler,
  objective: Objective,
): PhaseReport {
  const measuredFrom = result.startAt + result.warmupMs;
  const measuredTo = measuredFrom + result.measuredMs;
  const window = sampler.between(measuredFrom, measuredTo);
  const resources = summarizeResources(window);
  const secs = result.measuredMs / 1000 || 1;
  const c = result.counts;
  const resourceSeries = sampler.between(result.startAt, result.endAt).map((x) => {
    const p: ResourcePoint = {
      t: (x.at - result.startAt) / 1000,
      brokerRssBytes: x.groups['broker']?.rssBytes ?? 0,
      brokerCpuCores: x.groups['broker']?.cpuCores ?? 0,
      generatorsCpuCores: x.groups['generators']?.cpuCores ?? 0,
      natsCpuCores: x.groups['nats']?.cpuCores ?? 0,
      cassandraCpuCores: x.groups['cassandra']?.cpuCores ?? 0,
      machineBusy: x.machineBusy,
    };
    const heap = x.groups['broker']?.heapUsedBytes;
    if (heap !== undefined) p.brokerHeapUsedBytes = heap;
    if (x.machineStallMs !== undefined) p.machineStallMs = x.machineStallMs;
    return p;
  });
  const limits = analyseLimits({
    resources,
    generatorElu: result.generatorElu,
    sendLagP99Ms: result.sendLag.p99Ms,
    latencyP99Ms: objective.metric === 'ack' ? result.ack.p99Ms : result.delivery.p99Ms,
    busyAnswers: c.busy,
    failedRatio:
      c.scheduled === 0 ? 0 : (errorTotal(c) + Math.max(c.lostAck, c.lostDelivery) + c.notSent) / c.scheduled,
  });
  const bad = badSecondsNote(
    badSeconds(result.series, resourceSeries, objective.metric, objective.p99Ms),
    Math.round(secs),
  );
  if (bad !== undefined) limits.notes.push(bad);
  return {
    ...result,
    rates: {
      offered: result.offeredRate,
      sentPerS: c.sent / secs,
      ackedPerS: c.acked / secs,
      deliveredPerS: c.delivered / secs,
    },
    resources,
    resourceSeries,
    verdict: judge(result, objective),
    limits,
  };
}
