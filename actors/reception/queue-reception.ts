/**
 * The support desk's half in the tenant queue actor (issue #17 items 5-7). The queue actor already
 * makes every assignment decision of its tenant one at a time; the desk adds what decides whether and
 * when a conversation enters the queue, and what takes one back out:
 *
 * - admission (`admit`): a conversation with the tenant's bot stays with it (`route: 'bot'`); a new one
 *   goes to the bot when the tenant has one; outside business hours nothing is queued
 *   (`route: 'closed'`: the caller sends the automatic message and the leave-a-message form);
 *   otherwise it is queued as before (`route: 'queue'`).
 * - no-reply timers: `replyDue` / `replied` from the conversation actors (actors/reception/reply-wait.ts),
 *   rebuilt from `reply_waits` on activation; one timer for the earliest due. When one runs out the
 *   conversation is unassigned (`no_reply`, refused if its agent answered meanwhile), its visitor told
 *   (`requeued`), and it goes to the FRONT of the queue, for another agent when one can take it.
 * - left messages: stored here (so the per-tenant bound holds), queued once the desk is open.
 * - bot sessions and hand-offs: the summary goes to the agent who gets the conversation (`handoff`).
 *
 * All of it is rebuilt from its tables on activation, so a move of the queue's shard loses nothing but
 * the in-memory preference "not the same agent" of a conversation that waits at that moment.
 */

import { SwitchboardError, toSwitchboardError } from '../../src/protocol/errors.js';
import { handoffFrame, requeuedFrame } from '../../src/protocol/reception-frames.js';
import { isOpen, nextOpening } from '../../src/reception/hours.js';
import type { ReceptionSettings } from '../../src/reception/settings.js';
import type {
  BotSessionRow,
  LeftMessageRow,
  ReceptionStore,
  ReplyWaitRow,
} from '../../src/store/reception-store.js';
import type { ActorRef, ConversationView } from '../conversation.js';
import type { EnqueueReply, QueueContext, QueueState, RosterAgent } from '../queue.js';

/** Timers are re-armed at least this often (settings may change under a running timer). */
const MAX_TIMER_MS = 60_000;
/** Left messages queued per tick once the desk opens (the rest follow on the next ticks). */
const LEFT_PER_TICK = 100;
/**
 * How often the reply waits are read again from their table: `replyDue` / `replied` are tells (fire and
 * forget), so one lost on the way (a full mailbox, a moving shard) is healed within this time.
 */
export const REPLY_WAITS_RELOAD_MS = 30_000;

export interface LeftItem {
  id: string;
  conv: string;
  visitor: string;
  ts: number;
}

export interface QueueReceptionState {
  /**
   * conv -> the wait its agent must answer; `checkAt`: when it ran out while no other agent was there,
   * the next look (memory only: a reload looks at once).
   */
  readonly replyDue: Map<string, { agent: string; since: number; checkAt?: number }>;
  /** Stored left messages, oldest first (bodies stay in the table). */
  left: LeftItem[];
  /** conv -> bot session (state `bot`) or a hand-off whose summary waits for an agent (`handed`). */
  readonly bots: Map<string, BotSessionRow>;
  timer: NodeJS.Timeout | undefined;
  /** When `replyDue` was last rebuilt from the table (epoch ms). */
  waitsReadAt: number;
}

export interface QueueReceptionContext {
  settings(): ReceptionSettings;
  store: Pick<
    ReceptionStore,
    | 'saveLeftMessage'
    | 'removeLeftMessage'
    | 'saveBotSession'
    | 'removeBotSession'
    | 'loadLeftMessages'
    | 'loadReplyWaits'
  >;
  newId(): string;
}

/** What the queue lends the desk (its own functions, so this module imports no values from it). */
export interface QueueOps {
  enqueue(msg: {
    conv: string;
    visitor: string;
    skill: string | null;
    since?: number;
    exclude?: string;
  }): Promise<EnqueueReply>;
  drain(): Promise<void>;
}

export type ReceptionQueueMessage =
  | { type: 'replyDue'; conv: string; agent: string; since: number }
  | { type: 'replied'; conv: string; since: number }
  | { type: 'reception' }
  | {
      type: 'leave';
      conv: string;
      visitor: string;
      name: string | null;
      email: string | null;
      body: string;
    }
  | { type: 'leftList'; limit: number }
  | {
      type: 'handoff';
      conv: string;
      visitor: string;
      skill: string | null;
      summary: string | null;
      by: string;
    };

const QUEUE_BY: ActorRef = { user: 'queue', role: 'system' };

