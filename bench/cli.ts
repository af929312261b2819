#!/usr/bin/env node
/**
 * The SRE bench suite's entry point: `npm run bench -- <scenario> [options]`. Each scenario starts what it
 * needs (reusing NATS and Cassandra when they answer) or targets a running node with --url, shows live
 * progress on stderr, and writes bench/results/<scenario>-<timestamp>.{json,md} plus SVG charts.
 * Defaults are the targets; see BENCHMARKS.md for what each figure means.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultWorkerCount } from '../src/supervisor-options.js';
import { clusterScenario } from './cluster/scenario.js';
import { DEFAULT_CONNECTIONS_PER_WORKER, DEFAULT_SOCKETS_PER_GENERATOR } from './connections/plan.js';
import { type ConnectionsOptions, connectionsScenario } from './connections/scenario.js';
import { STORM_KINDS, type StormKind } from './connections/storm.js';
import { e2eScenario } from './e2e/scenario.js';
import { DEFAULT_OBJECTIVE, type Objective } from './e2e/sweep.js';
import { eventsScenario } from './events/scenario.js';
import { DEFAULT_FAULTS_OPTIONS, type FaultsOptions, faultsScenario } from './faults/scenario.js';
import { type IngestOptions, ingestScenario } from './ingest/scenario.js';
import type { CommonOptions } from './lib/common.js';
import { parseTraceRatio } from './lib/otlp-sink.js';
import { addProfile, type CpuProfile, emptyTotals, stageMarkdown, stageTable } from './lib/profile-stages.js';
import { PRIVATE_NATS } from './lib/servers.js';
import { DEFAULT_BENCH_KEYSPACE } from './lib/target.js';
import {
  fileTimestamp,
  parseCount,
  parseCountList,
  parseDurationMs,
  parsePercent,
  parsePositiveCount,
  parsePositiveNumber,
} from './lib/units.js';
import { peersScenario } from './peers/scenario.js';
import { PEER_SYSTEMS, type PeerSystem } from './peers/targets.js';
import { DEFAULT_STORAGE_OPTIONS, storageScenario } from './storage/scenario.js';

/** The development secret of src/config.ts: what a `switchboard start` node verifies with by default. */
const DEV_JWT_SECRET = 'switchboard-dev-secret-change-me-0123456789';
const EXIT_INTERRUPTED = 130;

const abort = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(EXIT_INTERRUPTED);
  interrupted = true;
  process.stderr.write(
    '\ninterrupted: ending the load, then writing the report (Ctrl-C again to quit now)\n',
  );
  abort.abort();
});
process.on('SIGTERM', () => abort.abort());

interface RawCommon {
  url?: string;
  nats: string;
  cassandra: string;
  keyspace: string;
  keepKeyspace?: boolean;
  jwtSecret: string;
  out: string;
  quiet?: boolean;
}

function parseStorms(value: string): StormKind[] {
  if (value === 'none') return [];
  const kinds = value.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!STORM_KINDS.includes(k as StormKind))
      throw new InvalidArgumentError(`unknown storm '${k}' (drain, kill, none)`);
  }
  return kinds as StormKind[];
}

/** Commander shows an InvalidArgumentError's message as a usage error instead of a stack trace. */
function arg<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
  };
}

/** A duration option whose default shows in --help as "30s" rather than 30000. */
function duration(flags: string, description: string, defaultMs: number): Option {
  const shown = defaultMs % 1000 === 0 ? `${defaultMs / 1000}s` : `${defaultMs}ms`;
  return new Option(flags, description).argParser(arg(parseDurationMs)).default(defaultMs, shown);
}

