/**
 * The conversation actor: a pure behaviour over its state, with every effect (store, publish,
 * clock, ids) going through `ctx`. One instance per conversation in the cluster, driven one
 * message at a time by its cell (src/routing/actor-cell.ts).
 *
 * Guarantees it implements (DESIGN.md): the sender is acked only after the row is durable; seq is
 * gap-free (a failed write consumes no seq); a repeated cmid returns the original ack. Lifecycle:
 * a conversation is `queued` (waiting for an agent), `assigned` (to exactly one agent) or
 * `closed`. Only the tenant queue actor assigns and unassigns (actors/queue.ts); this actor never
 * waits for another actor, so actor requests cannot form a cycle (agent -> queue -> conversation).
 */
import type { Clock } from '../src/clock.js';
import type { OutEvent } from '../src/integration/events.js';
import { OutcomeUnknownError, SwitchboardError } from '../src/protocol/errors.js';
import { type EncodedBody, isEncodedBody, setEncodedBody } from '../src/store/body-codec.js';
import type { ChatStore, ConversationMeta, ConversationStatus } from '../src/store/chat-store.js';
import type { DeskStore } from '../src/store/desk-store.js';
import type {
  Card,
  ChangeEffects,
  ConversationRecord,
  ConversationSnapshot,
  HistoryStore,
  MessageRow,
} from '../src/store/types.js';
import { DedupeWindow } from './dedupe-window.js';
import { type DeskMessage, deskBehaviour } from './desk.js';
import {
  checkNoReply,
  type ReplyWait,
  type ReplyWaitContext,
  replyWaitOnAssigned,
  replyWaitOnCommitted,
  replyWaitOnReleased,
} from './reception/reply-wait.js';

export type ParticipantRole = 'visitor' | 'agent';

/** Who does something to a conversation from outside the chat (HTTP API, integrations). */
export type ActorRef = { user: string; role: 'visitor' | 'agent' | 'system' | 'admin' };

export interface SendMessage {
  type: 'send';
  sender: string;
  role: ParticipantRole;
  cmid: string;
  body: string;
  /** The content policy flagged the text for review: stored and shown to the agent with the message. */
  review?: boolean;
  /** The body with PII masked, as agents see it (computed by the gateway on the pool; not stored). */
  agentBody?: string;
  /** The body encoded for storage by the gateway, in its screen task (src/store/body-codec.ts). */
  stored?: EncodedBody;
}

/** A system or bot message (business systems, bots): any open conversation, no participant check. */
export interface PostMessage {
  type: 'post';
  sender: string;
  role: 'system' | 'bot';
  cmid: string;
  body: string;
  card?: Card;
}

/** Creates the conversation (queued) unless it exists; reply CreateReply. */
export interface CreateMessage {
  type: 'create';
  visitor: string;
  skill: string | null;
  subject: string | null;
}

/**
 * From the queue actor: give the conversation to `agent`. `from` is the agent the queue believes
 * holds it (null while queued); when that is no longer true the assignment is refused (`conflict`),
 * so a late or repeated assign never steals a conversation. Reply: ConversationView.
 */
export interface AssignMessage {
  type: 'assign';
  agent: string;
  from: string | null;
  by: ActorRef;
}

/** From the queue actor: take it from `from` and put it back in the queue (agent lost, transfer to a skill). */
export interface UnassignMessage {
  type: 'unassign';
  from: string;
  skill: string | null;
  by: ActorRef;
  reason: 'agent_lost' | 'transfer' | 'no_reply';
  /** With `no_reply`: the `since` of the wait that ran out (actors/reception/reply-wait.ts). */
  since?: number;
}

export interface CloseMessage {
  type: 'close';
  by: ActorRef;
  reason: string | null;
}

export interface ReadMessage {
  type: 'read';
  user: string;
  role: ParticipantRole;
  seq: number;
}

export interface TypingMessage {
  type: 'typing';
  user: string;
  role: ParticipantRole;
}

