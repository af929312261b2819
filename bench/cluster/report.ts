/** The cluster report: one row per cluster size, the scaling ratio, comparison charts, then each size's e2e sections. */
import { e2eCharts, headlinePhase, runSections } from '../e2e/report.js';
import type { E2eRun } from '../e2e/run.js';
import { METHOD } from '../e2e/scenario.js';
import { formatMs, formatRate } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import type { ClusterReport } from './scenario.js';
import type { NatsPlacement } from './target.js';

/** The figure a size is compared by: the best rate meeting the objective (sweep) or the delivered rate. */
function capacity(run: E2eRun): number {
  if (run.sweep) return run.sweep.bestRate ?? 0;
  return run.phases[0]?.rates.deliveredPerS ?? 0;
}

export function clusterSummary(r: ClusterReport): string {
  const parts = r.runs.map((x) => `${x.nodes} node(s): ${formatRate(capacity(x.run))} msg/s`);
  return `cluster: ${parts.join(', ')}`;
}

export function clusterCharts(r: ClusterReport): Chart[] {
  const charts: Chart[] = [];
  if (r.runs.every((x) => x.run.sweep)) {
    charts.push(
      {
        name: 'compare-throughput',
        svg: lineChart({
          title: 'Delivered by offered rate, per cluster size',
          xLabel: 'offered msg/s',
          yLabel: 'delivered msg/s',
          series: r.runs.map((x) => ({
            name: `${x.nodes} node(s)`,
            points: [...x.run.phases]
              .sort((a, b) => a.offeredRate - b.offeredRate)
              .map((p) => [p.offeredRate, p.rates.deliveredPerS] as const),
          })),
        }),
      },
      {
        name: 'compare-latency',
        svg: lineChart({
          title: `Delivery p99 by offered rate, per cluster size`,
          xLabel: 'offered msg/s',
          yLabel: 'ms',
          logY: true,
          hline: { y: r.options.objective.p99Ms, label: `objective ${r.options.objective.p99Ms} ms` },
          series: r.runs.map((x) => ({
            name: `${x.nodes} node(s)`,
            points: [...x.run.phases]
              .sort((a, b) => a.offeredRate - b.offeredRate)
              .map((p) => [p.offeredRate, p.delivery.p99Ms] as const),
          })),
        }),
      },
    );
  }
  for (const x of r.runs) charts.push(...e2eCharts(x.run, r.options.objective, `n${x.nodes}-`));
  return charts;
}

/**
 * Where each node's NATS connection landed. A node picks one of the 3 servers at random, so a run's member
 * traffic crosses a route between servers (both handle each message) for some pairs of nodes and not
 * others: nats-server CPU at 3 900 msg/s on 3 nodes was 0.15 cores with the nodes on 3 servers, 0.11 on
 * 2 and 0.07 on 1 (BENCHMARKS.md, thirty-second session). Reported so that runs are compared knowing it.
 */
export function placementLine(placement: readonly NatsPlacement[]): string {
  const used = new Set(placement.flatMap((p) => p.servers));
  const each = placement.map(
    (p) => `${p.node} → ${p.servers.length > 0 ? p.servers.map((s) => `nats ${s}`).join(', ') : 'not found'}`,
  );
  const crossing =
    placement.length < 2
      ? 'one node: no member traffic'
      : placement.some((p) => p.servers.length === 0)
        ? 'a node not found: routes unknown'
        : used.size === 1
          ? 'every node on one server: member traffic crosses no route'
          : `nodes on ${used.size} servers: member traffic between them crosses a NATS route`;
  return `NATS placement (read at the end of the run): ${each.join('; ')} (${crossing}).`;
}

export function clusterMarkdown(r: ClusterReport, paths: ReportPaths): string {
  const m = r.machine;
  const o = r.options;
  const base = r.runs[0] ? capacity(r.runs[0].run) : 0;
  const rows = r.runs.map((x) => {
    const h = headlinePhase(x.run);
    const cap = capacity(x.run);
    return [
      x.nodes,
      x.target.nodes.reduce((a, n) => a + n.workers, 0),
      x.run.sweep
        ? `${formatRate(cap)} (best meeting the objective${x.run.sweep.capped ? '; the sweep ceiling: capacity is higher' : ''})`
        : `${formatRate(cap)} delivered at ${formatRate(o.rate)} offered`,
      base > 0 ? `${(cap / base).toFixed(2)} ×` : '–',
      h ? `${formatMs(h.delivery.meanMs)} / ${formatMs(h.delivery.p99Ms)}` : '–',
      h ? h.resources.groups.broker.meanCpuCores.toFixed(2) : '–',
      h ? h.limits.limitedBy : '–',
    ];
  });
  const lines = [
    `# Switchboard bench — cluster, ${r.startedAt}`,
    '',
    `The e2e load against local clusters of ${o.nodes.join(' and ')} node(s) (${o.workers} worker(s) each), each with a 3-server NATS cluster and the same Cassandra, on one machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}. ` +
      `All nodes share the machine's cores, so this shows the cost of spreading conversations over nodes (cross-node deliveries through NATS) rather than the capacity added by real machines.`,
    '',
    `Command: \`${r.command}\``,
    '',
    '## Scaling',
    '',
    mdTable(
      [
        'nodes',
        'workers',
        'msg/s',
        'vs first size',
        'delivery mean / p99 (headline step)',
        'broker CPU (cores)',
        'limit',
      ],
      rows,
    ),
    '',
  ];
  if (r.runs.every((x) => x.run.sweep)) {
    lines.push(
      mdImage('compare-throughput', paths.chartFile('compare-throughput')),
      '',
      mdImage('compare-latency', paths.chartFile('compare-latency')),
      '',
    );
  }
  for (const x of r.runs) {
    lines.push(
      `## ${x.nodes} node(s): ${x.target.nodes.map((n) => `${n.nodeId} :${n.port}`).join(', ')}`,
      '',
    );
    if (x.natsPlacement) lines.push(placementLine(x.natsPlacement), '');
    lines.push(runSections(x.run, o.objective, paths, `n${x.nodes}-`, 3));
  }
  lines.push(METHOD);
  return `${lines.join('\n')}\n`;
}
