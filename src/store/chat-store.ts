/**
 * The tables behind conversation lifecycle and assignment (schema version 2): a conversation's status,
 * read receipts, each user's open conversations, the tenant's agents and waiting list. Prepared
 * statements only; every list read is bounded by a LIMIT its caller passes (from configuration).
 */

import cassandra from 'cassandra-driver';
import type { CqlClient } from './request-gate.js';
import { assertKeyspaceName, toMs, toSeq } from './schema.js';
import { TableStore } from './table-store.js';

export type ConversationStatus = 'queued' | 'assigned' | 'closed';
export type AgentStatus = 'online' | 'away' | 'offline';

/** The lifecycle columns of a conversation (the participants are ConversationRecord). */
export interface ConversationMeta {
  status: ConversationStatus;
  skill: string | null;
  subject: string | null;
  closedAt: number | null;
  closedBy: string | null;
  rating: number | null;
  /** The conversation's labels (label -> when set, epoch ms); written by the desk store, read here. */
  labels?: Record<string, number>;
}

export interface OpenConversation {
  conv: string;
  role: 'visitor' | 'agent';
  since: number;
}

export interface AgentProfile {
  agent: string;
  status: AgentStatus;
  capacity: number;
  skills: string[];
  updatedAt: number;
}

export interface QueueEntryRow {
  conv: string;
  visitor: string;
  skill: string | null;
  enqueuedAt: number;
}

export interface ChatStore {
  loadMeta(tenant: string, conv: string): Promise<ConversationMeta | null>;
  /** Written at `writeTimeMs` (the owner's fence time), like the conversation record. */
  saveMeta(tenant: string, conv: string, meta: ConversationMeta, writeTimeMs: number): Promise<void>;
  /** user -> highest read seq. */
  loadReceipts(tenant: string, conv: string): Promise<Map<string, number>>;
  saveReceipt(tenant: string, conv: string, user: string, seq: number, ts: number): Promise<void>;
  addOpen(tenant: string, user: string, open: OpenConversation): Promise<void>;
  removeOpen(tenant: string, user: string, conv: string): Promise<void>;
  /** At most `limit` open conversations of `user`. */
  listOpen(tenant: string, user: string, limit: number): Promise<OpenConversation[]>;
  saveAgent(tenant: string, profile: AgentProfile): Promise<void>;
  loadAgent(tenant: string, agent: string): Promise<AgentProfile | null>;
  loadAgents(tenant: string, limit: number): Promise<AgentProfile[]>;
  saveQueueEntry(tenant: string, entry: QueueEntryRow): Promise<void>;
  removeQueueEntry(tenant: string, conv: string): Promise<void>;
  /** At most `limit` entries, oldest first. */
  loadQueue(tenant: string, limit: number): Promise<QueueEntryRow[]>;
}

