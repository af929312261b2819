/**
 * Fuzzing a live gateway (a real broker process) for a bounded time (SB_FUZZ_MS, default 15 s) over
 * several sockets on both subprotocols, with a seeded PRNG (SB_FUZZ_SEED reproduces a run; the seed is
 * printed and in every failure message).
 *
 * What is checked, precisely:
 * - Every fuzz frame that must be refused (random bytes, the wrong WebSocket message type, a valid frame
 *   mutated so it is invalid: unknown or missing `type`, a required field removed, a field of the wrong
 *   type, a malformed identifier, a body over maxBodyChars, nesting deeper than allowed, text that is
 *   not a JSON object) is answered by an `error` frame before the answer to the next frame — the socket
 *   sends a marker `ping` after each fuzz frame, and the `error` must arrive before the marker's `pong`
 *   (refusals are synchronous, so silence there would be a lost answer). The socket stays open.
 * - A frame above maxFrameBytes closes the socket with 1009; above 4× it, or invalid UTF-8 in a text
 *   frame, drops it (1006). The socket then reconnects and goes on.
 * - Afterwards the process is alive, /healthz answers, and a well-behaved client gets its message
 *   acknowledged and delivered.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Sub, type TestClient } from '../harness/ws-client.js';

const DURATION_MS = Number(process.env['SB_FUZZ_MS'] ?? 15_000);
const SEED = Number(process.env['SB_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const MAX_FRAME = 16 * 1024;
const MAX_BODY_CHARS = 4000;
const SOCKETS: { role: TokenRole; sub: Sub }[] = [
  { role: 'visitor', sub: 'switchboard.v1.json' },
  { role: 'visitor', sub: 'switchboard.v1.msgpack' },
  { role: 'agent', sub: 'switchboard.v1.json' },
  { role: 'agent', sub: 'switchboard.v1.msgpack' },
  { role: 'visitor', sub: 'switchboard.v1.msgpack' },
  { role: 'visitor', sub: 'switchboard.v1.json' },
];

console.log(`fuzz seed ${SEED} (rerun with SB_FUZZ_SEED=${SEED}), ${DURATION_MS} ms`);

/** mulberry32: small, fast, and good enough to drive a fuzzer reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const auth = createAuthenticator(TEST_JWT_SECRET);
const dir = mkdtempSync(join(tmpdir(), 'sb-fuzz-'));
const tenant = `fuzz-${process.pid}`;
let node: BrokerProcess;

// A NATS server of our own: the JetStream reservations of every test cluster add up on the shared one.
let nats: NatsServerHandle;

before(async () => {
  const file = join(dir, 'tenants.yaml');
  // Rate limits out of the way: the fuzzer is after the decoder and validator, not the buckets.
  writeFileSync(
    file,
    'version: 1\ndefaults:\n  rateLimits: { connectionFramesPerS: 1000000, connectionBurst: 1000000, tenantFramesPerS: 1000000, tenantBurst: 1000000 }\n',
  );
  nats = await startNatsServer();
  node = await startBroker({
    nodeId: 'fuzz-a',
    natsUrl: nats.url,
    readyTimeoutMs: 120_000,
    keyspace: randomKeyspace('fuzz'),
    env: { SB_CASSANDRA_TIMEOUT_MS: '30000', SB_TENANTS_FILE: file },
  });
});

after(async () => {
  await node?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Fuzz =
  | { kind: 'refuse'; data: Buffer | string; binary: boolean; what: string }
  | { kind: 'close'; data: Buffer | string; binary: boolean; codes: number[]; what: string };

function generator(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const asciiJunk = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join('');
  const base = (): Record<string, unknown> =>
    pick([
      () => ({ type: 'send', conv: `c${int(50)}`, cmid: `m${int(1e6)}`, body: 'hello' }),
      () => ({ type: 'ping', ref: `r${int(1e6)}` }),
      () => ({ type: 'sync', conv: `c${int(50)}`, since: int(10) }),
    ])();
  const wrongValues: unknown[] = [
    null,
    42,
    -1.5,
    true,
    [],
    {},
    [1, 2],
    { a: 1 },
    '',
    'x'.repeat(65),
    'bad id!',
    '\u0000',
  ];
  const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });

  /** A valid frame mutated so that it must be refused. */
  function mutate(): Record<string, unknown> {
    const f = base();
    const fields = Object.keys(f).filter((k) => k !== 'type');
    switch (int(7)) {
      case 0:
        f['type'] = pick(['sned', 'PING', '', 'msg', 'ack', 'welcome', asciiJunk(1 + int(20))]);
        if (
          [
            'ping',
            'send',
            'sync',
            'read',
            'typing',
            'rate',
            'convs',
            'accept',
            'transfer',
            'close',
            'status',
            'context',
            'action',
          ].includes(String(f['type']))
        )
          f['type'] = 'nope';
        return f;
      case 1:
        delete f['type'];
        return f;
      case 2:
        f['type'] = pick([1, null, ['send'], { t: 1 }]);
        return f;
      case 3: {
        if (f['type'] === 'ping') {
          f['ref'] = pick(
            wrongValues.filter(
              (v) => typeof v !== 'string' || v === '' || v.length > 64 || /[^A-Za-z0-9_.:-]/.test(v),
            ),
          );
          return f;
        }
        const k = pick(fields);
        delete f[k];
        return f;
      }
      case 4: {
        const k = f['type'] === 'ping' ? 'ref' : pick(fields);
        const bad = wrongValues.filter((v) => {
          if (k === 'since') return typeof v !== 'number' || !Number.isInteger(v) || v < 0;
          if (k === 'body') return typeof v !== 'string' || v.trim() === '' || v === '\u0000';
          return typeof v !== 'string' || v === '' || v.length > 64 || /[^A-Za-z0-9_.:-]/.test(v);
        });
        f[k] = pick(bad);
        if (k === 'body' && f[k] === '\u0000') f[k] = 42;
        return f;
      }
      case 5:
        return {
          type: 'send',
          conv: 'c1',
          cmid: `m${int(1e6)}`,
          body: 'y'.repeat(MAX_BODY_CHARS + 1 + int(50)),
        };
      default:
        return { ...f, extra: nested(9 + int(4)) };
    }
  }

  return (binary: boolean): Fuzz => {
    const r = int(100);
    if (r < 25) {
      // Random bytes: on the JSON subprotocol as text they must be valid UTF-8 (else: a drop, below).
      if (binary) return { kind: 'refuse', data: bytes(int(300)), binary: true, what: 'random bytes' };
      return { kind: 'refuse', data: asciiJunk(int(300)), binary: false, what: 'random text' };
    }
    if (r < 32) {
      // The other subprotocol's message type.
      return binary
        ? { kind: 'refuse', data: JSON.stringify(base()), binary: false, what: 'text on msgpack' }
        : { kind: 'refuse', data: Buffer.from(encode(base())), binary: true, what: 'binary on json' };
    }
    if (r < 37) {
      const notObject = pick<unknown>([1, 'send', [base()], null, true]);
      return binary
        ? { kind: 'refuse', data: Buffer.from(encode(notObject)), binary: true, what: 'msgpack non-map' }
        : { kind: 'refuse', data: JSON.stringify(notObject), binary: false, what: 'json non-object' };
    }
    if (r < 40 && binary) {
      // A valid frame with trailing garbage or cut short.
      const enc = Buffer.from(encode(base()));
      const data =
        rand() < 0.5
          ? Buffer.concat([enc, bytes(1 + int(8))])
          : enc.subarray(0, Math.max(1, enc.length - 1 - int(4)));
      return { kind: 'refuse', data, binary: true, what: 'msgpack trailing/truncated' };
    }
    if (r < 96) {
      const f = mutate();
      return binary
        ? {
            kind: 'refuse',
            data: Buffer.from(encode(f)),
            binary: true,
            what: `mutated ${JSON.stringify(f).slice(0, 120)}`,
          }
        : {
            kind: 'refuse',
            data: JSON.stringify(f),
            binary: false,
            what: `mutated ${JSON.stringify(f).slice(0, 120)}`,
          };
    }
    if (r < 98) {
      const big = rand() < 0.7 ? MAX_FRAME + 1 + int(MAX_FRAME) : MAX_FRAME * 4 + 1 + int(1000);
      const codes = big > MAX_FRAME * 4 ? [1006] : [1009];
      return {
        kind: 'close',
        data: binary ? bytes(big) : 'z'.repeat(big),
        binary,
        codes,
        what: `oversized ${big}`,
      };
    }
    if (!binary) {
      return {
        kind: 'close',
        data: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
        binary: false,
        codes: [1006],
        what: 'invalid UTF-8 text',
      };
    }
    return { kind: 'refuse', data: bytes(1 + int(20)), binary: true, what: 'short random bytes' };
  };
}

