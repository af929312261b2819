import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Ack,
  conversationBehaviour as behaviour,
  type ConversationContext,
  type ConversationMessage,
  type ConversationState,
  initialState,
  type SendMessage,
} from '../../actors/conversation.js';
import type { OutEvent } from '../../src/integration/events.js';
import { SwitchboardError } from '../../src/protocol/errors.js';
import type { ConversationMeta } from '../../src/store/chat-store.js';
import type { ConversationRecord, MessageRow } from '../../src/store/types.js';

/** Send / post replies are acks; the tests read them as such. */
const conversationBehaviour = (s: ConversationState, m: ConversationMessage, c: ConversationContext) =>
  behaviour(s, m, c) as Promise<Ack>;

import { SimulatedClock } from '../fixtures/simulated-clock.js';

const EMPTY = { record: null, lastSeq: 0, recent: [] };

/**
 * An in-memory context that records every effect. `failNextAppend` makes the next append reject;
 * `loseOwnershipDuringAppend` makes the fence fail from the next append on.
 */
class RecordingContext implements ConversationContext {
  readonly clock = new SimulatedClock();
  readonly appended: MessageRow[] = [];
  readonly saved: ConversationRecord[] = [];
  readonly saveTimes: number[] = [];
  readonly delivered: Array<{ row: MessageRow; recipients: readonly string[] }> = [];
  readonly notified: Array<{ users: readonly string[]; frame: Record<string, unknown> }> = [];
  readonly events: OutEvent[] = [];
  readonly metas: ConversationMeta[] = [];
  readonly opens: Array<[string, string, boolean]> = [];
  failNextAppend = false;
  loseOwnershipDuringAppend = false;
  owner = true;
  private ids = 0;

  readonly store = {
    append: async (row: MessageRow): Promise<void> => {
      if (this.failNextAppend) {
        this.failNextAppend = false;
        throw new Error('write timeout');
      }
      if (this.loseOwnershipDuringAppend) this.owner = false;
      this.appended.push(row);
    },
    saveConversation: async (record: ConversationRecord, writeTimeMs: number): Promise<void> => {
      this.saved.push(record);
      this.saveTimes.push(writeTimeMs);
    },
  };

  readonly chat = {
    saveMeta: async (_t: string, _c: string, meta: ConversationMeta): Promise<void> => {
      this.metas.push(meta);
    },
    saveReceipt: async (): Promise<void> => {},
    addOpen: async (_t: string, user: string, open: { conv: string }): Promise<void> => {
      this.opens.push([user, open.conv, true]);
    },
    removeOpen: async (_t: string, user: string, conv: string): Promise<void> => {
      this.opens.push([user, conv, false]);
    },
  };

  notify(_tenant: string, users: readonly string[], frame: Record<string, unknown>): void {
    this.notified.push({ users, frame });
  }

  emit(event: OutEvent): void {
    this.events.push(event);
  }

  fence(): number {
    if (!this.owner) throw new SwitchboardError('unavailable', 'lease lost');
    return this.clock.now();
  }

  newId(): string {
    this.ids++;
    return `id-${this.ids}`;
  }

  deliver(row: MessageRow, recipients: readonly string[]): void {
    this.delivered.push({ row, recipients });
  }

  /** The stored rows, newest write per seq, plus `stored` (rows an earlier owner wrote). */
  readonly stored = new Map<number, MessageRow>();
  readMessage = async (_t: string, _c: string, seq: number): Promise<MessageRow | null> =>
    this.appended.findLast((r) => r.seq === seq) ?? this.stored.get(seq) ?? null;

  /** As the owner's history cache: the rows this test's actor appended (newest write per seq). */
  recentRows = (_t: string, _c: string, after: number, limit: number): MessageRow[] => {
    const bySeq = new Map(this.appended.map((r) => [r.seq, r] as const));
    return [...bySeq.values()].filter((r) => r.seq > after).slice(-limit);
  };
}

const visitor = (cmid: string, sender = 'v1', body = 'hello'): SendMessage => ({
  type: 'send',
  sender,
  role: 'visitor',
  cmid,
  body,
});
const agent = (cmid: string, sender = 'a1', body = 'hi there'): SendMessage => ({
  type: 'send',
  sender,
  role: 'agent',
  cmid,
  body,
});

function fresh(recentLimit = 16): { state: ConversationState; ctx: RecordingContext } {
  return { state: initialState('acme', 'c1', EMPTY, recentLimit), ctx: new RecordingContext() };
}

