/**
 * The parts of the connections report that issue #14 added: where an idle worker's memory goes and the
 * node's memory with shared pages counted once, kernel memory per connection, the mixed load among the
 * held sockets, the reconnect storms (with their curve as a chart) and the check of every acknowledged
 * message against Cassandra.
 */
import type { LatencySummary } from '../lib/histogram.js';
import type { ResourceSummary } from '../lib/limits.js';
import type { KernelMemory, NodeMemory } from '../lib/smaps.js';
import { formatBytes, formatMs } from '../lib/units.js';
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdTable } from '../report/write.js';
import { STORM_BACK_SHARE, STORM_OBJECTIVE_MS, type StormResult } from './storm.js';
import type { AckCheck } from './verify.js';

export interface MixResult {
  senders: number;
  offeredRate: number;
  /**
   * Sending before the window, not measured: at least --mix-warmup, and until every sender's conversation
   * had started (its first message acknowledged) or a minute had passed.
   */
  warmupMs: number;
  /** Senders whose conversation had started when the window opened (older reports: absent). */
  startedSenders?: number;
  /** Sends outstanding (sent, not yet acknowledged) when the window opened (older reports: absent). */
  pendingAtWindow?: number;
  durationMs: number;
  sent: number;
  acked: number;
  delivered: number;
  /** send → ack; send → the sender's own `msg` (the fan-out, across workers through NATS). */
  ack: LatencySummary;
  delivery: LatencySummary;
  resources: ResourceSummary;
  memory: NodeMemory;
}

export interface StormReportPart {
  nodeMemory: { baseline: NodeMemory; held?: NodeMemory; afterClose?: NodeMemory };
  kernel: { baseline: KernelMemory; held?: KernelMemory };
  mix?: MixResult;
  storms: StormResult[];
  sends: {
    unanswered: number;
    unansweredExamples: string[];
    errors: Record<string, number>;
    /** Error answers retried with the same cmid, by code (absent in older results). */
    retried?: Record<string, number>;
    check?: AckCheck;
  };
  reconnectFailures: Record<string, number>;
}

const secs = (ms: number | null): string =>
  ms === null ? 'not within the timeout' : `${(ms / 1000).toFixed(1)} s`;

export function stormCharts(r: StormReportPart): Chart[] {
  if (r.storms.length === 0) return [];
  return [
    {
      name: 'reconnect',
      svg: lineChart({
        title: 'Reconnect storms: sockets open after the action',
        xLabel: 'seconds from the action (drain = SIGTERM of the node, kill = kill -9 of one worker)',
        yLabel: 'sockets open',
        hline: {
          y: Math.ceil((r.storms[0]?.heldBefore ?? 0) * STORM_BACK_SHARE),
          label: `${STORM_BACK_SHARE * 100} % of held`,
        },
        series: r.storms.map((s) => ({ name: s.kind, points: s.curve.map((p) => [p.t, p.open] as const) })),
      }),
    },
  ];
}

/**
 * A storm that began with fewer sockets than the hold had (the one before it had not finished) measures
 * the tail of that one, not its own action: say so rather than "met". A few sockets short (a drop in the
 * mix) still counts as a start; short by more than the objective's own 1 % does not.
 */
export function stormVerdict(s: Pick<StormResult, 'heldBefore' | 'back99Ms'>, held: number): string {
  if (s.heldBefore < held * STORM_BACK_SHARE)
    return `not measured: began with ${s.heldBefore} of ${held} held`;
  return s.back99Ms !== null && s.back99Ms <= STORM_OBJECTIVE_MS ? 'met' : 'not met';
}

/** Issue #14: the node's whole memory at 100k connections. */
const NODE_MEMORY_OBJECTIVE_BYTES = 500e6;

/** Seconds per row of a storm's timeline table. */
const TIMELINE_STEP_S = 5;

/**
 * A storm second by second, in rows of TIMELINE_STEP_S: sockets open at the row's end and the attempts
 * that failed before `welcome` within it, by reason. It shows what a storm waited on: a node that did
 * not listen yet (ECONNREFUSED), refusals (`http-503`), upgrades that never got their answer.
 */
