/**
 * The agent actor (one per agent, actor id agentActorId(agent)): the agent's profile (status,
 * capacity, skills; persisted in `agents`) and its presence — how many sockets each gateway node
 * holds for it, refreshed by the nodes' heartbeats. When the agent has had no socket anywhere for
 * the grace period it tells the tenant queue actor `agentLost`, which re-queues its conversations.
 * It reports every change of profile or connectivity to the queue actor (the only actor it asks).
 */
import type { Clock } from '../src/clock.js';
import { SwitchboardError } from '../src/protocol/errors.js';
import type { AgentProfile, AgentStatus, ChatStore } from '../src/store/chat-store.js';
import type { QueueMessage } from './queue.js';

export interface AgentLimits {
  defaultCapacity: number;
  maxCapacity: number;
  maxSkills: number;
  /** How long an agent may have no socket before its conversations are re-queued (ms). */
  graceMs: number;
  /** A node's presence report older than this is void (the node died): ms. */
  presenceTtlMs: number;
}

export type AgentMessage =
  | { type: 'presence'; node: string; sockets: number }
  | { type: 'setStatus'; status: AgentStatus; capacity?: number; skills?: string[] }
  | { type: 'check' }
  | { type: 'report' }
  | { type: 'view' };

export interface AgentView {
  tenant: string;
  agent: string;
  status: AgentStatus;
  capacity: number;
  skills: string[];
  connected: boolean;
  /** Conversations held, as the tenant queue counts them. */
  load: number;
}

export interface AgentState {
  readonly tenant: string;
  readonly agent: string;
  profile: AgentProfile;
  /** node -> sockets there and when that was last reported. */
  readonly nodes: Map<string, { sockets: number; seenAt: number }>;
  connected: boolean;
  /** Since when the agent has had no socket (null while connected). */
  disconnectedAt: number | null;
  lostReported: boolean;
  /** A change of connectivity the queue has not been told of yet (its report failed): told at the next check. */
  reportDue: boolean;
  timer: NodeJS.Timeout | undefined;
  readonly limits: AgentLimits;
}

export interface AgentContext {
  chat: Pick<ChatStore, 'saveAgent'>;
  clock: Clock;
  fence(): number;
  askQueue(msg: QueueMessage): Promise<{ load?: number }>;
  /** Sends a message to this actor after `ms` (through the dispatcher, wherever it lives then). */
  later(ms: number, msg: AgentMessage): NodeJS.Timeout;
}

const SKILL_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export function initialAgentState(
  tenant: string,
  agent: string,
  stored: AgentProfile | null,
  limits: AgentLimits,
  now: number,
): AgentState {
  return {
    tenant,
    agent,
    // An agent never configured starts online with the default capacity and no skills.
    profile: stored ?? {
      agent,
      status: 'online',
      capacity: limits.defaultCapacity,
      skills: [],
      updatedAt: 0,
    },
    nodes: new Map(),
    connected: false,
    disconnectedAt: now,
    lostReported: false,
    reportDue: false,
    timer: undefined,
    limits,
  };
}

export function stopAgent(state: AgentState): void {
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
}

function recompute(state: AgentState, now: number): void {
  for (const [node, p] of state.nodes)
    if (p.sockets <= 0 || now - p.seenAt > state.limits.presenceTtlMs) state.nodes.delete(node);
  const connected = state.nodes.size > 0;
  if (connected) {
    state.disconnectedAt = null;
    state.lostReported = false;
  } else if (state.connected || state.disconnectedAt === null) {
    state.disconnectedAt = now;
  }
  // Every change of connectivity is owed to the queue until a report of it gets through.
  if (connected !== state.connected) state.reportDue = true;
  state.connected = connected;
}

/**
 * After a check whose ask of the queue failed, the next check comes this soon (ms; at most the
 * presence TTL): the queue is asked again instead of never.
 */
export const AGENT_CHECK_RETRY_MS = 1000;

