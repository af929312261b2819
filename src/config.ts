/**
 * Node configuration: defaults from named constants, one parse function that checks every field
 * and returns a frozen object. Environment variables are read here and nowhere else.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DEFAULT_TURN_FLUSH_LINGER_MS } from './cluster/turn-flush.js';
import { boolFromEnv, intFromEnv } from './env-values.js';
import {
  DEFAULT_DRAIN_RETRY_AFTER_MS,
  DEFAULT_UPGRADE_BURST,
  DEFAULT_UPGRADE_MAX_RETRY_AFTER_MS,
  DEFAULT_UPGRADE_PENDING,
  DEFAULT_UPGRADE_RATE_PER_S,
} from './gateway/admission.js';
import { DEFAULT_PRESENCE_MAX_USERS } from './presence/directory.js';
import { DEFAULT_PRESENCE_MAX_PENDING_JOINS } from './presence/presence.js';
import { DEFAULT_PRESENCE_MAX_ROUTES } from './presence/routes.js';
import { DEFAULT_LINGER_MS, DEFAULT_MAX_BATCH_PARTITIONS } from './store/history-writer.js';
import { DEFAULT_STORE_REQUESTS_IN_FLIGHT, DEFAULT_STORE_REQUESTS_WAITING } from './store/request-gate.js';
import type { TracingConfig } from './telemetry/tracing.js';

export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:14222';
/** JetStream replicas of KV buckets and streams: 1 for a single local nats-server. */
export const DEFAULT_NATS_REPLICAS = 1;
export const DEFAULT_CASSANDRA = '127.0.0.1:19042';
export const DEFAULT_LOCAL_DC = 'datacenter1';
export const DEFAULT_KEYSPACE = 'switchboard';
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024;
export const DEFAULT_MAX_BODY_CHARS = 4000;
export const DEFAULT_IDLE_TIMEOUT_S = 60;
export const DEFAULT_MAX_BACKPRESSURE_BYTES = 256 * 1024;
export const DEFAULT_MAX_HTTP_BODY_BYTES = 64 * 1024;
export const DEFAULT_MAX_HTTP_INFLIGHT = 1024;
/**
 * Socket `send`s a worker process waits on at once (screening, the owner's actor, the write) before it
 * answers `busy` at the door. One worker on the project's 2-core bench machine completes ~6 000 messages/s
 * at saturation, so this is under a second of queue there. Without it the only bounds were per shard and
 * per conversation: a saturated worker queued sends for seconds, toward their deadline, and never said
 * `busy` (BENCHMARKS.md, fourteenth session).
 */
export const DEFAULT_MAX_SENDS_INFLIGHT = 4096;
export const DEFAULT_RATE_LIMIT_TENANTS = 10_000;
export const DEFAULT_SHARD_MAILBOX_CAPACITY = 256;
export const DEFAULT_ACTOR_MAILBOX_CAPACITY = 64;
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/**
 * 15 s: longer than a JetStream leader election after the loss of one nats-server (nats-server's Raft
 * waits 4-9 s before electing), so members keep their leases, and keep acking, through it. The fault
 * checker saw a 6 s TTL make every member drop every shard at once when the server leading the members
 * bucket was killed (19 s without acks, issue #12). The cost: a dead member's shards wait ~15 s.
 */
export const DEFAULT_LEASE_TTL_MS = 15_000;
export const DEFAULT_MAX_ACTIVE_ACTORS = 20000;
export const DEFAULT_ACTOR_IDLE_MS = 5 * 60_000;
/** Defined here, not in tenants.ts, so that reading the config loads no YAML or schema library (issue #14). */
export const DEFAULT_TENANTS_RELOAD_DEBOUNCE_MS = 250;
export const DEFAULT_POOL_THREADS = 1;
export const DEFAULT_POOL_MAX_QUEUE = 512;
export const DEFAULT_POOL_BATCH_TEXTS = 64;
/**
 * 4 ms: at 2 000 msg/s the broker used 0.43 cores (0.61-0.66 with a task every 1 ms) and the delivery p50
 * rose 5 ms (BENCHMARKS.md, fourth session); 8 and 16 ms cut more CPU for 12 and 26 ms of p50.
 */
export const DEFAULT_POOL_INTERVAL_MS = 4;
/**
 * Pool threads start at the first task and stop after this long without one (issue #14): a thread is a
 * whole V8 isolate (~9 MiB RSS measured on an idle worker), and a node that holds 100k sockets runs 7
 * workers whose pools mostly sit idle. Under load the thread stays up; the cost is one thread start
 * (~40 ms) on the first message after a quiet spell this long.
 */