test('conversation actor - the first visitor send creates the record and gets seq 1', async () => {
  const { state, ctx } = fresh();
  const ack = await conversationBehaviour(state, visitor('m1'), ctx);
  assert.deepEqual(ack, {
    cmid: 'm1',
    conv: 'c1',
    seq: 1,
    id: 'id-2',
    ts: ctx.clock.now(),
    created: true,
    queued: true,
  });
  assert.equal(ctx.metas[0]?.status, 'queued');
  assert.deepEqual(ctx.opens, [['v1', 'c1', true]]);
  assert.deepEqual(
    ctx.events.map((e) => e.type),
    ['created', 'message'],
  );
  assert.deepEqual(ctx.saved, [
    { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: null, createdAt: ctx.clock.now() },
  ]);
  assert.equal(ctx.appended.length, 1);
  assert.deepEqual(ctx.appended[0], {
    tenant: 'acme',
    conv: 'c1',
    seq: 1,
    id: 'id-2',
    sender: 'v1',
    senderRole: 'visitor',
    cmid: 'm1',
    body: 'hello',
    ts: ctx.clock.now(),
  });
});

test('conversation actor - seq increases by one per message and ts follows the clock', async () => {
  const { state, ctx } = fresh();
  const acks = [];
  for (let i = 1; i <= 3; i++) {
    acks.push(await conversationBehaviour(state, visitor(`m${i}`), ctx));
    ctx.clock.advance(1000);
  }
  assert.deepEqual(
    acks.map((a) => a.seq),
    [1, 2, 3],
  );
  assert.equal((acks[2]?.ts ?? 0) - (acks[0]?.ts ?? 0), 2000);
  assert.equal(ctx.saved.length, 1, 'the record is saved once');
});

const assignTo = (a: string, from: string | null = null): ConversationMessage => ({
  type: 'assign',
  agent: a,
  from,
  by: { user: 'queue', role: 'system' },
});

test('conversation actor - an agent cannot claim an unassigned conversation by sending', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  await assert.rejects(conversationBehaviour(state, agent('a-m1'), ctx), { code: 'forbidden' });
  assert.equal(ctx.appended.length, 1);
});

test('conversation actor - assign gives it to the agent, who may then send; a stale assign is a conflict', async () => {
  const ctx = new RecordingContext();
  const state = initialState('acme', 'c1', EMPTY, 16, null, new Map(), 8);
  await conversationBehaviour(state, visitor('m1'), ctx);
  await behaviour(state, assignTo('a1'), ctx);
  assert.equal(ctx.saved.at(-1)?.agent, 'a1');
  assert.equal(ctx.metas.at(-1)?.status, 'assigned');
  // The new agent gets the cached backlog after its `assigned` frame.
  assert.deepEqual(ctx.notified.at(-1)?.frame.type, 'assigned');
  assert.deepEqual(ctx.delivered.at(-1)?.recipients, ['a1']);
  const ack = await conversationBehaviour(state, agent('a-m1'), ctx);
  assert.equal(ack.seq, 2);
  assert.equal(ctx.appended[1]?.senderRole, 'agent');
  await assert.rejects(behaviour(state, assignTo('a2'), ctx), { code: 'conflict' });
});

test('conversation actor - assign pushes the newest rows this actor committed, from the owner memory', async () => {
  const record: ConversationRecord = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: null, createdAt: 1 };
  // Seqs 1-3 were written by an earlier owner: their agents' view is not known here, so never pushed.
  const pushedTo = async (limit: number, recentRows = true): Promise<number[]> => {
    const ctx = new RecordingContext();
    if (!recentRows) Object.assign(ctx, { recentRows: undefined });
    const state = initialState('acme', 'c1', { record, lastSeq: 3, recent: [] }, 16, null, new Map(), limit);
    for (const cmid of ['m4', 'm5', 'm6']) await conversationBehaviour(state, visitor(cmid), ctx);
    const before = ctx.delivered.length;
    await behaviour(state, assignTo('a1'), ctx);
    const pushed = ctx.delivered.slice(before);
    assert.ok(pushed.every((d) => d.recipients.length === 1 && d.recipients[0] === 'a1'));
    return pushed.map((d) => d.row.seq);
  };
  assert.deepEqual(await pushedTo(8), [4, 5, 6]);
  assert.deepEqual(await pushedTo(2), [5, 6]);
  assert.deepEqual(await pushedTo(0), []);
  assert.deepEqual(await pushedTo(8, false), [], 'without the owner memory the agent syncs instead');
});

