/**
 * Live delivery without per-user NATS interest (issue #14). Every member plays three parts:
 *
 * - **gateway**: its sockets' users are announced to the owner of each user's presence shard (`join`
 *   when the first socket of a user opens here, answered, so `welcome` is sent only once the owner has
 *   recorded it; `leave` when the last one closes). A push for one of its users arrives on its delivery
 *   inbox and is handed to the sockets; a push for a user it no longer holds is answered with a leave,
 *   which heals an entry whose leave went to a former owner.
 * - **owner** of presence shards (the same 1024 shards and ownership records as conversations): keeps
 *   the directory (src/presence/directory.ts). On taking a shard it asks every live member for its users
 *   of the shard and, until each has answered, also sends that shard's pushes to those that have not.
 * - **sender** (the member whose actor fans out): delivers to its own sockets at once, then sends each
 *   push to the owner of the recipient's presence shard, which forwards it to the members holding the
 *   recipient's sockets. When the sender owns that shard itself, it forwards directly; when nobody holds
 *   the shard in its view, or the holder has been silent for half a lease, the push goes to every member.
 *   The owner also answers the route with the user's entry (a grant, src/presence/routes.ts): the
 *   sender's next pushes for that user go straight to those members, one hop instead of two. An owner
 *   answers a join only once every sender holding a grant of the user has dropped it (see Hold).
 *
 * All of it travels on the delivery link (src/presence/link.ts): one NATS subscription per member,
 * batches per destination and turn, items in order per destination. Delivery stays at most once: a push
 * lost to a dying member or a moving shard is recovered by the client's `sync` (docs/PROTOCOL.md).
 * Bounds: the directory's `maxUsers`, `maxPendingJoins` joins awaiting an answer (beyond: `busy`, the
 * socket is closed to reconnect), a join deadline, and the link's batch bounds.
 *
 * A join the owner has not answered by its deadline (an owner whose loop lags seconds behind under
 * load, or one that died and is not replaced yet) is welcomed all the same, and asked on until an owner
 * answers. Closing the socket instead made its client reconnect into the same overload (issue #14:
 * ~1 000 sockets closed before `welcome` in a kill storm under load). Nothing a welcomed socket is owed
 * is lost by it: the owner reads its inbox in order, so the join sent seconds earlier is recorded before
 * any push routed to it after the `welcome`; with no holder in view, or a silent one, pushes go to
 * every member; and an owner that takes the shard over asks every member for its users.
 */
import type { Transport } from '../cluster/transport.js';
import type { TurnFlush } from '../cluster/turn-flush.js';
import { BusyError, SwitchboardError } from '../protocol/errors.js';
import { SHARD_COUNT } from '../routing/shard.js';
import { contextFromHeaders, traced, traceHeaders } from '../telemetry/tracing.js';
import { DEFAULT_PRESENCE_MAX_USERS, PresenceDirectory, presenceShardOf, userKey } from './directory.js';
import { DeliveryLink, type DeliveryLinkStats } from './link.js';
import { DEFAULT_PRESENCE_MAX_ROUTES, RouteCache, RouteGrants } from './routes.js';

export const DEFAULT_PRESENCE_MAX_PENDING_JOINS = 10_000;
export const DEFAULT_PRESENCE_JOIN_TIMEOUT_MS = 5000;
/** How often an owner asks again the members whose snapshot of an incomplete shard is missing. */
export const PRESENCE_RESYNC_MS = 1000;
/**
 * How long a member that released its shards keeps forwarding pushes routed to it by members whose
 * view of the release is late (ownership records travel by KV watch, milliseconds when healthy).
 */
export const PRESENCE_LINGER_MS = 1000;
/** Users per snapshot item. */
const SNAPSHOT_CHUNK = 1000;
/** One join attempt's wait for its answer; then it is sent again (maybe to another owner). */
const JOIN_ATTEMPT_MS = 1000;
/**
 * A join past its deadline waits twice as long at each attempt, up to this: an owner lagging seconds
 * behind answers each attempt after the next one has replaced it (answers to replaced attempts are
 * dropped), so fixed 1 s attempts would never settle and would only add to its backlog.
 */
const LATE_ATTEMPT_MAX_MS = 8000;
const RETRY_BASE_MS = 25;
const RETRY_MAX_MS = 400;
const BUSY_RETRY_AFTER_MS = 1000;

/** What the presence layer needs of a process's sockets (src/gateway/sessions.ts). */
export interface LocalUsers {
  /** Hands `data` to every socket of the user held here; false when there is none. */
  deliver(tenant: string, user: string, data: Uint8Array): boolean;
  /** Whether this process holds a socket of the user. */
  has(tenant: string, user: string): boolean;
  /** Calls `fn` once per user with a socket here. */
  forEachUser(fn: (tenant: string, user: string) => void): void;
}

