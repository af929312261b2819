/**
 * Our small interface over NATS: publish, subscribe, request-reply and the KV bucket used for
 * membership. The rest of the broker sees these types, never the nats package.
 */
import {
  connect,
  ErrorCode,
  Events,
  type KV,
  type NatsConnection,
  type NatsError,
  headers as natsHeaders,
  type Subscription,
} from 'nats';
import { SwitchboardError } from '../protocol/errors.js';
import { createJetStreamPort, type JetStreamPort } from './jetstream.js';
import { retrySetup, type SetupRetryListener } from './setup-retry.js';

export interface IncomingMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The message's NATS headers, when it has any. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Answers a request; false when the message was not a request. */
  respond(data: Uint8Array): boolean;
}

export interface TransportSubscription {
  unsubscribe(): void;
}

export interface KvLease {
  key: string;
  value: Uint8Array;
  /** Server time of the last put, epoch ms. */
  updatedAt: number;
  /** The entry's revision, for compare-and-set. */
  revision: number;
  deleted: boolean;
}

export interface KvBucket {
  put(key: string, value: Uint8Array): Promise<void>;
  /** Creates the key; rejects when it exists. Resolves with the new revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** The current entry of `key`, or null when it has none. */
  get(key: string): Promise<KvLease | null>;
  /** Compare-and-set: rejects unless the key is at `revision`. Resolves with the new revision. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  delete(key: string): Promise<void>;
  /**
   * Calls `onEntry` for every current entry and each later change, until the returned stop is
   * called. Resolves once every entry that existed at the start has been delivered.
   */
  watch(onEntry: (entry: KvLease) => void): Promise<() => void>;
}

export interface Transport {
  readonly name: string;
  /** Hears each JetStream setup call tried again (kv buckets, streams, consumers, watches): the node logs it. */
  readonly onSetupRetry?: SetupRetryListener | undefined;
  /** Fire and forget; `headers` become NATS message headers (e.g. `Nats-Msg-Id`). */
  publish(subject: string, data: Uint8Array, headers?: Record<string, string>): void;
  subscribe(
    subject: string,
    handler: (msg: IncomingMessage) => void,
    opts?: { queue?: string },
  ): TransportSubscription;
  /**
   * Request-reply with a deadline. Rejects SwitchboardError `unavailable` when nobody serves the
   * subject (NATS 503 no responders) and `timeout` when nobody answered in time. `headers` become
   * NATS message headers (trace context: src/telemetry/nats.ts).
   */
  request(
    subject: string,
    data: Uint8Array,
    timeoutMs: number,
    headers?: Record<string, string>,
  ): Promise<Uint8Array>;
  /** Resolves when the server has processed everything sent so far (subscriptions included). */
  flush(): Promise<void>;
  /** A JetStream KV bucket whose keys expire `ttlMs` after their last put (0 = never). */
  kv(bucket: string, ttlMs: number): Promise<KvBucket>;
  /** JetStream streams and durable consumers (src/cluster/jetstream.ts). */
  jetstream(): JetStreamPort;
  /** Flushes pending publishes and closes; resolves when closed. */
  close(): Promise<void>;
  /** Resolves when the connection is closed for good (by close() or after giving up reconnecting). */
  closed(): Promise<void>;
}

export interface TransportOptions {
  /** Copies of every KV bucket and stream created through this transport (3 on a 3-server cluster). */
  replicas?: number;
  /**
   * Hears of each JetStream setup call (bucket, stream, consumer) that failed transiently and will be
   * tried again: a start that waits on a busy JetStream says so instead of going quiet for seconds.
   */
  onSetupRetry?: SetupRetryListener;
}

/**
 * Connects to NATS (reconnecting forever). `onHandlerError` hears of any exception a subscription
 * handler threw; that message is dropped, the connection keeps serving.
 */
export async function connectTransport(
  servers: string[],
  name: string,
  onHandlerError: (subject: string, err: unknown) => void = () => {},
  options: TransportOptions = {},
): Promise<Transport> {
  const nc = await connect({
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 5000,
  });
  return new NatsTransport(nc, name, onHandlerError, options.replicas ?? 1, options.onSetupRetry);
}

class NatsTransport implements Transport {
  private js: JetStreamPort | undefined;
  private readonly reconnectListeners = new Set<() => void>();

  constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    private readonly onHandlerError: (subject: string, err: unknown) => void,
    private readonly replicas: number,
    readonly onSetupRetry: SetupRetryListener | undefined,
  ) {
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Reconnect) for (const l of [...this.reconnectListeners]) l();
      }
    })().catch(() => {});
  }

  publish(subject: string, data: Uint8Array, headers?: Record<string, string>): void {
    if (!headers) {
      this.nc.publish(subject, data);
      return;
    }
    this.nc.publish(subject, data, { headers: toNatsHeaders(headers) });
  }

  subscribe(subject: string, handler: (msg: IncomingMessage) => void, opts: { queue?: string } = {}) {
    const sub: Subscription = this.nc.subscribe(subject, {
      ...(opts.queue ? { queue: opts.queue } : {}),
      callback: (err, msg) => {
        if (err) return;
        try {
          const incoming: IncomingMessage = {
            subject: msg.subject,
            data: msg.data,
            respond: (d) => msg.respond(d),
            ...(msg.headers
              ? { headers: Object.fromEntries([...msg.headers].map(([k, v]) => [k, v.join(',')])) }
              : {}),
          };
          handler(incoming);
        } catch (e) {
          // A throw escaping into nats.js would stop it dispatching for this connection: contain it.
          this.onHandlerError(subject, e);
        }
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async request(
    subject: string,
    data: Uint8Array,
    timeoutMs: number,
    headers?: Record<string, string>,
  ): Promise<Uint8Array> {
    try {
      const reply = await this.nc.request(subject, data, {
        timeout: timeoutMs,
        ...(headers ? { headers: toNatsHeaders(headers) } : {}),
      });
      return reply.data;
    } catch (err) {
      const code = (err as NatsError).code;
      if (code === ErrorCode.NoResponders) {
        throw new SwitchboardError('unavailable', `no responder on ${subject}`, {
          cause: err,
          retryAfterMs: 500,
        });
      }
      if (code === ErrorCode.Timeout) {
        throw new SwitchboardError('timeout', `no answer on ${subject} within ${timeoutMs} ms`, {
          cause: err,
        });
      }
      throw new SwitchboardError('unavailable', `NATS request failed: ${(err as Error).message}`, {
        cause: err,
        retryAfterMs: 500,
      });
    }
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async kv(bucket: string, ttlMs: number): Promise<KvBucket> {
    // allow_direct off: a get goes through the stream's leader, never a lagging replica. Leases are
    // judged from these reads (Membership.confirmExpired), so a stale copy must not answer them.
    const kv: KV = await retrySetup(
      `kv bucket ${bucket}`,
      () =>
        this.nc
          .jetstream()
          .views.kv(bucket, { ttl: ttlMs, history: 1, replicas: this.replicas, allow_direct: false }),
      { onRetry: this.onSetupRetry },
    );
    return {
      put: async (key, value) => {
        await kv.put(key, value);
      },
      create: (key, value) => kv.create(key, value),
      get: async (key) => {
        const e = await kv.get(key);
        if (!e) return null;
        return {
          key: e.key,
          value: e.value,
          updatedAt: e.created.getTime(),
          revision: e.revision,
          deleted: e.operation !== 'PUT',
        };
      },
      update: (key, value, revision) => kv.update(key, value, revision),
      delete: async (key) => {
        await kv.delete(key);
      },
      watch: async (onEntry) => {
        const open = async () => {
          let initialized!: () => void;
          const ready = new Promise<void>((r) => {
            initialized = r;
          });
          const iter = await kv.watch({ key: '>', initializedFn: () => initialized() });
          (async () => {
            for await (const e of iter) {
              onEntry({
                key: e.key,
                value: e.value,
                updatedAt: e.created.getTime(),
                revision: e.revision,
                deleted: e.operation !== 'PUT',
              });
            }
          })().catch(() => {});
          await ready;
          return iter;
        };
        let iter = await open();
        let stopped = false;
        // After a reconnect the watch's consumer may be gone or behind (a restarted server, a healed
        // partition): watch afresh, which delivers every current entry again (issue #12).
        const reopen = () => {
          if (stopped) return;
          const old = iter;
          open().then(
            (fresh) => {
              old.stop();
              if (stopped) fresh.stop();
              else iter = fresh;
            },
            () => {},
          );
        };
        this.reconnectListeners.add(reopen);
        return () => {
          stopped = true;
          this.reconnectListeners.delete(reopen);
          iter.stop();
        };
      },
    };
  }

  jetstream(): JetStreamPort {
    this.js ??= createJetStreamPort(this.nc, this.replicas, this.onSetupRetry);
    return this.js;
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }

  async closed(): Promise<void> {
    await this.nc.closed();
  }
}

function toNatsHeaders(headers: Record<string, string>) {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  return h;
}
