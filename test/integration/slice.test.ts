/**
 * The walking skeleton end to end against real processes: broker nodes (`switchboard node`),
 * nats-server and Cassandra. Visitor -> agent -> visitor on both subprotocols, across two broker
 * processes, history read back after a restart, masking, and bad input answered without harm.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import {
  connectClient,
  type Frame,
  type Sub,
  type TestClient,
  type UpgradeRefused,
} from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('slice');
let a: BrokerProcess;
let b: BrokerProcess;
let seq = 0;
const uid = (p: string) => `${p}-${process.pid}-${++seq}`;

function token(tenant: string, sub: string, role: TokenRole, ttl = 600): Promise<string> {
  return auth.sign({ tenant, sub, role }, ttl);
}

async function client(node: BrokerProcess, tenant: string, user: string, role: TokenRole, sub: Sub) {
  return connectClient(`${node.wsBase}/ws/${role}`, await token(tenant, user, role), sub);
}

async function history(
  node: BrokerProcess,
  tenant: string,
  user: string,
  role: TokenRole,
  conv: string,
  q = '',
) {
  const res = await fetch(`${node.httpBase}/api/v1/conversations/${conv}/messages${q}`, {
    headers: { authorization: `Bearer ${await token(tenant, user, role)}` },
  });
  return {
    status: res.status,
    body: (await res.json()) as { items: Frame[]; next: number | null; error?: Frame },
  };
}

const isMsg = (conv: string, s: number) => (f: Frame) => f.type === 'msg' && f.conv === conv && f.seq === s;

async function roundTrip(visitorNode: BrokerProcess, agentNode: BrokerProcess, sub: Sub) {
  const tenant = uid('t');
  const conv = uid('c');
  const agent = await client(agentNode, tenant, 'agent1', 'agent', sub);
  const visitor = await client(visitorNode, tenant, 'v1', 'visitor', sub);
  try {
    visitor.send({ type: 'send', conv, cmid: 'm1', body: 'hello, where is my order?' });
    const ack = await visitor.next((f) => f.type === 'ack');
    assert.equal(ack.cmid, 'm1');
    assert.equal(ack.seq, 1);
    assert.match(String(ack.id), /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const atAgent = await agent.next(isMsg(conv, 1));
    assert.equal(atAgent.body, 'hello, where is my order?');
    assert.equal(atAgent.from, 'v1');
    assert.equal(atAgent.role, 'visitor');

    agent.send({ type: 'send', conv, cmid: 'r1', body: 'It ships today.' });
    const agentAck = await agent.next((f) => f.type === 'ack');
    assert.equal(agentAck.seq, 2);
    const atVisitor = await visitor.next(isMsg(conv, 2));
    assert.equal(atVisitor.body, 'It ships today.');
    assert.equal(atVisitor.from, 'agent1');

    const h = await history(visitorNode, tenant, 'v1', 'visitor', conv);
    assert.equal(h.status, 200);
    assert.deepEqual(
      h.body.items.map((m) => [m.seq, m.from, m.body]),
      [
        [2, 'agent1', 'It ships today.'],
        [1, 'v1', 'hello, where is my order?'],
      ],
    );
    return { tenant, conv };
  } finally {
    await Promise.all([agent.close(), visitor.close()]);
  }
}

// Our own nats-server: brokers on one NATS server form one cluster, and other test files run
// brokers at the same time.
let nats: NatsServerHandle;

before(async () => {
  nats = await startNatsServer();
  [a, b] = await Promise.all([
    startBroker({ nodeId: 'slice-a', keyspace, natsUrl: nats.url }),
    startBroker({ nodeId: 'slice-b', keyspace, natsUrl: nats.url }),
  ]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await nats?.stop();
});

describe('slice', () => {
  test('slice - visitor to agent and back over switchboard.v1.json', async () => {
    await roundTrip(a, a, 'switchboard.v1.json');
  });

  test('slice - visitor to agent and back over switchboard.v1.msgpack', async () => {
    await roundTrip(a, a, 'switchboard.v1.msgpack');
  });

  test('slice - visitor and agent on different broker processes', async () => {
    await roundTrip(a, b, 'switchboard.v1.json');
    await roundTrip(b, a, 'switchboard.v1.msgpack');
  });

  test('slice - a listed word is masked in what is delivered and stored', async () => {
    const tenant = uid('t');
    const conv = uid('c');
    const agent = await client(b, tenant, 'ag', 'agent', 'switchboard.v1.json');
    const visitor = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.json');
    visitor.send({ type: 'send', conv, cmid: 'x1', body: 'this is a BadWord here' });
    await visitor.next((f) => f.type === 'ack');
    const got = await agent.next(isMsg(conv, 1));
    assert.equal(got.body, 'this is a ******* here');
    const h = await history(a, tenant, 'v', 'visitor', conv);
    assert.equal(h.body.items[0]?.body, 'this is a ******* here');
    await Promise.all([agent.close(), visitor.close()]);
  });

  test('slice - a repeated cmid returns the original ack and stores once', async () => {
    const tenant = uid('t');
    const conv = uid('c');
    const visitor = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.msgpack');
    visitor.send({ type: 'send', conv, cmid: 'same', body: 'one' });
    const first = await visitor.next((f) => f.type === 'ack');
    visitor.send({ type: 'send', conv, cmid: 'same', body: 'one' });
    const second = await visitor.next((f) => f.type === 'ack');
    assert.deepEqual(second, first);
    const h = await history(a, tenant, 'v', 'visitor', conv);
    assert.equal(h.body.items.length, 1);
    await visitor.close();
  });

  test('slice - a reconnecting agent resumes with sync from its last seen seq', async () => {
    const tenant = uid('t');
    const conv = uid('c');
    const visitor = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.json');
    let agent = await client(b, tenant, 'ag', 'agent', 'switchboard.v1.msgpack');
    visitor.send({ type: 'send', conv, cmid: 's1', body: 'first' });
    await agent.next(isMsg(conv, 1));
    agent.send({ type: 'send', conv, cmid: 'r1', body: 'claimed' });
    await agent.next((f) => f.type === 'ack');
    await agent.close();
    for (let i = 2; i <= 6; i++) {
      visitor.send({ type: 'send', conv, cmid: `s${i}`, body: `missed ${i}` });
      await visitor.next((f) => f.type === 'ack' && f.cmid === `s${i}`);
    }
    agent = await client(a, tenant, 'ag', 'agent', 'switchboard.v1.msgpack');
    agent.send({ type: 'sync', conv, since: 2, limit: 3 });
    const page1 = await agent.next((f) => f.type === 'messages');
    assert.deepEqual(
      (page1.items as Frame[]).map((m) => [m.seq, m.body]),
      [
        [3, 'missed 2'],
        [4, 'missed 3'],
        [5, 'missed 4'],
      ],
    );
    assert.equal(page1.more, true);
    agent.send({ type: 'sync', conv, since: 5 });
    const page2 = await agent.next((f) => f.type === 'messages');
    assert.deepEqual(
      (page2.items as Frame[]).map((m) => m.seq),
      [6, 7],
    );
    assert.equal(page2.more, false);
    // Someone else's conversation, and a bad cursor, are refused.
    const stranger = await client(a, tenant, 'other', 'visitor', 'switchboard.v1.json');
    stranger.send({ type: 'sync', conv, since: 0 });
    assert.equal((await stranger.next((f) => f.type === 'error')).code, 'forbidden');
    stranger.send({ type: 'sync', conv, since: -1 });
    assert.equal((await stranger.next((f) => f.type === 'error')).code, 'invalid_field');
    await Promise.all([visitor.close(), agent.close(), stranger.close()]);
  });

  test('slice - history survives a broker restart and pages with a cursor', async () => {
    const tenant = uid('t');
    const conv = uid('c');
    const visitor = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.json');
    for (let i = 1; i <= 5; i++) {
      visitor.send({ type: 'send', conv, cmid: `k${i}`, body: `message ${i}` });
      await visitor.next((f) => f.type === 'ack' && f.cmid === `k${i}`);
    }
    await visitor.close();
    await a.stop();
    a = await startBroker({ nodeId: 'slice-a2', keyspace, natsUrl: nats.url });
    const p1 = await history(a, tenant, 'v', 'visitor', conv, '?limit=3');
    assert.deepEqual(
      p1.body.items.map((m) => m.seq),
      [5, 4, 3],
    );
    assert.equal(p1.body.next, 3);
    const p2 = await history(a, tenant, 'v', 'visitor', conv, `?limit=3&before=${p1.body.next}`);
    assert.deepEqual(
      p2.body.items.map((m) => m.seq),
      [2, 1],
    );
    assert.equal(p2.body.next, null);
    // The conversation continues where it was: the next seq follows the stored ones.
    const again = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.json');
    again.send({ type: 'send', conv, cmid: 'k6', body: 'after restart' });
    const ack = await again.next((f) => f.type === 'ack');
    assert.equal(ack.seq, 6);
    await again.close();
  });
});

describe('bad input', () => {
  let tenant: string;
  let visitor: TestClient;
  const conv = uid('c');

  before(async () => {
    tenant = uid('t');
    visitor = await client(a, tenant, 'v', 'visitor', 'switchboard.v1.json');
  });
  after(async () => {
    await visitor.close();
  });

  const expectError = async (code: string) => {
    const f = await visitor.next((x) => x.type === 'error');
    assert.equal(f.code, code, JSON.stringify(f));
    assert.equal(typeof f.message, 'string');
    return f;
  };

  test('bad input - malformed JSON frame gets bad_frame', async () => {
    visitor.sendRaw('{"type": "send", ', false);
    await expectError('bad_frame');
  });

  test('bad input - binary frame on the JSON subprotocol gets bad_frame', async () => {
    visitor.sendRaw(Buffer.from([1, 2, 3]), true);
    await expectError('bad_frame');
  });

  test('bad input - invalid UTF-8 in a msgpack string gets invalid_utf8', async () => {
    const m = await client(a, tenant, 'v-mp', 'visitor', 'switchboard.v1.msgpack');
    // fixmap(4) with a `body` of fixstr(2) holding the invalid bytes 0xff 0xfe.
    const frame = Buffer.concat([
      Buffer.from([0x84]),
      Buffer.from([0xa4, ...Buffer.from('type'), 0xa4, ...Buffer.from('send')]),
      Buffer.from([0xa4, ...Buffer.from('conv'), 0xa2, ...Buffer.from('c1')]),
      Buffer.from([0xa4, ...Buffer.from('cmid'), 0xa2, ...Buffer.from('u1')]),
      Buffer.from([0xa4, ...Buffer.from('body'), 0xa2, 0xff, 0xfe]),
    ]);
    m.sendRaw(frame, true);
    const f = await m.next((x) => x.type === 'error');
    assert.equal(f.code, 'invalid_utf8');
    await m.close();
  });

  test('bad input - invalid UTF-8 in a JSON text frame drops that connection only', async () => {
    const j = await client(a, tenant, 'v-json', 'visitor', 'switchboard.v1.json');
    j.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), false);
    // RFC 6455 section 8.1: invalid UTF-8 in a text frame fails the connection (uWS drops it).
    const c = await j.closed;
    assert.notEqual(c.code, 1000);
  });

  test('bad input - unknown type gets unknown_type', async () => {
    visitor.send({ type: 'teleport', conv });
    await expectError('unknown_type');
  });

  test('bad input - missing or wrong fields get invalid_field with the cmid as ref', async () => {
    visitor.send({ type: 'send', conv, cmid: 'bad1' });
    const f = await expectError('invalid_field');
    assert.equal(f.ref, 'bad1');
    visitor.send({ type: 'send', conv: 'has spaces', cmid: 'bad2', body: 'x' });
    await expectError('invalid_field');
    visitor.send({ type: 'send', conv, cmid: 'bad3', body: 42 });
    await expectError('invalid_field');
    visitor.send([1, 2, 3] as unknown as Record<string, unknown>);
    await expectError('bad_frame');
  });

  test('bad input - a body over the limit gets payload_too_large', async () => {
    visitor.send({ type: 'send', conv, cmid: 'big', body: 'x'.repeat(4001) });
    await expectError('payload_too_large');
  });

  test('bad input - a frame over the frame limit closes with 1009', async () => {
    const v = await client(a, tenant, 'v2', 'visitor', 'switchboard.v1.json');
    v.sendRaw(JSON.stringify({ type: 'send', conv, cmid: 'huge', body: 'y'.repeat(20_000) }), false);
    const c = await v.closed;
    assert.equal(c.code, 1009);
  });

  test('bad input - a frame over four times the limit drops the connection', async () => {
    const v = await client(a, tenant, 'v3', 'visitor', 'switchboard.v1.msgpack');
    v.sendRaw(Buffer.alloc(70_000, 0x41), true);
    const c = await v.closed;
    assert.notEqual(c.code, 1000);
  });

  test('bad input - a visitor cannot write into another visitor conversation', async () => {
    const owner = await client(a, tenant, 'owner', 'visitor', 'switchboard.v1.json');
    const c2 = uid('c');
    owner.send({ type: 'send', conv: c2, cmid: 'o1', body: 'mine' });
    await owner.next((f) => f.type === 'ack');
    visitor.send({ type: 'send', conv: c2, cmid: 'intrude', body: 'yours?' });
    const f = await expectError('forbidden');
    assert.equal(f.ref, 'intrude');
    const h = await history(a, tenant, 'v', 'visitor', c2);
    assert.equal(h.status, 403);
    await owner.close();
  });

  test('bad input - another tenant cannot read the conversation (not found)', async () => {
    visitor.send({ type: 'send', conv, cmid: 'mine1', body: 'private' });
    await visitor.next((f) => f.type === 'ack' && f.cmid === 'mine1');
    const other = await history(a, uid('other'), 'v', 'visitor', conv);
    assert.equal(other.status, 404);
    assert.equal(other.body.error?.code, 'not_found');
    const agentOther = await history(a, uid('other'), 'a', 'agent', conv);
    assert.equal(agentOther.status, 404);
  });

  test('bad input - bad, expired, missing tokens and wrong role are refused at upgrade', async () => {
    const refuse = async (
      tok: string | undefined,
      path: string,
      sub: Sub | string[] = 'switchboard.v1.json',
    ) => {
      let c: TestClient;
      try {
        c = await connectClient(`${a.wsBase}${path}`, tok, sub);
      } catch (err) {
        const r = err as UpgradeRefused;
        return { status: r.status, code: (JSON.parse(r.body) as { error: { code: string } }).error.code };
      }
      await c.close();
      return assert.fail(`upgrade of ${path} should have been refused`);
    };
    assert.deepEqual(await refuse('not.a.jwt', '/ws/visitor'), { status: 401, code: 'unauthorized' });
    assert.deepEqual(await refuse(undefined, '/ws/visitor'), { status: 401, code: 'unauthorized' });
    const wrongKey = await createAuthenticator('another-secret-0123456789abcdefghijklmn').sign(
      { tenant, sub: 'v', role: 'visitor' },
      600,
    );
    assert.deepEqual(await refuse(wrongKey, '/ws/visitor'), { status: 401, code: 'unauthorized' });
    assert.deepEqual(await refuse(await token(tenant, 'v', 'visitor', -30), '/ws/visitor'), {
      status: 401,
      code: 'token_expired',
    });
    assert.deepEqual(await refuse(await token(tenant, 'v', 'visitor'), '/ws/agent'), {
      status: 403,
      code: 'forbidden',
    });
    assert.deepEqual(await refuse(await token(tenant, 'v', 'visitor'), '/ws/visitor', ['chat']), {
      status: 400,
      code: 'unsupported_subprotocol',
    });
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ tenant, sub: 'v', role: 'visitor', exp: Math.floor(Date.now() / 1000) + 600 }),
    ).toString('base64url')}.`;
    assert.deepEqual(await refuse(unsigned, '/ws/visitor'), { status: 401, code: 'unauthorized' });
  });

  test('bad input - the history API answers bad parameters and routes with JSON errors', async () => {
    const bad = await history(a, tenant, 'v', 'visitor', conv, '?limit=9999');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'invalid_field');
    const noAuth = await fetch(`${a.httpBase}/api/v1/conversations/${conv}/messages`);
    assert.equal(noAuth.status, 401);
    const nowhere = await fetch(`${a.httpBase}/api/v1/nowhere`);
    assert.equal(nowhere.status, 404);
  });

  test('bad input - malformed percent-escapes in path and token are answered, not fatal', async () => {
    const badPath = await fetch(`${a.httpBase}/api/v1/conversations/%E0%A4%A/messages`, {
      headers: { authorization: `Bearer ${await token(tenant, 'v', 'visitor')}` },
    });
    assert.equal(badPath.status, 400);
    const badToken = await fetch(`${a.httpBase}/api/v1/conversations/${conv}/messages?token=%25E0%A`);
    assert.equal(badToken.status, 401);
    const lower = await fetch(`${a.httpBase}/api/v1/conversations/${conv}/messages`, {
      headers: { authorization: `bearer ${await token(tenant, 'v', 'visitor')}` },
    });
    assert.equal(lower.status, 200, 'the bearer scheme is case-insensitive');
    const health = await fetch(`${a.httpBase}/healthz`);
    assert.equal(health.status, 200);
  });

  test('bad input - a body with a lone surrogate gets invalid_utf8', async () => {
    visitor.sendRaw('{"type":"send","conv":"c-sur","cmid":"sur1","body":"x\\ud800y"}', false);
    const f = await expectError('invalid_utf8');
    assert.equal(f.ref, 'sur1');
  });

  test('bad input - /metrics exposes mailbox and rejection figures', async () => {
    const res = await fetch(`${a.httpBase}/metrics`, { headers: ADMIN_HEADERS });
    assert.equal(res.status, 200);
    const text = await res.text();
    for (const name of [
      'switchboard_shard_mailbox_max_depth',
      'switchboard_busy_rejections_total',
      'switchboard_sockets',
    ]) {
      assert.match(text, new RegExp(`^${name}\\{`, 'm'));
    }
  });

  test('bad input - after all of it the node still serves a well-behaved client', async () => {
    visitor.send({ type: 'ping', ref: 'p1' });
    const pong = await visitor.next((f) => f.type === 'pong');
    assert.equal(pong.ref, 'p1');
    visitor.send({ type: 'send', conv, cmid: 'fine', body: 'still here' });
    const ack = await visitor.next((f) => f.type === 'ack' && f.cmid === 'fine');
    assert.equal(typeof ack.seq, 'number');
  });
});
