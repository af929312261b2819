import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_MAX_RESTART_BACKOFF_MS,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_RESTART_BACKOFF_MS,
  DEFAULT_RESTART_WINDOW_MS,
  DEFAULT_WORKER_STOP_GRACE_MS,
  defaultNodeId,
  defaultShardOwners,
  defaultV8PoolSize,
  defaultWorkerCount,
  MANY_WORKERS_SEMI_SPACE_MB,
  NODE_DEFAULT_V8_POOL_SIZE,
  parseSupervisorOptions,
  restartDecision,
  THROUGHPUT_HEAP_GROWING_PERCENT,
  workerEnv,
  workerExecArgv,
  workerId,
} from '../../src/supervisor-options.js';

const policy = {
  maxRestarts: DEFAULT_MAX_RESTARTS,
  restartWindowMs: DEFAULT_RESTART_WINDOW_MS,
  restartBackoffMs: DEFAULT_RESTART_BACKOFF_MS,
  maxRestartBackoffMs: DEFAULT_MAX_RESTART_BACKOFF_MS,
};

test('supervisor options - defaults are filled in and the result is frozen', () => {
  const o = parseSupervisorOptions({ port: 8080, nodeId: 'n1', env: {} });
  assert.equal(o.workers >= 1, true);
  assert.equal(o.stopGraceMs, DEFAULT_WORKER_STOP_GRACE_MS);
  assert.equal(o.maxRestarts, DEFAULT_MAX_RESTARTS);
  assert.match(o.cliPath, /cli\.js$/);
  assert.equal(Object.isFrozen(o), true);
  assert.equal(workerId(o.nodeId, 3), 'n1-w3');
});

test('supervisor options - many workers get a small young generation, one or two keep V8 default (#14)', () => {
  const argv = (workers: number, semiSpaceMb?: number) =>
    workerExecArgv(
      parseSupervisorOptions({
        port: 1,
        nodeId: 'n1',
        workers,
        v8PoolSize: 0,
        heapGrowingPercent: 0,
        pretenuring: true,
        ...(semiSpaceMb === undefined ? {} : { semiSpaceMb }),
      }),
    );
  assert.deepEqual(argv(1), []);
  assert.deepEqual(argv(2), []);
  assert.deepEqual(argv(3), [`--max-semi-space-size=${MANY_WORKERS_SEMI_SPACE_MB}`]);
  assert.deepEqual(argv(7), ['--max-semi-space-size=2']);
  assert.deepEqual(argv(7, 0), [], 'an explicit 0 keeps V8 default');
  assert.deepEqual(argv(1, 8), ['--max-semi-space-size=8']);
});

test('supervisor options - workers beyond the CPUs but one hold sockets only; the first ones own the shards (#13, #14)', () => {
  // 2 CPUs: one owner, whatever the worker count (6 workers hold 100k sockets).
  assert.equal(defaultShardOwners(1, 2), 1);
  assert.equal(defaultShardOwners(2, 2), 1);
  assert.equal(defaultShardOwners(6, 2), 1);
  assert.equal(defaultShardOwners(6, 16), 6);
  assert.equal(defaultShardOwners(20, 16), 15);
  const six = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 6 });
  assert.equal(six.shardOwners, defaultShardOwners(6));
  const two = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 6, shardOwners: 2 });
  assert.deepEqual(
    [0, 1, 2, 5].map((i) => workerEnv(two, i).SB_OWNS_SHARDS),
    ['1', '1', '0', '0'],
  );
  // The gateways stand by while the owners are calm (src/listener-group.ts), unless told not to.
  assert.equal(two.gatewayStandby, true);
  assert.deepEqual(
    [0, 1, 2, 5].map((i) => workerEnv(two, i).SB_GATEWAY_STANDBY),
    ['0', '0', '1', '1'],
  );
  const always = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 6, gatewayStandby: false });
  assert.deepEqual(
    [0, 5].map((i) => workerEnv(always, i).SB_GATEWAY_STANDBY),
    ['0', '0'],
  );
  const standbyEnv = (v: string) =>
    parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 2, env: { SB_GATEWAY_STANDBY: v } })
      .gatewayStandby;
  assert.equal(standbyEnv('0'), false);
  assert.equal(standbyEnv('1'), true);
  assert.throws(() => standbyEnv('maybe'), /SB_GATEWAY_STANDBY must be true or false/);
  assert.equal(parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 3, shardOwners: 3 }).shardOwners, 3);
  const fromEnv = (v: string) =>
    parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 6, env: { SB_SHARD_OWNERS: v } });
  assert.equal(fromEnv('6').shardOwners, 6, 'SB_SHARD_OWNERS sets the default');
  assert.equal(
    parseSupervisorOptions({
      port: 1,
      nodeId: 'n1',
      workers: 6,
      shardOwners: 2,
      env: { SB_SHARD_OWNERS: '6' },
    }).shardOwners,
    2,
    'an explicit option wins over SB_SHARD_OWNERS',
  );
  assert.throws(() => fromEnv('all'), /SB_SHARD_OWNERS must be an integer/);
  assert.throws(() => fromEnv('7'), /shardOwners/);
  assert.throws(
    () => parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 3, shardOwners: 0 }),
    /shardOwners/,
  );
  assert.throws(
    () => parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 3, shardOwners: 4 }),
    /shardOwners/,
  );
  assert.throws(
    () => parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 3, shardOwners: 1.5 }),
    /shardOwners/,
  );
});

