/**
 * The behaviours the shard routers host, by actor kind (src/routing/actor-kind.ts): how each
 * kind's state is loaded on activation and which effects its context has. Actor-to-actor requests
 * go through `actors` (the dispatcher), so they reach the owner wherever it lives.
 */
import {
  type AgentLimits,
  type AgentMessage,
  type AgentState,
  agentBehaviour,
  initialAgentState,
  stopAgent,
} from '../../actors/agent.js';
import {
  type ConversationContext,
  type ConversationMessage,
  type ConversationState,
  conversationBehaviour,
  initialState,
} from '../../actors/conversation.js';
import {
  initialQueueState,
  type QueueLimits,
  type QueueMessage,
  type QueueState,
  queueBehaviour,
  startQueue,
  stopQueue,
} from '../../actors/queue.js';
import { initialReceptionState, type QueueReceptionContext } from '../../actors/reception/queue-reception.js';
import { loadedReplyWait, type ReplyWaitContext } from '../../actors/reception/reply-wait.js';
import type { Clock } from '../clock.js';
import type { EventPublisher } from '../integration/events.js';
import type { ReceptionSettings } from '../reception/settings.js';
import {
  type ActorBehaviour,
  type ActorHosting,
  agentActorId,
  parseActorId,
  QUEUE_ACTOR_ID,
} from '../routing/actor-kind.js';
import type { CachedHistoryStore } from '../store/cache.js';
import type { ChatStore } from '../store/chat-store.js';
import type { DeskStore } from '../store/desk-store.js';
import type { ReceptionStore } from '../store/reception-store.js';
import type { HistoryStore, MessageRow } from '../store/types.js';
import type { ActorAsker } from './service.js';

export interface HostingDeps {
  store: Pick<HistoryStore, 'append' | 'saveConversation' | 'loadSnapshot' | 'sealAbove' | 'message'> &
    Partial<Pick<CachedHistoryStore, 'cachedAfter'>>;
  /** The labels table (issue #17). */
  desk?: Pick<DeskStore, 'saveLabels'>;
  chat: ChatStore;
  clock: Clock;
  newId(): string;
  /** Late-bound: the dispatcher is built after the routers that host these behaviours. */
  actors: ActorAsker;
  deliver(row: MessageRow, users: readonly string[], visitor?: string): void;
  notify(tenant: string, users: readonly string[], frame: Record<string, unknown>): void;
  events: EventPublisher;
  limits: {
    recentCmids: number;
    /** Newest messages pushed to a newly assigned agent (from the history cache). */
    cacheRows: number;
    queue: QueueLimits;
    agent: AgentLimits;
  };
  warn(obj: object, msg: string): void;
  /** Reception (src/reception/, issue #17 items 5-7): its tables and each tenant's settings; absent: off. */
  reception?: { store: ReceptionStore; settings(tenant: string): ReceptionSettings };
}

