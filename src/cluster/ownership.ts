/**
 * Shard ownership records in a JetStream KV bucket (`sb_shards`, key `s<n>`), taken with
 * compare-and-set. The desired owner of a shard is its rendezvous winner among the live members that
 * own shards (Membership.shardOwners: gateway-only workers take none while an owner is live); it
 * takes the record only when the record is free: never written, marked released by its holder,
 * or held by a member whose lease has expired. A holder that is no longer the desired owner
 * drains the shard and marks it released (graceful handover). A node whose own lease is no longer
 * valid drops every shard at once, without asking anyone (self-fencing).
 */
import type { Clock } from '../clock.js';
import { rendezvousOwner, SHARD_COUNT } from '../routing/shard.js';
import type { Membership } from './membership.js';
import { retrySetup } from './setup-retry.js';
import type { KvBucket, Transport } from './transport.js';

export const DEFAULT_RECONCILE_INTERVAL_MS = 250;
/** A record this member waits on is re-read after this long without news (a missed watch update). */
const STALE_RECORD_MS = 5000;
/** Re-reads per reconcile pass, so a member waiting on many shards does not flood the bucket. */
const MAX_REFRESHES_PER_PASS = 64;

interface ShardRecord {
  owner: string;
  state: 'held' | 'released';
  revision: number;
}

export interface OwnershipHooks {
  /** This node now owns `shard`: start serving it. */
  acquired(shard: number): void;
  /** Stop accepting for `shard` and finish what was admitted; resolves when drained. */
  release(shard: number): Promise<void>;
}

export interface OwnershipEvent {
  shard: number;
  kind: 'acquired' | 'released' | 'fenced';
  at: number;
}

export class ShardOwnership {
  private kv: KvBucket | undefined;
  private stopWatch: (() => void) | undefined;
  private readonly records = new Map<number, ShardRecord>();
  private readonly held = new Uint8Array(SHARD_COUNT);
  private readonly busy = new Uint8Array(SHARD_COUNT);
  /** When each shard's record was last re-read while waiting for its holder to release it. */
  private readonly checkedAt = new Float64Array(SHARD_COUNT);
  private desired = new Uint8Array(SHARD_COUNT);
  private desiredFor: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private again = false;
  private stopped = false;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  private readonly listeners: Array<(e: OwnershipEvent) => void> = [];

  constructor(
    private readonly nodeId: string,
    private readonly transport: Transport,
    private readonly membership: Membership,
    private readonly hooks: OwnershipHooks,
    private readonly clock: Clock,
    /** The KV bucket of the records (ClusterNames.shardsBucket). */
    private readonly bucket: string,
    private readonly intervalMs = DEFAULT_RECONCILE_INTERVAL_MS,
  ) {}

  async start(): Promise<void> {
    this.kv = await this.transport.kv(this.bucket, 0);
    const kv = this.kv;
    // A bucket created a moment ago may have no stream leader yet (NATS 503): setup, retried.
    this.stopWatch = await retrySetup(
      `watch ${this.bucket}`,
      () =>
        kv.watch((e) => {
          const shard = Number(e.key.slice(1));
          if (!Number.isInteger(shard) || shard < 0 || shard >= SHARD_COUNT) return;
          if (this.remember(shard, e)) this.schedule();
        }),
      { onRetry: this.transport.onSetupRetry },
    );
    this.membership.onChange(() => this.schedule());
    // The reconcile pass fences on a lapsed lease too, but only when it runs: one still waiting on NATS
    // from before a pause would find the lease already renewed, and `held` still listing shards others took.
    this.membership.onLapse(() => this.fenceAll());
    this.timer = setInterval(() => this.schedule(), this.intervalMs);
    this.timer.unref();
    await this.reconcile();
  }

  /** True when this node holds `shard` and its own lease is valid: the check before every write. */
  holds(shard: number): boolean {
    return this.held[shard] === 1 && this.membership.leaseValid();
  }

