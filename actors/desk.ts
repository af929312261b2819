/**
 * The support-desk messages of the conversation actor (issue #17): private notes, recall, edit and
 * labels. Same actor, same single writer, same seq: a note, a recall and an edit are message rows
 * appended like any other (acked once durable, de-duplicated by cmid, an uncertain write settled
 * before anything else), so message rows stay insert-only. A recall or edit carries its effects — the
 * target's new state and the audit of the body it replaces — written in the row's own logged batch.
 */
import { SwitchboardError } from '../src/protocol/errors.js';
import type { MessageAudit, MessageRow, MessageState } from '../src/store/types.js';
import {
  type Ack,
  type ActorRef,
  append,
  type ConversationContext,
  type ConversationState,
  checkParticipant,
  event,
  existing,
  type ParticipantRole,
  requireOpen,
  seen,
} from './conversation.js';

/** An agent's private note: stored and shown to agents (and business systems, marked internal) only. */
export interface NoteMessage {
  type: 'note';
  sender: string;
  cmid: string;
  body: string;
  agentBody?: string;
  review?: boolean;
}

/** The sender recalls its own message `seq`, at most `windowMs` after it was sent. */
export interface RecallMessage {
  type: 'recall';
  sender: string;
  role: ParticipantRole;
  cmid: string;
  seq: number;
  windowMs: number;
}

/** The agent replaces the body of its own message `seq` (at most `maxEdits` times per message). */
export interface EditMessage {
  type: 'edit';
  sender: string;
  cmid: string;
  seq: number;
  body: string;
  agentBody?: string;
  review?: boolean;
  maxEdits: number;
}

/** Adds and removes labels (already validated); at most `maxLabels` afterwards. Reply: LabelsReply. */
export interface LabelMessage {
  type: 'label';
  add: string[];
  remove: string[];
  by: ActorRef;
  maxLabels: number;
}

export type DeskMessage = NoteMessage | RecallMessage | EditMessage | LabelMessage;

export interface LabelsReply {
  conv: string;
  labels: string[];
}

/** The message `seq` in its current state (the owner's history cache holds the newest rows, Cassandra all). */
async function target(state: ConversationState, seq: number, ctx: ConversationContext): Promise<MessageRow> {
  if (!Number.isSafeInteger(seq) || seq < 1 || seq > state.lastSeq)
    throw new SwitchboardError('not_found', `no message ${seq} in '${state.conv}'`);
  const row = await ctx.readMessage(state.tenant, state.conv, seq);
  if (row === null) throw new SwitchboardError('not_found', `no message ${seq} in '${state.conv}'`);
  return row;
}

function checkOwnTarget(row: MessageRow, sender: string, what: string): void {
  if (row.sender !== sender) throw new SwitchboardError('forbidden', `only its sender may ${what} a message`);
  if (row.change !== undefined)
    throw new SwitchboardError('invalid_field', `a ${row.change} cannot itself be changed; name the message`);
  if (row.recalled === true) throw new SwitchboardError('conflict', `message ${row.seq} was recalled`);
}

function audit(
  state: ConversationState,
  row: MessageRow,
  kind: 'recall' | 'edit',
  by: string,
  now: number,
): MessageAudit {
  return {
    tenant: state.tenant,
    conv: state.conv,
    target: row.seq,
    changeSeq: state.lastSeq + 1,
    kind,
    by,
    byRole: row.senderRole,
    body: row.body,
    ts: now,
  };
}

async function onNote(state: ConversationState, msg: NoteMessage, ctx: ConversationContext): Promise<Ack> {
  ctx.fence();
  checkParticipant(state, msg.sender, 'agent');
  const dup = await seen(state, msg.sender, msg.cmid, ctx);
  if (dup) return dup;
  requireOpen(state, existing(state).meta);
  return append(
    state,
    {
      sender: msg.sender,
      role: 'agent',
      cmid: msg.cmid,
      body: msg.body,
      internal: true,
      ...(msg.review === true ? { review: true } : {}),
      ...(msg.agentBody !== undefined ? { agentBody: msg.agentBody } : {}),
    },
    ctx,
  );
}

