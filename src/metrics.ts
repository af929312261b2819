/**
 * Prometheus metrics of one node (prom-client), gathered at scrape time from the components'
 * own counters, so the hot path pays nothing for them. The only module importing prom-client.
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

export interface MetricSources {
  routers(): {
    activeActors: number;
    ownedShards: number;
    inFlight: number;
    maxShardDepth: number;
    rejected: number;
    expired?: number;
  };
  writer(): {
    pending: number;
    inFlight: number;
    retries?: number;
    failed?: number;
    statements?: number;
    rows?: number;
  };
  /** The store's other requests (src/store/request-gate.ts); absent in old wiring. */
  storeRequests?(): { inFlight: number; waiting: number; refusedFull: number; refusedLate: number };
  pool(): {
    buffered: number;
    queuedBatches: number;
    completed: number;
    tasks?: number;
    rejected?: number;
    compressFallbacks?: number;
  };
  dispatcher(): { retries: number; unavailable: number; linkRequests?: number; linkBatches?: number };
  cache?(): { hits: number; misses: number; entries: number; bytes: number; invalidated: number };
  sockets(): number;
  /** Whether this worker listens on the node's port, and its leaves when full (listener-group.ts); absent in old wiring. */
  listener?(): { listening: boolean; leaves: number };
  /** Upgrade admission of the gateway (src/gateway/admission.ts); absent in old wiring. */
  upgrades?(): {
    admitted: number;
    refusedRate: number;
    refusedPending: number;
    pending: number;
    limit: number;
  };
  /** Socket sends in progress and refused at the door (gateway.maxSendsInflight); absent in old wiring. */
  sends?(): { inflight: number; refused: number; max: number };
  /** Presence directory and delivery link (src/presence/); absent in old wiring. */
  presence?(): {
    users: number;
    refused: number;
    lateJoins: number;
    broadcasts: number;
    routeHits?: number;
    heldJoins?: number;
    batches: number;
    items: number;
  };
  heldShards(): number;
  members(): number;
  /** This member's membership lease: valid (renewed within the TTL) and its age. Absent in old wiring. */
  lease?(): { valid: boolean; ageMs: number };
  /** Shards that have a live owner in this member's view of the cluster (of 1024). */
  ownedShards?(): number;
  /** The history writer's bound on queued + executing rows (SB_WRITER_MAX_PENDING). */
  writerMaxPending?: number;
  /** Business-system integration counters (src/integration/); absent before it starts. */
  integration?(): {
    events: {
      handled: number;
      redelivered: number;
      unrouted: number;
      refused: number;
      failedActions: number;
    };
    webhooks: {
      delivered: number;
      deadLettered: number;
      attempts: number;
      failures: number;
      shortCircuited: number;
    };
    context: {
      lookups: number;
      asked: number;
      answered: number;
      missing: number;
      cacheHits: number;
      cacheEntries: number;
    };
  };
}

/** Upper bounds (seconds) of the message-ack latency histogram: 1 ms to 10 s. */
export const ACK_LATENCY_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.089, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export interface Metrics {
  /**
   * Records one message acknowledged (or refused) by this gateway: seconds from its `send` frame's
   * arrival to the answer. The ack goes out when the row is durable, which is also when the fan-out
   * is published, so this is the broker's share of the delivery latency (docs/OPERATIONS.md).
   */
  observeAck(seconds: number, ok: boolean): void;
  /** The exposition text. */
  render(): Promise<string>;
  /** The same as JSON, for merging with the other workers of the node (src/node-metrics.ts). */
  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
}

/** One exposition of several workers' registries: one family per metric, each series keeps its labels. */
export function aggregateMetrics(jsons: MetricObjectWithValues<MetricValue<string>>[][]): Promise<string> {
  return AggregatorRegistry.aggregate(jsons).metrics();
}