export const DEFAULT_POOL_IDLE_MS = 60_000;
/** 0: no cmids rows, the actor's window de-duplicates (one row per message; docs/ARCHITECTURE.md). */
export const DEFAULT_CMID_TTL_S = 0;
export const DEFAULT_STORE_TIMEOUT_MS = 4000;
export const DEFAULT_WRITER_MAX_PENDING = 10_000;
export const DEFAULT_WRITER_MAX_IN_FLIGHT = 16;
export const DEFAULT_WRITER_MAX_ATTEMPTS = 3;
/** Conversations per history write statement (src/store/history-writer.ts). */
export const DEFAULT_WRITER_MAX_BATCH_PARTITIONS = DEFAULT_MAX_BATCH_PARTITIONS;
/** How long the history writer's first queued row waits for others to join its statement, ms. */
export const DEFAULT_WRITER_LINGER_MS = DEFAULT_LINGER_MS;
export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CACHE_TAIL_MESSAGES = 100;
export const DEFAULT_RECENT_CMIDS = 256;
export const DEFAULT_CONV_CACHE_ROWS = 32;
export const DEFAULT_AGENT_GRACE_MS = 30_000;
export const DEFAULT_AGENT_PRESENCE_MS = 10_000;
export const DEFAULT_QUEUE_MAX_WAITING = 1000;
/** How often each member wakes the queue actors it holds of tenants with desk settings (src/reception/ticker.ts). */
export const DEFAULT_RECEPTION_TICK_MS = 5000;
export const DEFAULT_MAX_AGENTS_PER_TENANT = 1000;
export const DEFAULT_AGENT_CAPACITY = 5;
export const DEFAULT_AGENT_MAX_CAPACITY = 50;
export const DEFAULT_AGENT_MAX_SKILLS = 16;
export const DEFAULT_MAX_OPEN_LISTED = 50;
// Integration with business systems (src/integration/, docs/INTEGRATION.md).
export const DEFAULT_EVENT_MAX_BYTES = 64 * 1024;
export const DEFAULT_EVENTS_IN_FLIGHT = 64;
export const DEFAULT_EVENTS_DEDUPE_WINDOW_MS = 10 * 60_000;
export const DEFAULT_EVENTS_STREAM_MAX_MSGS = 1_000_000;
/** 0 = no byte limit (bounded by messages × message size; a byte limit makes NATS reserve it up front). */
export const DEFAULT_EVENTS_STREAM_MAX_BYTES = 0;
export const DEFAULT_EVENTS_MAX_AGE_MS = 24 * 3600_000;
export const DEFAULT_EVENTS_MAX_DELIVER = 5;
export const DEFAULT_WEBHOOK_MAX_ATTEMPTS = 6;
export const DEFAULT_WEBHOOK_BACKOFF_MS = 500;
export const DEFAULT_WEBHOOK_MAX_BACKOFF_MS = 60_000;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5_000;
export const DEFAULT_WEBHOOK_IN_FLIGHT = 64;
export const DEFAULT_BREAKER_FAILURES = 5;
export const DEFAULT_BREAKER_OPEN_MS = 30_000;
export const DEFAULT_CONTEXT_CACHE_ENTRIES = 10_000;
export const DEFAULT_RULES_POLL_MS = 1000;
const STORAGES = ['file', 'memory'] as const;
// Tracing (src/telemetry/): the standard OTEL_* variables; off unless an exporter or endpoint is named.
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';
export const DEFAULT_OTEL_SERVICE_NAME = 'switchboard';
export const DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS = 5000;
export const DEFAULT_OTEL_BSP_MAX_QUEUE_SIZE = 2048;
const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
const TRACE_EXPORTERS = ['otlp', 'console'] as const;

/** Used only when SB_JWT_SECRET is unset: fine for a laptop, refused when NODE_ENV=production. */
export const DEV_JWT_SECRET = 'switchboard-dev-secret-change-me-0123456789';

const CONSISTENCIES = ['ONE', 'LOCAL_ONE', 'LOCAL_QUORUM', 'QUORUM'] as const;

function safeHostname(): string {
  return hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 40);
}

