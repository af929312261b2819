/**
 * The generators' envelope reader (bench/lib/codec.ts): on every msgpack type a server frame may carry, it
 * reads exactly the envelope's fields that a full decode reads, skips the rest, and refuses bytes that are
 * not one whole map.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEnvelope, decodeEnvelopeFields, decodeFrame, encodeFrame } from '../../bench/lib/codec.js';

const KEYS = ['type', 'cmid', 'ref', 'conv', 'from', 'code', 'retryAfterMs', 'node'];

/** What the envelope should be: the full decode's values of the envelope's keys, where they are scalars. */
function expected(bytes: Uint8Array): Record<string, unknown> {
  const full = decodeFrame(bytes) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of KEYS) {
    const v = full[k];
    if (k in full && (v === null || typeof v !== 'object')) out[k] = v;
    else if (k in full) out[k] = undefined;
  }
  return out;
}

const FRAMES: Record<string, unknown>[] = [
  {
    type: 'msg',
    conv: 'c-1',
    seq: 70_000,
    id: '0193a1b2-c3d4',
    from: 'v-1',
    role: 'visitor',
    cmid: '0.1a',
    body: 'x'.repeat(80),
    ts: 1_733_430_000_123,
  },
  // str8 / str16 / str32 bodies, a multi-byte envelope value, a nested card skipped.
  {
    type: 'msg',
    cmid: 'ü-ß-日本',
    body: 'y'.repeat(200),
    card: { title: 'T', items: [1, -1, [true, null]] },
  },
  { type: 'msg', cmid: 'm2', body: 'z'.repeat(70_000) },
  { type: 'msg', cmid: 'm3', body: 'w'.repeat(300) },
  { type: 'ack', cmid: 'm1', conv: 'c-1', seq: 255, id: 'i', ts: 65_536 },
  { type: 'error', code: 'busy', message: 'try later', ref: 'm1', retryAfterMs: 2000 },
  { type: 'welcome', node: 'w0', protocol: 1, limits: { maxBodyChars: 4000 } },
  { type: 'done', op: 'accept', ref: 'c-0' },
  // Every scalar width, negative ints, floats, booleans, nil, binary and a timestamp extension.
  {
    type: 'convs',
    ref: -1,
    retryAfterMs: 1.5,
    code: null,
    node: true,
    a: -33,
    b: -200,
    c: -40_000,
    d: -3_000_000_000,
    e: 2 ** 40,
    f: new Uint8Array([1, 2, 3]),
    g: new Date(1_733_430_000_123),
    h: Math.fround(0.25),
    items: [{ conv: 'nested, not the envelope' }],
  },
  // Keys that are not strings, and a key longer than any of the envelope's.
  { type: 'x', averyveryverylongkeyname: 1 },
];

test('bench codec - the envelope is what a full decode has in its keys, on every msgpack type', () => {
  for (const f of FRAMES) {
    const bytes = encodeFrame(f);
    assert.deepEqual({ ...decodeEnvelope(bytes) }, expected(bytes), JSON.stringify(f).slice(0, 80));
  }
  // A map with an integer key (not a server frame, but valid msgpack) is stepped over too.
  const intKey = new Uint8Array([0x82, 0x01, 0xa1, 0x61, 0xa4, ...Buffer.from('type'), 0xa1, 0x74]);
  assert.deepEqual({ ...decodeEnvelope(intKey) }, { type: 't' });
  // A peer's message has no type: the fields are still read.
  assert.deepEqual(
    { ...decodeEnvelopeFields(encodeFrame({ conv: 'c', cmid: 'm', from: 'u', body: 'b', ts: 1 })) },
    { conv: 'c', cmid: 'm', from: 'u' },
  );
});

test('bench codec - bytes that are not one whole map with a type are refused, not misread', () => {
  const bytes = encodeFrame(FRAMES[0]);
  for (let n = 0; n < bytes.length; n++)
    assert.throws(() => decodeEnvelope(bytes.subarray(0, n)), /truncated|not a msgpack map/, `prefix ${n}`);
  assert.throws(() => decodeEnvelope(new Uint8Array([...bytes, 0x00])), /trailing bytes/);
  assert.throws(() => decodeEnvelope(encodeFrame(['msg'])), /not a msgpack map/);
  assert.throws(() => decodeEnvelope(encodeFrame({ cmid: 'm' })), /no type/);
  assert.throws(() => decodeEnvelope(encodeFrame({ type: 7 })), /no type/);
  assert.throws(
    () => decodeEnvelope(new Uint8Array([0x81, 0xa1, 0x61, 0xc1])),
    /invalid msgpack type byte 0xc1/,
  );
  let deep: unknown = 1;
  for (let i = 0; i < 40; i++) deep = [deep];
  assert.throws(() => decodeEnvelope(encodeFrame({ type: 'x', deep })), /nested too deep/);
});