/** This member's view of the cluster (src/cluster/ownership.ts, membership.ts). */
export interface PresenceView {
  /** This member holds `shard` with a valid lease (the write fence). */
  holds(shard: number): boolean;
  /** The member holding `shard` in this member's view, or undefined. */
  holderOf(shard: number): string | undefined;
  /** Live members, this one included. */
  members(): readonly string[];
  /** The member has not renewed its lease for a while: it may be dead or paused. */
  suspect(member: string): boolean;
}

/** Items of the delivery link; keys are short, the link carries one per push. */
type Item =
  /** join: `from` holds a socket of user `k` (presence shard `s`); answer `ja` with `n`. */
  | { o: 'j'; n: number; s: number; k: string }
  /** join answer: 0 recorded, 1 not held here (ask the holder), 2 directory full. */
  | { o: 'ja'; n: number; r: 0 | 1 | 2 }
  /** leave: `from` holds no socket of user `k` any more. */
  | { o: 'l'; s: number; k: string }
  /** snapshot request: send your users of shard `s`, for taking `e`. */
  | { o: 'sq'; s: number; e: number }
  /** snapshot part: users `k` of shard `s` for taking `e`; `z` 1 on the last part. */
  | { o: 's'; s: number; e: number; k: string[]; z: 0 | 1 }
  /**
   * route: look up users `u` of tenant `t` and forward frame `d` (sender -> owner); with `w` (the
   * sender's clock when it asked), also answer their entries (`g`).
   */
  | { o: 'r'; t: string; u: string[]; d: Uint8Array; tc?: Record<string, string>; w?: number }
  /** grant: the members `m[i]` hold the sockets of user `u[i]` of tenant `t`, for a route asked at `w`. */
  | { o: 'g'; t: string; w: number; u: string[]; m: string[][] }
  /** drop: forget the entry of user `k` granted to you; answer `xa`. */
  | { o: 'x'; k: string }
  /** dropped: the entry of user `k` is gone here. */
  | { o: 'xa'; k: string }
  /** a join of a user of shard `s` waits unanswered: entries of `s` asked for until now may miss it. */
  | { o: 'xq'; s: number }
  /** push: hand frame `d` to local sockets of users `u`; `b` 1 when sent without a directory entry. */
  | { o: 'p'; t: string; u: string[]; d: Uint8Array; b?: 1; tc?: Record<string, string> };

export interface PresenceStats extends DeliveryLinkStats {
  /** Directory entries held (users whose presence shard this member owns). */
  users: number;
  /** Sockets of this gateway refused: the owner's directory (or the joins waiting for it) was full. */
  refused: number;
  /** Joins welcomed at their deadline without an owner's answer (and asked on until one answers). */
  lateJoins: number;
  /** Pushes sent to every member because no complete directory knew where the user is. */
  broadcasts: number;
  /** Pushes sent straight to the members holding the user, on a cached route (src/presence/routes.ts). */
  routeHits: number;
  /** Routes cached here (as a sender). */
  routes: number;
  /** Joins recorded here whose answer waits until every sender with a route of the user dropped it. */
  heldJoins: number;
}

export interface PresenceOptions {
  self: string;
  transport: Transport;
  /** A member's delivery inbox (ClusterNames.deliverySubject). */
  subjectOf: (member: string) => string;
  view: PresenceView;
  maxUsers?: number;
  maxPendingJoins?: number;
  /** Routes cached as a sender, and grants kept as an owner, at most each (0: no cached routes). */
  maxRoutes?: number;
  /** How long a join waits for an owner's answer before its sockets are welcomed without it. */
  joinTimeoutMs?: number;
  maxBatch?: number;
  maxBatchBytes?: number;
  /** The member's shared turn flush (src/cluster/turn-flush.ts). */
  flush?: TurnFlush;
}

interface PendingJoin {
  readonly tenant: string;
  readonly user: string;
  readonly key: string;
  readonly shard: number;
  readonly deadline: number;
  readonly waiters: Array<{ resolve(): void; reject(e: unknown): void }>;
  /** The attempt in flight (its id in `#attempts`), 0 when none. */
  n: number;
  timer: NodeJS.Timeout | undefined;
  backoff: number;
  /** A leave was sent after the attempt in flight: an `ok` to it is outdated. */
  left: boolean;
  /** Past its deadline: its sockets were welcomed; it is asked on, with no deadline, until answered. */
  late: boolean;
  /** The next attempt's wait for its answer, ms. */
  attemptMs: number;
  /** Every member was told that routes of its shard may miss this user (`xq`). */
  warned: boolean;
}

/**
 * A join recorded by this owner whose answer waits: until each sender told to drop its route of the
 * user has confirmed (or left, or looks dead), and until the shard is complete (every live member
 * answered this taking's snapshot request, so none still uses a route granted by a former owner); at
 * most the join timeout.
 */
interface Hold {
  readonly shard: number;
  readonly epoch: number;
  /** When the first of its joins arrived (Date.now()). */
  readonly since: number;
  readonly answers: Array<{ to: string; n: number }>;
  /** member -> drops sent and not yet confirmed. */
  readonly waiting: Map<string, number>;
}

