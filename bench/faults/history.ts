/**
 * Reads what Cassandra holds after a fault run: every row of the run keyspace's `messages` and `cmids`
 * tables, all pages. cassandra-driver is imported here, outside src/store, on purpose: the checker is an
 * outside observer and must not see history through the code it checks (only the pure body decoder is
 * shared, since bodies are stored compressed). Reads at consistency ALL (one replica locally).
 */
import cassandra from 'cassandra-driver';
import { decodeBody } from '../../src/store/body-codec.js';
import { type StoredFields, storedFields } from '../../src/store/schema.js';
import type { CmidIndexRow, ConvKey, StoredRow } from './classify.js';

/** A row whose packed cell does not decode still counts as stored (the classifier shows its body). */
const UNREADABLE: StoredFields = {
  id: '',
  sender: '',
  senderRole: 'visitor',
  cmid: '',
  bodyEnc: -1,
  body: Buffer.alloc(0),
  ts: 0,
  flags: 0,
  card: null,
};

const PAGE_ROWS = 2000;
const READ_TIMEOUT_MS = 30_000;

function toNumber(v: cassandra.types.Long | number | null): number {
  if (v === null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function convKey(tenant: string, conv: string): ConvKey {
  return `${tenant}/${conv}`;
}

async function eachRow(
  client: cassandra.Client,
  query: string,
  onRow: (row: cassandra.types.Row) => void,
): Promise<void> {
  let pageState: string | undefined;
  do {
    const rs = await client.execute(query, [], {
      prepare: true,
      fetchSize: PAGE_ROWS,
      consistency: cassandra.types.consistencies.all,
      readTimeout: READ_TIMEOUT_MS,
      ...(pageState === undefined ? {} : { pageState }),
    });
    for (const row of rs.rows) onRow(row);
    pageState = rs.pageState ?? undefined;
  } while (pageState !== undefined);
}

async function hasTable(client: cassandra.Client, keyspace: string, table: string): Promise<boolean> {
  const rs = await client.execute(
    'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
    [keyspace, table],
    { prepare: true },
  );
  return rs.rows.length > 0;
}

export interface History {
  stored: StoredRow[];
  cmidIndex: CmidIndexRow[];
  /** False when the keyspace has no `cmids` table (a schema without one): nothing of it was checked. */
  cmidTable: boolean;
}

/** Every message row and cmids row of `keyspace`, optionally only the tenants `keep` accepts. */
export async function readHistory(
  contactPoint: string,
  localDataCenter: string,
  keyspace: string,
  keep: (tenant: string) => boolean = () => true,
): Promise<History> {
  const client = new cassandra.Client({
    contactPoints: [contactPoint],
    localDataCenter,
    socketOptions: { readTimeout: READ_TIMEOUT_MS, connectTimeout: 10_000 },
  });
  try {
    await client.connect();
    const stored: StoredRow[] = [];
    await eachRow(
      client,
      // Rows since schema 7 hold their fields in one packed cell; older ones in columns.
      `SELECT tenant, conv, seq, id, cmid, sender, body, body_enc, packed, writetime(id) AS wt, writetime(packed) AS wtp FROM ${keyspace}.messages`,
      (r) => {
        const tenant = r.get('tenant') as string;
        if (!keep(tenant)) return;
        let fields: StoredFields;
        try {
          fields = storedFields(r);
        } catch {
          fields = { ...UNREADABLE, id: String(r.get('id')), cmid: String(r.get('cmid')) };
        }
        let body: string;
        try {
          body = decodeBody(fields.bodyEnc, fields.body);
        } catch {
          body = '<undecodable body>';
        }
        stored.push({
          conv: convKey(tenant, r.get('conv') as string),
          seq: toNumber(r.get('seq')),
          id: fields.id,
          cmid: fields.cmid,
          sender: fields.sender,
          body,
          writeTimeUs: toNumber(r.get('wtp') ?? r.get('wt')),
        });
      },
    );
    const cmidIndex: CmidIndexRow[] = [];
    const cmidTable = await hasTable(client, keyspace, 'cmids');
    if (!cmidTable) return { stored, cmidIndex, cmidTable };
    await eachRow(client, `SELECT tenant, conv, sender, cmid, seq, id FROM ${keyspace}.cmids`, (r) => {
      const tenant = r.get('tenant') as string;
      if (!keep(tenant)) return;
      cmidIndex.push({
        conv: convKey(tenant, r.get('conv') as string),
        sender: r.get('sender') as string,
        cmid: r.get('cmid') as string,
        seq: toNumber(r.get('seq')),
        id: r.get('id') as string,
      });
    });
    return { stored, cmidIndex, cmidTable };
  } finally {
    await client.shutdown();
  }
}
