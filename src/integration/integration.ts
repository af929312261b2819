/**
 * The business-system integration of one member, wired: the JetStream streams, the rules registry
 * following the tenants file, the business events consumer, webhook delivery, context look-ups (pushed
 * to an agent when a conversation is assigned to them, and on request), and agent actions.
 */
import type { ClusterNames } from '../cluster/names.js';
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import type { NodeConfig } from '../config.js';
import { SwitchboardError } from '../protocol/errors.js';
import {
  type ActionCaller,
  type ActionRequest,
  type ActionResult,
  AgentActions,
  type AuditLog,
} from './actions.js';
import type { ChatPort, UserPush } from './chat-port.js';
import { ContextLookup, type ContextResult, type ContextStats } from './context.js';
import { BizEventsConsumer, type EventOutcome, type EventsInStats } from './events-in.js';
import { RulesRegistry } from './rules-registry.js';
import type { IntegrationSource } from './settings.js';
import { ensureIntegrationStreams } from './streams.js';
import { WebhookDelivery, type WebhookStats } from './webhooks.js';

/** Queue group of the context push: one member per assignment event looks context up. */
export const CONTEXT_PUSH_QUEUE = 'sb-context';
const ACK_WAIT_MS = 30_000;
const RULE_RETRY_BACKOFF_MS = 200;

export interface IntegrationDeps {
  config: Readonly<NodeConfig>;
  transport: Transport;
  names: ClusterNames;
  source: IntegrationSource;
  chat: ChatPort;
  audit: AuditLog;
  push: UserPush;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  onEventOutcome?: (o: EventOutcome) => void;
  /** Hears when each part of the start ends (`streams`, `rules`, `events`, `webhooks`): the node's `startMs`. */
  step?: (name: string) => void;
}

export interface ContextFrame extends Omit<ContextResult, 'tookMs'> {
  type: 'context';
  ts: number;
}

export interface Integration {
  /** Context for an agent's conversation (the `context {conv}` frame); rejects `not_found` / `forbidden`. */
  contextFor(caller: { tenant: string; user: string }, conv: string, fresh?: boolean): Promise<ContextFrame>;
  /** Runs an agent action (the `action` frame): see AgentActions.invoke. */
  action(caller: ActionCaller, req: ActionRequest): Promise<ActionResult>;
  stats(): { events: EventsInStats; webhooks: WebhookStats; context: ContextStats };
  stop(): Promise<void>;
}

/** The integration with its JetStream setup done, not yet consuming or subscribed. */
export interface PreparedIntegration {
  /** Consumes business events and webhooks, subscribes to assignments: makes no setup request of its own. */
  start(): Promise<Integration>;
  /** Gives up a prepared integration whose start failed or never came (the node's start failed). */
  stop(): void;
}

/** Prepares and starts at once (the node prepares early and starts once it holds shards). */
export async function startIntegration(deps: IntegrationDeps): Promise<Integration> {
  return (await prepareIntegration(deps)).start();
}

/**
 * Every JetStream setup request of the integration (its streams, the business events consumer, the
 * webhook consumer when a tenant has webhooks), and the rules. A node does this before it takes shards:
 * once it holds them its loop serves their traffic, and a restarted owner's setup waited seconds behind
 * it (bench connections kill storm, 2026-12-07: 19 s for the events consumer).
 */