/** Pushes for one event: member -> users, directed (from a directory entry) or not. */
class Fanout {
  readonly directed = new Map<string, string[]>();
  readonly undirected = new Map<string, string[]>();
  add(member: string, user: string, directed: boolean): void {
    const m = directed ? this.directed : this.undirected;
    const list = m.get(member);
    if (list === undefined) m.set(member, [user]);
    else if (!list.includes(user)) list.push(user);
  }
}

export class Presence {
  readonly #self: string;
  readonly #view: PresenceView;
  readonly #dir: PresenceDirectory;
  readonly #link: DeliveryLink<Item>;
  readonly #maxPendingJoins: number;
  readonly #joinTimeoutMs: number;
  #local: LocalUsers | undefined;
  readonly #joining = new Map<string, PendingJoin>();
  readonly #attempts = new Map<number, PendingJoin>();
  #nextAttempt = 1;
  /** Snapshot requests to answer this turn: member -> shard -> epoch. */
  #snapshotAsks = new Map<string, Map<number, number>>();
  #snapshotScheduled = false;
  #lastLive: readonly string[] = [];
  readonly #routes: RouteCache;
  readonly #grants: RouteGrants;
  readonly #holds = new Map<string, Hold>();
  /** shard -> keys of its holds, to settle them when its snapshot completes. */
  readonly #holdsOf = new Map<number, Set<string>>();
  /** When this member took each shard it holds (performance.now()). */
  readonly #takenAt = new Float64Array(SHARD_COUNT);
  /** When each live member first appeared in this member's view (absent: before the first view). */
  readonly #appearedAt = new Map<string, number>();
  /** When this member last sent `xq` for each shard (Date.now()). */
  readonly #warnedAt = new Float64Array(SHARD_COUNT);
  #timer: NodeJS.Timeout | undefined;
  #refused = 0;
  #lateJoins = 0;
  #broadcasts = 0;
  #stopped = false;

