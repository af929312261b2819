/**
 * The desk ticker: every `tickMs`, each member wakes the queue actors of the shards it holds, for the
 * tenants the tenants file gives desk settings (a no-reply time or business hours). A queue actor arms
 * its own timers (actors/reception/queue-reception.ts), but timers live in one member's memory: after the
 * queue's shard moved, nothing else may activate the queue on its new owner before a reply wait runs
 * out or the desk opens. The tick does (the actor rebuilds its timers from its tables on activation).
 * Tenants that get desk settings from `defaults` only are woken by their own traffic.
 */
import type { QueueMessage } from '../../actors/queue.js';
import { QUEUE_ACTOR_ID } from '../routing/actor-kind.js';
import { shardOf } from '../routing/shard.js';
import type { ReceptionSettings } from './settings.js';

export interface ReceptionTickerDeps {
  /** The tenants the file lists. */
  tenantIds(): readonly string[];
  settings(tenant: string): ReceptionSettings;
  holds(shard: number): boolean;
  ask(tenant: string, id: string, msg: QueueMessage): Promise<unknown>;
  warn(obj: object, msg: string): void;
}

/** Starts the ticker; returns its stop function. */
export function startReceptionTicker(deps: ReceptionTickerDeps, tickMs: number): () => void {
  const timer = setInterval(() => {
    for (const tenant of deps.tenantIds()) {
      const s = deps.settings(tenant);
      if (s.noReplyReassignMs <= 0 && s.hours === null) continue;
      if (!deps.holds(shardOf(tenant, QUEUE_ACTOR_ID))) continue;
      deps
        .ask(tenant, QUEUE_ACTOR_ID, { type: 'reception' })
        .catch((err: unknown) => deps.warn({ err, tenant }, 'desk tick failed'));
    }
  }, tickMs);
  timer.unref();
  return () => clearInterval(timer);
}
