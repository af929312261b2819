/**
 * The tenant queue actor (one per tenant, actor id QUEUE_ACTOR_ID): the roster of the tenant's
 * agents (status, capacity, skills, connected, the conversations each holds) and the waiting
 * list. It makes every assignment decision of the tenant, one at a time, so two assignments can
 * never race for the same agent slot: a new conversation goes to the least-loaded eligible agent
 * (online, connected, below capacity, with the needed skill), else it waits and its visitor is
 * told its position. Assignment itself is a request to the conversation actor (AssignMessage),
 * which refuses a stale one.
 *
 * State survives failover: waiting entries are rows of `queue_entries`, agents' profiles rows of
 * `agents` (written by the agent actors), and each agent's conversations rows of
 * `open_conversations` (written by the conversation actors); `load` rebuilds the roster from them.
 */

import type { Clock } from '../src/clock.js';
import { SwitchboardError, toSwitchboardError } from '../src/protocol/errors.js';
import type { AgentProfile, AgentStatus, ChatStore, QueueEntryRow } from '../src/store/chat-store.js';
import type { ActorRef, ConversationView } from './conversation.js';
import {
  admit,
  initialReceptionState,
  pickWithExclusion,
  type QueueOps,
  type QueueReceptionContext,
  type QueueReceptionState,
  type ReceptionQueueMessage,
  receptionAfterAssign,
  receptionBehaviour,
  receptionRelease,
  stopReception,
} from './reception/queue-reception.js';

export interface QueueLimits {
  /** Conversations waiting per tenant; enqueue beyond is `busy`. */
  maxWaiting: number;
  /** Agents in a tenant's roster; a new agent beyond is refused `busy`. */
  maxAgents: number;
  /** The most conversations one agent can hold (upper bound of any capacity). */
  maxCapacity: number;
  /** How often the roster asks silent agents' actors to report (ms): agent loss after a node crash. */
  sweepMs: number;
}

export interface RosterAgent {
  agent: string;
  status: AgentStatus;
  capacity: number;
  skills: string[];
  connected: boolean;
  convs: Set<string>;
  heardAt: number;
  /**
   * Reported lost (its grace ran out) and not connected since: the sweep retries taking its
   * conversations back, as the agent's actor reports the loss only once.
   */
  lost: boolean;
}

export interface WaitingEntry extends QueueEntryRow {
  /** The position last pushed to the visitor (0: none yet). */
  pushed: number;
  /** Not back to this agent while another can take it (no-reply reassignment; memory only). */
  exclude?: string;
}

export interface QueueState {
  readonly tenant: string;
  readonly agents: Map<string, RosterAgent>;
  waiting: WaitingEntry[];
  readonly limits: QueueLimits;
  sweep: NodeJS.Timeout | undefined;
  /** Reply timers, left messages, bot sessions (actors/reception/queue-reception.ts). */
  readonly reception: QueueReceptionState;
}

export type QueueMessage =
  | {
      type: 'enqueue';
      conv: string;
      visitor: string;
      skill: string | null;
      /**
       * A conversation coming back (agent lost, transfer to a skill): it is placed by `since`, the
       * time the conversation started, so it goes ahead of every newer one; and the length bound
       * does not apply (it held a slot already).
       */
      since?: number;
      /** Just created: bot first applies (actors/reception/queue-reception.ts). */
      fresh?: boolean;
      /** Not to this agent while another can take it (no-reply reassignment). */
      exclude?: string;
    }
  | {
      type: 'agent';
      agent: string;
      status: AgentStatus;
      capacity: number;
      skills: string[];
      connected: boolean;
      /**
       * The agent's actor has reported the agent lost (its grace ran out) and it has not come back. It
       * reports a loss once; a queue that did not keep that (it moved to another member, its state is
       * rebuilt from the tables) learns it here, and its sweep takes the conversations back.
       */
      lost?: boolean;
    }
  | { type: 'release'; conv: string; agent: string | null }
  | { type: 'transfer'; conv: string; from: string; to: { agent: string } | { skill: string }; by: ActorRef }
  | { type: 'accept'; conv: string; agent: string }
  | { type: 'agentLost'; agent: string }
  | { type: 'list' }
  | { type: 'sweep' }
  | ReceptionQueueMessage;

