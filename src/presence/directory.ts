/**
 * The presence directory: for the users whose presence shard this member holds, which members hold
 * at least one socket of each. A user's presence shard is `shardOf(tenant, "\u0001user\u0001" + user)`,
 * one of the same 1024 shards as conversations, so it moves with the same ownership records, leases
 * and fences. The directory lives in memory only: a member that takes a shard asks every live member
 * for its users of that shard (a snapshot); until each live member has answered, the shard is
 * *incomplete* and a push for one of its users also goes to every member that has not answered yet
 * (src/presence/presence.ts). So a user connected somewhere is always among a push's targets.
 *
 * Bounded: at most `maxUsers` user entries over all shards. A join beyond that is refused (`full`,
 * the gateway closes the socket: reconnect elsewhere); a snapshot beyond it marks the shard
 * overflowed, which keeps it incomplete, so pushes for users it could not record are sent to every
 * member (correct, only more traffic) until the shard is taken afresh.
 */
import { SHARD_COUNT, shardOfPrefixed } from '../routing/shard.js';

export const DEFAULT_PRESENCE_MAX_USERS = 200_000;
/** Presence ids start with a control character, like actor ids other than conversations. */
const PRESENCE_PREFIX = '\u0001user\u0001';

/** The presence shard of a user: `shardOf(tenant, "\u0001user\u0001" + user)` (src/routing/shard.ts). */
export function presenceShardOf(tenant: string, user: string): number {
  return shardOfPrefixed(tenant, PRESENCE_PREFIX, user);
}

/** A user's key across the cluster: tenant and user id (neither holds a NUL: they are validated ids). */
export function userKey(tenant: string, user: string): string {
  return `${tenant}\u0000${user}`;
}

export type JoinOutcome = 'ok' | 'not_held' | 'full';

interface ShardEntries {
  /** Which taking of the shard this is: snapshots answer one taking. */
  readonly epoch: number;
  /** user key -> the member holding its sockets, or several. */
  readonly users: Map<string, string | string[]>;
  /** Members whose snapshot of this taking arrived whole. */
  readonly synced: Set<string>;
  /** An entry could not be recorded (maxUsers): the shard stays incomplete. */
  overflow: boolean;
}

export interface Targets {
  /** Members the directory names for the user. */
  readonly known: readonly string[];
  /** Live members whose snapshot is missing (or every live member, for an overflowed shard). */
  readonly unsynced: readonly string[];
}

/** Member ids remembered (shared strings); a cluster has far fewer members. */
const MAX_MEMBER_IDS = 4096;
const NONE: readonly string[] = Object.freeze([]);

export class PresenceDirectory {
  readonly #shards: (ShardEntries | undefined)[] = new Array(SHARD_COUNT).fill(undefined);
  readonly #maxUsers: number;
  // One string per member id, so that 100k entries naming the same member share it.
  readonly #ids = new Map<string, string>();
  #size = 0;
  #epoch = 0;
  #refused = 0;

  constructor(maxUsers = DEFAULT_PRESENCE_MAX_USERS) {
    if (!Number.isSafeInteger(maxUsers) || maxUsers < 1)
      throw new Error('presence.maxUsers must be a positive integer');
    this.#maxUsers = maxUsers;
  }

  /** Starts holding `shard` afresh (empty, nobody synced); resolves to the taking's epoch. */
  open(shard: number): number {
    this.close(shard);
    const epoch = ++this.#epoch;
    this.#shards[shard] = { epoch, users: new Map(), synced: new Set(), overflow: false };
    return epoch;
  }

  /** Forgets `shard` and its entries (released, fenced). */
  close(shard: number): void {
    const e = this.#shards[shard];
    if (e === undefined) return;
    this.#size -= e.users.size;
    this.#shards[shard] = undefined;
  }

  holds(shard: number): boolean {
    return this.#shards[shard] !== undefined;
  }

  epochOf(shard: number): number | undefined {
    return this.#shards[shard]?.epoch;
  }

  /** User entries over all shards held. */
  get size(): number {
    return this.#size;
  }

  /** Joins refused and snapshot entries dropped at maxUsers. */
  get refused(): number {
    return this.#refused;
  }

