/**
 * Business events in. A business system publishes `sb.biz.<tenant>.events.<type>` (JSON or msgpack, a
 * `Nats-Msg-Id` header); the work-queue stream `sb_biz_events` stores each id once inside its duplicate
 * window, and the durable consumer `biz-events`, shared by every member, hands each stored event to one
 * member at a time. That member applies the tenant's routing rules and acknowledges the event when its
 * actions are done, so an event whose member dies mid-way is handed to another one. Actions are
 * idempotent on redelivery: message cmids and new conversation ids derive from the event id.
 */
import { createHash } from 'node:crypto';
import type { ConsumerSpec, JetStreamPort, StreamMessage, WorkConsumer } from '../cluster/jetstream.js';
import type { ClusterNames } from '../cluster/names.js';
import { backoffMs } from './breaker.js';
import type { ChatPort, UserPush } from './chat-port.js';
import { decodeEventPayload } from './event-codec.js';
import { type BizEvent, type Card, type PlannedAction, planEvent } from './rule-plan.js';
import type { RuleSet } from './rules.js';

export const BIZ_EVENTS_CONSUMER = 'biz-events';
/** Sender id of the messages rules post. */
export const RULES_SENDER = 'system';
/** Failures worth another try; anything else (not_found, conversation_closed, forbidden...) is final. */
const RETRYABLE_CODES = new Set(['busy', 'unavailable', 'timeout', 'internal']);
/** Longest wait before JetStream redelivers an event handed back after a retryable failure. */
const ACK_REDELIVERY_MAX_MS = 10_000;

export interface EventsInOptions {
  inFlight: number;
  ackWaitMs: number;
  maxDeliver: number;
  eventMaxBytes: number;
  maxRenderedChars: number;
  retryBackoffMs: number;
}

export type ActionOutcome =
  | { kind: PlannedAction['kind']; outcome: 'posted' | 'opened' | 'notified'; conv: string }
  | {
      kind: PlannedAction['kind'];
      outcome: 'skipped' | 'failed';
      conv?: string;
      reason: string;
      /** A failure that may pass later (busy, unavailable, timeout): the event is redelivered. */
      retryable?: boolean;
    };

export interface EventOutcome {
  tenant: string;
  type: string;
  id: string;
  /** The rule that matched, null when none did or the event was refused. */
  rule: string | null;
  actions: ActionOutcome[];
  /** Why the event was refused (undecodable payload), if it was. */
  refused?: string;
}

/** A business event whose rule action failed for good, on `sb.dlq.events.<tenant>` (stream `sb_dlq`). */
export interface EventDeadLetter {
  tenant: string;
  eventId: string;
  eventType: string;
  rule: string;
  /** Index of the failed action in the rule. */
  action: number;
  kind: PlannedAction['kind'];
  reason: string;
  deliveries: number;
  failedAt: number;
  /** The event payload as decoded. */
  event: Record<string, unknown>;
}

