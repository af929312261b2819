/**
 * No-reply reassignment, the conversation actor's half (issue #17 item 5): it keeps whether the
 * visitor waits for an answer, and since when. A visitor's message starts a wait (unless one runs);
 * the assigned agent's message ends it; an assignment restarts it for the new agent (who gets the
 * whole time). While an agent holds the conversation, the wait is a row of `reply_waits`
 * (written at the fence time, fire and forget) and a `replyDue` tell to the tenant's queue actor,
 * which owns the timer (actors/reception/queue-reception.ts) and, when it runs out, asks this actor to
 * `unassign` with reason `no_reply` and the wait's `since`: refused unless that very wait still runs,
 * so a late timer can never take a conversation whose agent has answered meanwhile.
 *
 * The row is also what survives a move: the queue actor rebuilds its timers from the table, and this
 * actor reads its own row on activation (hosting), so neither side depends on a node's memory.
 */
import { SwitchboardError } from '../../src/protocol/errors.js';
import type { ReplyWaitRow } from '../../src/store/reception-store.js';
import type { MessageRow } from '../../src/store/types.js';

/** The visitor waits since `since`; `agent` is who must answer (null while queued). */
export interface ReplyWait {
  since: number;
  agent: string | null;
}

export interface ReplyWaitContext {
  /** The tenant's no-reply time in ms; 0 = reassignment off. */
  reassignMs(tenant: string): number;
  /** Fire and forget (failures are logged): the row, written at `writeTimeMs`. */
  save(tenant: string, row: ReplyWaitRow, writeTimeMs: number): void;
  remove(tenant: string, conv: string, writeTimeMs: number): void;
  /** Tells the tenant's queue actor (fire and forget). */
  tellQueue(
    tenant: string,
    msg:
      | { type: 'replyDue'; conv: string; agent: string; since: number }
      | {
          type: 'replied';
          conv: string;
          since: number;
        },
  ): void;
}

/**
 * The part of a conversation's state this module reads and writes. `replyWait`: null = nobody waits;
 * undefined = unknown (loaded while queued, or reassignment was off at load): the next assignment
 * then counts the visitor as waiting when the conversation has messages.
 */
export interface ReplyWaitState {
  readonly tenant: string;
  readonly conv: string;
  lastSeq: number;
  replyWait?: ReplyWait | null;
}

/** The state at activation from the stored row (null: none) and the conversation's status. */
export function loadedReplyWait(
  row: ReplyWaitRow | null,
  status: string | undefined,
): ReplyWait | null | undefined {
  if (row) return { since: row.since, agent: row.agent };
  return status === 'assigned' ? null : undefined;
}

function start(state: ReplyWaitState, wait: ReplyWait, now: number, ctx: ReplyWaitContext): void {
  state.replyWait = wait;
  if (wait.agent === null) return;
  ctx.save(state.tenant, { conv: state.conv, agent: wait.agent, since: wait.since }, now);
  ctx.tellQueue(state.tenant, { type: 'replyDue', conv: state.conv, agent: wait.agent, since: wait.since });
}

/** A row became durable: a visitor's starts a wait, the assigned agent's ends it. */
export function replyWaitOnCommitted(
  state: ReplyWaitState,
  row: MessageRow,
  agent: string | null,
  ctx: ReplyWaitContext | undefined,
): void {
  if (!ctx || ctx.reassignMs(state.tenant) <= 0) return;
  if (row.senderRole === 'visitor') {
    if (state.replyWait) return; // the first unanswered message counts
    start(state, { since: row.ts, agent }, row.ts, ctx);
  } else if (row.senderRole === 'agent' && row.sender === agent) {
    const wait = state.replyWait;
    state.replyWait = null;
    if (wait === null) return;
    ctx.remove(state.tenant, state.conv, row.ts);
    if (wait?.agent) ctx.tellQueue(state.tenant, { type: 'replied', conv: state.conv, since: wait.since });
  }
}

/** The conversation went to `agent` at `now`: a waiting visitor's clock restarts for that agent. */
export function replyWaitOnAssigned(
  state: ReplyWaitState,
  agent: string,
  now: number,
  ctx: ReplyWaitContext | undefined,
): void {
  if (!ctx || ctx.reassignMs(state.tenant) <= 0) return;
  const waiting = state.replyWait === undefined ? state.lastSeq > 0 : state.replyWait !== null;
  if (waiting) start(state, { since: now, agent }, now, ctx);
  else state.replyWait = null;
}

/** The agent let it go (unassign) or it closed: the row goes; an unassigned visitor still waits. */
export function replyWaitOnReleased(
  state: ReplyWaitState,
  now: number,
  closed: boolean,
  ctx: ReplyWaitContext | undefined,
): void {
  if (!ctx) return;
  const wait = state.replyWait;
  if (wait?.agent) ctx.remove(state.tenant, state.conv, now);
  state.replyWait = closed ? null : wait ? { since: wait.since, agent: null } : wait;
}

/** An `unassign` for `no_reply` must name the wait that ran out; anything else is stale. */
export function checkNoReply(state: ReplyWaitState, from: string, since: number | undefined): void {
  const wait = state.replyWait;
  if (!wait || wait.agent !== from || wait.since !== since)
    throw new SwitchboardError('conflict', `conversation '${state.conv}' has no unanswered wait for ${from}`);
}
