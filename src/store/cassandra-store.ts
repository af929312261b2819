/**
 * The Cassandra HistoryStore: messages in (tenant, conv, bucket) partitions, newest first, written through
 * the batching HistoryWriter; conversations with the highest bucket in use. Prepared statements only.
 */
import cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';
import {
  HistoryWriter,
  type HistoryWriterStats,
  parseWriterLimits,
  type WriterLimits,
} from './history-writer.js';
import {
  appliedVersions,
  applyMigrations,
  assertKeyspaceName,
  BODY_ENC_UTF8,
  DEFAULT_REPLICATION,
  type HistoryStatements,
  historyStatements,
  LATEST_SCHEMA_VERSION,
  toMessage,
  toMs,
  toRecord,
  toSeq,
} from './schema.js';
import type {
  ConversationRecord,
  ConversationSnapshot,
  HistoryPage,
  HistoryStore,
  MessageRow,
  RecentAck,
} from './types.js';

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
}

export type CassandraStoreConfig = Readonly<
  Required<Omit<CassandraStoreOptions, 'writer' | 'contactPoints'>> & {
    contactPoints: readonly string[];
    writer: Readonly<WriterLimits>;
  }
>;

export const DEFAULT_BUCKET_SIZE = 1000;
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
  return Object.freeze({
    contactPoints: Object.freeze([...contactPoints]),
    localDataCenter,
    keyspace,
    replication,
    consistency,
    bucketSize,
    writer: parseWriterLimits(options.writer),
    migrate,
  });
}

const MAX_PAGE_LIMIT = 500;
/** Above any real seq; the bound when reading a bucket from its newest row. */
const NO_UPPER_SEQ = Number.MAX_SAFE_INTEGER;