function withCommon(cmd: Command): Command {
  return (
    cmd
      .option('--url <url>', 'target a running node (http://host:port) instead of starting one')
      .option(
        '--nats <url>',
        `NATS for a started node: '${PRIVATE_NATS}' = a nats-server of its own (no other node on a shared NATS joins its cluster), or a URL (reused when it answers, else started)`,
        process.env['SB_NATS_URL'] ?? PRIVATE_NATS,
      )
      .option(
        '--cassandra <host:port>',
        'Cassandra for a started node (reused when it answers, else started)',
        process.env['SB_CASSANDRA'] ?? '127.0.0.1:19042',
      )
      .option('--keyspace <name>', 'keyspace of a started node', DEFAULT_BENCH_KEYSPACE)
      .option(
        '--keep-keyspace',
        'start the node on what earlier runs stored in --keyspace (default: it is dropped first, so every run starts from an empty history)',
      )
      // The default is described, not shown: --help must never print a real SB_JWT_SECRET.
      .addOption(
        new Option('--jwt-secret <secret>', 'token secret of a --url target').default(
          process.env['SB_JWT_SECRET'] ?? DEV_JWT_SECRET,
          'SB_JWT_SECRET, else the development secret',
        ),
      )
      .option('--out <dir>', 'folder for the results', 'bench/results')
      .option('-q, --quiet', 'no progress output')
  );
}

/** The command line for the report, without a --jwt-secret value (reports get committed). */
function redactedArgs(args: readonly string[]): string[] {
  return args.map((a, i) =>
    /^--(jwt-secret|api-key)=/.test(a)
      ? `${a.slice(0, a.indexOf('='))}=***`
      : args[i - 1] === '--jwt-secret' || args[i - 1] === '--api-key'
        ? '***'
        : a,
  );
}

function common(raw: RawCommon): CommonOptions {
  return {
    ...(raw.url === undefined ? {} : { url: raw.url }),
    natsUrl: raw.nats,
    cassandra: raw.cassandra,
    keyspace: raw.keyspace,
    keepKeyspace: raw.keepKeyspace === true,
    jwtSecret: raw.jwtSecret,
    out: raw.out,
    quiet: raw.quiet === true,
    command: `npm run bench -- ${redactedArgs(process.argv.slice(2)).join(' ')}`,
  };
}

interface RawE2e extends RawCommon {
  rate: number;
  conversations: number;
  convsPerAgent: number;
  agentsPerTenant: number;
  generators: number;
  workers: number;
  duration: number;
  warmup: number;
  drain: number;
  initialWarmup: number;
  ackTimeout: number;
  bodyChars: number;
  sweep?: boolean;
  sweepFrom: number;
  sweepFactor: number;
  sweepMax: number;
  sweepRefine: number;
  stepDuration: number;
  stepWarmup: number;
  objectiveP99: number;
  objectiveMetric: Objective['metric'];
}

function withE2e(cmd: Command, defaultGenerators: number): Command {
  return cmd
    .option(
      '--rate <msg/s>',
      'offered rate, messages per second in total (open loop)',
      arg(parsePositiveNumber),
      12000,
    )
    .option(
      '--conversations <n>',
      'live conversations (one visitor socket each)',
      arg(parsePositiveCount),
      2000,
    )
    .option('--convs-per-agent <n>', 'conversations each agent socket handles', arg(parsePositiveCount), 1)
    .option('--agents-per-tenant <n>', 'agents sharing a tenant (its lobby)', arg(parsePositiveCount), 10)
    .option('--generators <n>', 'generator processes', arg(parsePositiveCount), defaultGenerators)
    .addOption(duration('--duration <time>', 'measured time of a fixed-rate run', 60_000))
    .addOption(duration('--warmup <time>', 'warm-up before measuring', 10_000))
    .addOption(duration('--drain <time>', 'wait for late answers after the last send', 10_000))
    .addOption(
      duration(
        '--initial-warmup <time>',
        'unreported load at the first rate before measuring (warms a fresh Cassandra and the JIT); 0 = none',
        15_000,
      ),
    )
    .addOption(duration('--ack-timeout <time>', 'a message unanswered this long counts as lost', 10_000))
    .option('--body-chars <n>', 'characters per message body', arg(parsePositiveCount), 80)
    .option('--sweep', 'step the offered rate to find the highest one meeting the objective')
    .option('--sweep-from <msg/s>', 'first sweep rate', arg(parsePositiveNumber), 500)
    .option('--sweep-factor <x>', 'rate multiplier between sweep steps', arg(parsePositiveNumber), 1.5)
    .option('--sweep-max <msg/s>', 'highest sweep rate', arg(parsePositiveNumber), 24000)
    .option('--sweep-refine <n>', 'bisection steps after the first miss', arg(parseCount), 2)
    .addOption(duration('--step-duration <time>', 'measured time of each sweep step', 20_000))
    .addOption(duration('--step-warmup <time>', 'warm-up of each sweep step', 5_000))
    .option(
      '--objective-p99 <ms>',
      'latency objective: p99 at most this many ms',
      arg(parsePositiveNumber),
      DEFAULT_OBJECTIVE.p99Ms,
    )
    .addOption(
      new Option('--objective-metric <which>', 'latency the objective bounds')
        .choices(['delivery', 'ack'])
        .default('delivery'),
    );
}