async function onRecall(
  state: ConversationState,
  msg: RecallMessage,
  ctx: ConversationContext,
): Promise<Ack> {
  ctx.fence();
  checkParticipant(state, msg.sender, msg.role);
  const dup = await seen(state, msg.sender, msg.cmid, ctx);
  if (dup) return dup;
  requireOpen(state, existing(state).meta);
  const row = await target(state, msg.seq, ctx);
  checkOwnTarget(row, msg.sender, 'recall');
  const now = ctx.fence();
  if (now - row.ts > msg.windowMs)
    throw new SwitchboardError(
      'conflict',
      `message ${row.seq} can no longer be recalled: the window is ${Math.round(msg.windowMs / 1000)} s`,
    );
  // The message and each of its edit rows read as recalled from now on: no body of it stays readable.
  const editSeqs = row.editSeqs ?? [];
  const states: MessageState[] = [
    { seq: row.seq, state: 'recalled', body: null, editSeqs },
    ...editSeqs.map((seq): MessageState => ({ seq, state: 'recalled', body: null, editSeqs: [] })),
  ];
  return append(
    state,
    {
      sender: msg.sender,
      role: msg.role,
      cmid: msg.cmid,
      body: '',
      change: 'recall',
      target: row.seq,
      ...(row.internal === true ? { internal: true } : {}),
      effects: { states, audits: [audit(state, row, 'recall', msg.sender, now)] },
    },
    ctx,
  );
}

async function onEdit(state: ConversationState, msg: EditMessage, ctx: ConversationContext): Promise<Ack> {
  ctx.fence();
  checkParticipant(state, msg.sender, 'agent');
  const dup = await seen(state, msg.sender, msg.cmid, ctx);
  if (dup) return dup;
  requireOpen(state, existing(state).meta);
  const row = await target(state, msg.seq, ctx);
  checkOwnTarget(row, msg.sender, 'edit');
  const editSeqs = row.editSeqs ?? [];
  if (editSeqs.length >= msg.maxEdits)
    throw new SwitchboardError('invalid_field', `a message may be edited at most ${msg.maxEdits} times`);
  const now = ctx.fence();
  const next: MessageState = {
    seq: row.seq,
    state: 'edited',
    body: msg.body,
    editSeqs: [...editSeqs, state.lastSeq + 1],
  };
  if (msg.agentBody !== undefined) next.agentBody = msg.agentBody;
  return append(
    state,
    {
      sender: msg.sender,
      role: 'agent',
      cmid: msg.cmid,
      body: msg.body,
      change: 'edit',
      target: row.seq,
      ...(row.internal === true ? { internal: true } : {}),
      ...(msg.review === true ? { review: true } : {}),
      ...(msg.agentBody !== undefined ? { agentBody: msg.agentBody } : {}),
      effects: { states: [next], audits: [audit(state, row, 'edit', msg.sender, now)] },
    },
    ctx,
  );
}

async function onLabel(
  state: ConversationState,
  msg: LabelMessage,
  ctx: ConversationContext,
): Promise<LabelsReply> {
  ctx.fence();
  const { record, meta } = existing(state);
  if (msg.by.role === 'visitor')
    throw new SwitchboardError('forbidden', 'visitors cannot label conversations');
  if (msg.by.role === 'agent' && record.agent !== msg.by.user)
    throw new SwitchboardError('forbidden', 'conversation is not assigned to you');
  if (!ctx.desk) throw new SwitchboardError('unavailable', 'the labels table is not configured');
  const current = meta.labels ?? {};
  const next: Record<string, number> = { ...current };
  const now = ctx.fence();
  const removed: { label: string; at: number }[] = [];
  for (const label of msg.remove) {
    const at = next[label];
    if (at !== undefined) {
      removed.push({ label, at });
      delete next[label];
    }
  }
  const added: string[] = [];
  for (const label of msg.add)
    if (next[label] === undefined) {
      next[label] = now;
      added.push(label);
    }
  const labels = Object.keys(next).sort();
  if (labels.length > msg.maxLabels)
    throw new SwitchboardError('invalid_field', `a conversation may have at most ${msg.maxLabels} labels`);
  if (added.length === 0 && removed.length === 0) return { conv: state.conv, labels };
  await ctx.desk.saveLabels(state.tenant, state.conv, next, added, removed, now);
  ctx.fence();
  state.meta = { ...meta, labels: next };
  // Agents only: labels are the desk's business, not the visitor's.
  if (record.agent !== null)
    ctx.notify(state.tenant, [record.agent], { type: 'labels', conv: state.conv, labels });
  event(ctx, state, 'labeled', now, {
    labels,
    added,
    removed: removed.map((r) => r.label),
    by: msg.by,
  });
  return { conv: state.conv, labels };
}

/** Handles one desk message; rejects `invalid_field` for a message type the actor does not know. */
export function deskBehaviour(
  state: ConversationState,
  msg: DeskMessage,
  ctx: ConversationContext,
): Promise<unknown> {
  switch (msg.type) {
    case 'note':
      return onNote(state, msg, ctx);
    case 'recall':
      return onRecall(state, msg, ctx);
    case 'edit':
      return onEdit(state, msg, ctx);
    case 'label':
      return onLabel(state, msg, ctx);
    default:
      return Promise.reject(new SwitchboardError('invalid_field', 'unknown conversation message'));
  }
}
