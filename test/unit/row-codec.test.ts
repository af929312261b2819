import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { MAX_PACKED_ROW_BYTES, packRow, ROW_FORMAT, unpackRow } from '../../src/store/row-codec.js';

const row = {
  id: '01JABCDEFGHJKMNPQRSTVWXYZ0',
  sender: 'visitor-1',
  senderRole: 'visitor' as const,
  cmid: 'c1',
  bodyEnc: 1,
  body: new Uint8Array([1, 2, 3, 250]),
  ts: 1_735_689_600_123,
  flags: 1,
  card: '{"kind":"order","title":"Order 42"}',
};

test('row codec - a packed row round trips, and the same row packs to the same bytes', () => {
  const bytes = packRow(row);
  const back = unpackRow(bytes);
  assert.deepEqual({ ...back, body: [...back.body] }, { ...row, body: [...row.body] });
  assert.deepEqual(packRow(row), bytes, 'repeats of an unsettled write must store identical cells');
  assert.deepEqual(unpackRow(packRow({ ...row, card: null, flags: 0 })).card, null);
});

test('row codec - other formats, short arrays, wrong types and oversized cells are refused with a reason', () => {
  assert.throws(
    () => unpackRow(encode([ROW_FORMAT + 1, ...Object.values(row)])),
    /unknown packed row format 2/,
  );
  assert.throws(() => unpackRow(encode([ROW_FORMAT, 'id'])), /not an array of 10 or more/);
  assert.throws(() => unpackRow(encode({ id: 'x' })), /not an array/);
  const wrong = [ROW_FORMAT, row.id, row.sender, row.senderRole, row.cmid, '1', row.body, row.ts, 0, null];
  assert.throws(() => unpackRow(encode(wrong)), /wrong type/);
  assert.throws(() => unpackRow(new Uint8Array(MAX_PACKED_ROW_BYTES + 1)), /packed row of/);
  // A later format may append fields: this reader ignores what follows the ten it knows.
  const longer = encode([
    ROW_FORMAT,
    row.id,
    row.sender,
    row.senderRole,
    row.cmid,
    1,
    row.body,
    row.ts,
    0,
    null,
    7,
  ]);
  assert.equal(unpackRow(longer).id, row.id);
});

test('row codec - a recall or edit row carries its target as an 11th field; other rows keep ten', () => {
  const change = { ...row, flags: 4, card: null, target: 42 };
  const back = unpackRow(packRow(change));
  assert.equal(back.target, 42);
  assert.equal(unpackRow(packRow(row)).target, undefined);
  assert.equal(packRow(change).byteLength, packRow({ ...row, flags: 4, card: null }).byteLength + 1);
  const bad = [ROW_FORMAT, row.id, row.sender, row.senderRole, row.cmid, 1, row.body, row.ts, 4, null, 'x'];
  assert.throws(() => unpackRow(encode(bad)), /wrong type/);
});
