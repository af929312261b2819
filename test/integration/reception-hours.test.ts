/**
 * Business hours (issue #17 item 6) over real sockets: outside them a visitor's conversation is not
 * queued; the visitor gets the automatic message (a stored `system` message) and the `desk_closed`
 * frame with the leave-a-message form; left messages are stored (size and count bounds at their
 * limits), listed over HTTP, and queued as their conversations when the desk opens — here by a hot
 * reload of the tenants file that removes today's holiday, so no clock has to be faked.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { agentToken, client, frameOf, request, say, tenantsFile, uid } from '../harness/reception.js';

const keyspace = randomKeyspace('deskhours');
const file = tenantsFile();
const H = uid('hours');
const MAX_CHARS = 50;
const MAX_STORED = 2;
const DAY_MS = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const CLOSED_MESSAGE = 'We are closed today. Leave a message!';
let broker: BrokerProcess;

/** Open all week in UTC; today and tomorrow (UTC) holidays while `closed`, so the test may cross midnight. */
function config(closed: boolean): string {
  const now = Date.now();
  const holidays = closed ? `["${day(now)}", "${day(now + DAY_MS)}"]` : '[]';
  return `version: 1
tenants:
  ${H}:
    reception:
      hours:
        timeZone: UTC
        weekly: [{ days: [mon, tue, wed, thu, fri, sat, sun], open: "00:00", close: "24:00" }]
        holidays: ${holidays}
        closedMessage: ${JSON.stringify(CLOSED_MESSAGE)}
        leaveMessage: { maxChars: ${MAX_CHARS}, maxStored: ${MAX_STORED} }
`;
}

before(async () => {
  file.write(config(true));
  broker = await startBroker({
    nodeId: 'deskhours-a',
    keyspace,
    env: { SB_TENANTS_FILE: file.path, SB_RECEPTION_TICK_MS: '200' },
    readyTimeoutMs: 180_000,
  });
});

after(async () => {
  await broker?.stop();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
});

async function leftMessages(
  token: string,
): Promise<{ status: number; body: { items?: Array<Record<string, unknown>> } }> {
  const res = await fetch(`${broker.httpBase}/api/v1/left-messages`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: (await res.json()) as { items?: Array<Record<string, unknown>> } };
}

describe('reception hours', () => {
  test('reception hours - closed: the automatic message and the form, left messages bounded, queued at opening', async () => {
    const ag = await client(broker, H, 'ag', 'agent');
    await request(ag, { type: 'status', status: 'online', capacity: 5 });
    const v1 = await client(broker, H, 'v1', 'visitor');
    const [c1, c2, c3] = [uid('c1'), uid('c2'), uid('c3')];

    // A message while closed is stored and acked, but the conversation is not queued.
    await say(v1, c1, 'is anybody there?');
    const auto = await v1.next((f) => f.type === 'msg' && f.conv === c1 && f.role === 'system');
    assert.equal(auto.body, CLOSED_MESSAGE);
    assert.equal(auto.from, 'desk');
    const form = await v1.next(frameOf('desk_closed', c1));
    assert.equal(form.message, CLOSED_MESSAGE);
    assert.deepEqual(form.leave, { maxChars: MAX_CHARS });
    // Holidays today and tomorrow: it opens at 00:00 UTC the day after.
    const nextOpen = Number(form.nextOpen);
    assert.equal(new Date(nextOpen).toISOString().slice(11), '00:00:00.000Z');
    assert.ok(nextOpen > Date.now() + DAY_MS - 60_000 && nextOpen <= Date.now() + 2 * DAY_MS);
    // A second message the same day: the form again, the automatic message not stored twice.
    await say(v1, c1, 'hello??');
    await v1.next(frameOf('desk_closed', c1));
    assert.equal(v1.buffered().filter((f) => f.type === 'msg' && f.role === 'system').length, 0);

    // The form: at most MAX_CHARS characters.
    await assert.rejects(
      request(v1, { type: 'leave', conv: c1, body: 'x'.repeat(MAX_CHARS + 1) }),
      (e: { code?: string }) => e.code === 'payload_too_large',
    );
    const left = await request(v1, {
      type: 'leave',
      conv: c1,
      body: `call me ${'x'.repeat(MAX_CHARS - 8)}`,
      name: 'Ann',
      email: 'ann@example.com',
    });
    assert.equal(left.op, 'leave');
    assert.equal(left.conv, c1);
    // A visitor with no conversation yet leaves one too (the conversation is created).
    const v2 = await client(broker, H, 'v2', 'visitor');
    await request(v2, { type: 'leave', conv: c2, body: 'please call back' });
    // MAX_STORED left messages per tenant: the next is refused busy.
    const v3 = await client(broker, H, 'v3', 'visitor');
    await assert.rejects(
      request(v3, { type: 'leave', conv: c3, body: 'me too' }),
      (e: { code?: string }) => e.code === 'busy',
    );
    // Agents cannot use the visitor's form.
    await assert.rejects(
      request(ag, { type: 'leave', conv: c1, body: 'x' }),
      (e: { code?: string }) => e.code === 'forbidden',
    );

    // Listed over HTTP for agents (oldest first); not for visitors.
    const listed = await leftMessages(await agentToken(H, 'ag'));
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items?.map((m) => [m['conv'], m['name'], m['email']]),
      [
        [c1, 'Ann', 'ann@example.com'],
        [c2, null, null],
      ],
    );
    const auth = createAuthenticator(TEST_JWT_SECRET);
    assert.equal(
      (await leftMessages(await auth.sign({ tenant: H, sub: 'v1', role: 'visitor' }, 60))).status,
      403,
    );
    // Nothing was queued or assigned while closed.
    assert.equal(ag.buffered().filter((f) => f.type === 'assigned').length, 0);

    // The desk opens (the holiday is removed): both left conversations go to the agent, oldest first.
    file.write(config(false));
    assert.equal((await ag.next(frameOf('assigned', c1), 10_000)).agent, 'ag');
    await ag.next(frameOf('assigned', c2), 10_000);
    // The agent reads the left message in the conversation, as the visitor's own message.
    const msgs = [];
    for (let i = 0; i < 5; i++) msgs.push(await ag.next((f) => f.type === 'msg' && f.conv === c1));
    assert.ok(msgs.some((m) => m.role === 'visitor' && String(m.body).startsWith('call me')));
    assert.ok(
      msgs.some((m) => m.role === 'system' && String(m.body).startsWith('Contact left with the message')),
    );
    assert.deepEqual((await leftMessages(await agentToken(H, 'ag'))).body.items, []);
    // Open: a new conversation is queued and assigned as usual.
    const c4 = uid('c4');
    await say(v3, c4, 'now open?');
    await ag.next(frameOf('assigned', c4));
    await Promise.all([ag, v1, v2, v3].map((c) => c.close()));
  });
});
