/**
 * Business events in and agent actions, on a real nats-server (JetStream) and a real Cassandra, with
 * the example business system as a process. The conversations side is a small in-memory chat (this
 * file is about the integration's own guarantees; test/integration/business.test.ts runs the same
 * paths through real brokers): routing-rule outcomes, de-duplication of a repeated event id, each event
 * handled once by two members sharing the consumer, refusal of undecodable payloads, and audited actions.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { clusterNames } from '../../src/cluster/names.js';
import { connectTransport, type Transport } from '../../src/cluster/transport.js';
import { AgentActions } from '../../src/integration/actions.js';
import type { ChatPort, ConversationRef } from '../../src/integration/chat-port.js';
import {
  BizEventsConsumer,
  type EventDeadLetter,
  type EventOutcome,
  type EventsInOptions,
} from '../../src/integration/events-in.js';
import type { Card } from '../../src/integration/rule-plan.js';
import { RulesRegistry } from '../../src/integration/rules-registry.js';
import { StaticIntegrationSource } from '../../src/integration/settings.js';
import { ensureIntegrationStreams } from '../../src/integration/streams.js';
import {
  type CassandraHistoryStore,
  dropKeyspace,
  openCassandraStore,
} from '../../src/store/cassandra-store.js';
import { utcDay } from '../../src/store/schema.js';
import { type BusinessSystemProcess, startBusinessSystem } from '../harness/business-system.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_NATS_URL } from '../harness/env.js';

const cluster = randomKeyspace('evin');
const names = clusterNames(cluster);
const dir = mkdtempSync(join(tmpdir(), 'sb-evin-'));
const quiet = { info() {}, warn() {}, error() {} };
const opts: EventsInOptions = {
  inFlight: 8,
  ackWaitMs: 5000,
  maxDeliver: 3,
  eventMaxBytes: 4096,
  maxRenderedChars: 500,
  retryBackoffMs: 20,
};

/** Conversations in memory, with the facade's idempotence (same conv id, same (from, cmid)). */
class MemoryChat implements ChatPort {
  readonly convs = new Map<string, ConversationRef & { skill?: string; subject?: string }>();
  readonly messages: Array<{ tenant: string; conv: string; cmid: string; body: string; card?: Card }> = [];
  readonly cmids = new Set<string>();
  postCalls = 0;
  /** The next this many posts fail `busy` (an overloaded conversation). */
  failNext = 0;

  async createConversation(
    tenant: string,
    req: { visitor: string; conv?: string; skill?: string; subject?: string },
  ) {
    const conv = req.conv ?? `c-${this.convs.size + 1}`;
    const key = `${tenant}/${conv}`;
    const existing = this.convs.get(key);
    if (existing) return existing;
    const view = { ...req, tenant, conv, agent: null, status: 'queued' };
    this.convs.set(key, view);
    return view;
  }
  async postMessage(
    tenant: string,
    conv: string,
    req: { from: string; cmid: string; body: string; card?: Card },
  ) {
    this.postCalls++;
    if (!this.convs.has(`${tenant}/${conv}`))
      throw Object.assign(new Error('no such conversation'), { code: 'not_found' });
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('mailbox full'), { code: 'busy', retryAfterMs: 10 });
    }
    const key = `${tenant}/${conv}/${req.from}/${req.cmid}`;
    if (this.cmids.has(key)) return;
    this.cmids.add(key);
    this.messages.push({
      tenant,
      conv,
      cmid: req.cmid,
      body: req.body,
      ...(req.card ? { card: req.card } : {}),
    });
  }
  async conversation(tenant: string, conv: string) {
    return this.convs.get(`${tenant}/${conv}`) ?? null;
  }
  async openConversationOf(tenant: string, visitor: string) {
    return (
      [...this.convs.values()].find(
        (c) => c.tenant === tenant && c.visitor === visitor && c.status !== 'closed',
      ) ?? null
    );
  }
}

const RULES = `version: 1
rules:
  - name: shipped
    match: { type: order.shipped }
    actions:
      - post:
          card: { kind: order, title: "Order {{order.id}} shipped", fields: { carrier: "{{shipment.carrier}}" } }
          ifNoConversation: open
          skill: logistics
  - name: refund
    match: { type: refund.approved }
    actions:
      - post: { text: "Refund {{refund.id}} approved" }
      - notify: { text: "refund {{refund.id}} for {{visitor}}" }
  - name: ticket
    match: { type: "aftersales.>" }
    actions:
      - open: { skill: aftersales, subject: "Ticket {{ticket.id}}", text: "Ticket {{ticket.id}} opened" }
`;

