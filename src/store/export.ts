/**
 * Export of one conversation's full history as JSON lines, oldest first: one message per line, read
 * page by page (`after`, at most EXPORT_PAGE_SIZE rows in memory) and written with backpressure, so
 * memory stays bounded however long the conversation is. Bodies are as stored (sensitive words masked,
 * PII not masked): the export is an operator's tool for retention and data-subject requests.
 */
import type { Writable } from 'node:stream';
import { SwitchboardError } from '../protocol/errors.js';
import type { HistoryStore, MessageRow } from './types.js';

export const EXPORT_PAGE_SIZE = 500;

/** One exported line (without the newline). */
export function exportLine(row: MessageRow): string {
  return JSON.stringify({
    conv: row.conv,
    seq: row.seq,
    id: row.id,
    from: row.sender,
    role: row.senderRole,
    cmid: row.cmid,
    body: row.body,
    ts: row.ts,
    ...(row.review === true ? { review: true } : {}),
  });
}

/**
 * Writes every message of the conversation to `out`, one JSON object per line, oldest first.
 * Resolves with the number of messages; rejects `not_found` when the conversation has neither a
 * record nor messages, or with the stream's or the store's error.
 */
export async function exportConversation(
  store: Pick<HistoryStore, 'after' | 'loadConversation'>,
  tenant: string,
  conv: string,
  out: Writable,
): Promise<number> {
  let since = 0;
  let count = 0;
  for (;;) {
    const { items, more } = await store.after(tenant, conv, since, EXPORT_PAGE_SIZE);
    if (count === 0 && items.length === 0 && (await store.loadConversation(tenant, conv)) === null) {
      throw new SwitchboardError('not_found', `no conversation '${conv}' in tenant '${tenant}'`);
    }
    for (const row of items) {
      if (!out.write(`${exportLine(row)}\n`)) await drained(out);
      count++;
    }
    const last = items.at(-1);
    if (!more || last === undefined) return count;
    since = last.seq;
  }
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      out.off('error', onError);
      resolve();
    };
    const onError = (err: unknown) => {
      out.off('drain', onDrain);
      reject(err);
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}
