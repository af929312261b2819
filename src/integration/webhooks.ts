/**
 * Conversation events out to HTTP webhooks. Every event published on `sb.out.<tenant>.<type>` is stored
 * in the JetStream stream `sb_out`; one durable consumer (`webhooks`), shared by every member, hands
 * each stored event to one member at a time, which POSTs it to each of the tenant's endpoints that want
 * its type: signed (src/integration/signature.ts), retried with exponential backoff and jitter up to a
 * bounded number of attempts, behind a circuit breaker per endpoint, and finally recorded as a dead letter
 * on `sb.dlq.webhook.<tenant>` (stream `sb_dlq`) when every attempt failed. The event is
 * acknowledged only when each endpoint has it or has a dead letter, so a member that dies mid-way leaves
 * the event to be delivered again by another (at-least-once: receivers de-duplicate on the event id).
 */
import type { ConsumerSpec, JetStreamPort, StreamMessage, WorkConsumer } from '../cluster/jetstream.js';
import type { ClusterNames } from '../cluster/names.js';
import { traceHeaders } from '../telemetry/tracing.js';
import { backoffMs, CircuitBreaker } from './breaker.js';
import { typeMatches } from './rule-plan.js';
import type { IntegrationSource, WebhookEndpoint } from './settings.js';
import {
  ATTEMPT_HEADER,
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  SIGNATURE_HEADER,
  signPayload,
} from './signature.js';

export const WEBHOOK_CONSUMER = 'webhooks';
/** Statuses worth retrying; any other 4xx is the receiver refusing this event for good. */
const RETRYABLE_STATUS = new Set([408, 425, 429]);
const MAX_BREAKERS = 10_000;
const MAX_ERROR_CHARS = 300;

export interface WebhookOptions {
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
  /** Events whose deliveries run at once on this member. */
  inFlight: number;
  breakerFailures: number;
  breakerOpenMs: number;
  /** An event unacknowledged this long is handed to another member (extended while we work on it). */
  ackWaitMs: number;
  maxDeliver: number;
}

export interface DeadLetter {
  tenant: string;
  endpoint: string;
  url: string;
  eventId: string;
  eventType: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string;
  deadAt: number;
  /** The event as it was posted. */
  event: unknown;
}

