/**
 * The desk's time-based decisions with a simulated clock (no waiting): the queue actor's no-reply
 * timers (not a millisecond early, the conversation asked with the wait's `since`, the front of the
 * queue, another agent first, no churn when nobody else is there, an answer in time cancels), left
 * messages queued only once the desk is open, the bot-session bound; and the conversation side's
 * reply wait (who starts, ends and restarts it).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type EnqueueReply,
  initialQueueState,
  type QueueContext,
  type QueueMessage,
  type QueueState,
  queueBehaviour,
  stopQueue,
} from '../../actors/queue.js';
import { initialReceptionState, REPLY_WAITS_RELOAD_MS } from '../../actors/reception/queue-reception.js';
import {
  checkNoReply,
  type ReplyWaitContext,
  type ReplyWaitState,
  replyWaitOnAssigned,
  replyWaitOnCommitted,
  replyWaitOnReleased,
} from '../../actors/reception/reply-wait.js';
import { SwitchboardError } from '../../src/protocol/errors.js';
import {
  RECEPTION_SECTION,
  type ReceptionSettings,
  receptionSettingsOf,
} from '../../src/reception/settings.js';
import type { AgentProfile, QueueEntryRow } from '../../src/store/chat-store.js';
import type { BotSessionRow, LeftMessageRow, ReplyWaitRow } from '../../src/store/reception-store.js';
import type { MessageRow } from '../../src/store/types.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

const T0 = Date.UTC(2026, 11, 2, 10, 0); // a Wednesday, 10:00 UTC
const LIMITS = { maxWaiting: 2, maxAgents: 10, maxCapacity: 5, sweepMs: 60_000 };

class Harness {
  readonly clock = new SimulatedClock(T0);
  readonly asked: Array<{ conv: string; msg: Record<string, unknown> }> = [];
  readonly notified: Array<{ users: readonly string[]; frame: Record<string, unknown> }> = [];
  readonly queueRows = new Map<string, QueueEntryRow>();
  readonly left = new Map<string, LeftMessageRow>();
  readonly botRows = new Map<string, BotSessionRow>();
  /** reply_waits as the conversation actors would have written it. */
  readonly waitRows = new Map<string, ReplyWaitRow>();
  settings: ReceptionSettings;
  state: QueueState;
  private ids = 0;

  constructor(desk: unknown, agents: Array<{ agent: string; capacity: number; convs: string[] }>) {
    this.settings = receptionSettingsOf(RECEPTION_SECTION.parse(desk));
    const profiles: AgentProfile[] = agents.map((a) => ({
      agent: a.agent,
      status: 'online',
      capacity: a.capacity,
      skills: [],
      updatedAt: 0,
    }));
    this.state = initialQueueState(
      't',
      LIMITS,
      profiles,
      new Map(agents.map((a) => [a.agent, a.convs])),
      [],
      T0,
      initialReceptionState([], [], [], T0),
    );
  }

  readonly ctx: QueueContext = {
    chat: {
      saveQueueEntry: async (_t, e) => void this.queueRows.set(e.conv, e),
      removeQueueEntry: async (_t, conv) => void this.queueRows.delete(conv),
    },
    clock: this.clock,
    fence: () => this.clock.now(),
    askConversation: async (conv, msg) => {
      this.asked.push({ conv, msg: msg as Record<string, unknown> });
      return {
        tenant: 't',
        conv,
        visitor: `v-${conv}`,
        agent: null,
        status: 'queued',
        skill: null,
        subject: null,
        createdAt: T0 - 60_000,
        closedAt: null,
        closedBy: null,
        rating: null,
        lastSeq: 1,
        read: {},
      };
    },
    pingAgent: () => {},
    tellSelf: () => {},
    notify: (users, frame) => void this.notified.push({ users, frame }),
    warn: () => {},
    reception: {
      settings: () => this.settings,
      store: {
        saveLeftMessage: async (_t, m) => void this.left.set(m.id, m),
        removeLeftMessage: async (_t, id) => void this.left.delete(id),
        loadLeftMessages: async () => [...this.left.values()],
        saveBotSession: async (_t, b) => void this.botRows.set(b.conv, b),
        removeBotSession: async (_t, conv) => void this.botRows.delete(conv),
        loadReplyWaits: async () => [...this.waitRows.values()],
      },
      newId: () => `id${String(++this.ids).padStart(4, '0')}`,
    },
  };

  /** `replyDue` / `replied` come with their row written / removed, as the conversation actor does. */
  send(msg: QueueMessage): Promise<unknown> {
    if (msg.type === 'replyDue')
      this.waitRows.set(msg.conv, { conv: msg.conv, agent: msg.agent, since: msg.since });
    if (msg.type === 'replied' && this.waitRows.get(msg.conv)?.since === msg.since)
      this.waitRows.delete(msg.conv);
    return queueBehaviour(this.state, msg, this.ctx);
  }

  unassigns(): Array<Record<string, unknown>> {
    return this.asked.filter((a) => a.msg['type'] === 'unassign').map((a) => a.msg);
  }

  assigns(): Array<{ conv: string; agent: unknown }> {
    return this.asked
      .filter((a) => a.msg['type'] === 'assign')
      .map((a) => ({ conv: a.conv, agent: a.msg['agent'] }));
  }
}