function e2eOptions(raw: RawE2e) {
  return {
    rate: raw.rate,
    conversations: raw.conversations,
    convsPerAgent: raw.convsPerAgent,
    agentsPerTenant: raw.agentsPerTenant,
    generators: raw.generators,
    bodyChars: raw.bodyChars,
    ackTimeoutMs: raw.ackTimeout,
    setupConcurrency: 32,
    warmupMs: raw.warmup,
    durationMs: raw.duration,
    drainMs: raw.drain,
    initialWarmupMs: raw.initialWarmup,
    objective: { ...DEFAULT_OBJECTIVE, p99Ms: raw.objectiveP99, metric: raw.objectiveMetric },
    ...(raw.sweep
      ? {
          sweep: {
            from: raw.sweepFrom,
            factor: raw.sweepFactor,
            max: raw.sweepMax,
            refine: raw.sweepRefine,
            maxSteps: 16,
            warmupMs: raw.stepWarmup,
            durationMs: raw.stepDuration,
          },
        }
      : {}),
  };
}

/** Where `e2e --profile` keeps the broker's window profiles and the generators' whole-run ones. */
function profileDirs(dir: string): { profileDir: string; generatorProfileDir: string } {
  return { profileDir: dir, generatorProfileDir: join(dir, 'generators') };
}

function parseSystems(value: string): PeerSystem[] {
  const list = value.split(',').map((s) => s.trim());
  for (const s of list) {
    if (!(PEER_SYSTEMS as readonly string[]).includes(s)) {
      throw new InvalidArgumentError(`unknown system '${s}' (known: ${PEER_SYSTEMS.join(', ')})`);
    }
  }
  return list as PeerSystem[];
}

function done(files: string[], summary: string): void {
  process.stderr.write(`${summary}\n`);
  for (const f of files) process.stdout.write(`${f}\n`);
}

const program = new Command('bench').description('Switchboard SRE bench suite (see BENCHMARKS.md)');

withE2e(
  withCommon(
    program
      .command('e2e')
      .description('visitors and agents in live conversations, open loop, at a fixed rate or --sweep'),
  ),
  // One generator process: at 4 400 msg/s its loop is ~28 % busy, and a second process only splits the
  // same sockets over two event loops that wake twice as often (BENCHMARKS.md, sixteenth session:
  // 52 against 61 µs of generator CPU per message).
  1,
)
  .option(
    '--workers <n>',
    'worker processes of a started node',
    arg(parsePositiveCount),
    defaultWorkerCount(),
  )
  .option(
    '--trace-sample <ratio>',
    'OpenTelemetry tracing on in the started node for this ratio of messages (0..1; default off)',
    arg(parseTraceRatio),
  )
  .option(
    '--profile',
    "CPU-profile the started node's processes over each measured window: per-stage µs per message in the report, raw profiles in <out>/profiles/",
  )
  .action(async (raw: RawE2e & { traceSample?: number; profile?: boolean }) => {
    const c = common(raw);
    const { report, files } = await e2eScenario(
      c,
      {
        ...e2eOptions(raw),
        workers: raw.workers,
        ...(raw.traceSample === undefined ? {} : { traceSample: raw.traceSample }),
        ...(raw.profile ? profileDirs(join(c.out, 'profiles', `e2e-${fileTimestamp(new Date())}`)) : {}),
      },
      abort.signal,
    );
    done(files, `e2e: ${report.run.phases.length} phase(s) written`);
  });

