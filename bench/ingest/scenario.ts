/**
 * `npm run bench -- ingest`: business systems posting into conversations over the HTTP API, driven by
 * autocannon — `POST /api/v1/conversations/:id/messages` (a bot message, persisted before the 201) at
 * each offered rate in --rates, spread over conversations of several tenants. The visitors of those
 * conversations hold WebSockets, so the report has the e2e fields: ack latency (the HTTP answer,
 * which comes once the row is in Cassandra), delivery latency (post → the visitor's `msg`), errors and
 * `busy` answers, throughput, and the CPU/RSS of every process group; after the run a sample of
 * conversations is read back and compared with what was acknowledged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { type CommonOptions, newRunId, progressFor, startSampling } from '../lib/common.js';
import { type Histogram, type LatencySummary, newHistogram, recordMs, summarize } from '../lib/histogram.js';
import {
  analyseLimits,
  type LimitAnalysis,
  type ResourceSummary,
  summarizeResources,
} from '../lib/limits.js';
import { pool } from '../lib/pool.js';
import type { ResourceSampler } from '../lib/sampler.js';
import { attachTarget, type BrokerTarget, startNodeTarget, workDir } from '../lib/target.js';
import { sleep } from '../lib/units.js';
import { type BenchSocket, decodeServerFrame, openSocket } from '../lib/ws-client.js';
import { reportHeader, reportPaths, writeReport } from '../report/write.js';
import {
  type ApiTenant,
  authHeaders,
  countBotMessages,
  createConversation,
  messageBody,
  messagesPath,
} from './api.js';
import { ingestCharts, ingestMarkdown } from './report.js';

const SETUP_CONCURRENCY = 16;
const TOKEN_TTL_S = 24 * 3600;
/** Answers slower than this count as timeouts (autocannon's own, per request). */
const REQUEST_TIMEOUT_S = 10;
/** Late deliveries of the last requests still arrive within this after a step. */
const STEP_DRAIN_MS = 1500;
/** Steps that miss the objective in a row before the sweep stops. */
const MISSES_TO_STOP = 2;
/** A failed (non-2xx other than busy, or errored) share above this misses the objective. */
const MAX_FAILED_RATIO = 0.001;
/**
 * A paced step must also get this share of its offered rate accepted (as e2e asks of deliveries):
 * autocannon sends no faster than its connections are answered, so a saturated node otherwise passes
 * on latency alone while taking far less than it was offered.
 */
const MIN_ACCEPTED_RATIO = 0.99;

export interface IngestOptions {
  /** Offered requests/s per step, in order; 0 = no rate limit (as fast as the connections go). */
  rates: number[];
  connections: number;
  conversations: number;
  tenants: number;
  workers: number;
  stepDurationMs: number;
  stepWarmupMs: number;
  bodyChars: number;
  objectiveP99Ms: number;
  verifyConversations: number;
  /** For a --url target: its tenant and one of the tenant's API keys. */
  tenant?: string;
  apiKey?: string;
}

export interface IngestStep {
  /** Offered requests/s; 0 = unlimited. */
  offeredRate: number;
  durationS: number;
  /** 2xx answers per second over the step. */
  acceptedPerS: number;
  statusCounts: Record<string, number>;
  /** 503 with Retry-After: the broker shed load. */
  busy: number;
  /** 429: a tenant's HTTP rate limit. */
  rateLimited: number;
  /** Other non-2xx answers. */
  otherNon2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** autocannon's latency (request → answer; corrected for coordinated omission when rate-limited). */
  ack: LatencySummary;
  /** post → the visitor's `msg` frame. */
  delivery: LatencySummary;
  /** Per second: answers and their latency. */
  series: { t: number; ok: number; failed: number; ackP50Ms: number; ackP99Ms: number }[];
  resources: ResourceSummary;
  limits: LimitAnalysis;
  met: boolean;
}

export interface IngestVerify {
  conversations: number;
  acked: number;
  stored: number;
  /** Conversations holding fewer messages than were acknowledged: lost acknowledged messages. */
  short: string[];
  /** Holding more than acknowledged: answers lost after the write (timeouts), not lost messages. */
  extra: number;
}

export interface IngestReport {
  schema: number;
  scenario: 'ingest';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: ReturnType<typeof reportHeader>['machine'];
  target: { description: string; nodes: BrokerTarget['nodes']; keyspace: string };
  options: Omit<IngestOptions, 'apiKey'>;
  setup: { conversations: number; sockets: number; socketFailures: number; setupS: number };
  steps: IngestStep[];
  verify: IngestVerify;
}