  constructor(opts: PresenceOptions) {
    this.#self = opts.self;
    this.#view = opts.view;
    this.#dir = new PresenceDirectory(opts.maxUsers ?? DEFAULT_PRESENCE_MAX_USERS);
    this.#maxPendingJoins = opts.maxPendingJoins ?? DEFAULT_PRESENCE_MAX_PENDING_JOINS;
    this.#joinTimeoutMs = opts.joinTimeoutMs ?? DEFAULT_PRESENCE_JOIN_TIMEOUT_MS;
    const maxRoutes = opts.maxRoutes ?? DEFAULT_PRESENCE_MAX_ROUTES;
    if (!Number.isSafeInteger(maxRoutes) || maxRoutes < 0)
      throw new Error('presence.maxRoutes must be a non-negative integer');
    this.#routes = new RouteCache(maxRoutes);
    this.#grants = new RouteGrants(maxRoutes);
    if (!Number.isSafeInteger(this.#maxPendingJoins) || this.#maxPendingJoins < 1)
      throw new Error('presence.maxPendingJoins must be a positive integer');
    if (!Number.isSafeInteger(this.#joinTimeoutMs) || this.#joinTimeoutMs < 1)
      throw new Error('presence.joinTimeoutMs must be a positive integer');
    this.#link = new DeliveryLink<Item>({
      transport: opts.transport,
      self: opts.self,
      subjectOf: opts.subjectOf,
      onItems: (from, items) => this.#receive(from, items),
      ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
      ...(opts.maxBatchBytes !== undefined ? { maxBatchBytes: opts.maxBatchBytes } : {}),
      ...(opts.flush !== undefined ? { flush: opts.flush } : {}),
    });
  }

  /** Subscribes to this member's delivery inbox; resolves once NATS has it. */
  async start(): Promise<void> {
    await this.#link.start();
    this.#timer = setInterval(() => this.#resync(), PRESENCE_RESYNC_MS);
    this.#timer.unref();
  }

  /** The sockets of this process (the gateway attaches them once it runs). */
  attach(local: LocalUsers): void {
    this.#local = local;
  }

  /**
   * Stops once others can no longer be routing pushes here. This member has released its shards, but
   * a member whose view of a shard's ownership is a moment behind still sends that shard's pushes here;
   * for `lingerMs` they are forwarded (to every member, as for any shard not held here), then it stops.
   * Without other members there is nobody to wait for, nor when every other member is in `leaving`
   * (stopping in the same drain, its sockets closed with ours: no push could reach a socket anywhere).
   */
  async retire(
    lingerMs: number = PRESENCE_LINGER_MS,
    leaving: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const others = this.#view.members().some((m) => m !== this.#self && !leaving.has(m));
    if (!this.#stopped && lingerMs > 0 && others) await new Promise((r) => setTimeout(r, lingerMs));
    this.stop();
  }

  /** Sends what is queued, stops; joins still waiting are refused `unavailable`. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const pj of [...this.#joining.values()])
      this.#finish(pj, new SwitchboardError('unavailable', 'node stopping', { retryAfterMs: 1000 }));
    this.#link.stop();
  }

  stats(): PresenceStats {
    return {
      ...this.#link.stats(),
      users: this.#dir.size,
      refused: this.#refused,
      lateJoins: this.#lateJoins,
      broadcasts: this.#broadcasts,
      routeHits: this.#routes.hits,
      routes: this.#routes.size,
      heldJoins: this.#holds.size,
    };
  }

  // ---- ownership and membership ----------------------------------------------------------------

  /** This member took `shard`: an empty directory part, and every live member is asked for its users. */
  acquired(shard: number): void {
    const epoch = this.#dir.open(shard);
    this.#takenAt[shard] = performance.now();
    for (const m of this.#view.members()) this.#askSnapshot(m, shard, epoch);
    if (!this.#view.members().includes(this.#self)) this.#askSnapshot(this.#self, shard, epoch);
  }

  /** This member let `shard` go (released or fenced): its entries go with it. */
  released(shard: number): void {
    this.#dir.close(shard);
    this.#settleShard(shard);
  }

  /**
   * The live members changed: entries of members that left are dropped (they must send a snapshot
   * again should they come back), and members that appeared are asked for their users of every shard
   * held here (until they answer, those shards' pushes also go to them).
   */
  membersChanged(live: readonly string[]): void {
    const now = new Set(live);
    for (const m of this.#dir.members()) if (m !== this.#self && !now.has(m)) this.#dir.dropMember(m);
    for (const m of this.#appearedAt.keys()) if (!now.has(m)) this.#appearedAt.delete(m);
    const first = this.#lastLive.length === 0;
    const before = new Set(this.#lastLive);
    this.#lastLive = live;
    const appeared = live.filter((m) => !before.has(m) && m !== this.#self);
    if (appeared.length > 0) {
      const now = performance.now();
      // Routes granted while they were away do not name their sockets.
      this.#routes.clear(now);
      const shards = this.#dir.shards();
      for (const m of appeared) {
        if (!first) this.#appearedAt.set(m, now);
        for (const s of shards) this.#askSnapshot(m, s, this.#dir.epochOf(s)!);
      }
    }
    this.#settleAll();
  }

  // ---- gateway side ----------------------------------------------------------------------------

  /**
   * Announces a socket of the user. `first`: the user's first socket in this process. Resolves once
   * the owner of the user's presence shard has recorded this member (at once for a later socket whose
   * user is recorded already), or once the join timeout has passed without an answer (the join is then
   * asked on: see the module's comment); rejects `busy` when the directory or the pending joins are full,
   * `unavailable` when this member stops. Then the caller closes the socket.
   */
  join(tenant: string, user: string, first: boolean): Promise<void> {
    const key = userKey(tenant, user);
    const pending = this.#joining.get(key);
    if (pending === undefined && !first) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (pending !== undefined) {
        if (pending.late) resolve();
        else pending.waiters.push({ resolve, reject });
        return;
      }
      if (this.#stopped) {
        reject(new SwitchboardError('unavailable', 'node stopping', { retryAfterMs: 1000 }));
        return;
      }
      if (this.#joining.size >= this.#maxPendingJoins) {
        this.#refused++;
        reject(new BusyError('presence joins', this.#maxPendingJoins, BUSY_RETRY_AFTER_MS));
        return;
      }
      const pj: PendingJoin = {
        tenant,
        user,
        key,
        shard: presenceShardOf(tenant, user),
        deadline: Date.now() + this.#joinTimeoutMs,
        waiters: [{ resolve, reject }],
        n: 0,
        timer: undefined,
        backoff: RETRY_BASE_MS,
        left: false,
        late: false,
        attemptMs: JOIN_ATTEMPT_MS,
        warned: false,
      };
      this.#joining.set(key, pj);
      this.#attempt(pj);
    });
  }

  /** The user's last socket in this process closed. */
  leave(tenant: string, user: string): void {
    const key = userKey(tenant, user);
    const pj = this.#joining.get(key);
    if (pj !== undefined && pj.n !== 0) pj.left = true;
    const shard = presenceShardOf(tenant, user);
    if (this.#owns(shard)) this.#dir.leave(shard, key, this.#self);
    else {
      const holder = this.#view.holderOf(shard);
      // Without a holder nobody is told: the next owner's snapshot will not name the user.
      if (holder !== undefined && holder !== this.#self)
        this.#link.send(holder, { o: 'l', s: shard, k: key });
    }
  }

  #attempt(pj: PendingJoin): void {
    pj.n = 0;
    pj.timer = undefined;
    pj.left = false;
    if (this.#stopped) return;
    // Every socket of the user closed meanwhile: nothing to announce (their waiters are gone too).
    if (this.#local !== undefined && !this.#local.has(pj.tenant, pj.user)) {
      this.#finish(pj);
      return;
    }
    const now = Date.now();
    if (!pj.warned && now >= pj.deadline - this.#joinTimeoutMs + JOIN_ATTEMPT_MS) this.#warn(pj);
    if (!pj.late && now >= pj.deadline) {
      pj.late = true;
      this.#lateJoins++;
      for (const w of pj.waiters.splice(0)) w.resolve();
    }
    const owns = this.#owns(pj.shard);
    const owner = owns ? this.#self : this.#view.holderOf(pj.shard);
    if (owner === undefined || (owner === this.#self && !owns)) {
      this.#retryLater(pj);
      return;
    }
    const n = this.#nextAttempt++;
    pj.n = n;
    this.#attempts.set(n, pj);
    const wait = Math.min(pj.attemptMs, this.#untilDeadline(pj));
    if (pj.late) pj.attemptMs = Math.min(pj.attemptMs * 2, LATE_ATTEMPT_MAX_MS);
    pj.timer = setTimeout(() => {
      this.#attempts.delete(n);
      this.#attempt(pj);
    }, wait);
    // Last: an owner here may answer at once, and the answer clears the timer.
    if (owner === this.#self) this.#joinHere(this.#self, n, pj.shard, pj.key);
    else this.#link.send(owner, { o: 'j', n, s: pj.shard, k: pj.key });
  }

  /**
   * A join unanswered for a second (its owner lags, is gone, or nobody holds the shard): every member
   * stops using the routes of its shard it asked for until now, and keeps none asked for before that
   * arrives later. Routes asked for afterwards reach the owner after this join did (the owner reads its
   * inbox in order), so they name this member. Sent seconds before the socket is welcomed at the
   * deadline, as the join itself is (module comment).
   */
  #warn(pj: PendingJoin): void {
    pj.warned = true;
    // One sent for the shard after this join's first attempt covers it too (a storm has many).
    if (this.#warnedAt[pj.shard]! >= pj.deadline - this.#joinTimeoutMs) return;
    this.#warnedAt[pj.shard] = Date.now();
    this.#routes.distrust(pj.shard, performance.now());
    for (const m of this.#view.members()) if (m !== this.#self) this.#link.send(m, { o: 'xq', s: pj.shard });
  }

  /** Ms to wait at most before the next attempt of `pj`: until its deadline, unless it is past it. */
  #untilDeadline(pj: PendingJoin): number {
    return pj.late ? Number.POSITIVE_INFINITY : Math.max(1, pj.deadline - Date.now());
  }

  #retryLater(pj: PendingJoin): void {
    const wait = Math.min(pj.backoff, this.#untilDeadline(pj));
    pj.backoff = Math.min(pj.backoff * 2, RETRY_MAX_MS);
    pj.timer = setTimeout(() => this.#attempt(pj), wait);
  }

  #answered(pj: PendingJoin, outcome: 'ok' | 'not_held' | 'full'): void {
    if (outcome === 'ok') {
      // A leave went out after this attempt: the owner has applied it after the join. Join again.
      if (pj.left) this.#attempt(pj);
      else this.#finish(pj);
    } else if (outcome === 'full') {
      this.#refused++;
      this.#finish(pj, new BusyError('presence directory', 0, BUSY_RETRY_AFTER_MS));
    } else this.#retryLater(pj);
  }

  #finish(pj: PendingJoin, err?: unknown): void {
    if (pj.timer) clearTimeout(pj.timer);
    pj.timer = undefined;
    if (pj.n !== 0) this.#attempts.delete(pj.n);
    pj.n = 0;
    this.#joining.delete(pj.key);
    for (const w of pj.waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  // ---- owner side of joins ---------------------------------------------------------------------

  /**
   * A join of user `key` (shard `shard`) from member `from`, attempt `n`: recorded at once, so every
   * push and grant from now on names `from`; answered once no sender can still use a route of the
   * user that misses it (see Hold). A full hold table answers "ask again" before recording anything.
   */
  #joinHere(from: string, n: number, shard: number, key: string): void {
    if (!this.#owns(shard)) {
      this.#answerJoin(from, n, 1);
      return;
    }
    let h = this.#holds.get(key);
    const hold = h !== undefined || this.#grants.has(key) || !this.#complete(shard, [from]);
    if (hold && h === undefined && this.#holds.size >= this.#maxPendingJoins) {
      this.#answerJoin(from, n, 1);
      return;
    }
    const outcome = this.#dir.join(shard, key, from);
    if (outcome !== 'ok' || !hold) {
      this.#answerJoin(from, n, outcome === 'ok' ? 0 : outcome === 'full' ? 2 : 1);
      return;
    }
    if (h === undefined) {
      h = { shard, epoch: this.#dir.epochOf(shard)!, since: Date.now(), answers: [], waiting: new Map() };
      this.#holds.set(key, h);
      const keys = this.#holdsOf.get(shard);
      if (keys === undefined) this.#holdsOf.set(shard, new Set([key]));
      else keys.add(key);
    }
    h.answers.push({ to: from, n });
    for (const m of this.#grants.take(key, from, performance.now())) {
      if (m === this.#self) continue; // this member owns the shard: it routes without its cache
      this.#link.send(m, { o: 'x', k: key });
      h.waiting.set(m, (h.waiting.get(m) ?? 0) + 1);
    }
    this.#settle(key);
  }

  /**
   * Whether no member can still use a route of the shard granted by a former owner: every live member
   * answered this taking's snapshot request (which drops such routes), but `except`, those that look
   * dead, and those that appeared after the taking (their routes of it can only come from here).
   */
  #complete(shard: number, except: readonly string[]): boolean {
    const missing = this.#dir.missing(shard, this.#view.members());
    const takenAt = this.#takenAt[shard]!;
    return missing.every(
      (m) => except.includes(m) || this.#view.suspect(m) || (this.#appearedAt.get(m) ?? -1) > takenAt,
    );
  }

  /** Answers the joins held for `key` once nothing holds them any more. */
  #settle(key: string): void {
    const h = this.#holds.get(key);
    if (h === undefined) return;
    // Lost the shard (or took it afresh) meanwhile: the entry is gone; ask again.
    const r = this.#owns(h.shard) && this.#dir.epochOf(h.shard) === h.epoch ? 0 : 1;
    // Past the join timeout its gateway has welcomed the socket anyway, having told every member to
    // distrust the shard's routes seconds before (#warn); waiting longer would only keep the join
    // unsettled (a member restarted under the same id never confirms drops sent before it subscribed).
    if (r === 0 && Date.now() - h.since < this.#joinTimeoutMs) {
      const live = this.#view.members();
      for (const [m, count] of h.waiting) if (count > 0 && live.includes(m) && !this.#view.suspect(m)) return;
      const joiners = h.answers.map((a) => a.to);
      if (!this.#complete(h.shard, joiners)) return;
    }
    this.#holds.delete(key);
    const keys = this.#holdsOf.get(h.shard);
    keys?.delete(key);
    if (keys?.size === 0) this.#holdsOf.delete(h.shard);
    for (const a of h.answers) this.#answerJoin(a.to, a.n, r);
  }

  #settleShard(shard: number): void {
    const keys = this.#holdsOf.get(shard);
    if (keys !== undefined) for (const key of [...keys]) this.#settle(key);
  }

  #settleAll(): void {
    for (const key of [...this.#holds.keys()]) this.#settle(key);
  }

  /** 0 recorded, 1 not held here (ask again), 2 directory full. */
  #answerJoin(to: string, n: number, r: 0 | 1 | 2): void {
    if (to === this.#self) this.#onJoinAnswer(n, r);
    else this.#link.send(to, { o: 'ja', n, r });
  }

  #onJoinAnswer(n: number, r: 0 | 1 | 2): void {
    const pj = this.#attempts.get(n);
    if (pj === undefined) return; // timed out and sent again already
    this.#attempts.delete(n);
    if (pj.timer) clearTimeout(pj.timer);
    pj.timer = undefined;
    pj.n = 0;
    this.#answered(pj, r === 0 ? 'ok' : r === 2 ? 'full' : 'not_held');
  }

  // ---- sender side -----------------------------------------------------------------------------

  /**
   * Pushes one encoded frame (msgpack bytes, identical to the wire frame) to every socket of `users`
   * of `tenant`, wherever they are. At most once; never throws.
   */
  push(tenant: string, users: readonly string[], data: Uint8Array): void {
    const local = this.#local;
    if (local !== undefined) for (const user of users) local.deliver(tenant, user, data);
    const live = this.#view.members();
    // Created only when some other member is a target: with one member there is nothing to fan out,
    // and this runs for every message (issue #13: allocations per message).
    let fan: Fanout | undefined;
    let routes: Map<string, string[]> | undefined;
    let now: number | undefined;
    for (const user of users) {
      const shard = presenceShardOf(tenant, user);
      if (this.#owns(shard)) {
        fan = this.#resolve(fan, shard, tenant, user, this.#self, live);
        continue;
      }
      const holder = this.#view.holderOf(shard);
      if (holder === undefined || holder === this.#self || this.#view.suspect(holder)) {
        fan = this.#broadcast(fan, user, this.#self, live);
        continue;
      }
      if (this.#routes.enabled) {
        now ??= performance.now();
        const cached = this.#routes.lookup(userKey(tenant, user), shard, holder, now);
        if (cached !== undefined) {
          // Straight to where the user is; sent without a directory entry of the receiver's (no leave).
          for (const m of cached) {
            fan ??= new Fanout();
            fan.add(m, user, false);
          }
          continue;
        }
      }
      routes ??= new Map();
      const list = routes.get(holder);
      if (list === undefined) routes.set(holder, [user]);
      else list.push(user);
    }
    if (routes === undefined && fan === undefined) return;
    const tc = traceHeaders(); // trace: the delivery on another member continues this trace
    if (routes !== undefined) {
      for (const [holder, us] of routes) {
        const item: Item = { o: 'r', t: tenant, u: us, d: data };
        if (tc !== undefined) item.tc = tc;
        if (now !== undefined) item.w = now; // ask for the entries: the next pushes go straight
        this.#link.send(holder, item, data.length);
      }
    }
    if (fan !== undefined) this.#sendFanout(fan, tenant, data, tc);
  }

  /** Adds the targets of one user of a shard held here to `fan` (created when needed); `exclude` already has it. */
  #resolve(
    fan: Fanout | undefined,
    shard: number,
    tenant: string,
    user: string,
    exclude: string,
    live: readonly string[],
  ): Fanout | undefined {
    const t = this.#dir.targets(shard, userKey(tenant, user), live);
    if (t === undefined) return this.#broadcast(fan, user, exclude, live);
    let out = fan;
    for (const m of t.known) {
      if (m === exclude) continue;
      out ??= new Fanout();
      out.add(m, user, true);
    }
    for (const m of t.unsynced) {
      if (m === exclude || t.known.includes(m)) continue;
      out ??= new Fanout();
      out.add(m, user, false);
    }
    return out;
  }

  #broadcast(
    fan: Fanout | undefined,
    user: string,
    exclude: string,
    live: readonly string[],
  ): Fanout | undefined {
    this.#broadcasts++;
    let out = fan;
    for (const m of live) {
      if (m === exclude) continue;
      out ??= new Fanout();
      out.add(m, user, false);
    }
    return out;
  }

  #sendFanout(fan: Fanout, tenant: string, data: Uint8Array, tc: Record<string, string> | undefined): void {
    this.#sendMembers(fan.directed, true, tenant, data, tc);
    this.#sendMembers(fan.undirected, false, tenant, data, tc);
  }

  #sendMembers(
    members: Map<string, string[]>,
    directed: boolean,
    tenant: string,
    data: Uint8Array,
    tc: Record<string, string> | undefined,
  ): void {
    for (const [m, us] of members) {
      if (m === this.#self) {
        for (const user of us) this.#deliverHere(tenant, user, data, tc);
        continue;
      }
      const item: Item = { o: 'p', t: tenant, u: us, d: data, ...(directed ? {} : { b: 1 }) };
      if (tc !== undefined) item.tc = tc;
      this.#link.send(m, item, data.length);
    }
  }

  #deliverHere(
    tenant: string,
    user: string,
    data: Uint8Array,
    tc: Record<string, string> | undefined,
  ): boolean {
    const local = this.#local;
    if (local === undefined) return false;
    if (tc === undefined) return local.deliver(tenant, user, data);
    let found = false;
    // trace: the delivery to this member's sockets, child of the sender's span
    void traced(
      'sb.deliver',
      tenant,
      user,
      async (t: string, u: string) => {
        found = local.deliver(t, u, data);
      },
      tenant,
      user,
      contextFromHeaders(tc),
    );
    return found;
  }

  // ---- owner side and receiving ----------------------------------------------------------------

  #owns(shard: number): boolean {
    return this.#dir.holds(shard) && this.#view.holds(shard);
  }

  #askSnapshot(member: string, shard: number, epoch: number): void {
    if (member !== this.#self) {
      this.#link.send(member, { o: 'sq', s: shard, e: epoch });
      return;
    }
    this.#queueSnapshot(member, shard, epoch);
  }

  #queueSnapshot(member: string, shard: number, epoch: number): void {
    let asks = this.#snapshotAsks.get(member);
    if (asks === undefined) {
      asks = new Map();
      this.#snapshotAsks.set(member, asks);
    }
    asks.set(shard, epoch);
    if (!this.#snapshotScheduled) {
      this.#snapshotScheduled = true;
      setImmediate(() => this.#answerSnapshots());
    }
  }

  /** Answers every snapshot request of this turn with one pass over the local users. */
  #answerSnapshots(): void {
    this.#snapshotScheduled = false;
    const asks = this.#snapshotAsks;
    this.#snapshotAsks = new Map();
    const wanted = new Map<number, Array<{ member: string; epoch: number; keys: string[] }>>();
    for (const [member, shards] of asks) {
      for (const [shard, epoch] of shards) {
        const list = wanted.get(shard);
        const w = { member, epoch, keys: [] as string[] };
        if (list === undefined) wanted.set(shard, [w]);
        else list.push(w);
      }
    }
    this.#local?.forEachUser((tenant, user) => {
      const list = wanted.get(presenceShardOf(tenant, user));
      if (list !== undefined) for (const w of list) w.keys.push(userKey(tenant, user));
    });
    for (const [shard, list] of wanted) {
      for (const w of list) {
        if (w.member === this.#self) {
          this.#dir.snapshot(shard, w.epoch, this.#self, w.keys, true);
          this.#settleShard(shard);
          continue;
        }
        for (let at = 0; at === 0 || at < w.keys.length; at += SNAPSHOT_CHUNK) {
          const k = w.keys.slice(at, at + SNAPSHOT_CHUNK);
          const last = at + SNAPSHOT_CHUNK >= w.keys.length ? 1 : 0;
          this.#link.send(w.member, { o: 's', s: shard, e: w.epoch, k, z: last }, k.length * 32);
        }
      }
    }
  }

  /**
   * Asks again the members whose snapshot of a shard held here is still missing; answers the joins
   * that waited on members now gone or silent; forgets grants no sender can still use.
   */
  #resync(): void {
    const live = this.#view.members();
    for (const s of this.#dir.shards()) {
      const epoch = this.#dir.epochOf(s)!;
      for (const m of this.#dir.missing(s, live)) this.#askSnapshot(m, s, epoch);
    }
    this.#settleAll();
    this.#grants.prune(performance.now());
  }

  #receive(from: string, items: readonly Item[]): void {
    let live: readonly string[] | undefined;
    for (const it of items) {
      if (it === null || typeof it !== 'object') continue;
      switch (it.o) {
        case 'p':
          this.#onPush(from, it);
          break;
        case 'r': {
          live ??= this.#view.members();
          let fan: Fanout | undefined;
          for (const user of it.u) {
            const shard = presenceShardOf(it.t, user);
            if (this.#owns(shard)) fan = this.#resolve(fan, shard, it.t, user, from, live);
            else fan = this.#broadcast(fan, user, from, live); // the sender's view was stale
          }
          if (fan !== undefined) this.#sendFanout(fan, it.t, it.d, it.tc);
          if (it.w !== undefined) this.#grant(from, it.t, it.u, it.w, live);
          break;
        }
        case 'j':
          this.#joinHere(from, it.n, it.s, it.k);
          break;
        case 'ja':
          this.#onJoinAnswer(it.n, it.r);
          break;
        case 'l':
          this.#dir.leave(it.s, it.k, from);
          break;
        case 'sq':
          // A new owner: routes of the shard granted by a former one may miss joins it answers.
          this.#routes.distrust(it.s, performance.now());
          this.#queueSnapshot(from, it.s, it.e);
          break;
        case 's':
          this.#dir.snapshot(it.s, it.e, from, it.k, it.z === 1);
          if (it.z === 1) this.#settleShard(it.s);
          break;
        case 'g':
          this.#onGrant(from, it);
          break;
        case 'x':
          this.#routes.drop(it.k);
          this.#link.send(from, { o: 'xa', k: it.k });
          break;
        case 'xa': {
          const h = this.#holds.get(it.k);
          const count = h?.waiting.get(from);
          if (h === undefined || count === undefined) break;
          if (count > 1) h.waiting.set(from, count - 1);
          else h.waiting.delete(from);
          this.#settle(it.k);
          break;
        }
        case 'xq':
          this.#routes.distrust(it.s, performance.now());
          break;
      }
    }
  }

  /**
   * Answers a route that asked for entries: for each user of a complete shard held here, the members
   * holding its sockets, and `from` is remembered as holding that entry (to be told to drop it before a
   * join of the user is answered). Nothing for an incomplete shard, nor when the grant table is full.
   */
  #grant(
    from: string,
    tenant: string,
    users: readonly string[],
    asked: number,
    live: readonly string[],
  ): void {
    const now = performance.now();
    const u: string[] = [];
    const m: string[][] = [];
    for (const user of users) {
      const shard = presenceShardOf(tenant, user);
      if (!this.#owns(shard)) continue;
      const key = userKey(tenant, user);
      const t = this.#dir.targets(shard, key, live);
      if (t === undefined || t.unsynced.length > 0 || !this.#grants.grant(key, from, now)) continue;
      u.push(user);
      m.push([...t.known]); // a copy: the directory changes its arrays in place
    }
    if (u.length > 0) this.#link.send(from, { o: 'g', t: tenant, w: asked, u, m }, u.length * 64);
  }

  #onGrant(from: string, it: Extract<Item, { o: 'g' }>): void {
    if (!Array.isArray(it.u) || !Array.isArray(it.m) || typeof it.w !== 'number') return;
    for (let i = 0; i < it.u.length; i++) {
      const user = it.u[i]!;
      const shard = presenceShardOf(it.t, user);
      // Kept only while `from` still holds the shard in this member's view.
      if (this.#view.holderOf(shard) !== from) continue;
      const members = (it.m[i] ?? []).filter((mb) => mb !== this.#self);
      this.#routes.store(userKey(it.t, user), shard, from, members, it.w);
    }
  }

  #onPush(from: string, it: Extract<Item, { o: 'p' }>): void {
    for (const user of it.u) {
      if (this.#deliverHere(it.t, user, it.d, it.tc) || it.b === 1) continue;
      // Named by the owner's directory, but no socket here: its leave went elsewhere. Tell the owner.
      this.#link.send(from, { o: 'l', s: presenceShardOf(it.t, user), k: userKey(it.t, user) });
    }
  }
}
