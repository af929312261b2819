/**
 * Composition root of one broker node (one cluster member): NATS transport, membership, the
 * history store, the worker pool, the shard routers and the gateway, wired together.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ChatApi } from './chat/api.js';
import { createHosting } from './chat/hosting.js';
import { ChatService } from './chat/service.js';
import { systemClock } from './clock.js';
import { withClusterLock } from './cluster/lock.js';
import { Membership } from './cluster/membership.js';
import { clusterNames } from './cluster/names.js';
import { ShardOwnership } from './cluster/ownership.js';
import { connectTransport } from './cluster/transport.js';
import { TurnFlush } from './cluster/turn-flush.js';
import type { NodeConfig } from './config.js';
import { ContentPolicies } from './content/policies.js';
import { agentBodies } from './content/screen.js';
import { DeskService } from './desk/service.js';
import { buildKeySet, createAuthenticator } from './gateway/auth.js';
import { type Gateway, startGateway } from './gateway/server.js';
import { newId } from './ids.js';
import { createEventPublisher } from './integration/events.js';
import { type Integration, prepareIntegration } from './integration/integration.js';
import { consumesOutEvent } from './integration/settings.js';
import { tenantIntegrationSource } from './integration/tenant-source.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { workerNodeMetrics } from './node-metrics.js';
import { isNodeDraining, processChannel } from './parent-channel.js';
import { createTextPool } from './pool/text-pool.js';
import { PRESENCE_LINGER_MS, Presence } from './presence/presence.js';
import { msgpackEncode } from './protocol/codec.js';
import { agentItemIsMessageItem, type MsgFrame, toAgentItem, toMessageItem } from './protocol/frames.js';
import { ReceptionService } from './reception/service.js';
import { receptionSettingsOf } from './reception/settings.js';
import { startReceptionTicker } from './reception/ticker.js';
import { Dispatcher } from './routing/dispatcher.js';
import { MemberLink } from './routing/member-link.js';
import { shardOf } from './routing/shard.js';
import { ShardRouters } from './routing/shard-routers.js';
import { plainEncoder, poolEncoder } from './store/body-codec.js';
import { CachedHistoryStore } from './store/cache.js';
import { openCassandraStore } from './store/cassandra-store.js';
import type { MessageRow } from './store/types.js';
import { traceTransport } from './telemetry/nats.js';
import { startTracing, stopTracing } from './telemetry/tracing.js';
import { TenantRegistry } from './tenants.js';

export interface BrokerNode {
  readonly nodeId: string;
  /** The port the gateway listens on (useful when configured as 0). */
  readonly port: number;
  /** The conversation facade (HTTP API and integrations call it). */
  readonly chat: ChatApi;
  /** Graceful stop: closes sockets (reconnect elsewhere), leaves the cluster, flushes the writer. */
  stop(): Promise<void>;
}

export async function startNode(
  config: Readonly<NodeConfig>,
  log: Logger = createLogger(config),
): Promise<BrokerNode> {
  // When each start step ended, ms since the process began: in the `node ready` line.
  const startMs: Record<string, number> = {};
  // How late this process's event loop ran while it started: a slow step on a busy loop (the traffic a
  // restarted owner takes once it holds shards) reads apart from one waiting on a slow server.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const startLoopDelayMs = () => {
    loopDelay.disable();
    return { max: Math.round(loopDelay.max / 1e6), p99: Math.round(loopDelay.percentile(99) / 1e6) };
  };
  try {
    return await startSteps(config, log, startMs, startLoopDelayMs);
  } catch (err) {
    // The steps that ended say where a start failed: a NATS `TIMEOUT` names no step of its own (a
    // restarted worker exited on one, bench connections kill storm, 2026-12-07). The stack goes with it.
    log.fatal({ err, startMs, startLoopDelayMs: startLoopDelayMs() }, 'node start failed');
    throw err;
  }
}

