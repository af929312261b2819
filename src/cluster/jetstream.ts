/**
 * Our small interface over JetStream: bounded streams, a durable pull consumer shared by every
 * member of the cluster (each stored message goes to one member at a time: JetStream's form of a
 * queue group, with redelivery when a member dies before acknowledging), and publishing with a
 * de-duplication id. The rest of the broker sees these types, never the nats package.
 */
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  DiscardPolicy,
  type JsMsg,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
  RetentionPolicy,
  StorageType,
} from 'nats';
import { retrySetup, type SetupRetryListener } from './setup-retry.js';

export const MSG_ID_HEADER = 'Nats-Msg-Id';

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** `workqueue`: a message is removed once acknowledged (one consumer); `limits`: kept until a limit. */
  retention: 'workqueue' | 'limits';
  maxAgeMs: number;
  maxMsgs: number;
  /**
   * 0 = no byte limit. A positive limit makes nats-server reserve that much memory or disk for the
   * stream up front (and refuse the stream when its reservations run out), so the default bounds by
   * messages × message size instead.
   */
  maxBytes: number;
  /** Largest message the stream stores; a bigger publish is refused to the publisher. */
  maxMsgSize: number;
  /** Messages with the same Nats-Msg-Id inside this window are stored once. */
  duplicateWindowMs: number;
  storage: 'file' | 'memory';
}

export interface StreamMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The Nats-Msg-Id header, when the publisher set one. */
  readonly msgId: string | undefined;
  /** 1 on the first delivery, 2 on the first redelivery... */
  readonly deliveryCount: number;
  /** The stream sequence: unique per stored message. */
  readonly streamSeq: number;
  /** When the stream stored it, epoch ms. */
  readonly storedAt: number;
  header(name: string): string | undefined;
  ack(): void;
  /** Redeliver after `delayMs`. */
  nak(delayMs?: number): void;
  /** Extends the ack deadline (the handler is still busy). */
  working(): void;
  /** Never redeliver. */
  term(): void;
}

export interface ConsumerSpec {
  stream: string;
  durable: string;
  filterSubject?: string;
  /** Unacknowledged this long = redelivered to some member. */
  ackWaitMs: number;
  /** Deliveries per message before the server gives up on it. */
  maxDeliver: number;
  /** Unacknowledged messages across the cluster before the server stops delivering. */
  maxAckPending: number;
}

export interface WorkConsumer {
  /** Stops pulling; resolves once every handler running now has settled. */
  stop(): Promise<void>;
}

export interface JetStreamPort {
  /** Creates the stream, or updates it to `spec` when it exists with another configuration. */
  ensureStream(spec: StreamSpec): Promise<void>;
  /**
   * Creates (or updates) the durable consumer now, so that a later `consume` of the same spec makes no
   * request before it pulls: a node does its JetStream setup before it takes shards, while its loop is
   * free (a restarted owner's setup waited 19 s behind the traffic of its shards, bench connections kill
   * storm, 2026-12-07).
   */
  prepare(spec: ConsumerSpec): Promise<void>;
  /**
   * Creates (or updates) the durable consumer and handles its messages here, at most `maxInFlight`
   * at once. A handler decides ack / nak / term; one that throws is nak'ed after `retryDelayMs`.
   */
  consume(
    spec: ConsumerSpec,
    opts: { maxInFlight: number; retryDelayMs: number },
    handler: (msg: StreamMessage) => Promise<void>,
    onError?: (err: unknown) => void,
  ): Promise<WorkConsumer>;
  /** Publishes into a stream and waits for the store. `duplicate` is true when the id was seen inside the window. */
  publish(
    subject: string,
    data: Uint8Array,
    msgId?: string,
    headers?: Record<string, string>,
  ): Promise<{ seq: number; duplicate: boolean }>;
}