export function stormTimeline(s: Pick<StormResult, 'kind' | 'curve'>): string[] {
  const withFailures = s.curve.filter((p) => p.failed !== undefined);
  if (withFailures.length === 0) return [];
  const reasons = [...new Set(withFailures.flatMap((p) => Object.keys(p.failed!)))].sort();
  const rows: (string | number)[][] = [];
  let bucket: { to: number; open: number; failed: Record<string, number> } | undefined;
  const flush = (): void => {
    if (bucket)
      rows.push([
        `${bucket.to - TIMELINE_STEP_S}–${bucket.to} s`,
        bucket.open,
        ...reasons.map((k) => bucket!.failed[k] ?? 0),
      ]);
  };
  for (const p of withFailures) {
    const to = Math.max(TIMELINE_STEP_S, Math.ceil(p.t / TIMELINE_STEP_S) * TIMELINE_STEP_S);
    if (bucket?.to !== to) {
      flush();
      bucket = { to, open: 0, failed: {} };
    }
    bucket.open = p.open;
    for (const [k, n] of Object.entries(p.failed!)) bucket.failed[k] = (bucket.failed[k] ?? 0) + n;
  }
  flush();
  return [
    `The ${s.kind} storm, ${TIMELINE_STEP_S} s at a time from the action: sockets open at the end of each row, and reconnect attempts that failed before \`welcome\` within it, by reason. Both come from the generators' reports each second, which arrive late while a generator's loop is saturated (its ELU at 100 %), so rows can trail the broker's clock by seconds.`,
    '',
    mdTable(['after the action', 'open', ...reasons], rows),
    '',
  ];
}