withE2e(
  withCommon(
    program.command('cluster').description('the e2e load against local clusters of each size in --nodes'),
  ),
  3,
)
  .option('--nodes <list>', 'cluster sizes to run, e.g. 1,3', arg(parseCountList), [1, 3])
  .option('--workers <n>', 'worker processes per node', arg(parsePositiveCount), 1)
  .option('--base-port <port>', 'port of the first node', arg(parsePositiveCount), 18080)
  .option('--no-sweep', 'one fixed-rate phase per size instead of a sweep')
  .option(
    '--profile',
    "CPU-profile every node's processes over each measured window: per-stage µs per message in the report, raw profiles in <out>/profiles/",
  )
  .action(async (raw: RawE2e & { nodes: number[]; basePort: number; profile?: boolean }) => {
    const sweep = raw.sweep !== false;
    const c = common(raw);
    const { files, summary } = await clusterScenario(
      c,
      {
        ...e2eOptions({ ...raw, sweep }),
        workers: raw.workers,
        nodes: raw.nodes,
        basePort: raw.basePort,
        ...(raw.profile ? profileDirs(join(c.out, 'profiles', `cluster-${fileTimestamp(new Date())}`)) : {}),
      },
      abort.signal,
    );
    done(files, summary);
  });

withE2e(
  withCommon(
    program
      .command('peers')
      .description('the e2e relay workload against Switchboard and its alternatives, side by side'),
  ),
  2,
)
  .option('--systems <list>', `systems to run, of ${PEER_SYSTEMS.join(',')}`, parseSystems, [...PEER_SYSTEMS])
  .option(
    '--workers <n>',
    'Switchboard worker processes (1 = one process, like the Socket.IO relay)',
    arg(parsePositiveCount),
    1,
  )
  .option('--no-sweep', 'one fixed-rate phase per system instead of a sweep')
  .action(async (raw: RawE2e & { systems: PeerSystem[] }) => {
    const sweep = raw.sweep !== false;
    const { files, summary } = await peersScenario(
      common(raw),
      { ...e2eOptions({ ...raw, sweep }), workers: raw.workers, systems: raw.systems },
      abort.signal,
    );
    done(files, summary);
  });

withCommon(
  program
    .command('storage')
    .description(
      'history store and worker pool: rows/s written, page latency cached and uncached, bytes per message, filter throughput',
    ),
)
  .option('--rows <n>', 'rows written', arg(parsePositiveCount), DEFAULT_STORAGE_OPTIONS.rows)
  .option(
    '--conversations <n>',
    'conversations the rows are spread over',
    arg(parsePositiveCount),
    DEFAULT_STORAGE_OPTIONS.conversations,
  )
  .option(
    '--in-flight <n>',
    "the writer's bound of rows queued + executing (kept full)",
    arg(parsePositiveCount),
    DEFAULT_STORAGE_OPTIONS.maxPendingRows,
  )
  .option(
    '--page-reads <n>',
    'reads per page kind',
    arg(parsePositiveCount),
    DEFAULT_STORAGE_OPTIONS.pageReads,
  )
  .option(
    '--filter-texts <n>',
    'texts per text op',
    arg(parsePositiveCount),
    DEFAULT_STORAGE_OPTIONS.filterTexts,
  )
  .action(
    async (
      raw: RawCommon & {
        rows: number;
        conversations: number;
        inFlight: number;
        pageReads: number;
        filterTexts: number;
      },
    ) => {
      const { files, summary } = await storageScenario(
        common(raw),
        {
          rows: raw.rows,
          conversations: raw.conversations,
          maxPendingRows: raw.inFlight,
          pageReads: raw.pageReads,
          filterTexts: raw.filterTexts,
        },
        abort.signal,
      );
      done(files, summary);
    },
  );

