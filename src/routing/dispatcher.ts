/**
 * Hands a request to its shard's owner: in-process when this node holds the shard, else a NATS
 * request on `sb.shard.<n>`, which only the holder subscribes to (it subscribes after taking the
 * shard and unsubscribes before releasing it). While a shard has no owner (NATS "no responders",
 * a handover, a dead owner whose lease has not yet expired) requests are retried with backoff
 * until the deadline, then answered `unavailable`. Retrying is safe: the actor de-duplicates cmids
 * (and every other actor message is idempotent or carries its own de-duplication key).
 */
import type { ClusterNames } from '../cluster/names.js';
import type { OwnershipHooks, ShardOwnership } from '../cluster/ownership.js';
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { msgpackDecode, msgpackDecodePeer, msgpackEncode } from '../protocol/codec.js';
import { isErrorCode, SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import type { MemberLink } from './member-link.js';
import { shardOf } from './shard.js';
import type { ShardRouters } from './shard-routers.js';

const RETRY_BASE_MS = 25;
const RETRY_MAX_MS = 400;
/** One attempt's wait for an owner's answer; a paused owner must not eat the whole deadline. */
const ATTEMPT_TIMEOUT_MS = 2000;

export interface ShardRequest {
  tenant: string;
  /** The actor id (a conversation id, or an internal id: src/routing/actor-kind.ts). */
  id: string;
  msg: unknown;
  /**
   * How long the requester still waits, ms (relative, so that clocks of different hosts need not
   * agree): the owner drops the request unprocessed once this has passed. Absent from older nodes.
   */
  ttl?: number;
}

/**
 * A request on a shard's subject. It comes from another member, as the member link's do, so it is
 * decoded as their peer msgpack: bytes stay bytes (a chat body encoded for storage by its gateway rides
 * in `send`), where the client frames' decoder would read them as text and refuse them as invalid UTF-8.
 */
export function decodeShardRequest(data: Uint8Array): ShardRequest {
  return msgpackDecodePeer(data) as ShardRequest;
}

type ShardReply = { ok: unknown } | { err: string; message: string; retryAfterMs?: number };

export interface DispatchStats {
  retries: number;
  unavailable: number;
  /** Requests sent over the member link, and the NATS messages that carried them. */
  linkRequests: number;
  linkBatches: number;
}

export class Dispatcher implements OwnershipHooks {
  private readonly subs = new Map<number, TransportSubscription>();
  private ownership: ShardOwnership | undefined;
  private link: MemberLink | undefined;
  private self: string | undefined;
  private retries = 0;
  private unavailable = 0;

  constructor(
    private readonly transport: Transport,
    private readonly names: ClusterNames,
    private readonly routers: ShardRouters,
    private readonly requestTimeoutMs: number,
  ) {}

  /**
   * Attaches the ownership manager whose hooks this dispatcher is, and the member link that carries
   * requests to the shard's holder in coalesced batches (without it: one NATS request per message on
   * the shard's subject).
   */
  attach(ownership: ShardOwnership, link?: { self: string; link: MemberLink }): void {
    this.ownership = ownership;
    this.link = link?.link;
    this.self = link?.self;
  }

  /**
   * Delivers `msg` to actor `(tenant, id)` wherever it lives and resolves with its reply (for a
   * conversation `send`: the ack). Rejects SwitchboardError: the actor's own refusal (forbidden,
   * busy...), or `unavailable` / `timeout` when no owner answered before the deadline.
   */
  // biome-ignore lint/suspicious/noExplicitAny: replies are typed by the callers of each kind
  async ask(tenant: string, id: string, msg: unknown): Promise<any> {
    const shard = shardOf(tenant, id);
    const deadline = Date.now() + this.requestTimeoutMs;
    let backoff = RETRY_BASE_MS;
    let last: SwitchboardError | undefined;
    // After the link timed out once (the holder may be dead or paused), attempts go to the shard's
    // subject, which answers "no responders" at once when nobody holds it.
    let linkFailed = false;
    for (;;) {
      try {
        if (this.ownership?.holds(shard)) {
          return await withDeadline(this.routers.ask(shard, tenant, id, msg, deadline), deadline, shard);
        }
        const holder = this.link ? this.ownership?.holderOf(shard) : undefined;
        if (this.link && !linkFailed && holder !== undefined && holder !== this.self) {
          const timeout = Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now()));
          try {
            return await this.link.ask(holder, shard, tenant, id, msg, timeout);
          } catch (err) {
            if (err instanceof SwitchboardError && err.code === 'timeout') linkFailed = true;
            throw err;
          }
        }
        return await this.remote(shard, { tenant, id, msg }, deadline);
      } catch (err) {
        if (!(err instanceof SwitchboardError) || (err.code !== 'unavailable' && err.code !== 'timeout'))
          throw err;
        last = err;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.unavailable++;
        if (last?.code === 'timeout') throw last;
        throw new SwitchboardError('unavailable', `shard ${shard} has no owner right now`, {
          retryAfterMs: 1000,
        });
      }
      this.retries++;
      await new Promise((r) => setTimeout(r, Math.min(backoff, left)));
      backoff = Math.min(backoff * 2, RETRY_MAX_MS);
    }
  }

  stats(): DispatchStats {
    const l = this.link?.stats();
    return {
      retries: this.retries,
      unavailable: this.unavailable,
      linkRequests: l?.requests ?? 0,
      linkBatches: l?.requestBatches ?? 0,
    };
  }

  acquired(shard: number): void {
    this.routers.acquire(shard);
    const sub = this.transport.subscribe(
      this.names.shardSubject(shard),
      (m) => {
        let req: ShardRequest;
        try {
          req = decodeShardRequest(m.data);
        } catch (err) {
          m.respond(msgpackEncode(errorReply(err)));
          return;
        }
        const deadline = typeof req.ttl === 'number' && req.ttl > 0 ? Date.now() + req.ttl : undefined;
        this.routers.ask(shard, req.tenant, req.id, req.msg, deadline).then(
          (ack) => m.respond(msgpackEncode({ ok: ack } satisfies ShardReply)),
          (err) => m.respond(msgpackEncode(errorReply(err))),
        );
      },
      // A queue group, so that even a stale subscriber (a paused ex-owner) shares rather than
      // duplicates: each request reaches one subscriber, and a stale one refuses it (fenced).
      { queue: 'sb-shard' },
    );
    this.subs.set(shard, sub);
  }

  async release(shard: number): Promise<void> {
    this.subs.get(shard)?.unsubscribe();
    this.subs.delete(shard);
    await this.routers.release(shard);
  }

  private async remote(shard: number, req: ShardRequest, deadline: number): Promise<unknown> {
    const timeout = Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now()));
    const data = await this.transport.request(
      this.names.shardSubject(shard),
      msgpackEncode({ ...req, ttl: timeout }),
      timeout,
    );
    const reply = msgpackDecode(data) as ShardReply;
    if ('ok' in reply) return reply.ok;
    const code = isErrorCode(reply.err) ? reply.err : 'internal';
    throw new SwitchboardError(
      code,
      reply.message,
      reply.retryAfterMs ? { retryAfterMs: reply.retryAfterMs } : {},
    );
  }
}

/**
 * The caller stops waiting at the deadline (`timeout`); the actor still finishes the message, and
 * a retry with the same cmid gets its ack.
 */
function withDeadline<T>(work: Promise<T>, deadline: number, shard: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new SwitchboardError('timeout', `shard ${shard} did not answer before the deadline`)),
      Math.max(1, deadline - Date.now()),
    );
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function errorReply(err: unknown): ShardReply {
  const e = toSwitchboardError(err);
  return { err: e.code, message: e.message, ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}) };
}