test('reception queue - a no-reply wait runs out exactly at the tenant time; the conversation goes to another agent', async () => {
  const h = new Harness({ noReplyReassignS: 60 }, [
    { agent: 'ag1', capacity: 1, convs: ['c1'] },
    { agent: 'ag2', capacity: 1, convs: [] },
  ]);
  await h.send({ type: 'replyDue', conv: 'c1', agent: 'ag1', since: T0 });
  h.clock.advance(59_999);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.unassigns(), [], 'not a millisecond early');
  h.clock.advance(1);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.unassigns(), [
    {
      type: 'unassign',
      from: 'ag1',
      skill: null,
      by: { user: 'queue', role: 'system' },
      reason: 'no_reply',
      since: T0,
    },
  ]);
  assert.deepEqual(h.assigns(), [{ conv: 'c1', agent: 'ag2' }], 'to the other agent');
  assert.deepEqual(h.notified[0], {
    users: ['v-c1'],
    frame: { type: 'requeued', conv: 'c1', reason: 'no_reply' },
  });
  assert.equal(h.state.agents.get('ag1')?.convs.has('c1'), false);
  assert.equal(h.state.agents.get('ag2')?.convs.has('c1'), true);
  stopQueue(h.state);
});

test('reception queue - an answer in time cancels the wait; a stale `replied` does not', async () => {
  const h = new Harness({ noReplyReassignS: 60 }, [
    { agent: 'ag1', capacity: 2, convs: ['c1'] },
    { agent: 'ag2', capacity: 2, convs: [] },
  ]);
  await h.send({ type: 'replyDue', conv: 'c1', agent: 'ag1', since: T0 });
  await h.send({ type: 'replied', conv: 'c1', since: T0 - 1 }); // an older wait's answer
  h.clock.advance(30_000);
  await h.send({ type: 'replied', conv: 'c1', since: T0 });
  h.clock.advance(60_000);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.unassigns(), []);
  stopQueue(h.state);
});

