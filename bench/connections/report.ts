/**
 * The connections report: memory per connection (raw and net of the idle node), the ramp, the hold, and
 * charts of connections, memory, CPU and ping round trips over the run's timeline.
 */
import type { LatencySummary } from '../lib/histogram.js';
import type { LimitAnalysis, ResourceSummary } from '../lib/limits.js';
import type { BrokerTarget } from '../lib/target.js';
import { formatBytes, formatMs } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, type MachineInfo, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import type { ConnSecond } from './fleet.js';
import type { GcPoints, MemoryFigures } from './memory.js';
import type { ConnectionsPlan } from './plan.js';
import { type StormReportPart, stormCharts, stormMarkdown } from './report-storm.js';

const MIB = 1024 * 1024;

export interface ConnectionsReport extends StormReportPart {
  schema: number;
  scenario: 'connections';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  target: { description: string; nodes: BrokerTarget['nodes']; keyspace: string };
  options: object;
  plan: ConnectionsPlan;
  ramp: {
    opened: number;
    failed: number;
    failures: Record<string, number>;
    /** Upgrades refused `503` by the broker's admission and tried again when told. */
    refused: number;
    /** Connects reset before any answer and tried again with the backoff (absent in older reports). */
    resets?: number;
    byWorker: Record<string, number>;
    durationMs: number;
    handshake: LatencySummary;
    resources: ResourceSummary;
  };
  hold: {
    durationMs: number;
    heldAtEnd: number;
    minHeld: number;
    dropped: number;
    dropCodes: Record<string, number>;
    pingRtt: LatencySummary;
    pingsSent: number;
    pongs: number;
    resources: ResourceSummary;
  };
  baseline: ResourceSummary;
  afterClose: { resources: ResourceSummary; closeMs: number };
  memory: MemoryFigures;
  /** Broker heap and RSS right after a forced GC at the end of each stage (started targets only). */
  gc: GcPoints;
  limits: LimitAnalysis;
  /** Stage edges, seconds from the ramp's start. */
  marks: Record<string, number>;
  timeline: ConnSecond[];
  resourceSeries: {
    t: number;
    brokerRssBytes: number;
    brokerHeapUsedBytes: number | null;
    brokerCpuCores: number;
    generatorsCpuCores: number;
    natsRssBytes: number;
    natsCpuCores: number;
    machineBusy: number;
  }[];
}

export function connectionsCharts(r: ConnectionsReport): Chart[] {
  const m = r.marks;
  const bands = [
    { from: m['rampFrom'] ?? 0, to: m['rampTo'] ?? 0, label: 'ramp' },
    { from: m['holdFrom'] ?? 0, to: m['holdTo'] ?? 0, label: 'hold' },
    { from: m['closeFrom'] ?? 0, to: m['closeTo'] ?? 0, label: 'close' },
  ];
  const tl = r.timeline;
  const rs = r.resourceSeries.filter((x) => x.t >= (m['baselineFrom'] ?? 0));
  const at = (f: (x: ConnSecond) => number) => tl.map((x) => [x.t + 1, f(x)] as const);
  const rat = (f: (x: (typeof rs)[number]) => number) => rs.map((x) => [x.t, f(x)] as const);
  const hasHeap = rs.some((x) => x.brokerHeapUsedBytes !== null);
  const storms = stormCharts(r);
  return [
    ...storms,
    {
      name: 'connections',
      svg: lineChart({
        title: `Connections (target ${r.plan.target})`,
        xLabel: 'seconds from ramp start',
        yLabel: 'connections',
        bands,
        series: [
          { name: 'open', points: at((x) => x.open) },
          { name: 'failed (total)', points: at((x) => x.failed) },
          { name: 'dropped (total)', points: at((x) => x.dropped) },
        ],
      }),
    },
    {
      name: 'memory',
      svg: lineChart({
        title: 'Memory: broker (all node processes) and nats-server',
        xLabel: 'seconds from ramp start',
        yLabel: 'MiB',
        bands,
        hline: { y: r.memory.brokerRssBaseline / MIB, label: 'broker RSS baseline (idle)' },
        series: [
          { name: 'broker RSS', points: rat((x) => x.brokerRssBytes / MIB) },
          ...(hasHeap
            ? [{ name: 'broker V8 heap used', points: rat((x) => (x.brokerHeapUsedBytes ?? 0) / MIB) }]
            : []),
          { name: 'nats-server RSS', points: rat((x) => x.natsRssBytes / MIB) },
        ],
      }),
    },
    {
      name: 'cpu',
      svg: lineChart({
        title: 'CPU by process group',
        xLabel: 'seconds from ramp start',
        yLabel: 'cores',
        bands,
        series: [
          { name: 'broker', points: rat((x) => x.brokerCpuCores) },
          { name: 'generators', points: rat((x) => x.generatorsCpuCores) },
          { name: 'nats', points: rat((x) => x.natsCpuCores) },
          { name: 'machine (all)', points: rat((x) => x.machineBusy * r.baseline.cores), dashed: true },
        ],
      }),
    },
    {
      name: 'ping',
      svg: lineChart({
        title: 'Protocol ping round trip (all connections)',
        xLabel: 'seconds from ramp start',
        yLabel: 'ms',
        logY: true,
        bands,
        series: [
          { name: 'p50', points: at((x) => x.rtt.p50Ms) },
          { name: 'p99', points: at((x) => x.rtt.p99Ms) },
          { name: 'max', points: at((x) => x.rtt.maxMs), dashed: true },
        ],
      }),
    },
  ];
}

