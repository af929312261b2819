import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  configFromEnv,
  DEFAULT_HTTP_PORT,
  DEFAULT_KEYSPACE,
  DEFAULT_NATS_URL,
  DEFAULT_SHARD_MAILBOX_CAPACITY,
  DEV_JWT_SECRET,
  type DeepPartial,
  type NodeConfig,
  parseConfig,
} from '../../src/config.js';

const GOOD_SECRET = 'x'.repeat(32);

function assertDeeplyFrozen(value: unknown, path: string): void {
  if (value === null || typeof value !== 'object') return;
  assert.ok(Object.isFrozen(value), `${path} is frozen`);
  for (const [k, v] of Object.entries(value)) assertDeeplyFrozen(v, `${path}.${k}`);
}

test('config - defaults are valid and use the named constants', () => {
  const cfg = parseConfig();
  assert.equal(cfg.http.port, DEFAULT_HTTP_PORT);
  assert.deepEqual(cfg.nats.servers, [DEFAULT_NATS_URL]);
  assert.equal(cfg.cassandra.keyspace, DEFAULT_KEYSPACE);
  assert.equal(cfg.routing.shardMailboxCapacity, DEFAULT_SHARD_MAILBOX_CAPACITY);
  assert.equal(cfg.auth.jwtSecret, DEV_JWT_SECRET);
  assert.equal(cfg.auth.devSecret, true);
  assert.match(cfg.nodeId, /^[A-Za-z0-9_-]{1,64}$/);
});