test('reception queue - back at the FRONT of the queue, not to the same agent while another will be free', async () => {
  const h = new Harness({ noReplyReassignS: 10 }, [
    { agent: 'ag1', capacity: 1, convs: ['c1'] },
    { agent: 'ag2', capacity: 1, convs: ['c2'] },
  ]);
  await h.send({ type: 'enqueue', conv: 'c3', visitor: 'v3', skill: null });
  await h.send({ type: 'replyDue', conv: 'c1', agent: 'ag1', since: T0 });
  h.clock.advance(10_000);
  await h.send({ type: 'reception' });
  // c1 is waiting ahead of c3; ag1, free again, takes c3 and not c1 (ag2 will be free for c1).
  assert.deepEqual(h.assigns(), [{ conv: 'c3', agent: 'ag1' }]);
  assert.deepEqual(
    h.state.waiting.map((w) => w.conv),
    ['c1'],
  );
  assert.ok((h.queueRows.get('c1')?.enqueuedAt ?? Infinity) < T0, 'stored ahead of everything waiting');
  // ag2 frees up: c1 goes to it.
  await h.send({ type: 'release', conv: 'c2', agent: 'ag2' });
  assert.deepEqual(h.assigns().at(-1), { conv: 'c1', agent: 'ag2' });
  stopQueue(h.state);
});

test('reception queue - with nobody else, a run-out wait stays with its agent and is looked at again later', async () => {
  const h = new Harness({ noReplyReassignS: 10 }, [{ agent: 'ag1', capacity: 1, convs: ['c1'] }]);
  await h.send({ type: 'replyDue', conv: 'c1', agent: 'ag1', since: T0 });
  h.clock.advance(10_000);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.unassigns(), [], 'no churn back to the same agent');
  await h.send({ type: 'agent', agent: 'ag2', status: 'online', capacity: 1, skills: [], connected: true });
  h.clock.advance(9_999);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.unassigns(), [], 'the next look is one no-reply time later');
  h.clock.advance(1);
  await h.send({ type: 'reception' });
  assert.equal(h.unassigns().length, 1);
  assert.deepEqual(h.assigns().at(-1), { conv: 'c1', agent: 'ag2' });
  stopQueue(h.state);
});

test('reception queue - closed: not queued; left messages bounded, queued once the clock reaches opening time', async () => {
  const h = new Harness(
    {
      hours: {
        timeZone: 'UTC',
        weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], open: '12:00', close: '18:00' }],
        leaveMessage: { maxChars: 10, maxStored: 2 },
      },
    },
    [{ agent: 'ag1', capacity: 5, convs: [] }],
  );
  const r = (await h.send({
    type: 'enqueue',
    conv: 'c1',
    visitor: 'v1',
    skill: null,
    fresh: true,
  })) as EnqueueReply;
  assert.equal(r.route, 'closed');
  assert.equal(r.nextOpen, T0 + 2 * 3_600_000, 'opens at 12:00');
  assert.deepEqual(h.assigns(), []);
  const leave = (conv: string, body: string) =>
    h.send({ type: 'leave', conv, visitor: `v-${conv}`, name: null, email: null, body });
  await leave('c1', 'x'.repeat(10));
  await assert.rejects(leave('c2', 'x'.repeat(11)), { code: 'payload_too_large' });
  await leave('c2', 'call me');
  await assert.rejects(leave('c3', 'me too'), { code: 'busy' });
  h.clock.advance(2 * 3_600_000 - 1);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.assigns(), [], 'still closed at 11:59:59.999');
  h.clock.advance(1);
  await h.send({ type: 'reception' });
  assert.deepEqual(h.assigns(), [
    { conv: 'c1', agent: 'ag1' },
    { conv: 'c2', agent: 'ag1' },
  ]);
  assert.equal(h.left.size, 0);
  stopQueue(h.state);
});

test('reception queue - bot sessions share the waiting bound; beyond it a new conversation is queued', async () => {
  const h = new Harness({ bot: {} }, [{ agent: 'ag1', capacity: 5, convs: [] }]);
  const route = async (conv: string) =>
    (
      (await h.send({
        type: 'enqueue',
        conv,
        visitor: `v-${conv}`,
        skill: null,
        fresh: true,
      })) as EnqueueReply
    ).route;
  assert.equal(await route('c1'), 'bot');
  assert.equal(await route('c2'), 'bot');
  assert.equal(await route('c3'), 'queue', `at most ${LIMITS.maxWaiting} with the bot`);
  assert.equal(await route('c1'), 'bot', 'idempotent');
  const handed = (await h.send({
    type: 'handoff',
    conv: 'c1',
    visitor: 'v-c1',
    skill: null,
    summary: 'wants a refund',
    by: 'bot',
  })) as EnqueueReply;
  assert.equal(handed.agent, 'ag1');
  const frame = h.notified.find((n) => n.frame['type'] === 'handoff');
  assert.deepEqual(frame, {
    users: ['ag1'],
    frame: { type: 'handoff', conv: 'c1', summary: 'wants a refund', by: 'bot' },
  });
  assert.equal(h.botRows.has('c1'), false, 'the summary went to its agent');
  stopQueue(h.state);
});

