/**
 * The Cassandra HistoryStore: messages in (tenant, conv, bucket) partitions, newest first, written through
 * the batching HistoryWriter; conversations with the highest bucket in use. Prepared statements only.
 */
import cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';
import {
  BODY_ENC_UTF8,
  type BodyEncoder,
  type EncodedBody,
  inlineEncoder,
  takeEncodedBody,
  utf8,
} from './body-codec.js';
import { CassandraChatStore } from './chat-store.js';
import { CassandraDeskStore } from './desk-store.js';
import {
  HistoryWriter,
  type HistoryWriterStats,
  parseWriterLimits,
  type WriterLimits,
} from './history-writer.js';
import { applyState } from './message-state.js';
import { CassandraReceptionStore } from './reception-store.js';
import {
  type CqlClient,
  DEFAULT_STORE_REQUESTS_IN_FLIGHT,
  DEFAULT_STORE_REQUESTS_WAITING,
  gatedClient,
  RequestGate,
  type RequestGateStats,
} from './request-gate.js';
import { packRow } from './row-codec.js';
import {
  appliedVersions,
  applyMigrations,
  assertKeyspaceName,
  DEFAULT_REPLICATION,
  FLAG_EDIT,
  FLAG_INTERNAL,
  FLAG_RECALL,
  FLAG_REVIEW,
  type HistoryStatements,
  historyStatements,
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  type StoredFields,
  storedFields,
  toMessage,
  toMs,
  toRecord,
  toSeq,
  utcDay,
} from './schema.js';
import { isRefusedWrite, isRetryableWrite, rethrowStoreError } from './store-errors.js';
import type {
  ActionAudit,
  BlockAudit,
  ConversationListing,
  ConversationRecord,
  ConversationSnapshot,
  HistoryPage,
  HistoryStore,
  ListingKey,
  MessageAudit,
  MessageRow,
  MessageState,
  RecentAck,
  RevealAudit,
} from './types.js';

const { Long } = cassandra.types;

export type Consistency = 'ONE' | 'LOCAL_ONE' | 'LOCAL_QUORUM' | 'QUORUM';

export interface CassandraStoreOptions {
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  /** CQL map literal for CREATE KEYSPACE; default SimpleStrategy RF 1 (local development only). */
  replication?: string;
  /** For reads and writes; default LOCAL_QUORUM (RF 1: one replica; RF 3: two of the local DC). */
  consistency?: Consistency;
  /** Messages per partition: bucket = floor(seq / bucketSize). Fixed for the life of a keyspace. */
  bucketSize?: number;
  writer?: Partial<WriterLimits>;
  /** Apply missing migrations on open (default true); when false, opening fails unless they were applied. */
  migrate?: boolean;
  /**
   * How long a stored cmid de-duplicates a retry beyond the actor's window, in seconds (the cmids rows'
   * TTL). Default 0: no cmids rows (one row per message); the actor's window of the conversation's
   * last messages de-duplicates alone (docs/ARCHITECTURE.md, "De-duplication").
   */
  cmidTtlS?: number;
  /** Driver timeout per request, ms (default 4000: below the dispatcher's 5 s request deadline). */
  requestTimeoutMs?: number;
  /**
   * Requests at the driver at once, all but the writer's batches (default 2000; the driver fails what
   * passes its 2048 per connection), and how many more wait for a turn (default 8192) before one is
   * refused `unavailable`. A request whose turn comes after requestTimeoutMs is refused too.
   */
  requestsInFlight?: number;
  requestsWaiting?: number;
}

/** What the store needs at run time besides its config: functions and the worker pool. */
export interface CassandraStoreHooks {
  /** Compresses bodies before they are written (default: inline, same code as the pool's). */
  encoder?: BodyEncoder;
  /** A tenant's retention in seconds (message TTL); 0 keeps rows for ever. Default: 0 for all. */
  retentionS?: (tenant: string) => number;
  /**
   * Runs the migrations when some are missing: a cluster lock, so that nodes migrate one at a time.
   * Default: at once. A keyspace already at every version is only read, without the lock.
   */
  migrationLock?: <T>(migrate: () => Promise<T>) => Promise<T>;
}

export type CassandraStoreConfig = Readonly<
  Required<Omit<CassandraStoreOptions, 'writer' | 'contactPoints'>> & {
    contactPoints: readonly string[];
    writer: Readonly<WriterLimits>;
  }
>;