/** Opens a connection, applies migrations (unless `migrate: false`, then checks the schema version). */
export async function openCassandraStore(options: CassandraStoreOptions): Promise<CassandraHistoryStore> {
  const config = parseCassandraStoreOptions(options);
  const client = new cassandra.Client({
    contactPoints: [...config.contactPoints],
    localDataCenter: config.localDataCenter,
    queryOptions: { consistency: CONSISTENCY_CODES[config.consistency], prepare: true },
  });
  try {
    await client.connect();
    if (config.migrate) {
      await applyMigrations(client, config.keyspace, config.replication);
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
  return new CassandraHistoryStore(client, config);
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
  readonly #config: CassandraStoreConfig;
  readonly #writer: HistoryWriter;
  readonly #cql: HistoryStatements;

  constructor(client: cassandra.Client, config: CassandraStoreConfig) {
    this.#client = client;
    this.#config = config;
    this.#cql = historyStatements(config.keyspace);
    this.#writer = new HistoryWriter(
      { write: (rows) => this.#writeRows(rows) },
      {
        ...config.writer,
        partitionOf: (row) => JSON.stringify([row.tenant, row.conv, this.#bucketOf(row.seq)]),
        isRetryable: isDriverTimeout,
      },
    );
  }

  append(row: MessageRow): Promise<void> {
    return this.#writer.append(row);
  }

  /** Rows pending in the writer and statements executing. */
  stats(): HistoryWriterStats {
    return this.#writer.stats();
  }

  async saveConversation(record: ConversationRecord, writeTimeMs: number): Promise<void> {
    await this.#run(this.#cql.saveConversation, [
      record.tenant,
      record.conv,
      record.visitor,
      record.agent,
      new Date(record.createdAt),
      toWriteTime(writeTimeMs),
    ]);
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
        const ack: RecentAck = {
          cmid: r.get('cmid'),
          sender: r.get('sender'),
          seq: toSeq(r.get('seq')),
          id: r.get('id'),
          ts: toMs(r.get('ts')),
        };
        if (lastSeq === 0) lastSeq = ack.seq;
        recent.push(ack);
      }
      bucket--;
    }
    return { record, lastSeq, recent: recent.slice(0, recentLimit).reverse() };
  }

  async page(tenant: string, conv: string, before: number | undefined, limit: number): Promise<HistoryPage> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
      throw new SwitchboardError('invalid_field', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
    }
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) {
      throw new SwitchboardError('invalid_field', 'before must be a positive integer');
    }
    const bound = before ?? NO_UPPER_SEQ;
    let bucket = before === undefined ? await this.#topBucket(tenant, conv) : this.#bucketOf(before - 1);
    let clamped = before === undefined;
    const items: MessageRow[] = [];
    while (bucket !== null && bucket >= 0 && items.length < limit) {
      const rows = await this.#readBucket(tenant, conv, bucket, bound, limit - items.length);
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
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
      throw new SwitchboardError('invalid_field', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
    }
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new SwitchboardError('invalid_field', 'since must be a non-negative integer');
    }
    const top = await this.#topBucket(tenant, conv);
    const items: MessageRow[] = [];
    // seq is gap-free, so the rows after `after` start in its bucket and continue upward.
    for (
      let bucket = this.#bucketOf(after + 1);
      top !== null && bucket <= top && items.length < limit;
      bucket++
    ) {
      const want = limit - items.length;
      const result = await this.#run(this.#cql.selectAfter, [tenant, conv, bucket, after, want], want);
      items.push(...result.rows.map((r) => toMessage(tenant, conv, r)));
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
    return this.#client.execute(query, params, {
      prepare: true,
      consistency: CONSISTENCY_CODES[this.#config.consistency],
      ...(fetchSize === undefined ? {} : { fetchSize }),
    });
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
  async #readBucket(tenant: string, conv: string, bucket: number, before: number, limit: number) {
    // LIMIT and fetchSize equal: the page holds every row wanted, so the driver never asks for a second.
    const result = await this.#run(this.#cql.selectPage, [tenant, conv, bucket, before, limit], limit);
    return result.rows.map((r) => toMessage(tenant, conv, r));
  }

  /** One partition's rows as one statement; a bucket's first row also raises max_bucket, atomically. */
  async #writeRows(rows: readonly MessageRow[]): Promise<void> {
    const first = rows[0];
    if (first === undefined) return;
    const bucket = this.#bucketOf(first.seq);
    const queries: { query: string; params: unknown[] }[] = rows.map((row) => ({
      query: this.#cql.insertMessage,
      params: this.#insertParams(row, bucket),
    }));
    const opensBucket = rows.some((row) => row.seq === 1 || row.seq % this.#config.bucketSize === 0);
    const options = {
      prepare: true,
      isIdempotent: true,
      consistency: CONSISTENCY_CODES[this.#config.consistency],
    };
    if (opensBucket) {
      queries.push({ query: this.#cql.setMaxBucket, params: [bucket, first.tenant, first.conv] });
      await this.#client.batch(queries, { ...options, logged: true });
    } else if (queries.length === 1) {
      await this.#client.execute(this.#cql.insertMessage, queries[0]?.params, options);
    } else {
      // One partition: an unlogged batch is a single mutation, atomic without the batchlog.
      await this.#client.batch(queries, { ...options, logged: false });
    }
  }

  #insertParams(row: MessageRow, bucket: number): unknown[] {
    const body = Buffer.from(row.body, 'utf8');
    const seq = cassandra.types.Long.fromNumber(row.seq);
    return [
      row.tenant,
      row.conv,
      bucket,
      seq,
      row.id,
      row.sender,
      row.senderRole,
      row.cmid,
      body,
      BODY_ENC_UTF8,
      new Date(row.ts),
      toWriteTime(row.ts),
    ];
  }
}

/** Cassandra write timestamps are microseconds. */
function toWriteTime(ms: number): cassandra.types.Long {
  return cassandra.types.Long.fromNumber(ms * 1000);
}

/**
 * A client-side timeout or the coordinator's write timeout: the insert may or may not have landed. With
 * isIdempotent the driver already retried a client timeout on the next host; when it runs out of hosts it
 * reports NoHostAvailableError with the timeouts inside, which counts too.
 */
function isDriverTimeout(err: unknown): boolean {
  const { errors, types } = cassandra;
  if (err instanceof errors.OperationTimedOutError) return true;
  if (err instanceof errors.ResponseError) return err.code === types.responseErrorCodes.writeTimeout;
  if (err instanceof errors.NoHostAvailableError && typeof err.innerErrors === 'object') {
    const inner: unknown[] = Object.values(err.innerErrors ?? {});
    return inner.length > 0 && inner.every(isDriverTimeout);
  }
  return false;
}