test('conversation actor - close is idempotent and refuses later sends', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  await behaviour(state, { type: 'close', by: { user: 'v1', role: 'visitor' }, reason: null }, ctx);
  await behaviour(state, { type: 'close', by: { user: 'v1', role: 'visitor' }, reason: null }, ctx);
  assert.equal(ctx.events.filter((e) => e.type === 'closed').length, 1);
  await assert.rejects(conversationBehaviour(state, visitor('m2'), ctx), { code: 'conversation_closed' });
  // A retry of an acked cmid still gets its ack.
  assert.equal((await conversationBehaviour(state, visitor('m1'), ctx)).seq, 1);
});

test('conversation actor - another agent is forbidden once assigned', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  await behaviour(state, assignTo('a1'), ctx);
  await conversationBehaviour(state, agent('a-m1'), ctx);
  await assert.rejects(conversationBehaviour(state, agent('x-m1', 'a2'), ctx), { code: 'forbidden' });
  assert.equal(ctx.appended.length, 2);
});

test('conversation actor - another visitor is forbidden', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  await assert.rejects(conversationBehaviour(state, visitor('m2', 'v2'), ctx), { code: 'forbidden' });
  assert.equal(ctx.appended.length, 1);
  assert.equal(ctx.delivered.length, 1);
});

test('conversation actor - an agent sending to an unknown conversation gets not_found', async () => {
  const { state, ctx } = fresh();
  await assert.rejects(conversationBehaviour(state, agent('a-m1'), ctx), { code: 'not_found' });
  assert.deepEqual(ctx.saved, []);
  assert.deepEqual(ctx.appended, []);
  assert.deepEqual(ctx.delivered, []);
});

test('conversation actor - a repeated cmid returns the original ack without a second append', async () => {
  const { state, ctx } = fresh();
  const first = await conversationBehaviour(state, visitor('m1'), ctx);
  ctx.clock.advance(5000);
  const again = await conversationBehaviour(state, visitor('m1', 'v1', 'hello (retry)'), ctx);
  const { created: _created, ...plain } = first;
  assert.deepEqual(again, plain);
  assert.equal(ctx.appended.length, 1);
  assert.equal(ctx.delivered.length, 1);
  const next = await conversationBehaviour(state, visitor('m2'), ctx);
  assert.equal(next.seq, 2);
});

test('conversation actor - a failed append consumes no seq and delivers nothing', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  ctx.failNextAppend = true;
  await assert.rejects(conversationBehaviour(state, visitor('m2'), ctx), /write timeout/);
  assert.equal(ctx.delivered.length, 1);
  // The retry of the same cmid is stored, with the seq the failed attempt would have had.
  const retry = await conversationBehaviour(state, visitor('m2'), ctx);
  assert.equal(retry.seq, 2);
  assert.deepEqual(
    ctx.appended.map((r) => [r.seq, r.cmid]),
    [
      [1, 'm1'],
      [2, 'm2'],
    ],
  );
});

test('conversation actor - losing ownership during the write gives unavailable and no ack', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  ctx.loseOwnershipDuringAppend = true;
  await assert.rejects(conversationBehaviour(state, visitor('m2'), ctx), { code: 'unavailable' });
  assert.equal(ctx.delivered.length, 1, 'nothing delivered for the unacked write');
  // Not the owner: nothing more is written.
  await assert.rejects(conversationBehaviour(state, visitor('m3'), ctx), { code: 'unavailable' });
  assert.equal(ctx.appended.length, 2);
});

test('conversation actor - writes are stamped with the fence time', async () => {
  const { state, ctx } = fresh();
  ctx.clock.advance(42);
  const ack = await conversationBehaviour(state, visitor('m1'), ctx);
  assert.deepEqual(ctx.saveTimes, [ctx.clock.now()]);
  assert.equal(ack.ts, ctx.clock.now());
  assert.equal(ctx.appended[0]?.ts, ctx.clock.now());
});

test('conversation actor - recipients are the visitor before assignment, visitor + agent after', async () => {
  const { state, ctx } = fresh();
  await conversationBehaviour(state, visitor('m1'), ctx);
  await behaviour(state, assignTo('a1'), ctx);
  await conversationBehaviour(state, agent('a-m1'), ctx);
  await conversationBehaviour(state, visitor('m2'), ctx);
  const bySeq = ctx.delivered.map((d) => [d.row.seq, d.recipients]);
  assert.deepEqual(bySeq, [
    [1, ['v1']],
    [2, ['v1', 'a1']],
    [3, ['v1', 'a1']],
  ]);
});