export function createHosting(deps: HostingDeps): ActorHosting {
  const rc = deps.reception;
  const replyWait: ReplyWaitContext | undefined = rc && {
    reassignMs: (tenant) => rc.settings(tenant).noReplyReassignMs,
    save: (tenant, row, at) => {
      rc.store
        .saveReplyWait(tenant, row, at)
        .catch((err: unknown) => deps.warn({ err, tenant, conv: row.conv }, 'reply wait not stored'));
    },
    remove: (tenant, conv, at) => {
      rc.store
        .removeReplyWait(tenant, conv, at)
        .catch((err: unknown) => deps.warn({ err, tenant, conv }, 'reply wait not removed'));
    },
    tellQueue: (tenant, msg) => {
      deps.actors
        .ask(tenant, QUEUE_ACTOR_ID, msg)
        .catch((err: unknown) => deps.warn({ err, tenant }, 'reply wait not told to the queue'));
    },
  };
  const conversation: ActorBehaviour<ConversationState, ConversationMessage> = {
    async load(tenant, conv, fence) {
      const timed = replyWait !== undefined && replyWait.reassignMs(tenant) > 0;
      const [snap, meta, receipts, wait] = await Promise.all([
        deps.store.loadSnapshot(tenant, conv, deps.limits.recentCmids),
        deps.chat.loadMeta(tenant, conv),
        deps.chat.loadReceipts(tenant, conv),
        timed ? rc!.store.loadReplyWait(tenant, conv) : null,
      ]);
      // The takeover seal: a write of an earlier owner (or of this member before a fence or a
      // passivation) that is still on its way cannot land above the last seq read here; only then is
      // lastSeq + 1 free to give out (docs/ARCHITECTURE.md, "Takeover").
      if (snap.record !== null || snap.lastSeq > 0) {
        await deps.store.sealAbove(tenant, conv, snap.lastSeq, fence());
        fence();
      }
      const state = initialState(
        tenant,
        conv,
        snap,
        deps.limits.recentCmids,
        meta,
        receipts,
        deps.limits.cacheRows,
      );
      if (timed) state.replyWait = loadedReplyWait(wait, meta?.status);
      return state;
    },
    receive(state, msg, fence) {
      const ctx: ConversationContext = {
        store: deps.store,
        chat: deps.chat,
        clock: deps.clock,
        fence,
        newId: deps.newId,
        deliver: deps.deliver,
        notify: deps.notify,
        emit: (e, bodyMasked) => deps.events.emit(e, bodyMasked),
        ...(deps.desk ? { desk: deps.desk } : {}),
        readMessage: deps.store.message.bind(deps.store),
        ...(deps.store.cachedAfter ? { recentRows: deps.store.cachedAfter.bind(deps.store) } : {}),
        ...(replyWait ? { replyWait } : {}),
      };
      return conversationBehaviour(state, msg, ctx);
    },
  };

  const queue: ActorBehaviour<QueueState, QueueMessage> = {
    async load(tenant) {
      const q = deps.limits.queue;
      const [profiles, waiting, waits, left, bots] = await Promise.all([
        deps.chat.loadAgents(tenant, q.maxAgents),
        deps.chat.loadQueue(tenant, q.maxWaiting * 2),
        rc ? rc.store.loadReplyWaits(tenant, q.maxAgents * q.maxCapacity) : [],
        rc ? rc.store.loadLeftMessages(tenant, rc.settings(tenant).hours?.leaveMaxStored ?? 1) : [],
        rc ? rc.store.loadBotSessions(tenant, q.maxWaiting) : [],
      ]);
      const convsOf = new Map<string, string[]>();
      await Promise.all(
        profiles.map(async (p) => {
          const open = await deps.chat.listOpen(tenant, p.agent, deps.limits.queue.maxCapacity);
          convsOf.set(
            p.agent,
            open.filter((o) => o.role === 'agent').map((o) => o.conv),
          );
        }),
      );
      const state = initialQueueState(
        tenant,
        deps.limits.queue,
        profiles,
        convsOf,
        waiting,
        deps.clock.now(),
        initialReceptionState(waits, left, bots, deps.clock.now()),
      );
      startQueue(
        state,
        queueCtx(tenant, () => deps.clock.now()),
      );
      return state;
    },
    receive(state, msg, fence) {
      return queueBehaviour(state, msg, queueCtx(state.tenant, fence));
    },
    passivate: stopQueue,
  };

  function queueCtx(tenant: string, fence: () => number) {
    return {
      chat: deps.chat,
      clock: deps.clock,
      fence,
      askConversation: (conv: string, msg: unknown) => deps.actors.ask(tenant, conv, msg),
      pingAgent: (agent: string) => {
        deps.actors
          .ask(tenant, agentActorId(agent), { type: 'report' } satisfies AgentMessage)
          .catch((err: unknown) => deps.warn({ err, tenant, agent }, 'agent report failed'));
      },
      tellSelf: (msg: QueueMessage) => {
        deps.actors
          .ask(tenant, QUEUE_ACTOR_ID, msg)
          .catch((err: unknown) => deps.warn({ err, tenant }, 'queue tick failed'));
      },
      notify: (users: readonly string[], frame: Record<string, unknown>) => deps.notify(tenant, users, frame),
      warn: deps.warn,
      ...(rc ? { reception: receptionCtx(tenant, rc) } : {}),
    };
  }

  function receptionCtx(tenant: string, d: NonNullable<HostingDeps['reception']>): QueueReceptionContext {
    return { settings: () => d.settings(tenant), store: d.store, newId: deps.newId };
  }

  const agent: ActorBehaviour<AgentState, AgentMessage> = {
    async load(tenant, id) {
      const name = parseActorId(id).key;
      const stored = await deps.chat.loadAgent(tenant, name);
      return initialAgentState(tenant, name, stored, deps.limits.agent, deps.clock.now());
    },
    receive(state, msg, fence) {
      return agentBehaviour(state, msg, {
        chat: deps.chat,
        clock: deps.clock,
        fence,
        askQueue: (m) => deps.actors.ask(state.tenant, QUEUE_ACTOR_ID, m),
        later: (ms, m) => {
          const t = setTimeout(() => {
            deps.actors
              .ask(state.tenant, agentActorId(state.agent), m)
              .catch((err: unknown) => deps.warn({ err, agent: state.agent }, 'agent timer message failed'));
          }, ms);
          t.unref();
          return t;
        },
      });
    },
    passivate: stopAgent,
  };

  return (_tenant, id) => {
    switch (parseActorId(id).kind) {
      case 'queue':
        return queue as ActorBehaviour;
      case 'agent':
        return agent as ActorBehaviour;
      default:
        return conversation as ActorBehaviour;
    }
  };
}
