/**
 * Conversation events out, for business systems: each is published on NATS
 * `sb.out.<tenant>.<type>` (ClusterNames.outSubject) as a JSON object with a `Nats-Msg-Id` header
 * equal to its `id`, so a JetStream stream over `sb.out.>` de-duplicates re-publications.
 * Payloads are documented in docs/INTEGRATION.md.
 *
 * Delivery is at most once per publication on core NATS: events are published after the change
 * they describe is durable; a node that dies between the write and the publish loses that event
 * (the conversation state in Cassandra stays the truth).
 */
import type { ActorRef } from '../../actors/conversation.js';
import type { ClusterNames } from '../cluster/names.js';
import type { Card } from '../store/types.js';

export const OUT_EVENT_TYPES = [
  'created',
  'assigned',
  'transferred',
  'message',
  'closed',
  'rated',
  'labeled',
] as const;
export type OutEventType = (typeof OUT_EVENT_TYPES)[number];

interface Base {
  /** ULID of the event; also the Nats-Msg-Id header. */
  id: string;
  tenant: string;
  conv: string;
  /** When the change became durable, epoch ms. */
  ts: number;
  /** The conversation's labels, sorted; absent when it has none (issue #17). */
  labels?: string[];
}

export interface CreatedEvent extends Base {
  type: 'created';
  visitor: string;
  skill: string | null;
  subject: string | null;
}
export interface AssignedEvent extends Base {
  type: 'assigned';
  agent: string;
  by: ActorRef;
}
export interface TransferredEvent extends Base {
  type: 'transferred';
  from: string;
  to: { agent: string } | { skill: string | null };
  by: ActorRef;
}
export interface MessageEvent extends Base {
  type: 'message';
  seq: number;
  /** The message's ULID. */
  msgId: string;
  from: string;
  role: 'visitor' | 'agent' | 'system' | 'bot';
  /** The body as agents see it (after masking: see agentViewOfBody). */
  body: string;
  card?: Card;
  /** A private note (or a change of one): agents only, never shown to the visitor. */
  internal?: true;
  /** A recall (body empty) or an edit (body = the new text) of message `target`. */
  change?: 'recall' | 'edit';
  target?: number;
}
export interface ClosedEvent extends Base {
  type: 'closed';
  by: ActorRef;
  reason: string | null;
  visitor: string;
  agent: string | null;
}
export interface RatedEvent extends Base {
  type: 'rated';
  visitor: string;
  score: number;
  comment: string | null;
}

/** Labels were added or removed; `labels` is the whole set afterwards. */
export interface LabeledEvent extends Base {
  type: 'labeled';
  labels: string[];
  added: string[];
  removed: string[];
  by: ActorRef;
}

export type OutEvent =
  | LabeledEvent
  | CreatedEvent
  | AssignedEvent
  | TransferredEvent
  | MessageEvent
  | ClosedEvent
  | RatedEvent;

/** Transforms a message body into what agents (and so business systems) may see. */
export type BodyMasker = (body: string) => Promise<string>;

/**
 * THE one place a message event's body is masked before it leaves the broker. Bodies are already
 * sensitive-word filtered at the gateway; node.ts passes the worker pool's PII masking (phone, ID
 * and bank card numbers, e-mail addresses). Without a masker the body passes unchanged.
 */
export function agentViewOfBody(masker: BodyMasker | undefined, body: string): Promise<string> {
  return masker ? masker(body) : Promise.resolve(body);
}

export interface EventSink {
  publish(subject: string, data: Uint8Array, headers: Record<string, string>): void;
}

export interface EventPublisher {
  /** Publishes `event`; a message event's body is masked first unless `bodyMasked` says it already is. */
  emit(event: OutEvent, bodyMasked?: boolean): void;
}

/** Whether anything consumes a tenant's out events of a type (settings.ts consumesOutEvent). */
export type OutEventConsumers = (tenant: string, type: OutEventType) => boolean;

/**
 * Events of these types are published only when `consumes` says a consumer reads them: one per chat
 * message, each masked on the pool, encoded, published and stored in sb_out. The lifecycle events
 * (a few per conversation) always go out: the broker's own context look-ups listen to
 * `assigned`/`transferred`, and business systems may follow conversations without declaring it.
 */
export const CONSUMED_ONLY_TYPES: ReadonlySet<OutEventType> = new Set(['message']);

/**
 * Publishes events; `onError` hears of a failed masking (the event is then dropped rather than
 * leaking an unmasked body). Without `consumes`, every event is published.
 */
export function createEventPublisher(
  sink: EventSink,
  names: Pick<ClusterNames, 'outSubject'>,
  masker: BodyMasker | undefined,
  onError: (err: unknown, event: OutEvent) => void,
  consumes?: OutEventConsumers,
): EventPublisher {
  const encoder = new TextEncoder();
  const send = (e: OutEvent) =>
    sink.publish(names.outSubject(e.tenant, e.type), encoder.encode(JSON.stringify(e)), {
      'Nats-Msg-Id': e.id,
    });
  return {
    emit(event, bodyMasked = false) {
      if (consumes && CONSUMED_ONLY_TYPES.has(event.type) && !consumes(event.tenant, event.type)) return;
      if (event.type !== 'message' || !masker || bodyMasked) {
        send(event);
        return;
      }
      agentViewOfBody(masker, event.body).then(
        (body) => send({ ...event, body }),
        (err) => onError(err, event),
      );
    },
  };
}
