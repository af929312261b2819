/**
 * The test command: brings up (or reuses) the servers the suite needs on ports of their own —
 * a nats-server with JetStream and a Cassandra — runs every compiled test file with node's test
 * runner, and stops what it started. Under CI=true a server that cannot start fails the run.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLocalStack } from '../src/stack/local-stack.js';

export const TEST_NATS_PORT = 24222;
export const TEST_CASSANDRA_PORT = 29042;
export const TEST_CASSANDRA_STORAGE_PORT = 27000;
export const TEST_CASSANDRA_JMX_PORT = 27199;

const distTest = fileURLToPath(new URL('.', import.meta.url));

function testFiles(dir: string, filter: string | undefined): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p, filter));
    else if (name.endsWith('.test.js') && (!filter || relative(distTest, p).includes(filter))) out.push(p);
  }
  return out.sort();
}

/**
 * The most one test file may take (SB_TEST_FILE_TIMEOUT_MS, 10 minutes; the longest, the fault
 * schedule, takes about 4). Node 20 applies --test-timeout to each file's process as a whole: a file
 * that hangs, or whose process a failed test left with an open connection, fails with "test timed
 * out" and its process is killed, where before the run waited until CI's 90 minutes ran out.
 */
const FILE_TIMEOUT_MS = fileTimeoutMs(process.env['SB_TEST_FILE_TIMEOUT_MS']);

function fileTimeoutMs(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 600_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new Error(`SB_TEST_FILE_TIMEOUT_MS must be a positive integer (ms), not '${raw}'`);
  return ms;
}

function runTests(files: string[], concurrency: number, env: NodeJS.ProcessEnv): Promise<number> {
  const args = [
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${FILE_TIMEOUT_MS}`,
    ...files,
  ];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env });
  return new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 1 : 0))));
}

async function main(): Promise<number> {
  const filter = process.argv[2];
  const t0 = Date.now();
  const stack = await ensureLocalStack({
    natsPort: TEST_NATS_PORT,
    cassandraPort: TEST_CASSANDRA_PORT,
    cassandraStoragePort: TEST_CASSANDRA_STORAGE_PORT,
    cassandraJmxPort: TEST_CASSANDRA_JMX_PORT,
    dataRoot: join(distTest, '..', '..', '.stack', 'test'),
    cassandraHeapMb: 768,
    // Every test makes keyspaces and streams of its own: what an earlier run left is of no use.
    fresh: true,
    say: (l) => console.log(`test stack: ${l}`),
  });
  console.log(`test stack: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const env = {
      ...process.env,
      SB_TEST_NATS_URL: stack.natsUrl,
      SB_TEST_CASSANDRA: stack.cassandraContactPoint,
      // Whether the suite's Cassandra runs the stack's own cassandra.yaml (test/unit/stack.test.ts).
      SB_TEST_CASSANDRA_STARTED: stack.started.includes('cassandra') ? '1' : '0',
    };
    const files = testFiles(distTest, filter);
    // The cluster fault tests time leases and failovers: they run alone, after the rest, so two
    // cores are not shared with another test file's brokers. The browser tests too (each drives a
    // Chromium beside its brokers), one file at a time.
    const exclusive = files.filter(
      (f) => f.includes(`${sep}cluster${sep}`) || f.includes(`${sep}browser${sep}`),
    );
    const shared = files.filter((f) => !exclusive.includes(f));
    let code = 0;
    if (shared.length > 0) code = await runTests(shared, 2, env);
    if (exclusive.length > 0) code = (await runTests(exclusive, 1, env)) || code;
    return code;
  } finally {
    await stack.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`test run failed before the tests: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
