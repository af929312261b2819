/**
 * The desk ticker: every `tickMs`, each member wakes the queue actors of the shards it holds, for every
 * tenant the tenants file lists. Timers live in one member's memory: a queue arms its own (its sweep, a
 * reply wait, the desk's opening; actors/reception/queue-reception.ts), and after the queue's shard moved
 * nothing else may activate it on its new owner. Without the tick, a member's stop left a gone agent's
 * conversations with it until the tenant's next traffic: the agent's actor that would report the loss had
 * moved too, and the queue asks it only from its sweep. Tenants that are not in the file (settings from
 * `defaults` only) are still woken by their own traffic.
 */
import type { QueueMessage } from '../../actors/queue.js';
import { QUEUE_ACTOR_ID } from '../routing/actor-kind.js';
import { shardOf } from '../routing/shard.js';

export interface ReceptionTickerDeps {
  /** The tenants the file lists. */
  tenantIds(): readonly string[];
  holds(shard: number): boolean;
  ask(tenant: string, id: string, msg: QueueMessage): Promise<unknown>;
  warn(obj: object, msg: string): void;
}

/** Starts the ticker; returns its stop function. */
export function startReceptionTicker(deps: ReceptionTickerDeps, tickMs: number): () => void {
  const timer = setInterval(() => {
    for (const tenant of deps.tenantIds()) {
      if (!deps.holds(shardOf(tenant, QUEUE_ACTOR_ID))) continue;
      deps
        .ask(tenant, QUEUE_ACTOR_ID, { type: 'reception' })
        .catch((err: unknown) => deps.warn({ err, tenant }, 'desk tick failed'));
    }
  }, tickMs);
  timer.unref();
  return () => clearInterval(timer);
}
