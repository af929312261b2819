/**
 * Retention and export against a real Cassandra: a tenant's retention becomes each message row's TTL
 * (rows of a tenant without retention stay), and a conversation exports as JSON lines, oldest first,
 * page by page, across buckets — also through the `switchboard export` command.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import { exportConversation } from '../../src/store/export.js';
import type { MessageRow } from '../../src/store/types.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';

const keyspace = randomKeyspace('sbr');
const base = { contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace };
let store: CassandraHistoryStore | undefined;

after(async () => {
  await store?.close();
  await dropKeyspace(base);
});

function row(tenant: string, conv: string, seq: number): MessageRow {
  return {
    tenant,
    conv,
    seq,
    id: `id-${seq}`,
    sender: 'v1',
    senderRole: 'visitor',
    cmid: `c${seq}`,
    body: `line ${seq} "quoted" 你好\\n`,
    ts: Date.now() + seq,
  };
}

test('retention - a tenant with retention stores rows with that TTL; others keep theirs', async () => {
  store = await openCassandraStore(
    { ...base, bucketSize: 100 },
    { retentionS: (tenant) => (tenant === 'brief' ? 2 : 0) },
  );
  const s = store;
  await Promise.all([1, 2, 3].map((seq) => s.append(row('brief', 'c', seq))));
  await Promise.all([1, 2, 3].map((seq) => s.append(row('kept', 'c', seq))));
  assert.equal((await s.after('brief', 'c', 0, 10)).items.length, 3);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal((await s.after('brief', 'c', 0, 10)).items.length, 0, 'expired after the retention');
  assert.equal((await s.after('kept', 'c', 0, 10)).items.length, 3, 'kept without retention');
});

test('export - 1,234 messages over 13 buckets as JSON lines, oldest first; unknown conversation is not_found', async () => {
  const s = store ?? (await openCassandraStore({ ...base, bucketSize: 100 }));
  store = s;
  for (let from = 1; from <= 1234; from += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, 1235 - from) }, (_, i) => s.append(row('exp', 'long', from + i))),
    );
  }
  // A small high-water mark makes the exporter wait for 'drain' many times.
  const out = new PassThrough({ highWaterMark: 1024 });
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const count = await exportConversation(s, 'exp', 'long', out);
  out.end();
  assert.equal(count, 1234);
  const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
  assert.equal(lines.length, 1234);
  const parsed = lines.map((l) => JSON.parse(l) as { seq: number; body: string; from: string });
  assert.deepEqual(
    parsed.map((m) => m.seq),
    Array.from({ length: 1234 }, (_, i) => i + 1),
  );
  assert.equal(parsed[6]?.body, row('exp', 'long', 7).body);
  await assert.rejects(exportConversation(s, 'exp', 'nothing', new PassThrough()), { code: 'not_found' });

  // The command line writes the same lines.
  const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [cli, 'export', '--tenant', 'exp', '--conv', 'long'],
    {
      env: { ...process.env, SB_CASSANDRA: TEST_CASSANDRA, SB_KEYSPACE: keyspace, SB_LOG_LEVEL: 'warn' },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  assert.deepEqual(stdout.trimEnd().split('\n'), lines);
});
