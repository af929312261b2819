/**
 * The local side of the 1024 shard routers: for each shard this node owns, a bounded count of
 * admitted requests in front of the actors it hosts (conversations, tenant queues, agents: see
 * actor-kind.ts). Actors are activated on demand, bounded in number (least-recently-used idle
 * ones are passivated first) and passivated when idle.
 */
import type { Clock } from '../clock.js';
import { BusyError, SwitchboardError } from '../protocol/errors.js';
import { ActorCell } from './actor-cell.js';
import type { ActorHosting } from './actor-kind.js';
import { BUSY_RETRY_AFTER_MS } from './mailbox.js';
import { SHARD_COUNT } from './shard.js';

export interface ShardRoutersOptions {
  shardMailboxCapacity: number;
  actorMailboxCapacity: number;
  maxActive: number;
  idleMs: number;
}

export interface RouterStats {
  activeActors: number;
  ownedShards: number;
  inFlight: number;
  /** The most requests admitted to one shard right now. */
  maxShardDepth: number;
  rejected: number;
  /** Requests answered `timeout` without being processed: they waited in a mailbox past their deadline. */
  expired: number;
}

export class ShardRouters {
  private readonly owned = new Uint8Array(SHARD_COUNT);
  private readonly pending = new Uint32Array(SHARD_COUNT);
  /**
   * Counts each shard's acquisitions. A cell belongs to the acquisition that created it: its fence
   * fails once the shard is acquired again, and a request after that gets a fresh cell that reloads
   * from the store. A cell kept across a release and a re-acquisition (a fence after a pause, whose
   * drain was still running when the shard came back) would write from its stale seq and de-dup window.
   */
  private readonly epochs = new Uint32Array(SHARD_COUNT);
  // Map iteration order is insertion order: re-inserting on use keeps the LRU cell first.
  private readonly cells = new Map<string, ActorCell>();
  private rejected = 0;
  private expired = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly opts: ShardRoutersOptions,
    private readonly hosting: ActorHosting,
    private readonly clock: Clock,
    /** The fence: does this node still hold the shard with a valid lease? Checked around every write. */
    private readonly holds: (shard: number) => boolean = () => true,
  ) {
    this.sweeper = setInterval(() => this.passivateIdle(), Math.min(opts.idleMs, 30_000));
    this.sweeper.unref();
  }

  owns(shard: number): boolean {
    return this.owned[shard] === 1;
  }

  /** Starts accepting requests for `shard`. */
  acquire(shard: number): void {
    this.owned[shard] = 1;
    this.epochs[shard]!++;
  }

  /**
   * Stops accepting for `shard`, waits for its admitted requests to finish, then passivates its
   * actors so a later owner (maybe this node again) reloads their state from the store.
   */
  async release(shard: number): Promise<void> {
    const epoch = this.epochs[shard]!;
    this.owned[shard] = 0;
    // Acquired again meanwhile: the cells of this acquisition are fenced off, nothing left to wait for.
    while (this.pending[shard]! > 0 && this.epochs[shard] === epoch)
      await new Promise((r) => setTimeout(r, 5));
    for (const [key, cell] of this.cells)
      if (cell.shard === shard && cell.epoch === epoch && !cell.busy) this.drop(key, cell);
  }

  /**
   * Admits a request to actor `(tenant, id)` on `shard` and resolves with its reply. Rejects
   * `unavailable` when this node does not own the shard, BusyError when the shard mailbox, the
   * actor mailbox or the active-actor bound is full, or the actor's own SwitchboardError. With a
   * `deadline` (epoch ms), a request still queued then is rejected `timeout` unprocessed (ActorCell.ask).
   */
  // biome-ignore lint/suspicious/noExplicitAny: replies are typed by the callers of each kind
  async ask(shard: number, tenant: string, id: string, msg: unknown, deadline?: number): Promise<any> {
    if (!this.owns(shard) || !this.holds(shard)) {
      throw new SwitchboardError('unavailable', `shard ${shard} is not owned here`, { retryAfterMs: 100 });
    }
    if (this.pending[shard]! >= this.opts.shardMailboxCapacity) {
      this.rejected++;
      throw new BusyError(`shard ${shard} mailbox`, this.opts.shardMailboxCapacity, BUSY_RETRY_AFTER_MS);
    }
    const cell = this.cellFor(shard, tenant, id);
    this.pending[shard]!++;
    try {
      return await cell.ask(msg, deadline);
    } catch (err) {
      if (err instanceof BusyError) this.rejected++;
      else if (err instanceof SwitchboardError && err.code === 'timeout') this.expired++;
      throw err;
    } finally {
      this.pending[shard]!--;
    }
  }

  stats(): RouterStats {
    let ownedShards = 0;
    let inFlight = 0;
    let maxShardDepth = 0;
    for (let s = 0; s < SHARD_COUNT; s++) {
      ownedShards += this.owned[s]!;
      inFlight += this.pending[s]!;
      maxShardDepth = Math.max(maxShardDepth, this.pending[s]!);
    }
    return {
      activeActors: this.cells.size,
      ownedShards,
      inFlight,
      maxShardDepth,
      rejected: this.rejected,
      expired: this.expired,
    };
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private cellFor(shard: number, tenant: string, id: string): ActorCell {
    const key = `${tenant}\u0000${id}`;
    let cell = this.cells.get(key);
    const epoch = this.epochs[shard]!;
    if (cell) {
      this.cells.delete(key);
      if (cell.epoch === epoch) {
        this.cells.set(key, cell);
        return cell;
      }
      // Left from an earlier acquisition of the shard (its fence fails now): replace, never reuse.
      cell.passivated();
    }
    if (this.cells.size >= this.opts.maxActive && !this.evictOne()) {
      this.rejected++;
      throw new BusyError('active actors', this.opts.maxActive, BUSY_RETRY_AFTER_MS);
    }
    cell = new ActorCell(
      tenant,
      id,
      shard,
      this.opts.actorMailboxCapacity,
      this.hosting(tenant, id),
      this.clock,
      (s) => this.holds(s) && this.epochs[s] === epoch,
      epoch,
    );
    this.cells.set(key, cell);
    return cell;
  }

  // A busy cell is never evicted: a second cell for the same conversation would fork its seq.
  private evictOne(): boolean {
    for (const [key, cell] of this.cells) {
      if (!cell.busy) {
        this.drop(key, cell);
        return true;
      }
    }
    return false;
  }

  /** Passivates every idle actor not used for `idleMs` (run by a timer; public for tests). */
  passivateIdle(): void {
    const cutoff = this.clock.now() - this.opts.idleMs;
    for (const [key, cell] of this.cells) {
      if (!cell.busy && cell.lastActiveAt < cutoff) this.drop(key, cell);
    }
  }

  private drop(key: string, cell: ActorCell): void {
    this.cells.delete(key);
    cell.passivated();
  }
}
