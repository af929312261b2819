/**
 * Cached routes (issue #13, #14: hops per message on a node of several workers). A sender that routes a
 * push through the owner of the user's presence shard gets the owner's directory entry back (a
 * **grant**), and sends the user's next pushes straight to the members it names: one NATS hop instead of
 * two. The owner remembers who holds a grant of each user (`RouteGrants`), and before it answers a join
 * of that user it tells each of them to drop it and waits for them to confirm (src/presence/presence.ts);
 * so no sender uses an entry that misses a socket welcomed since.
 *
 * Both halves are bounded (`maxEntries`) and age out (`ROUTE_MAX_AGE_MS`): a full cache or grant table
 * only means more pushes take the owner's route, as they all did before.
 */
import { SHARD_COUNT } from '../routing/shard.js';

export const DEFAULT_PRESENCE_MAX_ROUTES = 100_000;
/**
 * How long a sender uses an entry, from the moment it asked for it. It also bounds how long a sender
 * whose view of a shard's move lags can use an entry of the former owner; the new owner's snapshot
 * request drops them earlier (RouteCache.distrust).
 */
export const ROUTE_MAX_AGE_MS = 30_000;
/** An owner keeps a grant a little longer than its sender may use it: clocks of two processes. */
const GRANT_MARGIN_MS = 5_000;

interface Route {
  readonly members: readonly string[];
  /** When the sender asked for it (its own clock, ms): the entry is as new as that. */
  readonly asked: number;
  readonly holder: string;
  readonly shard: number;
}

/** The sender's half: user key -> the members holding its sockets, as its owner last said. */
export class RouteCache {
  readonly #entries = new Map<string, Route>();
  readonly #max: number;
  /** Per shard, the last time this member was told that entries asked for before it may be stale. */
  readonly #distrusted = new Float64Array(SHARD_COUNT).fill(Number.NEGATIVE_INFINITY);
  #hits = 0;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get enabled(): boolean {
    return this.#max > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Pushes sent on a cached entry, since start. */
  get hits(): number {
    return this.#hits;
  }

  /** The members to send the user's push to, or undefined: route it through `holder` (and ask). */
  lookup(key: string, shard: number, holder: string, now: number): readonly string[] | undefined {
    const r = this.#entries.get(key);
    if (r === undefined) return undefined;
    if (r.holder !== holder || r.asked <= this.#distrusted[shard]! || now - r.asked >= ROUTE_MAX_AGE_MS) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#hits++;
    return r.members;
  }

  /**
   * Keeps the owner's answer to a route asked at `asked`, unless this member was told since that such
   * entries may be stale (an entry granted before the owner saw a join that arrived meanwhile).
   */
  store(key: string, shard: number, holder: string, members: readonly string[], asked: number): void {
    if (this.#max === 0 || asked <= this.#distrusted[shard]!) return;
    this.#entries.delete(key);
    // Full: the oldest entry makes room (Map keeps insertion order).
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { members, asked, holder, shard });
  }

  drop(key: string): void {
    this.#entries.delete(key);
  }

  /** Entries of `shard` asked for until `now` are not used, nor stored when their answer comes later. */
  distrust(shard: number, now: number): void {
    this.#distrusted[shard] = now;
  }

  /** Every entry goes (a member appeared whose sockets no entry names). */
  clear(now: number): void {
    this.#entries.clear();
    this.#distrusted.fill(now);
  }
}

/** The owner's half: user key -> the members holding a grant of its entry, and since when. */
export class RouteGrants {
  readonly #grants = new Map<string, Map<string, number>>();
  readonly #max: number;
  #size = 0;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /** Grants held over all users. */
  get size(): number {
    return this.#size;
  }

  /** Records that `member` got the user's entry; false (nothing granted) when the table is full. */
  grant(key: string, member: string, now: number): boolean {
    let by = this.#grants.get(key);
    if (by === undefined) {
      if (this.#size >= this.#max) return false;
      by = new Map();
      this.#grants.set(key, by);
    }
    if (!by.has(member)) {
      if (this.#size >= this.#max) return false;
      this.#size++;
    }
    by.set(member, now);
    return true;
  }

  /** Whether some member may still use an entry of the user. */
  has(key: string): boolean {
    return this.#grants.has(key);
  }

  /** The members that may still use an entry of the user, but `except`; their grants are forgotten. */
  take(key: string, except: string, now: number): string[] {
    const by = this.#grants.get(key);
    if (by === undefined) return [];
    const out: string[] = [];
    for (const [m, at] of by) if (m !== except && now - at < ROUTE_MAX_AGE_MS + GRANT_MARGIN_MS) out.push(m);
    this.#size -= by.size;
    this.#grants.delete(key);
    if (by.has(except)) this.grant(key, except, by.get(except)!);
    return out;
  }

  /** Forgets grants no sender can still use. */
  prune(now: number): void {
    for (const [key, by] of this.#grants) {
      for (const [m, at] of by) {
        if (now - at < ROUTE_MAX_AGE_MS + GRANT_MARGIN_MS) continue;
        by.delete(m);
        this.#size--;
      }
      if (by.size === 0) this.#grants.delete(key);
    }
  }
}
