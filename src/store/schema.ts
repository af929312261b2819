/**
 * The history keyspace's tables: versioned CQL migrations, the statements the store prepares against them
 * and the row decoders. Every DDL statement is idempotent (IF NOT EXISTS) and each applied version is
 * recorded with a lightweight transaction, so several nodes may start at once.
 */
import type cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';
import { decodeBody } from './body-codec.js';
import { unpackRow } from './row-codec.js';
import type { Card, ConversationRecord, MessageRow, Role } from './types.js';

/** One schema version. `{keyspace}` in a statement is replaced by the (validated) keyspace name. */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/**
 * Driver timeout of one migration statement: DDL waits for the schema to spread and is far slower than
 * a message write, so it does not use the store's per-request timeout (SB_CASSANDRA_TIMEOUT_MS).
 */
export const MIGRATION_STATEMENT_TIMEOUT_MS = 60_000;
/** How long to wait for every node to report the same schema version after DDL. */
const SCHEMA_AGREEMENT_TIMEOUT_MS = 20_000;
const SCHEMA_AGREEMENT_POLL_MS = 100;

/** Unquoted CQL identifiers: the keyspace name is interpolated into DDL, so nothing else may pass. */
const KEYSPACE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'messages and conversations',
    statements: [
      // Insert-only message rows; the bucket bounds each partition at bucketSize rows.
      `CREATE TABLE IF NOT EXISTS {keyspace}.messages (
        tenant text, conv text, bucket int, seq bigint,
        id text, sender text, sender_role text, cmid text, body blob, body_enc tinyint, ts timestamp,
        PRIMARY KEY ((tenant, conv, bucket), seq)
      ) WITH CLUSTERING ORDER BY (seq DESC)`,
      `CREATE TABLE IF NOT EXISTS {keyspace}.conversations (
        tenant text, conv text, visitor text, agent text, created_at timestamp, max_bucket int,
        PRIMARY KEY ((tenant, conv))
      )`,
    ],
  },
  {
    version: 2,
    name: 'cmid de-duplication, listings, audits, message flags',
    statements: [
      // One row per stored message's (sender, cmid), in the message's bucket so the batch that writes
      // the message writes it too (two partitions). Rows carry a TTL (cmidTtlS): de-duplication of a
      // retry is promised for that long, and the partition stays bounded by bucketSize rows.
      `CREATE TABLE IF NOT EXISTS {keyspace}.cmids (
        tenant text, conv text, bucket int, sender text, cmid text, seq bigint, id text, ts timestamp,
        PRIMARY KEY ((tenant, conv, bucket), sender, cmid)
      )`,
      // Listings written with the conversation record. by_day partitions a tenant's conversations by
      // the UTC day they were created, so no listing partition grows without bound over time.
      `CREATE TABLE IF NOT EXISTS {keyspace}.conversations_by_visitor (
        tenant text, visitor text, created_at timestamp, conv text,
        PRIMARY KEY ((tenant, visitor), created_at, conv)
      ) WITH CLUSTERING ORDER BY (created_at DESC, conv ASC)`,
      `CREATE TABLE IF NOT EXISTS {keyspace}.conversations_by_agent (
        tenant text, agent text, created_at timestamp, conv text,
        PRIMARY KEY ((tenant, agent), created_at, conv)
      ) WITH CLUSTERING ORDER BY (created_at DESC, conv ASC)`,
      `CREATE TABLE IF NOT EXISTS {keyspace}.conversations_by_day (
        tenant text, day text, created_at timestamp, conv text, visitor text,
        PRIMARY KEY ((tenant, day), created_at, conv)
      ) WITH CLUSTERING ORDER BY (created_at DESC, conv ASC)`,
      // Audit trails, per tenant and UTC day, newest first.
      `CREATE TABLE IF NOT EXISTS {keyspace}.pii_reveals (
        tenant text, day text, ts timestamp, id text, agent text, conv text, seq bigint, idx int, kind text,
        PRIMARY KEY ((tenant, day), ts, id)
      ) WITH CLUSTERING ORDER BY (ts DESC, id ASC)`,
      `CREATE TABLE IF NOT EXISTS {keyspace}.policy_blocks (
        tenant text, day text, ts timestamp, id text, sender text, sender_role text, conv text, cmid text,
        words list<text>, body text,
        PRIMARY KEY ((tenant, day), ts, id)
      ) WITH CLUSTERING ORDER BY (ts DESC, id ASC)`,
      // Bit set per message: FLAG_REVIEW (1) = a `review` word of the tenant's policy occurred.
      'ALTER TABLE {keyspace}.messages ADD IF NOT EXISTS flags int',
    ],
  },
  {
    version: 3,
    name: 'conversation lifecycle, receipts, assignment',
    statements: [
      // Lifecycle of a conversation (src/store/chat-store.ts); older rows have none: open, derived.
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS status text',
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS skill text',
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS subject text',
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS closed_at timestamp',
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS closed_by text',
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS rating int',
      // A system / bot message's card, as JSON (null on chat messages).
      'ALTER TABLE {keyspace}.messages ADD IF NOT EXISTS card text',
      // Read receipts: the highest seq each participant has read.
      `CREATE TABLE IF NOT EXISTS {keyspace}.read_receipts (
        tenant text, conv text, user text, seq bigint, ts timestamp,
        PRIMARY KEY ((tenant, conv), user)
      )`,
      // The open conversations of a user (visitor or agent): resume after reconnect, the agent's load.
      `CREATE TABLE IF NOT EXISTS {keyspace}.open_conversations (
        tenant text, user text, conv text, role text, since timestamp,
        PRIMARY KEY ((tenant, user), conv)
      )`,
      // The tenant's agents (the queue actor's roster; written by the agent actors).
      `CREATE TABLE IF NOT EXISTS {keyspace}.agents (
        tenant text, agent text, status text, capacity int, skills set<text>, updated_at timestamp,
        PRIMARY KEY ((tenant), agent)
      )`,
      // Conversations waiting for an agent (the queue actor's waiting list), ordered by enqueued_at on load.
      `CREATE TABLE IF NOT EXISTS {keyspace}.queue_entries (
        tenant text, conv text, visitor text, skill text, enqueued_at timestamp,
        PRIMARY KEY ((tenant), conv)
      )`,
    ],
  },
  {
    version: 4,
    name: 'agent action audit',
    statements: [
      // Every agent action (allowed, refused, failed), per tenant and UTC day, newest first.
      `CREATE TABLE IF NOT EXISTS {keyspace}.action_audits (
        tenant text, day text, ts timestamp, id text, agent text, conv text, action text, args text,
        outcome text, detail text, took_ms int,
        PRIMARY KEY ((tenant, day), ts, id)
      ) WITH CLUSTERING ORDER BY (ts DESC, id ASC)`,
    ],
  },
  {
    version: 5,
    name: 'desk: notes, recall and edit, canned replies, labels',
    statements: [
      // Set in a change row's batch: readers of a conversation never changed skip message_states.
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS changed boolean',
      // The current state of recalled / edited messages, by the message's own seq and bucket (at most
      // one row per message, so bounded like the messages partition). Written in the change row's batch.
      `CREATE TABLE IF NOT EXISTS {keyspace}.message_states (
        tenant text, conv text, bucket int, seq bigint, state text, body text, edit_seqs list<bigint>,
        ts timestamp,
        PRIMARY KEY ((tenant, conv, bucket), seq)
      )`,
      // The bodies recalls and edits replaced: read by auditors only (API key scope `audit`).
      `CREATE TABLE IF NOT EXISTS {keyspace}.message_audits (
        tenant text, conv text, target bigint, change_seq bigint, kind text, by_user text, by_role text,
        body text, ts timestamp,
        PRIMARY KEY ((tenant, conv), target, change_seq)
      )`,
      // Canned replies: owner '*' = the tenant's, else an agent id.
      `CREATE TABLE IF NOT EXISTS {keyspace}.canned_replies (
        tenant text, owner text, shortcut text, title text, body text, updated_at timestamp,
        PRIMARY KEY ((tenant, owner), shortcut)
      )`,
      // Labels of a conversation (label -> when it was set), and the listing by label per UTC month.
      'ALTER TABLE {keyspace}.conversations ADD IF NOT EXISTS labels map<text, timestamp>',
      `CREATE TABLE IF NOT EXISTS {keyspace}.conversations_by_label (
        tenant text, label text, month text, labeled_at timestamp, conv text,
        PRIMARY KEY ((tenant, label, month), labeled_at, conv)
      ) WITH CLUSTERING ORDER BY (labeled_at DESC, conv ASC)`,
    ],
  },
  {
    // 6, not 5: issue #17's other half (canned replies, notes, labels, recall) takes 5 on its branch.
    version: 6,
    name: 'reception: reply waits, left messages, bot sessions',
    statements: [
      // A visitor waiting for the assigned agent's answer since `since` (src/reception/, no-reply
      // reassignment): written by the conversation actor, read by the tenant's queue actor on load.
      `CREATE TABLE IF NOT EXISTS {keyspace}.reply_waits (
        tenant text, conv text, agent text, since timestamp,
        PRIMARY KEY ((tenant), conv)
      )`,
      // Messages left outside business hours, queued when the desk opens (bounded per tenant).
      `CREATE TABLE IF NOT EXISTS {keyspace}.left_messages (
        tenant text, id text, conv text, visitor text, name text, email text, body text, ts timestamp,
        PRIMARY KEY ((tenant), id)
      )`,
      // Conversations with the tenant's bot, and the summary a handed-off one carries to its agent.
      `CREATE TABLE IF NOT EXISTS {keyspace}.bot_sessions (
        tenant text, conv text, visitor text, since timestamp, state text, summary text, handed_by text,
        PRIMARY KEY ((tenant), conv)
      ) WITH default_time_to_live = 604800`,
    ],
  },
  {
    version: 7,
    name: 'one packed cell per message row',
    statements: [
      // Everything but the key in one msgpack cell (src/store/row-codec.ts); older rows keep their columns.
      'ALTER TABLE {keyspace}.messages ADD IF NOT EXISTS packed blob',
    ],
  },
]);