export interface NodeConfig {
  nodeId: string;
  /** Cluster name: nodes on one NATS deployment form one cluster per name (src/cluster/names.ts). */
  cluster: string;
  http: { host: string; port: number };
  gateway: {
    maxFrameBytes: number;
    maxBodyChars: number;
    idleTimeoutS: number;
    maxBackpressureBytes: number;
    /** Largest HTTP request body read, bytes (413 beyond). */
    maxHttpBodyBytes: number;
    /** HTTP API requests in progress at once in this process before `503 busy`. */
    maxHttpInflight: number;
    /** Socket `send`s in progress at once in this process (all its sockets) before `busy`. */
    maxSendsInflight: number;
    /** Per-tenant rate-limit buckets kept per process (oldest dropped beyond). */
    rateLimitTenants: number;
    /**
     * WebSockets this process holds at most; an upgrade beyond is refused `503 unavailable` with
     * `retryAfterMs`, so the client retries and the kernel's SO_REUSEPORT hash sends it to another worker.
     * 0 (the default): the process's open-file limit minus DEFAULT_FD_HEADROOM.
     */
    maxSockets: number;
    /**
     * Upgrade admission of this process (src/gateway/admission.ts): upgrades per second and burst, upgrades
     * in progress (token check, presence join) at most, and the furthest `retryAfterMs` a refused one is
     * told. Checked before the token, so a reconnect storm is refused cheaply with a spread-out schedule.
     */
    upgradeRatePerS: number;
    upgradeBurst: number;
    upgradePending: number;
    upgradeMaxRetryAfterMs: number;
    /**
     * A drain tells each socket, before its 1012, to come back after this many ms plus its slot of the
     * upgrade pace (server.ts, drainNotice): about the time a restart takes, so a restarted node's
     * clients do not knock on its closed port. 0 = come back at once, spread by the pace alone.
     */
    drainRetryAfterMs: number;
    /**
     * A gateway-only worker of a supervised node starts on standby, not listening, until its supervisor
     * wakes it (src/listener-group.ts). The supervisor sets it (SB_GATEWAY_STANDBY) for its gateways.
     */
    standby: boolean;
  };
  /**
   * `devTokens`: the node issues demo tokens at `GET /dev/token` and serves `/demo` (docs/WIDGET.md).
   * On by default only while the development secret is in use (whoever knows that public secret can
   * sign tokens anyway); SB_DEV_TOKENS overrides; refused with NODE_ENV=production.
   */
  auth: { jwtSecret: string; devSecret: boolean; devTokens: boolean };
  /** Per-tenant configuration file (src/tenants.ts); undefined = built-in defaults for every tenant. */
  tenants: { file: string | undefined; reloadDebounceMs: number };
  /** Operator access to /admin/* and /metrics: SB_ADMIN_TOKEN (undefined = operator keys only). */
  admin: { token: string | undefined };
  /**
   * `replicas`: copies of every KV bucket and stream this node creates (1 on one server; 3 on a
   * 3-server cluster, so losing any one nats-server keeps the cluster acking).
   */
  nats: { servers: string[]; replicas: number };
  cassandra: {
    contactPoints: string[];
    localDataCenter: string;
    keyspace: string;
    replication: string;
    consistency: (typeof CONSISTENCIES)[number];
  };
  routing: {
    shardMailboxCapacity: number;
    actorMailboxCapacity: number;
    requestTimeoutMs: number;
    /** How long a turn's link items wait for more before their NATS message leaves (src/cluster/turn-flush.ts). */
    linkLingerMs: number;
  };
  membership: {
    leaseTtlMs: number;
    /**
     * Whether this member owns conversation shards (src/cluster/ownership.ts). A member that does not is a
     * gateway only: it holds sockets and sends their requests to the owners; it takes shards only while no
     * owning member is live. The supervisor sets it for workers beyond its `shardOwners` (SB_OWNS_SHARDS).
     */
    ownsShards: boolean;
  };
  actors: { maxActive: number; idleMs: number; recentCmids: number };
  pool: {
    threads: number;
    maxQueue: number;
    batchTexts: number;
    /** Least time between two pool tasks under load, ms; a text arriving at a quiet pool is not delayed. */
    intervalMs: number;
    maxBuffered: number;
    /** A pool thread stops after this long without a task; the next task starts it again. */
    idleMs: number;
  };
  /** History storage (src/store/): de-duplication, driver timeout, writer bounds, compression, cache. */
  storage: {
    cmidTtlS: number;
    requestTimeoutMs: number;
    /** Store requests at the driver at once, the writer's batches aside (src/store/request-gate.ts). */
    requestsInFlight: number;
    /** Store requests waiting for a turn; more are refused `unavailable`. */
    requestsWaiting: number;
    writerMaxPending: number;
    writerMaxInFlight: number;
    writerMaxAttempts: number;
    writerMaxBatchPartitions: number;
    /** How long the first queued row waits for others to join its statement, ms (0-100). */
    writerLingerMs: number;
    /** Compress bodies on the worker pool (dictionary deflate) when that saves bytes. */
    compress: boolean;
    /** Bytes held by the conversation-state and recent-tail caches together. */
    cacheMaxBytes: number;
    /** Newest messages kept per cached conversation tail (serves sync and history's first page). */
    cacheTailMessages: number;
  };
  integration: {
    /** Largest business event payload accepted, bytes. */
    eventMaxBytes: number;
    /** Business events handled at once per member. */
    eventsInFlight: number;
    /** A repeated Nats-Msg-Id inside this window is stored once (JetStream duplicate window). */
    dedupeWindowMs: number;
    /** Bounds of the JetStream streams (events in, events out, webhook dead letters), each. */
    streamMaxMsgs: number;
    streamMaxBytes: number;
    streamMaxAgeMs: number;
    /** Deliveries of one stored event before JetStream gives up (a member died while handling it). */
    eventsMaxDeliver: number;
    /** JetStream storage of those streams: `file` survives a NATS restart, `memory` does not. */
    storage: (typeof STORAGES)[number];
    webhookMaxAttempts: number;
    webhookBackoffMs: number;
    webhookMaxBackoffMs: number;
    webhookTimeoutMs: number;
    /** Conversation events whose webhook deliveries run at once per member. */
    webhookInFlight: number;
    /** Consecutive failures that open an endpoint's (or a context kind's) breaker, and for how long. */
    breakerFailures: number;
    breakerOpenMs: number;
    contextCacheEntries: number;
    rulesPollMs: number;
  };
  /** Conversations, agents and assignment (actors/queue.ts, actors/agent.ts). */
  chat: {
    /** Newest messages a conversation actor keeps in memory (pushed to a newly assigned agent). */
    cacheRows: number;
    /** An agent without any socket for this long has its conversations re-queued. */
    agentGraceMs: number;
    /** How often each node reports the agents' sockets it holds (a report is void after 3x). */
    agentPresenceMs: number;
    queueMaxWaiting: number;
    maxAgentsPerTenant: number;
    agentDefaultCapacity: number;
    agentMaxCapacity: number;
    agentMaxSkills: number;
    /** Open conversations listed per user (`convs` frame). */
    maxOpenListed: number;
    /**
     * How often a member wakes the queue actors it holds of tenants the file gives desk settings
     * (no-reply timers, opening hours), so a moved queue resumes its timers without other traffic.
     */
    receptionTickMs: number;
  };
  /**
   * The presence directory (src/presence/): `maxUsers` entries per member (a new user's socket is
   * refused beyond), `maxPendingJoins` sockets per process waiting for their owner's answer,
   * `maxRoutes` routes cached as a sender and grants kept as an owner (0: every push through the owner).
   */
  presence: { maxUsers: number; maxPendingJoins: number; maxRoutes: number };
  /** OpenTelemetry traces (src/telemetry/), off by default. */
  telemetry: { tracing: TracingConfig };
  logLevel: string;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function positiveInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
}

function nonNegativeInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
}

function intInRange(value: number, min: number, max: number, name: string): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new Error(`${name} must be an integer from ${min} to ${max}`);
}

