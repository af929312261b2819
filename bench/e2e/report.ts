/**
 * The e2e report: Markdown sections and SVG charts for one run (a fixed-rate phase or a sweep). The
 * `cluster` scenario reuses the sections for each cluster size.
 */
import { stageMarkdown } from '../lib/profile-stages.js';
import type { GroupStats } from '../lib/sampler.js';
import { formatBytes, formatMs, formatRate } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import { errorTotal } from './messages.js';
import type { E2eRun, PhaseReport } from './run.js';
import type { Objective } from './sweep.js';

const MIB = 1024 * 1024;

/** The phase a run is summarised by: the best one meeting the objective in a sweep, else the only one. */
export function headlinePhase(run: E2eRun): PhaseReport | undefined {
  if (!run.sweep) return run.phases[0];
  const met = run.phases.filter((p) => p.verdict.met);
  return met.sort((a, b) => b.offeredRate - a.offeredRate)[0] ?? run.phases[0];
}

export function e2eCharts(run: E2eRun, objective: Objective, prefix = ''): Chart[] {
  return run.sweep ? sweepCharts(run, objective, prefix) : phaseCharts(run.phases[0], objective, prefix);
}

function phaseCharts(p: PhaseReport | undefined, o: Objective, prefix: string): Chart[] {
  if (!p) return [];
  const s = p.series;
  const warm = [{ from: 0, to: p.warmupMs / 1000, label: 'warm-up' }];
  const at = (f: (x: (typeof s)[number]) => number) => s.map((x) => [x.t + 1, f(x)] as const);
  const rs = p.resourceSeries;
  const rat = (f: (x: (typeof rs)[number]) => number) => rs.map((x) => [x.t, f(x)] as const);
  return [
    {
      name: `${prefix}latency`,
      svg: lineChart({
        title: `Latency per second at ${formatRate(p.offeredRate)} msg/s offered`,
        xLabel: 'seconds',
        yLabel: 'ms from scheduled send',
        logY: true,
        bands: warm,
        hline: { y: o.p99Ms, label: `objective p99 ${o.p99Ms} ms` },
        series: [
          { name: 'delivery p50', points: at((x) => x.delivery.p50Ms) },
          { name: 'delivery p99', points: at((x) => x.delivery.p99Ms) },
          { name: 'delivery p99.9', points: at((x) => x.delivery.p999Ms) },
          { name: 'ack p50', points: at((x) => x.ack.p50Ms), dashed: true },
          { name: 'ack p99', points: at((x) => x.ack.p99Ms), dashed: true },
        ],
      }),
    },
    {
      name: `${prefix}throughput`,
      svg: lineChart({
        title: 'Throughput per second',
        xLabel: 'seconds',
        yLabel: 'messages / s',
        bands: warm,
        series: [
          { name: 'offered', points: at(() => p.offeredRate), dashed: true },
          { name: 'sent', points: at((x) => x.counts.sent) },
          { name: 'delivered', points: at((x) => x.counts.delivered) },
          { name: 'acked', points: at((x) => x.counts.acked) },
          { name: 'busy', points: at((x) => x.counts.busy) },
          { name: 'errors', points: at((x) => errorTotal(x.counts) + x.counts.lostAck) },
        ],
      }),
    },
    {
      name: `${prefix}memory`,
      svg: lineChart({
        title: 'Broker memory (all node processes)',
        xLabel: 'seconds',
        yLabel: 'MiB',
        bands: warm,
        series: [
          { name: 'RSS', points: rat((x) => x.brokerRssBytes / MIB) },
          ...(rs.some((x) => x.brokerHeapUsedBytes !== undefined)
            ? [{ name: 'V8 heap used', points: rat((x) => (x.brokerHeapUsedBytes ?? 0) / MIB) }]
            : []),
        ],
      }),
    },
    {
      name: `${prefix}cpu`,
      svg: lineChart({
        title: 'CPU by process group',
        xLabel: 'seconds',
        yLabel: 'cores',
        bands: warm,
        series: [
          { name: 'broker', points: rat((x) => x.brokerCpuCores) },
          { name: 'generators', points: rat((x) => x.generatorsCpuCores) },
          { name: 'nats', points: rat((x) => x.natsCpuCores) },
          { name: 'cassandra', points: rat((x) => x.cassandraCpuCores) },
        ],
      }),
    },
  ];
}

function sweepCharts(run: E2eRun, o: Objective, prefix: string): Chart[] {
  const ps = [...run.phases].sort((a, b) => a.offeredRate - b.offeredRate);
  const by = (f: (p: PhaseReport) => number) => ps.map((p) => [p.offeredRate, f(p)] as const);
  const cpu = (f: (g: Record<string, GroupStats>) => GroupStats) =>
    by((p) => f(p.resources.groups).meanCpuCores);
  return [
    {
      name: `${prefix}sweep-latency`,
      svg: lineChart({
        title: 'Latency by offered rate',
        xLabel: 'offered msg/s',
        yLabel: 'ms',
        logY: true,
        hline: { y: o.p99Ms, label: `objective p99 ${o.p99Ms} ms` },
        series: [
          { name: 'delivery p50', points: by((p) => p.delivery.p50Ms) },
          { name: 'delivery p99', points: by((p) => p.delivery.p99Ms) },
          { name: 'delivery p99.9', points: by((p) => p.delivery.p999Ms) },
          { name: 'ack p99', points: by((p) => p.ack.p99Ms), dashed: true },
        ],
      }),
    },
    {
      name: `${prefix}sweep-throughput`,
      svg: lineChart({
        title: 'Delivered by offered rate',
        xLabel: 'offered msg/s',
        yLabel: 'messages / s',
        series: [
          { name: 'offered (ideal)', points: by((p) => p.offeredRate), dashed: true },
          { name: 'delivered', points: by((p) => p.rates.deliveredPerS) },
          { name: 'busy answers / s', points: by((p) => p.counts.busy / (p.measuredMs / 1000 || 1)) },
        ],
      }),
    },
    {
      name: `${prefix}sweep-cpu`,
      svg: lineChart({
        title: 'CPU by offered rate (mean over each step)',
        xLabel: 'offered msg/s',
        yLabel: 'cores',
        series: [
          { name: 'broker', points: cpu((g) => g['broker']!) },
          { name: 'generators', points: cpu((g) => g['generators']!) },
          { name: 'nats', points: cpu((g) => g['nats']!) },
          { name: 'cassandra', points: cpu((g) => g['cassandra']!) },
        ],
      }),
    },
    {
      name: `${prefix}sweep-memory`,
      svg: lineChart({
        title: 'Broker RSS by offered rate (max over each step)',
        xLabel: 'offered msg/s',
        yLabel: 'MiB',
        series: [{ name: 'RSS', points: by((p) => p.resources.groups.broker.maxRssBytes / MIB) }],
      }),
    },
  ];
}

