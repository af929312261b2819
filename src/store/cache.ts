/**
 * The history caches of one member: for each conversation whose shard this member owns, its record
 * and the recent tail of its messages, in one `lru-cache` bounded by bytes (`maxSize` with a
 * `sizeCalculation` per entry). This is the only module that imports lru-cache.
 *
 * Why it is correct: only the owner of a shard appends to its conversations, and every append goes
 * through this wrapper, so on the owner the tail is the truth. A tail is seeded when the actor activates
 * (loadSnapshot) and extended by each durable append; it says which seqs it covers (`from`..`last`,
 * gap-free). Reads use it only while `holds(shard)` — on any other member, or after the shard is lost,
 * they go to Cassandra — and `dropShard` empties a shard's entries when it is released, fenced or taken.
 */
import { LRUCache } from 'lru-cache';
import { traced } from '../telemetry/tracing.js';
import { applyStates, withoutEffects } from './message-state.js';
import type {
  ConversationListing,
  ConversationRecord,
  ConversationSnapshot,
  HistoryPage,
  HistoryStore,
  ListingKey,
  MessageRow,
  RecentAck,
} from './types.js';

const appendTo = (inner: HistoryStore, row: MessageRow): Promise<void> => inner.append(row);

export interface HistoryCacheOptions {
  /** Bytes over all entries (estimated: UTF-16 text × 2 plus a fixed overhead per row). 0 = off. */
  maxBytes: number;
  /** Newest messages kept per conversation. */
  tailMessages: number;
  shardOf(tenant: string, conv: string): number;
  /** True while this member holds the shard (with a valid lease): only then is the cache the truth. */
  holds(shard: number): boolean;
}

export interface HistoryCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  /** Entries dropped because their shard was released, fenced or taken. */
  invalidated: number;
}

interface Entry {
  readonly shard: number;
  /** undefined: not known yet (only the tail is cached). */
  record: ConversationRecord | null | undefined;
  /** Oldest first; seqs from `from` to the conversation's last seq, without gaps. */
  tail: MessageRow[];
  /** The first seq the tail covers: every message with seq >= from is in `tail`. */
  from: number;
  /** Whether `tail`/`from` are known (false: only the record is cached). */
  tailKnown: boolean;
  /** rowBytes summed over `tail`, kept up to date as rows come and go (sizing must not walk the tail). */
  tailBytes: number;
}

const ROW_OVERHEAD_BYTES = 200;
const ENTRY_OVERHEAD_BYTES = 300;

function rowBytes(row: MessageRow): number {
  return ROW_OVERHEAD_BYTES + 2 * (row.body.length + row.id.length + row.cmid.length + row.sender.length);
}

function tailBytesOf(tail: readonly MessageRow[]): number {
  let bytes = 0;
  for (const row of tail) bytes += rowBytes(row);
  return bytes;
}

function entryBytes(entry: Entry): number {
  return ENTRY_OVERHEAD_BYTES + entry.tailBytes;
}

/**
 * A HistoryStore that answers `loadConversation`, `after` (sync) and `page` (history) from the cache
 * when it covers the request, and passes everything else to `inner`. Writes go to `inner` first and
 * reach the cache only once durable.
 */
export class CachedHistoryStore implements HistoryStore {
  readonly #inner: HistoryStore;
  readonly #opts: HistoryCacheOptions;
  readonly #lru: LRUCache<string, Entry> | undefined;
  #hits = 0;
  #misses = 0;
  #invalidated = 0;

