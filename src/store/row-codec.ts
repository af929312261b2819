/**
 * The `packed` cell of a messages row (schema 7): everything but the key in one msgpack array, so a message
 * is one cell instead of ten. Cassandra's cost per row grows with its cells (each is validated, put in the
 * memtable's tree, serialized to the commit log, flushed and compacted with its own timestamp); on this
 * machine one packed cell cost 53-65 µs of Cassandra CPU per row against 75-200 µs for the ten columns
 * (a batch-insert experiment, BENCHMARKS.md). Rows written before schema 7 keep their columns and are read
 * from them (`toMessage` takes either).
 *
 * Layout: [ROW_FORMAT, id, sender, senderRole, cmid, bodyEnc, body (bin), ts (ms), flags, card JSON | nil,
 * target?]. `target` (issue #17: the seq a recall or edit row changes) is appended only on such rows, so
 * every other row keeps its ten fields. A reader refuses another format number rather than guess; a later
 * format appends fields after these.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import type { Role } from './types.js';

export const ROW_FORMAT = 1;
/** A packed cell larger than this is refused on read: bodies are bounded far below it. */
export const MAX_PACKED_ROW_BYTES = 1 << 20;

export interface PackedRow {
  id: string;
  sender: string;
  senderRole: Role;
  cmid: string;
  bodyEnc: number;
  body: Uint8Array;
  ts: number;
  flags: number;
  card: string | null;
  /** Only on recall and edit rows (flags say which). */
  target?: number;
}

const encoder = new Encoder();
const decoder = new Decoder({ maxBinLength: MAX_PACKED_ROW_BYTES, maxStrLength: MAX_PACKED_ROW_BYTES });

export function packRow(r: PackedRow): Buffer {
  const bytes = encoder.encode([
    ROW_FORMAT,
    r.id,
    r.sender,
    r.senderRole,
    r.cmid,
    r.bodyEnc,
    r.body,
    r.ts,
    r.flags,
    r.card,
    ...(r.target === undefined ? [] : [r.target]),
  ]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Throws an Error naming what is wrong for bytes that are not a packed row of a known format. */
export function unpackRow(data: Uint8Array): PackedRow {
  if (data.byteLength > MAX_PACKED_ROW_BYTES) throw new Error(`packed row of ${data.byteLength} bytes`);
  const v = decoder.decode(data);
  if (!Array.isArray(v) || v.length < 10) throw new Error('packed row is not an array of 10 or more');
  if (v[0] !== ROW_FORMAT) throw new Error(`unknown packed row format ${String(v[0])}`);
  const [, id, sender, senderRole, cmid, bodyEnc, body, ts, flags, card, target] = v as unknown[];
  if (
    typeof id !== 'string' ||
    typeof sender !== 'string' ||
    typeof senderRole !== 'string' ||
    typeof cmid !== 'string' ||
    typeof bodyEnc !== 'number' ||
    !(body instanceof Uint8Array) ||
    typeof ts !== 'number' ||
    typeof flags !== 'number' ||
    (card !== null && typeof card !== 'string') ||
    (target !== undefined && target !== null && !Number.isSafeInteger(target))
  ) {
    throw new Error('packed row has a field of the wrong type');
  }
  const row: PackedRow = { id, sender, senderRole: senderRole as Role, cmid, bodyEnc, body, ts, flags, card };
  if (typeof target === 'number') row.target = target;
  return row;
}
