/**
 * `npm run bench -- e2e`: visitors and agents in live conversations on one node (started here, or
 * --url), at a fixed offered rate or as a sweep; writes the JSON + Markdown report with charts.
 */
import { type CommonOptions, newRunId, progressFor, startSampling } from '../lib/common.js';
import { type OtlpSink, startOtlpSink, tracingEnv } from '../lib/otlp-sink.js';
import { attachTarget, type BrokerTarget, startNodeTarget } from '../lib/target.js';
import { formatMs, formatRate } from '../lib/units.js';
import { type MachineInfo, reportHeader, reportPaths, writeReport } from '../report/write.js';
import { e2eCharts, headlinePhase, runSections } from './report.js';
import { type E2eRun, type E2eRunOptions, runE2e } from './run.js';

export interface E2eScenarioOptions extends E2eRunOptions {
  workers: number;
  /** Tracing on in the started node at this ratio of traces (0..1), exported to a discarding sink. */
  traceSample?: number;
}

export interface E2eReport {
  schema: number;
  scenario: 'e2e';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  target: { description: string; nodes: BrokerTarget['nodes']; keyspace: string };
  options: E2eScenarioOptions;
  /** OTLP export requests and bytes the node sent during the run (with --trace-sample). */
  tracing?: { ratio: number; requests: number; bytes: number };
  run: E2eRun;
}

export async function openTarget(
  common: CommonOptions,
  workers: number,
  say: (l: string) => void,
  env?: NodeJS.ProcessEnv,
): Promise<BrokerTarget> {
  return common.url
    ? attachTarget({
        url: common.url,
        jwtSecret: common.jwtSecret,
        natsUrl: common.natsUrl,
        cassandra: common.cassandra,
      })
    : startNodeTarget({
        workers,
        natsUrl: common.natsUrl,
        cassandra: common.cassandra,
        keyspace: common.keyspace,
        keepKeyspace: common.keepKeyspace,
        say,
        ...(env ? { env } : {}),
      });
}

/** Runs the scenario; resolves with the report and the files written. */
export async function e2eScenario(
  common: CommonOptions,
  o: E2eScenarioOptions,
  signal: AbortSignal,
): Promise<{ report: E2eReport; files: string[] }> {
  const ui = progressFor(common);
  const startedAt = new Date();
  if (o.traceSample !== undefined && common.url)
    throw new Error('--trace-sample needs a node the bench starts');
  const sink: OtlpSink | undefined = o.traceSample === undefined ? undefined : await startOtlpSink();
  const env = sink && o.traceSample !== undefined ? tracingEnv(sink, o.traceSample) : undefined;
  const target = await openTarget(common, o.workers, (l) => ui.say(l), env).catch(async (err: unknown) => {
    await sink?.close();
    throw err;
  });
  const { sampler, setGenerators } = startSampling(target);
  let run: E2eRun;
  try {
    run = await runE2e(
      target,
      sampler,
      { runId: newRunId(), convsPerAgent: o.convsPerAgent, agentsPerTenant: o.agentsPerTenant },
      o,
      ui,
      signal,
      setGenerators,
    );
  } finally {
    sampler.stop();
    ui.say('stopping…');
    await target.stop();
    await sink?.close();
  }
  const report: E2eReport = {
    ...reportHeader('e2e', startedAt, common.command),
    target: { description: target.description, nodes: target.nodes, keyspace: common.keyspace },
    options: o,
    ...(sink && o.traceSample !== undefined ? { tracing: { ratio: o.traceSample, ...sink.stats() } } : {}),
    run,
  };
  const paths = reportPaths(common.out, 'e2e', startedAt);
  const files = writeReport(paths, report, e2eMarkdown(report, paths), e2eCharts(run, o.objective));
  return { report, files };
}

function e2eMarkdown(r: E2eReport, paths: ReturnType<typeof reportPaths>): string {
  const o = r.options;
  const head = headlinePhase(r.run);
  const m = r.machine;
  const lines = [
    `# Switchboard bench — e2e, ${r.startedAt}`,
    '',
    head
      ? `At **${formatRate(head.offeredRate)} msg/s offered** (open loop) the node delivered **${formatRate(head.rates.deliveredPerS)} msg/s**; ` +
        `delivery latency (visitor → agent, from the scheduled send) mean ${formatMs(head.delivery.meanMs)}, p50 ${formatMs(head.delivery.p50Ms)}, ` +
        `p99 **${formatMs(head.delivery.p99Ms)}**, p99.9 ${formatMs(head.delivery.p999Ms)}, max ${formatMs(head.delivery.maxMs)}; ` +
        `the objective (${o.objective.metric} p99 ≤ ${o.objective.p99Ms} ms) was ${head.verdict.met ? 'met' : 'missed'}. Limit: ${head.limits.limitedBy}.`
      : 'No phase completed.',
    '',
    `Seed target (16 cores): 12 000 msg/s end to end, 23 ms mean, 89 ms p99. This machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.`,
    '',
    `- Target: ${r.target.description}; nodes ${r.target.nodes.map((n) => `${n.nodeId} (:${n.port}, ${n.workers} workers)`).join(', ')}; keyspace \`${r.target.keyspace}\``,
    `- Load: ${o.conversations} conversations (${o.convsPerAgent} per agent, ${o.agentsPerTenant} agents per tenant), ${o.generators} generator processes, ${o.bodyChars}-character bodies, msgpack`,
    `- Phases: warm-up ${o.sweep ? o.sweep.warmupMs / 1000 : o.warmupMs / 1000} s, measured ${o.sweep ? o.sweep.durationMs / 1000 : o.durationMs / 1000} s, drain ≤ ${o.drainMs / 1000} s, ack timeout ${o.ackTimeoutMs / 1000} s`,
    `- Tracing: ${r.tracing ? `on, ${r.tracing.ratio * 100} % of messages sampled (OTLP/HTTP to a discarding sink: ${r.tracing.requests} exports, ${(r.tracing.bytes / 1e6).toFixed(1)} MB)` : 'off'}`,
    `- Command: \`${r.command}\``,
    '',
    runSections(r.run, o.objective, paths),
    METHOD,
  ];
  return `${lines.join('\n')}\n`;
}

export const METHOD = `## How it was measured

- **Open loop.** Each generator sends message *k* at \`start + k / rate\` whatever happened to earlier messages, round-robin over its conversations, alternately from the visitor and from the agent. Latency is measured from that *scheduled* time, so a stalled broker (or generator) shows up as latency instead of silently lowering the rate — no coordinated omission.
- **ack latency**: scheduled send → \`ack\` at the sender (the row is in Cassandra). **delivery latency**: scheduled send → \`msg\` at the other side of the conversation (end to end). HDR histograms (1 µs – 10 min, 3 significant digits), merged across generators.
- Only messages *scheduled* inside the measured window count in the totals; their late answers are still collected during the drain. \`busy\` answers are retried with the same \`cmid\` after \`retryAfterMs\` (with jitter, growing), as docs/PROTOCOL.md asks; a message still unanswered after the ack timeout counts as lost.
- **Resources** come from /proc once a second: CPU and RSS summed over the node's processes (supervisor + workers), the generators, nats-server and Cassandra; the broker's V8 heap and event-loop utilisation from a probe preloaded into the broker processes the bench starts.
- Everything runs on one machine, so the generators compete with the broker, NATS and Cassandra for the same cores: the "What limited it" notes say when the generator itself was the limit.
`;
