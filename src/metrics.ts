/**
 * Prometheus metrics of one node (prom-client), gathered at scrape time from the components'
 * own counters, so the hot path pays nothing for them. The only module importing prom-client.
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Gauge,
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
  };
  writer(): { pending: number; inFlight: number; retries?: number; failed?: number };
  pool(): { buffered: number; queuedBatches: number; completed: number; tasks?: number; rejected?: number };
  dispatcher(): { retries: number; unavailable: number };
  sockets(): number;
  heldShards(): number;
  members(): number;
}

export interface Metrics {
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
  gauge(
    'switchboard_pool_queued_batches',
    'Worker-pool batches waiting for a worker',
    () => src.pool().queuedBatches,
  );
  gauge('switchboard_pool_texts_total', 'Inputs answered by the worker pool', () => src.pool().completed);
  gauge(
    'switchboard_pool_tasks_total',
    'Worker-pool tasks (micro-batches) answered',
    () => src.pool().tasks ?? 0,
  );
  gauge('switchboard_pool_rejected_total', 'Worker-pool inputs refused busy', () => src.pool().rejected ?? 0);
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
    'switchboard_dispatch_retries_total',
    'Shard requests retried (no owner yet, handover, timeout)',
    () => src.dispatcher().retries,
  );
  gauge(
    'switchboard_dispatch_unavailable_total',
    'Shard requests answered unavailable after the deadline',
    () => src.dispatcher().unavailable,
  );
  gauge('switchboard_sockets', 'WebSocket connections held by this process', () => src.sockets());
  return { render: () => registry.metrics(), json: () => registry.getMetricsAsJSON() };
}