export interface RateMessage {
  type: 'rate';
  visitor: string;
  score: number;
  comment: string | null;
}

/** Reads the view; with `as`, only when that user may see the conversation (else forbidden). */
export interface ViewMessage {
  type: 'view';
  as?: { user: string; role: ParticipantRole };
}

export type ConversationMessage =
  | SendMessage
  | PostMessage
  | CreateMessage
  | AssignMessage
  | UnassignMessage
  | CloseMessage
  | ReadMessage
  | TypingMessage
  | RateMessage
  | ViewMessage
  | DeskMessage;

export interface Ack {
  cmid: string;
  conv: string;
  seq: number;
  id: string;
  ts: number;
  /** True when this send created the conversation (the caller then queues it). */
  created?: boolean;
  /**
   * True when the conversation waits for an agent after this send (also on a repeated cmid): the
   * caller makes sure it is in the queue (enqueue is idempotent), which heals a creation whose
   * first enqueue failed.
   */
  queued?: boolean;
}

/** What everybody outside the actor sees of a conversation. */
export interface ConversationView {
  tenant: string;
  conv: string;
  visitor: string;
  agent: string | null;
  status: ConversationStatus;
  skill: string | null;
  subject: string | null;
  createdAt: number;
  closedAt: number | null;
  closedBy: string | null;
  rating: number | null;
  lastSeq: number;
  /** user -> highest seq that user has read. */
  read: Record<string, number>;
}

export interface CreateReply {
  view: ConversationView;
  created: boolean;
}

export interface ConversationContext {
  /**
   * `lookupCmid` finds a cmid older than the in-memory recent window (the cmids table); without it
   * only the recent window de-duplicates.
   */
  store: Pick<HistoryStore, 'append' | 'saveConversation'> & Partial<Pick<HistoryStore, 'lookupCmid'>>;
  chat: Pick<ChatStore, 'saveMeta' | 'saveReceipt' | 'addOpen' | 'removeOpen'>;
  clock: Clock;
  /**
   * The ownership check before and after every write: returns the time to write at (epoch ms)
   * while this node certainly owns the conversation's shard, throws `unavailable` otherwise.
   */
  fence(): number;
  newId(): string;
  /** Fans a stored message out to users (fire and forget; delivery gaps are healed by sync). */
  deliver(row: MessageRow, users: readonly string[], visitor?: string): void;
  /** Pushes a server frame (assigned, closed, read, typing...) to users' sockets; fire and forget. */
  notify(tenant: string, users: readonly string[], frame: Record<string, unknown>): void;
  /**
   * Publishes a conversation event for business systems (sb.out.<tenant>.<type>). `bodyMasked`: a
   * message event's body is already the agents' view (PII masked), so it is not masked again.
   */
  emit(event: OutEvent, bodyMasked?: boolean): void;
  /** The labels table (issue #17); absent: `label` is answered `unavailable`. */
  desk?: Pick<DeskStore, 'saveLabels'>;
  /**
   * Reads one stored message in its current state: recall and edit find their target with it, and the
   * de-duplication window confirms its candidates with it.
   */
  readMessage: Pick<HistoryStore, 'message'>['message'];
  /**
   * The newest stored rows with seq > `after` (at most `limit`, oldest first) that the owner holds in
   * memory, each with the agents' view it was written with; [] when it holds none. Absent: nothing is
   * pushed on assign (the agent syncs from the `assigned` frame's lastSeq).
   */
  recentRows?(tenant: string, conv: string, after: number, limit: number): MessageRow[];
  /** No-reply reassignment (actors/reception/reply-wait.ts); absent: off. */
  replyWait?: ReplyWaitContext;
}

