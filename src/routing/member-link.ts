/**
 * The link between cluster members: requests for shards another member holds, and their replies,
 * coalesced per destination member. Every request made during one turn of the event loop for the same
 * member travels in one NATS message on that member's inbox (`<root>.member.<id>`); the replies it
 * completes during one turn travel back the same way. Between two busy members this turns one NATS
 * request and reply per chat message into a few batches per turn (the way Akka Artery and Orleans batch
 * between silos). The receiver serves an item only while it holds the item's shard, else answers
 * `unavailable` (the requester's view of the record was stale), so the dispatcher retries; the fence of
 * every write is unchanged (src/routing/actor-cell.ts).
 *
 * Bounds: at most `maxPending` requests wait for replies (beyond: `busy`), at most `maxBatch` items per
 * NATS message (a full batch goes at once), and every request has its own timeout.
 */
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { TurnFlush } from '../cluster/turn-flush.js';
import { msgpackDecodePeer, msgpackEncode } from '../protocol/codec.js';
import { BusyError, isErrorCode, SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import { contextFromHeaders, traced, traceHeaders } from '../telemetry/tracing.js';

export const DEFAULT_LINK_MAX_PENDING = 10_000;
export const DEFAULT_LINK_MAX_BATCH = 256;
const BUSY_RETRY_AFTER_MS = 100;

/** One request: `i` is the requester's id for it, `ttl` how long the requester still waits (ms). */
export interface LinkRequest {
  i: number;
  shard: number;
  tenant: string;
  id: string;
  msg: unknown;
  ttl: number;
  /** W3C trace headers of the requester's span, while tracing is on (a batch mixes traces). */
  tc?: Record<string, string>;
}

export type LinkReply =
  | { i: number; ok: unknown }
  | { i: number; err: string; message: string; retryAfterMs?: number };

type Envelope = { k: 'q'; from: string; items: LinkRequest[] } | { k: 'r'; items: LinkReply[] };

/** What the link serves requests with: the local shard routers behind the ownership check. */
export interface LinkServer {
  holds(shard: number): boolean;
  ask(shard: number, tenant: string, id: string, msg: unknown, deadline: number): Promise<unknown>;
}

export interface LinkStats {
  /** NATS messages sent with requests, and the requests in them. */
  requestBatches: number;
  requests: number;
  /** NATS messages sent with replies, and the replies in them. */
  replyBatches: number;
  replies: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

export class MemberLink {
  readonly #transport: Transport;
  readonly #self: string;
  readonly #subjectOf: (member: string) => string;
  readonly #server: LinkServer;
  readonly #maxPending: number;
  readonly #maxBatch: number;
  readonly #pending = new Map<number, Pending>();
  readonly #requests = new Map<string, LinkRequest[]>();
  readonly #replies = new Map<string, LinkReply[]>();
  #sub: TransportSubscription | undefined;
  #next = 1;
  readonly #flush: TurnFlush;
  readonly #stats: LinkStats = { requestBatches: 0, requests: 0, replyBatches: 0, replies: 0 };

  constructor(opts: {
    transport: Transport;
    self: string;
    subjectOf: (member: string) => string;
    server: LinkServer;
    maxPending?: number;
    maxBatch?: number;
    /** Shared with the member's other outboxes, so that a turn's NATS messages leave in one write. */
    flush?: TurnFlush;
  }) {
    this.#transport = opts.transport;
    this.#self = opts.self;
    this.#subjectOf = opts.subjectOf;
    this.#server = opts.server;
    this.#maxPending = opts.maxPending ?? DEFAULT_LINK_MAX_PENDING;
    this.#maxBatch = opts.maxBatch ?? DEFAULT_LINK_MAX_BATCH;
    if (!Number.isSafeInteger(this.#maxPending) || this.#maxPending < 1)
      throw new Error('link.maxPending must be a positive integer');
    if (!Number.isSafeInteger(this.#maxBatch) || this.#maxBatch < 1)
      throw new Error('link.maxBatch must be a positive integer');
    this.#flush = opts.flush ?? new TurnFlush(0); // alone: at the end of each turn
    this.#flush.register(() => this.#flushAll());
  }

  /** Subscribes to this member's inbox. */
  start(): void {
    this.#sub = this.#transport.subscribe(this.#subjectOf(this.#self), (m) => this.#receive(m.data));
  }

  /** Unsubscribes; requests still waiting are rejected `unavailable` (their callers retry). */
  stop(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    for (const [i, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(
        new SwitchboardError('unavailable', 'member link closed', { retryAfterMs: BUSY_RETRY_AFTER_MS }),
      );
      this.#pending.delete(i);
    }
  }

  stats(): LinkStats {
    return { ...this.#stats };
  }

  /**
   * Asks `member` to deliver `msg` to actor `(tenant, id)` on `shard`. Resolves with the actor's reply;
   * rejects SwitchboardError: the actor's refusal, `unavailable` when the member does not hold the shard,
   * `timeout` after `timeoutMs`, `busy` when maxPending requests already wait.
   */
  ask(
    member: string,
    shard: number,
    tenant: string,
    id: string,
    msg: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(new BusyError('member link', this.#maxPending, BUSY_RETRY_AFTER_MS));
    }
    const i = this.#next++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(i);
        reject(new SwitchboardError('timeout', `no answer from ${member} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(i, { resolve, reject, timer });
      const tc = traceHeaders();
      this.#enqueue('q', member, { i, shard, tenant, id, msg, ttl: timeoutMs, ...(tc ? { tc } : {}) });
    });
  }

  #enqueue(kind: 'q' | 'r', member: string, item: LinkRequest | LinkReply): void {
    const box = (kind === 'q' ? this.#requests : this.#replies) as Map<
      string,
      Array<LinkRequest | LinkReply>
    >;
    let list = box.get(member);
    if (list === undefined) {
      list = [];
      box.set(member, list);
    }
    list.push(item);
    if (list.length >= this.#maxBatch) this.#flushOne(kind, member);
    else this.#flush.schedule();
  }

  #flushAll(): void {
    for (const member of [...this.#requests.keys()]) this.#flushOne('q', member);
    for (const member of [...this.#replies.keys()]) this.#flushOne('r', member);
  }

  #flushOne(kind: 'q' | 'r', member: string): void {
    let envelope: Envelope;
    if (kind === 'q') {
      const items = this.#requests.get(member);
      this.#requests.delete(member);
      if (items === undefined || items.length === 0) return;
      envelope = { k: 'q', from: this.#self, items };
      this.#stats.requestBatches++;
      this.#stats.requests += items.length;
    } else {
      const items = this.#replies.get(member);
      this.#replies.delete(member);
      if (items === undefined || items.length === 0) return;
      envelope = { k: 'r', items };
      this.#stats.replyBatches++;
      this.#stats.replies += items.length;
    }
    this.#transport.publish(this.#subjectOf(member), msgpackEncode(envelope));
  }

  #receive(data: Uint8Array): void {
    let env: Envelope;
    try {
      env = msgpackDecodePeer(data) as Envelope;
    } catch {
      return; // not ours to answer: the requesters time out and retry
    }
    if (env === null || typeof env !== 'object') return;
    if (env.k === 'r' && Array.isArray(env.items)) {
      for (const r of env.items) this.#settle(r);
    } else if (env.k === 'q' && Array.isArray(env.items) && typeof env.from === 'string') {
      for (const q of env.items) this.#serve(env.from, q);
    }
  }

  #settle(r: LinkReply): void {
    const p = this.#pending.get(r.i);
    if (p === undefined) return; // timed out already
    this.#pending.delete(r.i);
    clearTimeout(p.timer);
    if ('ok' in r) p.resolve(r.ok);
    else {
      const code = isErrorCode(r.err) ? r.err : 'internal';
      p.reject(new SwitchboardError(code, r.message, r.retryAfterMs ? { retryAfterMs: r.retryAfterMs } : {}));
    }
  }

  #serve(from: string, q: LinkRequest): void {
    const answer = (reply: LinkReply) => this.#enqueue('r', from, reply);
    if (!this.#server.holds(q.shard)) {
      answer({ i: q.i, err: 'unavailable', message: `shard ${q.shard} is not held here`, retryAfterMs: 25 });
      return;
    }
    const deadline = Date.now() + (typeof q.ttl === 'number' && q.ttl > 0 ? q.ttl : 1);
    const work =
      q.tc === undefined
        ? this.#server.ask(q.shard, q.tenant, q.id, q.msg, deadline)
        : traced(
            'sb.link',
            q.tenant,
            q.id,
            (item: LinkRequest, d: number) => this.#server.ask(item.shard, item.tenant, item.id, item.msg, d),
            q,
            deadline,
            contextFromHeaders(q.tc),
          );
    work.then(
      (ok) => answer({ i: q.i, ok: ok ?? null }),
      (err: unknown) => {
        const e = toSwitchboardError(err);
        answer({
          i: q.i,
          err: e.code,
          message: e.message,
          ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}),
        });
      },
    );
  }
}