interface Conv {
  conv: string;
  tenant: ApiTenant;
  visitor: string;
  socket?: BenchSocket;
  acked: number;
}

/** A tenants file for a node the bench starts: one API key per tenant, HTTP limits out of the way. */
function writeTenantsFile(dir: string, tenants: readonly ApiTenant[]): string {
  const sha = (k: string) => createHash('sha256').update(k).digest('hex');
  const lines = [
    'version: 1',
    'defaults:',
    '  rateLimits: { httpRequestsPerS: 1000000, httpBurst: 1000000 }',
    'tenants:',
    ...tenants.flatMap((t) => [
      `  ${t.tenant}:`,
      `    apiKeys: [{ id: bench, sha256: ${sha(t.apiKey)}, scopes: [api] }]`,
    ]),
  ];
  const file = join(dir, 'tenants.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function percentileSummary(l: autocannon.Histogram, count: number): LatencySummary {
  const x = l as autocannon.Histogram & { p99_9?: number; mean?: number };
  return {
    count,
    meanMs: x.mean ?? l.average,
    p50Ms: l.p50,
    p90Ms: l.p90,
    p99Ms: l.p99,
    p999Ms: x.p99_9 ?? l.p99,
    maxMs: l.max,
  };
}

const SENT_AT = /@(\d+(?:\.\d+)?)$/;

export async function ingestScenario(
  common: CommonOptions,
  o: IngestOptions,
  signal: AbortSignal,
): Promise<{ files: string[]; summary: string; report: IngestReport }> {
  const ui = progressFor(common);
  const startedAt = new Date();
  const runId = newRunId();
  let tenants: ApiTenant[];
  let target: BrokerTarget;
  if (common.url) {
    if (!o.tenant || !o.apiKey)
      throw new Error('ingest --url needs --tenant and --api-key (an api-scope key)');
    tenants = [{ tenant: o.tenant, apiKey: o.apiKey }];
    target = await attachTarget({
      url: common.url,
      jwtSecret: common.jwtSecret,
      natsUrl: common.natsUrl,
      cassandra: common.cassandra,
    });
  } else {
    tenants = Array.from({ length: o.tenants }, (_, i) => ({
      tenant: `${runId}t${i}`,
      apiKey: `sbk_${randomBytes(18).toString('base64url')}`,
    }));
    const { dir } = workDir();
    target = await startNodeTarget({
      workers: o.workers,
      natsUrl: common.natsUrl,
      cassandra: common.cassandra,
      keyspace: common.keyspace,
      keepKeyspace: common.keepKeyspace,
      env: { SB_TENANTS_FILE: writeTenantsFile(dir, tenants) },
      say: (l) => ui.say(l),
    });
  }
  const base = target.nodes[0]!.httpBase;
  const { sampler, setGenerators } = startSampling(target);
  setGenerators(() => [process.pid]);
  const convs: Conv[] = Array.from({ length: o.conversations }, (_, i) => ({
    conv: `${runId}c${i}`,
    tenant: tenants[i % tenants.length]!,
    visitor: `${runId}v${i}`,
    acked: 0,
  }));
  const steps: IngestStep[] = [];
  let setup: IngestReport['setup'] = { conversations: 0, sockets: 0, socketFailures: 0, setupS: 0 };
  let verify: IngestVerify = { conversations: 0, acked: 0, stored: 0, short: [], extra: 0 };
  const recorder: { delivery: Histogram | undefined } = { delivery: undefined };
  try {
    setup = await setUp(target, base, convs, recorder, ui);
    let misses = 0;
    const seq: PostSequence = { runId, next: 0 };
    for (const rate of o.rates) {
      if (signal.aborted) break;
      const step = await runStep(base, convs, seq, rate, o, sampler, recorder, ui, signal);
      steps.push(step);
      ui.say(
        `${rate === 0 ? 'unlimited' : `${rate} req/s`}: ${Math.round(step.acceptedPerS)} accepted/s, ack p99 ${step.ack.p99Ms.toFixed(1)} ms, delivery p99 ${step.delivery.p99Ms.toFixed(1)} ms, busy ${step.busy}, errors ${step.errors + step.otherNon2xx} — ${step.met ? 'met' : 'missed'}`,
      );
      misses = step.met ? 0 : misses + 1;
      if (misses >= MISSES_TO_STOP) break;
    }
    await sleep(STEP_DRAIN_MS);
    verify = await verifyStored(base, convs.slice(0, o.verifyConversations));
  } finally {
    sampler.stop();
    ui.say('stopping…');
    await Promise.allSettled(convs.map((c) => c.socket?.close(2000)));
    await target.stop();
  }
  const { apiKey: _secret, ...shownOptions } = o;
  const report: IngestReport = {
    ...reportHeader('ingest', startedAt, common.command),
    target: { description: target.description, nodes: target.nodes, keyspace: common.keyspace },
    options: shownOptions,
    setup,
    steps,
    verify,
  };
  const paths = reportPaths(common.out, 'ingest', startedAt);
  const files = writeReport(paths, report, ingestMarkdown(report, paths), ingestCharts(report));
  const best = bestStep(steps);
  const summary = best
    ? `ingest: ${Math.round(best.acceptedPerS)} req/s accepted within the objective (ack p99 ${best.ack.p99Ms.toFixed(1)} ms)`
    : 'ingest: no step met the objective';
  return { files, summary, report };
}

export function bestStep(steps: readonly IngestStep[]): IngestStep | undefined {
  return steps.filter((s) => s.met).sort((a, b) => b.acceptedPerS - a.acceptedPerS)[0];
}

async function setUp(
  target: BrokerTarget,
  base: string,
  convs: Conv[],
  recorder: { delivery: Histogram | undefined },
  ui: ReturnType<typeof progressFor>,
): Promise<IngestReport['setup']> {
  const t0 = Date.now();
  const auth = createAuthenticator(target.jwtSecret);
  let done = 0;
  let socketFailures = 0;
  ui.begin('conversations + visitor sockets', convs.length);
  await pool(convs, SETUP_CONCURRENCY, async (c) => {
    await createConversation(base, c.tenant, c.conv, c.visitor);
    const token = await auth.sign({ tenant: c.tenant.tenant, sub: c.visitor, role: 'visitor' }, TOKEN_TTL_S);
    try {
      c.socket = await openSocket({
        base: target.nodes[0]!.wsBase,
        role: 'visitor',
        token,
        decode: decodeServerFrame,
        onFrame(f) {
          if (f.type !== 'msg' || !recorder.delivery) return;
          const m = SENT_AT.exec(f.body);
          if (m) recordMs(recorder.delivery, performance.timeOrigin + performance.now() - Number(m[1]));
        },
        onClose() {},
      });
    } catch {
      socketFailures++;
    }
    ui.update(++done, `${socketFailures} socket failures`);
  });
  ui.end();
  return {
    conversations: convs.length,
    sockets: convs.length - socketFailures,
    socketFailures,
    setupS: (Date.now() - t0) / 1000,
  };
}

/** Posts of one run: the next conversation (round robin) and a cmid never used before in the run. */
interface PostSequence {
  runId: string;
  next: number;
}

/** One autocannon run (a warm-up when `onAnswer` is absent). */
function cannon(
  base: string,
  convs: Conv[],
  seq: PostSequence,
  rate: number,
  durationMs: number,
  o: IngestOptions,
  onAnswer?: (ms: number, ok: boolean) => void,
): Promise<autocannon.Result> {
  const padding = 'x'.repeat(Math.max(0, o.bodyChars - 40));
  const opts: autocannon.Options = {
    url: base,
    connections: o.connections,
    duration: durationMs / 1000,
    timeout: REQUEST_TIMEOUT_S,
    ...(rate > 0 ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        setupRequest(req, context) {
          // A cmid is an idempotency key: reusing one (across steps) would be answered, not stored.
          const n = seq.next++;
          const c = convs[n % convs.length]!;
          (context as { conv?: Conv }).conv = c;
          const sentAt = (performance.timeOrigin + performance.now()).toFixed(3);
          return {
            ...req,
            path: messagesPath(c.conv),
            headers: authHeaders(c.tenant),
            body: messageBody(`${seq.runId}-${n}`, `order update ${padding} @${sentAt}`),
          };
        },
        onResponse(status, _body, context) {
          const c = (context as { conv?: Conv }).conv;
          if (c && status >= 200 && status < 300) c.acked++;
        },
      },
    ],
  };
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    if (onAnswer)
      instance.on('response', (_client, status, _bytes, ms) => onAnswer(ms, status >= 200 && status < 300));
  });
}