export interface ConversationState {
  readonly tenant: string;
  readonly conv: string;
  record: ConversationRecord | null;
  meta: ConversationMeta | null;
  lastSeq: number;
  /**
   * The de-duplication window: the last `recentLimit` messages' (sender, cmid). Those loaded at
   * activation are marked inherited: another owner (or an earlier activation) wrote them, and whether
   * they were fanned out is unknown (a write whose owner lost the shard before its fence was stored
   * but never pushed). The first repeat of one pushes it (once).
   */
  readonly recent: DedupeWindow;
  readonly recentLimit: number;
  readonly receipts: Map<string, number>;
  /**
   * How many of the newest messages a newly assigned agent is pushed. They are read from the history
   * cache (ctx.recentRows), not kept here: a copy of each conversation's newest rows in its actor held
   * ~25 MB more of a loaded worker's live heap at 2 000 conversations and a fifth of what it promoted to
   * the old generation (issue #13/#14: major GCs, memory under load).
   */
  readonly pushLimit: number;
  /** lastSeq when the actor was activated: only rows it committed itself are pushed on assign. */
  readonly activatedSeq: number;
  /**
   * A row whose write's outcome is unknown (timed out, connection lost): its seq (lastSeq + 1) stays
   * reserved for it, and nothing else is handled until a repeat of the very same write succeeds
   * (`settle`). It may have landed, or land minutes later; giving its seq to another message would let
   * the late write and a cmids row contradict what that message's sender was told (issue #12).
   */
  unsettled: MessageRow | null;
  /** Whether the visitor waits for an answer (actors/reception/reply-wait.ts); undefined: unknown. */
  replyWait?: ReplyWait | null;
}

export function initialState(
  tenant: string,
  conv: string,
  snapshot: ConversationSnapshot,
  recentLimit: number,
  meta: ConversationMeta | null = null,
  receipts: Map<string, number> = new Map(),
  pushLimit = 0,
): ConversationState {
  const recent = new DedupeWindow(recentLimit);
  for (const r of snapshot.recent.slice(-recentLimit)) recent.add(r.seq, r.sender, r.cmid, true);
  const m =
    meta ??
    (snapshot.record
      ? {
          status: snapshot.record.agent ? ('assigned' as const) : ('queued' as const),
          skill: null,
          subject: null,
          closedAt: null,
          closedBy: null,
          rating: null,
        }
      : null);
  return {
    tenant,
    conv,
    record: snapshot.record,
    meta: m,
    lastSeq: snapshot.lastSeq,
    recent,
    recentLimit,
    receipts,
    pushLimit,
    activatedSeq: snapshot.lastSeq,
    unsettled: null,
  };
}

export function viewOf(state: ConversationState): ConversationView | null {
  const r = state.record;
  const m = state.meta;
  if (!r || !m) return null;
  return {
    tenant: state.tenant,
    conv: state.conv,
    visitor: r.visitor,
    agent: r.agent,
    status: m.status,
    skill: m.skill,
    subject: m.subject,
    createdAt: r.createdAt,
    closedAt: m.closedAt,
    closedBy: m.closedBy,
    rating: m.rating,
    lastSeq: state.lastSeq,
    read: Object.fromEntries(state.receipts),
  };
}

/** The users who hear about the conversation: its visitor and its agent (if any). */
export function participantsOf(record: ConversationRecord): string[] {
  return record.agent === null ? [record.visitor] : [record.visitor, record.agent];
}

function notFound(conv: string): SwitchboardError {
  return new SwitchboardError('not_found', `no conversation '${conv}'`);
}

/** The existing record and meta, or not_found. */
export function existing(state: ConversationState): { record: ConversationRecord; meta: ConversationMeta } {
  if (!state.record || !state.meta) throw notFound(state.conv);
  return { record: state.record, meta: state.meta };
}

export function requireOpen(state: ConversationState, meta: ConversationMeta): void {
  if (meta.status === 'closed')
    throw new SwitchboardError('conversation_closed', `conversation '${state.conv}' is closed`);
}

