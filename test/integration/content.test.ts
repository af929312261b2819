/**
 * Sensitive words and PII end to end, on a real node (NATS + Cassandra + the worker pool): a tenant's
 * policy from the tenants file and a word file (mask, block with audit, review flagged to the agent),
 * Chinese and Latin words with full-width, case and separator evasions, hot reload of the word file,
 * PII masked for agents (delivery, sync, HTTP history) but not for the visitor, and audited reveal.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import { utcDay } from '../../src/store/schema.js';
import { type InProcessNode, startInProcessNode } from '../harness/broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, type TestClient } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const keyspace = randomKeyspace('content');
const TENANT = 'shop';
let dir = '';
let wordsFile = '';
let n: InProcessNode;
let store: CassandraHistoryStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-content-'));
  wordsFile = join(dir, 'blocked.txt');
  await writeFile(wordsFile, '# blocked words, one per line\nscam\n骗子\n');
  await writeFile(
    join(dir, 'tenants.yaml'),
    [
      'version: 1',
      'tenants:',
      `  ${TENANT}:`,
      '    contentPolicy:',
      '      rules:',
      '        - action: mask',
      '          words: [idiot, 傻瓜]',
      '        - action: block',
      '          wordsFile: ./blocked.txt',
      '        - action: review',
      '          words: [refund, 投诉]',
      '',
    ].join('\n'),
  );
  n = await startInProcessNode({ nodeId: 'content-a', keyspace, tenantsFile: join(dir, 'tenants.yaml') });
  store = await openCassandraStore({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: 'datacenter1',
    keyspace,
  });
});

after(async () => {
  await n?.stop();
  await store?.close();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
  await rm(dir, { recursive: true, force: true });
});

async function client(user: string, role: TokenRole, perms?: string[]): Promise<TestClient> {
  const token = await auth.sign({ tenant: TENANT, sub: user, role, ...(perms ? { perms } : {}) }, 600);
  return connectClient(`${n.wsBase}/ws/${role}`, token, 'switchboard.v1.json');
}

let cmids = 0;
/** Sends and resolves with the ack or the error frame answering it. */
async function say(c: TestClient, conv: string, body: string): Promise<Frame> {
  const cmid = `m${++cmids}`;
  c.send({ type: 'send', conv, cmid, body });
  return c.next((f) => (f.type === 'ack' && f.cmid === cmid) || (f.type === 'error' && f.ref === cmid));
}

test('content - mask, block (audited) and review; Chinese, full-width, case and separator evasions', async () => {
  const visitor = await client('v-policy', 'visitor');
  const conv = 'c-policy';
  const cases: [string, string][] = [
    ['you IDIOT', 'you *****'],
    ['you ｉｄｉｏｔ!', 'you *****!'],
    ['i.d.i.o.t', '*********'],
    ['你这个傻 瓜', '你这个***'],
  ];
  for (const [sent, stored] of cases) {
    const ack = await say(visitor, conv, sent);
    assert.equal(ack.type, 'ack', sent);
    const { items } = await store.after(TENANT, conv, (ack.seq as number) - 1, 1);
    assert.equal(items[0]?.body, stored, sent);
  }
  for (const blocked of ['this is a SCAM', 's c a m!', 'ｓｃａｍ', '你是骗-子']) {
    const answer = await say(visitor, conv, blocked);
    assert.equal(answer.type, 'error', blocked);
    assert.equal(answer.code, 'blocked');
  }
  const audit = await store.blocks(TENANT, utcDay(Date.now()), 50);
  assert.deepEqual(
    audit.filter((b) => b.conv === conv).map((b) => [b.body, b.words]),
    [
      ['你是骗-子', ['骗子']],
      ['ｓｃａｍ', ['scam']],
      ['s c a m!', ['scam']],
      ['this is a SCAM', ['scam']],
    ],
  );
  // Nothing blocked was stored: seqs 1..4 are the masked ones.
  assert.equal((await store.after(TENANT, conv, 0, 50)).items.length, 4);

  const review = await say(visitor, conv, 'I want a Refund now');
  assert.equal(review.type, 'ack');
  assert.equal((await store.message(TENANT, conv, review.seq as number))?.review, true);
  await visitor.close();
});