function statements(ks: string) {
  assertKeyspaceName(ks);
  return Object.freeze({
    loadMeta: `SELECT visitor, agent, status, skill, subject, closed_at, closed_by, rating, labels FROM ${ks}.conversations WHERE tenant = ? AND conv = ?`,
    saveMeta: `UPDATE ${ks}.conversations USING TIMESTAMP ? SET status = ?, skill = ?, subject = ?, closed_at = ?, closed_by = ?, rating = ? WHERE tenant = ? AND conv = ?`,
    loadReceipts: `SELECT user, seq FROM ${ks}.read_receipts WHERE tenant = ? AND conv = ? LIMIT 16`,
    saveReceipt: `INSERT INTO ${ks}.read_receipts (tenant, conv, user, seq, ts) VALUES (?, ?, ?, ?, ?)`,
    addOpen: `INSERT INTO ${ks}.open_conversations (tenant, user, conv, role, since) VALUES (?, ?, ?, ?, ?)`,
    removeOpen: `DELETE FROM ${ks}.open_conversations WHERE tenant = ? AND user = ? AND conv = ?`,
    listOpen: `SELECT conv, role, since FROM ${ks}.open_conversations WHERE tenant = ? AND user = ? LIMIT ?`,
    saveAgent: `INSERT INTO ${ks}.agents (tenant, agent, status, capacity, skills, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
    loadAgent: `SELECT agent, status, capacity, skills, updated_at FROM ${ks}.agents WHERE tenant = ? AND agent = ?`,
    loadAgents: `SELECT agent, status, capacity, skills, updated_at FROM ${ks}.agents WHERE tenant = ? LIMIT ?`,
    saveQueueEntry: `INSERT INTO ${ks}.queue_entries (tenant, conv, visitor, skill, enqueued_at) VALUES (?, ?, ?, ?, ?)`,
    removeQueueEntry: `DELETE FROM ${ks}.queue_entries WHERE tenant = ? AND conv = ?`,
    loadQueue: `SELECT conv, visitor, skill, enqueued_at FROM ${ks}.queue_entries WHERE tenant = ? LIMIT ?`,
  });
}

function labelsOf(map: Record<string, Date> | null): { labels?: Record<string, number> } {
  if (map === null || map === undefined) return {};
  const labels: Record<string, number> = {};
  for (const [k, v] of Object.entries(map)) labels[k] = toMs(v);
  return { labels };
}

function toProfile(r: cassandra.types.Row): AgentProfile {
  const skills: string[] | null = r.get('skills');
  return {
    agent: r.get('agent'),
    status: (r.get('status') ?? 'offline') as AgentStatus,
    capacity: r.get('capacity') ?? 0,
    skills: skills ? [...skills].sort() : [],
    updatedAt: toMs(r.get('updated_at')),
  };
}

/** ChatStore on the history keyspace; built by CassandraHistoryStore.chatStore(). */
export class CassandraChatStore extends TableStore<ReturnType<typeof statements>> implements ChatStore {
  constructor(client: CqlClient, keyspace: string, consistency: number) {
    super(client, keyspace, consistency, statements);
  }

  async loadMeta(tenant: string, conv: string): Promise<ConversationMeta | null> {
    const r = (await this.run(this.cql.loadMeta, [tenant, conv])).rows[0];
    if (!r || r.get('visitor') === null) return null;
    const closedAt: Date | null = r.get('closed_at');
    // Rows written before schema v2 have no status: open, assigned when they have an agent.
    const status = (r.get('status') ?? (r.get('agent') ? 'assigned' : 'queued')) as ConversationStatus;
    return {
      status,
      skill: r.get('skill') ?? null,
      subject: r.get('subject') ?? null,
      closedAt: closedAt === null ? null : toMs(closedAt),
      closedBy: r.get('closed_by') ?? null,
      rating: r.get('rating') ?? null,
      ...labelsOf(r.get('labels')),
    };
  }

  async saveMeta(tenant: string, conv: string, m: ConversationMeta, writeTimeMs: number): Promise<void> {
    await this.run(this.cql.saveMeta, [
      cassandra.types.Long.fromNumber(writeTimeMs * 1000),
      m.status,
      m.skill,
      m.subject,
      m.closedAt === null ? null : new Date(m.closedAt),
      m.closedBy,
      m.rating,
      tenant,
      conv,
    ]);
  }

  async loadReceipts(tenant: string, conv: string): Promise<Map<string, number>> {
    const rows = (await this.run(this.cql.loadReceipts, [tenant, conv])).rows;
    return new Map(rows.map((r) => [r.get('user') as string, toSeq(r.get('seq'))]));
  }

  async saveReceipt(tenant: string, conv: string, user: string, seq: number, ts: number): Promise<void> {
    await this.run(this.cql.saveReceipt, [
      tenant,
      conv,
      user,
      cassandra.types.Long.fromNumber(seq),
      new Date(ts),
    ]);
  }

  async addOpen(tenant: string, user: string, open: OpenConversation): Promise<void> {
    await this.run(this.cql.addOpen, [tenant, user, open.conv, open.role, new Date(open.since)]);
  }

  async removeOpen(tenant: string, user: string, conv: string): Promise<void> {
    await this.run(this.cql.removeOpen, [tenant, user, conv]);
  }

  async listOpen(tenant: string, user: string, limit: number): Promise<OpenConversation[]> {
    const rows = (await this.run(this.cql.listOpen, [tenant, user, limit])).rows;
    return rows.map((r) => ({
      conv: r.get('conv'),
      role: r.get('role') as 'visitor' | 'agent',
      since: toMs(r.get('since')),
    }));
  }

  async saveAgent(tenant: string, p: AgentProfile): Promise<void> {
    await this.run(this.cql.saveAgent, [
      tenant,
      p.agent,
      p.status,
      p.capacity,
      p.skills,
      new Date(p.updatedAt),
    ]);
  }

  async loadAgent(tenant: string, agent: string): Promise<AgentProfile | null> {
    const r = (await this.run(this.cql.loadAgent, [tenant, agent])).rows[0];
    return r ? toProfile(r) : null;
  }

  async loadAgents(tenant: string, limit: number): Promise<AgentProfile[]> {
    return (await this.run(this.cql.loadAgents, [tenant, limit])).rows.map(toProfile);
  }

  async saveQueueEntry(tenant: string, e: QueueEntryRow): Promise<void> {
    await this.run(this.cql.saveQueueEntry, [tenant, e.conv, e.visitor, e.skill, new Date(e.enqueuedAt)]);
  }

  async removeQueueEntry(tenant: string, conv: string): Promise<void> {
    await this.run(this.cql.removeQueueEntry, [tenant, conv]);
  }

  async loadQueue(tenant: string, limit: number): Promise<QueueEntryRow[]> {
    const rows = (await this.run(this.cql.loadQueue, [tenant, limit])).rows;
    return rows
      .map((r) => ({
        conv: r.get('conv') as string,
        visitor: r.get('visitor') as string,
        skill: (r.get('skill') ?? null) as string | null,
        enqueuedAt: toMs(r.get('enqueued_at')),
      }))
      .sort((a, b) => a.enqueuedAt - b.enqueuedAt || (a.conv < b.conv ? -1 : 1));
  }
}