/** May `user` in `role` take part (read, write, receipts, typing)? Throws forbidden / not_found. */
export function checkParticipant(
  state: ConversationState,
  user: string,
  role: ParticipantRole,
): ConversationRecord {
  const { record } = existing(state);
  const ok = role === 'visitor' ? record.visitor === user : record.agent === user;
  if (!ok)
    throw new SwitchboardError(
      'forbidden',
      role === 'visitor' ? 'not a participant of this conversation' : 'conversation is not assigned to you',
    );
  return record;
}

export function event(
  ctx: ConversationContext,
  state: ConversationState,
  type: OutEvent['type'],
  ts: number,
  extra: Record<string, unknown>,
  bodyMasked = false,
): void {
  // Every out event names the conversation's labels, when it has any (issue #17).
  const labels = state.meta?.labels ? Object.keys(state.meta.labels).sort() : [];
  ctx.emit(
    {
      id: ctx.newId(),
      type,
      tenant: state.tenant,
      conv: state.conv,
      ts,
      ...(labels.length > 0 ? { labels } : {}),
      ...extra,
    } as OutEvent,
    bodyMasked,
  );
}

async function saveMeta(state: ConversationState, meta: ConversationMeta, ctx: ConversationContext) {
  const now = ctx.fence();
  await ctx.chat.saveMeta(state.tenant, state.conv, meta, now);
  ctx.fence();
  state.meta = meta;
  return now;
}

/** Creates record + meta + the visitor's open entry; resolves with the creation time. */
async function create(
  state: ConversationState,
  visitor: string,
  skill: string | null,
  subject: string | null,
  ctx: ConversationContext,
): Promise<number> {
  const now = ctx.fence();
  const record: ConversationRecord = {
    tenant: state.tenant,
    conv: state.conv,
    visitor,
    agent: null,
    createdAt: now,
  };
  const meta: ConversationMeta = {
    status: 'queued',
    skill,
    subject,
    closedAt: null,
    closedBy: null,
    rating: null,
  };
  await ctx.store.saveConversation(record, now);
  await ctx.chat.saveMeta(state.tenant, state.conv, meta, now);
  await ctx.chat.addOpen(state.tenant, visitor, { conv: state.conv, role: 'visitor', since: now });
  ctx.fence();
  state.record = record;
  state.meta = meta;
  event(ctx, state, 'created', now, { visitor, skill, subject });
  return now;
}

/** Appends one row (seq = lastSeq + 1), acks only once durable and still owner, then fans out. */
export async function append(
  state: ConversationState,
  msg: {
    sender: string;
    role: MessageRow['senderRole'];
    cmid: string;
    body: string;
    card?: Card;
    review?: boolean;
    agentBody?: string;
    stored?: EncodedBody;
    internal?: boolean;
    change?: 'recall' | 'edit';
    target?: number;
    effects?: ChangeEffects;
  },
  ctx: ConversationContext,
): Promise<Ack> {
  const now = ctx.fence();
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
  if (msg.card !== undefined) row.card = msg.card;
  if (msg.review === true) row.review = true;
  if (msg.agentBody !== undefined) row.agentBody = msg.agentBody;
  // A copy: bytes decoded from another member's message are a view of its whole NATS read buffer.
  if (isEncodedBody(msg.stored)) setEncodedBody(row, { enc: msg.stored.enc, data: msg.stored.data.slice() });
  if (msg.internal === true) row.internal = true;
  if (msg.change !== undefined) {
    row.change = msg.change;
    row.target = msg.target as number;
  }
  if (msg.effects !== undefined) row.effects = msg.effects;
  try {
    await ctx.store.append(row);
  } catch (err) {
    // Unknown outcome: the seq stays this row's until a repeat of the same write succeeds.
    if (err instanceof OutcomeUnknownError) state.unsettled = row;
    throw err;
  }
  // Ownership may have lapsed during the write (a pause, a partition): then no ack. The row may
  // be stored; a retry with the same cmid finds it, or the new owner's seal shadows it.
  ctx.fence();
  committed(state, row, ctx);
  return { cmid: row.cmid, conv: row.conv, seq: row.seq, id: row.id, ts: row.ts };
}

