/**
 * The conversation actor: a pure behaviour over its state, with every effect (store, publish,
 * clock, ids) going through `ctx`. One instance per conversation in the cluster, driven one
 * message at a time by its cell (src/routing/actor-cell.ts).
 *
 * Guarantees it implements (DESIGN.md): the sender is acked only after the row is durable; seq is
 * gap-free (a failed write consumes no seq); a repeated cmid returns the original ack.
 */
import type { Clock } from '../src/clock.js';
import { SwitchboardError } from '../src/protocol/errors.js';
import type {
  ConversationRecord,
  ConversationSnapshot,
  HistoryStore,
  MessageRow,
  RecentAck,
} from '../src/store/types.js';

export type ParticipantRole = 'visitor' | 'agent';

export interface SendMessage {
  type: 'send';
  sender: string;
  role: ParticipantRole;
  cmid: string;
  body: string;
  /** The content policy flagged the text for review: stored and shown to the agent with the message. */
  review?: boolean;
}

export type ConversationMessage = SendMessage;

export interface Ack {
  cmid: string;
  conv: string;
  seq: number;
  id: string;
  ts: number;
}

/** Who hears about a new message: the participants' user subjects, or the tenant's agent lobby. */
export type Recipient = { kind: 'user'; user: string } | { kind: 'lobby' };

export interface ConversationContext {
  /**
   * `lookupCmid` finds a cmid older than the in-memory recent window (the cmids table); without it
   * only the recent window de-duplicates.
   */
  store: Pick<HistoryStore, 'append' | 'saveConversation'> & Partial<Pick<HistoryStore, 'lookupCmid'>>;
  clock: Clock;
  /**
   * The ownership check before and after every write: returns the time to write at (epoch ms)
   * while this node certainly owns the conversation's shard, throws `unavailable` otherwise.
   */
  fence(): number;
  newId(): string;
  /** Fans a stored message out to recipients (fire and forget; delivery gaps are healed by sync). */
  deliver(row: MessageRow, recipients: readonly Recipient[]): void;
}

export interface ConversationState {
  readonly tenant: string;
  readonly conv: string;
  record: ConversationRecord | null;
  lastSeq: number;
  /** recentKey(sender, cmid) -> ack for the last `recentLimit` messages, oldest first (Map keeps insertion order). */
  readonly recent: Map<string, RecentAck>;
  readonly recentLimit: number;
}

/** cmids are unique per sender: two participants may both use "m1". */
export function recentKey(sender: string, cmid: string): string {
  return `${sender}\u0000${cmid}`;
}

export function initialState(
  tenant: string,
  conv: string,
  snapshot: ConversationSnapshot,
  recentLimit: number,
): ConversationState {
  const recent = new Map<string, RecentAck>();
  for (const r of snapshot.recent.slice(-recentLimit)) recent.set(recentKey(r.sender, r.cmid), r);
  return { tenant, conv, record: snapshot.record, lastSeq: snapshot.lastSeq, recent, recentLimit };
}

/** Participants check; may claim an unassigned conversation for the agent. Returns the new record. */
function admit(state: ConversationState, msg: SendMessage, now: number): ConversationRecord {
  const rec = state.record;
  if (rec === null) {
    if (msg.role !== 'visitor') throw new SwitchboardError('not_found', `no conversation '${state.conv}'`);
    return { tenant: state.tenant, conv: state.conv, visitor: msg.sender, agent: null, createdAt: now };
  }
  if (msg.role === 'visitor') {
    if (rec.visitor !== msg.sender)
      throw new SwitchboardError('forbidden', 'not a participant of this conversation');
    return rec;
  }
  if (rec.agent === null) return { ...rec, agent: msg.sender };
  if (rec.agent !== msg.sender)
    throw new SwitchboardError('forbidden', 'conversation is assigned to another agent');
  return rec;
}

export function recipientsOf(record: ConversationRecord): Recipient[] {
  const out: Recipient[] = [{ kind: 'user', user: record.visitor }];
  out.push(record.agent === null ? { kind: 'lobby' } : { kind: 'user', user: record.agent });
  return out;
}

/**
 * A retry older than the recent window: only possible once the conversation has more messages than the
 * window holds, so short conversations (most of them) never pay the read.
 */
async function lookupOlder(
  state: ConversationState,
  msg: SendMessage,
  ctx: ConversationContext,
): Promise<RecentAck | null> {
  if (ctx.store.lookupCmid === undefined || state.lastSeq <= state.recent.size) return null;
  return ctx.store.lookupCmid(state.tenant, state.conv, msg.sender, msg.cmid, state.lastSeq);
}

/**
 * Handles one message. Resolves with the reply (the ack); rejects with a SwitchboardError that
 * the cell turns into an error reply. State is only changed once the effects it records succeeded.
 */
export async function conversationBehaviour(
  state: ConversationState,
  msg: ConversationMessage,
  ctx: ConversationContext,
): Promise<Ack> {
  const now = ctx.fence();
  const record = admit(state, msg, now);
  const key = recentKey(msg.sender, msg.cmid);
  const seen = state.recent.get(key) ?? (await lookupOlder(state, msg, ctx));
  if (seen) return { cmid: msg.cmid, conv: state.conv, seq: seen.seq, id: seen.id, ts: seen.ts };

  if (record !== state.record) {
    await ctx.store.saveConversation(record, now);
    state.record = record;
  }
  const row: MessageRow = {
    tenant: state.tenant,
    conv: state.conv,
    seq: state.lastSeq + 1,
    id: ctx.newId(),
    sender: msg.sender,
    senderRole: msg.role,
    cmid: msg.cmid,
    body: msg.body,
    ts: now,
  };
  if (msg.review === true) row.review = true;
  await ctx.store.append(row);
  // Ownership may have lapsed during the write (a pause, a partition): then no ack. The row may
  // be stored; a retry with the same cmid finds it, or the new owner's newer write replaces it.
  ctx.fence();
  state.lastSeq = row.seq;
  state.recent.set(key, { cmid: row.cmid, sender: row.sender, seq: row.seq, id: row.id, ts: row.ts });
  if (state.recent.size > state.recentLimit) {
    const oldest = state.recent.keys().next().value;
    if (oldest !== undefined) state.recent.delete(oldest);
  }
  ctx.deliver(row, recipientsOf(record));
  return { cmid: row.cmid, conv: row.conv, seq: row.seq, id: row.id, ts: row.ts };
}