test("supervisor options - V8's helper threads stay within a worker's share of the CPUs (#13)", () => {
  // One worker on 2 CPUs: one helper beside its main thread, not Node's 4.
  assert.equal(defaultV8PoolSize(1, 2), 1);
  assert.equal(defaultV8PoolSize(1, 1), 1);
  assert.equal(defaultV8PoolSize(1, 4), 3);
  assert.equal(defaultV8PoolSize(1, 16), NODE_DEFAULT_V8_POOL_SIZE);
  assert.equal(defaultV8PoolSize(15, 16), 1);
  assert.equal(defaultV8PoolSize(2, 16), 4);
  assert.equal(defaultV8PoolSize(4, 16), 3);
  const o = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 1 });
  assert.equal(o.v8PoolSize, defaultV8PoolSize(1));
  assert.ok(workerExecArgv(o).includes(`--v8-pool-size=${defaultV8PoolSize(1)}`));
  const given = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 7, v8PoolSize: 2 });
  assert.deepEqual(workerExecArgv(given), ['--max-semi-space-size=2', '--v8-pool-size=2']);
  assert.ok(
    !workerExecArgv(parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 1, v8PoolSize: 0 })).some((a) =>
      a.startsWith('--v8-pool-size'),
    ),
    "an explicit 0 keeps Node's default",
  );
  assert.throws(() => parseSupervisorOptions({ port: 1, nodeId: 'n1', v8PoolSize: -1 }), /v8PoolSize/);
  assert.throws(() => parseSupervisorOptions({ port: 1, nodeId: 'n1', v8PoolSize: 1.5 }), /v8PoolSize/);
});

test("supervisor options - one or two workers grow V8's old generation 4x and skip pretenuring, more keep V8's own (#13)", () => {
  const gc = (o: Partial<Parameters<typeof parseSupervisorOptions>[0]>) =>
    workerExecArgv(parseSupervisorOptions({ port: 1, nodeId: 'n1', v8PoolSize: 0, ...o }));
  const throughput = [
    `--heap-growing-percent=${THROUGHPUT_HEAP_GROWING_PERCENT}`,
    '--no-allocation-site-pretenuring',
  ];
  assert.equal(THROUGHPUT_HEAP_GROWING_PERCENT, 300);
  assert.deepEqual(gc({ workers: 1 }), throughput);
  assert.deepEqual(gc({ workers: 2 }), throughput);
  assert.deepEqual(
    gc({ workers: 3 }),
    ['--max-semi-space-size=2'],
    'the many-workers shape keeps V8 defaults',
  );
  assert.deepEqual(
    gc({ workers: 1, heapGrowingPercent: 0, pretenuring: true }),
    [],
    'explicit values keep V8 defaults',
  );
  assert.deepEqual(gc({ workers: 7, semiSpaceMb: 0, heapGrowingPercent: 100, pretenuring: false }), [
    '--heap-growing-percent=100',
    '--no-allocation-site-pretenuring',
  ]);
  const o = parseSupervisorOptions({ port: 1, nodeId: 'n1', workers: 1 });
  assert.equal(o.heapGrowingPercent, THROUGHPUT_HEAP_GROWING_PERCENT);
  assert.equal(o.pretenuring, false);
});

test('supervisor options - the default worker count leaves one CPU free, never below one worker', () => {
  assert.equal(defaultWorkerCount(1), 1);
  assert.equal(defaultWorkerCount(2), 1);
  assert.equal(defaultWorkerCount(4), 3);
  assert.equal(defaultWorkerCount(16), 15);
  assert.equal(parseSupervisorOptions({ port: 0, nodeId: 'n1', env: {} }).workers, defaultWorkerCount());
});