/**
 * Writes the unsettled row again, exactly as before (same seq, id, cmid, body, write timestamp), so
 * that whichever attempt lands, the same cells are stored. Once one succeeds the row is durable and
 * counts as written: lastSeq moves past it and it is fanned out; a retry of its cmid then gets its
 * original ack. Until then every message to this conversation is answered `unavailable`.
 */
export async function settle(state: ConversationState, ctx: ConversationContext): Promise<void> {
  const row = state.unsettled;
  if (row === null) return;
  ctx.fence();
  await ctx.store.append(row);
  ctx.fence();
  state.unsettled = null;
  committed(state, row, ctx);
}

/** A durable row becomes the conversation's newest: seq, de-duplication window, cache, fan-out, event. */
function committed(state: ConversationState, row: MessageRow, ctx: ConversationContext): void {
  state.lastSeq = row.seq;
  state.recent.add(row.seq, row.sender, row.cmid);
  fanOut(state, row, ctx);
}

/** What a durable row causes outside the actor: pushes to the participants, reply wait, out event. */
function fanOut(state: ConversationState, row: MessageRow, ctx: ConversationContext): void {
  // The visitor is named so it gets the body as written; every other user gets the agents' view.
  // A note (and a change of a note) goes to the agent only: never to the visitor (issue #17).
  if (state.record && row.internal === true) {
    if (state.record.agent !== null) ctx.deliver(row, [state.record.agent]);
    // The visitor learns only that this seq is not for it, so its seq stays gap-free.
    ctx.notify(state.tenant, [state.record.visitor], { type: 'skip', conv: state.conv, seq: row.seq });
  } else if (state.record) ctx.deliver(row, participantsOf(state.record), state.record.visitor);
  replyWaitOnCommitted(state, row, state.record?.agent ?? null, ctx.replyWait);
  // Business systems see what agents see: the masked view computed at send, when there is one.
  event(
    ctx,
    state,
    'message',
    row.ts,
    {
      // The message's id: a second event of the same message (fanOut again after a handover) is
      // stored once by sb_out's duplicate window (Nats-Msg-Id).
      id: row.id,
      seq: row.seq,
      msgId: row.id,
      from: row.sender,
      role: row.senderRole,
      body: row.agentBody ?? row.body,
      ...(row.card ? { card: row.card } : {}),
      ...(row.internal === true ? { internal: true } : {}),
      ...(row.change !== undefined ? { change: row.change, target: row.target } : {}),
    },
    row.agentBody !== undefined,
  );
}

/**
 * The original ack of (sender, cmid), or undefined when it is not a repeat; a repeat of an inherited
 * message is fanned out first (`repeated`). Used by every kind of message that takes a cmid.
 */
export async function seen(
  state: ConversationState,
  sender: string,
  cmid: string,
  ctx: ConversationContext,
): Promise<Ack | undefined> {
  for (const seq of state.recent.candidates(sender, cmid)) {
    const row = await windowRow(state, seq, ctx);
    if (row === null || row.sender !== sender || row.cmid !== cmid) continue; // another message, same hash
    const ack = { cmid, conv: state.conv, seq: row.seq, id: row.id, ts: row.ts };
    // Inherited: its sender never learnt its outcome, and its writer may have lost the shard before
    // fanning it out. Fanned out now, once; if the first fan-out did happen (only its ack was lost),
    // recipients drop the second `msg` by its seq (docs/PROTOCOL.md).
    if (state.recent.takeInherited(seq)) {
      ctx.fence();
      fanOut(state, row, ctx);
    }
    return ack;
  }
  // A retry older than the window: only possible once the conversation has more messages than the
  // window holds, so short conversations never pay the read. From the store's cmids table.
  if (ctx.store.lookupCmid === undefined || state.lastSeq <= state.recent.limit) return undefined;
  const s = await ctx.store.lookupCmid(state.tenant, state.conv, sender, cmid, state.lastSeq);
  // A stored cmid past lastSeq is a write that failed here (never acked) but landed: not a duplicate.
  // Answering it would leave lastSeq behind, and the next message would overwrite that seq after it
  // was acked; instead the retry is written again at the same seq (later timestamp, replaces it).
  if (!s || s.seq > state.lastSeq) return undefined;
  return { cmid, conv: state.conv, seq: s.seq, id: s.id, ts: s.ts };
}