test('conversation actor - recent cmids are bounded by recentLimit, oldest evicted first', async () => {
  const { state, ctx } = fresh(3);
  for (let i = 1; i <= 4; i++) await conversationBehaviour(state, visitor(`m${i}`), ctx);
  // m2..m4 are still remembered: retries return their acks.
  assert.equal((await conversationBehaviour(state, visitor('m2'), ctx)).seq, 2);
  assert.equal((await conversationBehaviour(state, visitor('m4'), ctx)).seq, 4);
  assert.equal(ctx.appended.length, 4);
  // m1 was evicted, so it is stored again as a new message.
  assert.equal((await conversationBehaviour(state, visitor('m1'), ctx)).seq, 5);
  assert.equal(ctx.appended.length, 5);
});

test('conversation actor - initialState restores lastSeq and recent cmids from a snapshot', async () => {
  const record: ConversationRecord = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: 'a1', createdAt: 1 };
  const recent = [
    { cmid: 'old', sender: 'v1', seq: 40, id: 'id-40', ts: 40 },
    { cmid: 'm41', sender: 'v1', seq: 41, id: 'id-41', ts: 41 },
    { cmid: 'm42', sender: 'v1', seq: 42, id: 'id-42', ts: 42 },
  ];
  const state = initialState('acme', 'c1', { record, lastSeq: 42, recent }, 2);
  const ctx = new RecordingContext();
  for (const r of recent)
    ctx.stored.set(r.seq, { ...r, tenant: 'acme', conv: 'c1', senderRole: 'visitor', body: r.cmid });
  assert.deepEqual(await conversationBehaviour(state, visitor('m41'), ctx), {
    cmid: 'm41',
    conv: 'c1',
    seq: 41,
    id: 'id-41',
    ts: 41,
  });
  assert.equal(ctx.appended.length, 0);
  // Only the newest `recentLimit` were kept: 'old' is a new message now.
  assert.equal((await conversationBehaviour(state, visitor('old'), ctx)).seq, 43);
  // The restored record has agent a1 (no meta stored: derived as assigned).
  assert.equal((await conversationBehaviour(state, agent('a-1'), ctx)).seq, 44);
  assert.deepEqual(ctx.saved, [], 'a restored record is not saved again');
});

test('conversation actor - the same cmid from two senders is two messages', async () => {
  const state = initialState('acme', 'c1', { record: null, lastSeq: 0, recent: [] }, 8);
  const ctx = new RecordingContext();
  assert.equal((await conversationBehaviour(state, visitor('m1'), ctx)).seq, 1);
  await behaviour(state, assignTo('a1'), ctx);
  assert.equal((await conversationBehaviour(state, agent('m1'), ctx)).seq, 2);
  assert.equal((await conversationBehaviour(state, visitor('m1'), ctx)).seq, 1);
  assert.equal(ctx.appended.length, 2);
});

test('conversation actor - a stored cmid older than the recent window is a duplicate; one past lastSeq is not', async () => {
  const { state, ctx } = fresh(2);
  const stored = new Map<string, { seq: number; id: string; ts: number }>();
  // The cmids table as the store would answer it: every write that reached Cassandra, acked or not.
  Object.assign(ctx.store, {
    lookupCmid: async (_t: string, _c: string, sender: string, cmid: string) => {
      const s = stored.get(cmid);
      return s ? { cmid, sender, ...s } : null;
    },
  });
  const acks = [];
  for (let i = 1; i <= 4; i++) {
    const ack = (await conversationBehaviour(state, visitor(`m${i}`), ctx)) as {
      seq: number;
      id: string;
      ts: number;
    };
    stored.set(`m${i}`, { seq: ack.seq, id: ack.id, ts: ack.ts });
    acks.push(ack);
  }
  // m2 left the window of 2: the cmids table answers with the original ack, nothing is appended.
  const again = (await conversationBehaviour(state, visitor('m2'), ctx)) as { seq: number; id: string };
  assert.deepEqual([again.seq, again.id], [acks[1]?.seq, acks[1]?.id]);
  assert.equal(ctx.appended.length, 4);

  // m5's write fails here but landed in Cassandra (its cmid row is there, at seq 5 > lastSeq 4).
  ctx.failNextAppend = true;
  await assert.rejects(conversationBehaviour(state, visitor('m5'), ctx));
  stored.set('m5', { seq: 5, id: 'landed-but-unacked', ts: 0 });
  // Its retry is written again at seq 5 (not answered from the unacked row), so the next message gets 6.
  const retry = (await conversationBehaviour(state, visitor('m5'), ctx)) as { seq: number; id: string };
  assert.equal(retry.seq, 5);
  assert.notEqual(retry.id, 'landed-but-unacked');
  const next = (await conversationBehaviour(state, visitor('m6'), ctx)) as { seq: number };
  assert.equal(next.seq, 6);
  assert.deepEqual(
    ctx.appended.map((r) => r.seq),
    [1, 2, 3, 4, 5, 6],
  );
});