/** Merges `overrides` over the defaults, validates every field, returns a frozen config. */
export function parseConfig(overrides: DeepPartial<NodeConfig> = {}): Readonly<NodeConfig> {
  const o = overrides;
  const jwtSecret = o.auth?.jwtSecret ?? DEV_JWT_SECRET;
  const cfg: NodeConfig = {
    // Host names may hold dots (ip-10-0-0-1.ec2.internal); node ids also appear in NATS subjects.
    nodeId: o.nodeId ?? `${safeHostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    cluster: o.cluster ?? 'default',
    http: { host: o.http?.host ?? '127.0.0.1', port: o.http?.port ?? DEFAULT_HTTP_PORT },
    gateway: {
      maxFrameBytes: o.gateway?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxBodyChars: o.gateway?.maxBodyChars ?? DEFAULT_MAX_BODY_CHARS,
      idleTimeoutS: o.gateway?.idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_S,
      maxBackpressureBytes: o.gateway?.maxBackpressureBytes ?? DEFAULT_MAX_BACKPRESSURE_BYTES,
      maxHttpBodyBytes: o.gateway?.maxHttpBodyBytes ?? DEFAULT_MAX_HTTP_BODY_BYTES,
      maxHttpInflight: o.gateway?.maxHttpInflight ?? DEFAULT_MAX_HTTP_INFLIGHT,
      maxSendsInflight: o.gateway?.maxSendsInflight ?? DEFAULT_MAX_SENDS_INFLIGHT,
      rateLimitTenants: o.gateway?.rateLimitTenants ?? DEFAULT_RATE_LIMIT_TENANTS,
      maxSockets: o.gateway?.maxSockets ?? 0,
      upgradeRatePerS: o.gateway?.upgradeRatePerS ?? DEFAULT_UPGRADE_RATE_PER_S,
      upgradeBurst: o.gateway?.upgradeBurst ?? DEFAULT_UPGRADE_BURST,
      upgradePending: o.gateway?.upgradePending ?? DEFAULT_UPGRADE_PENDING,
      upgradeMaxRetryAfterMs: o.gateway?.upgradeMaxRetryAfterMs ?? DEFAULT_UPGRADE_MAX_RETRY_AFTER_MS,
      drainRetryAfterMs: o.gateway?.drainRetryAfterMs ?? DEFAULT_DRAIN_RETRY_AFTER_MS,
      standby: o.gateway?.standby ?? false,
    },
    auth: {
      jwtSecret,
      devSecret: jwtSecret === DEV_JWT_SECRET,
      devTokens: o.auth?.devTokens ?? jwtSecret === DEV_JWT_SECRET,
    },
    tenants: {
      file: o.tenants?.file || undefined,
      reloadDebounceMs: o.tenants?.reloadDebounceMs ?? DEFAULT_TENANTS_RELOAD_DEBOUNCE_MS,
    },
    admin: { token: o.admin?.token || undefined },
    nats: {
      servers: (o.nats?.servers ?? [DEFAULT_NATS_URL]).filter((s): s is string => !!s),
      replicas: o.nats?.replicas ?? DEFAULT_NATS_REPLICAS,
    },
    cassandra: {
      contactPoints: (o.cassandra?.contactPoints ?? [DEFAULT_CASSANDRA]).filter((s): s is string => !!s),
      localDataCenter: o.cassandra?.localDataCenter ?? DEFAULT_LOCAL_DC,
      keyspace: o.cassandra?.keyspace ?? DEFAULT_KEYSPACE,
      replication: o.cassandra?.replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}",
      consistency: o.cassandra?.consistency ?? 'LOCAL_ONE',
    },
    routing: {
      shardMailboxCapacity: o.routing?.shardMailboxCapacity ?? DEFAULT_SHARD_MAILBOX_CAPACITY,
      actorMailboxCapacity: o.routing?.actorMailboxCapacity ?? DEFAULT_ACTOR_MAILBOX_CAPACITY,
      requestTimeoutMs: o.routing?.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      linkLingerMs: o.routing?.linkLingerMs ?? DEFAULT_TURN_FLUSH_LINGER_MS,
    },
    membership: {
      leaseTtlMs: o.membership?.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      ownsShards: o.membership?.ownsShards ?? true,
    },
    actors: {
      maxActive: o.actors?.maxActive ?? DEFAULT_MAX_ACTIVE_ACTORS,
      idleMs: o.actors?.idleMs ?? DEFAULT_ACTOR_IDLE_MS,
      recentCmids: o.actors?.recentCmids ?? DEFAULT_RECENT_CMIDS,
    },
    pool: {
      threads: o.pool?.threads ?? DEFAULT_POOL_THREADS,
      maxQueue: o.pool?.maxQueue ?? DEFAULT_POOL_MAX_QUEUE,
      batchTexts: o.pool?.batchTexts ?? DEFAULT_POOL_BATCH_TEXTS,
      intervalMs: o.pool?.intervalMs ?? DEFAULT_POOL_INTERVAL_MS,
      idleMs: o.pool?.idleMs ?? DEFAULT_POOL_IDLE_MS,
      maxBuffered:
        o.pool?.maxBuffered ??
        (o.pool?.maxQueue ?? DEFAULT_POOL_MAX_QUEUE) * (o.pool?.batchTexts ?? DEFAULT_POOL_BATCH_TEXTS),
    },
    storage: {
      cmidTtlS: o.storage?.cmidTtlS ?? DEFAULT_CMID_TTL_S,
      requestTimeoutMs: o.storage?.requestTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
      requestsInFlight: o.storage?.requestsInFlight ?? DEFAULT_STORE_REQUESTS_IN_FLIGHT,
      requestsWaiting: o.storage?.requestsWaiting ?? DEFAULT_STORE_REQUESTS_WAITING,
      writerMaxPending: o.storage?.writerMaxPending ?? DEFAULT_WRITER_MAX_PENDING,
      writerMaxInFlight: o.storage?.writerMaxInFlight ?? DEFAULT_WRITER_MAX_IN_FLIGHT,
      writerMaxAttempts: o.storage?.writerMaxAttempts ?? DEFAULT_WRITER_MAX_ATTEMPTS,
      writerMaxBatchPartitions: o.storage?.writerMaxBatchPartitions ?? DEFAULT_WRITER_MAX_BATCH_PARTITIONS,
      writerLingerMs: o.storage?.writerLingerMs ?? DEFAULT_WRITER_LINGER_MS,
      compress: o.storage?.compress ?? true,
      cacheMaxBytes: o.storage?.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES,
      cacheTailMessages: o.storage?.cacheTailMessages ?? DEFAULT_CACHE_TAIL_MESSAGES,
    },
    integration: {
      eventMaxBytes: o.integration?.eventMaxBytes ?? DEFAULT_EVENT_MAX_BYTES,
      eventsInFlight: o.integration?.eventsInFlight ?? DEFAULT_EVENTS_IN_FLIGHT,
      dedupeWindowMs: o.integration?.dedupeWindowMs ?? DEFAULT_EVENTS_DEDUPE_WINDOW_MS,
      streamMaxMsgs: o.integration?.streamMaxMsgs ?? DEFAULT_EVENTS_STREAM_MAX_MSGS,
      streamMaxBytes: o.integration?.streamMaxBytes ?? DEFAULT_EVENTS_STREAM_MAX_BYTES,
      streamMaxAgeMs: o.integration?.streamMaxAgeMs ?? DEFAULT_EVENTS_MAX_AGE_MS,
      eventsMaxDeliver: o.integration?.eventsMaxDeliver ?? DEFAULT_EVENTS_MAX_DELIVER,
      storage: o.integration?.storage ?? 'file',
      webhookMaxAttempts: o.integration?.webhookMaxAttempts ?? DEFAULT_WEBHOOK_MAX_ATTEMPTS,
      webhookBackoffMs: o.integration?.webhookBackoffMs ?? DEFAULT_WEBHOOK_BACKOFF_MS,
      webhookMaxBackoffMs: o.integration?.webhookMaxBackoffMs ?? DEFAULT_WEBHOOK_MAX_BACKOFF_MS,
      webhookTimeoutMs: o.integration?.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
      webhookInFlight: o.integration?.webhookInFlight ?? DEFAULT_WEBHOOK_IN_FLIGHT,
      breakerFailures: o.integration?.breakerFailures ?? DEFAULT_BREAKER_FAILURES,
      breakerOpenMs: o.integration?.breakerOpenMs ?? DEFAULT_BREAKER_OPEN_MS,
      contextCacheEntries: o.integration?.contextCacheEntries ?? DEFAULT_CONTEXT_CACHE_ENTRIES,
      rulesPollMs: o.integration?.rulesPollMs ?? DEFAULT_RULES_POLL_MS,
    },
    chat: {
      cacheRows: o.chat?.cacheRows ?? DEFAULT_CONV_CACHE_ROWS,
      agentGraceMs: o.chat?.agentGraceMs ?? DEFAULT_AGENT_GRACE_MS,
      agentPresenceMs: o.chat?.agentPresenceMs ?? DEFAULT_AGENT_PRESENCE_MS,
      queueMaxWaiting: o.chat?.queueMaxWaiting ?? DEFAULT_QUEUE_MAX_WAITING,
      maxAgentsPerTenant: o.chat?.maxAgentsPerTenant ?? DEFAULT_MAX_AGENTS_PER_TENANT,
      agentDefaultCapacity: o.chat?.agentDefaultCapacity ?? DEFAULT_AGENT_CAPACITY,
      agentMaxCapacity: o.chat?.agentMaxCapacity ?? DEFAULT_AGENT_MAX_CAPACITY,
      agentMaxSkills: o.chat?.agentMaxSkills ?? DEFAULT_AGENT_MAX_SKILLS,
      maxOpenListed: o.chat?.maxOpenListed ?? DEFAULT_MAX_OPEN_LISTED,
      receptionTickMs: o.chat?.receptionTickMs ?? DEFAULT_RECEPTION_TICK_MS,
    },
    presence: {
      maxUsers: o.presence?.maxUsers ?? DEFAULT_PRESENCE_MAX_USERS,
      maxPendingJoins: o.presence?.maxPendingJoins ?? DEFAULT_PRESENCE_MAX_PENDING_JOINS,
      maxRoutes: o.presence?.maxRoutes ?? DEFAULT_PRESENCE_MAX_ROUTES,
    },
    telemetry: {
      tracing: {
        enabled: o.telemetry?.tracing?.enabled ?? false,
        exporter: o.telemetry?.tracing?.exporter ?? 'otlp',
        endpoint: o.telemetry?.tracing?.endpoint ?? `${DEFAULT_OTLP_ENDPOINT}/v1/traces`,
        headers: { ...o.telemetry?.tracing?.headers } as Record<string, string>,
        sampler: o.telemetry?.tracing?.sampler ?? 'parentbased_always_on',
        samplerRatio: o.telemetry?.tracing?.samplerRatio ?? 1,
        serviceName: o.telemetry?.tracing?.serviceName ?? DEFAULT_OTEL_SERVICE_NAME,
        resourceAttributes: { ...o.telemetry?.tracing?.resourceAttributes } as Record<string, string>,
        batchDelayMs: o.telemetry?.tracing?.batchDelayMs ?? DEFAULT_OTEL_BSP_SCHEDULE_DELAY_MS,
        maxQueueSize: o.telemetry?.tracing?.maxQueueSize ?? DEFAULT_OTEL_BSP_MAX_QUEUE_SIZE,
      },
    },
    logLevel: o.logLevel ?? 'info',
  };

  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cfg.nodeId))
    throw new Error('nodeId must be 1-64 characters of A-Z a-z 0-9 _ -');
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cfg.cluster))
    throw new Error('cluster must be 1-32 characters of A-Z a-z 0-9 _ -');
  if (!Number.isInteger(cfg.http.port) || cfg.http.port < 0 || cfg.http.port > 65535) {
    throw new Error('http.port must be an integer from 0 to 65535');
  }
  positiveInt(cfg.gateway.maxFrameBytes, 'gateway.maxFrameBytes');
  positiveInt(cfg.gateway.maxBodyChars, 'gateway.maxBodyChars');
  positiveInt(cfg.gateway.idleTimeoutS, 'gateway.idleTimeoutS');
  if (cfg.gateway.idleTimeoutS < 8)
    throw new Error('gateway.idleTimeoutS must be at least 8 (uWS granularity is 4 s)');
  positiveInt(cfg.gateway.maxBackpressureBytes, 'gateway.maxBackpressureBytes');
  nonNegativeInt(cfg.gateway.maxSockets, 'gateway.maxSockets');
  positiveInt(cfg.gateway.upgradeRatePerS, 'gateway.upgradeRatePerS');
  positiveInt(cfg.gateway.upgradeBurst, 'gateway.upgradeBurst');
  positiveInt(cfg.gateway.upgradePending, 'gateway.upgradePending');
  positiveInt(cfg.gateway.upgradeMaxRetryAfterMs, 'gateway.upgradeMaxRetryAfterMs');
  nonNegativeInt(cfg.gateway.drainRetryAfterMs, 'gateway.drainRetryAfterMs');
  positiveInt(cfg.gateway.maxHttpBodyBytes, 'gateway.maxHttpBodyBytes');
  positiveInt(cfg.gateway.maxHttpInflight, 'gateway.maxHttpInflight');
  positiveInt(cfg.gateway.maxSendsInflight, 'gateway.maxSendsInflight');
  positiveInt(cfg.gateway.rateLimitTenants, 'gateway.rateLimitTenants');
  if (cfg.auth.jwtSecret.length < 32) throw new Error('auth.jwtSecret must be at least 32 characters');
  positiveInt(cfg.tenants.reloadDebounceMs, 'tenants.reloadDebounceMs');
  if (cfg.admin.token !== undefined && cfg.admin.token.length < 24)
    throw new Error('admin.token must be at least 24 characters');
  if (cfg.nats.servers.length === 0) throw new Error('nats.servers must name at least one server');
  if (![1, 3, 5].includes(cfg.nats.replicas)) throw new Error('nats.replicas must be 1, 3 or 5');
  if (cfg.cassandra.contactPoints.length === 0)
    throw new Error('cassandra.contactPoints must name at least one host');
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(cfg.cassandra.keyspace)) {
    throw new Error('cassandra.keyspace must be a lower-case CQL identifier of at most 48 characters');
  }
  if (!CONSISTENCIES.includes(cfg.cassandra.consistency)) {
    throw new Error(`cassandra.consistency must be one of ${CONSISTENCIES.join(', ')}`);
  }
  positiveInt(cfg.routing.shardMailboxCapacity, 'routing.shardMailboxCapacity');
  positiveInt(cfg.routing.actorMailboxCapacity, 'routing.actorMailboxCapacity');
  positiveInt(cfg.routing.requestTimeoutMs, 'routing.requestTimeoutMs');
  nonNegativeInt(cfg.routing.linkLingerMs, 'routing.linkLingerMs');
  if (cfg.routing.linkLingerMs > 50) throw new Error('routing.linkLingerMs must be at most 50');
  positiveInt(cfg.membership.leaseTtlMs, 'membership.leaseTtlMs');
  if (cfg.membership.leaseTtlMs < 1500) throw new Error('membership.leaseTtlMs must be at least 1500');
  positiveInt(cfg.actors.maxActive, 'actors.maxActive');
  positiveInt(cfg.actors.idleMs, 'actors.idleMs');
  positiveInt(cfg.actors.recentCmids, 'actors.recentCmids');
  positiveInt(cfg.pool.threads, 'pool.threads');
  positiveInt(cfg.pool.maxQueue, 'pool.maxQueue');
  positiveInt(cfg.pool.batchTexts, 'pool.batchTexts');
  positiveInt(cfg.pool.idleMs, 'pool.idleMs');
  if (!Number.isInteger(cfg.pool.intervalMs) || cfg.pool.intervalMs < 0) {
    throw new Error('pool.intervalMs must be a non-negative integer');
  }
  const ig = cfg.integration;
  for (const k of [
    'eventMaxBytes',
    'eventsInFlight',
    'dedupeWindowMs',
    'streamMaxMsgs',
    'streamMaxAgeMs',
    'eventsMaxDeliver',
    'webhookMaxAttempts',
    'webhookBackoffMs',
    'webhookMaxBackoffMs',
    'webhookTimeoutMs',
    'webhookInFlight',
    'breakerFailures',
    'breakerOpenMs',
    'contextCacheEntries',
    'rulesPollMs',
  ] as const) {
    positiveInt(ig[k], `integration.${k}`);
  }
  if (!Number.isInteger(ig.streamMaxBytes) || ig.streamMaxBytes < 0)
    throw new Error('integration.streamMaxBytes must be a non-negative integer (0 = no byte limit)');
  if (ig.webhookMaxAttempts > 20) throw new Error('integration.webhookMaxAttempts must be at most 20');
  if (ig.webhookMaxBackoffMs < ig.webhookBackoffMs)
    throw new Error('integration.webhookMaxBackoffMs must be at least integration.webhookBackoffMs');
  if (ig.dedupeWindowMs > ig.streamMaxAgeMs)
    throw new Error('integration.dedupeWindowMs must not exceed integration.streamMaxAgeMs');
  if (!STORAGES.includes(ig.storage))
    throw new Error(`integration.storage must be one of ${STORAGES.join(', ')}`);
  if (!Number.isInteger(cfg.chat.cacheRows) || cfg.chat.cacheRows < 0 || cfg.chat.cacheRows > 1000)
    throw new Error('chat.cacheRows must be an integer from 0 to 1000');
  positiveInt(cfg.chat.agentGraceMs, 'chat.agentGraceMs');
  positiveInt(cfg.chat.agentPresenceMs, 'chat.agentPresenceMs');
  if (cfg.chat.agentPresenceMs < 100) throw new Error('chat.agentPresenceMs must be at least 100');
  positiveInt(cfg.chat.queueMaxWaiting, 'chat.queueMaxWaiting');
  positiveInt(cfg.chat.maxAgentsPerTenant, 'chat.maxAgentsPerTenant');
  positiveInt(cfg.chat.agentMaxCapacity, 'chat.agentMaxCapacity');
  positiveInt(cfg.chat.agentDefaultCapacity, 'chat.agentDefaultCapacity');
  if (cfg.chat.agentDefaultCapacity > cfg.chat.agentMaxCapacity)
    throw new Error('chat.agentDefaultCapacity must not exceed chat.agentMaxCapacity');
  positiveInt(cfg.chat.agentMaxSkills, 'chat.agentMaxSkills');
  positiveInt(cfg.chat.maxOpenListed, 'chat.maxOpenListed');
  intInRange(cfg.chat.receptionTickMs, 100, 600_000, 'chat.receptionTickMs');
  positiveInt(cfg.pool.maxBuffered, 'pool.maxBuffered');
  positiveInt(cfg.presence.maxUsers, 'presence.maxUsers');
  positiveInt(cfg.presence.maxPendingJoins, 'presence.maxPendingJoins');
  nonNegativeInt(cfg.presence.maxRoutes, 'presence.maxRoutes');
  nonNegativeInt(cfg.storage.cmidTtlS, 'storage.cmidTtlS');
  positiveInt(cfg.storage.requestTimeoutMs, 'storage.requestTimeoutMs');
  intInRange(cfg.storage.requestsInFlight, 1, 2000, 'storage.requestsInFlight');
  nonNegativeInt(cfg.storage.requestsWaiting, 'storage.requestsWaiting');
  positiveInt(cfg.storage.writerMaxPending, 'storage.writerMaxPending');
  positiveInt(cfg.storage.writerMaxInFlight, 'storage.writerMaxInFlight');
  positiveInt(cfg.storage.writerMaxAttempts, 'storage.writerMaxAttempts');
  positiveInt(cfg.storage.writerMaxBatchPartitions, 'storage.writerMaxBatchPartitions');
  intInRange(cfg.storage.writerLingerMs, 0, 100, 'storage.writerLingerMs');
  if (typeof cfg.storage.compress !== 'boolean') throw new Error('storage.compress must be a boolean');
  if (!Number.isInteger(cfg.storage.cacheMaxBytes) || cfg.storage.cacheMaxBytes < 0) {
    throw new Error('storage.cacheMaxBytes must be a non-negative integer (0 turns the caches off)');
  }
  positiveInt(cfg.storage.cacheTailMessages, 'storage.cacheTailMessages');
  const tr = cfg.telemetry.tracing;
  if (typeof tr.enabled !== 'boolean') throw new Error('telemetry.tracing.enabled must be a boolean');
  if (!TRACE_EXPORTERS.includes(tr.exporter))
    throw new Error(`telemetry.tracing.exporter must be one of ${TRACE_EXPORTERS.join(', ')} (or none)`);
  if (!/^https?:\/\/[^\s]+$/.test(tr.endpoint))
    throw new Error('telemetry.tracing.endpoint must be an http(s) URL');
  if (!SAMPLERS.includes(tr.sampler))
    throw new Error(`telemetry.tracing.sampler must be one of ${SAMPLERS.join(', ')}`);
  if (!(tr.samplerRatio >= 0 && tr.samplerRatio <= 1))
    throw new Error('telemetry.tracing.samplerRatio must be a number from 0 to 1');
  if (tr.serviceName.length === 0) throw new Error('telemetry.tracing.serviceName must not be empty');
  positiveInt(tr.batchDelayMs, 'telemetry.tracing.batchDelayMs');
  positiveInt(tr.maxQueueSize, 'telemetry.tracing.maxQueueSize');
  return deepFreeze(cfg);
}

function deepFreeze<T extends object>(obj: T): Readonly<T> {
  for (const v of Object.values(obj)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(obj);
}

/** `k1=v1,k2=v2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS; values percent-encoded). */
function pairsFromEnv(env: NodeJS.ProcessEnv, name: string): Record<string, string> | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const out: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`${name} must be a list of key=value pairs, got '${raw}'`);
    out[pair.slice(0, eq).trim()] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  return out;
}

function numberFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${raw}'`);
  return n;
}

/**
 * Tracing from the standard OTEL_* variables (OpenTelemetry SDK environment specification). Off unless
 * OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set; OTEL_SDK_DISABLED=true and
 * OTEL_TRACES_EXPORTER=none turn it off whatever else is set.
 */
function tracingFromEnv(env: NodeJS.ProcessEnv): DeepPartial<TracingConfig> {
  const exporterVar = env['OTEL_TRACES_EXPORTER']?.trim().toLowerCase() || undefined;
  const tracesEndpoint = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim() || undefined;
  const baseEndpoint = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim().replace(/\/+$/, '') || undefined;
  const disabled = boolFromEnv(env, 'OTEL_SDK_DISABLED') === true || exporterVar === 'none';
  const ratio = numberFromEnv(env, 'OTEL_TRACES_SAMPLER_ARG');
  return {
    enabled: !disabled && (exporterVar !== undefined || (tracesEndpoint ?? baseEndpoint) !== undefined),
    exporter: exporterVar === 'none' ? undefined : (exporterVar as TracingConfig['exporter'] | undefined),
    endpoint: tracesEndpoint ?? (baseEndpoint ? `${baseEndpoint}/v1/traces` : undefined),
    headers: {
      ...pairsFromEnv(env, 'OTEL_EXPORTER_OTLP_HEADERS'),
      ...pairsFromEnv(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
    },
    sampler: (env['OTEL_TRACES_SAMPLER']?.trim().toLowerCase() || undefined) as
      | TracingConfig['sampler']
      | undefined,
    samplerRatio: ratio,
    serviceName: env['OTEL_SERVICE_NAME']?.trim() || undefined,
    resourceAttributes: pairsFromEnv(env, 'OTEL_RESOURCE_ATTRIBUTES'),
    batchDelayMs: intFromEnv(env, 'OTEL_BSP_SCHEDULE_DELAY'),
    maxQueueSize: intFromEnv(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
  };
}

function listFromEnv(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = env[name];
  return raw ? raw.split(',').map((s) => s.trim()) : undefined;
}

/** Reads SB_* environment variables into overrides for parseConfig (documented in the README). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): DeepPartial<NodeConfig> {
  const consistency = env['SB_CASSANDRA_CONSISTENCY'] as NodeConfig['cassandra']['consistency'] | undefined;
  if (env['NODE_ENV'] === 'production' && boolFromEnv(env, 'SB_DEV_TOKENS')) {
    throw new Error('SB_DEV_TOKENS must not be on when NODE_ENV=production');
  }
  if (env['NODE_ENV'] === 'production' && !env['SB_JWT_SECRET']) {
    throw new Error('SB_JWT_SECRET must be set when NODE_ENV=production');
  }
  return {
    nodeId: env['SB_NODE_ID'] || undefined,
    cluster: env['SB_CLUSTER'] || undefined,
    http: { host: env['SB_HOST'] || undefined, port: intFromEnv(env, 'SB_PORT') },
    gateway: {
      maxFrameBytes: intFromEnv(env, 'SB_MAX_FRAME_BYTES'),
      idleTimeoutS: intFromEnv(env, 'SB_IDLE_TIMEOUT_S'),
      maxBackpressureBytes: intFromEnv(env, 'SB_MAX_BACKPRESSURE_BYTES'),
      maxSockets: intFromEnv(env, 'SB_MAX_SOCKETS'),
      upgradeRatePerS: intFromEnv(env, 'SB_UPGRADE_RATE'),
      upgradeBurst: intFromEnv(env, 'SB_UPGRADE_BURST'),
      upgradePending: intFromEnv(env, 'SB_UPGRADE_PENDING'),
      upgradeMaxRetryAfterMs: intFromEnv(env, 'SB_UPGRADE_MAX_RETRY_MS'),
      drainRetryAfterMs: intFromEnv(env, 'SB_DRAIN_RETRY_MS'),
      maxHttpBodyBytes: intFromEnv(env, 'SB_HTTP_MAX_BODY_BYTES'),
      maxHttpInflight: intFromEnv(env, 'SB_HTTP_MAX_INFLIGHT'),
      maxSendsInflight: intFromEnv(env, 'SB_SENDS_MAX_INFLIGHT'),
      rateLimitTenants: intFromEnv(env, 'SB_RATE_LIMIT_TENANTS'),
      standby: boolFromEnv(env, 'SB_GATEWAY_STANDBY'),
    },
    auth: { jwtSecret: env['SB_JWT_SECRET'] || undefined, devTokens: boolFromEnv(env, 'SB_DEV_TOKENS') },
    tenants: {
      file: env['SB_TENANTS_FILE'] || undefined,
      reloadDebounceMs: intFromEnv(env, 'SB_TENANTS_RELOAD_DEBOUNCE_MS'),
    },
    admin: { token: env['SB_ADMIN_TOKEN'] || undefined },
    nats: { servers: listFromEnv(env, 'SB_NATS_URL'), replicas: intFromEnv(env, 'SB_NATS_REPLICAS') },
    cassandra: {
      contactPoints: listFromEnv(env, 'SB_CASSANDRA'),
      localDataCenter: env['SB_CASSANDRA_DC'] || undefined,
      keyspace: env['SB_KEYSPACE'] || undefined,
      replication: env['SB_CASSANDRA_REPLICATION'] || undefined,
      consistency: consistency || undefined,
    },
    routing: {
      shardMailboxCapacity: intFromEnv(env, 'SB_SHARD_MAILBOX'),
      requestTimeoutMs: intFromEnv(env, 'SB_REQUEST_TIMEOUT_MS'),
      linkLingerMs: intFromEnv(env, 'SB_LINK_LINGER_MS'),
    },
    membership: {
      leaseTtlMs: intFromEnv(env, 'SB_LEASE_TTL_MS'),
      ownsShards: boolFromEnv(env, 'SB_OWNS_SHARDS'),
    },
    actors: { recentCmids: intFromEnv(env, 'SB_DEDUPE_WINDOW') },
    pool: {
      threads: intFromEnv(env, 'SB_POOL_THREADS'),
      maxQueue: intFromEnv(env, 'SB_POOL_MAX_QUEUE'),
      batchTexts: intFromEnv(env, 'SB_POOL_BATCH_TEXTS'),
      intervalMs: intFromEnv(env, 'SB_POOL_INTERVAL_MS'),
      maxBuffered: intFromEnv(env, 'SB_POOL_MAX_BUFFERED'),
      idleMs: intFromEnv(env, 'SB_POOL_IDLE_MS'),
    },
    storage: {
      cmidTtlS: intFromEnv(env, 'SB_CMID_TTL_S'),
      requestTimeoutMs: intFromEnv(env, 'SB_CASSANDRA_TIMEOUT_MS'),
      requestsInFlight: intFromEnv(env, 'SB_STORE_REQUESTS_IN_FLIGHT'),
      requestsWaiting: intFromEnv(env, 'SB_STORE_REQUESTS_WAITING'),
      writerMaxPending: intFromEnv(env, 'SB_WRITER_MAX_PENDING'),
      writerMaxInFlight: intFromEnv(env, 'SB_WRITER_MAX_IN_FLIGHT'),
      writerMaxAttempts: intFromEnv(env, 'SB_WRITER_MAX_ATTEMPTS'),
      writerMaxBatchPartitions: intFromEnv(env, 'SB_WRITER_MAX_BATCH_PARTITIONS'),
      writerLingerMs: intFromEnv(env, 'SB_WRITER_LINGER_MS'),
      compress: boolFromEnv(env, 'SB_COMPRESS'),
      cacheMaxBytes: intFromEnv(env, 'SB_CACHE_MAX_BYTES'),
      cacheTailMessages: intFromEnv(env, 'SB_CACHE_TAIL_MESSAGES'),
    },
    integration: {
      eventMaxBytes: intFromEnv(env, 'SB_EVENT_MAX_BYTES'),
      eventsInFlight: intFromEnv(env, 'SB_EVENTS_IN_FLIGHT'),
      dedupeWindowMs: intFromEnv(env, 'SB_EVENTS_DEDUPE_WINDOW_MS'),
      streamMaxMsgs: intFromEnv(env, 'SB_INTEGRATION_STREAM_MAX_MSGS'),
      streamMaxBytes: intFromEnv(env, 'SB_INTEGRATION_STREAM_MAX_BYTES'),
      streamMaxAgeMs: intFromEnv(env, 'SB_INTEGRATION_STREAM_MAX_AGE_MS'),
      storage: (env['SB_INTEGRATION_STORAGE'] || undefined) as
        | NodeConfig['integration']['storage']
        | undefined,
      webhookMaxAttempts: intFromEnv(env, 'SB_WEBHOOK_MAX_ATTEMPTS'),
      webhookBackoffMs: intFromEnv(env, 'SB_WEBHOOK_BACKOFF_MS'),
      webhookMaxBackoffMs: intFromEnv(env, 'SB_WEBHOOK_MAX_BACKOFF_MS'),
      webhookTimeoutMs: intFromEnv(env, 'SB_WEBHOOK_TIMEOUT_MS'),
      webhookInFlight: intFromEnv(env, 'SB_WEBHOOK_IN_FLIGHT'),
      breakerFailures: intFromEnv(env, 'SB_BREAKER_FAILURES'),
      breakerOpenMs: intFromEnv(env, 'SB_BREAKER_OPEN_MS'),
      contextCacheEntries: intFromEnv(env, 'SB_CONTEXT_CACHE_ENTRIES'),
      rulesPollMs: intFromEnv(env, 'SB_RULES_POLL_MS'),
    },
    chat: {
      cacheRows: intFromEnv(env, 'SB_CONV_CACHE_ROWS'),
      agentGraceMs: intFromEnv(env, 'SB_AGENT_GRACE_MS'),
      agentPresenceMs: intFromEnv(env, 'SB_AGENT_PRESENCE_MS'),
      queueMaxWaiting: intFromEnv(env, 'SB_QUEUE_MAX_WAITING'),
      maxAgentsPerTenant: intFromEnv(env, 'SB_MAX_AGENTS_PER_TENANT'),
      agentDefaultCapacity: intFromEnv(env, 'SB_AGENT_DEFAULT_CAPACITY'),
      agentMaxCapacity: intFromEnv(env, 'SB_AGENT_MAX_CAPACITY'),
      maxOpenListed: intFromEnv(env, 'SB_MAX_OPEN_LISTED'),
      receptionTickMs: intFromEnv(env, 'SB_RECEPTION_TICK_MS'),
    },
    presence: {
      maxUsers: intFromEnv(env, 'SB_PRESENCE_MAX_USERS'),
      maxPendingJoins: intFromEnv(env, 'SB_PRESENCE_MAX_JOINS'),
      maxRoutes: intFromEnv(env, 'SB_PRESENCE_MAX_ROUTES'),
    },
    telemetry: { tracing: tracingFromEnv(env) },
    logLevel: env['SB_LOG_LEVEL'] || undefined,
  };
}