/**
 * The stored row at `seq`, a message of the window (the owner's history cache answers it when it holds
 * it, else Cassandra). A read that fails is `unavailable`: the repeat cannot be told from a new message,
 * so it waits for a retry.
 */
async function windowRow(
  state: ConversationState,
  seq: number,
  ctx: ConversationContext,
): Promise<MessageRow | null> {
  try {
    return await ctx.readMessage(state.tenant, state.conv, seq);
  } catch (err) {
    throw err instanceof SwitchboardError && err.code === 'unavailable'
      ? err
      : new SwitchboardError('unavailable', 'could not read a message of the de-duplication window', {
          retryAfterMs: 500,
          cause: err,
        });
  }
}

async function onSend(state: ConversationState, msg: SendMessage, ctx: ConversationContext): Promise<Ack> {
  ctx.fence();
  let created = false;
  if (state.record === null) {
    if (msg.role !== 'visitor') throw notFound(state.conv);
    await create(state, msg.sender, null, null, ctx);
    created = true;
  } else {
    checkParticipant(state, msg.sender, msg.role);
  }
  const queued = (a: Ack): Ack => (state.meta?.status === 'queued' ? { ...a, queued: true } : a);
  const dup = await seen(state, msg.sender, msg.cmid, ctx);
  if (dup) return queued(dup);
  requireOpen(state, existing(state).meta);
  const ack = await append(state, msg, ctx);
  return queued(created ? { ...ack, created } : ack);
}

async function onPost(state: ConversationState, msg: PostMessage, ctx: ConversationContext): Promise<Ack> {
  ctx.fence();
  const { meta } = existing(state);
  const dup = await seen(state, msg.sender, msg.cmid, ctx);
  if (dup) return dup;
  requireOpen(state, meta);
  return append(state, msg, ctx);
}

async function onCreate(state: ConversationState, msg: CreateMessage, ctx: ConversationContext) {
  ctx.fence();
  if (state.record) {
    if (state.record.visitor !== msg.visitor)
      throw new SwitchboardError('conflict', `conversation '${state.conv}' belongs to another visitor`);
    return { view: viewOf(state) as ConversationView, created: false } satisfies CreateReply;
  }
  await create(state, msg.visitor, msg.skill, msg.subject, ctx);
  return { view: viewOf(state) as ConversationView, created: true } satisfies CreateReply;
}