let t: Transport;
let rules: RulesRegistry;
let biz: BusinessSystemProcess | undefined;
let store: CassandraHistoryStore | undefined;
const keyspace = randomKeyspace('sbevin');

before(async () => {
  t = await connectTransport([TEST_NATS_URL], 'events-in-test');
  await ensureIntegrationStreams(t.jetstream(), names, {
    dedupeWindowMs: 60_000,
    streamMaxMsgs: 10_000,
    streamMaxBytes: 0,
    eventMaxBytes: 64 * 1024,
    streamMaxAgeMs: 600_000,
    storage: 'memory',
  });
  const file = join(dir, 'rules.yaml');
  writeFileSync(file, RULES);
  rules = new RulesRegistry(quiet, 100);
  await rules.sync(new Map([['acme', file]]));
});

after(async () => {
  rules?.close();
  await biz?.stop();
  await store?.close();
  await t?.close();
  await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
    () => {},
  );
  rmSync(dir, { recursive: true, force: true });
});

function consumer(chat: ChatPort, outcomes: EventOutcome[], pushes: unknown[] = [], transport = t) {
  return new BizEventsConsumer(
    transport.jetstream(),
    names,
    rules,
    chat,
    (tenant, user, frame) => pushes.push({ tenant, user, frame }),
    opts,
    quiet,
    (o) => outcomes.push(o),
  );
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function eventsFile(name: string, lines: Array<{ type: string; id: string; data: object }>): string {
  const f = join(dir, name);
  writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n'));
  return f;
}

test('events in - rules post a card into the open conversation, open and queue one, notify the agent', async () => {
  const chat = new MemoryChat();
  await chat.createConversation('acme', { visitor: 'alice', conv: 'alice-1' });
  const bobConv = await chat.createConversation('acme', { visitor: 'carol', conv: 'carol-1' });
  chat.convs.set('acme/carol-1', { ...bobConv, agent: 'bob', status: 'assigned' });
  const outcomes: EventOutcome[] = [];
  const pushes: Array<{ user: string; frame: { type: string; text: string } }> = [];
  const c = consumer(chat, outcomes, pushes);
  await c.start();
  try {
    const file = eventsFile('rules.jsonl', [
      {
        type: 'order.shipped',
        id: 'e-ship-1',
        data: { visitor: 'alice', order: { id: 'A-1' }, shipment: { carrier: 'DHL' } },
      },
      {
        type: 'order.shipped',
        id: 'e-ship-2',
        data: { visitor: 'dave', order: { id: 'D-9' }, shipment: { carrier: 'UPS' } },
      },
      { type: 'refund.approved', id: 'e-ref-1', data: { visitor: 'carol', refund: { id: 'R-7' } } },
      { type: 'aftersales.ticket.opened', id: 'e-tk-1', data: { visitor: 'erin', ticket: { id: 'T-5' } } },
      { type: 'newsletter.sent', id: 'e-nl-1', data: { visitor: 'alice' } },
    ]);
    // The example business system publishes them (msgpack: the broker detects the format).
    biz = await startBusinessSystem(cluster, [
      '--tenant',
      'acme',
      '--kinds',
      'orders',
      '--events',
      file,
      '--msgpack',
    ]);
    await biz.waitFor((l) => l['published'] === 5);
    await until('5 outcomes', () => outcomes.length >= 5);
    const by = new Map(outcomes.map((o) => [o.id, o]));
    assert.deepEqual(by.get('e-ship-1')?.actions, [{ kind: 'post', outcome: 'posted', conv: 'alice-1' }]);
    const card = chat.messages.find((m) => m.conv === 'alice-1');
    assert.deepEqual(card?.card, { kind: 'order', title: 'Order A-1 shipped', fields: { carrier: 'DHL' } });
    // dave had no open conversation: one was opened (queued for logistics) with the card in it.
    const opened = by.get('e-ship-2')?.actions[0];
    assert.equal(opened?.outcome, 'opened');
    const daveConv = chat.convs.get(`acme/${opened?.conv}`);
    assert.equal(daveConv?.visitor, 'dave');
    assert.equal(daveConv?.skill, 'logistics');
    assert.equal(chat.messages.find((m) => m.conv === opened?.conv)?.body, 'Order D-9 shipped');
    // refund: a message in carol's conversation and a notice to bob, her agent, only.
    assert.deepEqual(
      by.get('e-ref-1')?.actions.map((a) => a.outcome),
      ['posted', 'notified'],
    );
    assert.deepEqual(
      pushes.map((p) => [p.user, p.frame.type, p.frame.text]),
      [['bob', 'notice', 'refund R-7 for carol']],
    );
    const ticket = by.get('e-tk-1')?.actions[0];
    assert.equal(ticket?.outcome, 'opened');
    assert.equal(chat.convs.get(`acme/${ticket?.conv}`)?.subject, 'Ticket T-5');
    assert.equal(by.get('e-nl-1')?.rule, null, 'no rule: acknowledged, nothing done');
    assert.equal(c.stats().unrouted, 1);
  } finally {
    await c.stop();
    await biz?.stop();
    biz = undefined;
  }
});

test('events in - a repeated Nats-Msg-Id inside the window is handled once', async () => {
  const chat = new MemoryChat();
  await chat.createConversation('acme', { visitor: 'alice', conv: 'dup-1' });
  const outcomes: EventOutcome[] = [];
  const c = consumer(chat, outcomes);
  await c.start();
  try {
    const ev = {
      type: 'refund.approved',
      id: 'e-dup-1',
      data: { conv: 'dup-1', visitor: 'alice', refund: { id: 'R-1' } },
    };
    const file = eventsFile('dup.jsonl', [ev, ev, ev]);
    biz = await startBusinessSystem(cluster, ['--tenant', 'acme', '--kinds', 'orders', '--events', file]);
    const line = await biz.waitFor((l) => l['published'] === 3);
    assert.equal(line['duplicates'], 2, 'the stream told the publisher it saw the id before');
    await until('the outcome', () => outcomes.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(outcomes.length, 1);
    assert.equal(chat.postCalls, 1);
  } finally {
    await c.stop();
    await biz?.stop();
    biz = undefined;
  }
});

test('events in - two members sharing the consumer handle each event exactly once', async () => {
  const chat = new MemoryChat();
  await chat.createConversation('acme', { visitor: 'alice', conv: 'once-1' });
  const t2 = await connectTransport([TEST_NATS_URL], 'events-in-test-2');
  const a: EventOutcome[] = [];
  const b: EventOutcome[] = [];
  const ca = consumer(chat, a);
  const cb = consumer(chat, b, [], t2);
  await ca.start();
  await cb.start();
  try {
    const n = 60;
    const lines = Array.from({ length: n }, (_, i) => ({
      type: 'refund.approved',
      id: `e-once-${i}`,
      data: { conv: 'once-1', refund: { id: `R-${i}` } },
    }));
    biz = await startBusinessSystem(cluster, [
      '--tenant',
      'acme',
      '--kinds',
      'orders',
      '--events',
      eventsFile('once.jsonl', lines),
    ]);
    await biz.waitFor((l) => l['published'] === n);
    await until('every event', () => a.length + b.length >= n);
    await new Promise((r) => setTimeout(r, 300));
    const ids = [...a, ...b].map((o) => o.id);
    assert.equal(ids.length, n, 'no event handled twice');
    assert.equal(new Set(ids).size, n);
    assert.ok(a.length > 0 && b.length > 0, `both members took a share (${a.length} / ${b.length})`);
    assert.equal(chat.postCalls, n, 'one post per event: nothing was redone');
  } finally {
    await Promise.all([ca.stop(), cb.stop()]);
    await t2.close();
    await biz?.stop();
    biz = undefined;
  }
});

test('events in - events about a customer without a conversation, handled at once by two members, open one', async () => {
  const chat = new MemoryChat();
  const t2 = await connectTransport([TEST_NATS_URL], 'events-in-test-3');
  const a: EventOutcome[] = [];
  const ca = consumer(chat, a);
  const cb = consumer(chat, a, [], t2);
  await ca.start();
  await cb.start();
  try {
    const n = 12;
    const lines = Array.from({ length: n }, (_, i) => ({
      type: 'order.shipped',
      id: `e-zoe-${i}`,
      data: { visitor: 'zoe', order: { id: `Z-${i}` }, shipment: { carrier: 'DHL' } },
    }));
    biz = await startBusinessSystem(cluster, [
      '--tenant',
      'acme',
      '--kinds',
      'orders',
      '--events',
      eventsFile('zoe.jsonl', lines),
    ]);
    await biz.waitFor((l) => l['published'] === n);
    await until('every event', () => a.length >= n);
    const zoe = [...chat.convs.values()].filter((c) => c.visitor === 'zoe');
    assert.equal(zoe.length, 1, 'one conversation, not one per event');
    assert.equal(chat.messages.filter((m) => m.conv === zoe[0]?.conv).length, n);
    // Once it is closed, the next event opens the visitor's next conversation of the day.
    chat.convs.set(`acme/${zoe[0]!.conv}`, { ...zoe[0]!, status: 'closed' });
    await biz.stop();
    biz = await startBusinessSystem(cluster, [
      '--tenant',
      'acme',
      '--kinds',
      'orders',
      '--events',
      eventsFile('zoe2.jsonl', [{ ...lines[0]!, id: 'e-zoe-late' }]),
    ]);
    await until('the late event', () => a.length >= n + 1);
    const next = a.find((o) => o.id === 'e-zoe-late')?.actions[0];
    assert.equal(next?.outcome, 'opened');
    assert.notEqual(next?.conv, zoe[0]?.conv);
  } finally {
    await Promise.all([ca.stop(), cb.stop()]);
    await t2.close();
    await biz?.stop();
    biz = undefined;
  }
});

test('events in - a busy conversation: retried, then the event is redelivered until it passes', async () => {
  const chat = new MemoryChat();
  await chat.createConversation('acme', { visitor: 'alice', conv: 'busy-1' });
  chat.failNext = 4; // the rule's 3 attempts fail, the event goes back; the redelivery's first fails too
  const outcomes: EventOutcome[] = [];
  const c = consumer(chat, outcomes);
  await c.start();
  try {
    await t
      .jetstream()
      .publish(
        names.bizEventSubject('acme', 'refund.approved'),
        new TextEncoder().encode(JSON.stringify({ conv: 'busy-1', refund: { id: 'R-busy' } })),
        'e-busy-1',
      );
    await until('the outcome', () => outcomes.length >= 1);
    assert.deepEqual(outcomes[0]?.actions[0], { kind: 'post', outcome: 'posted', conv: 'busy-1' });
    assert.equal(c.stats().redelivered, 1);
    assert.equal(chat.messages.filter((m) => m.conv === 'busy-1').length, 1);
  } finally {
    await c.stop();
  }
});

test('events in - an action that keeps failing is bounded: retries, redeliveries, then a dead letter', async () => {
  const chat = new MemoryChat();
  await chat.createConversation('acme', { visitor: 'alice', conv: 'dead-1' });
  chat.failNext = 1000; // busy for ever
  const outcomes: EventOutcome[] = [];
  const c = consumer(chat, outcomes);
  await c.start();
  const letters: EventDeadLetter[] = [];
  const dlq = await t.jetstream().consume(
    {
      stream: names.deadLetterStream,
      durable: 'test-events-dlq',
      filterSubject: names.eventDeadLetterSubject('acme'),
      ackWaitMs: 5000,
      maxDeliver: 1,
      maxAckPending: 100,
    },
    { maxInFlight: 10, retryDelayMs: 100 },
    async (m) => {
      letters.push(JSON.parse(new TextDecoder().decode(m.data)) as EventDeadLetter);
      m.ack();
    },
  );
  try {
    const js = t.jetstream();
    const publish = (conv: string, id: string) =>
      js.publish(
        names.bizEventSubject('acme', 'refund.approved'),
        new TextEncoder().encode(JSON.stringify({ conv, refund: { id } })),
        `e-${id}`,
      );
    await publish('dead-1', 'busy');
    await publish('no-such-conv', 'missing'); // not_found: final at once
    await until('two dead letters', () => letters.length >= 2, 20_000);
    const busy = letters.find((l) => l.eventId === 'e-busy');
    // 3 attempts per delivery (retry 2) x opts.maxDeliver (3) deliveries, then given up.
    assert.equal(busy?.deliveries, opts.maxDeliver);
    assert.equal(chat.postCalls - 1, 3 * opts.maxDeliver, 'every try counted (plus the missing one)');
    assert.match(busy?.reason ?? '', /^busy:/);
    assert.equal(busy?.rule, 'refund');
    assert.deepEqual(busy?.event, { conv: 'dead-1', refund: { id: 'busy' } });
    const missing = letters.find((l) => l.eventId === 'e-missing');
    assert.equal(missing?.deliveries, 1, 'a final error is not redelivered');
    assert.match(missing?.reason ?? '', /^not_found:/);
    assert.equal(c.stats().redelivered, opts.maxDeliver - 1);
  } finally {
    await dlq.stop();
    await c.stop();
  }
});

test('events in - an undecodable or oversized payload is refused and not redelivered', async () => {
  const chat = new MemoryChat();
  const outcomes: EventOutcome[] = [];
  const c = consumer(chat, outcomes);
  await c.start();
  try {
    const js = t.jetstream();
    await js.publish(
      names.bizEventSubject('acme', 'order.shipped'),
      new TextEncoder().encode('not json'),
      'bad-1',
    );
    await js.publish(
      names.bizEventSubject('acme', 'order.shipped'),
      new TextEncoder().encode(`{"x":"${'a'.repeat(5000)}"}`),
      'big-1',
    );
    await until('two refusals', () => outcomes.filter((o) => o.refused).length >= 2);
    assert.match(outcomes.find((o) => o.id === 'bad-1')?.refused ?? '', /JSON object or a msgpack map/);
    assert.match(outcomes.find((o) => o.id === 'big-1')?.refused ?? '', /more than 4096/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(outcomes.length, 2, 'terminated, not redelivered');
  } finally {
    await c.stop();
  }
});

test('agent actions - authorised, answered by the business system, posted and audited in Cassandra', async () => {
  store = await openCassandraStore({
    contactPoints: [TEST_CASSANDRA],
    localDataCenter: 'datacenter1',
    keyspace,
  });
  const chat = new MemoryChat();
  const conv = await chat.createConversation('acme', { visitor: 'alice', conv: 'act-1' });
  chat.convs.set('acme/act-1', { ...conv, agent: 'bob', status: 'assigned' });
  const source = new StaticIntegrationSource();
  source.set('acme', {
    actions: [
      { name: 'mark-abnormal', subject: 'action.mark-abnormal', roles: ['agent'], timeoutMs: 2000 },
      { name: 'issue-coupon', subject: 'action.issue-coupon', roles: ['supervisor'], timeoutMs: 2000 },
      { name: 'nobody-home', subject: 'erp.nobody-home', roles: ['agent'], timeoutMs: 500 },
    ],
  });
  biz = await startBusinessSystem(cluster, ['--tenant', 'acme', '--kinds', 'orders']);
  const actions = new AgentActions(t, names, source, chat, store);
  const bob = { tenant: 'acme', user: 'bob', role: 'agent' };
  try {
    const r = await actions.invoke(bob, { conv: 'act-1', name: 'mark-abnormal', args: { order: 'A-1001' } });
    assert.equal(r.ok, true);
    assert.equal(r.message, 'order A-1001 marked abnormal');
    assert.deepEqual(r.data, { order: 'A-1001', flag: 'abnormal' });
    assert.equal(chat.messages.at(-1)?.body, 'mark-abnormal by bob: order A-1001 marked abnormal');
    await biz.waitFor((l) => l['action'] === 'mark-abnormal' && l['agent'] === 'bob');
    const failed = await actions.invoke(bob, { conv: 'act-1', name: 'mark-abnormal', args: {} });
    assert.equal(failed.ok, false);
    // Refusals: a role bob lacks, another agent's conversation, an unknown action, no responder.
    await assert.rejects(actions.invoke(bob, { conv: 'act-1', name: 'issue-coupon', args: {} }), {
      code: 'forbidden',
    });
    await assert.rejects(
      actions.invoke({ ...bob, user: 'mallory' }, { conv: 'act-1', name: 'mark-abnormal', args: {} }),
      { code: 'forbidden' },
    );
    await assert.rejects(actions.invoke(bob, { conv: 'act-1', name: 'format-disk', args: {} }), {
      code: 'not_found',
    });
    await assert.rejects(actions.invoke(bob, { conv: 'act-1', name: 'nobody-home', args: {} }), {
      code: 'unavailable',
    });
    const coupon = await actions.invoke(
      { ...bob, roles: ['supervisor'] },
      { conv: 'act-1', name: 'issue-coupon', args: {} },
    );
    assert.match(coupon.message, /^coupon SORRY-/);
    const audit = await store.actionAudits('acme', utcDay(Date.now()), 50);
    assert.deepEqual(audit.map((a) => `${a.agent}:${a.action}:${a.outcome}`).sort(), [
      'bob:format-disk:refused',
      'bob:issue-coupon:ok',
      'bob:issue-coupon:refused',
      'bob:mark-abnormal:failed',
      'bob:mark-abnormal:ok',
      'bob:nobody-home:error',
      'mallory:mark-abnormal:refused',
    ]);
    const ok = audit.find((a) => a.outcome === 'ok' && a.action === 'mark-abnormal');
    assert.equal(ok?.args, '{"order":"A-1001"}');
    assert.equal(ok?.conv, 'act-1');
    assert.equal(ok?.detail, 'order A-1001 marked abnormal');
  } finally {
    await biz.stop();
    biz = undefined;
  }
});
