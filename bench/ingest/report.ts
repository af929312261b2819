/**
 * The ingest scenario's Markdown report and charts: one row per offered rate, the highest rate that met
 * the objective up front, what limited each step, and whether every acknowledged post was stored.
 */
import { formatBytes, formatMs, formatRate } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import { bestStep, type IngestReport, type IngestStep } from './scenario.js';

const rateLabel = (r: number): string => (r === 0 ? 'unlimited' : formatRate(r));
/** Chart x for the unlimited step: just right of the highest offered rate. */
function xOf(steps: readonly IngestStep[], s: IngestStep): number {
  if (s.offeredRate > 0) return s.offeredRate;
  return Math.max(s.acceptedPerS, ...steps.map((x) => x.offeredRate)) * 1.1;
}

export function ingestCharts(r: IngestReport): Chart[] {
  const steps = [...r.steps].sort((a, b) => xOf(r.steps, a) - xOf(r.steps, b));
  if (steps.length === 0) return [];
  const by = (f: (s: IngestStep) => number) => steps.map((s) => [xOf(r.steps, s), f(s)] as const);
  return [
    {
      name: 'latency',
      svg: lineChart({
        title: 'Latency by offered rate (HTTP POST → 201, → visitor msg)',
        xLabel: 'offered requests / s',
        yLabel: 'ms',
        logY: true,
        hline: { y: r.options.objectiveP99Ms, label: `objective p99 ${r.options.objectiveP99Ms} ms` },
        series: [
          { name: 'ack p50', points: by((s) => s.ack.p50Ms) },
          { name: 'ack p99', points: by((s) => s.ack.p99Ms) },
          { name: 'ack p99.9', points: by((s) => s.ack.p999Ms) },
          { name: 'delivery p50', points: by((s) => s.delivery.p50Ms), dashed: true },
          { name: 'delivery p99', points: by((s) => s.delivery.p99Ms), dashed: true },
        ],
      }),
    },
    {
      name: 'throughput',
      svg: lineChart({
        title: 'Accepted posts by offered rate',
        xLabel: 'offered requests / s',
        yLabel: 'requests / s',
        series: [
          {
            name: 'offered',
            points: by((s) => (s.offeredRate === 0 ? s.acceptedPerS : s.offeredRate)),
            dashed: true,
          },
          { name: 'accepted (2xx)', points: by((s) => s.acceptedPerS) },
          { name: 'busy (503)', points: by((s) => s.busy / s.durationS) },
        ],
      }),
    },
    {
      name: 'cpu',
      svg: lineChart({
        title: 'CPU by process group',
        xLabel: 'offered requests / s',
        yLabel: 'cores (mean)',
        series: (['broker', 'generators', 'nats', 'cassandra'] as const).map((g) => ({
          name: g === 'generators' ? 'autocannon + sockets' : g,
          points: by((s) => s.resources.groups[g].meanCpuCores),
        })),
      }),
    },
  ];
}