test('reception queue - a replyDue tell that never arrived is picked up from the table within the reload time', async () => {
  const h = new Harness({ noReplyReassignS: 10 }, [
    { agent: 'ag1', capacity: 1, convs: ['c1', 'c2'] },
    { agent: 'ag2', capacity: 1, convs: [] },
  ]);
  // c1's wait is in the table but its tell was lost; c2's was answered but its `replied` was lost.
  h.waitRows.set('c1', { conv: 'c1', agent: 'ag1', since: T0 });
  await h.send({ type: 'replyDue', conv: 'c2', agent: 'ag1', since: T0 });
  h.waitRows.delete('c2');
  h.clock.advance(REPLY_WAITS_RELOAD_MS - 1);
  await h.send({ type: 'reception' });
  // Not read yet: c2 (answered, but the queue does not know) is taken; the conversation refuses for real.
  assert.deepEqual(
    h.unassigns().map((u) => u['since']),
    [T0],
  );
  h.asked.length = 0;
  h.clock.advance(1);
  await h.send({ type: 'reception' });
  assert.deepEqual(
    h.asked.filter((a) => a.msg['type'] === 'unassign').map((a) => a.conv),
    ['c1'],
    'c1 found in the table and timed; c2 no longer there',
  );
  stopQueue(h.state);
});

test('reception reply wait - the visitor starts it, the agent ends it, an assignment restarts it', () => {
  const saved: Array<[string, ReplyWaitRow | string]> = [];
  const told: unknown[] = [];
  const ctx: ReplyWaitContext = {
    reassignMs: () => 60_000,
    save: (_t, row) => void saved.push(['save', row]),
    remove: (_t, conv) => void saved.push(['remove', conv]),
    tellQueue: (_t, msg) => void told.push(msg),
  };
  const state: ReplyWaitState = { tenant: 't', conv: 'c', lastSeq: 1, replyWait: null };
  const row = (senderRole: MessageRow['senderRole'], sender: string, ts: number) =>
    ({ senderRole, sender, ts }) as MessageRow;
  replyWaitOnCommitted(state, row('visitor', 'v', 100), 'ag', ctx);
  replyWaitOnCommitted(state, row('visitor', 'v', 200), 'ag', ctx); // the first unanswered counts
  assert.deepEqual(state.replyWait, { since: 100, agent: 'ag' });
  assert.doesNotThrow(() => checkNoReply(state, 'ag', 100));
  assert.throws(() => checkNoReply(state, 'ag', 99), { code: 'conflict' });
  replyWaitOnCommitted(state, row('bot', 'bot', 250), 'ag', ctx); // not the agent
  assert.deepEqual(state.replyWait, { since: 100, agent: 'ag' });
  replyWaitOnCommitted(state, row('agent', 'ag', 300), 'ag', ctx);
  assert.equal(state.replyWait, null);
  assert.throws(
    () => checkNoReply(state, 'ag', 100),
    { code: 'conflict' },
    'answered: a late timer is refused',
  );
  assert.deepEqual(told, [
    { type: 'replyDue', conv: 'c', agent: 'ag', since: 100 },
    { type: 'replied', conv: 'c', since: 100 },
  ]);
  // Unassigned while waiting: the visitor still waits; the next agent gets the whole time.
  replyWaitOnCommitted(state, row('visitor', 'v', 400), 'ag', ctx);
  replyWaitOnReleased(state, 450, false, ctx);
  assert.deepEqual(state.replyWait, { since: 400, agent: null });
  replyWaitOnAssigned(state, 'ag2', 500, ctx);
  assert.deepEqual(state.replyWait, { since: 500, agent: 'ag2' });
  // Loaded while queued (unknown): a conversation with messages counts as waiting at its assignment.
  const loaded: ReplyWaitState = { tenant: 't', conv: 'd', lastSeq: 3 };
  replyWaitOnAssigned(loaded, 'ag', 600, ctx);
  assert.deepEqual(loaded.replyWait, { since: 600, agent: 'ag' });
  replyWaitOnReleased(loaded, 700, true, ctx);
  assert.equal(loaded.replyWait, null, 'closed: nobody waits');
  assert.deepEqual(saved.at(-1), ['remove', 'd']);
});

