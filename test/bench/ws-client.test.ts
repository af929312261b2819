/**
 * The bench's own WebSocket client (bench/lib/ws-client.ts) against a `ws` server that does what a broker
 * may do: refuse the upgrade, send `welcome` late, split frames across TCP reads, fragment a message, ping,
 * send a frame above the client's limit, and close with a code.
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { openClient } from '../../bench/lib/clients.js';
import { decodeFrame, type Envelope, encodeFrame } from '../../bench/lib/codec.js';
import type { ClientSpec } from '../../bench/lib/target.js';
import {
  decodeServerFrame,
  MAX_INBOUND_FRAME_BYTES,
  OpenError,
  openSocket,
  SUBPROTOCOL_MSGPACK,
} from '../../bench/lib/ws-client.js';
import type { ServerFrame } from '../../src/protocol/frames.js';

type Behaviour = (ws: WsSocket, auth: string | undefined) => void;
let refusals = 0;
let behaviour: Behaviour = () => {};
const wss = new WebSocketServer({
  port: 0,
  host: '127.0.0.1',
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL_MSGPACK) ? SUBPROTOCOL_MSGPACK : false),
  verifyClient: (info, done) => {
    if (info.req.headers.authorization === 'Bearer refuse') done(false, 401);
    // The node's upgrade admission: 503 with its advice in a JSON body, `refusals` times in a row.
    else if (info.req.headers.authorization === 'Bearer crowded' && refusals > 0) {
      refusals--;
      done(false, 503, '{"code":"unavailable","retryAfterMs":40}');
    } else done(true);
  },
});
wss.on('connection', (ws, req) => behaviour(ws, req.headers.authorization));
await once(wss, 'listening');
const base = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
after(() => wss.close());

const welcome = encodeFrame({ type: 'welcome', node: 'w0', protocol: 1 });

function open(token = 'ok', frames: ServerFrame[] = [], closes: number[] = []) {
  return openSocket({
    base,
    role: 'visitor',
    token,
    handshakeTimeoutMs: 3000,
    decode: decodeServerFrame,
    onFrame: (f) => frames.push(f),
    onClose: (code) => closes.push(code),
  });
}

test('bench ws client - resolves at welcome, and sends masked frames the server decodes', async () => {
  const received: unknown[] = [];
  behaviour = (ws, auth) => {
    assert.equal(auth, 'Bearer ok');
    ws.on('message', (data: Buffer) => received.push(decodeFrame(data)));
    setTimeout(() => ws.send(welcome), 20);
  };
  const frames: ServerFrame[] = [];
  const s = await open('ok', frames);
  assert.equal(s.node, 'w0');
  assert.equal(s.send({ type: 'send', conv: 'c1', cmid: 'm1', body: 'x'.repeat(300) }), true);
  assert.equal(s.send({ type: 'send', conv: 'c1', cmid: 'm2', body: 'y'.repeat(70_000) }), true);
  for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    received.map((f) => (f as { cmid: string }).cmid),
    ['m1', 'm2'],
  );
  await s.close(1000);
  assert.equal(s.isOpen(), false);
});

test('bench ws client - a refused upgrade and a missing welcome are classified', async () => {
  await assert.rejects(
    open('refuse'),
    (err: unknown) => err instanceof OpenError && err.reason === 'http-401',
  );
  behaviour = () => {};
  await assert.rejects(
    open(),
    (err: unknown) => err instanceof OpenError && err.reason === 'welcome-timeout',
  );
  behaviour = (ws) => ws.close(1012, 'restart');
  await assert.rejects(open(), (err: unknown) => err instanceof OpenError && err.reason === 'closed-1012');
});

test('bench ws client - split and fragmented frames, pings answered, the close code reported', async () => {
  let pong: Promise<unknown> = Promise.resolve();
  behaviour = (ws) => {
    ws.send(welcome);
    // One message in three fragments, then a ping (answered with a pong), then a close with a code.
    const body = encodeFrame({ type: 'ack', cmid: 'frag', seq: 1 }) as Uint8Array;
    ws.send(body.subarray(0, 3), { fin: false, binary: true });
    ws.send(body.subarray(3, 6), { fin: false, binary: true });
    ws.send(body.subarray(6), { fin: true, binary: true });
    pong = once(ws, 'pong');
    ws.ping(Buffer.from('hi'));
    setTimeout(() => ws.close(4001, 'bye'), 50);
  };
  const frames: ServerFrame[] = [];
  const closes: number[] = [];
  await open('ok', frames, closes);
  const [data] = (await pong) as [Buffer];
  assert.equal(data.toString(), 'hi');
  for (let i = 0; i < 100 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(frames, [{ type: 'ack', cmid: 'frag', seq: 1 }]);
  assert.deepEqual(closes, [4001]);
});

/** An unmasked server frame, as bytes for the raw TCP socket under a `ws` connection. */
function rawBinaryFrame(payload: Uint8Array): Buffer {
  const head =
    payload.length < 126
      ? Buffer.from([0x82, payload.length])
      : Buffer.from([0x82, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

test('bench ws client - by default a frame is read as its envelope; sockets sharing the read buffer keep their partial frames', async () => {
  const raw: { write(b: Uint8Array): void }[] = [];
  behaviour = (ws) => {
    ws.send(welcome);
    raw.push((ws as unknown as { _socket: { write(b: Uint8Array): void } })._socket);
  };
  const got: Envelope[][] = [[], []];
  const sockets = [];
  for (const into of got)
    sockets.push(
      await openSocket({ base, role: 'agent', token: 'ok', onFrame: (f) => into.push(f), onClose: () => {} }),
    );
  const msg = (who: string) =>
    rawBinaryFrame(
      encodeFrame({ type: 'msg', conv: 'c1', seq: 7, from: who, cmid: `m-${who}`, body: who.repeat(200) }),
    );
  try {
    const a = msg('a');
    const b = msg('b');
    // Half of a's frame, all of b's on the other socket, then the rest of a's: each read lands in the one
    // shared buffer, so a's first half must have been copied out before b's read overwrote it.
    raw[0]!.write(a.subarray(0, 150));
    await new Promise((r) => setTimeout(r, 30));
    raw[1]!.write(b);
    await new Promise((r) => setTimeout(r, 30));
    raw[0]!.write(a.subarray(150));
    for (let i = 0; i < 100 && (got[0]!.length === 0 || got[1]!.length === 0); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, [
      [{ type: 'msg', conv: 'c1', from: 'a', cmid: 'm-a' }],
      [{ type: 'msg', conv: 'c1', from: 'b', cmid: 'm-b' }],
    ]);
  } finally {
    for (const s of sockets) s.terminate();
  }
});

test('bench ws client - a frame above the limit drops the socket (1009) instead of buffering it', async () => {
  behaviour = (ws) => {
    ws.send(welcome);
    setTimeout(() => ws.send(Buffer.alloc(MAX_INBOUND_FRAME_BYTES + 1)), 20);
  };
  const closes: number[] = [];
  const s = await open('ok', [], closes);
  for (let i = 0; i < 200 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(closes, [1009]);
  assert.equal(s.isOpen(), false);
});

test('bench ws client - a refused upgrade (503) is retried after its retryAfterMs; past the bound it fails', async () => {
  behaviour = (ws) => ws.send(welcome);
  const o = { base, role: 'visitor' as const, token: 'crowded', onFrame: () => {}, onClose: () => {} };
  refusals = 3;
  const t0 = Date.now();
  const s = await openClient({ protocol: 'switchboard' } as ClientSpec, o);
  assert.ok(Date.now() - t0 >= 3 * 40, 'waited the advice each time');
  assert.equal(refusals, 0);
  await s.close();
  refusals = 1000;
  await assert.rejects(openClient({ protocol: 'switchboard' } as ClientSpec, o), (e: unknown) => {
    assert.ok(e instanceof OpenError);
    assert.equal(e.reason, 'http-503');
    assert.equal(e.retryAfterMs, 40);
    return true;
  });
  refusals = 0;
});