async function startSteps(
  config: Readonly<NodeConfig>,
  log: Logger,
  startMs: Record<string, number>,
  startLoopDelayMs: () => { max: number; p99: number },
): Promise<BrokerNode> {
  const started = (name: string): void => {
    startMs[name] = Math.round(performance.now());
  };
  // First: a bad tenants file stops the start before anything connects.
  const tenants = await TenantRegistry.open({
    file: config.tenants.file,
    debounceMs: config.tenants.reloadDebounceMs,
    log,
  });
  const auth = createAuthenticator(config.auth.jwtSecret);
  // Token keys by kid come from the tenants file; a reload whose keys do not import is refused.
  await tenants.use(async (next) => {
    const keys = await buildKeySet(next);
    return () => auth.setKeys(keys);
  });
  // trace: OpenTelemetry when OTEL_* asks for it (off by default); context rides in NATS headers.
  if (await startTracing(config.telemetry.tracing, config.nodeId)) log.info('tracing on');
  started('tenants');
  const transport = traceTransport(
    await connectTransport(
      config.nats.servers,
      `switchboard:${config.nodeId}`,
      (subject, err) => log.error({ err, subject }, 'a NATS message handler threw; message dropped'),
      {
        replicas: config.nats.replicas,
        onSetupRetry: (what, err, attempt, backoffMs) =>
          log.warn({ err, what, attempt, backoffMs, startMs }, 'NATS setup call failed; trying again'),
      },
    ),
  );
  started('nats');
  // Frames for users (msg, notifications) reach their sockets through the presence directory
  // (src/presence/): no NATS subscription per user. Built once membership and ownership exist, below.
  let presence: Presence | undefined;
  const toUsers = (tenant: string, users: readonly string[], bytes: Uint8Array): void => {
    presence?.push(tenant, users, bytes);
  };
  // Missing migrations run under a cluster lock, one node at a time (see src/cluster/lock.ts).
  const names = clusterNames(config.cluster);
  // With compressed history, a chat text is encoded for storage in its screen's pool task.
  const pool = createTextPool({ ...config.pool, storeScreened: config.storage.compress });
  const content = new ContentPolicies(tenants, { log });
  const cassandraStore = await openCassandraStore(
    {
      contactPoints: config.cassandra.contactPoints,
      localDataCenter: config.cassandra.localDataCenter,
      keyspace: config.cassandra.keyspace,
      replication: config.cassandra.replication,
      consistency: config.cassandra.consistency,
      cmidTtlS: config.storage.cmidTtlS,
      requestTimeoutMs: config.storage.requestTimeoutMs,
      requestsInFlight: config.storage.requestsInFlight,
      requestsWaiting: config.storage.requestsWaiting,
      writer: {
        maxPendingRows: config.storage.writerMaxPending,
        maxInFlight: config.storage.writerMaxInFlight,
        maxAttempts: config.storage.writerMaxAttempts,
        maxBatchPartitions: config.storage.writerMaxBatchPartitions,
        lingerMs: config.storage.writerLingerMs,
      },
    },
    {
      // Bodies are compressed on the pool, micro-batched across every row being written.
      encoder: config.storage.compress ? poolEncoder(pool) : plainEncoder,
      // Each message row's TTL: the tenant's retention (tenants file, hot-reloaded); 0 = kept.
      retentionS: (tenant) => tenants.tenant(tenant).retention.days * 86_400,
      migrationLock: (migrate) =>
        withClusterLock(transport, `migrate-${config.cassandra.keyspace}`, migrate, {
          bucket: names.locksBucket,
        }),
    },
  ).catch(async (err: unknown) => {
    await pool.close();
    throw err;
  });
  started('store');

  // The visitor gets the body as written; agents get it with PII masked (computed at send on the
  // pool: row.agentBody; system and bot posts are masked here first) and the review flag.
  const deliver = (row: MessageRow, users: readonly string[], visitor?: string): void => {
    const agents = users.filter((user) => user !== visitor);
    let visitorFrame: Uint8Array | undefined;
    if (visitor !== undefined && agents.length < users.length) {
      visitorFrame = msgpackEncode({ type: 'msg', ...toMessageItem(row) });
      toUsers(row.tenant, [visitor], visitorFrame);
    }
    if (agents.length === 0) return;
    const toAgents = (body: string): void => {
      toUsers(
        row.tenant,
        agents,
        // Nothing masked and nothing to review: the agents' frame is the visitor's, byte for byte.
        visitorFrame !== undefined && agentItemIsMessageItem(row, body)
          ? visitorFrame
          : msgpackEncode({ type: 'msg', ...toAgentItem(row, body) } satisfies MsgFrame),
      );
    };
    if (row.agentBody !== undefined) toAgents(row.agentBody);
    else
      agentBodies(pool, [row]).then(
        ([body]) => toAgents(body ?? ''),
        (err: unknown) =>
          log.warn({ err, conv: row.conv, seq: row.seq }, 'PII masking failed; agents sync it later'),
      );
  };
  const notify = (tenant: string, users: readonly string[], frame: Record<string, unknown>): void => {
    toUsers(tenant, users, msgpackEncode(frame));
  };
  const chatStore = cassandraStore.chatStore();
  // Filled in below; the routers ask it before and after every write (the fence), the cache before
  // it trusts an entry.
  let ownership: ShardOwnership | undefined;
  // Conversation records and recent tails of the conversations this member owns (src/store/cache.ts).
  const store = new CachedHistoryStore(cassandraStore, {
    maxBytes: config.storage.cacheMaxBytes,
    tailMessages: config.storage.cacheTailMessages,
    shardOf,
    holds: (shard) => ownership?.holds(shard) ?? false,
  });
  // Message bodies leave the broker as agents see them: PII masked on the pool (agentViewOfBody).
  // `message` events only for tenants whose webhooks or declared consumers read them (issue #13).
  const integrationSource = tenantIntegrationSource(tenants);
  const events = createEventPublisher(
    transport,
    names,
    (body) => pool.pii(body).then((r) => r.text),
    (err, e) => log.warn({ err, event: e.id }, 'event masking failed; event dropped'),
    (tenant, type) => consumesOutEvent(integrationSource.tenant(tenant), type),
  );
  // The dispatcher is built after the routers that host the actors; actors reach it late-bound.
  let dispatcher: Dispatcher | undefined;
  const actors = {
    ask: (tenant: string, id: string, msg: unknown) => {
      if (!dispatcher) return Promise.reject(new Error('dispatcher not ready'));
      return dispatcher.ask(tenant, id, msg);
    },
  };
  const warn = (obj: object, msg: string) => log.warn(obj, msg);
  const deskStore = cassandraStore.deskStore();
  // Reception (issue #17 items 5-7): no-reply reassignment, business hours, bot first (src/reception/).
  const receptionStore = cassandraStore.receptionStore();
  const receptionSettings = (tenant: string) => receptionSettingsOf(tenants.tenant(tenant).reception);
  const hosting = createHosting({
    store,
    chat: chatStore,
    desk: deskStore,
    clock: systemClock,
    newId,
    actors,
    deliver,
    notify,
    events,
    limits: {
      recentCmids: config.actors.recentCmids,
      cacheRows: config.chat.cacheRows,
      queue: {
        maxWaiting: config.chat.queueMaxWaiting,
        maxAgents: config.chat.maxAgentsPerTenant,
        maxCapacity: config.chat.agentMaxCapacity,
        sweepMs: Math.max(1000, Math.floor(config.chat.agentGraceMs / 2)),
      },
      agent: {
        defaultCapacity: config.chat.agentDefaultCapacity,
        maxCapacity: config.chat.agentMaxCapacity,
        maxSkills: config.chat.agentMaxSkills,
        graceMs: config.chat.agentGraceMs,
        presenceTtlMs: config.chat.agentPresenceMs * 3,
      },
    },
    warn,
    reception: { store: receptionStore, settings: receptionSettings },
  });
  const routers = new ShardRouters(
    {
      shardMailboxCapacity: config.routing.shardMailboxCapacity,
      actorMailboxCapacity: config.routing.actorMailboxCapacity,
      maxActive: config.actors.maxActive,
      idleMs: config.actors.idleMs,
    },
    hosting,
    systemClock,
    (shard) => ownership?.holds(shard) ?? false,
  );
  const chat = new ChatService(actors, chatStore, { maxOpenListed: config.chat.maxOpenListed }, warn);
  const reception = new ReceptionService({
    actors,
    transport,
    names,
    settings: receptionSettings,
    clock: systemClock,
    postMessage: (tenant, conv, req) => chat.postMessage(tenant, conv, req),
    notify,
    warn,
  });
  chat.attachReception(reception);
  const membership = new Membership(transport, {
    nodeId: config.nodeId,
    bucket: names.membersBucket,
    leaseTtlMs: config.membership.leaseTtlMs,
    clock: systemClock,
    info: { http: `${config.http.host}:${config.http.port}` },
    ownsShards: config.membership.ownsShards,
  });
  const dispatch = new Dispatcher(transport, names, routers, config.routing.requestTimeoutMs);
  dispatcher = dispatch;
  // Business systems (src/integration/, docs/INTEGRATION.md): their JetStream setup (streams, durable
  // consumers) before this member takes shards, while its loop is free. Once it holds them it serves
  // their traffic: a restarted owner's setup after that took 10-29 s (bench connections kill storm,
  // 2026-12-07), and clients of its shards waited on it.
  const preparedIntegration = await prepareIntegration({
    config,
    transport,
    names,
    source: integrationSource,
    chat,
    audit: cassandraStore,
    push: (tenant, user, frame) => notify(tenant, [user], frame),
    log,
    step: (name) => started(`integration.${name}`),
  });
  await membership.start();
  started('membership');
  ownership = new ShardOwnership(
    config.nodeId,
    transport,
    membership,
    dispatch,
    systemClock,
    names.shardsBucket,
  );
  const heldBy = ownership;
  // Requests for shards another member holds travel coalesced per member (src/routing/member-link.ts);
  // both links' NATS messages of a turn leave in one write (src/cluster/turn-flush.ts).
  const turnFlush = new TurnFlush(config.routing.linkLingerMs);
  const link = new MemberLink({
    flush: turnFlush,
    transport,
    self: config.nodeId,
    subjectOf: names.memberSubject,
    server: {
      holds: (shard) => heldBy.holds(shard),
      ask: (shard, tenant, id, msg, deadline) => routers.ask(shard, tenant, id, msg, deadline),
    },
  });
  link.start();
  dispatch.attach(ownership, { self: config.nodeId, link });
  // A shard released, fenced or (re)taken: its cached conversations may be written by another member.
  ownership.onEvent((e) => store.dropShard(e.shard));
  // Presence: the users of the presence shards this member holds, and where their sockets are.
  const suspectAfterMs = Math.floor(config.membership.leaseTtlMs / 2);
  const present = new Presence({
    self: config.nodeId,
    transport,
    subjectOf: names.deliverySubject,
    view: {
      holds: (shard) => heldBy.holds(shard),
      holderOf: (shard) => heldBy.holderOf(shard),
      members: () => membership.members(),
      suspect: (member) => membership.silentMs(member) > suspectAfterMs,
    },
    maxUsers: config.presence.maxUsers,
    maxPendingJoins: config.presence.maxPendingJoins,
    maxRoutes: config.presence.maxRoutes,
    joinTimeoutMs: config.routing.requestTimeoutMs,
    flush: turnFlush,
  });
  await present.start();
  presence = present;
  ownership.onEvent((e) => {
    if (e.kind === 'acquired') present.acquired(e.shard);
    else present.released(e.shard);
  });
  membership.onChange((members) => present.membersChanged(members));
  present.membersChanged(membership.members());
  await ownership.start();
  started('ownership');
  const stopReceptionTicker = startReceptionTicker(
    {
      tenantIds: () => tenants.current.tenantIds(),
      holds: (shard) => heldBy.holds(shard),
      ask: (tenant, id, msg) => dispatch.ask(tenant, id, msg),
      warn,
    },
    config.chat.receptionTickMs,
  );

  // Business systems: events in, webhooks, context, actions. Consuming starts now; setup is done.
  let integration: Integration;
  try {
    integration = await preparedIntegration.start();
    started('integration');
  } catch (err) {
    preparedIntegration.stop();
    stopReceptionTicker();
    await ownership.stop();
    await membership.stop();
    present.stop();
    await Promise.allSettled([pool.close(), store.close(), transport.close()]);
    tenants.close();
    throw err;
  }

  // Canned replies, notes, recall and edit, labels (issue #17, src/desk/).
  const desk = new DeskService({
    actors,
    desk: deskStore,
    history: cassandraStore,
    settings: (tenant) => tenants.tenant(tenant).desk,
    viewAs: (tenant, conv, agent) => chat.viewAs(tenant, conv, agent, 'agent'),
    // A context system that fails leaves its placeholders empty (named in `missing`), never the reply.
    context: (tenant, agent, conv) =>
      integration.contextFor({ tenant, user: agent }, conv).then(
        (c) => c.items,
        () => ({}),
      ),
    maxBodyChars: config.gateway.maxBodyChars,
  });

  let gateway: Gateway | undefined;
  const metrics = createMetrics(config.nodeId, {
    integration: () => integration.stats(),
    routers: () => routers.stats(),
    writer: () => cassandraStore.stats(),
    storeRequests: () => cassandraStore.requestStats(),
    cache: () => store.stats(),
    pool: () => pool.stats(),
    dispatcher: () => dispatch.stats(),
    sockets: () => gateway?.socketCount() ?? 0,
    listener: () => gateway?.listener() ?? { listening: false, leaves: 0 },
    upgrades: () =>
      gateway?.upgradeStats() ?? { admitted: 0, refusedRate: 0, refusedPending: 0, pending: 0, limit: 0 },
    sends: () => ({
      ...(gateway?.sendStats() ?? { inflight: 0, refused: 0 }),
      max: config.gateway.maxSendsInflight,
    }),
    presence: () => present.stats(),
    heldShards: () => ownership?.heldShards().length ?? 0,
    members: () => membership.members().length,
    lease: () => ({ valid: membership.leaseValid(), ageMs: membership.leaseAgeMs() }),
    ownedShards: () => ownership?.ownedCount() ?? 0,
    writerMaxPending: config.storage.writerMaxPending,
  });
  const nodeMetrics = workerNodeMetrics(metrics);
  try {
    gateway = await startGateway({
      config,
      content,
      auth,
      tenants,
      dispatcher: dispatch,
      chat,
      integration,
      desk,
      reception,
      pool,
      store,
      transport,
      presence: present,
      names,
      ready: () => membership.leaseValid(),
      leaseAgeMs: () => membership.leaseAgeMs(),
      metrics: () => nodeMetrics.render(),
      observeAck: metrics.observeAck,
      cluster: () => ({
        members: membership.members(),
        shardOwners: membership.shardOwners(),
        shardsOwned: ownership?.ownedCount() ?? 0,
        held: ownership?.heldShards() ?? [],
      }),
      log,
    });
  } catch (err) {
    stopReceptionTicker();
    await integration.stop();
    await membership.stop();
    present.stop();
    await Promise.allSettled([pool.close(), store.close(), transport.close()]);
    tenants.close();
    content.close();
    nodeMetrics.close();
    throw err;
  }
  const gw: Gateway = gateway;
  started('gateway');
  log.info(
    { port: gw.port, members: membership.members(), startMs, startLoopDelayMs: startLoopDelayMs() },
    'node ready',
  );
  // The members the supervisor drains together with this one (parent-channel.ts, NodeDrainingIpc).
  const drainingWith = new Set<string>();
  const parent = processChannel();
  const onParent = (msg: unknown): void => {
    if (isNodeDraining(msg)) for (const m of msg.members) drainingWith.add(m);
  };
  if (parent.send) parent.on('message', onParent);

  let stopping: Promise<void> | undefined;
  return {
    nodeId: config.nodeId,
    port: gw.port,
    chat,
    stop() {
      stopping ??= (async () => {
        // How long each step took, in the `node stopped` line: a restart's clients wait for all of it.
        const ms: Record<string, number> = {};
        let at = performance.now();
        const step = (name: string): void => {
          const now = performance.now();
          ms[name] = Math.round(now - at);
          at = now;
        };
        gw.close();
        stopReceptionTicker();
        step('sockets');
        await integration.stop();
        step('integration');
        // Drain and release our shards before leaving: senders meanwhile see "no responders" and
        // retry; the next owner takes a shard only once it is marked released.
        await ownership?.stop();
        link.stop();
        step('shards');
        // Pushes still routed here by a member whose view of the release is late are forwarded a moment.
        if (parent.send) parent.off('message', onParent);
        await present.retire(PRESENCE_LINGER_MS, drainingWith);
        routers.close();
        step('presence');
        await Promise.allSettled([pool.close(), store.close()]);
        step('store');
        await membership.stop();
        await transport.close();
        step('cluster');
        tenants.close();
        content.close();
        nodeMetrics.close();
        await stopTracing(); // trace: export the spans still buffered
        log.info({ ms }, 'node stopped');
      })();
      return stopping;
    },
  };
}