test('reception queue - a lost agent whose conversation could not be taken back (its shard moving) has it taken back by the next sweep', async () => {
  const h = new Harness({}, [{ agent: 'ag1', capacity: 2, convs: ['c1', 'c2'] }]);
  const ask = h.ctx.askConversation;
  let moving = true;
  h.ctx.askConversation = async (conv, msg) => {
    if (conv === 'c1' && moving) {
      h.asked.push({ conv, msg: msg as Record<string, unknown> });
      throw new SwitchboardError('unavailable', 'shard 7 has no owner right now', { retryAfterMs: 100 });
    }
    return ask(conv, msg);
  };
  await h.send({ type: 'agentLost', agent: 'ag1' });
  assert.deepEqual(
    h.unassigns().map((m) => m['from']),
    ['ag1', 'ag1'],
    'both tried once',
  );
  assert.deepEqual([...h.state.agents.get('ag1')!.convs], ['c1'], 'c1 is still the lost agent’s');
  assert.deepEqual(
    h.state.waiting.map((w) => w.conv),
    ['c2'],
  );
  moving = false;
  await h.send({ type: 'sweep' });
  assert.equal(h.unassigns().length, 3, 'the sweep tried c1 again');
  assert.deepEqual([...h.state.agents.get('ag1')!.convs], [], 'nothing left with the lost agent');
  assert.deepEqual(h.state.waiting.map((w) => w.conv).sort(), ['c1', 'c2']);
  // Back before a sweep: nothing more is taken from it.
  await h.send({
    type: 'agent',
    agent: 'ag1',
    status: 'online',
    capacity: 2,
    skills: [],
    connected: true,
  });
  const before = h.unassigns().length;
  await h.send({ type: 'sweep' });
  assert.equal(h.unassigns().length, before);
  stopQueue(h.state);
});

test('reception queue - a queue rebuilt on another member learns from the agent’s report that it was lost, and its sweep takes the conversations back', async () => {
  // The queue's member stopped after the agent's actor had reported the loss (once) to it: the queue is
  // rebuilt from the tables on another member, where the agent looks like any disconnected one.
  const h = new Harness({}, [{ agent: 'ag1', capacity: 2, convs: ['c1'] }]);
  const report = { type: 'agent' as const, agent: 'ag1', status: 'online' as const, capacity: 2, skills: [] };
  await h.send({ ...report, connected: false });
  await h.send({ type: 'sweep' });
  assert.deepEqual(h.unassigns(), [], 'disconnected, not yet lost: its conversations wait for it');
  await h.send({ ...report, connected: false, lost: true });
  await h.send({ type: 'sweep' });
  assert.deepEqual(
    h.unassigns().map((m) => m['from']),
    ['ag1'],
    'lost: taken back',
  );
  assert.deepEqual([...h.state.agents.get('ag1')!.convs], []);
  assert.deepEqual(
    h.state.waiting.map((w) => w.conv),
    ['c1'],
  );
  stopQueue(h.state);
});
