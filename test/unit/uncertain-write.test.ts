/**
 * Uncertain writes (issue #12): a write that timed out may land later. The actor must not give its seq
 * to another message until a repeat of the same write succeeded, and every ack must name the row that
 * is stored at its seq. The store here is a small model of Cassandra's last-write-wins cells with a
 * "paused" mode: a paused append times out (OutcomeUnknownError) but its write is kept and applied when
 * the test says so — the way a SIGSTOPped Cassandra applies queued mutations after SIGCONT.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Ack,
  type ConversationContext,
  type ConversationMessage,
  type ConversationState,
  conversationBehaviour,
  initialState,
  type SendMessage,
} from '../../actors/conversation.js';
import { OutcomeUnknownError, SwitchboardError } from '../../src/protocol/errors.js';
import { HistoryWriter, parseWriterLimits } from '../../src/store/history-writer.js';
import type { MessageRow, RecentAck } from '../../src/store/types.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

interface Cell {
  row: MessageRow;
  /** Write timestamp, µs. */
  at: number;
}

/** Messages and cmids with per-row last-write-wins, range tombstones, and a pause. */
class LwwStore {
  readonly messages = new Map<number, Cell>();
  readonly cmids = new Map<string, Cell>();
  /** [above seq, timestamp µs] */
  readonly tombstones: Array<[number, number]> = [];
  paused = false;
  /** Writes accepted while paused: applied by land(). */
  readonly queued: MessageRow[] = [];

  async append(row: MessageRow): Promise<void> {
    if (this.paused) {
      this.queued.push({ ...row });
      throw new OutcomeUnknownError('history write', 1000, new Error('OperationTimedOut'));
    }
    this.apply(row);
  }

  /** The paused writes reach the store, in the order they were sent. */
  land(): void {
    for (const row of this.queued.splice(0)) this.apply(row);
  }

  apply(row: MessageRow): void {
    const at = row.ts * 1000;
    const cur = this.messages.get(row.seq);
    if (cur === undefined || at >= cur.at) this.messages.set(row.seq, { row, at });
    const key = `${row.sender}\u0000${row.cmid}`;
    const c = this.cmids.get(key);
    if (c === undefined || at >= c.at) this.cmids.set(key, { row, at });
  }

  seal(lastSeq: number, sealTimeMs: number): void {
    this.tombstones.push([lastSeq, sealTimeMs * 1000 - 1]);
  }

  /** What a reader sees at `seq`: the newest row unless a newer (or equal) tombstone covers it. */
  visible(seq: number): MessageRow | null {
    const cell = this.messages.get(seq);
    if (cell === undefined) return null;
    const dead = this.tombstones.some(([above, at]) => seq > above && at >= cell.at);
    return dead ? null : cell.row;
  }

  /** Like CassandraHistoryStore.lookupCmid: a cmids row answers only when the row at its seq is it. */
  async lookupCmid(_t: string, _c: string, sender: string, cmid: string, lastSeq: number) {
    const c = this.cmids.get(`${sender}\u0000${cmid}`);
    if (c === undefined) return null;
    if (c.row.seq <= lastSeq && this.visible(c.row.seq)?.id !== c.row.id) return null;
    const a: RecentAck = { cmid, sender, seq: c.row.seq, id: c.row.id, ts: c.row.ts };
    return a;
  }

  lastSeq(): number {
    let max = 0;
    for (const seq of this.messages.keys()) if (this.visible(seq) !== null) max = Math.max(max, seq);
    return max;
  }
}

class Ctx implements ConversationContext {
  readonly clock = new SimulatedClock();
  readonly delivered: MessageRow[] = [];
  owner = true;
  private ids = 0;
  constructor(
    readonly store: LwwStore & { saveConversation(): Promise<void> },
    readonly tag: string,
  ) {}
  readonly chat = {
    saveMeta: async () => {},
    saveReceipt: async () => {},
    addOpen: async () => {},
    removeOpen: async () => {},
  };
  fence(): number {
    if (!this.owner) throw new SwitchboardError('unavailable', 'lease lost');
    return this.clock.now();
  }
  newId(): string {
    this.ids++;
    return `${this.tag}-${this.ids}`;
  }
  deliver(row: MessageRow): void {
    this.delivered.push(row);
  }
  notify(): void {}
  emit(): void {}
  /** What a reader sees at `seq` (the de-duplication window confirms its candidates with it). */
  readMessage = async (_t: string, _c: string, seq: number) => this.store.visible(seq);
}

function storeWithRecord(): LwwStore & { saveConversation(): Promise<void> } {
  return Object.assign(new LwwStore(), { saveConversation: async () => {} });
}

const send = (cmid: string): SendMessage => ({
  type: 'send',
  sender: 'v1',
  role: 'visitor',
  cmid,
  body: cmid,
});
const run = (s: ConversationState, m: ConversationMessage, c: ConversationContext) =>
  conversationBehaviour(s, m, c) as Promise<Ack>;

async function rejects(p: Promise<unknown>, code: string): Promise<SwitchboardError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SwitchboardError, `a SwitchboardError, got ${String(err)}`);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function assertAckNamesStoredRow(store: LwwStore, ack: Ack): void {
  const row = store.visible(ack.seq);
  assert.ok(row, `a row is stored at acked seq ${ack.seq}`);
  assert.equal(row.cmid, ack.cmid, `seq ${ack.seq} holds the acked cmid`);
  assert.equal(row.id, ack.id, `seq ${ack.seq} holds the acked id`);
}