test('conversation actor - the first repeat of an inherited message fans it out once: its writer may have lost the shard before pushing', async () => {
  const record: ConversationRecord = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: 'a1', createdAt: 1 };
  // Stored by the previous owner, whose fence failed after the write: no ack, no push.
  const stored: MessageRow = {
    tenant: 'acme',
    conv: 'c1',
    seq: 7,
    id: 'id-7',
    sender: 'v1',
    senderRole: 'visitor',
    cmid: 'm7',
    body: 'landed',
    ts: 70,
  };
  const recent = [{ cmid: 'm7', sender: 'v1', seq: 7, id: 'id-7', ts: 70 }];
  const state = initialState('acme', 'c1', { record, lastSeq: 7, recent }, 8);
  const ctx = new RecordingContext();
  const reads: number[] = [];
  Object.assign(ctx, {
    readMessage: async (_t: string, _c: string, seq: number) => {
      reads.push(seq);
      return seq === 7 ? stored : (ctx.appended.find((r) => r.seq === seq) ?? null);
    },
  });
  const ack = await conversationBehaviour(state, visitor('m7'), ctx);
  assert.deepEqual([ack.seq, ack.id], [7, 'id-7']);
  assert.equal(ctx.appended.length, 0, 'not stored again');
  assert.deepEqual(
    ctx.delivered.map((d) => [d.row.seq, d.recipients]),
    [[7, ['v1', 'a1']]],
  );
  const events = ctx.events.filter((e) => e.type === 'message');
  assert.deepEqual(
    events.map((e) => e.id),
    ['id-7'],
    'its event, with the message id as event id (sb_out stores it once)',
  );
  // A second repeat: the original ack only (confirmed against the stored row again), nothing pushed.
  await conversationBehaviour(state, visitor('m7'), ctx);
  assert.equal(ctx.delivered.length, 1);
  assert.deepEqual(reads, [7, 7]);
  // A message written by this activation is never fanned out again by a repeat.
  await conversationBehaviour(state, visitor('m8'), ctx);
  await conversationBehaviour(state, visitor('m8'), ctx);
  assert.deepEqual(
    ctx.delivered.map((d) => d.row.seq),
    [7, 8],
  );
});

test('conversation actor - a repeat whose stored row cannot be read is unavailable; a window entry whose row is another message is no repeat', async () => {
  const record: ConversationRecord = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: null, createdAt: 1 };
  const recent = [
    { cmid: 'x', sender: 'v1', seq: 3, id: 'id-3', ts: 30 },
    { cmid: 'y', sender: 'v1', seq: 4, id: 'id-4', ts: 40 },
  ];
  const state = initialState('acme', 'c1', { record, lastSeq: 4, recent }, 8);
  const ctx = new RecordingContext();
  Object.assign(ctx, {
    readMessage: async (_t: string, _c: string, seq: number) => {
      if (seq === 3) throw new Error('store down');
      // What a hash collision looks like: the window names seq 4, whose row is another cmid.
      const other: MessageRow = {
        tenant: 'acme',
        conv: 'c1',
        seq,
        id: 'id-4',
        sender: 'v1',
        senderRole: 'visitor',
        cmid: 'z',
        body: '',
        ts: 40,
      };
      return other;
    },
  });
  await assert.rejects(conversationBehaviour(state, visitor('x'), ctx), { code: 'unavailable' });
  assert.equal(ctx.appended.length, 0, 'not stored: it may be a repeat');
  assert.equal((await conversationBehaviour(state, visitor('y'), ctx)).seq, 5, 'a new message');
  assert.deepEqual(
    ctx.delivered.map((d) => d.row.seq),
    [5],
  );
});