test('supervisor options - the default node id is a valid id', () => {
  assert.doesNotThrow(() => parseSupervisorOptions({ port: 0, nodeId: defaultNodeId(), workers: 4 }));
});

const invalid: Array<[string, Parameters<typeof parseSupervisorOptions>[0], RegExp]> = [
  ['zero workers', { port: 1, workers: 0 }, /^workers must be an integer from 1 to 256$/],
  ['too many workers', { port: 1, workers: 257 }, /^workers must be an integer from 1 to 256$/],
  ['fractional workers', { port: 1, workers: 1.5 }, /^workers must be an integer/],
  ['node id with a dot', { port: 1, nodeId: 'host.example' }, /^nodeId must be/],
  ['node id too long for the suffix', { port: 1, nodeId: 'x'.repeat(62), workers: 2 }, /^nodeId must be/],
  ['negative port', { port: -1 }, /^port must be an integer from 0 to 65535$/],
  ['fractional semi-space', { port: 1, semiSpaceMb: 1.5 }, /^semiSpaceMb must be an integer from 0 to 1024$/],
  ['port too large', { port: 70000 }, /^port must be an integer from 0 to 65535$/],
  [
    'negative heap growth',
    { port: 1, heapGrowingPercent: -1 },
    /^heapGrowingPercent must be an integer from 0 to 1000$/,
  ],
  ['heap growth too large', { port: 1, heapGrowingPercent: 1001 }, /^heapGrowingPercent must be an integer/],
  ['fractional heap growth', { port: 1, heapGrowingPercent: 2.5 }, /^heapGrowingPercent must be an integer/],
  ['empty host', { port: 1, host: '' }, /^host must not be empty$/],
  ['zero grace', { port: 1, stopGraceMs: 0 }, /^stopGraceMs must be a positive integer$/],
  ['zero ready timeout', { port: 1, readyTimeoutMs: 0 }, /^readyTimeoutMs must be a positive integer$/],
  ['negative restarts', { port: 1, maxRestarts: -1 }, /^maxRestarts must be a non-negative integer$/],
  ['zero window', { port: 1, restartWindowMs: 0 }, /^restartWindowMs must be a positive integer$/],
  [
    'cap below base backoff',
    { port: 1, restartBackoffMs: 500, maxRestartBackoffMs: 100 },
    /^maxRestartBackoffMs must be at least restartBackoffMs$/,
  ],
];

for (const [name, input, message] of invalid) {
  test(`supervisor options - rejects ${name}`, () => {
    assert.throws(() => parseSupervisorOptions({ nodeId: 'n1', ...input }), { message });
  });
}

test('supervisor restarts - the delay doubles with each restart in the window, up to the cap', () => {
  const now = 1_000_000;
  const delays: number[] = [];
  const history: number[] = [];
  for (let i = 0; i < DEFAULT_MAX_RESTARTS; i++) {
    const d = restartDecision(history, now, { ...policy, maxRestartBackoffMs: 1_000 });
    assert.equal(d.restart, true);
    if (d.restart) delays.push(d.delayMs);
    history.push(now - 1);
  }
  assert.deepEqual(delays, [250, 500, 1000, 1000, 1000]);
});

test('supervisor restarts - the next crash after the limit within the window gives the worker up', () => {
  const now = 1_000_000;
  const history = Array.from({ length: DEFAULT_MAX_RESTARTS }, (_, i) => now - 1_000 * (i + 1));
  const d = restartDecision(history, now, policy);
  assert.equal(d.restart, false);
  if (!d.restart) assert.match(d.reason, /5 restarts within 60000 ms/);
});

test('supervisor restarts - restarts older than the window no longer count', () => {
  const now = 1_000_000;
  const old = Array.from({ length: 10 }, (_, i) => now - DEFAULT_RESTART_WINDOW_MS - i);
  assert.deepEqual(restartDecision(old, now, policy), { restart: true, delayMs: DEFAULT_RESTART_BACKOFF_MS });
  assert.deepEqual(restartDecision([...old, now - 10], now, policy), {
    restart: true,
    delayMs: 2 * DEFAULT_RESTART_BACKOFF_MS,
  });
});

test('supervisor restarts - maxRestarts 0 never restarts', () => {
  assert.equal(restartDecision([], 0, { ...policy, maxRestarts: 0 }).restart, false);
});