test('uncertain write - its seq is not given to the next message; the late write and the retry agree', async () => {
  const store = storeWithRecord();
  const ctx = new Ctx(store, 'a');
  const state = initialState('acme', 'c1', { record: null, lastSeq: 0, recent: [] }, 2);
  const acks: Ack[] = [];
  acks.push(await run(state, send('m1'), ctx));
  acks.push(await run(state, send('m2'), ctx));

  store.paused = true; // Cassandra stops answering: m3's write times out, and is kept
  const err = await rejects(run(state, send('m3'), ctx), 'unavailable');
  assert.ok((err.retryAfterMs ?? 0) > 0, 'the client is told when to retry');
  assert.equal(state.unsettled?.seq, 3, 'seq 3 stays reserved for m3');
  // Another message while the outcome is unknown: refused, not given seq 3.
  ctx.clock.advance(10);
  await rejects(run(state, send('m4'), ctx), 'unavailable');
  assert.equal(state.lastSeq, 2);

  store.paused = false;
  ctx.clock.advance(15_000);
  // m4's retry first settles m3 at seq 3 (same row, same write time), then takes seq 4.
  const a4 = await run(state, send('m4'), ctx);
  assert.equal(a4.seq, 4);
  store.land(); // the writes made during the pause land only now, minutes later
  // m3's retry (older than the 2-ack window by now: m4 pushed m2 out; m3 is still in it) names seq 3.
  const a3 = await run(state, send('m3'), ctx);
  assert.equal(a3.seq, 3);
  acks.push(a3, a4);
  for (const ack of acks) assertAckNamesStoredRow(store, ack);
  assert.deepEqual(
    [1, 2, 3, 4].map((s) => store.visible(s)?.cmid),
    ['m1', 'm2', 'm3', 'm4'],
    'gap-free, each cmid once',
  );
  assert.deepEqual(
    ctx.delivered.map((r) => r.seq),
    [1, 2, 3, 4],
    'the settled row is fanned out once, in order',
  );
});

test('uncertain write - a retry past the window is answered from the row actually stored', async () => {
  const store = storeWithRecord();
  const ctx = new Ctx(store, 'a');
  const state = initialState('acme', 'c1', { record: null, lastSeq: 0, recent: [] }, 1);
  state.record = { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: null, createdAt: 0 };
  state.meta = { status: 'queued', skill: null, subject: null, closedAt: null, closedBy: null, rating: null };
  await run(state, send('m1'), ctx);
  store.paused = true;
  await rejects(run(state, send('m2'), ctx), 'unavailable');
  store.paused = false;
  for (const m of ['m3', 'm4', 'm5']) {
    ctx.clock.advance(1);
    await run(state, send(m), ctx);
  }
  store.land();
  // The window holds 1 ack: m2's retry goes to the cmids table, whose row points at seq 2 = m2.
  const again = await run(state, send('m2'), ctx);
  assert.equal(again.seq, 2);
  assertAckNamesStoredRow(store, again);
});

test('takeover - the seal shadows a write of the old owner that lands after the new owner read lastSeq', async () => {
  const store = storeWithRecord();
  const old = new Ctx(store, 'old');
  const s1 = initialState('acme', 'c1', { record: null, lastSeq: 0, recent: [] }, 16);
  await run(s1, send('m1'), old);
  store.paused = true;
  await rejects(run(s1, send('m2'), old), 'unavailable'); // in flight when the old owner is cut off
  old.owner = false;
  store.paused = false;

  // The new owner activates later (after the old lease expired): it reads lastSeq, then seals above it.
  const neu = new Ctx(store, 'new');
  neu.clock.advance(10_000);
  const lastSeq = store.lastSeq();
  assert.equal(lastSeq, 1);
  store.seal(lastSeq, neu.fence());
  const s2 = initialState(
    'acme',
    'c1',
    {
      record: { tenant: 'acme', conv: 'c1', visitor: 'v1', agent: null, createdAt: 0 },
      lastSeq,
      recent: [{ cmid: 'm1', sender: 'v1', seq: 1, id: 'old-1', ts: 0 }],
    },
    1,
  );
  s2.meta = { status: 'queued', skill: null, subject: null, closedAt: null, closedBy: null, rating: null };
  store.land(); // the old owner's m2 at seq 2 lands now: older than the seal, so never visible
  assert.equal(store.visible(2), null, 'the late write is shadowed');
  const a3 = await run(s2, send('m3'), neu);
  assert.equal(a3.seq, 2, 'the new owner gives seq 2 to the next message');
  // m2's retry: its cmids row points at seq 2, which holds m3 — not a duplicate, written anew.
  const a2 = await run(s2, send('m2'), neu);
  assert.equal(a2.seq, 3);
  for (const ack of [a3, a2]) assertAckNamesStoredRow(store, ack);
});

test('history writer - a timed-out write rejects OutcomeUnknownError, a refused one a plain unavailable', async () => {
  const timeout = Object.assign(new Error('timed out'), { kind: 'timeout' });
  const refused = Object.assign(new Error('not enough replicas'), { kind: 'refused' });
  const make = (err: Error) =>
    new HistoryWriter(
      {
        write: async () => {
          throw err;
        },
      },
      {
        ...parseWriterLimits({ maxAttempts: 2, retryBackoffMs: 0, lingerMs: 0 }),
        partitionOf: (r) => r.conv,
        isRetryable: () => true,
        isCertainFailure: (e) => (e as { kind?: string }).kind === 'refused',
      },
    );
  const row: MessageRow = {
    tenant: 't',
    conv: 'c',
    seq: 1,
    id: 'i',
    sender: 's',
    senderRole: 'visitor',
    cmid: 'm',
    body: 'b',
    ts: 1,
  };
  await assert.rejects(make(timeout).append(row), (e) => e instanceof OutcomeUnknownError);
  await assert.rejects(
    make(refused).append(row),
    (e) => e instanceof SwitchboardError && !(e instanceof OutcomeUnknownError) && e.code === 'unavailable',
  );
});
