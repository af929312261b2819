/**
 * `npm run bench -- events`: the business-system integration under load.
 *
 * 1. **Routed events**: a started node (serve, tenants file with a routing rule) and a publisher that
 *    sends business events on `sb.biz.<tenant>.events.bench.event` through JetStream (Nats-Msg-Id, acked
 *    once stored), at most `--outstanding` unacknowledged at a time. The rule posts each event into its
 *    visitor's conversation (opening it the first time); the bench counts an event routed when the
 *    conversation's `message` event comes out on `sb.out.<tenant>.message`. Reported: events/s routed and
 *    the publish-to-message latency.
 * 2. **Context look-ups**: N responders (one per kind, answering at once) on the same NATS, and the
 *    broker's ContextLookup (src/integration/context.ts) asking all N in parallel under a deadline, the
 *    cache bypassed, `--lookup-concurrency` look-ups in flight. Reported per N: look-ups/s, latency.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { ContextLookup } from '../../src/integration/context.js';
import { StaticIntegrationSource } from '../../src/integration/settings.js';
import { type CommonOptions, newRunId, progressFor } from '../lib/common.js';
import { type LatencySummary, newHistogram, recordMs, summarize } from '../lib/histogram.js';
import { ensureServers } from '../lib/servers.js';
import { startNodeTarget } from '../lib/target.js';
import { formatMs, formatRate, sleep } from '../lib/units.js';
import { mdTable, reportHeader, reportPaths, writeReport } from '../report/write.js';

export interface EventsOptions {
  events: number;
  visitors: number;
  outstanding: number;
  workers: number;
  responders: number[];
  lookups: number;
  lookupConcurrency: number;
  deadlineMs: number;
  /** Give up waiting for routed events after this long without one. */
  drainMs: number;
  /** Length of the paced run, seconds. */
  pacedSeconds: number;
}

interface RoutedResult {
  /** Offered rate, events/s (0 = as fast as the stream takes them: the saturation run). */
  rate: number;
  published: number;
  routed: number;
  seconds: number;
  eventsPerSecond: number;
  latency: LatencySummary;
}

interface ContextRow {
  responders: number;
  lookups: number;
  complete: number;
  seconds: number;
  lookupsPerSecond: number;
  latency: LatencySummary;
}

export interface EventsReport {
  header: ReturnType<typeof reportHeader<'events'>>;
  options: EventsOptions;
  target: string;
  /** The saturation run, then a paced run at half its throughput (latency under load, not queueing). */
  routed: RoutedResult[];
  context: ContextRow[];
}

const enc = new TextEncoder();

