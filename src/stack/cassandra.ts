/**
 * Launches a real single-node Cassandra 5.0 from the jars in deploy/cassandra/lib (resolved from Maven
 * Central by `npm run setup`) on Java 17, with the JVM options of deploy/cassandra/jvm17-server.options and a
 * generated cassandra.yaml whose data lives under the caller's folder. Used by `switchboard start` and by the
 * test harness.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { probeCql } from '../store/cql-probe.js';
import {
  fileSize,
  isTcpReachable,
  type ManagedProcess,
  readFrom,
  spawnLogged,
  waitUntil,
} from './process.js';

export const CASSANDRA_HOST = '127.0.0.1';
export const CASSANDRA_LOCAL_DATA_CENTER = 'datacenter1';
export const DEFAULT_CQL_WAIT_MS = 180_000;
export const DEFAULT_CASSANDRA_HEAP_MB = 1024;
export const DEFAULT_CASSANDRA_CLUSTER_NAME = 'switchboard-local';
export const DEFAULT_CASSANDRA_STOP_GRACE_MS = 30_000;
const CQL_POLL_INTERVAL_MS = 1_000;
const CQL_PROBE_TIMEOUT_MS = 5_000;
const MIN_HEAP_MB = 256;
const LOG_TAIL_LINES = 25;
const LOG_LINE_MAX_CHARS = 300;

export interface CassandraOptions {
  /**
   * Address of the CQL and gossip listeners (default CASSANDRA_HOST, 127.0.0.1); JMX stays local. The
   * fault checker binds a bridge address that brokers in other network namespaces reach (bench/faults/).
   */
  host?: string;
  /** CQL port on the host. */
  nativePort: number;
  /** Inter-node (gossip) port on the host. */
  storagePort: number;
  /** Local-only JMX port. */
  jmxPort: number;
  /** Holds cassandra.yaml, data, commitlog, hints, caches and (by default) the log; created when missing. */
  dataDir: string;
  /** -Xms and -Xmx, in MiB (default DEFAULT_CASSANDRA_HEAP_MB). */
  heapMb?: number;
  /** Default DEFAULT_CASSANDRA_CLUSTER_NAME; must not change for an existing dataDir. */
  clusterName?: string;
  /** Default `<dataDir>/cassandra.log`; each start appends. */
  logFile?: string;
  /** How long to wait for CQL to answer, default DEFAULT_CQL_WAIT_MS. */
  readyTimeoutMs?: number;
}

export interface CassandraHandle {
  /** `127.0.0.1:PORT`, for the driver's contactPoints. */
  readonly contactPoint: string;
  readonly localDataCenter: string;
  readonly pid: number;
  readonly nativePort: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** The release_version CQL reported at start, e.g. "5.0.9". */
  readonly releaseVersion: string;
  /** SIGTERM, then SIGKILL after DEFAULT_CASSANDRA_STOP_GRACE_MS; resolves when the JVM exited. Data is kept. */
  stop(): Promise<void>;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...) to the JVM. */
  signal(sig: NodeJS.Signals): void;
  [Symbol.asyncDispose](): Promise<void>;
}

function hasPackageJson(dir: string): boolean {
  return existsSync(join(dir, 'package.json'));
}