export function initialReceptionState(
  waits: ReplyWaitRow[],
  left: LeftMessageRow[],
  bots: BotSessionRow[],
  now = 0,
): QueueReceptionState {
  return {
    replyDue: new Map(waits.map((w) => [w.conv, { agent: w.agent, since: w.since }])),
    left: left.map(({ id, conv, visitor, ts }) => ({ id, conv, visitor, ts })).sort((a, b) => a.ts - b.ts),
    bots: new Map(bots.map((b) => [b.conv, b])),
    timer: undefined,
    waitsReadAt: now,
  };
}

export function stopReception(rc: QueueReceptionState): void {
  if (rc.timer) clearTimeout(rc.timer);
  rc.timer = undefined;
}

function isPlaced(state: QueueState, conv: string): boolean {
  return (
    state.waiting.some((w) => w.conv === conv) || [...state.agents.values()].some((a) => a.convs.has(conv))
  );
}

function receptionOpen(settings: ReceptionSettings, now: number): boolean {
  return settings.hours === null || isOpen(settings.hours, now);
}

/**
 * Where a conversation that asks to be queued goes. `fresh`: it was just created (bot first applies
 * to new conversations only). Conversations already waiting or assigned answer as before.
 */
export async function admit(
  state: QueueState,
  msg: { conv: string; visitor: string; skill: string | null; fresh?: boolean },
  ctx: QueueContext,
  q: QueueOps,
): Promise<EnqueueReply> {
  const rc = ctx.reception;
  if (!rc) return q.enqueue(msg);
  const settings = rc.settings();
  const session = state.reception.bots.get(msg.conv);
  if (session?.state === 'bot') return { conv: msg.conv, agent: null, position: null, route: 'bot' };
  if (isPlaced(state, msg.conv)) return q.enqueue(msg);
  const now = ctx.clock.now();
  // Bot sessions share the waiting list's bound: both are conversations without an agent.
  if (msg.fresh === true && settings.bot !== null && state.reception.bots.size < state.limits.maxWaiting) {
    const row: BotSessionRow = {
      conv: msg.conv,
      visitor: msg.visitor,
      since: now,
      state: 'bot',
      summary: null,
      handedBy: null,
    };
    ctx.fence();
    await rc.store.saveBotSession(state.tenant, row);
    ctx.fence();
    state.reception.bots.set(msg.conv, row);
    return { conv: msg.conv, agent: null, position: null, route: 'bot' };
  }
  if (!receptionOpen(settings, now)) {
    const nextOpen = settings.hours ? nextOpening(settings.hours, now) : null;
    return { conv: msg.conv, agent: null, position: null, route: 'closed', nextOpen };
  }
  return { ...(await q.enqueue(msg)), route: 'queue' };
}

/** The bot hands off (or the visitor asked for a person, or the bot failed): the queue takes over. */
async function handoff(
  state: QueueState,
  msg: Extract<ReceptionQueueMessage, { type: 'handoff' }>,
  ctx: QueueContext,
  q: QueueOps,
): Promise<EnqueueReply> {
  const rc = ctx.reception;
  const session = state.reception.bots.get(msg.conv);
  if (rc && session?.state === 'bot') {
    const row: BotSessionRow = { ...session, state: 'handed', summary: msg.summary, handedBy: msg.by };
    ctx.fence();
    await rc.store.saveBotSession(state.tenant, row);
    ctx.fence();
    state.reception.bots.set(msg.conv, row);
  }
  if (isPlaced(state, msg.conv)) return { ...(await q.enqueue(msg)), route: 'queue' };
  const settings = rc?.settings();
  const now = ctx.clock.now();
  if (settings && !receptionOpen(settings, now)) {
    const nextOpen = settings.hours ? nextOpening(settings.hours, now) : null;
    return { conv: msg.conv, agent: null, position: null, route: 'closed', nextOpen };
  }
  // Placed by when the bot took it: ahead of conversations that came later.
  return {
    ...(await q.enqueue({ ...msg, ...(session ? { since: session.since } : {}) })),
    route: 'queue',
  };
}

/** A conversation went to `agent`: the bot's summary, if one waits, goes to that agent. */
export function receptionAfterAssign(
  state: QueueState,
  conv: string,
  agent: string,
  ctx: QueueContext,
): void {
  const session = state.reception.bots.get(conv);
  if (session?.state !== 'handed' || !ctx.reception) return;
  ctx.notify([agent], handoffFrame(conv, session.summary, session.handedBy ?? 'bot'));
  state.reception.bots.delete(conv);
  ctx.reception.store
    .removeBotSession(state.tenant, conv)
    .catch((err: unknown) => ctx.warn({ err, conv }, 'could not remove a handed-off bot session'));
}

/** The conversation closed: nothing of the desk stays for it (left messages are skipped when queued). */
export async function receptionRelease(state: QueueState, conv: string, ctx: QueueContext): Promise<void> {
  state.reception.replyDue.delete(conv);
  if (state.reception.bots.delete(conv) && ctx.reception) {
    ctx.fence();
    await ctx.reception.store.removeBotSession(state.tenant, conv);
  }
}

