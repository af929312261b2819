/**
 * What the shard routers host: every actor is addressed by `(tenant, id)` and lives on shard
 * `shardOf(tenant, id)`, so ownership, handover, fencing and failover apply to all kinds alike.
 *
 * Actor ids: a conversation's id is its `conv` (the protocol's identifier pattern, printable
 * ASCII only), so its shard is the documented `shardOf(tenant, conv)`. Other kinds use ids that
 * start with a control character, which no conversation id can contain, so they never collide:
 * the tenant's queue actor is `"\u0001queue"`, an agent's actor `"\u0001agent\u0001<agent id>"`.
 */
export const QUEUE_ACTOR_ID = '\u0001queue';
const AGENT_PREFIX = '\u0001agent\u0001';

export type ActorKindName = 'conversation' | 'queue' | 'agent';

export function agentActorId(agent: string): string {
  return `${AGENT_PREFIX}${agent}`;
}

/** Which kind of actor an id names, and the domain id inside it. */
export function parseActorId(id: string): { kind: ActorKindName; key: string } {
  if (id === QUEUE_ACTOR_ID) return { kind: 'queue', key: '' };
  if (id.startsWith(AGENT_PREFIX)) return { kind: 'agent', key: id.slice(AGENT_PREFIX.length) };
  return { kind: 'conversation', key: id };
}

/**
 * A hosted behaviour. `load` builds the state on activation (from the store: the actor may have
 * lived on another node before; `fence` as below, for a load that writes, such as the takeover seal); `receive` handles one message at a time and resolves with the
 * reply, or rejects with a SwitchboardError the caller gets. `fence` returns the write time while
 * this node holds the actor's shard with a valid lease and throws `unavailable` otherwise; actors
 * call it before and after every write (docs/ARCHITECTURE.md, "Fencing").
 */
export interface ActorBehaviour<S = unknown, M = unknown> {
  load(tenant: string, id: string, fence: () => number): Promise<S>;
  receive(state: S, msg: M, fence: () => number): Promise<unknown>;
  /** Optional: the cell is dropped (timers to cancel). */
  passivate?(state: S): void;
}

/** Chooses the behaviour for an actor id (by its kind). */
export type ActorHosting = (tenant: string, id: string) => ActorBehaviour;