export const DEFAULT_BUCKET_SIZE = 1000;
/** 0: no cmids rows; the actor's window de-duplicates (one Cassandra row per message). */
export const DEFAULT_CMID_TTL_S = 0;
export const DEFAULT_CASSANDRA_REQUEST_TIMEOUT_MS = 4000;
/** Cassandra's upper bound for a TTL (20 years), in seconds. */
export const MAX_TTL_S = 630_720_000;
export const DEFAULT_CONSISTENCY: Consistency = 'LOCAL_QUORUM';
const CONSISTENCY_CODES: Readonly<Record<Consistency, number>> = Object.freeze({
  ONE: cassandra.types.consistencies.one,
  LOCAL_ONE: cassandra.types.consistencies.localOne,
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  QUORUM: cassandra.types.consistencies.quorum,
});
const CONSISTENCIES = Object.keys(CONSISTENCY_CODES) as Consistency[];

/** Merges defaults and checks every field; throws Error with a fixed message; returns a frozen config. */
export function parseCassandraStoreOptions(options: CassandraStoreOptions): CassandraStoreConfig {
  const { contactPoints, localDataCenter, keyspace } = options;
  if (!Array.isArray(contactPoints) || contactPoints.length === 0) {
    throw new Error('contactPoints must be a non-empty array of host[:port] strings');
  }
  if (!contactPoints.every((point) => typeof point === 'string' && point.length > 0)) {
    throw new Error('contactPoints must be a non-empty array of host[:port] strings');
  }
  if (typeof localDataCenter !== 'string' || localDataCenter.length === 0) {
    throw new Error('localDataCenter must be a non-empty string');
  }
  assertKeyspaceName(keyspace);
  const replication = options.replication ?? DEFAULT_REPLICATION;
  if (typeof replication !== 'string' || !/^\s*\{[^;]*\}\s*$/.test(replication)) {
    throw new Error("replication must be a CQL map literal such as {'class': 'SimpleStrategy', ...}");
  }
  const consistency = options.consistency ?? DEFAULT_CONSISTENCY;
  if (!CONSISTENCIES.includes(consistency)) {
    throw new Error(`consistency must be one of ${CONSISTENCIES.join(', ')}`);
  }
  const bucketSize = options.bucketSize ?? DEFAULT_BUCKET_SIZE;
  if (!Number.isSafeInteger(bucketSize) || bucketSize < 1) {
    throw new Error('bucketSize must be a positive integer');
  }
  const migrate = options.migrate ?? true;
  if (typeof migrate !== 'boolean') throw new Error('migrate must be a boolean');
  const cmidTtlS = options.cmidTtlS ?? DEFAULT_CMID_TTL_S;
  if (!Number.isSafeInteger(cmidTtlS) || cmidTtlS < 0 || cmidTtlS > MAX_TTL_S) {
    throw new Error(`cmidTtlS must be an integer from 0 to ${MAX_TTL_S}`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_CASSANDRA_REQUEST_TIMEOUT_MS;
  if (!Number.isSafeInteger(requestTimeoutMs) || requestTimeoutMs < 100) {
    throw new Error('requestTimeoutMs must be an integer of at least 100');
  }
  const requestsInFlight = options.requestsInFlight ?? DEFAULT_STORE_REQUESTS_IN_FLIGHT;
  if (!Number.isSafeInteger(requestsInFlight) || requestsInFlight < 1 || requestsInFlight > 2000) {
    throw new Error(
      'requestsInFlight must be an integer from 1 to 2000 (the driver allows 2048 per connection)',
    );
  }
  const requestsWaiting = options.requestsWaiting ?? DEFAULT_STORE_REQUESTS_WAITING;
  if (!Number.isSafeInteger(requestsWaiting) || requestsWaiting < 0) {
    throw new Error('requestsWaiting must be a non-negative integer');
  }
  return Object.freeze({
    contactPoints: Object.freeze([...contactPoints]),
    localDataCenter,
    keyspace,
    replication,
    consistency,
    bucketSize,
    writer: parseWriterLimits(options.writer),
    migrate,
    cmidTtlS,
    requestTimeoutMs,
    requestsInFlight,
    requestsWaiting,
  });
}

const MAX_PAGE_LIMIT = 500;
/** Above any real seq; the bound when reading a bucket from its newest row. */
const NO_UPPER_SEQ = Number.MAX_SAFE_INTEGER;

/** Opens a connection, applies migrations (unless `migrate: false`, then checks the schema version). */
export async function openCassandraStore(
  options: CassandraStoreOptions,
  hooks: CassandraStoreHooks = {},
): Promise<CassandraHistoryStore> {
  const config = parseCassandraStoreOptions(options);
  const client = new cassandra.Client({
    contactPoints: [...config.contactPoints],
    localDataCenter: config.localDataCenter,
    queryOptions: { consistency: CONSISTENCY_CODES[config.consistency], prepare: true },
    socketOptions: { readTimeout: config.requestTimeoutMs },
  });
  try {
    await client.connect();
    if (config.migrate) {
      // A restart finds its keyspace migrated: one read, and its workers do not queue for the lock (each
      // took its turn for its DDL checks, ~0.6 s apiece, while a restarted node's clients waited).
      if (!(await migrated(client, config.keyspace))) {
        const lock = hooks.migrationLock ?? ((migrate) => migrate());
        await lock(() => applyMigrations(client, config.keyspace, config.replication));
      }
    } else {
      const versions = await appliedVersions(client, config.keyspace);
      if (!versions.has(LATEST_SCHEMA_VERSION)) {
        throw new Error(
          `keyspace ${config.keyspace} lacks schema version ${LATEST_SCHEMA_VERSION}; migrate it`,
        );
      }
    }
  } catch (err) {
    await client.shutdown().catch(() => undefined);
    throw err;
  }
  return new CassandraHistoryStore(client, config, hooks);
}

/** True when `keyspace` has recorded every migration; false when some are missing or it does not exist. */
async function migrated(client: cassandra.Client, keyspace: string): Promise<boolean> {
  const versions = await appliedVersions(client, keyspace).catch(() => new Set<number>());
  return MIGRATIONS.every((m) => versions.has(m.version));
}

/** Drops `keyspace` and everything in it (tests and tooling). Resolves once the schema change agreed. */
export async function dropKeyspace(
  options: Pick<CassandraStoreOptions, 'contactPoints' | 'localDataCenter' | 'keyspace'>,
): Promise<void> {
  assertKeyspaceName(options.keyspace);
  const client = new cassandra.Client({
    contactPoints: [...options.contactPoints],
    localDataCenter: options.localDataCenter,
  });
  try {
    await client.connect();
    await client.execute(`DROP KEYSPACE IF EXISTS ${options.keyspace}`);
  } finally {
    await client.shutdown();
  }
}

/** HistoryStore on Cassandra, plus `stats()` of its writer. Build it with openCassandraStore. */
export class CassandraHistoryStore implements HistoryStore {
  readonly #client: cassandra.Client;
  /** Every request but the writer's batches, through the gate (src/store/request-gate.ts). */
  readonly #gate: RequestGate;
  readonly #gated: CqlClient;
  readonly #config: CassandraStoreConfig;
  readonly #writer: HistoryWriter;
  readonly #cql: HistoryStatements;
  readonly #encoder: BodyEncoder;
  readonly #retentionS: (tenant: string) => number;
  readonly #encoded = new WeakMap<MessageRow, EncodedBody>();
  readonly #packedRows = new WeakMap<MessageRow, Buffer>();

  constructor(client: cassandra.Client, config: CassandraStoreConfig, hooks: CassandraStoreHooks = {}) {
    this.#client = client;
    this.#config = config;
    this.#gate = new RequestGate(config.requestsInFlight, config.requestsWaiting, config.requestTimeoutMs);
    this.#gated = gatedClient(client, this.#gate);
    this.#cql = historyStatements(config.keyspace);
    this.#encoder = hooks.encoder ?? inlineEncoder;
    this.#retentionS = hooks.retentionS ?? (() => 0);
    this.#writer = new HistoryWriter(
      { write: (rows) => this.#writeRows(rows) },
      {
        ...config.writer,
        partitionOf: (row) => JSON.stringify([row.tenant, row.conv, this.#bucketOf(row.seq)]),
        isRetryable: isRetryableWrite,
        isCertainFailure: isRefusedWrite,
      },
    );
  }

  /** The lifecycle / receipts / assignment tables on the same connection (src/store/chat-store.ts). */
  chatStore(): CassandraChatStore {
    return new CassandraChatStore(
      this.#gated,
      this.#config.keyspace,
      CONSISTENCY_CODES[this.#config.consistency],
    );
  }

  /** The canned replies and labels tables on the same connection (src/store/desk-store.ts). */
  deskStore(): CassandraDeskStore {
    return new CassandraDeskStore(
      this.#gated,
      this.#config.keyspace,
      CONSISTENCY_CODES[this.#config.consistency],
    );
  }

  /** The support-desk tables on the same connection (src/store/reception-store.ts). */
  receptionStore(): CassandraReceptionStore {
    return new CassandraReceptionStore(
      this.#gated,
      this.#config.keyspace,
      CONSISTENCY_CODES[this.#config.consistency],
    );
  }

  append(row: MessageRow): Promise<void> {
    return this.#writer.append(row);
  }

  /** Rows pending in the writer and statements executing. */
  stats(): HistoryWriterStats {
    return this.#writer.stats();
  }

  /** The other requests: at the driver, waiting for a turn, refused (src/store/request-gate.ts). */
  requestStats(): RequestGateStats {
    return this.#gate.stats();
  }

  /**
   * Writes the record and its listings (by visitor, by day, by agent when it has one) in one logged
   * batch, so a listing never names a conversation whose record was not written, nor the reverse.
   */
  async saveConversation(record: ConversationRecord, writeTimeMs: number): Promise<void> {
    const { tenant, conv, visitor, agent } = record;
    const created = new Date(record.createdAt);
    const at = toWriteTime(writeTimeMs);
    const queries: { query: string; params: unknown[] }[] = [
      { query: this.#cql.saveConversation, params: [tenant, conv, visitor, agent, created, at] },
      { query: this.#cql.listByVisitorInsert, params: [tenant, visitor, created, conv, at] },
      {
        query: this.#cql.listByDayInsert,
        params: [tenant, utcDay(record.createdAt), created, conv, visitor, at],
      },
    ];
    if (agent !== null) {
      queries.push({ query: this.#cql.listByAgentInsert, params: [tenant, agent, created, conv, at] });
    }
    await this.#gated.batch(queries, this.#writeOptions(true)).catch(rethrowStoreError);
  }

  async listConversations(tenant: string, by: ListingKey, limit: number): Promise<ConversationListing[]> {
    checkLimit(limit);
    const [query, key] =
      'visitor' in by
        ? [this.#cql.listByVisitor, by.visitor]
        : 'agent' in by
          ? [this.#cql.listByAgent, by.agent]
          : [this.#cql.listByDay, by.day];
    const result = await this.#run(query, [tenant, key, limit], limit);
    return result.rows.map((r) => ({ conv: r.get('conv'), createdAt: toMs(r.get('created_at')) }));
  }

  async lookupCmid(
    tenant: string,
    conv: string,
    sender: string,
    cmid: string,
    lastSeq: number,
  ): Promise<RecentAck | null> {
    if (this.#config.cmidTtlS === 0) return null; // no cmids rows are written
    const top = this.#bucketOf(lastSeq);
    // The newest two buckets: at least bucketSize messages back, far beyond the actor's recent window.
    for (let bucket = top; bucket >= Math.max(0, top - 1); bucket--) {
      const row = (await this.#run(this.#cql.selectCmid, [tenant, conv, bucket, sender, cmid])).rows[0];
      if (row !== undefined) {
        const seq = toSeq(row.get('seq'));
        const id: string = row.get('id');
        // Past lastSeq the caller decides (a write that failed here but landed); at or below it, the
        // answer must name the row actually stored at that seq (issue #12: a cmids row of a write that
        // landed late pointed at a seq that holds another message).
        if (seq <= lastSeq) {
          const stored = await this.message(tenant, conv, seq);
          if (stored === null || stored.id !== id) return null;
        }
        return { cmid, sender, seq, id, ts: toMs(row.get('ts')) };
      }
    }
    return null;
  }

  async sealAbove(tenant: string, conv: string, lastSeq: number, sealTimeMs: number): Promise<void> {
    const bucket = this.#bucketOf(lastSeq + 1);
    // One microsecond below the fence time: a row this owner writes at that same millisecond
    // (timestamp ms * 1000) stays visible, every earlier owner's write (earlier fence time) is shadowed.
    const at = cassandra.types.Long.fromNumber(sealTimeMs * 1000 - 1);
    await this.#gated
      .execute(
        this.#cql.sealAbove,
        [at, tenant, conv, bucket, Long.fromNumber(lastSeq)],
        this.#writeOptions(false),
      )
      .catch(rethrowStoreError);
  }

  async message(tenant: string, conv: string, seq: number): Promise<MessageRow | null> {
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new SwitchboardError('invalid_field', 'seq must be a positive integer');
    }
    const bucket = this.#bucketOf(seq);
    const row = (await this.#run(this.#cql.selectOne, [tenant, conv, bucket, Long.fromNumber(seq)])).rows[0];
    if (row === undefined) return null;
    return (await this.#withStates(tenant, conv, bucket, [toMessage(tenant, conv, row)]))[0] ?? null;
  }

  async messageAudits(tenant: string, conv: string, limit: number): Promise<MessageAudit[]> {
    checkLimit(limit);
    const result = await this.#run(this.#cql.selectMessageAudits, [tenant, conv, limit], limit);
    return result.rows.map((r) => ({
      tenant,
      conv,
      target: toSeq(r.get('target')),
      changeSeq: toSeq(r.get('change_seq')),
      kind: r.get('kind'),
      by: r.get('by_user'),
      byRole: r.get('by_role'),
      body: r.get('body') ?? '',
      ts: toMs(r.get('ts')),
    }));
  }

  /**
   * The rows (all of one bucket) in their current state: one read of message_states over their seq
   * range (issue #17, recall and edit). Rows without a state are returned as they are.
   */
  async #withStates(tenant: string, conv: string, bucket: number, rows: MessageRow[]): Promise<MessageRow[]> {
    if (rows.length === 0) return rows;
    let lo = rows[0]!.seq;
    let hi = lo;
    for (const r of rows) {
      if (r.seq < lo) lo = r.seq;
      if (r.seq > hi) hi = r.seq;
    }
    const params = [tenant, conv, bucket, Long.fromNumber(lo), Long.fromNumber(hi)];
    const result = await this.#run(this.#cql.selectStates, params, hi - lo + 1);
    if (result.rows.length === 0) return rows;
    const states = new Map<number, MessageState>();
    for (const r of result.rows) {
      const seq = toSeq(r.get('seq'));
      const edits: cassandra.types.Long[] | null = r.get('edit_seqs');
      states.set(seq, {
        seq,
        state: r.get('state') === 'recalled' ? 'recalled' : 'edited',
        body: r.get('body') ?? null,
        editSeqs: (edits ?? []).map(toSeq),
      });
    }
    return rows.map((row) => applyState(row, states.get(row.seq)));
  }

  /** An audit row: every audit table is keyed (tenant, UTC day) and clustered by (time, id). */
  async #audit(
    cql: string,
    entry: { tenant: string; ts: number; id: string },
    columns: readonly unknown[],
  ): Promise<void> {
    await this.#gated
      .execute(
        cql,
        [entry.tenant, utcDay(entry.ts), new Date(entry.ts), entry.id, ...columns],
        this.#writeOptions(false),
      )
      .catch(rethrowStoreError);
  }

  async auditReveal(entry: RevealAudit): Promise<void> {
    await this.#audit(this.#cql.insertReveal, entry, [
      entry.agent,
      entry.conv,
      Long.fromNumber(entry.seq),
      entry.index,
      entry.kind,
    ]);
  }

  async auditBlock(entry: BlockAudit): Promise<void> {
    await this.#audit(this.#cql.insertBlock, entry, [
      entry.sender,
      entry.senderRole,
      entry.conv,
      entry.cmid,
      entry.words,
      entry.body,
    ]);
  }

  /** Writes one agent action to the audit table; resolves once durable. */
  async auditAction(entry: ActionAudit): Promise<void> {
    await this.#audit(this.#cql.insertActionAudit, entry, [
      entry.agent,
      entry.conv,
      entry.action,
      entry.args,
      entry.outcome,
      entry.detail,
      entry.tookMs,
    ]);
  }

  /** Audited agent actions of one tenant and UTC day, newest first. */
  async actionAudits(tenant: string, day: string, limit: number): Promise<ActionAudit[]> {
    checkLimit(limit);
    const result = await this.#run(this.#cql.selectActionAudits, [tenant, day, limit], limit);
    return result.rows.map((r) => ({
      tenant,
      id: r.get('id'),
      ts: toMs(r.get('ts')),
      agent: r.get('agent'),
      conv: r.get('conv'),
      action: r.get('action'),
      args: r.get('args'),
      outcome: r.get('outcome'),
      detail: r.get('detail'),
      tookMs: r.get('took_ms'),
    }));
  }

  async reveals(tenant: string, day: string, limit: number): Promise<RevealAudit[]> {
    checkLimit(limit);
    const result = await this.#run(this.#cql.selectReveals, [tenant, day, limit], limit);
    return result.rows.map((r) => ({
      tenant,
      id: r.get('id'),
      ts: toMs(r.get('ts')),
      agent: r.get('agent'),
      conv: r.get('conv'),
      seq: toSeq(r.get('seq')),
      index: r.get('idx'),
      kind: r.get('kind'),
    }));
  }

  async blocks(tenant: string, day: string, limit: number): Promise<BlockAudit[]> {
    checkLimit(limit);
    const result = await this.#run(this.#cql.selectBlocks, [tenant, day, limit], limit);
    return result.rows.map((r) => ({
      tenant,
      id: r.get('id'),
      ts: toMs(r.get('ts')),
      sender: r.get('sender'),
      senderRole: r.get('sender_role'),
      conv: r.get('conv'),
      cmid: r.get('cmid'),
      words: r.get('words') ?? [],
      body: r.get('body'),
    }));
  }

  async loadConversation(tenant: string, conv: string): Promise<ConversationRecord | null> {
    return toRecord(tenant, conv, await this.#conversationRow(tenant, conv));
  }

  async loadSnapshot(tenant: string, conv: string, recentLimit: number): Promise<ConversationSnapshot> {
    if (!Number.isSafeInteger(recentLimit) || recentLimit < 0) {
      throw new SwitchboardError('invalid_field', 'recentLimit must be a non-negative integer');
    }
    const row = await this.#conversationRow(tenant, conv);
    const record = toRecord(tenant, conv, row);
    let bucket = await this.#topBucket(tenant, conv, row?.get('max_bucket') ?? null);
    const recent: RecentAck[] = []; // newest first while collecting
    let lastSeq = 0;
    const wanted = Math.max(recentLimit, 1); // at least one row, for lastSeq
    while (bucket !== null && bucket >= 0 && recent.length < wanted) {
      const result = await this.#run(this.#cql.selectAcks, [tenant, conv, bucket, wanted - recent.length]);
      for (const r of result.rows) {
        const seq = toSeq(r.get('seq'));
        let fields: StoredFields;
        try {
          fields = storedFields(r);
        } catch (err) {
          throw new SwitchboardError('internal', `message ${seq} of ${tenant}/${conv} cannot be read`, {
            cause: err,
          });
        }
        const ack: RecentAck = {
          cmid: fields.cmid,
          sender: fields.sender,
          seq,
          id: fields.id,
          ts: fields.ts,
        };
        if (lastSeq === 0) lastSeq = ack.seq;
        recent.push(ack);
      }
      bucket--;
    }
    return { record, lastSeq, recent: recent.slice(0, recentLimit).reverse() };
  }

  async page(tenant: string, conv: string, before: number | undefined, limit: number): Promise<HistoryPage> {
    checkLimit(limit);
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) {
      throw new SwitchboardError('invalid_field', 'before must be a positive integer');
    }
    const bound = before ?? NO_UPPER_SEQ;
    // Reading the newest page reads the conversation row anyway (its top bucket): it also says whether
    // any message of the conversation was ever recalled or edited (undefined: not known, look).
    const head = before === undefined ? await this.#conversationRow(tenant, conv) : undefined;
    const changed = before === undefined ? head?.get('changed') === true : undefined;
    let bucket =
      before === undefined
        ? await this.#topBucket(tenant, conv, head?.get('max_bucket') ?? null)
        : this.#bucketOf(before - 1);
    let clamped = before === undefined;
    const items: MessageRow[] = [];
    while (bucket !== null && bucket >= 0 && items.length < limit) {
      const rows = await this.#readBucket(tenant, conv, bucket, bound, limit - items.length, changed);
      if (rows.length === 0 && items.length === 0 && !clamped) {
        // A cursor past the newest message: seqs are gap-free, so only buckets above the top can be empty.
        clamped = true;
        const top = await this.#topBucket(tenant, conv);
        if (top !== null && top < bucket) {
          bucket = top;
          continue;
        }
      }
      items.push(...rows);
      bucket--;
    }
    const oldest = items.at(-1)?.seq;
    const next = items.length === limit && oldest !== undefined && oldest > 1 ? oldest : null;
    return { items, next };
  }

  async after(tenant: string, conv: string, after: number, limit: number) {
    checkLimit(limit);
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new SwitchboardError('invalid_field', 'since must be a non-negative integer');
    }
    const head = await this.#conversationRow(tenant, conv);
    const top = await this.#topBucket(tenant, conv, head?.get('max_bucket') ?? null);
    const changed = head?.get('changed') === true;
    const items: MessageRow[] = [];
    // seq is gap-free, so the rows after `after` start in its bucket and continue upward.
    for (
      let bucket = this.#bucketOf(after + 1);
      top !== null && bucket <= top && items.length < limit;
      bucket++
    ) {
      const want = limit - items.length;
      const result = await this.#run(this.#cql.selectAfter, [tenant, conv, bucket, after, want], want);
      const rows = result.rows.map((r) => toMessage(tenant, conv, r));
      items.push(...(changed ? await this.#withStates(tenant, conv, bucket, rows) : rows));
    }
    return { items, more: items.length === limit };
  }

  /** Flushes the writer (every accepted append settles), then shuts the driver down. */
  async close(): Promise<void> {
    await this.#writer.close();
    await this.#client.shutdown();
  }

  #bucketOf(seq: number): number {
    return Math.floor(seq / this.#config.bucketSize);
  }

  #run(query: string, params: unknown[], fetchSize?: number): Promise<cassandra.types.ResultSet> {
    return this.#gated
      .execute(query, params, {
        prepare: true,
        consistency: CONSISTENCY_CODES[this.#config.consistency],
        ...(fetchSize === undefined ? {} : { fetchSize }),
      })
      .catch(rethrowStoreError);
  }

  async #conversationRow(tenant: string, conv: string): Promise<cassandra.types.Row | undefined> {
    return (await this.#run(this.#cql.selectConversation, [tenant, conv])).rows[0];
  }

  /**
   * The highest bucket holding messages, or null when there are none. max_bucket is written in a logged
   * batch with a bucket's first row, so it cannot lag, but probing upward costs one empty read and covers
   * rows written before the conversation row existed or by an older writer.
   */
  async #topBucket(tenant: string, conv: string, known?: number | null): Promise<number | null> {
    let top =
      known === undefined ? ((await this.#conversationRow(tenant, conv))?.get('max_bucket') ?? null) : known;
    if (top === null) {
      if (!(await this.#bucketHasRows(tenant, conv, 0))) return null;
      top = 0;
    }
    while (await this.#bucketHasRows(tenant, conv, top + 1)) top++;
    return top;
  }

  async #bucketHasRows(tenant: string, conv: string, bucket: number): Promise<boolean> {
    return (await this.#run(this.#cql.selectAcks, [tenant, conv, bucket, 1])).rows.length > 0;
  }

  /** Up to `limit` rows of one bucket with seq < before, newest first, in one round trip. */
  async #readBucket(
    tenant: string,
    conv: string,
    bucket: number,
    before: number,
    limit: number,
    changed: boolean | undefined,
  ) {
    // LIMIT and fetchSize equal: the page holds every row wanted, so the driver never asks for a second.
    const result = await this.#run(this.#cql.selectPage, [tenant, conv, bucket, before, limit], limit);
    if (changed === false) return result.rows.map((r) => toMessage(tenant, conv, r));
    return this.#withStates(
      tenant,
      conv,
      bucket,
      result.rows.map((r) => toMessage(tenant, conv, r)),
    );
  }

  #writeOptions(logged: boolean) {
    return {
      prepare: true,
      isIdempotent: true,
      logged,
      consistency: CONSISTENCY_CODES[this.#config.consistency],
    };
  }

  /** A row's packed cell, built once per row object like its body, so every repeat writes the same bytes. */
  #packed(row: MessageRow, body: EncodedBody): Buffer {
    let packed = this.#packedRows.get(row);
    if (packed === undefined) {
      packed = packRow({
        id: row.id,
        sender: row.sender,
        senderRole: row.senderRole,
        cmid: row.cmid,
        bodyEnc: body.enc,
        body: body.data,
        ts: row.ts,
        flags: flagsOf(row),
        card: row.card === undefined ? null : JSON.stringify(row.card),
        ...(row.target === undefined ? {} : { target: row.target }),
      });
      this.#packedRows.set(row, packed);
    }
    return packed;
  }

  /**
   * A writer group's rows as one batch: the messages, their cmids (a second partition per
   * conversation bucket) and, for each row that opens a bucket, max_bucket (the batch is logged then,
   * so max_bucket never lags). Bodies are encoded first (compressed on the pool when that saves bytes;
   * plain UTF-8 if the pool refuses). Every statement is idempotent (same key, same values, same write
   * timestamp), so a retry repeats it exactly.
   */
  async #writeRows(rows: readonly MessageRow[]): Promise<void> {
    if (rows.length === 0) return;
    const bodies = await this.#encodeBodies(rows);
    const queries: { query: string; params: unknown[] }[] = [];
    let opensBucket = false;
    let changes = false;
    rows.forEach((row, i) => {
      const bucket = this.#bucketOf(row.seq);
      const seq = Long.fromNumber(row.seq);
      const at = toWriteTime(row.ts);
      const body = bodies[i] ?? { enc: BODY_ENC_UTF8, data: utf8(row.body) };
      queries.push({
        query: this.#cql.insertMessage,
        params: [row.tenant, row.conv, bucket, seq, this.#packed(row, body), this.#ttlOf(row.tenant), at],
      });
      if (row.effects !== undefined) {
        // A recall or edit: the new states and the replaced bodies in the same logged batch, so the
        // change row is never stored without them nor they without it (issue #17).
        changes = true;
        queries.push({ query: this.#cql.setChanged, params: [row.tenant, row.conv] });
        for (const st of row.effects.states)
          queries.push({
            query: this.#cql.insertState,
            params: [
              row.tenant,
              row.conv,
              this.#bucketOf(st.seq),
              Long.fromNumber(st.seq),
              st.state,
              st.body,
              st.editSeqs.map((n) => Long.fromNumber(n)),
              new Date(row.ts),
              this.#ttlOf(row.tenant),
              at,
            ],
          });
        for (const a of row.effects.audits)
          queries.push({
            query: this.#cql.insertMessageAudit,
            params: [
              a.tenant,
              a.conv,
              Long.fromNumber(a.target),
              Long.fromNumber(a.changeSeq),
              a.kind,
              a.by,
              a.byRole,
              a.body,
              new Date(a.ts),
              at,
            ],
          });
      }
      if (this.#config.cmidTtlS > 0)
        queries.push({
          query: this.#cql.insertCmid,
          params: [
            row.tenant,
            row.conv,
            bucket,
            row.sender,
            row.cmid,
            seq,
            row.id,
            new Date(row.ts),
            this.#config.cmidTtlS,
            at,
          ],
        });
      if (row.seq === 1 || row.seq % this.#config.bucketSize === 0) {
        opensBucket = true;
        queries.push({ query: this.#cql.setMaxBucket, params: [bucket, row.tenant, row.conv] });
      }
    });
    // Unlogged unless a bucket opens: a partial write is never acked; the actor retries the same seq
    // with the same cmid, so nothing is stored twice.
    await this.#client.batch(queries, this.#writeOptions(opensBucket || changes));
    // Durable: nothing writes these row objects again (only an uncertain write is repeated, and it threw
    // above), so their stored bytes need not live as long as the rows do. The rows stay in the actors'
    // and the history cache's recent windows for many seconds; their packed cells and encoded bodies
    // made up about a third of a loaded worker's live heap (issue #13: old-generation growth, GC pauses).
    for (const row of rows) {
      this.#packedRows.delete(row);
      this.#encoded.delete(row);
    }
  }

  /**
   * Each row's stored body, encoded once per row object: a repeat of an uncertain write (the writer's
   * retry, or the actor settling it) must write exactly the same cells, and the pool may compress one
   * attempt and refuse the next (then that attempt would be stored uncompressed, and two values at one
   * write timestamp would be merged cell by cell).
   */
  async #encodeBodies(rows: readonly MessageRow[]): Promise<EncodedBody[]> {
    let missing = rows.filter((row) => !this.#encoded.has(row));
    if (this.#encoder.compresses && missing.length > 0) {
      // Bodies the gateway encoded with their screen are written as they are.
      missing = missing.filter((row) => {
        const body = takeEncodedBody(row);
        if (body !== undefined) this.#encoded.set(row, body);
        return body === undefined;
      });
    }
    if (missing.length > 0) {
      let encoded: EncodedBody[];
      try {
        encoded = await this.#encoder.encode(missing.map((row) => row.body));
      } catch {
        // A full pool must not fail a write: store this group uncompressed.
        encoded = missing.map((row) => ({ enc: BODY_ENC_UTF8, data: utf8(row.body) }));
      }
      missing.forEach((row, i) => {
        if (!this.#encoded.has(row)) {
          this.#encoded.set(row, encoded[i] ?? { enc: BODY_ENC_UTF8, data: utf8(row.body) });
        }
      });
    }
    return rows.map((row) => this.#encoded.get(row) as EncodedBody);
  }

  #ttlOf(tenant: string): number {
    const ttl = this.#retentionS(tenant);
    return Number.isSafeInteger(ttl) && ttl > 0 ? Math.min(ttl, MAX_TTL_S) : 0;
  }
}

/** messages.flags of a row: review, note, recall / edit. */
function flagsOf(row: MessageRow): number {
  let flags = row.review === true ? FLAG_REVIEW : 0;
  if (row.internal === true) flags |= FLAG_INTERNAL;
  if (row.change === 'recall') flags |= FLAG_RECALL;
  if (row.change === 'edit') flags |= FLAG_EDIT;
  return flags;
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new SwitchboardError('invalid_field', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  }
}

/** Cassandra write timestamps are microseconds. */
function toWriteTime(ms: number): cassandra.types.Long {
  return cassandra.types.Long.fromNumber(ms * 1000);
}