/**
 * The agent to offer a waiting conversation to. With `exclude` (the agent who did not answer): anyone
 * else who can take it; the same agent only when no other agent could take it even once free.
 */
export function pickWithExclusion(
  agents: Map<string, RosterAgent>,
  skill: string | null,
  exclude: string | undefined,
  pick: (agents: Iterable<RosterAgent>, skill: string | null, exclude?: string) => RosterAgent | undefined,
): RosterAgent | undefined {
  if (exclude === undefined) return pick(agents.values(), skill);
  const other = pick(agents.values(), skill, exclude);
  if (other) return other;
  for (const a of agents.values())
    if (
      a.agent !== exclude &&
      a.status === 'online' &&
      a.connected &&
      a.capacity > 0 &&
      (skill === null || a.skills.includes(skill))
    )
      return undefined; // another agent will be free: wait for it
  return pick(agents.values(), skill);
}

/** The no-reply time ran out for `conv`: back to the front of the queue, visitor and agent told. */
async function reassignNoReply(
  state: QueueState,
  conv: string,
  due: { agent: string; since: number },
  ctx: QueueContext,
  q: QueueOps,
): Promise<void> {
  let view: ConversationView;
  try {
    view = await ctx.askConversation(conv, {
      type: 'unassign',
      from: due.agent,
      skill: null,
      by: QUEUE_BY,
      reason: 'no_reply',
      since: due.since,
    });
  } catch (err) {
    const e = toSwitchboardError(err);
    if (e.code === 'unavailable' || e.code === 'timeout' || e.code === 'busy') return; // next tick
    // Answered meanwhile, moved on or closed: the wait is over.
    if (state.reception.replyDue.get(conv)?.since === due.since) state.reception.replyDue.delete(conv);
    return;
  }
  state.reception.replyDue.delete(conv);
  state.agents.get(due.agent)?.convs.delete(conv);
  ctx.notify([view.visitor], requeuedFrame(conv));
  // The front: ahead of every waiting conversation, reassigned ones included (stored, so it survives).
  const first = state.waiting[0]?.enqueuedAt ?? ctx.clock.now();
  await q.enqueue({
    conv,
    visitor: view.visitor,
    skill: view.skill,
    since: Math.min(view.createdAt, first - 1),
    exclude: due.agent,
  });
}

/** Runs what is due: no-reply timers that ran out, left messages once open; re-arms the timer. */
async function tick(state: QueueState, ctx: QueueContext, q: QueueOps): Promise<void> {
  const rc = ctx.reception;
  if (!rc) return;
  const settings = rc.settings();
  const now = ctx.clock.now();
  if (settings.noReplyReassignMs > 0) {
    if (now - state.reception.waitsReadAt >= REPLY_WAITS_RELOAD_MS) await rereadWaits(state, rc, now);
    const ms = settings.noReplyReassignMs;
    const due = [...state.reception.replyDue].filter(([, d]) => dueAt(d, ms) <= now);
    let moved = 0;
    for (const [conv, d] of due) {
      // Nobody else to give it to: it stays (no churn through the queue back to the same agent); look
      // again one no-reply time later.
      if (!otherAgentThere(state, d.agent)) {
        d.checkAt = now + ms;
        continue;
      }
      await reassignNoReply(state, conv, d, ctx, q);
      moved++;
    }
    // The agents who lost one have room again: waiting conversations (not the one each lost) go to them.
    if (moved > 0) await q.drain();
  }
  if (state.reception.left.length > 0 && receptionOpen(settings, now)) await queueLeft(state, ctx, q);
  arm(state, ctx);
}

/** The table is the truth: waits added or ended by tells that never arrived are picked up here. */
async function rereadWaits(state: QueueState, rc: QueueReceptionContext, now: number): Promise<void> {
  const rows = await rc.store.loadReplyWaits(state.tenant, state.limits.maxAgents * state.limits.maxCapacity);
  const before = state.reception.replyDue;
  const next = new Map<string, { agent: string; since: number; checkAt?: number }>();
  for (const r of rows) {
    const had = before.get(r.conv);
    next.set(r.conv, had && had.since === r.since ? had : { agent: r.agent, since: r.since });
  }
  before.clear();
  for (const [conv, d] of next) before.set(conv, d);
  state.reception.waitsReadAt = now;
}

function dueAt(d: { since: number; checkAt?: number }, ms: number): number {
  return d.checkAt ?? d.since + ms;
}

/** Another agent is online and connected with room in principle (any skill: the roster lacks the conversation's). */
function otherAgentThere(state: QueueState, agent: string): boolean {
  for (const a of state.agents.values())
    if (a.agent !== agent && a.status === 'online' && a.connected && a.capacity > 0) return true;
  return false;
}