interface Stats {
  frames: number;
  refused: number;
  closes: number;
  reconnects: number;
}

async function fuzzSocket(i: number, until: number, stats: Stats): Promise<void> {
  const { role, sub } = SOCKETS[i]!;
  const binary = sub === 'switchboard.v1.msgpack';
  const rand = prng(SEED + i * 7919);
  const next = generator(rand);
  const open = async () =>
    connectClient(`${node.wsBase}/ws/${role}`, await auth.sign({ tenant, sub: `u${i}`, role }, 600), sub);
  let c: TestClient = await open();
  let n = 0;
  while (Date.now() < until) {
    const f = next(binary);
    const where = `seed ${SEED} socket ${i} frame ${n} (${f.what})`;
    stats.frames++;
    if (f.kind === 'close') {
      c.sendRaw(typeof f.data === 'string' ? Buffer.from(f.data) : f.data, f.binary);
      const closed = await Promise.race([
        c.closed,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.ok(closed, `${where}: the socket was neither closed nor dropped`);
      assert.ok(f.codes.includes(closed.code), `${where}: closed with ${closed.code}, expected ${f.codes}`);
      stats.closes++;
      c = await open();
      stats.reconnects++;
      n++;
      continue;
    }
    c.sendRaw(typeof f.data === 'string' ? Buffer.from(f.data) : f.data, f.binary);
    const marker = `k${i}-${n++}`;
    c.send({ type: 'ping', ref: marker });
    const pong = await Promise.race([
      c.next((x) => x.type === 'pong' && x.ref === marker, 10_000),
      c.closed.then((cl) => Promise.reject(new Error(`${where}: socket closed ${cl.code} ${cl.reason}`))),
    ]);
    assert.equal(pong.type, 'pong');
    const errors = c.buffered().filter((x) => x.type === 'error');
    assert.ok(
      errors.length >= 1,
      `${where}: no error frame before the next answer; got ${JSON.stringify(c.buffered())}`,
    );
    // Take what arrived so far, so the next round starts empty.
    for (let k = 0; k < errors.length; k++) await c.next((x) => x.type === 'error', 1000);
    stats.refused++;
  }
  await c.close();
}

test('fuzz - random and mutated frames on both subprotocols: every one answered, the node keeps serving', async () => {
  const stats: Stats = { frames: 0, refused: 0, closes: 0, reconnects: 0 };
  const until = Date.now() + DURATION_MS;
  await Promise.all(SOCKETS.map((_, i) => fuzzSocket(i, until, stats)));
  console.log(`fuzz seed ${SEED}: ${JSON.stringify(stats)}`);
  assert.ok(stats.frames > SOCKETS.length * 10, `the fuzzer ran (${stats.frames} frames)`);

  // The node is alive and serves a well-behaved client.
  assert.equal((await fetch(`${node.httpBase}/healthz`)).status, 200, `seed ${SEED}`);
  const conv = `after-${process.pid}`;
  const visitor = await connectClient(
    `${node.wsBase}/ws/visitor`,
    await auth.sign({ tenant, sub: 'well-behaved', role: 'visitor' }, 600),
    'switchboard.v1.msgpack',
  );
  visitor.send({ type: 'send', conv, cmid: 'ok-1', body: 'still there?' });
  const ack = await visitor.next((f) => f.type === 'ack' && f.cmid === 'ok-1');
  assert.equal(ack.seq, 1, `seed ${SEED}`);
  const msg = await visitor.next((f) => f.type === 'msg' && f.conv === conv);
  assert.equal(msg.body, 'still there?');
  await visitor.close();
  assert.doesNotMatch(node.logs(), /uncaught|FATAL|unhandled/i, `seed ${SEED}: the broker logged a crash`);
});