async function runStep(
  base: string,
  convs: Conv[],
  seq: PostSequence,
  rate: number,
  o: IngestOptions,
  sampler: ResourceSampler,
  recorder: { delivery: Histogram | undefined },
  ui: ReturnType<typeof progressFor>,
  signal: AbortSignal,
): Promise<IngestStep> {
  const label = rate === 0 ? 'unlimited' : `${rate} req/s`;
  if (o.stepWarmupMs > 0) {
    ui.say(`${label}: warm-up ${o.stepWarmupMs / 1000} s`);
    await cannon(base, convs, seq, rate, o.stepWarmupMs, o);
    await sleep(STEP_DRAIN_MS);
  }
  const delivery = newHistogram();
  recorder.delivery = delivery;
  const perSecond: { ok: number; failed: number; h: Histogram }[] = [];
  const startedAt = Date.now();
  const elu0 = performance.eventLoopUtilization();
  ui.begin(label, Math.round(o.stepDurationMs / 1000));
  const ticker = setInterval(() => {
    const s = Math.floor((Date.now() - startedAt) / 1000);
    const last = perSecond[s - 1];
    ui.update(Math.min(s, Math.round(o.stepDurationMs / 1000)), `${last?.ok ?? 0} accepted/s`);
  }, 1000);
  let result: autocannon.Result;
  try {
    result = await cannon(base, convs, seq, rate, signal.aborted ? 1000 : o.stepDurationMs, o, (ms, ok) => {
      const s = Math.floor((Date.now() - startedAt) / 1000);
      perSecond[s] ??= { ok: 0, failed: 0, h: newHistogram() };
      const slot = perSecond[s]!;
      if (ok) slot.ok++;
      else slot.failed++;
      recordMs(slot.h, ms);
    });
  } finally {
    clearInterval(ticker);
    ui.end();
  }
  const endedAt = Date.now();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  await sleep(STEP_DRAIN_MS);
  recorder.delivery = undefined;

  const statusCounts: Record<string, number> = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {}))
    statusCounts[code] = Number((v as { count: number | string }).count);
  const ok = Object.entries(statusCounts)
    .filter(([c]) => c.startsWith('2'))
    .reduce((a, [, n]) => a + n, 0);
  const busy = statusCounts['503'] ?? 0;
  const rateLimited = statusCounts['429'] ?? 0;
  const otherNon2xx = result.non2xx - busy - rateLimited;
  const errors = result.errors + result.timeouts;
  const durationS = (endedAt - startedAt) / 1000;
  const total = ok + result.non2xx + errors;
  const failedRatio = total === 0 ? 1 : (busy + rateLimited + otherNon2xx + errors) / total;
  const resources = summarizeResources(sampler.between(startedAt, endedAt));
  const limits = analyseLimits({ resources, generatorElu: [elu], busyAnswers: busy, failedRatio });
  const ack = percentileSummary(result.latency, ok);
  const deliverySummary = summarize(delivery);
  delivery.destroy();
  const series = perSecond.map((x, t) => {
    const s = summarize(x.h);
    x.h.destroy();
    return { t, ok: x.ok, failed: x.failed, ackP50Ms: s.p50Ms, ackP99Ms: s.p99Ms };
  });
  return {
    offeredRate: rate,
    durationS,
    acceptedPerS: ok / durationS,
    statusCounts,
    busy,
    rateLimited,
    otherNon2xx,
    errors,
    ack,
    delivery: deliverySummary,
    series,
    resources,
    limits,
    met: ingestStepMet(
      {
        rate,
        accepted: ok,
        durationS,
        ackP99Ms: ack.p99Ms,
        deliveryP99Ms: deliverySummary.p99Ms,
        failedRatio,
      },
      o.objectiveP99Ms,
    ),
  };
}

