/**
 * The support-desk tables (schema version 6, src/reception/): reply waits (no-reply reassignment), left
 * messages (business hours) and bot sessions (bot first). Prepared statements only; every list read
 * is bounded by the LIMIT its caller passes. Reply waits are written at the owner's fence time
 * (USING TIMESTAMP), so a wait and the answer that ends it land in the order they happened even when
 * the two writes overtake each other on the wire.
 */
import cassandra from 'cassandra-driver';
import type { CqlClient } from './request-gate.js';
import { assertKeyspaceName, toMs } from './schema.js';
import { TableStore } from './table-store.js';

export interface ReplyWaitRow {
  conv: string;
  agent: string;
  /** Since when the visitor waits for this agent (epoch ms). */
  since: number;
}

export interface LeftMessageRow {
  id: string;
  conv: string;
  visitor: string;
  name: string | null;
  email: string | null;
  body: string;
  ts: number;
}

export interface BotSessionRow {
  conv: string;
  visitor: string;
  since: number;
  /** `bot` while the bot answers; `handed` once handed off (the summary waits for the agent). */
  state: 'bot' | 'handed';
  summary: string | null;
  handedBy: string | null;
}

export interface ReceptionStore {
  loadReplyWait(tenant: string, conv: string): Promise<ReplyWaitRow | null>;
  loadReplyWaits(tenant: string, limit: number): Promise<ReplyWaitRow[]>;
  saveReplyWait(tenant: string, row: ReplyWaitRow, writeTimeMs: number): Promise<void>;
  removeReplyWait(tenant: string, conv: string, writeTimeMs: number): Promise<void>;
  saveLeftMessage(tenant: string, row: LeftMessageRow): Promise<void>;
  removeLeftMessage(tenant: string, id: string): Promise<void>;
  /** At most `limit`, oldest first (ids are ULIDs). */
  loadLeftMessages(tenant: string, limit: number): Promise<LeftMessageRow[]>;
  saveBotSession(tenant: string, row: BotSessionRow): Promise<void>;
  removeBotSession(tenant: string, conv: string): Promise<void>;
  loadBotSessions(tenant: string, limit: number): Promise<BotSessionRow[]>;
}

function statements(ks: string) {
  assertKeyspaceName(ks);
  return Object.freeze({
    loadReplyWait: `SELECT conv, agent, since FROM ${ks}.reply_waits WHERE tenant = ? AND conv = ?`,
    loadReplyWaits: `SELECT conv, agent, since FROM ${ks}.reply_waits WHERE tenant = ? LIMIT ?`,
    saveReplyWait: `INSERT INTO ${ks}.reply_waits (tenant, conv, agent, since) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    removeReplyWait: `DELETE FROM ${ks}.reply_waits USING TIMESTAMP ? WHERE tenant = ? AND conv = ?`,
    saveLeft: `INSERT INTO ${ks}.left_messages (tenant, id, conv, visitor, name, email, body, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    removeLeft: `DELETE FROM ${ks}.left_messages WHERE tenant = ? AND id = ?`,
    loadLeft: `SELECT id, conv, visitor, name, email, body, ts FROM ${ks}.left_messages WHERE tenant = ? LIMIT ?`,
    saveBot: `INSERT INTO ${ks}.bot_sessions (tenant, conv, visitor, since, state, summary, handed_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    removeBot: `DELETE FROM ${ks}.bot_sessions WHERE tenant = ? AND conv = ?`,
    loadBots: `SELECT conv, visitor, since, state, summary, handed_by FROM ${ks}.bot_sessions WHERE tenant = ? LIMIT ?`,
  });
}

const micros = (ms: number) => cassandra.types.Long.fromNumber(ms * 1000);

function toWait(r: cassandra.types.Row): ReplyWaitRow {
  return { conv: r.get('conv'), agent: r.get('agent'), since: toMs(r.get('since')) };
}

/** ReceptionStore on the history keyspace; built by CassandraHistoryStore.receptionStore(). */
export class CassandraReceptionStore
  extends TableStore<ReturnType<typeof statements>>
  implements ReceptionStore
{
  constructor(client: CqlClient, keyspace: string, consistency: number) {
    super(client, keyspace, consistency, statements);
  }

  async loadReplyWait(tenant: string, conv: string): Promise<ReplyWaitRow | null> {
    const r = (await this.run(this.cql.loadReplyWait, [tenant, conv])).rows[0];
    return r ? toWait(r) : null;
  }

  async loadReplyWaits(tenant: string, limit: number): Promise<ReplyWaitRow[]> {
    return (await this.run(this.cql.loadReplyWaits, [tenant, limit])).rows.map(toWait);
  }

  async saveReplyWait(tenant: string, row: ReplyWaitRow, writeTimeMs: number): Promise<void> {
    await this.run(this.cql.saveReplyWait, [
      tenant,
      row.conv,
      row.agent,
      new Date(row.since),
      micros(writeTimeMs),
    ]);
  }

  async removeReplyWait(tenant: string, conv: string, writeTimeMs: number): Promise<void> {
    await this.run(this.cql.removeReplyWait, [micros(writeTimeMs), tenant, conv]);
  }

  async saveLeftMessage(tenant: string, m: LeftMessageRow): Promise<void> {
    await this.run(this.cql.saveLeft, [
      tenant,
      m.id,
      m.conv,
      m.visitor,
      m.name,
      m.email,
      m.body,
      new Date(m.ts),
    ]);
  }

  async removeLeftMessage(tenant: string, id: string): Promise<void> {
    await this.run(this.cql.removeLeft, [tenant, id]);
  }

  async loadLeftMessages(tenant: string, limit: number): Promise<LeftMessageRow[]> {
    return (await this.run(this.cql.loadLeft, [tenant, limit])).rows.map((r) => ({
      id: r.get('id'),
      conv: r.get('conv'),
      visitor: r.get('visitor'),
      name: r.get('name') ?? null,
      email: r.get('email') ?? null,
      body: r.get('body'),
      ts: toMs(r.get('ts')),
    }));
  }

  async saveBotSession(tenant: string, b: BotSessionRow): Promise<void> {
    await this.run(this.cql.saveBot, [
      tenant,
      b.conv,
      b.visitor,
      new Date(b.since),
      b.state,
      b.summary,
      b.handedBy,
    ]);
  }

  async removeBotSession(tenant: string, conv: string): Promise<void> {
    await this.run(this.cql.removeBot, [tenant, conv]);
  }

  async loadBotSessions(tenant: string, limit: number): Promise<BotSessionRow[]> {
    return (await this.run(this.cql.loadBots, [tenant, limit])).rows.map((r) => ({
      conv: r.get('conv'),
      visitor: r.get('visitor'),
      since: toMs(r.get('since')),
      state: r.get('state') === 'handed' ? 'handed' : 'bot',
      summary: r.get('summary') ?? null,
      handedBy: r.get('handed_by') ?? null,
    }));
  }
}