  constructor(inner: HistoryStore, opts: HistoryCacheOptions) {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0) {
      throw new Error('cache maxBytes must be a non-negative integer');
    }
    if (!Number.isSafeInteger(opts.tailMessages) || opts.tailMessages < 1) {
      throw new Error('cache tailMessages must be a positive integer');
    }
    this.#inner = inner;
    this.#opts = opts;
    this.#lru =
      opts.maxBytes === 0
        ? undefined
        : new LRUCache<string, Entry>({ maxSize: opts.maxBytes, sizeCalculation: entryBytes });
  }

  stats(): HistoryCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: this.#lru?.size ?? 0,
      bytes: this.#lru?.calculatedSize ?? 0,
      invalidated: this.#invalidated,
    };
  }

  /** Forgets every conversation of `shard` (released, fenced or taken: another member may write it). */
  dropShard(shard: number): void {
    if (this.#lru === undefined) return;
    for (const [key, entry] of this.#lru.entries()) {
      if (entry.shard === shard) {
        this.#lru.delete(key);
        this.#invalidated++;
      }
    }
  }

  async append(row: MessageRow): Promise<void> {
    await traced('sb.store.append', row.tenant, row.conv, appendTo, this.#inner, row); // trace: until durable
    const entry = this.#owned(row.tenant, row.conv);
    if (entry === undefined || !entry.tailKnown) return;
    const effects = row.effects;
    if (effects !== undefined) {
      // A recall or edit: the rows it changes read in their new state from now on (issue #17). The
      // cached copy drops the effects: they hold the replaced body, which only the audit table keeps.
      row = withoutEffects(row);
      entry.tail = applyStates(entry.tail, effects.states);
      entry.tailBytes = tailBytesOf(entry.tail);
    }
    const last = entry.tail.at(-1)?.seq ?? entry.from - 1;
    if (row.seq !== last + 1) {
      // Not the next seq (a retry of a seq whose first write failed is the same seq): start over.
      const replaced = row.seq === last ? entry.tail.at(-1) : undefined;
      if (replaced !== undefined) {
        entry.tail[entry.tail.length - 1] = row;
        entry.tailBytes += rowBytes(row) - rowBytes(replaced);
      } else entry.tailKnown = false;
    } else {
      entry.tail.push(row);
      entry.tailBytes += rowBytes(row);
      if (entry.tail.length > this.#opts.tailMessages) {
        const dropped = entry.tail.shift();
        if (dropped !== undefined) entry.tailBytes -= rowBytes(dropped);
        entry.from = entry.tail[0]?.seq ?? entry.from;
      }
    }
    this.#put(row.tenant, row.conv, entry);
  }

  async saveConversation(record: ConversationRecord, writeTimeMs: number): Promise<void> {
    await this.#inner.saveConversation(record, writeTimeMs);
    const entry = this.#owned(record.tenant, record.conv, true);
    if (entry === undefined) return;
    entry.record = record;
    this.#put(record.tenant, record.conv, entry);
  }

  async loadConversation(tenant: string, conv: string): Promise<ConversationRecord | null> {
    const entry = this.#owned(tenant, conv);
    if (entry !== undefined && entry.record !== undefined) {
      this.#hits++;
      return entry.record;
    }
    this.#misses++;
    const record = await this.#inner.loadConversation(tenant, conv);
    // Cache only a record that exists: a conversation is created by its owner's actor, which saves it here.
    const now = this.#owned(tenant, conv, record !== null);
    if (now !== undefined && record !== null) {
      now.record = record;
      this.#put(tenant, conv, now);
    }
    return record;
  }

  /** Activation of the actor: the snapshot from Cassandra, and the tail seeded from its newest page. */
  async loadSnapshot(tenant: string, conv: string, recentLimit: number): Promise<ConversationSnapshot> {
    const snapshot = await this.#inner.loadSnapshot(tenant, conv, recentLimit);
    const entry = this.#owned(tenant, conv, true);
    if (entry === undefined) return snapshot;
    entry.record = snapshot.record;
    if (snapshot.lastSeq === 0) {
      Object.assign(entry, { tail: [], from: 1, tailKnown: true, tailBytes: 0 });
    } else {
      const page = await this.#inner.page(tenant, conv, undefined, this.#opts.tailMessages);
      const tail = page.items.slice().reverse();
      // Seed only a tail that ends at the snapshot's last seq and has no gaps.
      const ok = tail.at(-1)?.seq === snapshot.lastSeq && tail.every((r, i) => r.seq === tail[0]!.seq + i);
      const kept = ok ? tail : [];
      Object.assign(entry, {
        tail: kept,
        from: tail[0]?.seq ?? 1,
        tailKnown: ok,
        tailBytes: tailBytesOf(kept),
      });
    }
    this.#put(tenant, conv, entry);
    return snapshot;
  }

  async page(tenant: string, conv: string, before: number | undefined, limit: number): Promise<HistoryPage> {
    const entry = this.#owned(tenant, conv);
    if (entry?.tailKnown === true && Number.isInteger(limit) && limit >= 1 && limit <= 500) {
      const upto = before === undefined ? Number.MAX_SAFE_INTEGER : before;
      const rows = entry.tail.filter((r) => r.seq < upto);
      // Covered when the page fits in the tail, or the tail reaches back to seq 1 (then it is all of it).
      if (rows.length >= limit || entry.from === 1) {
        this.#hits++;
        const items = rows.slice(-limit).reverse();
        const oldest = items.at(-1)?.seq;
        return { items, next: items.length === limit && oldest !== undefined && oldest > 1 ? oldest : null };
      }
    }
    this.#misses++;
    return this.#inner.page(tenant, conv, before, limit);
  }

  async after(tenant: string, conv: string, after: number, limit: number) {
    const entry = this.#owned(tenant, conv);
    if (
      entry?.tailKnown === true &&
      Number.isSafeInteger(after) &&
      after + 1 >= entry.from &&
      Number.isInteger(limit) &&
      limit >= 1 &&
      limit <= 500
    ) {
      this.#hits++;
      const items = entry.tail.filter((r) => r.seq > after).slice(0, limit);
      return { items, more: items.length === limit };
    }
    this.#misses++;
    return this.#inner.after(tenant, conv, after, limit);
  }

  lookupCmid(
    tenant: string,
    conv: string,
    sender: string,
    cmid: string,
    lastSeq: number,
  ): Promise<RecentAck | null> {
    return this.#inner.lookupCmid(tenant, conv, sender, cmid, lastSeq);
  }

  sealAbove(tenant: string, conv: string, lastSeq: number, sealTimeMs: number): Promise<void> {
    return this.#inner.sealAbove(tenant, conv, lastSeq, sealTimeMs);
  }

  message(tenant: string, conv: string, seq: number): Promise<MessageRow | null> {
    const hit = this.#owned(tenant, conv)?.tail.find((r) => r.seq === seq);
    if (hit !== undefined) {
      this.#hits++;
      return Promise.resolve(hit);
    }
    this.#misses++;
    return this.#inner.message(tenant, conv, seq);
  }

  listConversations(tenant: string, by: ListingKey, limit: number): Promise<ConversationListing[]> {
    return this.#inner.listConversations(tenant, by, limit);
  }

  auditReveal(...args: Parameters<HistoryStore['auditReveal']>) {
    return this.#inner.auditReveal(...args);
  }

  auditBlock(...args: Parameters<HistoryStore['auditBlock']>) {
    return this.#inner.auditBlock(...args);
  }

  reveals(...args: Parameters<HistoryStore['reveals']>) {
    return this.#inner.reveals(...args);
  }

  blocks(...args: Parameters<HistoryStore['blocks']>) {
    return this.#inner.blocks(...args);
  }

  messageAudits(...args: Parameters<HistoryStore['messageAudits']>) {
    return this.#inner.messageAudits(...args);
  }

  close(): Promise<void> {
    this.#lru?.clear();
    return this.#inner.close();
  }

  /** The entry of an owned conversation (created when `create`), or undefined when not owned here. */
  #owned(tenant: string, conv: string, create = false): Entry | undefined {
    if (this.#lru === undefined) return undefined;
    const shard = this.#opts.shardOf(tenant, conv);
    const key = `${tenant}\u0000${conv}`;
    if (!this.#opts.holds(shard)) {
      this.#lru.delete(key);
      return undefined;
    }
    const entry = this.#lru.get(key);
    if (entry !== undefined || !create) return entry;
    return { shard, record: undefined, tail: [], from: 1, tailKnown: false, tailBytes: 0 };
  }

  /**
   * (Re)inserts so the LRU recomputes the entry's size (lru-cache skips that when set() is given the
   * object it already holds, hence the copy); an entry over maxSize is simply not kept.
   */
  #put(tenant: string, conv: string, entry: Entry): void {
    this.#lru?.set(`${tenant}\u0000${conv}`, { ...entry });
  }
}