export function ingestMarkdown(r: IngestReport, paths: ReportPaths): string {
  const o = r.options;
  const best = bestStep(r.steps);
  const m = r.machine;
  const v = r.verify;
  const rows = r.steps.map((s) => [
    rateLabel(s.offeredRate),
    formatRate(s.acceptedPerS),
    formatMs(s.ack.p50Ms),
    formatMs(s.ack.p99Ms),
    formatMs(s.ack.p999Ms),
    formatMs(s.ack.maxMs),
    formatMs(s.delivery.p50Ms),
    formatMs(s.delivery.p99Ms),
    s.busy,
    s.rateLimited + s.otherNon2xx + s.errors,
    s.resources.groups.broker.meanCpuCores.toFixed(2),
    formatBytes(s.resources.groups.broker.maxRssBytes),
    s.met ? 'met' : 'missed',
  ]);
  const lines = [
    `# Switchboard bench — ingest, ${r.startedAt}`,
    '',
    best
      ? `Business systems posting over HTTP: **${formatRate(best.acceptedPerS)} posts/s accepted** (offered ${rateLabel(best.offeredRate)}) with ack p99 **${formatMs(best.ack.p99Ms)}** and delivery p99 ${formatMs(best.delivery.p99Ms)} — the highest step within the objective (p99 ≤ ${o.objectiveP99Ms} ms, ≤ 0.1 % failed, ≥ 99 % of a paced rate accepted). Limit: ${best.limits.limitedBy}.`
      : `No step met the objective (p99 ≤ ${o.objectiveP99Ms} ms, ≤ 0.1 % failed, ≥ 99 % of a paced rate accepted).`,
    '',
    `Stored versus acknowledged, read back over the API for ${v.conversations} conversations: ${v.acked} acknowledged, ${v.stored} stored — ` +
      (v.short.length === 0
        ? `**every acknowledged post is in history**${v.extra > 0 ? ` (${v.extra} more stored than acknowledged: posts whose answer never reached autocannon — cut off at the end of a run or timed out — after the write)` : ''}.`
        : `**${v.short.length} conversations hold fewer messages than were acknowledged** (${v.short.slice(0, 5).join(', ')}).`),
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.`,
    '',
    `- Target: ${r.target.description}; nodes ${r.target.nodes.map((n) => `${n.nodeId} (:${n.port}, ${n.workers} workers)`).join(', ')}; keyspace \`${r.target.keyspace}\``,
    `- Load: autocannon, ${o.connections} HTTP connections, \`POST /api/v1/conversations/:id/messages\` round-robin over ${r.setup.conversations} conversations of ${o.tenants} tenants, ${o.bodyChars}-character bot messages; ${r.setup.sockets} visitor sockets listening (${r.setup.socketFailures} failed to open), set up in ${r.setup.setupS.toFixed(1)} s`,
    `- Steps: warm-up ${o.stepWarmupMs / 1000} s, measured ${o.stepDurationMs / 1000} s each; the sweep stops after two missed steps`,
    `- Command: \`${r.command}\``,
    '',
    '## Steps',
    '',
    mdTable(
      [
        'offered/s',
        'accepted/s',
        'ack p50',
        'ack p99',
        'ack p99.9',
        'ack max',
        'delivery p50',
        'delivery p99',
        'busy',
        'failed',
        'broker CPU',
        'broker RSS',
        'objective',
      ],
      rows,
    ),
    '',
    mdImage('latency', paths.chartFile('latency')),
    '',
    mdImage('throughput', paths.chartFile('throughput')),
    '',
    mdImage('cpu', paths.chartFile('cpu')),
    '',
    '## What limited each step',
    '',
    ...r.steps.flatMap((s) => [`- **${rateLabel(s.offeredRate)}**: ${s.limits.notes.join(' ')}`]),
    '',
    METHOD,
  ];
  return `${lines.join('\n')}\n`;
}

const METHOD = `## How it was measured

- **autocannon** (in the bench process) keeps the HTTP connections busy; with an offered rate it paces requests at that rate over all connections and corrects its latency histogram for coordinated omission, so a stalled broker shows up as latency rather than as a lower rate. The \`unlimited\` step has no pacing: it shows the closed-loop capacity at that many connections.
- **ack latency**: the request's send → its \`201\` (the broker answers once the row is in Cassandra). **delivery latency**: the post's send time (written into the message text) → the \`msg\` frame at the conversation's visitor socket, in the same process and clock.
- \`503\` answers are the broker shedding load (\`busy\`, with Retry-After); they and every other failure count against the objective's 0.1 %. autocannon does not retry them.
- After the sweep, a sample of conversations is paged back through \`GET /api/v1/conversations/:id/messages\` and its bot messages are counted against the \`2xx\` answers each received.
- Resources come from /proc once a second (CPU and RSS per process group); the generator is this bench process (autocannon and the visitor sockets), so its CPU is reported as such.
`;