export interface EventsInStats {
  handled: number;
  /** Events handed back to JetStream after a retryable failure (redelivered later). */
  redelivered: number;
  unrouted: number;
  refused: number;
  failedActions: number;
}

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class BizEventsConsumer {
  private consumer: WorkConsumer | undefined;
  private readonly counters: EventsInStats = {
    handled: 0,
    redelivered: 0,
    unrouted: 0,
    refused: 0,
    failedActions: 0,
  };
  private readonly prefix: string;

  constructor(
    private readonly js: JetStreamPort,
    private readonly names: ClusterNames,
    private readonly rules: { get(tenant: string): RuleSet | undefined },
    private readonly chat: ChatPort,
    private readonly push: UserPush,
    private readonly opts: EventsInOptions,
    private readonly log: Log,
    private readonly onOutcome: (o: EventOutcome) => void = () => {},
  ) {
    this.prefix = names.bizEventSubject('', '').split('..')[0]!; // "<root>.biz"
  }

  private spec(): ConsumerSpec {
    return {
      stream: this.names.bizEventsStream,
      durable: BIZ_EVENTS_CONSUMER,
      ackWaitMs: this.opts.ackWaitMs,
      maxDeliver: this.opts.maxDeliver,
      maxAckPending: this.opts.inFlight * 16,
    };
  }

  /** Creates (or updates) the durable consumer: the setup `start` then skips. */
  prepare(): Promise<void> {
    return this.js.prepare(this.spec());
  }

  async start(): Promise<void> {
    this.consumer = await this.js.consume(
      this.spec(),
      { maxInFlight: this.opts.inFlight, retryDelayMs: this.opts.retryBackoffMs },
      (m) => this.handle(m),
      (err) => this.log.error({ err }, 'business events consumer failed'),
    );
  }

  stats(): EventsInStats {
    return { ...this.counters };
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  private async handle(m: StreamMessage): Promise<void> {
    // <root>.biz.<tenant>.events.<type...>
    const rest = m.subject.slice(this.prefix.length + 1).split('.');
    const tenant = rest[0] ?? '';
    const type = rest.slice(2).join('.');
    let data: Record<string, unknown>;
    try {
      data = decodeEventPayload(m.data, this.opts.eventMaxBytes);
    } catch (err) {
      this.counters.refused++;
      const reason = (err as Error).message;
      this.log.warn({ subject: m.subject, msgId: m.msgId, reason }, 'business event refused');
      m.term();
      this.onOutcome({ tenant, type, id: m.msgId ?? '', rule: null, actions: [], refused: reason });
      return;
    }
    const id = m.msgId ?? (typeof data['id'] === 'string' ? data['id'] : `seq-${m.streamSeq}`);
    const ev: BizEvent = { tenant, type, id, data };
    const rules = this.rules.get(tenant);
    const plan = rules ? planEvent(rules, ev, this.opts.maxRenderedChars) : null;
    if (!plan?.rule) {
      this.counters.unrouted++;
      m.ack();
      this.onOutcome({ tenant, type, id, rule: null, actions: [] });
      return;
    }
    const keepAlive = setInterval(() => m.working(), Math.max(500, Math.floor(this.opts.ackWaitMs / 3)));
    const outcomes: ActionOutcome[] = [];
    try {
      for (let i = 0; i < plan.actions.length; i++) {
        const action = plan.actions[i]!;
        const outcome = await this.withRetry(action.kind, plan.retry, plan.timeoutMs, () =>
          this.run(ev, action, i),
        );
        outcomes.push(outcome);
        if (outcome.outcome === 'failed' && outcome.retryable && m.deliveryCount < this.opts.maxDeliver) {
          // Overload or a moment without an owner: hand the whole event back to JetStream for later
          // (the actions already done repeat harmlessly: their ids derive from the event).
          this.counters.redelivered++;
          m.nak(backoffMs(m.deliveryCount, this.opts.retryBackoffMs * 5, ACK_REDELIVERY_MAX_MS));
          return;
        }
        if (outcome.outcome === 'failed') {
          this.counters.failedActions++;
          this.log.warn(
            { tenant, type, id, rule: plan.rule, action: i, reason: outcome.reason },
            'rule action failed; dead-lettered',
          );
          const letter: EventDeadLetter = {
            tenant,
            eventId: id,
            eventType: type,
            rule: plan.rule,
            action: i,
            kind: action.kind,
            reason: outcome.reason,
            deliveries: m.deliveryCount,
            failedAt: Date.now(),
            event: data,
          };
          // Throws when NATS cannot store it: the consumer naks the event, which is then tried again.
          await this.js.publish(
            this.names.eventDeadLetterSubject(tenant),
            new TextEncoder().encode(JSON.stringify(letter)),
            `${id}:${i}`,
          );
        }
      }
    } finally {
      clearInterval(keepAlive);
    }
    this.counters.handled++;
    m.ack();
    this.onOutcome({ tenant, type, id, rule: plan.rule, actions: outcomes });
  }

  private async withRetry(
    kind: PlannedAction['kind'],
    retry: number,
    timeoutMs: number,
    fn: () => Promise<ActionOutcome>,
  ): Promise<ActionOutcome> {
    let last: ActionOutcome | undefined;
    for (let attempt = 0; attempt <= retry; attempt++) {
      if (attempt > 0) await sleep(backoffMs(attempt, this.opts.retryBackoffMs, timeoutMs));
      try {
        return await withTimeout(fn(), timeoutMs);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'internal';
        const retryable = RETRYABLE_CODES.has(code);
        last = { kind, outcome: 'failed', reason: `${code}: ${(err as Error).message}`, retryable };
        if (!retryable) break;
        const hint = (err as { retryAfterMs?: number }).retryAfterMs;
        if (hint !== undefined && attempt < retry) await sleep(Math.min(hint, timeoutMs));
      }
    }
    return last!;
  }

  /**
   * The conversation a `post … ifNoConversation: open` opens for a visitor. Its id derives from
   * (tenant, visitor, UTC day, n), not from the event: two events about one customer handled at once —
   * on one member or two — open the same conversation instead of one each. n moves past the visitor's
   * conversations of the day that are already closed.
   */
  private async openFor(tenant: string, visitor: string, skill: string | undefined): Promise<string> {
    const base = `vc-${digest(tenant, `${visitor}\u0000${new Date().toISOString().slice(0, 10)}`)}`;
    for (let n = 0; n < MAX_OPEN_PROBES; n++) {
      const view = await this.chat.createConversation(tenant, {
        visitor,
        conv: `${base}-${n}`,
        ...(skill ? { skill } : {}),
      });
      if (view.status !== 'closed') return view.conv;
    }
    throw Object.assign(new Error(`visitor ${visitor} closed ${MAX_OPEN_PROBES} conversations today`), {
      code: 'conflict',
    });
  }

  private async run(ev: BizEvent, a: PlannedAction, index: number): Promise<ActionOutcome> {
    const cmid = `ev-${digest(ev.tenant, ev.id)}-${index}`;
    const body = (text: string | undefined, card: Card | undefined) => text ?? card?.title ?? '';
    const post = async (conv: string, text: string | undefined, card: Card | undefined) => {
      await this.chat.postMessage(ev.tenant, conv, {
        from: RULES_SENDER,
        role: 'system',
        cmid,
        body: body(text, card),
        ...(card ? { card } : {}),
      });
    };
    const open = async (visitor: string, o: { skill?: string; subject?: string }) => {
      const view = await this.chat.createConversation(ev.tenant, {
        visitor,
        // Derived from the event: a redelivered event finds the conversation it opened the first time.
        conv: `ev-${digest(ev.tenant, ev.id)}-${index}`,
        ...(o.skill ? { skill: o.skill } : {}),
        ...(o.subject ? { subject: o.subject } : {}),
      });
      return view.conv;
    };
    switch (a.kind) {
      case 'post': {
        let conv = a.conv;
        if (!conv && a.visitor) conv = (await this.chat.openConversationOf(ev.tenant, a.visitor))?.conv;
        if (!conv) {
          if (a.ifNoConversation !== 'open' || !a.visitor) {
            return {
              kind: a.kind,
              outcome: 'skipped',
              reason: a.visitor
                ? 'the visitor has no open conversation'
                : 'the event names no conversation or visitor',
            };
          }
          conv = await this.openFor(ev.tenant, a.visitor, a.skill);
          await post(conv, a.text, a.card);
          return { kind: a.kind, outcome: 'opened', conv };
        }
        await post(conv, a.text, a.card);
        return { kind: a.kind, outcome: 'posted', conv };
      }
      case 'open': {
        if (!a.visitor) return { kind: a.kind, outcome: 'skipped', reason: 'the event names no visitor' };
        const conv = await open(a.visitor, {
          ...(a.skill ? { skill: a.skill } : {}),
          ...(a.subject ? { subject: a.subject } : {}),
        });
        if (a.text || a.card) await post(conv, a.text, a.card);
        return { kind: a.kind, outcome: 'opened', conv };
      }
      default: {
        const view = a.conv
          ? await this.chat.conversation(ev.tenant, a.conv)
          : a.visitor
            ? await this.chat.openConversationOf(ev.tenant, a.visitor)
            : null;
        if (!view) return { kind: a.kind, outcome: 'skipped', reason: 'no such conversation' };
        if (!view.agent)
          return { kind: a.kind, outcome: 'skipped', conv: view.conv, reason: 'no agent is assigned' };
        this.push(ev.tenant, view.agent, {
          type: 'notice',
          conv: view.conv,
          text: a.text,
          event: { id: ev.id, type: ev.type },
          ts: Date.now(),
        });
        return { kind: a.kind, outcome: 'notified', conv: view.conv };
      }
    }
  }
}

/** Probes of `openFor` before giving up: closed conversations of the visitor on the same UTC day. */
const MAX_OPEN_PROBES = 32;

/** 24 hex digits of sha256(tenant, id): ids of any form become valid cmids and conversation ids. */
function digest(tenant: string, id: string): string {
  return createHash('sha256').update(tenant).update('\u0000').update(id).digest('hex').slice(0, 24);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no result within ${ms} ms`), { code: 'timeout' })),
      ms,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