async function onAssign(state: ConversationState, msg: AssignMessage, ctx: ConversationContext) {
  ctx.fence();
  const { record, meta } = existing(state);
  requireOpen(state, meta);
  if (record.agent === msg.agent) return viewOf(state) as ConversationView;
  if (record.agent !== msg.from)
    throw new SwitchboardError('conflict', `conversation '${state.conv}' is no longer held by ${msg.from}`);
  const now = ctx.fence();
  const next: ConversationRecord = { ...record, agent: msg.agent };
  await ctx.store.saveConversation(next, now);
  await ctx.chat.saveMeta(state.tenant, state.conv, { ...meta, status: 'assigned' }, now);
  await ctx.chat.addOpen(state.tenant, msg.agent, { conv: state.conv, role: 'agent', since: now });
  if (record.agent !== null) await ctx.chat.removeOpen(state.tenant, record.agent, state.conv);
  ctx.fence();
  state.record = next;
  state.meta = { ...meta, status: 'assigned' };
  replyWaitOnAssigned(state, msg.agent, now, ctx.replyWait);
  const frame = {
    type: 'assigned',
    conv: state.conv,
    agent: msg.agent,
    visitor: record.visitor,
    skill: meta.skill,
    subject: meta.subject,
    lastSeq: state.lastSeq,
  };
  ctx.notify(state.tenant, [record.visitor, msg.agent], frame);
  // The new agent gets the newest messages it has not seen (all of them for a short chat) that this
  // actor committed (their agents' view is known); the `assigned` frame's lastSeq tells it whether to
  // sync for older ones.
  if (state.pushLimit > 0)
    for (const row of ctx.recentRows?.(state.tenant, state.conv, state.activatedSeq, state.pushLimit) ?? [])
      ctx.deliver(row, [msg.agent]);
  if (record.agent !== null) {
    ctx.notify(state.tenant, [record.agent], { type: 'unassigned', conv: state.conv, reason: 'transfer' });
    event(ctx, state, 'transferred', now, { from: record.agent, to: { agent: msg.agent }, by: msg.by });
  }
  event(ctx, state, 'assigned', now, { agent: msg.agent, by: msg.by });
  return viewOf(state) as ConversationView;
}

async function onUnassign(state: ConversationState, msg: UnassignMessage, ctx: ConversationContext) {
  ctx.fence();
  const { record, meta } = existing(state);
  requireOpen(state, meta);
  if (record.agent !== msg.from)
    throw new SwitchboardError('conflict', `conversation '${state.conv}' is not held by ${msg.from}`);
  if (msg.reason === 'no_reply') checkNoReply(state, msg.from, msg.since);
  const now = ctx.fence();
  const next: ConversationRecord = { ...record, agent: null };
  const nextMeta: ConversationMeta = { ...meta, status: 'queued', skill: msg.skill ?? meta.skill };
  await ctx.store.saveConversation(next, now);
  await ctx.chat.saveMeta(state.tenant, state.conv, nextMeta, now);
  await ctx.chat.removeOpen(state.tenant, msg.from, state.conv);
  ctx.fence();
  state.record = next;
  state.meta = nextMeta;
  replyWaitOnReleased(state, now, false, ctx.replyWait);
  ctx.notify(state.tenant, [msg.from], { type: 'unassigned', conv: state.conv, reason: msg.reason });
  if (msg.reason === 'transfer')
    event(ctx, state, 'transferred', now, { from: msg.from, to: { skill: nextMeta.skill }, by: msg.by });
  return viewOf(state) as ConversationView;
}

async function onClose(state: ConversationState, msg: CloseMessage, ctx: ConversationContext) {
  ctx.fence();
  const { record, meta } = existing(state);
  const by = msg.by;
  if (by.role === 'visitor' && by.user !== record.visitor)
    throw new SwitchboardError('forbidden', 'not a participant of this conversation');
  if (by.role === 'agent' && by.user !== record.agent)
    throw new SwitchboardError('forbidden', 'conversation is not assigned to you');
  if (meta.status === 'closed') return viewOf(state) as ConversationView; // idempotent
  const now = ctx.fence();
  const nextMeta: ConversationMeta = { ...meta, status: 'closed', closedAt: now, closedBy: by.user };
  await ctx.chat.saveMeta(state.tenant, state.conv, nextMeta, now);
  await ctx.chat.removeOpen(state.tenant, record.visitor, state.conv);
  if (record.agent !== null) await ctx.chat.removeOpen(state.tenant, record.agent, state.conv);
  ctx.fence();
  state.meta = nextMeta;
  replyWaitOnReleased(state, now, true, ctx.replyWait);
  ctx.notify(state.tenant, participantsOf(record), {
    type: 'closed',
    conv: state.conv,
    by: by.user,
    byRole: by.role,
    ...(msg.reason ? { reason: msg.reason } : {}),
  });
  event(ctx, state, 'closed', now, { by, reason: msg.reason, agent: record.agent, visitor: record.visitor });
  return viewOf(state) as ConversationView;
}

