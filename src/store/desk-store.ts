/**
 * The desk tables of issue #17 (schema version 5): canned replies per tenant and per agent, and the
 * labels of conversations with their listing by label. Prepared statements only; every list read is
 * bounded by a LIMIT its caller passes (from the tenant's `desk` settings).
 */
import cassandra from 'cassandra-driver';
import type { CqlClient } from './request-gate.js';
import { assertKeyspaceName, toMs } from './schema.js';
import { rethrowStoreError } from './store-errors.js';
import { TableStore } from './table-store.js';

/** The owner of the tenant's shared canned replies (agent ids never contain `*`). */
export const TENANT_OWNER = '*';

export interface CannedReply {
  /** `*` for the tenant's, else the agent's id. */
  owner: string;
  shortcut: string;
  title: string;
  body: string;
  updatedAt: number;
}

export interface LabeledConversation {
  conv: string;
  labeledAt: number;
}

export interface DeskStore {
  listCanned(tenant: string, owner: string, limit: number): Promise<CannedReply[]>;
  getCanned(tenant: string, owner: string, shortcut: string): Promise<CannedReply | null>;
  putCanned(tenant: string, reply: CannedReply): Promise<void>;
  /** Resolves true when it existed. */
  deleteCanned(tenant: string, owner: string, shortcut: string): Promise<boolean>;
  /**
   * Writes a conversation's labels (label -> when set, epoch ms) at `writeTimeMs` (the owner's fence
   * time) with the listing rows of the added labels, and removes those of the removed ones, in one
   * logged batch.
   */
  saveLabels(
    tenant: string,
    conv: string,
    labels: Readonly<Record<string, number>>,
    added: readonly string[],
    removed: ReadonlyArray<{ label: string; at: number }>,
    writeTimeMs: number,
  ): Promise<void>;
  /** Conversations labelled `label` during UTC month `YYYY-MM`, newest first, at most `limit`. */
  listByLabel(tenant: string, label: string, month: string, limit: number): Promise<LabeledConversation[]>;
}

/** The UTC month of an epoch-ms time, `YYYY-MM`: the partition of the listing by label. */
export function utcMonth(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

function statements(ks: string) {
  assertKeyspaceName(ks);
  const canned = `${ks}.canned_replies`;
  return Object.freeze({
    listCanned: `SELECT owner, shortcut, title, body, updated_at FROM ${canned} WHERE tenant = ? AND owner = ? LIMIT ?`,
    getCanned: `SELECT owner, shortcut, title, body, updated_at FROM ${canned} WHERE tenant = ? AND owner = ? AND shortcut = ?`,
    putCanned: `INSERT INTO ${canned} (tenant, owner, shortcut, title, body, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
    deleteCanned: `DELETE FROM ${canned} WHERE tenant = ? AND owner = ? AND shortcut = ? IF EXISTS`,
    saveLabels: `UPDATE ${ks}.conversations USING TIMESTAMP ? SET labels = ? WHERE tenant = ? AND conv = ?`,
    addListing: `INSERT INTO ${ks}.conversations_by_label (tenant, label, month, labeled_at, conv) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    removeListing: `DELETE FROM ${ks}.conversations_by_label USING TIMESTAMP ? WHERE tenant = ? AND label = ? AND month = ? AND labeled_at = ? AND conv = ?`,
    listByLabel: `SELECT labeled_at, conv FROM ${ks}.conversations_by_label WHERE tenant = ? AND label = ? AND month = ? LIMIT ?`,
  });
}

function toCanned(r: cassandra.types.Row): CannedReply {
  return {
    owner: r.get('owner'),
    shortcut: r.get('shortcut'),
    title: r.get('title') ?? '',
    body: r.get('body') ?? '',
    updatedAt: toMs(r.get('updated_at')),
  };
}

/** DeskStore on the history keyspace; built by CassandraHistoryStore.deskStore(). */
export class CassandraDeskStore extends TableStore<ReturnType<typeof statements>> implements DeskStore {
  constructor(client: CqlClient, keyspace: string, consistency: number) {
    super(client, keyspace, consistency, statements);
  }

  async listCanned(tenant: string, owner: string, limit: number): Promise<CannedReply[]> {
    return (await this.run(this.cql.listCanned, [tenant, owner, limit], limit)).rows.map(toCanned);
  }

  async getCanned(tenant: string, owner: string, shortcut: string): Promise<CannedReply | null> {
    const r = (await this.run(this.cql.getCanned, [tenant, owner, shortcut])).rows[0];
    return r === undefined ? null : toCanned(r);
  }

  async putCanned(tenant: string, c: CannedReply): Promise<void> {
    await this.run(this.cql.putCanned, [tenant, c.owner, c.shortcut, c.title, c.body, new Date(c.updatedAt)]);
  }

  async deleteCanned(tenant: string, owner: string, shortcut: string): Promise<boolean> {
    const r = await this.run(this.cql.deleteCanned, [tenant, owner, shortcut]);
    return r.wasApplied();
  }

  async saveLabels(
    tenant: string,
    conv: string,
    labels: Readonly<Record<string, number>>,
    added: readonly string[],
    removed: ReadonlyArray<{ label: string; at: number }>,
    writeTimeMs: number,
  ): Promise<void> {
    const at = cassandra.types.Long.fromNumber(writeTimeMs * 1000);
    const map: Record<string, Date> = {};
    for (const [k, v] of Object.entries(labels)) map[k] = new Date(v);
    const queries: { query: string; params: unknown[] }[] = [
      { query: this.cql.saveLabels, params: [at, map, tenant, conv] },
    ];
    for (const label of added) {
      const when = labels[label] ?? writeTimeMs;
      queries.push({
        query: this.cql.addListing,
        params: [tenant, label, utcMonth(when), new Date(when), conv, at],
      });
    }
    for (const r of removed)
      queries.push({
        query: this.cql.removeListing,
        params: [at, tenant, r.label, utcMonth(r.at), new Date(r.at), conv],
      });
    await this.client
      .batch(queries, { prepare: true, logged: true, isIdempotent: true, consistency: this.consistency })
      .catch(rethrowStoreError);
  }

  async listByLabel(
    tenant: string,
    label: string,
    month: string,
    limit: number,
  ): Promise<LabeledConversation[]> {
    const rows = (await this.run(this.cql.listByLabel, [tenant, label, month, limit], limit)).rows;
    return rows.map((r) => ({ conv: r.get('conv'), labeledAt: toMs(r.get('labeled_at')) }));
  }
}