export interface QueueEntry {
  conv: string;
  visitor: string;
  skill: string | null;
  enqueuedAt: number;
  position: number;
}

export interface EnqueueReply {
  conv: string;
  /** The agent it went to at once, or null when it waits. */
  agent: string | null;
  /** 1-based position while waiting, null when assigned. */
  position: number | null;
  /**
   * Where reception sent it (enqueue and handoff): the queue, the tenant's bot, or nowhere because the
   * desk is closed (then `nextOpen`: when it opens, epoch ms, or null when not within a year).
   */
  route?: 'queue' | 'bot' | 'closed';
  nextOpen?: number | null;
}

export interface QueueContext {
  chat: Pick<ChatStore, 'saveQueueEntry' | 'removeQueueEntry'>;
  clock: Clock;
  fence(): number;
  /** Asks a conversation actor (assign / unassign); rejects with its SwitchboardError. */
  askConversation(conv: string, msg: unknown): Promise<ConversationView>;
  /** Tells an agent's actor to report its presence (fire and forget). */
  pingAgent(agent: string): void;
  /** Tells the queue actor itself (timers). */
  tellSelf(msg: QueueMessage): void;
  notify(users: readonly string[], frame: Record<string, unknown>): void;
  warn(obj: object, msg: string): void;
  /** Reception: bot first, business hours, no-reply timers (actors/reception/queue-reception.ts); absent: plain queue. */
  reception?: QueueReceptionContext;
}

const QUEUE_BY: ActorRef = { user: 'queue', role: 'system' };

export function initialQueueState(
  tenant: string,
  limits: QueueLimits,
  profiles: AgentProfile[],
  convsOf: Map<string, string[]>,
  waiting: QueueEntryRow[],
  now: number,
  reception: QueueReceptionState = initialReceptionState([], [], []),
): QueueState {
  const agents = new Map<string, RosterAgent>();
  for (const p of profiles) {
    agents.set(p.agent, {
      agent: p.agent,
      status: p.status,
      capacity: p.capacity,
      skills: p.skills,
      // Optimistic until the agent's actor reports (it is asked on activation and by the sweep).
      connected: p.status !== 'offline',
      convs: new Set(convsOf.get(p.agent) ?? []),
      heardAt: now,
      lost: false,
    });
  }
  return {
    tenant,
    agents,
    waiting: waiting.map((w) => ({ ...w, pushed: 0 })),
    limits,
    sweep: undefined,
    reception,
  };
}

/** Starts the periodic sweep and asks every agent with conversations to report. */
export function startQueue(state: QueueState, ctx: QueueContext): void {
  for (const a of state.agents.values()) if (a.convs.size > 0) ctx.pingAgent(a.agent);
  state.sweep = setInterval(() => ctx.tellSelf({ type: 'sweep' }), state.limits.sweepMs);
  state.sweep.unref();
  // Reply timers and left messages loaded with the state: due ones run at once, the rest get a timer.
  if (state.reception.replyDue.size > 0 || state.reception.left.length > 0)
    ctx.tellSelf({ type: 'reception' });
}

export function stopQueue(state: QueueState): void {
  if (state.sweep) clearInterval(state.sweep);
  state.sweep = undefined;
  stopReception(state.reception);
}

function eligible(a: RosterAgent, skill: string | null): boolean {
  return (
    a.status === 'online' &&
    a.connected &&
    a.convs.size < a.capacity &&
    (skill === null || a.skills.includes(skill))
  );
}

/** The least-loaded eligible agent (fewest conversations, then lowest load ratio, then id). */
export function pickAgent(
  agents: Iterable<RosterAgent>,
  skill: string | null,
  exclude?: string,
): RosterAgent | undefined {
  let best: RosterAgent | undefined;
  for (const a of agents) {
    if (a.agent === exclude || !eligible(a, skill)) continue;
    if (
      !best ||
      a.convs.size < best.convs.size ||
      (a.convs.size === best.convs.size &&
        (a.convs.size / a.capacity < best.convs.size / best.capacity ||
          (a.convs.size / a.capacity === best.convs.size / best.capacity && a.agent < best.agent)))
    )
      best = a;
  }
  return best;
}

