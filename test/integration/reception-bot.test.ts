/**
 * Bot first (issue #17 item 7) over real sockets, with the shipped example bot (examples/bot.ts) as a
 * process on real NATS: a new conversation goes to the tenant's bot, which answers as role `bot` until
 * it hands off (or the visitor asks for a person with `handoff`); then the queue takes over and the
 * agent gets the bot's summary (`handoff` frame). A bot that answers too long, too late (the
 * tenant's timeout) or not at all (no responders) never strands the visitor: the queue takes over.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA } from '../harness/env.js';
import {
  client,
  type ExampleProcess,
  frameOf,
  request,
  say,
  startExampleBot,
  tenantsFile,
  uid,
} from '../harness/reception.js';
import type { Frame } from '../harness/ws-client.js';

const keyspace = randomKeyspace('deskbot');
const file = tenantsFile();
// Tenants with a bot that answers, one per test so the tests' agents never meet.
const B1 = uid('bot1');
const B4 = uid('bot4');
const B5 = uid('bot5');
const B2 = uid('bot2'); // a bot slower than the tenant's timeout
const B3 = uid('bot3'); // a bot route nobody serves
const MAX_REPLY = 100;
const TIMEOUT_MS = 300;
let broker: BrokerProcess;
const bots: ExampleProcess[] = [];

before(async () => {
  file.write(`version: 1
tenants:
${[B1, B4, B5].map((t) => `  ${t}:\n    reception: { bot: { timeoutMs: 5000, maxReplyChars: ${MAX_REPLY}, name: shopbot } }\n`).join('')}  ${B2}:
    reception: { bot: { timeoutMs: ${TIMEOUT_MS} } }
  ${B3}:
    reception: { bot: { subject: nobody.home } }
`);
  broker = await startBroker({
    nodeId: 'deskbot-a',
    keyspace,
    env: { SB_TENANTS_FILE: file.path },
    readyTimeoutMs: 180_000,
  });
  // The cluster's subjects are prefixed with its name (the broker harness names it after the keyspace).
  bots.push(await startExampleBot(keyspace, [B1, B4, B5].join(',')));
  bots.push(await startExampleBot(keyspace, B2, ['--slow', String(TIMEOUT_MS * 2)]));
});

after(async () => {
  await Promise.all(bots.map((b) => b.stop()));
  await broker?.stop();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

const botMsg = (conv: string) => (f: Frame) => f.type === 'msg' && f.conv === conv && f.role === 'bot';

describe('reception bot', () => {
  test('reception bot - the bot answers as role bot until it hands off; the agent gets its summary', async () => {
    const ag = await client(broker, B1, 'ag', 'agent');
    await request(ag, { type: 'status', status: 'online', capacity: 5 });
    const v = await client(broker, B1, 'v', 'visitor');
    const conv = uid('c');
    await say(v, conv, 'Where is my parcel?');
    const answer = await v.next(botMsg(conv));
    assert.equal(answer.from, 'shopbot');
    assert.match(String(answer.body), /Parcels leave our warehouse/);
    await say(v, conv, 'and returns?');
    assert.match(String((await v.next(botMsg(conv))).body), /return anything within 30 days/);
    // With the bot: not queued, not assigned.
    assert.equal(ag.buffered().filter((f) => f.type === 'assigned').length, 0);
    // The visitor asks the bot for a person: the bot says so and hands off with a summary.
    await say(v, conv, 'I want to talk to a person');
    assert.match(String((await v.next(botMsg(conv))).body), /handing you to a colleague/);
    assert.equal((await ag.next(frameOf('assigned', conv))).agent, 'ag');
    const handoff = await ag.next(frameOf('handoff', conv));
    assert.equal(handoff.by, 'bot');
    assert.equal(handoff.summary, 'v talked to the bot about: shipping, returns, a person.');
    // The agent sees the whole exchange, bot messages included.
    const roles: unknown[] = [];
    for (let seq = 1; seq <= 6; seq++)
      roles.push((await ag.next((f) => f.type === 'msg' && f.conv === conv && f.seq === seq)).role);
    assert.deepEqual(roles, ['visitor', 'bot', 'visitor', 'bot', 'visitor', 'bot']);
    // From now on the queue's agent answers; the bot is asked nothing more.
    const asked = bots[0]!.lines.filter((l) => l['conv'] === conv).length;
    await say(v, conv, 'thanks');
    await ag.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 7);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bots[0]!.lines.filter((l) => l['conv'] === conv).length, asked);
    await Promise.all([ag.close(), v.close()]);
  });

  test('reception bot - the visitor asks for a person with the handoff frame; the bot gives the summary', async () => {
    const ag = await client(broker, B4, 'ag2', 'agent');
    await request(ag, { type: 'status', status: 'online', capacity: 5 });
    const v = await client(broker, B4, 'v2', 'visitor');
    const conv = uid('c');
    await say(v, conv, 'hello');
    await v.next(botMsg(conv));
    const done = await request(v, { type: 'handoff', conv });
    assert.equal(done.op, 'handoff');
    assert.equal(done.route, 'queue');
    assert.equal(done.agent, 'ag2', 'assigned at once to the free agent');
    const h = await ag.next(frameOf('handoff', conv));
    assert.equal(h.by, 'visitor');
    assert.equal(h.summary, 'v2 talked to the bot about: other.');
    // Again: idempotent, it is with an agent now.
    assert.equal((await request(v, { type: 'handoff', conv })).route, 'queue');
    // Another visitor's conversation cannot be handed off by this one.
    const other = await client(broker, B4, 'v3', 'visitor');
    await assert.rejects(
      request(other, { type: 'handoff', conv }),
      (e: { code?: string }) => e.code === 'forbidden',
    );
    await Promise.all([ag.close(), v.close(), other.close()]);
  });

  test('reception bot - a reply of maxReplyChars is posted; one character more falls back to the queue', async () => {
    const ag = await client(broker, B5, 'ag3', 'agent');
    await request(ag, { type: 'status', status: 'online', capacity: 5 });
    const v = await client(broker, B5, 'v4', 'visitor');
    const [ok, tooLong] = [uid('c'), uid('c')];
    await say(v, ok, `long ${MAX_REPLY}`);
    assert.equal(String((await v.next(botMsg(ok))).body).length, MAX_REPLY);
    await say(v, tooLong, `long ${MAX_REPLY + 1}`);
    assert.equal((await v.next(frameOf('assigned', tooLong))).agent, 'ag3');
    const h = await ag.next(frameOf('handoff', tooLong));
    assert.equal(h.by, 'fallback');
    assert.match(String(h.summary), /could not answer/);
    assert.equal(v.buffered().filter(botMsg(tooLong)).length, 0, 'nothing of the refused reply was posted');
    await Promise.all([ag.close(), v.close()]);
  });

  test('reception bot - a bot slower than the timeout, or none at all, falls back to the queue', async () => {
    for (const [tenant, reason] of [
      [B2, 'timeout'],
      [B3, 'unavailable'],
    ] as const) {
      const ag = await client(broker, tenant, 'ag', 'agent');
      await request(ag, { type: 'status', status: 'online', capacity: 5 });
      const v = await client(broker, tenant, 'v', 'visitor');
      const conv = uid('c');
      const t0 = Date.now();
      await say(v, conv, 'hello?');
      assert.equal((await ag.next(frameOf('assigned', conv))).agent, 'ag');
      const h = await ag.next(frameOf('handoff', conv));
      assert.equal(h.by, 'fallback');
      assert.match(String(h.summary), new RegExp(reason));
      if (reason === 'timeout') assert.ok(Date.now() - t0 >= TIMEOUT_MS, 'after the tenant timeout');
      await Promise.all([ag.close(), v.close()]);
    }
  });
});