withCommon(
  program
    .command('connections')
    .description(
      'ramp authenticated WebSocket clients against one node, hold, measure memory per connection',
    ),
)
  .option('--target <n>', 'connections to open', arg(parsePositiveCount), 100_000)
  .option(
    '--workers <n>',
    `worker processes of a started node (default: target / ${DEFAULT_CONNECTIONS_PER_WORKER}, rounded up)`,
    arg(parsePositiveCount),
  )
  .option(
    '--per-generator <n>',
    'sockets per generator process (each under the fd limit)',
    arg(parsePositiveCount),
    DEFAULT_SOCKETS_PER_GENERATOR,
  )
  .option('--visitor-percent <p>', 'share of visitors (the rest are agents)', arg(parsePercent), 95)
  .option('--tenants <n>', 'tenants the users are spread over', arg(parsePositiveCount), 100)
  .option(
    '--ramp-rate <conn/s>',
    'opening rate in total (0 = as fast as the broker accepts)',
    arg(parseCount),
    0,
  )
  .option(
    '--concurrency <n>',
    'handshakes in flight per generator (ramp and reconnects)',
    arg(parsePositiveCount),
    128,
  )
  .addOption(duration('--hold <time>', 'how long to hold every connection after the ramp', 60_000))
  .addOption(duration('--ping-interval <time>', 'protocol ping per connection every …', 30_000))
  .addOption(
    duration(
      '--settle <time>',
      'idle time before the baseline and after the ramp, before measuring memory',
      10_000,
    ),
  )
  .option(
    '--source-base <n>',
    'generator g binds its sockets to <source-net>.(n + g)',
    arg(parsePositiveCount),
    10,
  )
  .option(
    '--source-net <127.a.b>',
    'loopback /24 the generators bind to (default: a fresh one per run, so no source port is still in TIME_WAIT from the last run)',
  )
  .option(
    '--senders <n>',
    'visitors among the held sockets that send messages (the mixed load)',
    arg(parseCount),
    2000,
  )
  .option('--send-rate <msg/s>', 'messages per second offered by all senders together', arg(parseCount), 1000)
  .addOption(duration('--mix <time>', 'how long the mixed load runs before the storms (0: none)', 30_000))
  .addOption(
    duration(
      '--mix-warmup <time>',
      "the least time the senders send before the mix's window opens; it also waits (up to a minute) until every sender's conversation has started (not measured)",
      10_000,
    ),
  )
  .option(
    '--storm <kinds>',
    'reconnect storms after the mix, in order: drain (SIGTERM the node, start it again), kill (kill -9 of one worker); none',
    parseStorms,
    ['drain', 'kill'],
  )
  .addOption(
    duration('--storm-timeout <time>', 'how long a storm waits for every socket to come back', 120_000),
  )
  .action(async (raw: RawCommon & ConnectionsOptions) => {
    const { files, summary } = await connectionsScenario(common(raw), raw, abort.signal);
    done(files, summary);
  });

withCommon(
  program
    .command('events')
    .description(
      'business events routed into conversations (events/s, latency); context look-ups with N responders',
    ),
)
  .option('--events <n>', 'business events to publish', arg(parsePositiveCount), 20_000)
  .option(
    '--visitors <n>',
    'customers the events are about (one conversation each)',
    arg(parsePositiveCount),
    500,
  )
  .option('--outstanding <n>', 'unacknowledged publishes at a time', arg(parsePositiveCount), 256)
  .option(
    '--workers <n>',
    'worker processes of the started node',
    arg(parsePositiveCount),
    defaultWorkerCount(),
  )
  .option(
    '--responders <list>',
    'context kinds (responders) per run, e.g. 1,4,16',
    arg(parseCountList),
    [1, 4, 16],
  )
  .option('--lookups <n>', 'context look-ups per responder count', arg(parsePositiveCount), 5000)
  .option('--lookup-concurrency <n>', 'look-ups in flight', arg(parsePositiveCount), 32)
  .option('--deadline <ms>', 'context deadline', arg(parsePositiveCount), 800)
  .addOption(duration('--drain <time>', 'give up when no event was routed for this long', 15_000))
  .option(
    '--paced-seconds <s>',
    'length of the paced run (half the saturation throughput)',
    arg(parsePositiveCount),
    20,
  )
  .action(
    async (
      raw: RawCommon & {
        events: number;
        visitors: number;
        outstanding: number;
        workers: number;
        responders: number[];
        lookups: number;
        lookupConcurrency: number;
        deadline: number;
        drain: number;
        pacedSeconds: number;
      },
    ) => {
      const { files, summary } = await eventsScenario(
        common(raw),
        {
          events: raw.events,
          visitors: raw.visitors,
          outstanding: raw.outstanding,
          workers: raw.workers,
          responders: raw.responders,
          lookups: raw.lookups,
          lookupConcurrency: raw.lookupConcurrency,
          deadlineMs: raw.deadline,
          drainMs: raw.drain,
          pacedSeconds: raw.pacedSeconds,
        },
        abort.signal,
      );
      done(files, summary);
    },
  );