export function createMetrics(nodeId: string, src: MetricSources): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  // Counters kept by the components are exposed as gauges of their running totals; they only grow.
  gauge(
    'switchboard_shard_requests_in_flight',
    'Requests admitted to the shard mailboxes and not yet answered',
    () => src.routers().inFlight,
  );
  gauge(
    'switchboard_shard_mailbox_max_depth',
    'Deepest shard mailbox right now',
    () => src.routers().maxShardDepth,
  );
  gauge(
    'switchboard_busy_rejections_total',
    'Requests refused busy by a full shard/actor mailbox or actor bound',
    () => src.routers().rejected,
  );
  gauge(
    'switchboard_expired_requests_total',
    'Requests answered timeout unprocessed: they waited in a mailbox past their deadline',
    () => src.routers().expired ?? 0,
  );
  gauge(
    'switchboard_active_actors',
    'Conversation actors active in this process',
    () => src.routers().activeActors,
  );
  gauge('switchboard_shards_held', 'Shards this node holds', () => src.heldShards());
  gauge('switchboard_cluster_members', 'Live members in this node view', () => src.members());
  gauge(
    'switchboard_writer_pending_rows',
    'Rows queued or executing in the history writer',
    () => src.writer().pending,
  );
  gauge(
    'switchboard_writer_in_flight_statements',
    'History writer statements executing',
    () => src.writer().inFlight,
  );
  if (src.storeRequests) {
    const store = src.storeRequests;
    gauge(
      'switchboard_store_requests_in_flight',
      'Cassandra requests at the driver, the history writer aside (SB_STORE_REQUESTS_IN_FLIGHT)',
      () => store().inFlight,
    );
    gauge(
      'switchboard_store_requests_waiting',
      'Cassandra requests waiting for a turn (SB_STORE_REQUESTS_WAITING)',
      () => store().waiting,
    );
    gauge(
      'switchboard_store_requests_refused_total',
      'Cassandra requests refused unavailable: the line full, or their turn came after the driver timeout',
      () => store().refusedFull + store().refusedLate,
    );
  }
  gauge(
    'switchboard_pool_queued_batches',
    'Worker-pool batches waiting for a worker',
    () => src.pool().queuedBatches,
  );
  gauge(
    'switchboard_history_cache_hits_total',
    'History reads answered by the cache',
    () => src.cache?.().hits ?? 0,
  );
  gauge(
    'switchboard_history_cache_misses_total',
    'History reads that went to Cassandra',
    () => src.cache?.().misses ?? 0,
  );
  gauge(
    'switchboard_history_cache_bytes',
    'Estimated bytes held by the history cache',
    () => src.cache?.().bytes ?? 0,
  );
  gauge('switchboard_pool_texts_total', 'Inputs answered by the worker pool', () => src.pool().completed);
  gauge(
    'switchboard_pool_tasks_total',
    'Worker-pool tasks (micro-batches) answered',
    () => src.pool().tasks ?? 0,
  );
  gauge('switchboard_pool_rejected_total', 'Worker-pool inputs refused busy', () => src.pool().rejected ?? 0);
  gauge(
    'switchboard_pool_compress_fallbacks_total',
    'Bodies the fast deflate got wrong, stored with zlib instead (anything but 0 is a bug)',
    () => src.pool().compressFallbacks ?? 0,
  );
  gauge(
    'switchboard_writer_retries_total',
    'History writer statements repeated',
    () => src.writer().retries ?? 0,
  );
  gauge(
    'switchboard_writer_failed_rows_total',
    'History rows whose write failed (no ack)',
    () => src.writer().failed ?? 0,
  );
  gauge(
    'switchboard_writer_statements_total',
    'History write statements completed (rows_total / statements_total is the mean batch)',
    () => src.writer().statements ?? 0,
  );
  gauge(
    'switchboard_writer_rows_total',
    'Message rows in completed history write statements',
    () => src.writer().rows ?? 0,
  );
  gauge(
    'switchboard_dispatch_retries_total',
    'Shard requests retried (no owner yet, handover, timeout)',
    () => src.dispatcher().retries,
  );
  gauge(
    'switchboard_dispatch_unavailable_total',
    'Shard requests answered unavailable after the deadline',
    () => src.dispatcher().unavailable,
  );
  gauge(
    'switchboard_link_requests_total',
    'Requests sent to the member holding their shard over the member link',
    () => src.dispatcher().linkRequests ?? 0,
  );
  gauge(
    'switchboard_link_batches_total',
    'NATS messages that carried member-link requests (requests / batches = coalescing)',
    () => src.dispatcher().linkBatches ?? 0,
  );
  gauge('switchboard_sockets', 'WebSocket connections held by this process', () => src.sockets());
  gauge(
    'switchboard_listening',
    "1 while this worker takes new connections on the node's port; 0 while it is out of the listener group (full, or a gateway on standby)",
    () => ((src.listener?.().listening ?? true) ? 1 : 0),
  );
  gauge(
    'switchboard_listener_leaves_total',
    "Times this worker left the node's listener group at its socket limit (SB_MAX_SOCKETS)",
    () => src.listener?.().leaves ?? 0,
  );
  gauge(
    'switchboard_sends_in_flight',
    'Socket sends this process is working on (screening, the actor, the write) and has not answered',
    () => src.sends?.().inflight ?? 0,
  );
  gauge(
    'switchboard_sends_max_in_flight',
    'Bound of switchboard_sends_in_flight (SB_SENDS_MAX_INFLIGHT); a send beyond is answered busy',
    () => src.sends?.().max ?? 0,
  );
  gauge(
    'switchboard_sends_refused_busy_total',
    'Socket sends answered busy at the door because the process had its maximum in flight',
    () => src.sends?.().refused ?? 0,
  );
  gauge(
    'switchboard_upgrades_admitted_total',
    'WebSocket upgrades admitted by the upgrade admission (before the token check)',
    () => src.upgrades?.().admitted ?? 0,
  );
  gauge(
    'switchboard_upgrades_refused_rate_total',
    'Upgrades refused 503 because the upgrade rate bucket was empty (SB_UPGRADE_RATE)',
    () => src.upgrades?.().refusedRate ?? 0,
  );
  gauge(
    'switchboard_upgrades_refused_pending_total',
    'Upgrades refused 503 because the in-progress bound (switchboard_upgrades_pending_limit) was reached',
    () => src.upgrades?.().refusedPending ?? 0,
  );
  gauge(
    'switchboard_upgrades_pending',
    'Upgrades admitted and not yet welcomed or refused',
    () => src.upgrades?.().pending ?? 0,
  );
  gauge(
    'switchboard_upgrades_pending_limit',
    'The in-progress bound in force: SB_UPGRADE_PENDING, less while admitted upgrades take over a second',
    () => src.upgrades?.().limit ?? 0,
  );
  gauge(
    'switchboard_presence_users',
    "Users recorded in this member's presence directory (those of the presence shards it holds)",
    () => src.presence?.().users ?? 0,
  );
  gauge(
    'switchboard_presence_refused_total',
    'Sockets refused because the presence directory (or the joins waiting for it) was full',
    () => src.presence?.().refused ?? 0,
  );
  gauge(
    'switchboard_presence_late_joins_total',
    "Joins welcomed at their deadline without the presence owner's answer (asked on until it answers)",
    () => src.presence?.().lateJoins ?? 0,
  );
  gauge(
    'switchboard_presence_broadcasts_total',
    'Pushes sent to every member: no complete presence directory knew where the user is',
    () => src.presence?.().broadcasts ?? 0,
  );
  gauge(
    'switchboard_presence_route_hits_total',
    "Pushes sent straight to the user's members on a cached route, not through the presence owner",
    () => src.presence?.().routeHits ?? 0,
  );
  gauge(
    'switchboard_presence_held_joins',
    'Joins recorded by this owner whose answer waits until senders dropped their cached route of the user',
    () => src.presence?.().heldJoins ?? 0,
  );
  gauge(
    'switchboard_delivery_items_total',
    'Items (pushes, presence) sent over the delivery link',
    () => src.presence?.().items ?? 0,
  );
  gauge(
    'switchboard_delivery_batches_total',
    'NATS messages that carried delivery-link items (items / batches = coalescing)',
    () => src.presence?.().batches ?? 0,
  );
  const ig = () => src.integration?.();
  const integrationGauges: Array<[string, string, (i: NonNullable<ReturnType<typeof ig>>) => number]> = [
    [
      'switchboard_biz_events_handled_total',
      'Business events a rule matched and ran',
      (i) => i.events.handled,
    ],
    [
      'switchboard_biz_events_redelivered_total',
      'Business events handed back after a retryable failure',
      (i) => i.events.redelivered,
    ],
    ['switchboard_biz_events_unrouted_total', 'Business events no rule matched', (i) => i.events.unrouted],
    [
      'switchboard_biz_events_refused_total',
      'Business events refused (undecodable, too large)',
      (i) => i.events.refused,
    ],
    [
      'switchboard_biz_actions_failed_total',
      'Rule actions that failed after their retries',
      (i) => i.events.failedActions,
    ],
    ['switchboard_webhooks_delivered_total', 'Webhook deliveries answered 2xx', (i) => i.webhooks.delivered],
    [
      'switchboard_webhooks_dead_lettered_total',
      'Webhook deliveries given up (dead letter)',
      (i) => i.webhooks.deadLettered,
    ],
    ['switchboard_webhooks_attempts_total', 'Webhook POSTs made', (i) => i.webhooks.attempts],
    [
      'switchboard_webhooks_short_circuited_total',
      'Webhook attempts skipped by an open breaker',
      (i) => i.webhooks.shortCircuited,
    ],
    ['switchboard_context_lookups_total', 'Context look-ups', (i) => i.context.lookups],
    [
      'switchboard_context_missing_total',
      'Context kinds that did not answer in time',
      (i) => i.context.missing,
    ],
    [
      'switchboard_context_cache_hits_total',
      'Context kinds served from the cache',
      (i) => i.context.cacheHits,
    ],
  ];
  for (const [name, help, read] of integrationGauges) {
    gauge(name, help, () => {
      const i = ig();
      return i ? read(i) : 0;
    });
  }
  const lease = () => src.lease?.();
  gauge('switchboard_lease_valid', 'This member holds a valid membership lease (0 = self-fenced)', () =>
    lease()?.valid === false ? 0 : 1,
  );
  gauge(
    'switchboard_lease_age_seconds',
    'Seconds since this member last renewed its lease',
    () => (lease()?.ageMs ?? 0) / 1000,
  );
  gauge(
    'switchboard_shards_owned',
    "Shards with a live owner in this member's view of the cluster (1024 when every shard is served)",
    () => src.ownedShards?.() ?? 0,
  );
  gauge(
    'switchboard_writer_max_pending_rows',
    'Bound of the history writer queue (SB_WRITER_MAX_PENDING); busy beyond',
    () => src.writerMaxPending ?? 0,
  );
  const ack = new Histogram({
    name: 'switchboard_message_ack_seconds',
    help: 'Send frame arrival to its answer at the gateway (ack once durable and fanned out, or error)',
    labelNames: ['outcome'],
    buckets: ACK_LATENCY_BUCKETS_S,
    registers: [registry],
  });
  // Children bound once: observe() on the hot path does no label lookup.
  const acked = ack.labels('ack');
  const refused = ack.labels('error');
  return {
    observeAck: (seconds, ok) => (ok ? acked : refused).observe(seconds),
    render: () => registry.metrics(),
    json: () => registry.getMetricsAsJSON(),
  };
}
