/**
 * The Jepsen-style check after the connections run's storms: every message a sender was acked must be in
 * Cassandra, at the acked seq, with its cmid, and no cmid may be stored twice. cassandra-driver is imported
 * here, outside src/store, on purpose (as in bench/faults/history.ts): the check is an outside observer and
 * reads the `messages` table itself, one partition per conversation, at consistency ALL.
 */
import cassandra from 'cassandra-driver';
import { CASSANDRA_LOCAL_DATA_CENTER } from '../../src/stack/cassandra.js';
import { DEFAULT_BUCKET_SIZE } from '../../src/store/cassandra-store.js';
import { storedFields } from '../../src/store/schema.js';
import { pool } from '../lib/pool.js';
import type { AckedMessage } from './messages.js';

const READ_TIMEOUT_MS = 30_000;
const READ_CONCURRENCY = 32;
const MAX_EXAMPLES = 10;

export interface AckCheck {
  acked: number;
  conversations: number;
  /** Acked but not stored at its seq with its cmid. */
  lost: number;
  /** cmids of the checked conversations stored more than once. */
  duplicated: number;
  examples: string[];
}

/** Pure part: compares what was acked with the rows read, per conversation key `tenant/conv`. */
export function compareAcked(
  acked: readonly AckedMessage[],
  stored: ReadonlyMap<string, readonly { seq: number; cmid: string }[]>,
): AckCheck {
  const examples: string[] = [];
  let lost = 0;
  let duplicated = 0;
  const bySeq = new Map<string, Map<number, string>>();
  for (const [key, rows] of stored) {
    const m = new Map<number, string>();
    const seen = new Set<string>();
    for (const r of rows) {
      m.set(r.seq, r.cmid);
      if (seen.has(r.cmid)) {
        duplicated++;
        if (examples.length < MAX_EXAMPLES) examples.push(`duplicated ${key} cmid ${r.cmid}`);
      }
      seen.add(r.cmid);
    }
    bySeq.set(key, m);
  }
  for (const [tenant, conv, cmid, seq] of acked) {
    const got = bySeq.get(`${tenant}/${conv}`)?.get(seq);
    if (got !== cmid) {
      lost++;
      if (examples.length < MAX_EXAMPLES)
        examples.push(`lost ${tenant}/${conv} seq ${seq} cmid ${cmid}: ${got ?? 'no row'}`);
    }
  }
  return { acked: acked.length, conversations: stored.size, lost, duplicated, examples };
}

/** Reads the rows of every acked conversation from `keyspace` and compares. */
export async function checkAcked(
  contactPoint: string,
  keyspace: string,
  acked: readonly AckedMessage[],
): Promise<AckCheck> {
  const top = new Map<string, { tenant: string; conv: string; maxSeq: number }>();
  for (const [tenant, conv, , seq] of acked) {
    const key = `${tenant}/${conv}`;
    const t = top.get(key);
    if (!t) top.set(key, { tenant, conv, maxSeq: seq });
    else t.maxSeq = Math.max(t.maxSeq, seq);
  }
  const client = new cassandra.Client({
    contactPoints: [contactPoint],
    localDataCenter: CASSANDRA_LOCAL_DATA_CENTER,
    socketOptions: { readTimeout: READ_TIMEOUT_MS, connectTimeout: 10_000 },
  });
  const stored = new Map<string, { seq: number; cmid: string }[]>();
  try {
    await client.connect();
    await pool([...top.entries()], READ_CONCURRENCY, async ([key, t]) => {
      const rows: { seq: number; cmid: string }[] = [];
      // One bucket past the highest acked seq too: a stored but unacked message may sit there.
      for (let bucket = 0; bucket <= Math.floor((t.maxSeq + 1) / DEFAULT_BUCKET_SIZE); bucket++) {
        const rs = await client.execute(
          // Rows since schema 7 hold their fields in one packed cell; older ones in columns.
          `SELECT seq, cmid, packed FROM ${keyspace}.messages WHERE tenant = ? AND conv = ? AND bucket = ?`,
          [t.tenant, t.conv, bucket],
          { prepare: true, consistency: cassandra.types.consistencies.all, fetchSize: 5000 },
        );
        for (const r of rs.rows) {
          rows.push({ seq: Number(r.get('seq')), cmid: storedFields(r).cmid });
        }
      }
      stored.set(key, rows);
    });
  } finally {
    await client.shutdown();
  }
  return compareAcked(acked, stored);
}