interface RawIngest extends RawCommon {
  rates: number[];
  connections: number;
  conversations: number;
  tenants: number;
  workers: number;
  stepDuration: number;
  stepWarmup: number;
  bodyChars: number;
  objectiveP99: number;
  verify: number;
  tenant?: string;
  apiKey?: string;
}

withCommon(
  program
    .command('ingest')
    .description('business systems posting messages over the HTTP API (autocannon), step by offered rate'),
)
  .option(
    '--rates <list>',
    'offered requests/s per step, in order (0 = no pacing: closed loop)',
    arg((v) => v.split(',').map(parseCount)),
    [500, 1000, 2000, 3000, 4000, 6000, 0],
  )
  .option('--connections <n>', 'HTTP connections autocannon keeps busy', arg(parsePositiveCount), 64)
  .option(
    '--conversations <n>',
    'conversations posted into (one visitor socket each)',
    arg(parsePositiveCount),
    1000,
  )
  .option('--tenants <n>', 'tenants of a started node, each with its API key', arg(parsePositiveCount), 4)
  .option('--workers <n>', 'worker processes of a started node', arg(parsePositiveCount), 1)
  .addOption(duration('--step-duration <time>', 'measured time of each step', 20_000))
  .addOption(duration('--step-warmup <time>', 'warm-up of each step', 5_000))
  .option('--body-chars <n>', 'characters per message', arg(parsePositiveCount), 80)
  .option(
    '--objective-p99 <ms>',
    'latency objective: ack and delivery p99 at most this many ms',
    arg(parsePositiveNumber),
    DEFAULT_OBJECTIVE.p99Ms,
  )
  .option('--verify <n>', 'conversations read back to compare stored with acknowledged', arg(parseCount), 20)
  .option('--tenant <id>', 'tenant of a --url target')
  .option(
    '--api-key <key>',
    'an api-scope key of that tenant (--url target)',
    process.env['SB_BENCH_API_KEY'],
  )
  .action(async (raw: RawIngest) => {
    const o: IngestOptions = {
      rates: raw.rates,
      connections: raw.connections,
      conversations: raw.conversations,
      tenants: raw.tenants,
      workers: raw.workers,
      stepDurationMs: raw.stepDuration,
      stepWarmupMs: raw.stepWarmup,
      bodyChars: raw.bodyChars,
      objectiveP99Ms: raw.objectiveP99,
      verifyConversations: raw.verify,
      ...(raw.tenant === undefined ? {} : { tenant: raw.tenant }),
      ...(raw.apiKey === undefined ? {} : { apiKey: raw.apiKey }),
    };
    const { files, summary } = await ingestScenario(common(raw), o, abort.signal);
    done(files, summary);
  });