function walkUp(start: string): string | null {
  let dir = resolve(start);
  for (;;) {
    if (hasPackageJson(dir)) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * The project root: the nearest folder holding package.json above this module (it runs from src/stack/ or
 * dist/src/stack/), else above the working directory (for copies compiled elsewhere). Throws when neither has.
 */
export function findProjectRoot(): string {
  const root = walkUp(dirname(fileURLToPath(import.meta.url))) ?? walkUp(process.cwd());
  if (root === null) throw new Error('cannot find the Switchboard project root (no package.json above)');
  return root;
}

/** The JVM options of jvm17-server.options: comments and blank lines skipped, each line split on whitespace. */
export function readJvmOptions(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .flatMap((line) => line.split(/\s+/));
}

function validate(opts: CassandraOptions): void {
  const ports = { nativePort: opts.nativePort, storagePort: opts.storagePort, jmxPort: opts.jmxPort };
  for (const [name, port] of Object.entries(ports)) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${name} must be a TCP port`);
  }
  if (new Set(Object.values(ports)).size !== 3)
    throw new Error('nativePort, storagePort and jmxPort must differ');
  const heapMb = opts.heapMb ?? DEFAULT_CASSANDRA_HEAP_MB;
  if (!Number.isInteger(heapMb) || heapMb < MIN_HEAP_MB) {
    throw new Error(`heapMb must be an integer of at least ${MIN_HEAP_MB}`);
  }
}

/**
 * What to show when a start fails: the ERROR lines of this run with the line after each (where the exception
 * message is), then the last lines, each cut short (the JVM prints the whole classpath on one line).
 */
function summarizeLog(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => (l.length > LOG_LINE_MAX_CHARS ? `${l.slice(0, LOG_LINE_MAX_CHARS)}…` : l));
  const errors = lines.flatMap((line, i) => (line.startsWith('ERROR') ? [line, lines[i + 1] ?? ''] : []));
  const tail = lines.slice(-LOG_TAIL_LINES).join('\n');
  return errors.length === 0
    ? `--- log tail ---\n${tail}`
    : `--- errors ---\n${errors.join('\n')}\n--- log tail ---\n${tail}`;
}

function renderYaml(o: {
  host: string;
  clusterName: string;
  dataDir: string;
  nativePort: number;
  storagePort: number;
}): string {
  const q = (value: string): string => JSON.stringify(value);
  const dir = (name: string): string => q(join(o.dataDir, name));
  return `# Generated by src/stack/cassandra.ts; rewritten on every start.
cluster_name: ${q(o.clusterName)}
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
data_file_directories: [${dir('data')}]
commitlog_directory: ${dir('commitlog')}
saved_caches_directory: ${dir('saved_caches')}
hints_directory: ${dir('hints')}
cdc_raw_directory: ${dir('cdc')}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${o.host}:${o.storagePort}"
listen_address: ${o.host}
rpc_address: ${o.host}
storage_port: ${o.storagePort}
native_transport_port: ${o.nativePort}
start_native_transport: true
endpoint_snitch: SimpleSnitch
auto_snapshot: false
concurrent_reads: 16
concurrent_writes: 16
concurrent_counter_writes: 8
# Trie memtables with their cells off the heap (Cassandra 5.0's own cassandra_latest.yaml does the same).
# With the skip list on the heap, each flush of the history table (every ~37 s at 4 400 msg/s) put the
# writes around it at p99 100-250 ms on a 2-core machine; with these, a flush at 1.2 cores left that
# second's p99 at 22 ms (BENCHMARKS.md, twenty-fifth session).
memtable_allocation_type: offheap_objects
memtable:
  configurations:
    skiplist:
      class_name: SkipListMemtable
    trie:
      class_name: TrieMemtable
    default:
      inherits: trie
disk_failure_policy: stop
commit_failure_policy: stop
key_cache_size: 16MiB
# The history writer sends batches of up to 32 rows: above the 5 KiB default
# warning size, and every warning is a log line written per batch.
batch_size_warn_threshold: 64KiB
# ... and of up to 32 conversations (the default 10 would log a warning for most batches under load).
unlogged_batch_across_partitions_warn_threshold: 32
`;
}

/**
 * Starts Cassandra on 127.0.0.1 and resolves once `SELECT release_version FROM system.local` answers on
 * `nativePort`. Rejects when the jars are missing ("run npm run setup"), when one of the ports is already
 * taken, when the JVM exits early (with the tail of its log), or after `readyTimeoutMs` (the JVM is then
 * stopped).
 */
export async function startCassandra(opts: CassandraOptions): Promise<CassandraHandle> {
  validate(opts);
  const root = findProjectRoot();
  const cassandraDir = join(root, 'deploy', 'cassandra');
  const libDir = join(cassandraDir, 'lib');
  const hasJars = existsSync(libDir) && readdirSync(libDir).some((f) => /^cassandra-all-.*\.jar$/.test(f));
  if (!hasJars) throw new Error(`Cassandra jars not found in ${libDir}: run npm run setup`);

  const host = opts.host ?? CASSANDRA_HOST;
  for (const [port, on] of [
    [opts.nativePort, host],
    [opts.storagePort, host],
    [opts.jmxPort, CASSANDRA_HOST],
  ] as const) {
    if (await isTcpReachable(on, port)) {
      throw new Error(`port ${port} on ${on} is already in use (another Cassandra?)`);
    }
  }

  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const yamlFile = join(dataDir, 'cassandra.yaml');
  const logFile = resolve(opts.logFile ?? join(dataDir, 'cassandra.log'));
  const clusterName = opts.clusterName ?? DEFAULT_CASSANDRA_CLUSTER_NAME;
  await writeFile(
    yamlFile,
    renderYaml({ host, clusterName, dataDir, nativePort: opts.nativePort, storagePort: opts.storagePort }),
  );

  const heapMb = opts.heapMb ?? DEFAULT_CASSANDRA_HEAP_MB;
  const args = [
    `-Xms${heapMb}M`,
    `-Xmx${heapMb}M`,
    '-Xss256k',
    // Every pause, with wall-clock time: the bench lays a latency tail beside the JVM's pauses.
    `-Xlog:gc:file=${join(dataDir, 'gc.log')}:time,uptime:filecount=2,filesize=10M`,
    ...readJvmOptions(join(cassandraDir, 'jvm17-server.options')),
    `-Dcassandra.config=${pathToFileURL(yamlFile).href}`,
    `-Dlogback.configurationFile=${join(cassandraDir, 'logback.xml')}`,
    '-Dcassandra-foreground=yes',
    `-Dcassandra.storagedir=${dataDir}`,
    `-Dcassandra.jmx.local.port=${opts.jmxPort}`,
    // A single node has nobody to gossip with: skip the waits meant for real clusters.
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=100',
    '-Dcassandra.superuser_setup_delay_ms=0',
    '-cp',
    // java expands the trailing `*` itself.
    `${libDir}/*`,
    'org.apache.cassandra.service.CassandraDaemon',
  ];

  const logStart = fileSize(logFile);
  let child: ManagedProcess;
  try {
    // cwd = dataDir so stray JVM files (hs_err, heap dumps) land next to the data.
    child = await spawnLogged({ command: 'java', args, logFile, cwd: dataDir });
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing ? 'java not found: run npm run setup' : `cannot start java: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  const contactPoint = `${host}:${opts.nativePort}`;
  const timeoutMs = opts.readyTimeoutMs ?? DEFAULT_CQL_WAIT_MS;
  let releaseVersion: string;
  try {
    releaseVersion = await waitUntil(
      async () =>
        (await isTcpReachable(host, opts.nativePort)) &&
        (await probeCql(contactPoint, CASSANDRA_LOCAL_DATA_CENTER, CQL_PROBE_TIMEOUT_MS)),
      {
        timeoutMs,
        intervalMs: CQL_POLL_INTERVAL_MS,
        what: `Cassandra to answer CQL on ${contactPoint}`,
        abort: () => {
          const exit = child.exitInfo();
          return exit === null ? null : `Cassandra exited early (code ${exit.code}, signal ${exit.signal})`;
        },
      },
    );
  } catch (err) {
    await child.stop(DEFAULT_CASSANDRA_STOP_GRACE_MS);
    throw new Error(
      `${(err as Error).message}; log: ${logFile}\n${summarizeLog(readFrom(logFile, logStart))}`,
      {
        cause: err,
      },
    );
  }

  const stop = async (): Promise<void> => {
    await child.stop(DEFAULT_CASSANDRA_STOP_GRACE_MS);
  };
  return {
    contactPoint,
    localDataCenter: CASSANDRA_LOCAL_DATA_CENTER,
    pid: child.pid,
    nativePort: opts.nativePort,
    dataDir,
    logFile,
    releaseVersion,
    stop,
    signal: (sig) => child.signal(sig),
    [Symbol.asyncDispose]: stop,
  };
}