  /** Records that `member` holds a socket of the user `key`. */
  join(shard: number, key: string, member: string): JoinOutcome {
    const e = this.#shards[shard];
    if (e === undefined) return 'not_held';
    return this.#add(e, key, member) ? 'ok' : 'full';
  }

  /** `member` holds no socket of the user any more. */
  leave(shard: number, key: string, member: string): void {
    const e = this.#shards[shard];
    if (e === undefined) return;
    const held = e.users.get(key);
    if (held === undefined) return;
    if (!Array.isArray(held)) {
      if (held === member) {
        e.users.delete(key);
        this.#size--;
      }
      return;
    }
    const at = held.indexOf(member);
    if (at < 0) return;
    held.splice(at, 1);
    if (held.length === 1) e.users.set(key, held[0]!);
  }

  /**
   * Applies part of `member`'s snapshot for `shard`: its users of the shard at the time it answered.
   * The last part marks the member synced, if the snapshot answers this taking (`epoch`).
   */
  snapshot(shard: number, epoch: number, member: string, keys: readonly string[], last: boolean): void {
    const e = this.#shards[shard];
    if (e === undefined || e.epoch !== epoch) return;
    for (const key of keys) {
      if (!this.#add(e, key, member)) {
        e.overflow = true;
        break;
      }
    }
    if (last) e.synced.add(this.#id(member));
  }

  /** The live members that have not answered this taking's snapshot (all of them when overflowed). */
  unsynced(shard: number, live: readonly string[]): readonly string[] {
    const e = this.#shards[shard];
    if (e === undefined) return NONE;
    return e.overflow ? live : this.missing(shard, live);
  }

  /** The live members whose snapshot of this taking has not arrived (overflow aside): ask them again. */
  missing(shard: number, live: readonly string[]): readonly string[] {
    const e = this.#shards[shard];
    if (e === undefined) return NONE;
    if (e.synced.size >= live.length && live.every((m) => e.synced.has(m))) return NONE;
    return live.filter((m) => !e.synced.has(m));
  }

  /** Members named by entries or snapshots since they were last dropped. */
  members(): string[] {
    return [...this.#ids.keys()];
  }

  /** Where the user's pushes go; undefined when this member does not hold the shard. */
  targets(shard: number, key: string, live: readonly string[]): Targets | undefined {
    const e = this.#shards[shard];
    if (e === undefined) return undefined;
    const held = e.users.get(key);
    const known = held === undefined ? NONE : Array.isArray(held) ? held : [held];
    return { known, unsynced: this.unsynced(shard, live) };
  }

  /**
   * A member left the cluster (or looks dead): its entries go, and it must send a snapshot again
   * should it come back. Returns the entries removed.
   */
  dropMember(member: string): number {
    let removed = 0;
    for (let s = 0; s < SHARD_COUNT; s++) {
      const e = this.#shards[s];
      if (e === undefined) continue;
      e.synced.delete(member);
      for (const [key, held] of e.users) {
        if (held === member) {
          e.users.delete(key);
          this.#size--;
          removed++;
        } else if (Array.isArray(held) && held.includes(member)) {
          held.splice(held.indexOf(member), 1);
          if (held.length === 1) e.users.set(key, held[0]!);
          removed++;
        }
      }
    }
    this.#ids.delete(member);
    return removed;
  }

  /** The shards held. */
  shards(): number[] {
    const out: number[] = [];
    for (let s = 0; s < SHARD_COUNT; s++) if (this.#shards[s] !== undefined) out.push(s);
    return out;
  }

  #add(e: ShardEntries, key: string, member: string): boolean {
    const held = e.users.get(key);
    const id = this.#id(member);
    if (held === undefined) {
      if (this.#size >= this.#maxUsers) {
        this.#refused++;
        return false;
      }
      e.users.set(key, id);
      this.#size++;
    } else if (Array.isArray(held)) {
      if (!held.includes(id)) held.push(id);
    } else if (held !== id) e.users.set(key, [held, id]);
    return true;
  }

  #id(member: string): string {
    let id = this.#ids.get(member);
    if (id === undefined) {
      // Members seen since their last drop: a cluster has few, and dropMember forgets the dead.
      if (this.#ids.size < MAX_MEMBER_IDS) this.#ids.set(member, member);
      id = member;
    }
    return id;
  }
}