export function createJetStreamPort(
  nc: NatsConnection,
  replicas = 1,
  onRetry?: SetupRetryListener,
): JetStreamPort {
  // Every setup request is inside a retried call, `jetstreamManager()` too: it asks the server for its
  // account info, and on a busy JetStream that can time out like any other (a restarted worker exited
  // before ready on a bare `TIMEOUT`, bench connections kill storm, 2026-12-07).
  // Consumers set up by `prepare` and not yet consumed, by stream/durable (one entry per durable).
  const prepared = new Map<string, { spec: string; consumer: Consumer }>();

  async function setupConsumer(spec: ConsumerSpec): Promise<Consumer> {
    const cfg = {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(spec.ackWaitMs),
      max_deliver: spec.maxDeliver,
      max_ack_pending: spec.maxAckPending,
      ...(spec.filterSubject ? { filter_subject: spec.filterSubject } : {}),
    };
    // Setup, retried like the stream's: a stream created a moment ago may still be electing its leader.
    return retrySetup(
      `consumer ${spec.stream}/${spec.durable}`,
      async () => {
        const jsm = await nc.jetstreamManager();
        try {
          await jsm.consumers.add(spec.stream, cfg);
        } catch (err) {
          // Exists with an older configuration (a deploy changed a bound): update it in place.
          if (!/already in use|exists/i.test(String((err as Error).message))) throw err;
          await jsm.consumers.update(spec.stream, spec.durable, cfg);
        }
        return nc.jetstream().consumers.get(spec.stream, spec.durable);
      },
      { onRetry },
    );
  }

  async function ensureStreamOnce(spec: StreamSpec): Promise<void> {
    const jsm = await nc.jetstreamManager();
    const cfg = {
      name: spec.name,
      subjects: spec.subjects,
      retention: spec.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
      max_age: nanos(spec.maxAgeMs),
      max_msgs: spec.maxMsgs,
      max_bytes: spec.maxBytes > 0 ? spec.maxBytes : -1,
      max_msg_size: spec.maxMsgSize,
      duplicate_window: nanos(spec.duplicateWindowMs),
      storage: spec.storage === 'file' ? StorageType.File : StorageType.Memory,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
    };
    try {
      await jsm.streams.info(spec.name);
      await jsm.streams.update(spec.name, cfg);
    } catch (err) {
      if (!/stream not found/i.test(String((err as Error).message))) throw err;
      try {
        await jsm.streams.add(cfg);
      } catch (e) {
        // Another member created it between our info and add: same config, nothing to do.
        if (!/already in use/i.test(String((e as Error).message))) throw e;
      }
    }
  }

  return {
    ensureStream(spec) {
      return retrySetup(`stream ${spec.name}`, () => ensureStreamOnce(spec), { onRetry });
    },

    async prepare(spec) {
      const consumer = await setupConsumer(spec);
      prepared.set(`${spec.stream}/${spec.durable}`, { spec: JSON.stringify(spec), consumer });
    },

    async consume(spec, opts, handler, onError = () => {}) {
      const key = `${spec.stream}/${spec.durable}`;
      const ready = prepared.get(key);
      prepared.delete(key);
      const consumer =
        ready !== undefined && ready.spec === JSON.stringify(spec)
          ? ready.consumer
          : await setupConsumer(spec);
      const messages = await consumer.consume({ max_messages: Math.max(1, opts.maxInFlight) });
      const running = new Set<Promise<void>>();
      let release: (() => void) | undefined;
      const loop = (async () => {
        for await (const m of messages) {
          while (running.size >= opts.maxInFlight) {
            await new Promise<void>((r) => {
              release = r;
            });
          }
          const wrapped = wrap(m);
          const p = handler(wrapped)
            .catch((err) => {
              onError(err);
              try {
                m.nak(opts.retryDelayMs);
              } catch {
                // connection gone: the server redelivers after ack_wait
              }
            })
            .finally(() => {
              running.delete(p);
              const r = release;
              release = undefined;
              r?.();
            });
          running.add(p);
        }
      })().catch(onError);
      return {
        async stop() {
          await messages.close().catch(() => {});
          await loop;
          await Promise.allSettled([...running]);
        },
      };
    },

    async publish(subject, data, msgId, hdrs) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(hdrs ?? {})) h.set(k, v);
      const ack = await nc.jetstream().publish(subject, data, {
        ...(msgId ? { msgID: msgId } : {}),
        headers: h,
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },
  };
}

function wrap(m: JsMsg): StreamMessage {
  return {
    subject: m.subject,
    data: m.data,
    msgId: m.headers?.get(MSG_ID_HEADER) || undefined,
    deliveryCount: m.info.deliveryCount,
    streamSeq: m.seq,
    storedAt: Math.floor(m.info.timestampNanos / 1e6),
    header: (name) => m.headers?.get(name) || undefined,
    ack: () => m.ack(),
    nak: (delayMs) => m.nak(delayMs),
    working: () => m.working(),
    term: () => m.term(),
  };
}