test('content - a word file change is picked up without a restart', async () => {
  const visitor = await client('v-reload', 'visitor');
  assert.equal((await say(visitor, 'c-reload', 'totally legit deal')).type, 'ack');
  await writeFile(wordsFile, 'scam\n骗子\nlegit deal\n');
  let answer: Frame | undefined;
  for (let i = 0; i < 40 && answer?.code !== 'blocked'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    answer = await say(visitor, 'c-reload', 'a LEGIT-deal');
  }
  assert.equal(answer?.code, 'blocked');
  await visitor.close();
});

test('content - agents see PII masked (delivery, sync, history); the visitor does not; reveal is audited', async () => {
  const agent = await client('ag-pii', 'agent');
  agent.send({ type: 'status', status: 'online', capacity: 5, ref: 's1' });
  await agent.next((f) => f.type === 'done' && f.op === 'status');
  const visitor = await client('v-pii', 'visitor');
  const conv = 'c-pii';
  const text = 'call me at 138 1234 5678 or mail li.lei@example.com about my refund';
  const ack = await say(visitor, conv, text);
  assert.equal(ack.type, 'ack');

  // The visitor's own copy is as written; the agent's is masked and flagged for review.
  const mine = await visitor.next((f) => f.type === 'msg' && f.seq === ack.seq);
  assert.equal(mine.body, text);
  assert.equal(mine.review, undefined);
  const seen = await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === ack.seq);
  assert.notEqual(seen.body, text);
  assert.ok(!String(seen.body).includes('1234 5678') && !String(seen.body).includes('li.lei@'));
  assert.ok(String(seen.body).includes('refund'));
  assert.equal(seen.review, true);

  agent.send({ type: 'sync', conv, since: 0, limit: 10 });
  const synced = await agent.next((f) => f.type === 'messages' && f.conv === conv);
  assert.equal((synced.items as Frame[])[0]?.body, seen.body);
  visitor.send({ type: 'sync', conv, since: 0, limit: 10 });
  const own = await visitor.next((f) => f.type === 'messages' && f.conv === conv);
  assert.equal((own.items as Frame[])[0]?.body, text);

  const agentToken = await auth.sign({ tenant: TENANT, sub: 'ag-pii', role: 'agent' }, 600);
  const res = await fetch(`${n.httpBase}/api/v1/conversations/${conv}/messages`, {
    headers: { authorization: `Bearer ${agentToken}` },
  });
  assert.equal(res.status, 200);
  const page = (await res.json()) as { items: Frame[] };
  assert.equal(page.items[0]?.body, seen.body);

  // Nothing to mask: the agent gets the body as written, with the review flag only when flagged (the
  // node sends agents the visitor's encoded frame then, so the flag must not be lost on the way).
  for (const [said, review] of [
    ['where is my Refund', true],
    ['thanks, that helps', undefined],
  ] as const) {
    const plain = await say(visitor, conv, said);
    assert.equal(plain.type, 'ack', said);
    const got = await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === plain.seq);
    assert.equal(got.body, said);
    assert.equal(got.review, review, said);
    const echo = await visitor.next((f) => f.type === 'msg' && f.seq === plain.seq);
    assert.equal(echo.review, undefined, said);
  }

  // Without the permission: forbidden. With it: the value, and an audit row.
  agent.send({ type: 'reveal', conv, seq: ack.seq, index: 0, ref: 'r1' });
  const refused = await agent.next((f) => f.type === 'error' && f.ref === 'r1');
  assert.equal(refused.code, 'forbidden');
  const revealer = await client('ag-pii', 'agent', ['pii.reveal']);
  revealer.send({ type: 'reveal', conv, seq: ack.seq, index: 1, ref: 'r2' });
  const revealed = await revealer.next((f) => f.ref === 'r2');
  assert.deepEqual(
    [revealed.type, revealed.kind, revealed.value],
    ['revealed', 'email', 'li.lei@example.com'],
  );
  revealer.send({ type: 'reveal', conv, seq: ack.seq, index: 7, ref: 'r3' });
  assert.equal((await revealer.next((f) => f.ref === 'r3')).code, 'not_found');
  const reveals = (await store.reveals(TENANT, utcDay(Date.now()), 10)).filter((r) => r.conv === conv);
  assert.deepEqual(
    reveals.map((r) => [r.agent, r.seq, r.index, r.kind]),
    [['ag-pii', ack.seq, 1, 'email']],
  );
  // A visitor cannot send reveal at all.
  visitor.send({ type: 'reveal', conv, seq: ack.seq, index: 0, ref: 'r4' });
  assert.equal((await visitor.next((f) => f.ref === 'r4')).code, 'forbidden');
  await Promise.all([agent.close(), visitor.close(), revealer.close()]);
});