/** The per-phase results table. */
export function phaseTable(phases: readonly PhaseReport[]): string {
  const ms = (x: number): string => formatMs(x);
  return mdTable(
    [
      'offered msg/s',
      'delivered msg/s',
      'delivery p50 / p90 / p99 / p99.9 / max',
      'delivery mean',
      'ack p50 / p99 / p99.9 / max',
      'busy',
      'errors',
      'lost',
      'broker CPU (cores)',
      'broker RSS',
      'gen. loop busy',
      'objective',
    ],
    phases.map((p) => {
      const d = p.delivery;
      const a = p.ack;
      const errs =
        Object.entries(p.counts.errors)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '0';
      return [
        formatRate(p.offeredRate),
        formatRate(p.rates.deliveredPerS),
        `${ms(d.p50Ms)} / ${ms(d.p90Ms)} / ${ms(d.p99Ms)} / ${ms(d.p999Ms)} / ${ms(d.maxMs)}`,
        ms(d.meanMs),
        `${ms(a.p50Ms)} / ${ms(a.p99Ms)} / ${ms(a.p999Ms)} / ${ms(a.maxMs)}`,
        p.counts.busy,
        errs,
        `${p.counts.lostAck} ack, ${p.counts.lostDelivery} delivery`,
        p.resources.groups.broker.meanCpuCores.toFixed(2),
        formatBytes(p.resources.groups.broker.maxRssBytes),
        `${Math.round(Math.max(0, ...p.generatorElu) * 100)} %`,
        p.verdict.met ? 'met' : `missed: ${p.verdict.reasons.join('; ')}`,
      ];
    }),
  );
}

/** Setup, results, charts and limits of one run, as Markdown (headings start at `level`). */
export function runSections(
  run: E2eRun,
  objective: Objective,
  paths: ReportPaths,
  prefix = '',
  level = 2,
): string {
  const h = '#'.repeat(level);
  const s = run.setup;
  const out: string[] = [];
  out.push(`${h} Results\n`, phaseTable(run.phases), '');
  if (run.sweep) {
    out.push(
      run.sweep.bestRate === null
        ? `**No step met the objective** (${objective.metric} p99 ≤ ${objective.p99Ms} ms).`
        : `**Highest offered rate meeting the objective** (${objective.metric} p99 ≤ ${objective.p99Ms} ms, ≤ ${(objective.maxFailedRatio * 100).toFixed(1)} % failed, ≥ ${Math.round(objective.minDeliveredRatio * 100)} % delivered): **${formatRate(run.sweep.bestRate)} msg/s**` +
            (run.sweep.capped
              ? " — the sweep's ceiling (--sweep-max): the capacity is higher; raise it."
              : '.'),
      '',
    );
  }
  out.push(`${h} Charts\n`);
  for (const c of e2eCharts(run, objective, prefix)) out.push(mdImage(c.name, paths.chartFile(c.name)), '');
  out.push(`${h} What limited it\n`);
  run.phases.forEach((p) => {
    out.push(`- **${formatRate(p.offeredRate)} msg/s** — limit: ${p.limits.limitedBy}.`);
    for (const n of p.limits.notes) out.push(`  - ${n}`);
    out.push(
      `  - Generator sends behind schedule: p99 ${formatMs(p.sendLag.p99Ms)}, max ${formatMs(p.sendLag.maxMs)}.`,
    );
  });
  const profiled = run.phases.filter((p) => p.profile !== undefined);
  if (profiled.length > 0) {
    out.push('', `${h} Where the broker's main thread spends its time (--profile)\n`);
    out.push(
      'CPU profiles of each broker process over the measured window, every sample given to one stage of a ' +
        "message's way (rules in bench/lib/profile-stages.ts, recipe in BENCHMARKS.md), per delivered message.",
      '',
    );
    for (const p of profiled) {
      if (!p.profile) continue;
      out.push(`**${formatRate(p.offeredRate)} msg/s offered**\n`, stageMarkdown(p.profile), '');
    }
  }
  out.push('', `${h} Setup\n`);
  out.push(
    mdTable(
      [
        'sockets',
        'conversations',
        'failed to open',
        'socket failures',
        'sockets per broker worker',
        'setup time',
      ],
      [
        [
          s.sockets,
          s.conversations,
          `${s.conversationsFailed} ${JSON.stringify(s.conversationFailures)}`,
          JSON.stringify(s.socketFailures),
          Object.entries(s.byWorker)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', '),
          `${(s.setupMs / 1000).toFixed(1)} s`,
        ],
      ],
    ),
    '',
  );
  return out.join('\n');
}