function pushPositions(state: QueueState, ctx: QueueContext): void {
  state.waiting.forEach((w, i) => {
    const position = i + 1;
    if (w.pushed !== position) {
      w.pushed = position;
      ctx.notify([w.visitor], { type: 'queue', conv: w.conv, position });
    }
  });
}

function removeWaiting(state: QueueState, conv: string): WaitingEntry | undefined {
  const at = state.waiting.findIndex((w) => w.conv === conv);
  if (at < 0) return undefined;
  return state.waiting.splice(at, 1)[0];
}

/** Assigns `conv` to `agent` through the conversation actor; true when it took. */
async function assign(
  state: QueueState,
  conv: string,
  agent: RosterAgent,
  from: string | null,
  by: ActorRef,
  ctx: QueueContext,
): Promise<'ok' | 'gone' | 'retry'> {
  try {
    await ctx.askConversation(conv, { type: 'assign', agent: agent.agent, from, by });
  } catch (err) {
    const e = toSwitchboardError(err);
    if (e.code === 'unavailable' || e.code === 'timeout' || e.code === 'busy') return 'retry';
    ctx.warn({ conv, code: e.code }, 'assignment refused; dropping the queue entry');
    return 'gone';
  }
  agent.convs.add(conv);
  if (from !== null) state.agents.get(from)?.convs.delete(conv);
  receptionAfterAssign(state, conv, agent.agent, ctx);
  return 'ok';
}

/** Assigns waiting conversations, oldest first, while eligible agents exist. */
async function drain(state: QueueState, ctx: QueueContext): Promise<void> {
  for (let i = 0; i < state.waiting.length; ) {
    const w = state.waiting[i] as WaitingEntry;
    const agent = pickWithExclusion(state.agents, w.skill, w.exclude, pickAgent);
    if (!agent) {
      i++;
      continue;
    }
    const r = await assign(state, w.conv, agent, null, QUEUE_BY, ctx);
    // The conversation's actor is unreachable for now (its shard is failing over): stop here rather
    // than give its agent to a newer conversation; the next drain (event or sweep) retries.
    if (r === 'retry') break;
    ctx.fence();
    await ctx.chat.removeQueueEntry(state.tenant, w.conv);
    removeWaiting(state, w.conv);
  }
  pushPositions(state, ctx);
}

async function enqueue(
  state: QueueState,
  msg: Omit<Extract<QueueMessage, { type: 'enqueue' }>, 'type'> & { type?: 'enqueue' },
  ctx: QueueContext,
): Promise<EnqueueReply> {
  const waitingAt = state.waiting.findIndex((w) => w.conv === msg.conv);
  if (waitingAt >= 0) return { conv: msg.conv, agent: null, position: waitingAt + 1 };
  for (const a of state.agents.values())
    if (a.convs.has(msg.conv)) return { conv: msg.conv, agent: a.agent, position: null };
  if (msg.since === undefined && state.waiting.length >= state.limits.maxWaiting)
    throw new SwitchboardError(
      'busy',
      `the queue of tenant ${state.tenant} is full (${state.limits.maxWaiting})`,
      {
        retryAfterMs: 5000,
      },
    );
  const agent = pickWithExclusion(state.agents, msg.skill, msg.exclude, pickAgent);
  if (agent && (await assign(state, msg.conv, agent, null, QUEUE_BY, ctx)) === 'ok')
    return { conv: msg.conv, agent: agent.agent, position: null };
  const now = ctx.fence();
  const entry: WaitingEntry = {
    conv: msg.conv,
    visitor: msg.visitor,
    skill: msg.skill,
    // Stored, so the order survives a reload: the waiting list is sorted by enqueuedAt.
    enqueuedAt: Math.min(now, msg.since ?? now),
    pushed: 0,
    ...(msg.exclude !== undefined ? { exclude: msg.exclude } : {}),
  };
  await ctx.chat.saveQueueEntry(state.tenant, entry);
  ctx.fence();
  const at = state.waiting.findIndex((w) => w.enqueuedAt > entry.enqueuedAt);
  if (at < 0) state.waiting.push(entry);
  else state.waiting.splice(at, 0, entry);
  pushPositions(state, ctx);
  return { conv: msg.conv, agent: null, position: state.waiting.indexOf(entry) + 1 };
}