/** The highest version in MIGRATIONS: what a keyspace must be at for this code to use it. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** messages.flags bit: the tenant's content policy flagged the message for review. */
export const FLAG_REVIEW = 1;
/**
 * messages.flags bits of issue #17: a private note; a recall row; an edit row (the packed row's
 * `target` is the seq changed).
 */
export const FLAG_INTERNAL = 2;
export const FLAG_RECALL = 4;
export const FLAG_EDIT = 8;

export type HistoryStatements = ReturnType<typeof historyStatements>;

/** The CQL the history store prepares, qualified with `keyspace` (validated). */
export function historyStatements(keyspace: string) {
  assertKeyspaceName(keyspace);
  const ks = keyspace;
  const cols = 'seq, id, sender, sender_role, cmid, body, body_enc, ts, flags, card, packed';
  const partition = 'tenant = ? AND conv = ? AND bucket = ?';
  const listing = 'created_at, conv';
  return Object.freeze({
    // USING TIMESTAMP = the owner's fence time: a stale owner's late write loses to the new owner's
    // (docs/ARCHITECTURE.md, "Fencing"). TTL = the tenant's retention in seconds (0: kept for ever).
    insertMessage: `INSERT INTO ${ks}.messages (tenant, conv, bucket, seq, packed) VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
    insertCmid: `INSERT INTO ${ks}.cmids (tenant, conv, bucket, sender, cmid, seq, id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
    // The takeover seal (HistoryStore.sealAbove): a range tombstone above the last seq a new owner read.
    sealAbove: `DELETE FROM ${ks}.messages USING TIMESTAMP ? WHERE ${partition} AND seq > ?`,
    selectCmid: `SELECT seq, id, ts FROM ${ks}.cmids WHERE ${partition} AND sender = ? AND cmid = ?`,
    setChanged: `UPDATE ${ks}.conversations SET changed = true WHERE tenant = ? AND conv = ?`,
    setMaxBucket: `UPDATE ${ks}.conversations SET max_bucket = ? WHERE tenant = ? AND conv = ?`,
    saveConversation: `INSERT INTO ${ks}.conversations (tenant, conv, visitor, agent, created_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    listByVisitorInsert: `INSERT INTO ${ks}.conversations_by_visitor (tenant, visitor, ${listing}) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    listByAgentInsert: `INSERT INTO ${ks}.conversations_by_agent (tenant, agent, ${listing}) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    listByDayInsert: `INSERT INTO ${ks}.conversations_by_day (tenant, day, ${listing}, visitor) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    listByVisitor: `SELECT ${listing} FROM ${ks}.conversations_by_visitor WHERE tenant = ? AND visitor = ? LIMIT ?`,
    listByAgent: `SELECT ${listing} FROM ${ks}.conversations_by_agent WHERE tenant = ? AND agent = ? LIMIT ?`,
    listByDay: `SELECT ${listing} FROM ${ks}.conversations_by_day WHERE tenant = ? AND day = ? LIMIT ?`,
    selectConversation: `SELECT visitor, agent, created_at, max_bucket, changed FROM ${ks}.conversations WHERE tenant = ? AND conv = ?`,
    // Clustering is seq DESC, so these read newest first.
    selectAcks: `SELECT seq, id, cmid, sender, ts, packed FROM ${ks}.messages WHERE ${partition} LIMIT ?`,
    selectPage: `SELECT ${cols} FROM ${ks}.messages WHERE ${partition} AND seq < ? LIMIT ?`,
    selectAfter: `SELECT ${cols} FROM ${ks}.messages WHERE ${partition} AND seq > ? ORDER BY seq ASC LIMIT ?`,
    selectOne: `SELECT ${cols} FROM ${ks}.messages WHERE ${partition} AND seq = ?`,
    insertReveal: `INSERT INTO ${ks}.pii_reveals (tenant, day, ts, id, agent, conv, seq, idx, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    selectReveals: `SELECT ts, id, agent, conv, seq, idx, kind FROM ${ks}.pii_reveals WHERE tenant = ? AND day = ? LIMIT ?`,
    insertBlock: `INSERT INTO ${ks}.policy_blocks (tenant, day, ts, id, sender, sender_role, conv, cmid, words, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    selectBlocks: `SELECT ts, id, sender, sender_role, conv, cmid, words, body FROM ${ks}.policy_blocks WHERE tenant = ? AND day = ? LIMIT ?`,
    insertActionAudit: `INSERT INTO ${ks}.action_audits (tenant, day, ts, id, agent, conv, action, args, outcome, detail, took_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    insertState: `INSERT INTO ${ks}.message_states (tenant, conv, bucket, seq, state, body, edit_seqs, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
    selectStates: `SELECT seq, state, body, edit_seqs FROM ${ks}.message_states WHERE ${partition} AND seq >= ? AND seq <= ?`,
    insertMessageAudit: `INSERT INTO ${ks}.message_audits (tenant, conv, target, change_seq, kind, by_user, by_role, body, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    selectMessageAudits: `SELECT target, change_seq, kind, by_user, by_role, body, ts FROM ${ks}.message_audits WHERE tenant = ? AND conv = ? LIMIT ?`,
    selectActionAudits: `SELECT ts, id, agent, conv, action, args, outcome, detail, took_ms FROM ${ks}.action_audits WHERE tenant = ? AND day = ? LIMIT ?`,
  });
}

/** The UTC day of an epoch-ms time, `YYYY-MM-DD`: the partition of listings and audits. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A conversations row that only carries max_bucket (messages before saveConversation) is no record. */
export function toRecord(
  tenant: string,
  conv: string,
  row: cassandra.types.Row | undefined,
): ConversationRecord | null {
  const visitor: string | null = row?.get('visitor') ?? null;
  if (row === undefined || visitor === null) return null;
  return { tenant, conv, visitor, agent: row.get('agent') ?? null, createdAt: toMs(row.get('created_at')) };
}

/**
 * Decodes a messages row; the body is read by `decodeBody` (body_enc 0 = UTF-8, N = deflate with
 * dictionary N). Throws SwitchboardError 'internal' for a body this version cannot read.
 */
export function toMessage(tenant: string, conv: string, row: cassandra.types.Row): MessageRow {
  const seq = toSeq(row.get('seq'));
  let fields: StoredFields;
  let body: string;
  try {
    fields = storedFields(row);
    body = decodeBody(fields.bodyEnc, fields.body);
  } catch (err) {
    throw new SwitchboardError('internal', `message ${seq} of ${tenant}/${conv} cannot be read`, {
      cause: err,
    });
  }
  const message: MessageRow = {
    tenant,
    conv,
    seq,
    id: fields.id,
    sender: fields.sender,
    senderRole: fields.senderRole,
    cmid: fields.cmid,
    body,
    ts: fields.ts,
  };
  if ((fields.flags & FLAG_REVIEW) !== 0) message.review = true;
  if (fields.card !== null) message.card = JSON.parse(fields.card) as Card;
  if ((fields.flags & FLAG_INTERNAL) !== 0) message.internal = true;
  if (fields.target !== undefined && (fields.flags & (FLAG_RECALL | FLAG_EDIT)) !== 0) {
    message.change = (fields.flags & FLAG_RECALL) !== 0 ? 'recall' : 'edit';
    message.target = fields.target;
  }
  return message;
}

/** A messages row's fields, from its packed cell (schema 7) or, for older rows, from its columns. */
export interface StoredFields {
  id: string;
  sender: string;
  senderRole: Role;
  cmid: string;
  bodyEnc: number;
  body: Buffer;
  ts: number;
  flags: number;
  card: string | null;
  /** A recall or edit row's target seq (packed rows only; issue #17). */
  target?: number;
}

/** Throws an Error for a packed cell that does not decode. Columns not selected read as null. */
export function storedFields(row: cassandra.types.Row): StoredFields {
  const packed: Buffer | null = row.get('packed') ?? null;
  if (packed !== null) {
    const p = unpackRow(packed);
    return { ...p, body: Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength) };
  }
  return {
    id: row.get('id'),
    sender: row.get('sender'),
    senderRole: row.get('sender_role') as Role,
    cmid: row.get('cmid'),
    bodyEnc: row.get('body_enc') ?? 0,
    body: row.get('body') ?? Buffer.alloc(0),
    ts: toMs(row.get('ts') ?? null),
    flags: row.get('flags') ?? 0,
    card: row.get('card') ?? null,
  };
}

/** bigint columns arrive as Long; seqs stay below 2^53, so a number is exact. */
export function toSeq(value: cassandra.types.Long | number): number {
  return typeof value === 'number' ? value : value.toNumber();
}

/** timestamp column to epoch ms (0 for a missing value). */
export function toMs(value: Date | null): number {
  return value === null ? 0 : value.getTime();
}

/** The driver surface the migrations need (a `cassandra.Client` satisfies it). */
export type MigrationClient = Pick<cassandra.Client, 'execute' | 'metadata'>;

/** Throws unless `keyspace` is a plain CQL identifier (letters, digits, underscore; at most 48). */
export function assertKeyspaceName(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) {
    throw new Error('keyspace must be a CQL identifier: a letter, then letters, digits or _ (at most 48)');
  }
}

/**
 * Creates the keyspace (with `replication`, a CQL map literal) and the schema_migrations table, then applies
 * each missing migration in version order, recording it. Resolves with the versions this call applied
 * (another node may have applied the rest). Rejects on a CQL error or when schema agreement is not reached.
 */
export async function applyMigrations(
  client: MigrationClient,
  keyspace: string,
  replication: string = DEFAULT_REPLICATION,
): Promise<number[]> {
  assertKeyspaceName(keyspace);
  await ddl(client, `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ${replication}`);
  await ddl(
    client,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)`,
  );
  const done = await appliedVersions(client, keyspace);
  const applied: number[] = [];
  const ordered = [...MIGRATIONS].sort((a, b) => a.version - b.version);
  for (const migration of ordered) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements) {
      await ddl(client, statement.replaceAll('{keyspace}', keyspace));
    }
    // LWT so that two nodes applying the same version concurrently record it once; both ran idempotent DDL.
    const result = await client.execute(
      `INSERT INTO ${keyspace}.schema_migrations (version, name, applied_at) VALUES (?, ?, ?) IF NOT EXISTS`,
      [migration.version, migration.name, new Date()],
      { prepare: true, readTimeout: MIGRATION_STATEMENT_TIMEOUT_MS },
    );
    if (result.wasApplied()) applied.push(migration.version);
  }
  return applied;
}

/** The versions recorded in `keyspace`.schema_migrations (empty when the table does not exist yet). */
export async function appliedVersions(client: MigrationClient, keyspace: string): Promise<Set<number>> {
  assertKeyspaceName(keyspace);
  const result = await client.execute(`SELECT version FROM ${keyspace}.schema_migrations`, [], {
    prepare: true,
    readTimeout: MIGRATION_STATEMENT_TIMEOUT_MS,
  });
  return new Set(result.rows.map((row) => Number(row.get('version'))));
}

async function ddl(client: MigrationClient, statement: string): Promise<void> {
  // Waiting before as well as after narrows the window in which two nodes race on the same CREATE: a node
  // that has not yet seen the other's table would create a second one with a different id.
  await waitForSchemaAgreement(client);
  await client.execute(statement, [], { readTimeout: MIGRATION_STATEMENT_TIMEOUT_MS });
  await waitForSchemaAgreement(client);
}

/**
 * The driver already waits (protocolOptions.maxSchemaAgreementWaitSeconds) after a DDL response that changed
 * the schema, but not after an IF NOT EXISTS that was a no-op here while another node's change still spreads.
 * `checkSchemaAgreement` exists at runtime but is missing from the driver's typings (4.10.0).
 */
async function waitForSchemaAgreement(client: MigrationClient): Promise<void> {
  const metadata = client.metadata as unknown as { checkSchemaAgreement?: () => Promise<boolean> };
  if (typeof metadata.checkSchemaAgreement !== 'function') return;
  const deadline = Date.now() + SCHEMA_AGREEMENT_TIMEOUT_MS;
  while (!(await metadata.checkSchemaAgreement())) {
    if (Date.now() >= deadline) {
      throw new Error(`schema agreement not reached within ${SCHEMA_AGREEMENT_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, SCHEMA_AGREEMENT_POLL_MS));
  }
}