/** One timer at a time: while connected it re-checks node freshness, else it waits for the grace end. */
function schedule(state: AgentState, ctx: AgentContext, now: number): void {
  stopAgent(state);
  if (state.connected) {
    state.timer = ctx.later(state.limits.presenceTtlMs, { type: 'check' });
  } else if (!state.lostReported && state.disconnectedAt !== null) {
    state.timer = ctx.later(Math.max(1, state.disconnectedAt + state.limits.graceMs - now), {
      type: 'check',
    });
  }
}

async function report(state: AgentState, ctx: AgentContext): Promise<number> {
  const p = state.profile;
  const r = await ctx.askQueue({
    type: 'agent',
    agent: state.agent,
    status: p.status,
    capacity: p.capacity,
    skills: p.skills,
    connected: state.connected,
    lost: !state.connected && state.lostReported,
  });
  state.reportDue = false;
  return r.load ?? 0;
}

function view(state: AgentState, load: number): AgentView {
  const p = state.profile;
  return {
    tenant: state.tenant,
    agent: state.agent,
    status: p.status,
    capacity: p.capacity,
    skills: p.skills,
    connected: state.connected,
    load,
  };
}

function validate(state: AgentState, msg: Extract<AgentMessage, { type: 'setStatus' }>): AgentProfile {
  if (!['online', 'away', 'offline'].includes(msg.status))
    throw new SwitchboardError('invalid_field', 'status must be online, away or offline');
  const capacity = msg.capacity ?? state.profile.capacity;
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > state.limits.maxCapacity)
    throw new SwitchboardError(
      'invalid_field',
      `capacity must be an integer from 0 to ${state.limits.maxCapacity}`,
    );
  const skills = msg.skills ?? state.profile.skills;
  if (!Array.isArray(skills) || skills.length > state.limits.maxSkills)
    throw new SwitchboardError('invalid_field', `skills must be a list of at most ${state.limits.maxSkills}`);
  for (const s of skills)
    if (typeof s !== 'string' || !SKILL_PATTERN.test(s))
      throw new SwitchboardError('invalid_field', 'a skill must be 1-32 characters of A-Z a-z 0-9 _ -');
  return {
    agent: state.agent,
    status: msg.status,
    capacity,
    skills: [...new Set(skills)].sort(),
    updatedAt: 0,
  };
}

export async function agentBehaviour(
  state: AgentState,
  msg: AgentMessage,
  ctx: AgentContext,
): Promise<unknown> {
  const now = ctx.clock.now();
  switch (msg.type) {
    case 'presence': {
      if (msg.sockets > 0) state.nodes.set(msg.node, { sockets: msg.sockets, seenAt: now });
      else state.nodes.delete(msg.node);
      recompute(state, now);
      schedule(state, ctx, now);
      if (state.reportDue) await report(state, ctx);
      return { connected: state.connected };
    }
    case 'check': {
      recompute(state, now);
      try {
        if (state.reportDue) await report(state, ctx);
        if (
          !state.connected &&
          !state.lostReported &&
          state.disconnectedAt !== null &&
          now - state.disconnectedAt >= state.limits.graceMs
        ) {
          await ctx.askQueue({ type: 'agentLost', agent: state.agent });
          state.lostReported = true;
        }
      } catch (err) {
        // The queue did not answer (moving, busy, cut off): the check is armed again before the error
        // leaves, or this agent would be checked only when something else asks it.
        stopAgent(state);
        state.timer = ctx.later(Math.min(AGENT_CHECK_RETRY_MS, state.limits.presenceTtlMs), {
          type: 'check',
        });
        throw err;
      }
      schedule(state, ctx, now);
      return { connected: state.connected };
    }
    case 'setStatus': {
      const next = validate(state, msg);
      const at = ctx.fence();
      next.updatedAt = at;
      await ctx.chat.saveAgent(state.tenant, next);
      ctx.fence();
      state.profile = next;
      return view(state, await report(state, ctx));
    }
    case 'report': {
      recompute(state, now);
      schedule(state, ctx, now);
      return view(state, await report(state, ctx));
    }
    case 'view':
      return view(state, await report(state, ctx));
    default:
      throw new SwitchboardError('invalid_field', 'unknown agent message');
  }
}