async function queueLeft(state: QueueState, ctx: QueueContext, q: QueueOps): Promise<void> {
  const rc = ctx.reception!;
  for (const m of state.reception.left.slice(0, LEFT_PER_TICK)) {
    try {
      await q.enqueue({ conv: m.conv, visitor: m.visitor, skill: null, since: m.ts });
    } catch (err) {
      const e = toSwitchboardError(err);
      if (e.code === 'unavailable' || e.code === 'timeout' || e.code === 'busy') return; // next tick
      ctx.warn({ conv: m.conv, code: e.code }, 'a left message could not be queued; dropped');
    }
    ctx.fence();
    await rc.store.removeLeftMessage(state.tenant, m.id);
    state.reception.left = state.reception.left.filter((x) => x.id !== m.id);
  }
}

/** One timer: the earliest no-reply due, or the next opening while left messages wait. */
export function arm(state: QueueState, ctx: QueueContext): void {
  stopReception(state.reception);
  const rc = ctx.reception;
  if (!rc) return;
  const settings = rc.settings();
  const now = ctx.clock.now();
  let at = Number.POSITIVE_INFINITY;
  if (settings.noReplyReassignMs > 0)
    for (const d of state.reception.replyDue.values())
      at = Math.min(at, dueAt(d, settings.noReplyReassignMs));
  if (state.reception.left.length > 0 && settings.hours)
    at = Math.min(at, nextOpening(settings.hours, now) ?? Number.POSITIVE_INFINITY);
  if (at === Number.POSITIVE_INFINITY) return;
  const wait = Math.min(MAX_TIMER_MS, Math.max(10, at - now));
  state.reception.timer = setTimeout(() => ctx.tellSelf({ type: 'reception' }), wait);
  state.reception.timer.unref();
}

async function leave(
  state: QueueState,
  msg: Extract<ReceptionQueueMessage, { type: 'leave' }>,
  ctx: QueueContext,
): Promise<{ id: string; conv: string }> {
  const rc = ctx.reception;
  if (!rc) throw new SwitchboardError('unavailable', 'reception is not running');
  const hours = rc.settings().hours;
  if (!hours) throw new SwitchboardError('conflict', 'this desk has no business hours: just send a message');
  if (msg.body.length > hours.leaveMaxChars)
    throw new SwitchboardError(
      'payload_too_large',
      `a left message is at most ${hours.leaveMaxChars} characters`,
    );
  if (state.reception.left.length >= hours.leaveMaxStored)
    throw new SwitchboardError(
      'busy',
      `tenant ${state.tenant} holds the most left messages (${hours.leaveMaxStored})`,
      {
        retryAfterMs: 60_000,
      },
    );
  const row: LeftMessageRow = {
    id: rc.newId(),
    conv: msg.conv,
    visitor: msg.visitor,
    name: msg.name,
    email: msg.email,
    body: msg.body,
    ts: ctx.fence(),
  };
  await rc.store.saveLeftMessage(state.tenant, row);
  ctx.fence();
  state.reception.left.push({ id: row.id, conv: row.conv, visitor: row.visitor, ts: row.ts });
  arm(state, ctx);
  return { id: row.id, conv: row.conv };
}

/** Handles the desk's queue messages; undefined when `msg` is not one of them. */
export async function receptionBehaviour(
  state: QueueState,
  msg: ReceptionQueueMessage,
  ctx: QueueContext,
  q: QueueOps,
): Promise<unknown> {
  switch (msg.type) {
    case 'replyDue': {
      const bound = state.limits.maxAgents * state.limits.maxCapacity;
      if (!state.reception.replyDue.has(msg.conv) && state.reception.replyDue.size >= bound) {
        ctx.warn({ conv: msg.conv, bound }, 'reply waits at their bound; this one is not timed');
        return {};
      }
      state.reception.replyDue.set(msg.conv, { agent: msg.agent, since: msg.since });
      arm(state, ctx);
      return {};
    }
    case 'replied': {
      const d = state.reception.replyDue.get(msg.conv);
      if (d && d.since <= msg.since) state.reception.replyDue.delete(msg.conv);
      return {};
    }
    case 'reception':
      await tick(state, ctx, q);
      return {};
    case 'leave':
      return leave(state, msg, ctx);
    case 'leftList': {
      if (!ctx.reception || state.reception.left.length === 0) return [];
      return ctx.reception.store.loadLeftMessages(
        state.tenant,
        Math.min(msg.limit, state.reception.left.length || 1),
      );
    }
    case 'handoff':
      return handoff(state, msg, ctx, q);
    default:
      return undefined;
  }
}