/**
 * Whether one step meets the objective: something accepted, both p99s within it, at most 0.1 % failed,
 * and on a paced step (rate > 0) at least 99 % of the offered rate accepted.
 */
export function ingestStepMet(
  s: {
    rate: number;
    accepted: number;
    durationS: number;
    ackP99Ms: number;
    deliveryP99Ms: number;
    failedRatio: number;
  },
  objectiveP99Ms: number,
): boolean {
  return (
    s.accepted > 0 &&
    (s.rate === 0 || s.accepted / s.durationS >= MIN_ACCEPTED_RATIO * s.rate) &&
    s.ackP99Ms <= objectiveP99Ms &&
    s.deliveryP99Ms <= objectiveP99Ms &&
    s.failedRatio <= MAX_FAILED_RATIO
  );
}

async function verifyStored(base: string, sample: readonly Conv[]): Promise<IngestVerify> {
  const v: IngestVerify = { conversations: sample.length, acked: 0, stored: 0, short: [], extra: 0 };
  await pool(sample, 4, async (c) => {
    const stored = await countBotMessages(base, c.tenant, c.conv);
    v.acked += c.acked;
    v.stored += stored;
    if (stored < c.acked) v.short.push(c.conv);
    else if (stored > c.acked) v.extra += stored - c.acked;
  });
  return v;
}