export interface WebhookStats {
  delivered: number;
  deadLettered: number;
  attempts: number;
  failures: number;
  /** Calls not made because the endpoint's breaker was open. */
  shortCircuited: number;
}

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class WebhookDelivery {
  private consumer: WorkConsumer | undefined;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly counters: WebhookStats = {
    delivered: 0,
    deadLettered: 0,
    attempts: 0,
    failures: 0,
    shortCircuited: 0,
  };
  private stopped = false;
  private readonly wake = new Set<() => void>();
  /** Serializes starting and stopping the consumer as the settings change. */
  private reconciling: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  /**
   * Events stored before this time (epoch ms) are acknowledged undelivered: they were published while
   * no tenant had a webhook, when a running consumer would have done the same. 0 while webhooks were
   * configured from the start, so events left unacknowledged by an earlier process are delivered.
   */
  private skipStoredBefore = 0;
  /** True once this member has run without a consumer because no tenant had a webhook. */
  private wasIdle = false;

  constructor(
    private readonly js: JetStreamPort,
    private readonly names: ClusterNames,
    private readonly source: IntegrationSource,
    private readonly opts: WebhookOptions,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Starts following the settings: `sb_out` is consumed while some tenant has a webhook, and not at
   * all otherwise, so a deployment without webhooks does not pull and acknowledge every conversation
   * event (the streams must exist: see ensureIntegrationStreams). Rejects when the first start fails.
   */
  private spec(): ConsumerSpec {
    return {
      stream: this.names.outStream,
      durable: WEBHOOK_CONSUMER,
      ackWaitMs: this.opts.ackWaitMs,
      maxDeliver: this.opts.maxDeliver,
      maxAckPending: this.opts.inFlight * 16,
    };
  }

  /** Creates (or updates) the durable consumer when some tenant has a webhook now: `start` then skips it. */
  async prepare(): Promise<void> {
    if (this.source.hasWebhooks()) await this.js.prepare(this.spec());
  }

  async start(): Promise<void> {
    this.unsubscribe = this.source.onChange(() => {
      this.reconcile().catch((err) => this.log.error({ err }, 'webhook consumer failed to start or stop'));
    });
    await this.reconcile();
  }

  /** Whether this member consumes `sb_out` now (some tenant has a webhook). */
  get consuming(): boolean {
    return this.consumer !== undefined;
  }

  private reconcile(): Promise<void> {
    const next = this.reconciling.then(async () => {
      if (this.stopped) return;
      const wanted = this.source.hasWebhooks();
      if (wanted && this.consumer === undefined) {
        if (this.wasIdle) this.skipStoredBefore = this.now();
        this.consumer = await this.js.consume(
          this.spec(),
          { maxInFlight: this.opts.inFlight, retryDelayMs: this.opts.backoffMs },
          (m) => this.handle(m),
          (err) => this.log.error({ err }, 'webhook consumer failed'),
        );
        this.wasIdle = false;
      } else if (!wanted) {
        this.wasIdle = true;
        const running = this.consumer;
        this.consumer = undefined;
        await running?.stop();
      }
    });
    this.reconciling = next.catch(() => {});
    return next;
  }

  stats(): WebhookStats {
    return { ...this.counters };
  }

  /** Stops pulling; deliveries waiting in a backoff give up (their events are redelivered elsewhere). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const w of this.wake) w();
    await this.reconciling;
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  private async handle(m: StreamMessage): Promise<void> {
    if (m.storedAt < this.skipStoredBefore) {
      m.ack();
      return;
    }
    const tenant = tenantOf(m.subject, this.names);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
      if (typeof event !== 'object' || event === null) throw new Error('not an object');
    } catch (err) {
      this.log.warn({ subject: m.subject, err }, 'an out event that is not JSON was dropped');
      m.term();
      return;
    }
    const type = typeof event['type'] === 'string' ? event['type'] : m.subject.split('.').slice(3).join('.');
    const id = m.msgId ?? (typeof event['id'] === 'string' ? event['id'] : `seq-${m.streamSeq}`);
    const endpoints = tenant
      ? this.source
          .tenant(tenant)
          .webhooks.filter((w) => w.events.length === 0 || w.events.some((p) => typeMatches(p, type)))
      : [];
    if (endpoints.length === 0) {
      m.ack();
      return;
    }
    // Keep the event ours while we work on it: deliveries with backoff can outlast the ack wait.
    const keepAlive = setInterval(() => m.working(), Math.max(500, Math.floor(this.opts.ackWaitMs / 3)));
    try {
      const results = await Promise.all(
        endpoints.map((ep) => this.deliver(tenant!, ep, id, type, m.data, event)),
      );
      if (this.stopped && results.includes('abandoned')) m.nak(0);
      else m.ack();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Delivers to one endpoint: 'delivered', 'dead' (dead letter written), or 'abandoned' (stopping). */
  private async deliver(
    tenant: string,
    ep: WebhookEndpoint,
    id: string,
    type: string,
    body: Uint8Array,
    event: unknown,
  ): Promise<'delivered' | 'dead' | 'abandoned'> {
    const breaker = this.breaker(tenant, ep);
    let lastStatus: number | null = null;
    let lastError = '';
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      if (this.stopped) return 'abandoned';
      if (!breaker.allow(this.now())) {
        this.counters.shortCircuited++;
        lastError = 'circuit open: the endpoint failed repeatedly';
      } else {
        this.counters.attempts++;
        const r = await this.post(ep, id, type, body, attempt);
        if (r.ok) {
          breaker.success();
          this.counters.delivered++;
          return 'delivered';
        }
        breaker.failure(this.now());
        this.counters.failures++;
        lastStatus = r.status;
        lastError = r.error;
        if (r.permanent) break;
      }
      if (attempt < this.opts.maxAttempts) {
        let delay = backoffMs(attempt, this.opts.backoffMs, this.opts.maxBackoffMs, this.random);
        // An open breaker lets a probe through at retryAt: no point waiting less than that.
        const probeAt = breaker.retryAt();
        if (probeAt > 0) delay = Math.min(this.opts.maxBackoffMs, Math.max(delay, probeAt - this.now()));
        await this.sleep(delay);
      }
    }
    if (this.stopped) return 'abandoned';
    const letter: DeadLetter = {
      tenant,
      endpoint: ep.id,
      url: ep.url,
      eventId: id,
      eventType: type,
      attempts: this.opts.maxAttempts,
      lastStatus,
      lastError,
      deadAt: this.now(),
      event,
    };
    // Throws when NATS cannot store it: the consumer naks the event and it is tried again later.
    await this.js.publish(
      this.names.webhookDeadLetterSubject(tenant),
      new TextEncoder().encode(JSON.stringify(letter)),
      `${id}:${ep.id}`,
    );
    this.counters.deadLettered++;
    this.log.warn({ tenant, endpoint: ep.id, eventId: id, lastStatus, lastError }, 'webhook dead-lettered');
    return 'dead';
  }

  private async post(
    ep: WebhookEndpoint,
    id: string,
    type: string,
    body: Uint8Array,
    attempt: number,
  ): Promise<{ ok: boolean; status: number | null; error: string; permanent: boolean }> {
    const ts = Math.floor(this.now() / 1000);
    try {
      const res = await fetch(ep.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'switchboard-webhooks/1',
          [SIGNATURE_HEADER]: signPayload(ep.secret, ts, body),
          [EVENT_ID_HEADER]: id,
          [EVENT_TYPE_HEADER]: type,
          [ATTEMPT_HEADER]: String(attempt),
          ...traceHeaders(), // trace: the receiver may continue the event's trace
        },
      });
      // The receiver's answer is not read: a huge or endless body must not hold us.
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 300)
        return { ok: true, status: res.status, error: '', permanent: false };
      const permanent = res.status >= 300 && res.status < 500 && !RETRYABLE_STATUS.has(res.status);
      return { ok: false, status: res.status, error: `HTTP ${res.status}`, permanent };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const reason =
        e.name === 'TimeoutError'
          ? `no answer within ${this.opts.timeoutMs} ms`
          : (e.cause?.code ?? e.message);
      return { ok: false, status: null, error: String(reason).slice(0, MAX_ERROR_CHARS), permanent: false };
    }
  }

  private breaker(tenant: string, ep: WebhookEndpoint): CircuitBreaker {
    const key = `${tenant}\u0000${ep.id}\u0000${ep.url}`;
    let b = this.breakers.get(key);
    if (!b) {
      // Endpoints come from configuration, so this stays small; the bound guards against churn.
      if (this.breakers.size >= MAX_BREAKERS) this.breakers.delete(this.breakers.keys().next().value!);
      b = new CircuitBreaker({
        failureThreshold: this.opts.breakerFailures,
        openMs: this.opts.breakerOpenMs,
      });
      this.breakers.set(key, b);
    }
    return b;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake.add(done);
    });
  }
}

/** The tenant token of `<root>.out.<tenant>.<type>`. */
function tenantOf(subject: string, names: ClusterNames): string | null {
  const prefix = names.outSubject('', '').slice(0, -2); // "<root>.out"
  if (!subject.startsWith(`${prefix}.`)) return null;
  return subject.slice(prefix.length + 1).split('.')[0] || null;
}