export async function eventsScenario(
  common: CommonOptions,
  o: EventsOptions,
  signal: AbortSignal,
): Promise<{ report: EventsReport; files: string[]; summary: string }> {
  const started = new Date();
  const progress = progressFor(common);
  const run = newRunId();
  const tenant = `${run}t`;
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-events-'));
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(
    rulesFile,
    [
      'version: 1',
      'rules:',
      '  - name: bench',
      '    match: { type: bench.event }',
      '    actions:',
      '      - post: { text: "bench event #{{n}}", ifNoConversation: open, skill: bench }',
      '    retry: 3',
      '',
    ].join('\n'),
  );
  const tenantsFile = join(dir, 'tenants.yaml');
  writeFileSync(
    tenantsFile,
    // The bench reads the `message` events: declared, so they are published (docs/INTEGRATION.md).
    `version: 1\ntenants:\n  ${tenant}:\n    integration:\n      rulesFile: ${rulesFile}\n      outEvents: [message]\n`,
  );

  const routed: RoutedResult[] = [];
  const context: ContextRow[] = [];
  let targetDescription = '';
  // NATS first (a private one by default), so the publisher and responders join the node's NATS.
  const servers = await ensureServers({
    natsUrl: common.natsUrl,
    cassandra: common.cassandra,
    say: (l) => progress.say(l),
  });
  const target = await startNodeTarget({
    natsUrl: servers.natsUrl,
    cassandra: common.cassandra,
    keyspace: common.keyspace,
    keepKeyspace: common.keepKeyspace,
    workers: o.workers,
    say: (l) => progress.say(l),
    env: { SB_TENANTS_FILE: tenantsFile, SB_INTEGRATION_STORAGE: 'memory' },
  });
  targetDescription = target.description;
  const t = await connectTransport([servers.natsUrl], `bench-events-${run}`);
  try {
    const saturated = await routedEvents(t, tenant, o, 0, 0, progress, signal);
    routed.push(saturated);
    if (!signal.aborted && saturated.eventsPerSecond > 0) {
      const rate = Math.max(1, Math.round(saturated.eventsPerSecond / 2));
      const paced = { ...o, events: Math.min(o.events, rate * o.pacedSeconds) };
      routed.push(await routedEvents(t, tenant, paced, rate, o.events, progress, signal));
    }
    if (!signal.aborted) {
      for (const n of o.responders) {
        if (signal.aborted) break;
        context.push(await contextLookups(t, servers.natsUrl, run, n, o, progress, signal));
      }
    }
  } finally {
    progress.end();
    await t.close();
    await target.stop();
    await servers.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const report: EventsReport = {
    header: reportHeader('events', started, common.command),
    options: o,
    target: targetDescription,
    routed,
    context,
  };
  const paths = reportPaths(common.out, 'events', started);
  const files = writeReport(paths, report, markdown(report), []);
  const sat = routed[0];
  const paced = routed[1];
  const summary = sat
    ? `events: ${formatRate(sat.eventsPerSecond)} events/s routed at saturation${paced ? `; paced ${paced.rate}/s: p99 ${formatMs(paced.latency.p99Ms)}` : ''}; context ${context
        .map((c) => `N=${c.responders} p99 ${formatMs(c.latency.p99Ms)}`)
        .join(', ')}`
    : 'events: interrupted';
  return { report, files, summary };
}

async function routedEvents(
  t: Transport,
  tenant: string,
  o: EventsOptions,
  rate: number,
  firstN: number,
  progress: ReturnType<typeof progressFor>,
  signal: AbortSignal,
): Promise<RoutedResult> {
  const names = clusterNames();
  const sentAt = new Map<number, number>();
  const h = newHistogram();
  let routedCount = 0;
  let lastAt = 0;
  const sub = t.subscribe(names.outSubject(tenant, 'message'), (m) => {
    const e = JSON.parse(new TextDecoder().decode(m.data)) as { body?: string; role?: string };
    const n = Number(/^bench event #(\d+)$/.exec(e.body ?? '')?.[1] ?? Number.NaN);
    const at = sentAt.get(n);
    if (at === undefined) return;
    sentAt.delete(n);
    recordMs(h, performance.now() - at);
    routedCount++;
    lastAt = performance.now();
  });
  await t.flush();
  const js = t.jetstream();
  progress.begin('events', o.events);
  const t0 = performance.now();
  let inFlight = 0;
  let published = 0;
  const waiters: Array<() => void> = [];
  for (let n = firstN; n < firstN + o.events && !signal.aborted; n++) {
    if (rate > 0) {
      // Open loop: event k is due at t0 + k / rate, whatever happened to the earlier ones.
      const due = t0 + ((n - firstN) * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    while (inFlight >= o.outstanding) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    const visitor = `v${n % o.visitors}`;
    sentAt.set(n, performance.now());
    js.publish(
      names.bizEventSubject(tenant, 'bench.event'),
      enc.encode(JSON.stringify({ visitor, n })),
      `${tenant}-${n}`,
    )
      .then(
        () => {
          published++;
        },
        () => sentAt.delete(n),
      )
      .finally(() => {
        inFlight--;
        waiters.shift()?.();
        if (n % 100 === 0) progress.update(routedCount, `${routedCount} routed`);
      });
  }
  // Wait while events still come out; give up after drainMs without progress.
  let lastProgress = performance.now();
  let lastCount = routedCount;
  while (
    (inFlight > 0 || sentAt.size > 0) &&
    performance.now() - lastProgress < o.drainMs &&
    !signal.aborted
  ) {
    if (routedCount !== lastCount) {
      lastCount = routedCount;
      lastProgress = performance.now();
    }
    progress.update(routedCount, `${routedCount} routed`);
    await sleep(50);
  }
  sub.unsubscribe();
  progress.end();
  const seconds = ((lastAt || performance.now()) - t0) / 1000;
  const result = {
    rate,
    published,
    routed: routedCount,
    seconds,
    eventsPerSecond: routedCount / seconds,
    latency: summarize(h),
  };
  progress.say(
    `routed ${routedCount}/${published} events in ${seconds.toFixed(1)} s: ${formatRate(result.eventsPerSecond)}/s`,
  );
  return result;
}

async function contextLookups(
  t: Transport,
  natsUrl: string,
  run: string,
  n: number,
  o: EventsOptions,
  progress: ReturnType<typeof progressFor>,
  signal: AbortSignal,
): Promise<ContextRow> {
  const names = clusterNames(`${run}ctx`);
  const tenant = 'bench';
  const kinds = Array.from({ length: n }, (_, i) => `k${i}`);
  // The responders: one connection, one subscription per kind, answering at once with a small record.
  const responder = await connectTransport([natsUrl], `bench-responders-${run}`);
  const reply = enc.encode(
    JSON.stringify({ items: [{ id: 'A-1001', status: 'shipped', total: '59.90 EUR' }] }),
  );
  for (const k of kinds) responder.subscribe(names.bizContextSubject(tenant, k), (m) => m.respond(reply));
  await responder.flush();
  const source = new StaticIntegrationSource();
  source.set(tenant, { context: { kinds, timeoutMs: o.deadlineMs, ttlMs: 0 } });
  const lookup = new ContextLookup(t, names, source, {
    cacheEntries: 1000,
    breakerFailures: 1_000_000,
    breakerOpenMs: 1000,
  });
  const h = newHistogram();
  let complete = 0;
  let next = 0;
  progress.begin(`context N=${n}`, o.lookups);
  const t0 = performance.now();
  const worker = async () => {
    while (next < o.lookups && !signal.aborted) {
      const i = next++;
      const s = performance.now();
      const r = await lookup.lookup(tenant, `c${i}`, { visitor: 'alice', agent: 'bob' }, { fresh: true });
      recordMs(h, performance.now() - s);
      if (r.missing.length === 0) complete++;
      if (i % 200 === 0) progress.update(i, `N=${n}`);
    }
  };
  await Promise.all(Array.from({ length: o.lookupConcurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  progress.end();
  await responder.close();
  const row = {
    responders: n,
    lookups: h.totalCount,
    complete,
    seconds,
    lookupsPerSecond: h.totalCount / seconds,
    latency: summarize(h),
  };
  progress.say(
    `context N=${n}: ${formatRate(row.lookupsPerSecond)}/s, p50 ${formatMs(row.latency.p50Ms)}, p99 ${formatMs(row.latency.p99Ms)}`,
  );
  return row;
}

function markdown(r: EventsReport): string {
  const lines = [
    `# events — ${r.header.startedAt}`,
    '',
    `Command: \`${r.header.command}\``,
    '',
    `Machine: ${r.header.machine.cpus} × ${r.header.machine.cpuModel}, ${r.header.machine.memoryGiB} GiB, Node ${r.header.machine.node}. Target: ${r.target}.`,
    '',
    '## Business events routed into conversations',
    '',
  ];
  if (r.routed.length > 0) {
    lines.push(
      `Events published through JetStream (≤ ${r.options.outstanding} unacknowledged) about ${r.options.visitors} visitors; a rule posts each into its visitor's conversation (opening it the first time). An event counts as routed when the conversation's \`message\` event comes out on \`sb.out\`; latency is publish to that. The first run offers events as fast as the stream takes them (throughput at saturation; its latency is mostly queueing in the stream); the second is paced, open loop, at half that throughput.`,
      '',
      mdTable(
        ['run', 'routed', 'seconds', 'events/s', 'p50', 'p90', 'p99', 'max'],
        r.routed.map((x) => [
          x.rate === 0 ? 'saturation' : `paced ${x.rate}/s`,
          `${x.routed}/${x.published}`,
          x.seconds.toFixed(1),
          formatRate(x.eventsPerSecond),
          formatMs(x.latency.p50Ms),
          formatMs(x.latency.p90Ms),
          formatMs(x.latency.p99Ms),
          formatMs(x.latency.maxMs),
        ]),
      ),
      '',
    );
  } else lines.push('Not run (interrupted).', '');
  lines.push(
    '## Context look-ups with N responders',
    '',
    `ContextLookup asks N kinds in parallel (deadline ${r.options.deadlineMs} ms, cache bypassed), ${r.options.lookupConcurrency} look-ups in flight; each responder answers at once.`,
    '',
    mdTable(
      ['N', 'look-ups', 'all answered', 'look-ups/s', 'p50', 'p90', 'p99', 'max'],
      r.context.map((c) => [
        c.responders,
        c.lookups,
        c.complete,
        formatRate(c.lookupsPerSecond),
        formatMs(c.latency.p50Ms),
        formatMs(c.latency.p90Ms),
        formatMs(c.latency.p99Ms),
        formatMs(c.latency.maxMs),
      ]),
    ),
    '',
  );
  return lines.join('\n');
}
