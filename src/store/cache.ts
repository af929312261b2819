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
  /** Bytes over all entries (estimated: each row's JSON text at 1 or 2 bytes a character, plus 32). 0 = off. */
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
  readonly tenant: string;
  readonly conv: string;
  /** undefined: not known yet (only the tail is cached). */
  record: ConversationRecord | null | undefined;
  /**
   * Oldest first, each row as its JSON text: `tail[i]` is the row of seq `from + i`, up to the
   * conversation's last seq without gaps. One string per row instead of a row object and its five or six
   * strings: the cache is the largest part of a busy worker's live heap, and every major GC marks all of
   * it; a string is one object with nothing inside to visit (issue #13, the sweep's GC stalls).
   */
  tail: string[];
  /** The first seq the tail covers: every message with seq >= from is in `tail`. */
  from: number;
  /** Whether `tail`/`from` are known (false: only the record is cached). */
  tailKnown: boolean;
  /** rowBytes summed over `tail`, kept up to date as rows come and go (sizing must not walk the tail). */
  tailBytes: number;
}

/** A cached row's string header and array slot. */
const ROW_OVERHEAD_BYTES = 32;
const ENTRY_OVERHEAD_BYTES = 300;
/** Text V8 cannot keep one byte per character (anything past Latin-1): such a row costs 2 bytes a character. */
const WIDE_TEXT = /[^\u0000-\u00ff]/;

/** Heap bytes of one cached row: its JSON text, one or two bytes a character as V8 stores it. */
function rowBytes(json: string): number {
  return ROW_OVERHEAD_BYTES + (WIDE_TEXT.test(json) ? 2 : 1) * json.length;
}

function tailBytesOf(tail: readonly string[]): number {
  let bytes = 0;
  for (const json of tail) bytes += rowBytes(json);
  return bytes;
}

/**
 * A row as the cache keeps it: a JSON array `[id, sender, senderRole, cmid, body, ts, agent?, rest?]`.
 * Tenant, conversation and seq are the entry's and the position's; `agent` is 1 when the agents' view is
 * the body itself (no PII masked), the view when it differs, 0 when unknown; `rest` holds the rarer fields
 * (review, card, notes, recall and edit state). Effects are never cached: they hold replaced bodies.
 */
function encodeRow(row: MessageRow): string {
  const {
    tenant: _t,
    conv: _c,
    seq: _s,
    id,
    sender,
    senderRole,
    cmid,
    body,
    ts,
    agentBody,
    effects: _e,
    ...rest
  } = row;
  const agent = agentBody === undefined ? 0 : agentBody === body ? 1 : agentBody;
  if (Object.keys(rest).length > 0)
    return JSON.stringify([id, sender, senderRole, cmid, body, ts, agent, rest]);
  return JSON.stringify(
    agent === 0 ? [id, sender, senderRole, cmid, body, ts] : [id, sender, senderRole, cmid, body, ts, agent],
  );
}

type EncodedRow = [
  string,
  string,
  MessageRow['senderRole'],
  string,
  string,
  number,
  (0 | 1 | string)?,
  Partial<MessageRow>?,
];

/** A cached row, as a new object each time: callers may keep or change what they are given. */
function decodeRow(entry: Entry, index: number): MessageRow {
  const [id, sender, senderRole, cmid, body, ts, agent, rest] = JSON.parse(entry.tail[index]!) as EncodedRow;
  const row: MessageRow = {
    tenant: entry.tenant,
    conv: entry.conv,
    seq: entry.from + index,
    id,
    sender,
    senderRole,
    cmid,
    body,
    ts,
  };
  if (agent === 1) row.agentBody = body;
  else if (typeof agent === 'string') row.agentBody = agent;
  if (rest !== undefined) Object.assign(row, rest);
  return row;
}

function decodeRows(entry: Entry, from: number, to: number): MessageRow[] {
  const rows: MessageRow[] = [];
  for (let i = Math.max(0, from); i < Math.min(entry.tail.length, to); i++) rows.push(decodeRow(entry, i));
  return rows;
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
      const rows = applyStates(decodeRows(entry, 0, entry.tail.length), effects.states);
      entry.tail = rows.map(encodeRow);
      entry.tailBytes = tailBytesOf(entry.tail);
    }
    const json = encodeRow(row);
    const last = entry.from + entry.tail.length - 1;
    if (row.seq !== last + 1) {
      // Not the next seq (a retry of a seq whose first write failed is the same seq): start over.
      const replaced = row.seq === last ? entry.tail.at(-1) : undefined;
      if (replaced !== undefined) {
        entry.tail[entry.tail.length - 1] = json;
        entry.tailBytes += rowBytes(json) - rowBytes(replaced);
      } else entry.tailKnown = false;
    } else {
      entry.tail.push(json);
      entry.tailBytes += rowBytes(json);
      if (entry.tail.length > this.#opts.tailMessages) {
        const dropped = entry.tail.shift();
        if (dropped !== undefined) {
          entry.tailBytes -= rowBytes(dropped);
          entry.from++;
        }
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
      const kept = ok ? tail.map(encodeRow) : [];
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
    if (
      entry?.tailKnown === true &&
      (before === undefined || Number.isSafeInteger(before)) &&
      Number.isInteger(limit) &&
      limit >= 1 &&
      limit <= 500
    ) {
      // The rows with seq < before are tail[0 .. end).
      const end =
        before === undefined
          ? entry.tail.length
          : Math.max(0, Math.min(entry.tail.length, before - entry.from));
      // Covered when the page fits in the tail, or the tail reaches back to seq 1 (then it is all of it).
      if (end >= limit || entry.from === 1) {
        this.#hits++;
        const items = decodeRows(entry, end - limit, end).reverse();
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
      const first = after + 1 - entry.from;
      const items = decodeRows(entry, first, first + limit);
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
    const entry = this.#owned(tenant, conv);
    const index = entry === undefined ? -1 : seq - entry.from;
    if (entry?.tailKnown === true && Number.isSafeInteger(index) && index >= 0 && index < entry.tail.length) {
      this.#hits++;
      return Promise.resolve(decodeRow(entry, index));
    }
    this.#misses++;
    return this.#inner.message(tenant, conv, seq);
  }

  /**
   * The newest rows with seq > `after`, at most `limit`, oldest first, from memory only: [] when the cache
   * does not hold them (not this member's shard, evicted, off). The push to a newly assigned agent reads
   * here (actors/conversation.ts): these rows keep the agents' view they were appended with, which a row
   * read back from Cassandra does not carry.
   */
  cachedAfter(tenant: string, conv: string, after: number, limit: number): MessageRow[] {
    const entry = this.#owned(tenant, conv);
    if (entry?.tailKnown !== true || !Number.isSafeInteger(after) || !Number.isInteger(limit) || limit < 1) {
      return [];
    }
    const start = Math.max(after + 1 - entry.from, entry.tail.length - limit);
    return decodeRows(entry, start, entry.tail.length);
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
    return { shard, tenant, conv, record: undefined, tail: [], from: 1, tailKnown: false, tailBytes: 0 };
  }

  /**
   * (Re)inserts so the LRU recomputes the entry's size (lru-cache skips that when set() is given the
   * object it already holds, hence the copy); an entry over maxSize is simply not kept.
   */
  #put(tenant: string, conv: string, entry: Entry): void {
    this.#lru?.set(`${tenant}\u0000${conv}`, { ...entry });
  }
}
