/**
 * The desk messages of the conversation actor (actors/desk.ts) with a simulated clock and a small
 * store: a note goes to the agent only; a recall's or edit's write whose outcome is unknown keeps its
 * seq (issue #12) and is repeated with the very same effects before anything else; its effects are
 * written only with it; the recall window is measured on the injected clock.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Ack,
  type ConversationContext,
  type ConversationMessage,
  conversationBehaviour,
  initialState,
} from '../../actors/conversation.js';
import { OutcomeUnknownError, SwitchboardError } from '../../src/protocol/errors.js';
import { applyState, withoutEffects } from '../../src/store/message-state.js';
import type { MessageRow } from '../../src/store/types.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

class Store {
  readonly written: MessageRow[] = [];
  paused = false;
  async append(row: MessageRow): Promise<void> {
    if (this.paused) throw new OutcomeUnknownError('history write', 1000, new Error('OperationTimedOut'));
    this.written.push(row);
  }
  async saveConversation(): Promise<void> {}
  /** A stored message as every reader reads it: with the newest state a later change row wrote for it. */
  read(seq: number): MessageRow | null {
    const row = this.written.findLast((r) => r.seq === seq);
    if (row === undefined) return null;
    const states = this.written.flatMap((r) => r.effects?.states ?? []).filter((s) => s.seq === seq);
    return applyState(withoutEffects(row), states.at(-1));
  }
}

function setup() {
  const store = new Store();
  const clock = new SimulatedClock();
  const delivered: Array<{ seq: number; users: readonly string[] }> = [];
  let ids = 0;
  const ctx: ConversationContext = {
    store,
    chat: {
      saveMeta: async () => {},
      saveReceipt: async () => {},
      addOpen: async () => {},
      removeOpen: async () => {},
    },
    clock,
    fence: () => clock.now(),
    readMessage: async (_t, _c, seq) => store.read(seq),
    newId: () => `id-${++ids}`,
    deliver: (row, users) => delivered.push({ seq: row.seq, users }),
    notify: () => {},
    emit: () => {},
  };
  const state = initialState('acme', 'c1', { record: null, lastSeq: 0, recent: [] }, 8, null, new Map(), 16);
  state.record = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: 'ag1', createdAt: 0 };
  state.meta = {
    status: 'assigned',
    skill: null,
    subject: null,
    closedAt: null,
    closedBy: null,
    rating: null,
  };
  const run = (m: ConversationMessage) => conversationBehaviour(state, m, ctx) as Promise<Ack>;
  return { store, clock, delivered, state, run };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SwitchboardError);
    return err.code;
  }
  return 'resolved';
}

test('desk actor - a note is delivered to the agent only, and takes the next seq', async () => {
  const { delivered, run } = setup();
  await run({ type: 'send', sender: 'v1', role: 'visitor', cmid: 'm1', body: 'hi' });
  const note = await run({ type: 'note', sender: 'ag1', cmid: 'n1', body: 'internal' });
  assert.equal(note.seq, 2);
  assert.deepEqual(delivered, [
    { seq: 1, users: ['v1', 'ag1'] },
    { seq: 2, users: ['ag1'] },
  ]);
  assert.equal(await code(run({ type: 'note', sender: 'v1', cmid: 'n2', body: 'x' })), 'forbidden');
});

test('desk actor - an uncertain recall keeps its seq and is repeated with the same effects before the next message', async () => {
  const { store, state, run } = setup();
  await run({ type: 'send', sender: 'v1', role: 'visitor', cmid: 'm1', body: 'secret' });
  store.paused = true;
  const recall = {
    type: 'recall',
    sender: 'v1',
    role: 'visitor',
    cmid: 'r1',
    seq: 1,
    windowMs: 60_000,
  } as const;
  assert.equal(await code(run(recall)), 'unavailable');
  assert.equal(state.unsettled?.seq, 2);
  // Not durable yet: nothing of the recall is stored, so every reader still reads the message as sent.
  assert.equal(
    store.written.some((r) => r.seq === 2),
    false,
  );
  store.paused = false;
  const next = await run({ type: 'send', sender: 'v1', role: 'visitor', cmid: 'm2', body: 'again' });
  assert.equal(next.seq, 3);
  const settled = store.written.find((r) => r.seq === 2);
  assert.equal(settled?.change, 'recall');
  assert.deepEqual(
    settled?.effects?.states.map((s) => [s.seq, s.state]),
    [[1, 'recalled']],
  );
  assert.equal(settled?.effects?.audits[0]?.body, 'secret');
  // The retry of the recall gets its original ack.
  assert.equal((await run(recall)).seq, 2);
});

test('desk actor - the recall window is measured on the clock; an edit records its edit seqs for a later recall', async () => {
  const { clock, store, run } = setup();
  await run({ type: 'send', sender: 'ag1', role: 'agent', cmid: 'a1', body: 'v1' });
  await run({ type: 'edit', sender: 'ag1', cmid: 'e1', seq: 1, body: 'v2', maxEdits: 5 });
  clock.advance(1000);
  const late = { type: 'recall', sender: 'ag1', role: 'agent', cmid: 'r0', seq: 1, windowMs: 999 } as const;
  assert.equal(await code(run(late)), 'conflict');
  await run({ ...late, cmid: 'r1', windowMs: 1000 });
  const recall = store.written.at(-1);
  assert.deepEqual(
    recall?.effects?.states.map((s) => [s.seq, s.state]),
    [
      [1, 'recalled'],
      [2, 'recalled'],
    ],
  );
  assert.equal(recall?.effects?.audits[0]?.body, 'v2');
});
