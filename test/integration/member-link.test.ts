/**
 * The member link on a real nats-server: requests for another member's shards, coalesced per member
 * and turn, and their replies; the holder refuses what it does not hold; the bounds.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { SwitchboardError } from '../../src/protocol/errors.js';
import { MemberLink } from '../../src/routing/member-link.js';
import { randomKeyspace, TEST_NATS_URL } from '../harness/env.js';

const names = clusterNames(randomKeyspace('link'));
let ta: Transport;
let tb: Transport;
const links: MemberLink[] = [];

before(async () => {
  ta = await connectTransport([TEST_NATS_URL], 'link-a');
  tb = await connectTransport([TEST_NATS_URL], 'link-b');
});

after(async () => {
  for (const l of links) l.stop();
  await Promise.all([ta?.close(), tb?.close()]);
});

function link(t: Transport, self: string, held: (s: number) => boolean, opts: { maxPending?: number } = {}) {
  const l = new MemberLink({
    transport: t,
    self,
    subjectOf: names.memberSubject,
    server: {
      holds: held,
      ask: async (shard, tenant, id, msg) => {
        if ((msg as { fail?: boolean }).fail) throw new SwitchboardError('forbidden', 'no');
        return { shard, tenant, id, echo: msg };
      },
    },
    ...opts,
  });
  l.start();
  links.push(l);
  return l;
}

test('member link - 600 requests in one turn travel in a few batches and each gets its own reply', async () => {
  const a = link(ta, 'a', () => false);
  link(tb, 'b', () => true);
  await Promise.all([ta.flush(), tb.flush()]);
  const replies = await Promise.all(
    Array.from({ length: 600 }, (_, i) => a.ask('b', i % 1024, 't', `c${i}`, { n: i }, 5000)),
  );
  for (const [i, r] of replies.entries()) {
    assert.deepEqual(r, { shard: i % 1024, tenant: 't', id: `c${i}`, echo: { n: i } });
  }
  const s = a.stats();
  assert.equal(s.requests, 600);
  assert.ok(s.requestBatches <= 3, `600 requests in ${s.requestBatches} NATS messages (at most 256 each)`);
});

test('member link - the holder refuses a shard it does not hold; an actor refusal comes back as it is', async () => {
  const a = link(ta, 'a2', () => false);
  link(tb, 'b2', (s) => s !== 7);
  await Promise.all([ta.flush(), tb.flush()]);
  await assert.rejects(
    a.ask('b2', 7, 't', 'c', {}, 5000),
    (e) => e instanceof SwitchboardError && e.code === 'unavailable',
  );
  await assert.rejects(
    a.ask('b2', 8, 't', 'c', { fail: true }, 5000),
    (e) => e instanceof SwitchboardError && e.code === 'forbidden',
  );
});

test('member link - bounded: past maxPending is busy at once; nobody answering is a timeout', async () => {
  const a = link(ta, 'a3', () => false, { maxPending: 2 });
  const waiting = [a.ask('nobody', 1, 't', 'c', {}, 300), a.ask('nobody', 1, 't', 'c', {}, 300)];
  await assert.rejects(
    a.ask('nobody', 1, 't', 'c', {}, 300),
    (e) => e instanceof SwitchboardError && e.code === 'busy',
  );
  for (const w of waiting)
    await assert.rejects(w, (e) => e instanceof SwitchboardError && e.code === 'timeout');
});