const F = DEFAULT_FAULTS_OPTIONS;
program
  .command('faults')
  .description(
    'fault checker (issue #12): 3 brokers in network namespaces, 3 nats-servers, Cassandra; kill, pause, partition under retrying load; every cmid scored against Cassandra',
  )
  .addOption(
    new Option(
      '--schedule <name>',
      'short: each fault once (~4 min); soak: every fault repeatedly for --duration',
    )
      .choices(['short', 'soak'])
      .default(F.schedule),
  )
  .addOption(duration('--duration <time>', 'soak: how long faults are injected', F.durationMs))
  .option('--seed <n>', 'seed of the fault order, victims and client jitter', arg(parseCount), F.seed)
  .option('--tenants <n>', 'tenants', arg(parsePositiveCount), F.tenants)
  .option(
    '--conversations <n>',
    'conversations per tenant',
    arg(parsePositiveCount),
    F.conversationsPerTenant,
  )
  .option('--agents <n>', 'online agents per tenant', arg(parsePositiveCount), F.agentsPerTenant)
  .option('--pipeline <n>', 'sends in flight per visitor', arg(parsePositiveCount), F.pipeline)
  .option(
    '--rate <msg/s>',
    'new messages per second, all visitors together',
    arg(parsePositiveNumber),
    F.ratePerS,
  )
  .addOption(
    duration('--ack-timeout <time>', 'resend the same cmid when unanswered this long', F.ackTimeoutMs),
  )
  .addOption(duration('--warmup <time>', 'load before the first fault', F.warmupMs))
  .addOption(
    duration('--settle <time>', 'after the schedule: retry unacked cmids this long at most', F.settleMs),
  )
  .option('--lease-ttl <ms>', "brokers' SB_LEASE_TTL_MS (default: the broker's own)", arg(parsePositiveCount))
  .option(
    '--nats-replicas <n>',
    "brokers' SB_NATS_REPLICAS: copies of every KV bucket and stream (as `cluster up` sets it)",
    arg(parsePositiveCount),
    F.natsReplicas,
  )
  .option(
    '--broker-cli <path>',
    "the brokers' switchboard CLI, e.g. another build's dist/src/cli.js (default: this build's)",
  )
  .option('--out <dir>', 'folder for the results', 'bench/results')
  .option('-q, --quiet', 'no progress output')
  .addHelpText(
    'after',
    '\nNeeds root (ip netns, nftables: installed when missing). Exits 1 when any violation is found.\nSee BENCHMARKS.md, "Faults".',
  )
  .action(
    async (
      raw: Omit<
        FaultsOptions,
        'durationMs' | 'ratePerS' | 'ackTimeoutMs' | 'warmupMs' | 'settleMs' | 'leaseTtlMs' | 'natsReplicas'
      > & {
        duration: number;
        conversations: number;
        agents: number;
        rate: number;
        ackTimeout: number;
        warmup: number;
        settle: number;
        leaseTtl?: number;
        natsReplicas: number;
        brokerCli?: string;
        out: string;
        quiet?: boolean;
      },
    ) => {
      const o: FaultsOptions = {
        schedule: raw.schedule,
        durationMs: raw.duration,
        seed: raw.seed,
        tenants: raw.tenants,
        conversationsPerTenant: raw.conversations,
        agentsPerTenant: raw.agents,
        pipeline: raw.pipeline,
        ratePerS: raw.rate,
        ackTimeoutMs: raw.ackTimeout,
        warmupMs: raw.warmup,
        settleMs: raw.settle,
        leaseTtlMs: raw.leaseTtl,
        natsReplicas: raw.natsReplicas,
        ...(raw.brokerCli === undefined ? {} : { brokerCli: raw.brokerCli }),
      };
      const { files, summary, report } = await faultsScenario(
        {
          natsUrl: '',
          cassandra: '',
          keyspace: '',
          keepKeyspace: false,
          jwtSecret: '',
          out: raw.out,
          quiet: raw.quiet === true,
          command: `npm run bench -- ${redactedArgs(process.argv.slice(2)).join(' ')}`,
        },
        o,
        abort.signal,
      );
      done(files, summary);
      if (!report.verdict.pass) process.exitCode = 1;
    },
  );

program
  .command('profile-stages')
  .description(
    'the per-stage table of saved .cpuprofile files (from e2e --profile) for a given message count',
  )
  .argument('<files...>', '.cpuprofile files (one per broker process)')
  .requiredOption('--messages <n>', 'messages of the profiled window (delivered)', arg(parsePositiveCount))
  .action((files: string[], raw: { messages: number }) => {
    const totals = emptyTotals();
    for (const f of files) addProfile(totals, JSON.parse(readFileSync(f, 'utf8')) as CpuProfile);
    process.stdout.write(`${stageMarkdown(stageTable(totals, raw.messages, files.length))}\n`);
  });

program.parseAsync(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
