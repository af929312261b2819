import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonCodec, msgpackCodec, msgpackEncode, negotiateSubprotocol } from '../../src/protocol/codec.js';
import {
  agentItemIsMessageItem,
  frameRef,
  parseClientFrame,
  type ServerFrame,
  SUBPROTOCOL_JSON,
  SUBPROTOCOL_MSGPACK,
  toAgentItem,
  toMessageItem,
} from '../../src/protocol/frames.js';

const MAX_BODY = 10;
const utf8 = new TextEncoder();

const SERVER_FRAMES: ServerFrame[] = [
  {
    type: 'welcome',
    protocol: 1,
    node: 'n1',
    tenant: 'acme',
    user: 'v1',
    role: 'visitor',
    maxFrameBytes: 16384,
    maxBodyChars: 4000,
  },
  { type: 'ack', cmid: 'm1', conv: 'c1', seq: 1, id: '01HZZZZZZZZZZZZZZZZZZZZZZZ', ts: 1_700_000_000_000 },
  {
    type: 'msg',
    conv: 'c1',
    seq: 2,
    id: '01J0000000000000000000000A',
    from: 'a1',
    role: 'agent',
    cmid: 'm2',
    body: 'héllo 你好 😀',
    ts: 1_700_000_000_001,
  },
  { type: 'error', code: 'busy', message: 'full', ref: 'm3', retryAfterMs: 100 },
  { type: 'pong', ref: 'r1' },
  { type: 'pong' },
];

/** Expects `fn` to throw a SwitchboardError with `code`. */
function throwsCode(fn: () => unknown, code: string, label?: string): void {
  assert.throws(fn, { name: 'SwitchboardError', code }, label);
}

test('codec - msgpack round-trips every server frame kind', () => {
  for (const frame of SERVER_FRAMES) {
    const bytes = msgpackCodec.encode(frame);
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual(msgpackCodec.decode(bytes, true), frame);
  }
  assert.equal(msgpackCodec.binary, true);
});

test('codec - msgpack decodes from an ArrayBuffer as well as a Uint8Array', () => {
  const bytes = msgpackEncode({ type: 'ping', ref: 'r1' });
  const copy = bytes.slice().buffer;
  assert.deepEqual(msgpackCodec.decode(copy, true), { type: 'ping', ref: 'r1' });
});

test('codec - JSON round-trips every server frame kind', () => {
  for (const frame of SERVER_FRAMES) {
    const text = jsonCodec.encode(frame);
    assert.equal(typeof text, 'string');
    assert.deepEqual(jsonCodec.decode(utf8.encode(text as string), false), frame);
  }
  assert.equal(jsonCodec.binary, false);
});

test('codec - msgpack rejects a string value that is not valid UTF-8', () => {
  // fixstr of length 2: 0xc3 0x28 is a lead byte followed by a non-continuation byte.
  throwsCode(() => msgpackCodec.decode(new Uint8Array([0xa2, 0xc3, 0x28]), true), 'invalid_utf8');
  // The same string nested in a map value.
  const nested = new Uint8Array([0x81, 0xa4, ...utf8.encode('body'), 0xa2, 0xc3, 0x28]);
  throwsCode(() => msgpackCodec.decode(nested, true), 'invalid_utf8');
});

test('codec - msgpack rejects a map key that is not valid UTF-8', () => {
  // {"\xc3(": 1}: an invalid key must not be silently re-decoded into another string.
  throwsCode(() => msgpackCodec.decode(new Uint8Array([0x81, 0xa2, 0xc3, 0x28, 0x01]), true), 'invalid_utf8');
  // Overlong encoding of 't' (0xc1 0xb4) followed by "ype": must not decode to the key "type".
  const overlong = new Uint8Array([
    0x81,
    0xa5,
    0xc1,
    0xb4,
    ...utf8.encode('ype'),
    0xa4,
    ...utf8.encode('ping'),
  ]);
  throwsCode(() => msgpackCodec.decode(overlong, true), 'invalid_utf8');
});