async function onAgent(
  state: QueueState,
  msg: Extract<QueueMessage, { type: 'agent' }>,
  ctx: QueueContext,
): Promise<void> {
  let a = state.agents.get(msg.agent);
  if (!a) {
    if (state.agents.size >= state.limits.maxAgents)
      throw new SwitchboardError(
        'busy',
        `tenant ${state.tenant} has the most agents allowed (${state.limits.maxAgents})`,
        {
          retryAfterMs: 60_000,
        },
      );
    a = {
      agent: msg.agent,
      status: msg.status,
      capacity: msg.capacity,
      skills: msg.skills,
      connected: msg.connected,
      convs: new Set(),
      heardAt: 0,
      lost: false,
    };
    state.agents.set(msg.agent, a);
  }
  a.status = msg.status;
  a.capacity = msg.capacity;
  a.skills = msg.skills;
  a.connected = msg.connected;
  if (msg.connected) a.lost = false;
  else if (msg.lost === true) a.lost = true;
  a.heardAt = ctx.clock.now();
  await drain(state, ctx);
}

async function agentLost(state: QueueState, agent: string, ctx: QueueContext): Promise<void> {
  const a = state.agents.get(agent);
  if (!a) return;
  a.connected = false;
  a.lost = true;
  // Each goes back by the time it started (ahead of newer conversations).
  for (const conv of [...a.convs]) {
    let view: ConversationView;
    try {
      view = await ctx.askConversation(conv, {
        type: 'unassign',
        from: agent,
        skill: null,
        by: QUEUE_BY,
        reason: 'agent_lost',
      });
    } catch (err) {
      const e = toSwitchboardError(err);
      if (e.code === 'unavailable' || e.code === 'timeout' || e.code === 'busy') continue; // next sweep
      a.convs.delete(conv); // closed or moved on: nothing to re-queue
      continue;
    }
    a.convs.delete(conv);
    await enqueue(
      state,
      { type: 'enqueue', conv, visitor: view.visitor, skill: view.skill, since: view.createdAt },
      ctx,
    );
  }
  await drain(state, ctx);
}

async function transfer(
  state: QueueState,
  msg: Extract<QueueMessage, { type: 'transfer' }>,
  ctx: QueueContext,
): Promise<EnqueueReply> {
  if ('agent' in msg.to) {
    const target = state.agents.get(msg.to.agent);
    if (!target || target.agent === msg.from || !eligible(target, null))
      throw new SwitchboardError(
        'conflict',
        `agent ${msg.to.agent} cannot take a conversation now (offline, away or full)`,
      );
    const r = await assign(state, msg.conv, target, msg.from, msg.by, ctx);
    if (r !== 'ok')
      throw new SwitchboardError(r === 'retry' ? 'unavailable' : 'conflict', 'transfer did not take', {
        retryAfterMs: 500,
      });
    return { conv: msg.conv, agent: target.agent, position: null };
  }
  const skill = msg.to.skill;
  // Straight to another agent with the skill when one is free, else back to the queue for it.
  const target = pickAgent(state.agents.values(), skill, msg.from);
  if (target && (await assign(state, msg.conv, target, msg.from, msg.by, ctx)) === 'ok')
    return { conv: msg.conv, agent: target.agent, position: null };
  const view = await ctx.askConversation(msg.conv, {
    type: 'unassign',
    from: msg.from,
    skill,
    by: msg.by,
    reason: 'transfer',
  });
  state.agents.get(msg.from)?.convs.delete(msg.conv);
  return enqueue(
    state,
    { type: 'enqueue', conv: msg.conv, visitor: view.visitor, skill, since: view.createdAt },
    ctx,
  );
}