export function connectionsMarkdown(r: ConnectionsReport, paths: ReportPaths): string {
  const m = r.memory;
  const mc = r.machine;
  const perConn = (x: number | null): string => (x === null ? 'unknown (no probe)' : `${Math.round(x)} B`);
  const cpu = (s: ResourceSummary): string =>
    `broker ${s.groups.broker.meanCpuCores.toFixed(2)}, generators ${s.groups.generators.meanCpuCores.toFixed(2)}, nats ${s.groups.nats.meanCpuCores.toFixed(2)} (machine ${Math.round(s.machineBusy * 100)} %)`;
  const lines = [
    `# Switchboard bench — connections, ${r.startedAt}`,
    '',
    `Held **${r.hold.heldAtEnd} of ${r.plan.target}** authenticated connections on one node (${r.plan.workers} worker processes) for ${(r.hold.durationMs / 1000).toFixed(0)} s with pings on; ` +
      `ramp took ${(r.ramp.durationMs / 1000).toFixed(1)} s with ${r.ramp.failed} failures. ` +
      `Broker memory per connection: **${Math.round(m.rssPerConnNet)} B net** of the idle node (${Math.round(m.rssPerConnRaw)} B raw) — seed target ≤ ${m.seedBytesPerConnection} B: ${m.seedMet ? 'met' : 'not met'}.`,
    '',
    `Machine: ${mc.cpus} × ${mc.cpuModel}, ${mc.memoryGiB} GiB, Linux ${mc.kernel}, Node ${mc.node}. Target: ${r.target.description}. Command: \`${r.command}\``,
    '',
    '## Memory per connection',
    '',
    mdTable(
      ['figure', 'idle baseline', 'holding', 'per connection'],
      [
        [
          'broker RSS (supervisor + workers), mean over the window',
          formatBytes(m.brokerRssBaseline),
          formatBytes(m.brokerRssHeld),
          `${Math.round(m.rssPerConnNet)} B net, ${Math.round(m.rssPerConnRaw)} B raw`,
        ],
        ...(m.rssAfterGcBaseline === null || m.rssAfterGcHeld === null
          ? []
          : [
              [
                'broker RSS right after a forced GC',
                formatBytes(m.rssAfterGcBaseline),
                formatBytes(m.rssAfterGcHeld),
                `${perConn(m.rssAfterGcPerConnNet)} net`,
              ],
            ]),
        [
          m.heapAfterGc ? 'broker V8 heap used (live, after a forced GC)' : 'broker V8 heap used (mean)',
          m.brokerHeapBaseline === null ? '–' : formatBytes(m.brokerHeapBaseline),
          m.brokerHeapHeld === null ? '–' : formatBytes(m.brokerHeapHeld),
          `${perConn(m.heapPerConnNet)} net`,
        ],
        [
          'nats-server RSS',
          formatBytes(r.baseline.groups.nats.meanRssBytes),
          formatBytes(r.hold.resources.groups.nats.meanRssBytes),
          `${Math.round(m.natsPerConnNet)} B net`,
        ],
      ],
    ),
    '',
    `After closing every socket the broker's RSS was ${formatBytes(m.brokerRssAfterClose)} (${formatBytes(m.brokerRssHeld - m.brokerRssAfterClose)} returned; V8 and the allocator keep pages for reuse)` +
      (m.brokerHeapAfterClose === null ? '.' : ` and its heap ${formatBytes(m.brokerHeapAfterClose)}.`),
    '',
    'An idle worker keeps tens of MiB of free heap and allocator slack that new connections fill first, so the net RSS figures mean something only when the connections outweigh that slack (tens of thousands); at small counts they can even come out negative. The live-heap figure (after a forced GC) is stable at any count.',
    '',
    `Where a connection's memory goes: the worker's socket and session (uWS + JS objects) and the user's entry in the presence directory of the member owning the user's presence shard (src/presence/, both inside the heap figure above); nats-server keeps no per-user interest any more (one delivery subject per member; the nats-server row: ${Math.round(m.natsPerConnNet)} B per connection here).`,
    '',
    '## Ramp and hold',
    '',
    mdTable(
      ['figure', 'value'],
      [
        ['opened / failed', `${r.ramp.opened} / ${r.ramp.failed} ${JSON.stringify(r.ramp.failures)}`],
        ['upgrades refused by admission (503, retried when told)', `${r.ramp.refused ?? 0}`],
        [
          'connects reset before an answer (a listener closed at its socket limit), retried with the backoff',
          `${r.ramp.resets ?? 0}`,
        ],
        [
          'time to ramp',
          `${(r.ramp.durationMs / 1000).toFixed(1)} s (${Math.round(r.ramp.opened / Math.max(0.001, r.ramp.durationMs / 1000))} conn/s)`,
        ],
        [
          'handshake (upgrade → welcome) p50 / p99 / max',
          `${formatMs(r.ramp.handshake.p50Ms)} / ${formatMs(r.ramp.handshake.p99Ms)} / ${formatMs(r.ramp.handshake.maxMs)}`,
        ],
        [
          'sockets per broker worker',
          Object.entries(r.ramp.byWorker)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', '),
        ],
        ['held at end of hold / lowest during hold', `${r.hold.heldAtEnd} / ${r.hold.minHeld}`],
        ['dropped by the broker or network', `${r.hold.dropped} ${JSON.stringify(r.hold.dropCodes)}`],
        ['pings sent / pongs', `${r.hold.pingsSent} / ${r.hold.pongs}`],
        [
          'ping round trip p50 / p99 / max',
          `${formatMs(r.hold.pingRtt.p50Ms)} / ${formatMs(r.hold.pingRtt.p99Ms)} / ${formatMs(r.hold.pingRtt.maxMs)}`,
        ],
        ['CPU during ramp (cores)', cpu(r.ramp.resources)],
        ['CPU during hold (cores)', cpu(r.hold.resources)],
        [
          'generators',
          `${r.plan.generators} processes, sockets bound to ${r.plan.ranges.map((x) => x.localAddress).join(', ')}`,
        ],
      ],
    ),
    '',
    ...stormMarkdown(r, r.hold.heldAtEnd).map((l) =>
      l === '![reconnect](RECONNECT_CHART)' ? mdImage('reconnect', paths.chartFile('reconnect')) : l,
    ),
    '## Charts',
    '',
    ...connectionsCharts(r)
      .filter((c) => c.name !== 'reconnect')
      .flatMap((c) => [mdImage(c.name, paths.chartFile(c.name)), '']),
    '## What limited it',
    '',
    `- Limit during the ramp: ${r.limits.limitedBy}.`,
    ...r.limits.notes.map((n) => `- ${n}`),
    '',
    '## How it was measured',
    '',
    "- Every connection is a real user: its own HS256 token (95 % visitors, 5 % agents by default, spread over the tenants), `welcome` awaited — the broker sends it only once the owner of the user's presence shard has recorded the user.",
    "- Generators are separate processes, each binding its sockets to its own loopback address (a fresh 127.a.b.x per run, so no source port is still in TIME_WAIT from the previous run) so that no source address runs out of its ~28k ephemeral ports towards the node's one port, and each staying under the per-process fd limit.",
    "- Reconnects, like the ramp, have at most `--concurrency` attempts in flight per generator: a client whose delay has run out waits for a slot, and the wait counts in the storm's curve. Unbounded, a generator sharing the 2 cores saw its `connect` events over 10 s late in a storm and wrote upgrade requests after uWS had closed the sockets (failures `closed`; BENCHMARKS.md).",
    "- A socket that fails as `closed-1006` before `welcome` was closed by uWebSockets.js before `open`: usually its upgrade request arrived more than 10 s after its TCP connect (uWS's HTTP idle timeout) because the generator's or the broker's event loop was saturated (BENCHMARKS.md, \"Sockets that close 1006 before welcome\").",
    '- Memory comes from /proc (RSS of the supervisor and every worker, summed) and, for the V8 heap, from a probe preloaded into the broker processes the bench starts; each figure is the mean over its window (idle baseline before the ramp, the hold, the settle after closing). Net = (holding − idle) / connections held.',
    "- Pings: each connection sends a protocol `ping` every ping interval, spread evenly over time; the node answers `pong` itself (the broker's WebSocket-level pings are answered by the client library too).",
  ];
  return `${lines.join('\n')}\n`;
}