test('config - the result is frozen, nested objects and arrays included', () => {
  const cfg = parseConfig({ nodeId: 'n1' });
  assertDeeplyFrozen(cfg, 'cfg');
  assert.throws(() => {
    (cfg.http as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => (cfg.nats.servers as string[]).push('nats://x'), TypeError);
});

test('config - overrides merge over defaults field by field', () => {
  const cfg = parseConfig({ nodeId: 'n1', http: { port: 0 }, auth: { jwtSecret: GOOD_SECRET } });
  assert.equal(cfg.http.port, 0);
  assert.equal(cfg.http.host, '127.0.0.1');
  assert.equal(cfg.auth.devSecret, false);
  assert.equal(cfg.gateway.maxBodyChars, parseConfig().gateway.maxBodyChars);
});

const INVALID: ReadonlyArray<[DeepPartial<NodeConfig>, RegExp]> = [
  [{ nodeId: '' }, /^nodeId must be 1-64 characters/],
  [{ tenants: { reloadDebounceMs: 0 } }, /^tenants\.reloadDebounceMs must be a positive integer$/],
  [{ admin: { token: 'short' } }, /^admin\.token must be at least 24 characters$/],
  [{ nodeId: 'has.dot' }, /^nodeId must be 1-64 characters/],
  [{ nodeId: 'n'.repeat(65) }, /^nodeId must be 1-64 characters/],
  [{ http: { port: -1 } }, /^http\.port must be an integer from 0 to 65535$/],
  [{ http: { port: 65536 } }, /^http\.port must be an integer from 0 to 65535$/],
  [{ http: { port: 80.5 } }, /^http\.port must be an integer from 0 to 65535$/],
  [{ gateway: { maxFrameBytes: 0 } }, /^gateway\.maxFrameBytes must be a positive integer$/],
  [{ gateway: { maxBodyChars: 1.5 } }, /^gateway\.maxBodyChars must be a positive integer$/],
  [{ gateway: { idleTimeoutS: -8 } }, /^gateway\.idleTimeoutS must be a positive integer$/],
  [{ gateway: { idleTimeoutS: 7 } }, /^gateway\.idleTimeoutS must be at least 8/],
  [{ gateway: { maxBackpressureBytes: 0 } }, /^gateway\.maxBackpressureBytes must be a positive integer$/],
  [{ auth: { jwtSecret: 'x'.repeat(31) } }, /^auth\.jwtSecret must be at least 32 characters$/],
  [{ nats: { servers: [] } }, /^nats\.servers must name at least one server$/],
  [{ nats: { servers: [''] } }, /^nats\.servers must name at least one server$/],
  [{ cassandra: { contactPoints: [] } }, /^cassandra\.contactPoints must name at least one host$/],
  [{ cassandra: { keyspace: 'Upper' } }, /^cassandra\.keyspace must be a lower-case CQL identifier/],
  [{ cassandra: { keyspace: '1ks' } }, /^cassandra\.keyspace must be a lower-case CQL identifier/],
  [{ cassandra: { keyspace: 'k'.repeat(49) } }, /^cassandra\.keyspace must be a lower-case CQL identifier/],
  [{ routing: { shardMailboxCapacity: 0 } }, /^routing\.shardMailboxCapacity must be a positive integer$/],
  [{ gateway: { maxSendsInflight: 0 } }, /^gateway\.maxSendsInflight must be a positive integer$/],
  [{ chat: { cacheRows: 1001 } }, /^chat\.cacheRows must be an integer from 0 to 1000$/],
  [{ chat: { agentGraceMs: 0 } }, /^chat\.agentGraceMs must be a positive integer$/],
  [{ chat: { agentPresenceMs: 50 } }, /^chat\.agentPresenceMs must be at least 100$/],
  [{ chat: { queueMaxWaiting: 0 } }, /^chat\.queueMaxWaiting must be a positive integer$/],
  [{ chat: { maxAgentsPerTenant: -1 } }, /^chat\.maxAgentsPerTenant must be a positive integer$/],
  [
    { chat: { agentDefaultCapacity: 9, agentMaxCapacity: 8 } },
    /^chat\.agentDefaultCapacity must not exceed chat\.agentMaxCapacity$/,
  ],
  [{ chat: { maxOpenListed: 0 } }, /^chat\.maxOpenListed must be a positive integer$/],
  [{ routing: { actorMailboxCapacity: -1 } }, /^routing\.actorMailboxCapacity must be a positive integer$/],
  [{ routing: { requestTimeoutMs: Number.NaN } }, /^routing\.requestTimeoutMs must be a positive integer$/],
  [{ routing: { linkLingerMs: -1 } }, /^routing\.linkLingerMs must be a non-negative integer$/],
  [{ routing: { linkLingerMs: 51 } }, /^routing\.linkLingerMs must be at most 50$/],
  [{ membership: { leaseTtlMs: 0 } }, /^membership\.leaseTtlMs must be a positive integer$/],
  [{ membership: { leaseTtlMs: 1499 } }, /^membership\.leaseTtlMs must be at least 1500$/],
  [{ actors: { maxActive: 0 } }, /^actors\.maxActive must be a positive integer$/],
  [{ actors: { idleMs: 2.5 } }, /^actors\.idleMs must be a positive integer$/],
  [{ actors: { recentCmids: 0 } }, /^actors\.recentCmids must be a positive integer$/],
  [{ pool: { threads: 0 } }, /^pool\.threads must be a positive integer$/],
  [{ pool: { maxQueue: -5 } }, /^pool\.maxQueue must be a positive integer$/],
  [{ pool: { batchTexts: 0 } }, /^pool\.batchTexts must be a positive integer$/],
  [{ pool: { intervalMs: -1 } }, /^pool\.intervalMs must be a non-negative integer$/],
  [{ pool: { idleMs: 0 } }, /^pool\.idleMs must be a positive integer$/],
  [{ storage: { writerLingerMs: 101 } }, /^storage\.writerLingerMs must be an integer from 0 to 100$/],
  [{ storage: { writerLingerMs: -1 } }, /^storage\.writerLingerMs must be an integer from 0 to 100$/],
  [{ storage: { requestsInFlight: 2001 } }, /^storage\.requestsInFlight must be an integer from 1 to 2000$/],
  [{ storage: { requestsInFlight: 0 } }, /^storage\.requestsInFlight must be an integer from 1 to 2000$/],
  [{ storage: { requestsWaiting: -1 } }, /^storage\.requestsWaiting must be a non-negative integer$/],
  [{ gateway: { maxSockets: -1 } }, /^gateway\.maxSockets must be a non-negative integer$/],
  [{ gateway: { upgradeRatePerS: 0 } }, /^gateway\.upgradeRatePerS must be a positive integer$/],
  [{ gateway: { upgradeBurst: 0 } }, /^gateway\.upgradeBurst must be a positive integer$/],
  [{ gateway: { upgradePending: -1 } }, /^gateway\.upgradePending must be a positive integer$/],
  [
    { gateway: { upgradeMaxRetryAfterMs: 1.5 } },
    /^gateway\.upgradeMaxRetryAfterMs must be a positive integer$/,
  ],
  [{ presence: { maxUsers: 0 } }, /^presence\.maxUsers must be a positive integer$/],
  [{ presence: { maxPendingJoins: 1.5 } }, /^presence\.maxPendingJoins must be a positive integer$/],
  [{ presence: { maxRoutes: -1 } }, /^presence\.maxRoutes must be a non-negative integer$/],
];

test('config - each invalid field is refused with its fixed message', () => {
  for (const [override, message] of INVALID) {
    assert.throws(
      () => parseConfig({ nodeId: 'n1', ...override }),
      { message },
      `${JSON.stringify(override)} is refused with ${message}`,
    );
  }
});

test('config - boundary values are accepted', () => {
  const cfg = parseConfig({
    nodeId: 'n'.repeat(64),
    http: { port: 65535 },
    gateway: { idleTimeoutS: 8 },
    auth: { jwtSecret: GOOD_SECRET },
    cassandra: { keyspace: 'k'.repeat(48) },
    membership: { leaseTtlMs: 1500 },
    pool: { intervalMs: 0 },
  });
  assert.equal(cfg.pool.intervalMs, 0);
  assert.equal(cfg.membership.leaseTtlMs, 1500);
});

test('config - an unknown cassandra.consistency is refused', () => {
  // The type allows four levels; a value from SB_CASSANDRA_CONSISTENCY is only cast, never checked.
  const consistency = 'LOCAL_QUROUM' as NodeConfig['cassandra']['consistency'];
  assert.throws(() => parseConfig({ nodeId: 'n1', cassandra: { consistency } }), /cassandra\.consistency/);
});

test('configFromEnv - maps SB_* variables onto the config', () => {
  const cfg = parseConfig(
    configFromEnv({
      SB_NODE_ID: 'node-7',
      SB_HOST: '0.0.0.0',
      SB_PORT: '9090',
      SB_JWT_SECRET: GOOD_SECRET,
      SB_CASSANDRA: '10.0.0.1:9042,10.0.0.2:9042',
      SB_CASSANDRA_DC: 'dc2',
      SB_KEYSPACE: 'sb_test',
      SB_CASSANDRA_CONSISTENCY: 'LOCAL_QUORUM',
      SB_SHARD_MAILBOX: '32',
      SB_REQUEST_TIMEOUT_MS: '750',
      SB_LEASE_TTL_MS: '3000',
      SB_POOL_THREADS: '2',
      SB_POOL_MAX_QUEUE: '8',
      SB_POOL_IDLE_MS: '5000',
      SB_PRESENCE_MAX_USERS: '5000',
      SB_PRESENCE_MAX_JOINS: '70',
      SB_PRESENCE_MAX_ROUTES: '0',
      SB_LOG_LEVEL: 'debug',
    }),
  );
  assert.deepEqual(cfg.presence, { maxUsers: 5000, maxPendingJoins: 70, maxRoutes: 0 });
  assert.equal(cfg.nodeId, 'node-7');
  assert.deepEqual(cfg.http, { host: '0.0.0.0', port: 9090 });
  assert.equal(cfg.auth.jwtSecret, GOOD_SECRET);
  assert.deepEqual(cfg.cassandra.contactPoints, ['10.0.0.1:9042', '10.0.0.2:9042']);
  assert.equal(cfg.cassandra.localDataCenter, 'dc2');
  assert.equal(cfg.cassandra.keyspace, 'sb_test');
  assert.equal(cfg.cassandra.consistency, 'LOCAL_QUORUM');
  assert.equal(cfg.routing.shardMailboxCapacity, 32);
  assert.equal(cfg.routing.requestTimeoutMs, 750);
  assert.equal(cfg.membership.leaseTtlMs, 3000);
  assert.deepEqual(cfg.pool, {
    ...parseConfig().pool,
    threads: 2,
    maxQueue: 8,
    maxBuffered: 8 * 64,
    idleMs: 5000,
  });
  assert.equal(cfg.logLevel, 'debug');
});

test('configFromEnv - gateway limits, tenants file and admin token', () => {
  const cfg = parseConfig(
    configFromEnv({
      SB_NODE_ID: 'n1',
      SB_MAX_FRAME_BYTES: '1024',
      SB_IDLE_TIMEOUT_S: '12',
      SB_MAX_BACKPRESSURE_BYTES: '2048',
      SB_HTTP_MAX_BODY_BYTES: '512',
      SB_HTTP_MAX_INFLIGHT: '7',
      SB_SENDS_MAX_INFLIGHT: '9',
      SB_RATE_LIMIT_TENANTS: '9',
      SB_TENANTS_FILE: '/etc/sb/tenants.yaml',
      SB_TENANTS_RELOAD_DEBOUNCE_MS: '30',
      SB_ADMIN_TOKEN: 'a-long-enough-admin-token-123',
    }),
  );
  assert.equal(cfg.gateway.maxFrameBytes, 1024);
  assert.equal(cfg.gateway.idleTimeoutS, 12);
  assert.equal(cfg.gateway.maxBackpressureBytes, 2048);
  assert.equal(cfg.gateway.maxHttpBodyBytes, 512);
  assert.equal(cfg.gateway.maxHttpInflight, 7);
  assert.equal(cfg.gateway.maxSendsInflight, 9);
  assert.equal(cfg.gateway.rateLimitTenants, 9);
  assert.deepEqual(cfg.tenants, { file: '/etc/sb/tenants.yaml', reloadDebounceMs: 30 });
  assert.equal(cfg.admin.token, 'a-long-enough-admin-token-123');
});

test('configFromEnv - an empty environment leaves every default', () => {
  const cfg = parseConfig({ ...configFromEnv({}), nodeId: 'n1' });
  assert.deepEqual(cfg, parseConfig({ nodeId: 'n1' }));
});

test('configFromEnv - SB_NATS_URL is a comma-separated list, trimmed', () => {
  const cfg = parseConfig(configFromEnv({ SB_NODE_ID: 'n1', SB_NATS_URL: 'nats://a:4222, nats://b:4222 ,' }));
  assert.deepEqual(cfg.nats.servers, ['nats://a:4222', 'nats://b:4222']);
});

test('configFromEnv - a non-integer SB_PORT throws naming the variable', () => {
  for (const raw of ['abc', '80.5', '8080x']) {
    assert.throws(
      () => configFromEnv({ SB_PORT: raw }),
      { message: new RegExp(`^SB_PORT must be an integer, got '${raw}'`) },
      raw,
    );
  }
});

test('configFromEnv - a blank SB_PORT throws instead of becoming port 0', () => {
  // Number(' ') is 0, which would silently mean "any free port".
  assert.throws(() => configFromEnv({ SB_PORT: ' ' }), /SB_PORT must be an integer/);
});

test('configFromEnv - NODE_ENV=production without SB_JWT_SECRET throws', () => {
  assert.throws(() => configFromEnv({ NODE_ENV: 'production' }), /SB_JWT_SECRET must be set/);
  assert.throws(() => configFromEnv({ NODE_ENV: 'production', SB_JWT_SECRET: '' }), /SB_JWT_SECRET/);
  const cfg = parseConfig(configFromEnv({ NODE_ENV: 'production', SB_JWT_SECRET: GOOD_SECRET }));
  assert.equal(cfg.auth.devSecret, false);
});

test('config - integration bounds are validated', () => {
  const cases: Array<[DeepPartial<NodeConfig>, RegExp]> = [
    [{ integration: { eventsInFlight: 0 } }, /integration.eventsInFlight must be a positive integer/],
    [{ integration: { webhookMaxAttempts: 21 } }, /webhookMaxAttempts must be at most 20/],
    [
      { integration: { webhookBackoffMs: 1000, webhookMaxBackoffMs: 10 } },
      /webhookMaxBackoffMs must be at least/,
    ],
    [{ integration: { dedupeWindowMs: 2000, streamMaxAgeMs: 1000 } }, /dedupeWindowMs must not exceed/],
    [{ integration: { storage: 'disk' as 'file' } }, /integration.storage must be one of file, memory/],
  ];
  for (const [overrides, error] of cases) assert.throws(() => parseConfig(overrides), error);
  const env = configFromEnv({ SB_WEBHOOK_MAX_ATTEMPTS: '3', SB_INTEGRATION_STORAGE: 'memory' });
  const cfg = parseConfig(env);
  assert.equal(cfg.integration.webhookMaxAttempts, 3);
  assert.equal(cfg.integration.storage, 'memory');
});

test('config - deploy/production.env gives RF 3 NetworkTopologyStrategy with LOCAL_QUORUM and storage bounds', async () => {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(new URL('../../../deploy/production.env', import.meta.url), 'utf8');
  const env: NodeJS.ProcessEnv = { SB_JWT_SECRET: GOOD_SECRET };
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  const cfg = parseConfig(configFromEnv(env));
  assert.equal(cfg.cassandra.consistency, 'LOCAL_QUORUM');
  assert.match(cfg.cassandra.replication, /'class': 'NetworkTopologyStrategy', 'dc1': 3/);
  assert.equal(cfg.cassandra.localDataCenter, 'dc1');
  assert.ok(cfg.storage.requestTimeoutMs < cfg.routing.requestTimeoutMs);
  assert.equal(cfg.storage.compress, true);
});

test('config - storage and pool bounds are validated', () => {
  const cases: [DeepPartial<NodeConfig>, string][] = [
    [{ storage: { cmidTtlS: -1 } }, 'storage.cmidTtlS must be a non-negative integer'],
    [{ storage: { writerMaxAttempts: 0 } }, 'storage.writerMaxAttempts must be a positive integer'],
    [
      { storage: { cacheMaxBytes: -1 } },
      'storage.cacheMaxBytes must be a non-negative integer (0 turns the caches off)',
    ],
    [{ pool: { maxBuffered: 0 } }, 'pool.maxBuffered must be a positive integer'],
  ];
  for (const [o, message] of cases) assert.throws(() => parseConfig(o), { message });
  assert.throws(() => configFromEnv({ SB_COMPRESS: 'maybe' }), {
    message: "SB_COMPRESS must be true or false, got 'maybe'",
  });
  assert.equal(parseConfig(configFromEnv({ SB_COMPRESS: 'off' })).storage.compress, false);
});

test('configFromEnv - SB_OWNS_SHARDS makes a gateway-only member; a member owns shards unless told', () => {
  assert.equal(parseConfig({}).membership.ownsShards, true);
  assert.equal(parseConfig(configFromEnv({ SB_OWNS_SHARDS: '0' })).membership.ownsShards, false);
  assert.equal(parseConfig(configFromEnv({ SB_OWNS_SHARDS: '1' })).membership.ownsShards, true);
  // A gateway stands by only when its supervisor says so (src/listener-group.ts).
  assert.equal(parseConfig(configFromEnv({})).gateway.standby, false);
  assert.equal(parseConfig(configFromEnv({ SB_GATEWAY_STANDBY: '1' })).gateway.standby, true);
  assert.throws(() => configFromEnv({ SB_OWNS_SHARDS: 'some' }), {
    message: "SB_OWNS_SHARDS must be true or false, got 'some'",
  });
});

test('configFromEnv - development mode (demo tokens) follows the development secret unless SB_DEV_TOKENS says', () => {
  const cases: [Record<string, string>, boolean][] = [
    [{}, true],
    [{ SB_JWT_SECRET: 'a-real-secret-of-at-least-32-characters!' }, false],
    [{ SB_JWT_SECRET: 'a-real-secret-of-at-least-32-characters!', SB_DEV_TOKENS: 'true' }, true],
    [{ SB_DEV_TOKENS: 'false' }, false],
  ];
  for (const [env, devTokens] of cases) {
    const cfg = parseConfig({ ...configFromEnv(env), nodeId: 'n1' });
    assert.equal(cfg.auth.devTokens, devTokens, JSON.stringify(env));
  }
  assert.throws(
    () => configFromEnv({ NODE_ENV: 'production', SB_JWT_SECRET: 'x'.repeat(40), SB_DEV_TOKENS: 'on' }),
    /SB_DEV_TOKENS must not be on when NODE_ENV=production/,
  );
});