async function accept(
  state: QueueState,
  conv: string,
  agentId: string,
  ctx: QueueContext,
): Promise<EnqueueReply> {
  const entry = state.waiting.find((w) => w.conv === conv);
  if (!entry) throw new SwitchboardError('not_found', `conversation '${conv}' is not waiting in the queue`);
  const a = state.agents.get(agentId);
  // `away` means "assign me nothing by yourself": such an agent may still take one by hand.
  const canTake =
    a !== undefined &&
    a.status !== 'offline' &&
    a.connected &&
    a.convs.size < a.capacity &&
    (entry.skill === null || a.skills.includes(entry.skill));
  if (!a || !canTake)
    throw new SwitchboardError('forbidden', 'you cannot take this conversation (status, capacity or skill)');
  const r = await assign(state, conv, a, null, { user: agentId, role: 'agent' }, ctx);
  if (r === 'retry') throw new SwitchboardError('unavailable', 'try again', { retryAfterMs: 500 });
  ctx.fence();
  await ctx.chat.removeQueueEntry(state.tenant, conv);
  removeWaiting(state, conv);
  pushPositions(state, ctx);
  if (r === 'gone') throw new SwitchboardError('conflict', `conversation '${conv}' is no longer waiting`);
  return { conv, agent: agentId, position: null };
}

export function listQueue(state: QueueState): QueueEntry[] {
  return state.waiting.map((w, i) => ({
    conv: w.conv,
    visitor: w.visitor,
    skill: w.skill,
    enqueuedAt: w.enqueuedAt,
    position: i + 1,
  }));
}

/** The queue's own steps, lent to the reception module. */
function opsOf(state: QueueState, ctx: QueueContext): QueueOps {
  return { enqueue: (m) => enqueue(state, m, ctx), drain: () => drain(state, ctx) };
}

export async function queueBehaviour(
  state: QueueState,
  msg: QueueMessage,
  ctx: QueueContext,
): Promise<unknown> {
  switch (msg.type) {
    case 'enqueue':
      // Reception decides first: the tenant's bot, closed hours, or the queue (actors/reception/queue-reception.ts).
      return admit(state, msg, ctx, opsOf(state, ctx));
    case 'replyDue':
    case 'replied':
    case 'reception':
    case 'leave':
    case 'leftList':
    case 'handoff':
      return receptionBehaviour(state, msg, ctx, opsOf(state, ctx));
    case 'agent':
      await onAgent(state, msg, ctx);
      return { agent: msg.agent, load: state.agents.get(msg.agent)?.convs.size ?? 0 };
    case 'release': {
      if (msg.agent !== null) state.agents.get(msg.agent)?.convs.delete(msg.conv);
      if (removeWaiting(state, msg.conv)) {
        ctx.fence();
        await ctx.chat.removeQueueEntry(state.tenant, msg.conv);
      }
      await receptionRelease(state, msg.conv, ctx);
      await drain(state, ctx);
      return { conv: msg.conv };
    }
    case 'transfer':
      return transfer(state, msg, ctx);
    case 'accept':
      return accept(state, msg.conv, msg.agent, ctx);
    case 'agentLost':
      await agentLost(state, msg.agent, ctx);
      return { agent: msg.agent };
    case 'list':
      return listQueue(state);
    case 'sweep': {
      const stale = ctx.clock.now() - state.limits.sweepMs * 2;
      for (const a of state.agents.values()) {
        if (a.convs.size > 0 && a.heardAt < stale) ctx.pingAgent(a.agent);
        // A conversation whose unassign failed (its shard moving: the owner's node stopping) is
        // tried again here; the agent's actor reports the loss once.
        if (a.lost && !a.connected && a.convs.size > 0) await agentLost(state, a.agent, ctx);
      }
      await drain(state, ctx);
      await receptionBehaviour(state, { type: 'reception' }, ctx, opsOf(state, ctx));
      return {};
    }
    default:
      throw new SwitchboardError('invalid_field', 'unknown queue message');
  }
}
