/**
 * The history keyspace's tables: versioned CQL migrations, the statements the store prepares against them
 * and the row decoders. Every DDL statement is idempotent (IF NOT EXISTS) and each applied version is
 * recorded with a lightweight transaction, so several nodes may start at once.
 */
import type cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';
import type { ConversationRecord, MessageRow, Role } from './types.js';

/** One schema version. `{keyspace}` in a statement is replaced by the (validated) keyspace name. */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

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
]);

/** The highest version in MIGRATIONS: what a keyspace must be at for this code to use it. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** body_enc values: how the `body` blob decodes to text. Readers reject any other value. */
export const BODY_ENC_UTF8 = 0;

export type HistoryStatements = ReturnType<typeof historyStatements>;

/** The CQL the history store prepares against the v1 tables, qualified with `keyspace` (validated). */
export function historyStatements(keyspace: string) {
  assertKeyspaceName(keyspace);
  const ks = keyspace;
  const cols = 'seq, id, sender, sender_role, cmid, body, body_enc, ts';
  const partition = 'tenant = ? AND conv = ? AND bucket = ?';
  return Object.freeze({
    // USING TIMESTAMP = the owner's fence time: a stale owner's late write loses to the new owner's
    // (docs/ARCHITECTURE.md, "Fencing").
    insertMessage: `INSERT INTO ${ks}.messages (tenant, conv, bucket, ${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    setMaxBucket: `UPDATE ${ks}.conversations SET max_bucket = ? WHERE tenant = ? AND conv = ?`,
    saveConversation: `INSERT INTO ${ks}.conversations (tenant, conv, visitor, agent, created_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    selectConversation: `SELECT visitor, agent, created_at, max_bucket FROM ${ks}.conversations WHERE tenant = ? AND conv = ?`,
    // Clustering is seq DESC, so these read newest first.
    selectAcks: `SELECT seq, id, cmid, sender, ts FROM ${ks}.messages WHERE ${partition} LIMIT ?`,
    selectPage: `SELECT ${cols} FROM ${ks}.messages WHERE ${partition} AND seq < ? LIMIT ?`,
    selectAfter: `SELECT ${cols} FROM ${ks}.messages WHERE ${partition} AND seq > ? ORDER BY seq ASC LIMIT ?`,
  });
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

/** Decodes a messages row; throws SwitchboardError 'internal' for a body_enc this version cannot read. */
export function toMessage(tenant: string, conv: string, row: cassandra.types.Row): MessageRow {
  const seq = toSeq(row.get('seq'));
  const enc: number = row.get('body_enc');
  if (enc !== BODY_ENC_UTF8) {
    throw new SwitchboardError(
      'internal',
      `message ${seq} of ${tenant}/${conv} has unsupported body_enc ${enc}`,
    );
  }
  const body: Buffer = row.get('body');
  return {
    tenant,
    conv,
    seq,
    id: row.get('id'),
    sender: row.get('sender'),
    senderRole: row.get('sender_role') as Role,
    cmid: row.get('cmid'),
    body: body.toString('utf8'),
    ts: toMs(row.get('ts')),
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
      { prepare: true },
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
  });
  return new Set(result.rows.map((row) => Number(row.get('version'))));
}

async function ddl(client: MigrationClient, statement: string): Promise<void> {
  // Waiting before as well as after narrows the window in which two nodes race on the same CREATE: a node
  // that has not yet seen the other's table would create a second one with a different id.
  await waitForSchemaAgreement(client);
  await client.execute(statement);
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