test('codec - msgpack rejects garbage and truncated input with bad_frame', () => {
  const cases: Array<[string, number[]]> = [
    ['reserved byte 0xc1', [0xc1]],
    ['truncated array', [0x92, 0x01]],
    ['trailing bytes', [0x01, 0x02]],
    ['empty', []],
  ];
  for (const [label, bytes] of cases)
    throwsCode(() => msgpackCodec.decode(new Uint8Array(bytes), true), 'bad_frame', label);
});

test('codec - msgpack rejects text frames', () => {
  throwsCode(() => msgpackCodec.decode(msgpackEncode({ type: 'ping' }), false), 'bad_frame');
});

test('codec - JSON rejects binary frames', () => {
  throwsCode(() => jsonCodec.decode(utf8.encode('{"type":"ping"}'), true), 'bad_frame');
});

test('codec - JSON rejects text that is not JSON with bad_frame', () => {
  for (const text of ['{', 'ping', '', '{"type":"ping"} x']) {
    throwsCode(() => jsonCodec.decode(utf8.encode(text), false), 'bad_frame', text);
  }
});

test('codec - JSON and msgpack refuse the same nesting depth (8) with bad_frame', () => {
  const nest = (d: number): unknown => (d === 0 ? 1 : { a: nest(d - 1) });
  const ok = { type: 'ping', x: nest(7) };
  const deep = { type: 'ping', x: nest(8) };
  assert.deepEqual(jsonCodec.decode(utf8.encode(JSON.stringify(ok)), false), ok);
  assert.deepEqual(msgpackCodec.decode(msgpackEncode(ok), true), ok);
  throwsCode(() => jsonCodec.decode(utf8.encode(JSON.stringify(deep)), false), 'bad_frame');
  throwsCode(() => msgpackCodec.decode(msgpackEncode(deep), true), 'bad_frame');
  throwsCode(
    () => jsonCodec.decode(utf8.encode(`${'['.repeat(5000)}${']'.repeat(5000)}`), false),
    'bad_frame',
  );
});

test('codec - JSON rejects bytes that are not valid UTF-8', () => {
  const bytes = new Uint8Array([...utf8.encode('{"body":"'), 0xff, 0xfe, ...utf8.encode('"}')]);
  throwsCode(() => jsonCodec.decode(bytes, false), 'invalid_utf8');
  throwsCode(() => jsonCodec.decode(bytes.slice().buffer, false), 'invalid_utf8');
});

test('codec - negotiateSubprotocol follows the client order and ignores unknown names', () => {
  assert.equal(negotiateSubprotocol(`${SUBPROTOCOL_MSGPACK}, ${SUBPROTOCOL_JSON}`), msgpackCodec);
  assert.equal(negotiateSubprotocol(`${SUBPROTOCOL_JSON},${SUBPROTOCOL_MSGPACK}`), jsonCodec);
  assert.equal(negotiateSubprotocol(`chat.v9, ${SUBPROTOCOL_JSON}`), jsonCodec);
  assert.equal(negotiateSubprotocol('chat.v9, switchboard.v2.json'), null);
  assert.equal(negotiateSubprotocol(''), null);
});

test('frames - parseClientFrame accepts a valid send and keeps only its fields', () => {
  const frame = parseClientFrame(
    { type: 'send', conv: 'c-1:x.y', cmid: 'm_1', body: ' hi ', extra: 1 },
    MAX_BODY,
  );
  assert.deepEqual(frame, { type: 'send', conv: 'c-1:x.y', cmid: 'm_1', body: ' hi ' });
});

test('frames - parseClientFrame refuses non-objects and arrays with bad_frame', () => {
  for (const value of [null, undefined, 'send', 42, true, [], [{ type: 'ping' }]]) {
    throwsCode(() => parseClientFrame(value, MAX_BODY), 'bad_frame', JSON.stringify(value));
  }
});

test('frames - parseClientFrame requires a string type and a known one', () => {
  throwsCode(() => parseClientFrame({}, MAX_BODY), 'invalid_field');
  throwsCode(() => parseClientFrame({ type: 7 }, MAX_BODY), 'invalid_field');
  throwsCode(() => parseClientFrame({ type: 'history' }, MAX_BODY), 'unknown_type');
  throwsCode(() => parseClientFrame({ type: '' }, MAX_BODY), 'unknown_type');
});