async function onRead(state: ConversationState, msg: ReadMessage, ctx: ConversationContext) {
  ctx.fence();
  const record = checkParticipant(state, msg.user, msg.role);
  if (!Number.isSafeInteger(msg.seq) || msg.seq < 1 || msg.seq > state.lastSeq)
    throw new SwitchboardError('invalid_field', `seq must be from 1 to ${state.lastSeq}`);
  const before = state.receipts.get(msg.user) ?? 0;
  if (msg.seq <= before) return { conv: state.conv, seq: before }; // receipts only move forward
  const now = ctx.fence();
  await ctx.chat.saveReceipt(state.tenant, state.conv, msg.user, msg.seq, now);
  ctx.fence();
  state.receipts.set(msg.user, msg.seq);
  const others = participantsOf(record).filter((u) => u !== msg.user);
  ctx.notify(state.tenant, others, { type: 'read', conv: state.conv, user: msg.user, seq: msg.seq });
  return { conv: state.conv, seq: msg.seq };
}

function onTyping(state: ConversationState, msg: TypingMessage, ctx: ConversationContext) {
  const record = checkParticipant(state, msg.user, msg.role);
  requireOpen(state, existing(state).meta);
  // Ephemeral: relayed, never stored.
  const others = participantsOf(record).filter((u) => u !== msg.user);
  ctx.notify(state.tenant, others, { type: 'typing', conv: state.conv, user: msg.user });
  return { conv: state.conv };
}

async function onRate(state: ConversationState, msg: RateMessage, ctx: ConversationContext) {
  ctx.fence();
  const { meta } = existing(state);
  checkParticipant(state, msg.visitor, 'visitor');
  if (!Number.isInteger(msg.score) || msg.score < 1 || msg.score > 5)
    throw new SwitchboardError('invalid_field', 'score must be an integer from 1 to 5');
  const now = await saveMeta(state, { ...meta, rating: msg.score }, ctx);
  event(ctx, state, 'rated', now, { visitor: msg.visitor, score: msg.score, comment: msg.comment });
  return viewOf(state) as ConversationView;
}

function onView(state: ConversationState, msg: ViewMessage): ConversationView | null {
  if (msg.as) checkParticipant(state, msg.as.user, msg.as.role);
  return viewOf(state);
}

/**
 * Handles one message. Resolves with its reply (send/post: the ack; create: CreateReply; read:
 * `{conv, seq}`; others: the ConversationView); rejects with a SwitchboardError that the cell
 * turns into an error reply. State is only changed once the effects it records succeeded.
 */
export async function conversationBehaviour(
  state: ConversationState,
  msg: ConversationMessage,
  ctx: ConversationContext,
): Promise<unknown> {
  // Typing is ephemeral and a view reads only settled state; everything else first settles an
  // uncertain write, so no seq is handed out while the outcome at lastSeq + 1 is unknown.
  if (state.unsettled !== null && msg.type !== 'typing' && msg.type !== 'view') await settle(state, ctx);
  switch (msg.type) {
    case 'send':
      return onSend(state, msg, ctx);
    case 'post':
      return onPost(state, msg, ctx);
    case 'create':
      return onCreate(state, msg, ctx);
    case 'assign':
      return onAssign(state, msg, ctx);
    case 'unassign':
      return onUnassign(state, msg, ctx);
    case 'close':
      return onClose(state, msg, ctx);
    case 'read':
      return onRead(state, msg, ctx);
    case 'typing':
      return onTyping(state, msg, ctx);
    case 'rate':
      return onRate(state, msg, ctx);
    case 'view':
      return onView(state, msg);
    default:
      return deskBehaviour(state, msg, ctx);
  }
}