export async function prepareIntegration(deps: IntegrationDeps): Promise<PreparedIntegration> {
  const { config, transport, names, source, chat, log } = deps;
  const step = deps.step ?? (() => {});
  const ic = config.integration;
  const js = transport.jetstream();
  await ensureIntegrationStreams(js, names, ic);
  step('streams');

  const rules = new RulesRegistry(log, ic.rulesPollMs);
  const syncRules = () =>
    rules.sync(source.rulesFiles()).catch((err) => log.error({ err }, 'rules registry sync failed'));
  await syncRules();
  step('rules');
  const unwatch = source.onChange(() => void syncRules());

  const events = new BizEventsConsumer(
    js,
    names,
    rules,
    chat,
    deps.push,
    {
      inFlight: ic.eventsInFlight,
      ackWaitMs: ACK_WAIT_MS,
      maxDeliver: ic.eventsMaxDeliver,
      eventMaxBytes: ic.eventMaxBytes,
      maxRenderedChars: config.gateway.maxBodyChars,
      retryBackoffMs: RULE_RETRY_BACKOFF_MS,
    },
    log,
    deps.onEventOutcome,
  );
  const webhooks = new WebhookDelivery(
    js,
    names,
    source,
    {
      maxAttempts: ic.webhookMaxAttempts,
      backoffMs: ic.webhookBackoffMs,
      maxBackoffMs: ic.webhookMaxBackoffMs,
      timeoutMs: ic.webhookTimeoutMs,
      inFlight: ic.webhookInFlight,
      breakerFailures: ic.breakerFailures,
      breakerOpenMs: ic.breakerOpenMs,
      ackWaitMs: ACK_WAIT_MS,
      maxDeliver: ic.eventsMaxDeliver,
    },
    log,
  );
  const context = new ContextLookup(transport, names, source, {
    cacheEntries: ic.contextCacheEntries,
    breakerFailures: ic.breakerFailures,
    breakerOpenMs: ic.breakerOpenMs,
  });
  const actions = new AgentActions(transport, names, source, chat, deps.audit);

  const frameOf = (r: ContextResult): ContextFrame => ({
    type: 'context',
    conv: r.conv,
    items: r.items,
    missing: r.missing,
    cached: r.cached,
    ts: Date.now(),
  });

  // Assignment → context pushed to the agent who got the conversation (one member per event).
  const pushContext = async (tenant: string, conv: string, agent: string) => {
    if (source.tenant(tenant).context.kinds.length === 0) return;
    const view = await chat.conversation(tenant, conv);
    if (!view || view.agent !== agent) return;
    const r = await context.lookup(tenant, conv, { visitor: view.visitor, agent });
    deps.push(tenant, agent, frameOf(r) as unknown as Record<string, unknown>);
  };
  await events.prepare();
  await webhooks.prepare();
  step('consumers');

  const start = async (): Promise<Integration> => {
    const subs: TransportSubscription[] = ['assigned', 'transferred'].map((type) =>
      transport.subscribe(
        names.outSubject('*', type),
        (m) => {
          let e: { tenant?: unknown; conv?: unknown; agent?: unknown; to?: { agent?: unknown } };
          try {
            e = JSON.parse(new TextDecoder().decode(m.data));
          } catch {
            return;
          }
          const agent = typeof e.agent === 'string' ? e.agent : e.to?.agent;
          if (typeof e.tenant !== 'string' || typeof e.conv !== 'string' || typeof agent !== 'string') return;
          pushContext(e.tenant, e.conv, agent).catch((err) =>
            log.warn({ err, tenant: e.tenant, conv: e.conv }, 'context push failed'),
          );
        },
        { queue: CONTEXT_PUSH_QUEUE },
      ),
    );

    await events.start();
    step('events');
    await webhooks.start();
    step('webhooks');

    return {
      async contextFor(caller, conv, fresh = false) {
        const view = await chat.conversation(caller.tenant, conv);
        if (!view) throw new SwitchboardError('not_found', 'no such conversation');
        if (view.agent !== caller.user)
          throw new SwitchboardError('forbidden', 'the conversation is not assigned to you');
        return frameOf(
          await context.lookup(caller.tenant, conv, { visitor: view.visitor, agent: caller.user }, { fresh }),
        );
      },
      action: (caller, req) => actions.invoke(caller, req),
      stats: () => ({ events: events.stats(), webhooks: webhooks.stats(), context: context.stats() }),
      async stop() {
        unwatch();
        for (const s of subs) s.unsubscribe();
        await Promise.allSettled([events.stop(), webhooks.stop()]);
        rules.close();
      },
    };
  };
  return {
    start,
    stop() {
      unwatch();
      rules.close();
    },
  };
}