test('frames - parseClientFrame checks conv and cmid against the id pattern', () => {
  const ok = { type: 'send', conv: 'c1', cmid: 'm1', body: 'hi' };
  const bad: unknown[] = [undefined, 5, '', 'has space', 'a/b', 'x'.repeat(65), 'ü'];
  for (const field of ['conv', 'cmid']) {
    for (const v of bad) {
      throwsCode(() => parseClientFrame({ ...ok, [field]: v }, MAX_BODY), 'invalid_field', `${field}=${v}`);
    }
  }
  assert.equal(
    (parseClientFrame({ ...ok, conv: 'x'.repeat(64) }, MAX_BODY) as { conv: string }).conv.length,
    64,
  );
});

test('frames - parseClientFrame checks the body', () => {
  const ok = { type: 'send', conv: 'c1', cmid: 'm1' };
  for (const body of [undefined, 5, null, ['hi']]) {
    throwsCode(() => parseClientFrame({ ...ok, body }, MAX_BODY), 'invalid_field', String(body));
  }
  for (const body of ['', '   ', '\n\t ']) {
    throwsCode(() => parseClientFrame({ ...ok, body }, MAX_BODY), 'invalid_field', JSON.stringify(body));
  }
  throwsCode(
    () => parseClientFrame({ ...ok, body: 'x'.repeat(MAX_BODY + 1) }, MAX_BODY),
    'payload_too_large',
  );
  assert.equal(
    (parseClientFrame({ ...ok, body: 'x'.repeat(MAX_BODY) }, MAX_BODY) as { body: string }).body.length,
    MAX_BODY,
  );
});

test('frames - parseClientFrame accepts a ping with and without ref', () => {
  assert.deepEqual(parseClientFrame({ type: 'ping' }, MAX_BODY), { type: 'ping' });
  assert.deepEqual(parseClientFrame({ type: 'ping', ref: 'r1' }, MAX_BODY), { type: 'ping', ref: 'r1' });
  throwsCode(() => parseClientFrame({ type: 'ping', ref: 'bad ref' }, MAX_BODY), 'invalid_field');
  throwsCode(() => parseClientFrame({ type: 'ping', ref: 1 }, MAX_BODY), 'invalid_field');
});

test('frames - frameRef returns a usable cmid or ref, else undefined', () => {
  assert.equal(frameRef({ type: 'send', cmid: 'm1', ref: 'r1' }), 'm1');
  assert.equal(frameRef({ type: 'ping', ref: 'r1' }), 'r1');
  assert.equal(frameRef({ cmid: 5, ref: 'r1' }), 'r1');
  assert.equal(frameRef({ cmid: 'bad id' }), undefined);
  assert.equal(frameRef({ ref: 'x'.repeat(65) }), undefined);
  assert.equal(frameRef({}), undefined);
  assert.equal(frameRef(null), undefined);
  assert.equal(frameRef('m1'), undefined);
});

test("codec - the agents' msg item is the visitor's exactly when agentItemIsMessageItem says so", () => {
  const row = {
    tenant: 't',
    conv: 'c',
    seq: 3,
    id: 'i3',
    sender: 'v',
    senderRole: 'visitor' as const,
    cmid: 'm3',
    body: 'call 138 1234 5678',
    ts: 1,
  };
  const cases: [typeof row & { review?: boolean }, string][] = [
    [row, row.body],
    [row, 'call 138 **** ****'],
    [{ ...row, review: true }, row.body],
    [{ ...row, review: true }, 'call 138 **** ****'],
  ];
  for (const [r, agentBody] of cases) {
    const same =
      Buffer.compare(
        msgpackEncode({ type: 'msg', ...toAgentItem(r, agentBody) }),
        msgpackEncode({ type: 'msg', ...toMessageItem(r) }),
      ) === 0;
    assert.equal(agentItemIsMessageItem(r, agentBody), same, `${agentBody} review=${r.review}`);
  }
});
