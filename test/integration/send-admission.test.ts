/**
 * The door of a saturated worker process (gateway.maxSendsInflight, src/gateway/server.ts): a socket
 * `send` past the process's bound of sends in progress is answered `busy` with `retryAfterMs` at once,
 * before it is validated or screened; the node keeps serving, and a refused send retried with its cmid
 * is stored exactly once, at the seq its ack names.
 */
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { SENDS_BUSY_RETRY_AFTER_MS } from '../../src/gateway/server.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, SeqTracker, syncInto } from '../harness/ws-client.js';

const LIMIT = 2;
const SENDS = 12;
const keyspace = randomKeyspace('door');
let node: BrokerProcess;

before(async () => {
  node = await startBroker({
    nodeId: `${keyspace}-a`,
    keyspace,
    env: { SB_SENDS_MAX_INFLIGHT: String(LIMIT) },
  });
});

after(() => node?.stop());

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${node.httpBase}/metrics`, { headers: ADMIN_HEADERS })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  assert.ok(line, `${name} is in /metrics`);
  return Number(line.split(' ').at(-1));
}

test('send admission - sends past the process bound are answered busy at once; retried, each is stored once', async () => {
  const token = await createAuthenticator(TEST_JWT_SECRET).sign(
    { tenant: 'door', sub: 'v1', role: 'visitor' },
    600,
  );
  const c = await connectClient(`${node.wsBase}/ws/visitor`, token, 'switchboard.v1.json');
  const cmids = Array.from({ length: SENDS }, (_, i) => `m${i}`);
  // One burst: the first LIMIT sends wait for their writes while the rest reach a full door.
  for (const cmid of cmids) c.send({ type: 'send', conv: 'c1', cmid, body: `hello ${cmid}` });
  const answers = new Map<string, Frame>();
  while (answers.size < SENDS) {
    const f = await c.next((x) => x.type === 'ack' || x.type === 'error');
    const ref = String(f.type === 'ack' ? f['cmid'] : f['ref']);
    assert.ok(cmids.includes(ref), `an answer names a cmid of the burst: ${JSON.stringify(f)}`);
    assert.ok(!answers.has(ref), `one answer per send: ${ref}`);
    answers.set(ref, f);
  }
  const refused = cmids.filter((m) => answers.get(m)!.type === 'error');
  const acked = cmids.filter((m) => answers.get(m)!.type === 'ack');
  assert.ok(refused.length > 0, 'a burst past the bound meets a full door');
  assert.ok(acked.length >= 1, 'the sends admitted first are stored');
  for (const m of refused) {
    const f = answers.get(m)!;
    assert.equal(f['code'], 'busy', JSON.stringify(f));
    assert.equal(f['retryAfterMs'], SENDS_BUSY_RETRY_AFTER_MS);
    assert.match(
      String(f['message']),
      new RegExp(`sends in flight on this process is full \\(capacity ${LIMIT}\\)`),
    );
  }
  assert.equal(await metric('switchboard_sends_max_in_flight'), LIMIT);
  assert.ok((await metric('switchboard_sends_refused_busy_total')) >= refused.length);

  // The client does what docs/PROTOCOL.md asks: the same cmid again. One at a time, so all pass.
  for (const m of refused) {
    c.send({ type: 'send', conv: 'c1', cmid: m, body: `hello ${m}` });
    const f = await c.next(
      (x) => (x.type === 'ack' && x['cmid'] === m) || (x.type === 'error' && x['ref'] === m),
    );
    assert.equal(f.type, 'ack', JSON.stringify(f));
    answers.set(m, f);
  }
  // An admitted cmid sent again gets its original ack: nothing is stored twice across the door.
  const first = acked[0]!;
  c.send({ type: 'send', conv: 'c1', cmid: first, body: `hello ${first}` });
  const again = await c.next((x) => x.type === 'ack' && x['cmid'] === first);
  assert.equal(again['seq'], answers.get(first)!['seq']);

  // What is stored: every cmid once, gap-free seqs 1..SENDS, each at the seq its ack named.
  const tracker = new SeqTracker();
  const stored = new Map<number, string>();
  const offer = tracker.offer.bind(tracker);
  tracker.offer = (m: Frame) => {
    stored.set(Number(m['seq']), String(m['cmid']));
    return offer(m);
  };
  await syncInto(c, 'c1', tracker);
  assert.deepEqual(
    tracker.applied,
    cmids.map((_, i) => i + 1),
  );
  assert.deepEqual([...stored.values()].sort(), [...cmids].sort(), 'every cmid stored exactly once');
  for (const m of cmids)
    assert.equal(stored.get(Number(answers.get(m)!['seq'])), m, `${m} is at its acked seq`);
  assert.equal(await metric('switchboard_sends_in_flight'), 0);
  await c.close();
});
