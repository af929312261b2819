/**
 * The peers report: one row per system with its capacity (best rate meeting the objective in a sweep, else
 * what it delivered), the ratio to Switchboard, latency at the first (common) rate, and comparison charts.
 */
import { headlinePhase, phaseTable } from '../e2e/report.js';
import type { E2eRun, PhaseReport } from '../e2e/run.js';
import { METHOD } from '../e2e/scenario.js';
import { formatMs, formatRate } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import type { PeersReport } from './scenario.js';
import { PEER_DESCRIPTIONS } from './targets.js';

function capacity(run: E2eRun): number {
  if (run.sweep) return run.sweep.bestRate ?? 0;
  return run.phases[0]?.rates.deliveredPerS ?? 0;
}

/** The lowest-rate phase: every system's sweep starts at the same rate, so these compare like for like. */
function firstPhase(run: E2eRun): PhaseReport | undefined {
  return [...run.phases].sort((a, b) => a.offeredRate - b.offeredRate)[0];
}

export function peersSummary(r: PeersReport): string {
  return `peers: ${r.runs.map((x) => `${x.system} ${formatRate(capacity(x.run))} msg/s`).join(', ')}`;
}

export function peersCharts(r: PeersReport): Chart[] {
  const sorted = (run: E2eRun) => [...run.phases].sort((a, b) => a.offeredRate - b.offeredRate);
  return [
    {
      name: 'peers-throughput',
      svg: lineChart({
        title: 'Delivered by offered rate, per system',
        xLabel: 'offered msg/s',
        yLabel: 'delivered msg/s',
        series: r.runs.map((x) => ({
          name: x.system,
          points: sorted(x.run).map((p) => [p.offeredRate, p.rates.deliveredPerS] as const),
        })),
      }),
    },
    {
      name: 'peers-latency',
      svg: lineChart({
        title: 'Delivery p99 by offered rate, per system',
        xLabel: 'offered msg/s',
        yLabel: 'ms',
        logY: true,
        hline: { y: r.options.objective.p99Ms, label: `objective ${r.options.objective.p99Ms} ms` },
        series: r.runs.map((x) => ({
          name: x.system,
          points: sorted(x.run).map((p) => [p.offeredRate, p.delivery.p99Ms] as const),
        })),
      }),
    },
  ];
}

export function peersMarkdown(r: PeersReport, paths: ReportPaths): string {
  const o = r.options;
  const m = r.machine;
  const base = r.runs.find((x) => x.system === 'switchboard');
  const baseCap = base ? capacity(base.run) : 0;
  const rows = r.runs.map((x) => {
    const first = firstPhase(x.run);
    const cap = capacity(x.run);
    // Every server-side process the system needs (its broker, NATS, Cassandra), per delivered message.
    const g = first?.resources.groups;
    const serverCores = g ? g.broker.meanCpuCores + g.nats.meanCpuCores + g.cassandra.meanCpuCores : 0;
    const perMsg =
      first && first.rates.deliveredPerS > 0 ? (serverCores / first.rates.deliveredPerS) * 1e6 : 0;
    return [
      x.system,
      PEER_DESCRIPTIONS[x.system],
      x.run.sweep
        ? `${formatRate(cap)}${x.run.sweep.capped ? ' (sweep ceiling)' : ''}`
        : `${formatRate(cap)} (delivered at ${formatRate(o.rate)})`,
      baseCap > 0 ? `${(cap / baseCap).toFixed(2)} ×` : '–',
      first
        ? `${formatRate(first.offeredRate)}: ${formatMs(first.delivery.p50Ms)} / ${formatMs(first.delivery.p99Ms)}`
        : '–',
      first ? formatMs(first.ack.p99Ms) : '–',
      perMsg > 0 ? `${Math.round(perMsg)} µs` : '–',
    ];
  });
  const lines = [
    `# Switchboard bench — peers side by side, ${r.startedAt}`,
    '',
    `The same e2e relay workload (${o.conversations} conversations, open loop, ${o.bodyChars}-character messages, ${o.generators} generator processes) against each system in turn on one machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}. ` +
      `Switchboard runs ${o.workers} worker process(es); the Socket.IO relay is one process; nats-server is one (multi-threaded) process.`,
    '',
    `Command: \`${r.command}\``,
    '',
    '## Side by side',
    '',
    mdTable(
      [
        'system',
        'what it is',
        o.sweep ? 'best msg/s meeting the objective' : 'msg/s',
        'vs Switchboard',
        'delivery p50 / p99 at the first rate',
        'ack p99 at the first rate',
        'server CPU (broker + NATS + Cassandra) per delivered message',
      ],
      rows,
    ),
    '',
    'Read the ratios with the guarantees in mind: only Switchboard and the two "persist" variants ack after storing the message; ' +
      'only Switchboard keeps per-conversation order (seq), de-duplicates retries (cmid), checks who may write to a conversation and fans out across nodes. ' +
      'The peers get the recipient from the client (`to`), which Switchboard works out itself.',
    '',
    mdImage('peers-throughput', paths.chartFile('peers-throughput')),
    '',
    mdImage('peers-latency', paths.chartFile('peers-latency')),
    '',
  ];
  for (const x of r.runs) {
    const h = headlinePhase(x.run);
    lines.push(`## ${x.system} — ${x.description}`, '', phaseTable(x.run.phases), '');
    if (h)
      lines.push(
        `Limit at ${formatRate(h.offeredRate)} msg/s: ${h.limits.limitedBy}. ${h.limits.notes.join(' ')}`,
        '',
      );
  }
  lines.push(METHOD);
  return `${lines.join('\n')}\n`;
}
