/**
 * A request on a shard's subject (the dispatcher's path once the member link timed out) keeps a chat
 * body's stored bytes as bytes: the client frames' decoder read them as text and refused every `send`
 * that took this path while Cassandra stalled (`invalid_utf8`, found by `npm run bench -- faults`).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { msgpackEncode } from '../../src/protocol/codec.js';
import { decodeShardRequest } from '../../src/routing/dispatcher.js';
import { compressBodies } from '../../workers/compression.js';

test('shard request - a send carrying its body encoded for storage decodes with the bytes intact', () => {
  const body = 'Where is my parcel? It was due on Monday.';
  const stored = compressBodies([body])[0]!;
  const msg = { type: 'send', sender: 'v1', role: 'visitor', cmid: 'm-1', body, stored };
  const req = decodeShardRequest(msgpackEncode({ tenant: 't', id: 'c-1', msg, ttl: 1000 }));
  const got = req.msg as typeof msg;
  assert.equal(got.body, body);
  assert.ok(got.stored.data instanceof Uint8Array);
  assert.deepEqual([...got.stored.data], [...stored.data]);
  assert.equal(got.stored.enc, stored.enc);
});