  /**
   * The member that holds `shard` in this node's view (its record is held by a live member), or
   * undefined. A hint for routing only: the view may be stale, and the holder refuses what it does not hold.
   */
  holderOf(shard: number): string | undefined {
    const r = this.records.get(shard);
    return r !== undefined && r.state === 'held' && this.membership.isLive(r.owner) ? r.owner : undefined;
  }

  /** The shards this node holds now, ascending. */
  heldShards(): number[] {
    const out: number[] = [];
    for (let s = 0; s < SHARD_COUNT; s++) if (this.held[s] === 1) out.push(s);
    return out;
  }

  /** How many shards have a record held by a live member, in this node's view. */
  ownedCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.state === 'held' && this.membership.isLive(r.owner)) n++;
    return n;
  }

  onEvent(listener: (e: OwnershipEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Graceful leave: drain and release every held shard, then stop reconciling. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.reconciling) await new Promise((r) => setTimeout(r, 10));
    const mine = [...Array(SHARD_COUNT).keys()].filter((s) => this.held[s] === 1);
    await Promise.all(mine.map((s) => this.releaseShard(s)));
    this.stopWatch?.();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.reconciling) {
      this.again = true;
      return;
    }
    void this.reconcile();
  }

  private async reconcile(): Promise<void> {
    this.reconciling = true;
    try {
      do {
        this.again = false;
        await this.reconcileOnce();
      } while (this.again && !this.stopped);
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcileOnce(): Promise<void> {
    if (!this.membership.leaseValid()) {
      this.fenceAll();
      return;
    }
    const mine = this.desiredShards(this.membership.shardOwners());
    const work: Promise<void>[] = [];
    // One fresh look per holder and pass (a dead member may hold hundreds of shards).
    const expired = new Map<string, Promise<boolean>>();
    let refreshes = 0;
    const confirmExpired = (owner: string) => {
      let p = expired.get(owner);
      if (p === undefined) {
        p = this.membership.confirmExpired(owner).catch(() => false);
        expired.set(owner, p);
      }
      return p;
    };
    for (let s = 0; s < SHARD_COUNT; s++) {
      if (this.busy[s] === 1) continue;
      const desired = mine[s] === 1;
      const rec = this.records.get(s);
      if (this.held[s] === 1 && rec !== undefined && rec.owner !== this.nodeId) {
        // Someone took the record from us: they judged our lease expired. Whatever our own view says,
        // stop serving the shard at once rather than be its second writer.
        this.fenceOne(s);
      } else if (this.held[s] === 1 && !desired) work.push(this.guard(s, () => this.releaseShard(s)));
      else if (this.held[s] === 0 && !desired && rec?.owner === this.nodeId && rec.state === 'held') {
        // A release whose compare-and-set failed, or a record left from before a fence: free it,
        // or the desired owner would wait for our lease to expire, which it never does.
        work.push(this.guard(s, () => this.markReleased(s)));
      } else if (this.held[s] === 0 && desired) {
        const free = rec === undefined || rec.owner === this.nodeId || rec.state === 'released';
        if (free) work.push(this.guard(s, () => this.take(s, rec)));
        else if (!this.membership.isLive(rec.owner)) {
          // Held by a member that looks dead: take it only once the bucket confirms its lease expired.
          work.push(
            this.guard(s, async () => {
              if (await confirmExpired(rec.owner)) await this.take(s, rec);
            }),
          );
        } else if (this.clock.now() - (this.checkedAt[s] ?? 0) > STALE_RECORD_MS) {
          // Waiting for a live holder to release: re-read now and then, in case a change was missed.
          this.checkedAt[s] = this.clock.now();
          if (refreshes++ < MAX_REFRESHES_PER_PASS) work.push(this.guard(s, () => this.refresh(s)));
        }
      }
    }
    await Promise.all(work);
  }

  // Rendezvous weights change only with the member list: compute the 1024 owners once per view,
  // not on every reconcile (that was most of an idle member's CPU with 7 members).
  private desiredShards(members: readonly string[]): Uint8Array {
    const key = members.join(',');
    if (key !== this.desiredFor) {
      const mine = new Uint8Array(SHARD_COUNT);
      for (let s = 0; s < SHARD_COUNT; s++) mine[s] = rendezvousOwner(s, members) === this.nodeId ? 1 : 0;
      this.desired = mine;
      this.desiredFor = key;
    }
    return this.desired;
  }

  private async guard(shard: number, fn: () => Promise<void>): Promise<void> {
    this.busy[shard] = 1;
    try {
      await fn();
    } catch {
      // A lost compare-and-set (someone else moved the record, or our copy of it is stale) or a
      // NATS hiccup: read the record afresh so the next reconcile decides on what is there now.
      await this.refresh(shard).catch(() => {});
    } finally {
      this.busy[shard] = 0;
    }
  }

  private async refresh(shard: number): Promise<void> {
    const e = await this.kv!.get(`s${shard}`);
    if (e !== null) this.remember(shard, e);
  }

  /**
   * Applies a record version if it is newer than the one we know. Versions reach us from the
   * watch, from our own compare-and-sets and from re-reads, in any order: an older one must never
   * replace a newer one, or this node would act on a stale record (and, before this rule, did).
   * A deleted record counts as released by nobody.
   */
  private remember(shard: number, e: { value: Uint8Array; revision: number; deleted: boolean }): boolean {
    const known = this.records.get(shard);
    if (known !== undefined && e.revision <= known.revision) return false;
    const v = e.deleted
      ? { owner: '', state: 'released' as const }
      : (JSON.parse(this.decoder.decode(e.value)) as { owner: string; state: ShardRecord['state'] });
    this.records.set(shard, { owner: v.owner, state: v.state, revision: e.revision });
    return true;
  }

  private async take(shard: number, rec: ShardRecord | undefined): Promise<void> {
    const value = this.encode('held');
    const key = `s${shard}`;
    const lapses = this.membership.lapses;
    const revision =
      rec === undefined ? await this.kv!.create(key, value) : await this.kv!.update(key, value, rec.revision);
    this.remember(shard, { value: this.encode('held'), revision, deleted: false });
    // A lapse while the compare-and-set was out (even one renewed since): others may have taken the
    // shard after it. The record is ours; the next pass takes it again under the current lease.
    if (!this.membership.leaseValid() || this.membership.lapses !== lapses) return;
    this.held[shard] = 1;
    this.hooks.acquired(shard);
    this.emit(shard, 'acquired');
  }

  private async releaseShard(shard: number): Promise<void> {
    // `held` drops before the drain, so a write admitted earlier fails its fence when it lands. Keeping
    // it during the drain let a member paused past its lease (SIGSTOP, then SIGCONT with a renewed lease
    // and a stale view) ack a write the next owner's seal had shadowed: an acked message lost (the
    // cluster test caught it). The cost: such a write is stored but not acked; its sender's retry at the
    // next owner gets the ack, and the first repeat of an inherited message fans it out (actors/conversation.ts).
    this.held[shard] = 0;
    await this.hooks.release(shard);
    this.emit(shard, 'released');
    await this.markReleased(shard);
  }

  private async markReleased(shard: number): Promise<void> {
    const rec = this.records.get(shard);
    if (rec && rec.owner === this.nodeId && rec.state === 'held') {
      const revision = await this.kv!.update(`s${shard}`, this.encode('released'), rec.revision);
      this.remember(shard, { value: this.encode('released'), revision, deleted: false });
    }
  }

  // Our lease may have lapsed (a pause, a partition): others may already own our shards, so stop
  // serving them at once. Records stay as they are; others take them as their holder is dead.
  private fenceAll(): void {
    for (let s = 0; s < SHARD_COUNT; s++) if (this.held[s] === 1) this.fenceOne(s);
  }

  private fenceOne(shard: number): void {
    this.held[shard] = 0;
    void this.hooks.release(shard);
    this.emit(shard, 'fenced');
  }

  private encode(state: ShardRecord['state']): Uint8Array {
    return this.encoder.encode(JSON.stringify({ owner: this.nodeId, state }));
  }

  private emit(shard: number, kind: OwnershipEvent['kind']): void {
    const e = { shard, kind, at: this.clock.now() };
    for (const l of this.listeners) l(e);
  }
}
