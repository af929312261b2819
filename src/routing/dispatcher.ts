/**
 * Hands a request to its shard's owner: in-process when this node owns the shard, else a NATS
 * request on `sb.shard.<n>` that only the owner subscribes to. Tracks ownership by rendezvous
 * hashing over live members. While a shard has no reachable owner (NATS "no responders", or the
 * view is changing), requests are retried with backoff until the deadline, then `unavailable`.
 */
import type { Ack, ConversationMessage } from '../../actors/conversation.js';
import type { Membership } from '../cluster/membership.js';
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { msgpackDecode, msgpackEncode } from '../protocol/codec.js';
import { isErrorCode, SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import { rendezvousOwner, SHARD_COUNT, shardOf } from './shard.js';
import type { ShardRouters } from './shard-routers.js';

export const SHARD_SUBJECT_PREFIX = 'sb.shard.';
const RETRY_BASE_MS = 25;
const RETRY_MAX_MS = 500;

interface ShardRequest {
  tenant: string;
  conv: string;
  msg: ConversationMessage;
}

type ShardReply = { ok: Ack } | { err: string; message: string; retryAfterMs?: number };

export class Dispatcher {
  private owners: Array<string | undefined> = new Array(SHARD_COUNT).fill(undefined);
  private readonly subs = new Map<number, TransportSubscription>();

  constructor(
    private readonly nodeId: string,
    private readonly transport: Transport,
    private readonly membership: Membership,
    private readonly routers: ShardRouters,
    private readonly requestTimeoutMs: number,
  ) {
    membership.onChange((members) => this.rebalance(members));
  }

  /** Applies the current membership view (call once after membership has started). */
  start(): void {
    this.rebalance(this.membership.members());
  }

  ownerOf(shard: number): string | undefined {
    return this.owners[shard];
  }

  /**
   * Delivers `msg` to the conversation's actor wherever it lives and resolves with its ack.
   * Rejects SwitchboardError: the actor's own refusal (forbidden, busy...), `unavailable` after the
   * deadline without an owner, `timeout` when the owner did not answer in time.
   */
  async ask(tenant: string, conv: string, msg: ConversationMessage): Promise<Ack> {
    const shard = shardOf(tenant, conv);
    const deadline = Date.now() + this.requestTimeoutMs;
    let backoff = RETRY_BASE_MS;
    for (;;) {
      const owner = this.owners[shard];
      try {
        if (owner === this.nodeId) return await this.routers.ask(shard, tenant, conv, msg);
        if (owner !== undefined) return await this.remote(shard, { tenant, conv, msg }, deadline);
      } catch (err) {
        if (!(err instanceof SwitchboardError) || err.code !== 'unavailable') throw err;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new SwitchboardError('unavailable', `shard ${shard} has no owner right now`, {
          retryAfterMs: 1000,
        });
      }
      await new Promise((r) => setTimeout(r, Math.min(backoff, left)));
      backoff = Math.min(backoff * 2, RETRY_MAX_MS);
    }
  }

  async stop(): Promise<void> {
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    await Promise.all(
      [...Array(SHARD_COUNT).keys()].filter((s) => this.routers.owns(s)).map((s) => this.routers.release(s)),
    );
  }

  private async remote(shard: number, req: ShardRequest, deadline: number): Promise<Ack> {
    const timeout = Math.max(1, deadline - Date.now());
    const data = await this.transport.request(SHARD_SUBJECT_PREFIX + shard, msgpackEncode(req), timeout);
    const reply = msgpackDecode(data) as ShardReply;
    if ('ok' in reply) return reply.ok;
    const code = isErrorCode(reply.err) ? reply.err : 'internal';
    throw new SwitchboardError(
      code,
      reply.message,
      reply.retryAfterMs ? { retryAfterMs: reply.retryAfterMs } : {},
    );
  }

  private rebalance(members: readonly string[]): void {
    const next = new Array<string | undefined>(SHARD_COUNT);
    for (let s = 0; s < SHARD_COUNT; s++) {
      next[s] = rendezvousOwner(s, members);
      const mine = next[s] === this.nodeId;
      if (mine && !this.routers.owns(s)) this.acquire(s);
      else if (!mine && this.routers.owns(s)) this.release(s);
    }
    this.owners = next;
  }

  private acquire(shard: number): void {
    this.routers.acquire(shard);
    const sub = this.transport.subscribe(
      SHARD_SUBJECT_PREFIX + shard,
      (m) => {
        let req: ShardRequest;
        try {
          req = msgpackDecode(m.data) as ShardRequest;
        } catch (err) {
          m.respond(msgpackEncode(errorReply(err)));
          return;
        }
        this.routers.ask(shard, req.tenant, req.conv, req.msg).then(
          (ack) => m.respond(msgpackEncode({ ok: ack } satisfies ShardReply)),
          (err) => m.respond(msgpackEncode(errorReply(err))),
        );
      },
      // A queue group: should two nodes briefly both think they own a shard, each request still
      // reaches only one of them.
      { queue: 'sb-shard' },
    );
    this.subs.set(shard, sub);
  }

  private release(shard: number): void {
    this.subs.get(shard)?.unsubscribe();
    this.subs.delete(shard);
    void this.routers.release(shard);
  }
}

function errorReply(err: unknown): ShardReply {
  const e = toSwitchboardError(err);
  return { err: e.code, message: e.message, ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}) };
}