export function stormMarkdown(r: StormReportPart, held: number): string[] {
  const lines: string[] = [];
  const b = r.nodeMemory.baseline;
  const h = r.nodeMemory.held;
  const workers = b.processes.slice().sort((x, y) => y.rssBytes - x.rssBytes);
  lines.push(
    '## Node memory, shared pages counted once',
    '',
    'Summed RSS counts the pages every node process shares (the node binary, libraries) once per process. Counting each mapped file once (anonymous pages summed, each file at its largest resident size):',
    '',
    mdTable(
      ['figure', 'idle baseline', 'holding', 'per connection'],
      [
        [
          'node RSS summed over processes (/proc smaps)',
          formatBytes(b.rssSumBytes),
          h ? formatBytes(h.rssSumBytes) : '–',
          h ? `${Math.round((h.rssSumBytes - b.rssSumBytes) / Math.max(1, held))} B net` : '–',
        ],
        [
          'node memory, shared pages once',
          formatBytes(b.sharedOnceBytes),
          h ? formatBytes(h.sharedOnceBytes) : '–',
          h ? `${Math.round((h.sharedOnceBytes - b.sharedOnceBytes) / Math.max(1, held))} B net` : '–',
        ],
        [
          'node PSS summed (the kernel splits each shared page among its processes)',
          formatBytes(b.pssSumBytes),
          h ? formatBytes(h.pssSumBytes) : '–',
          h ? `${Math.round((h.pssSumBytes - b.pssSumBytes) / Math.max(1, held))} B net` : '–',
        ],
        ...(r.kernel.held
          ? [
              [
                'kernel slab (machine; both ends of each loopback connection)',
                formatBytes(r.kernel.baseline.slabBytes),
                formatBytes(r.kernel.held.slabBytes),
                `${Math.round((r.kernel.held.slabBytes - r.kernel.baseline.slabBytes) / Math.max(1, held))} B net`,
              ],
              [
                'kernel TCP buffers (machine)',
                formatBytes(r.kernel.baseline.tcpBufferBytes),
                formatBytes(r.kernel.held.tcpBufferBytes),
                `${Math.round((r.kernel.held.tcpBufferBytes - r.kernel.baseline.tcpBufferBytes) / Math.max(1, held))} B net`,
              ],
            ]
          : []),
      ],
    ),
    '',
    'Idle baseline per process (after a forced GC), anonymous = its own memory, file = code and data mapped from the binary and libraries (shared):',
    '',
    mdTable(
      ['pid', 'RSS', 'anonymous', 'file-backed', 'PSS'],
      workers.map((p) => [
        p.pid,
        formatBytes(p.rssBytes),
        formatBytes(p.anonBytes),
        formatBytes(p.fileBytes),
        formatBytes(p.pssBytes),
      ]),
    ),
    '',
  );
  if (h) {
    const met = h.pssSumBytes <= NODE_MEMORY_OBJECTIVE_BYTES;
    lines.push(
      `Objective (issue #14): the node's memory at ${held} connections ≤ 500 MB. By PSS, which counts every page once: ${formatBytes(h.pssSumBytes)} (${(h.pssSumBytes / 1e6).toFixed(0)} MB), **${met ? 'met' : 'not met'}**; summed RSS, which counts the shared binary once per process, is ${formatBytes(h.rssSumBytes)} (${(h.rssSumBytes / 1e6).toFixed(0)} MB).`,
      '',
    );
  }
  if (r.mix) {
    const m = r.mix;
    // The node's processes: the supervisor and its workers.
    const workerCount = Math.max(1, b.processes.length - 1);
    lines.push(
      '## Mixed load among the held sockets',
      '',
      mdTable(
        ['figure', 'value'],
        [
          [
            'senders / offered rate',
            `${m.senders} visitors / ${m.offeredRate} msg/s for ${(m.durationMs / 1000).toFixed(0)} s, after ${((m.warmupMs ?? 0) / 1000).toFixed(0)} s of warm-up (conversations starting, not measured${m.startedSenders === undefined ? '' : `; ${m.startedSenders} of ${m.senders} had started when the window opened`}${m.pendingAtWindow === undefined ? '' : `, with ${m.pendingAtWindow} sends outstanding`})`,
          ],
          [
            'sent / acked / delivered',
            `${m.sent} / ${m.acked} / ${m.delivered} (${Math.round(m.acked / Math.max(0.001, m.durationMs / 1000))} acked msg/s)`,
          ],
          [
            'ack p50 / p99 / max',
            `${formatMs(m.ack.p50Ms)} / ${formatMs(m.ack.p99Ms)} / ${formatMs(m.ack.maxMs)}`,
          ],
          [
            'delivery p50 / p99 / max',
            `${formatMs(m.delivery.p50Ms)} / ${formatMs(m.delivery.p99Ms)} / ${formatMs(m.delivery.maxMs)}`,
          ],
          [
            'node RSS summed / shared once / PSS summed',
            `${formatBytes(m.memory.rssSumBytes)} / ${formatBytes(m.memory.sharedOnceBytes)} / ${formatBytes(m.memory.pssSumBytes)}`,
          ],
          [
            'CPU (cores)',
            `broker ${m.resources.groups.broker.meanCpuCores.toFixed(2)}, generators ${m.resources.groups.generators.meanCpuCores.toFixed(2)}, cassandra ${m.resources.groups.cassandra.meanCpuCores.toFixed(2)} (machine ${Math.round(m.resources.machineBusy * 100)} %)`,
          ],
        ],
      ),
      '',
      `Delivery is measured to the sender's own socket: the protocol pushes every message to all of its sender's sockets, through the same fan-out (the conversation's owner delivers to its own sockets, else sends the push to the owner of the user's presence shard, which forwards it to the worker holding the socket), so with ${workerCount} workers about ${workerCount - 1} of ${workerCount} cross workers through NATS.`,
      '',
    );
  }
  if (r.storms.length > 0) {
    lines.push(
      '## Reconnect storms',
      '',
      mdTable(
        [
          'storm',
          'held before',
          'action took',
          'dropped',
          'lowest open',
          `${STORM_BACK_SHARE * 100} % back`,
          'all back',
          'attempts failed before welcome',
          'CPU cores: broker / generators (machine busy)',
          'objective',
        ],
        r.storms.map((s) => [
          s.kind === 'drain'
            ? 'drain (SIGTERM the node, start it again)'
            : `kill -9 of one worker (pid ${s.killedPid}${s.killedSockets === undefined ? '' : `, ${s.killedSockets} sockets`})`,
          s.heldBefore,
          secs(s.actionMs),
          s.dropped,
          s.lowest,
          secs(s.back99Ms),
          secs(s.back100Ms),
          s.failedAttempts,
          s.resources
            ? `${s.resources.groups.broker.meanCpuCores.toFixed(2)} / ${s.resources.groups.generators.meanCpuCores.toFixed(2)} (${Math.round(s.resources.machineBusy * 100)} %)`
            : '–',
          stormVerdict(s, held),
        ]),
      ),
      '',
      `Reconnect attempts that ended before \`welcome\`, by reason: ${JSON.stringify(r.reconnectFailures)} (ECONNREFUSED: nothing listening yet; \`http-503\`: refused by a worker, retried when its \`retryAfterMs\` said, by why: \`-full\` at its socket limit, \`-paced\` by its upgrade admission, \`-cut-off\` cut off from the cluster; \`timeout\`: no welcome within 15 s; \`closed-1012\`: a worker shutting down; a \`frame-before-welcome\` would break the protocol).`,
      '',
      '![reconnect](RECONNECT_CHART)',
      '',
      ...r.storms.flatMap((s) => stormTimeline(s)),
    );
  }
  const c = r.sends.check;
  if (c) {
    lines.push(
      '## Acknowledged messages against Cassandra',
      '',
      `${c.acked} messages were acknowledged to the senders in ${c.conversations} conversations through the mix and the storms; read back from Cassandra: **${c.lost} lost**, ${c.duplicated} cmids stored twice. Sends unanswered at the end: ${r.sends.unanswered}; refused: ${JSON.stringify(r.sends.errors)}; answered with an error and retried (same cmid), by code: ${JSON.stringify(r.sends.retried ?? {})}.`,
      ...c.examples.map((e) => `- ${e}`),
      ...r.sends.unansweredExamples.map((e) => `- unanswered: ${e}`),
      '',
    );
  }
  return lines;
}
