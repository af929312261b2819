/**
 * The shard routers' bounds and lifecycle with a simulated clock and a recording store (the
 * integration and cluster tests run the same code on real Cassandra): LRU-bounded actors that
 * reload lazily, idle passivation, and `busy` at each limit.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ConversationContext,
  type ConversationMessage,
  type ConversationState,
  conversationBehaviour,
  initialState,
  type SendMessage,
} from '../../actors/conversation.js';
import type { SwitchboardError } from '../../src/protocol/errors.js';
import type { ActorBehaviour } from '../../src/routing/actor-kind.js';
import { ShardRouters, type ShardRoutersOptions } from '../../src/routing/shard-routers.js';
import type { ConversationSnapshot, MessageRow } from '../../src/store/types.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

class Store {
  loads = 0;
  rows: MessageRow[] = [];
  /** While set, appends wait for it. */
  gate: Promise<void> | undefined;
  async loadSnapshot(): Promise<ConversationSnapshot> {
    this.loads++;
    return { record: null, lastSeq: 0, recent: [] };
  }
  async append(row: MessageRow): Promise<void> {
    await this.gate;
    this.rows.push(row);
  }
  async saveConversation(): Promise<void> {}
}

function setup(opts: Partial<ShardRoutersOptions> = {}) {
  const clock = new SimulatedClock();
  const store = new Store();
  let n = 0;
  const ctx: Omit<ConversationContext, 'fence'> = {
    store,
    chat: {
      saveMeta: async () => {},
      saveReceipt: async () => {},
      addOpen: async () => {},
      removeOpen: async () => {},
    },
    clock,
    readMessage: async (_t, _c, seq) => store.rows.findLast((r) => r.seq === seq) ?? null,
    newId: () => `id${++n}`,
    deliver: () => {},
    notify: () => {},
    emit: () => {},
  };
  const behaviour: ActorBehaviour<ConversationState, ConversationMessage> = {
    load: async (tenant, conv) => initialState(tenant, conv, await store.loadSnapshot(), 16),
    receive: (state, msg, fence) => conversationBehaviour(state, msg, { ...ctx, fence }),
  };
  const routers = new ShardRouters(
    {
      shardMailboxCapacity: 64,
      actorMailboxCapacity: 64,
      maxActive: 100,
      idleMs: 60_000,
      ...opts,
    },
    () => behaviour as ActorBehaviour,
    clock,
  );
  for (let s = 0; s < 1024; s++) routers.acquire(s);
  return { clock, store, routers };
}

const send = (cmid: string): SendMessage => ({
  type: 'send',
  sender: 'v1',
  role: 'visitor',
  cmid,
  body: 'x',
});

function gate(store: Store): () => void {
  let open!: () => void;
  store.gate = new Promise((r) => {
    open = r;
  });
  return () => {
    store.gate = undefined;
    open();
  };
}

async function rejectsBusy(p: Promise<unknown>, queue: RegExp): Promise<void> {
  await assert.rejects(p, (err: SwitchboardError) => {
    assert.equal(err.code, 'busy');
    assert.match(err.message, queue);
    assert.ok((err.retryAfterMs ?? 0) > 0);
    return true;
  });
}

test('shard routers - active actors are bounded; the least recently used idle one is passivated and reloads lazily', async () => {
  const { store, routers } = setup({ maxActive: 2 });
  await routers.ask(1, 't', 'a', send('1'));
  await routers.ask(2, 't', 'b', send('1'));
  await routers.ask(1, 't', 'a', send('2')); // a is now the most recent
  await routers.ask(3, 't', 'c', send('1')); // evicts b
  assert.equal(routers.stats().activeActors, 2);
  assert.equal(store.loads, 3);
  await routers.ask(1, 't', 'a', send('3'));
  assert.equal(store.loads, 3, 'a stayed active');
  const ack = await routers.ask(2, 't', 'b', send('2'));
  assert.equal(store.loads, 4, 'b was reloaded');
  assert.equal(ack.seq, 1, 'the recording store forgets, so the reload starts from its snapshot');
  routers.close();
});

test('shard routers - at the actor bound with every actor busy, a new conversation gets busy', async () => {
  const { store, routers } = setup({ maxActive: 1 });
  const open = gate(store);
  const first = routers.ask(1, 't', 'a', send('1'));
  await rejectsBusy(routers.ask(2, 't', 'b', send('1')), /active actors/);
  open();
  assert.equal((await first).seq, 1);
  assert.equal(routers.stats().rejected, 1);
  routers.close();
});

test('shard routers - a full shard mailbox answers busy and admits again once drained', async () => {
  const { store, routers } = setup({ shardMailboxCapacity: 2 });
  const open = gate(store);
  const admitted = [routers.ask(7, 't', 'a', send('1')), routers.ask(7, 't', 'b', send('1'))];
  assert.equal(routers.stats().maxShardDepth, 2);
  await rejectsBusy(routers.ask(7, 't', 'c', send('1')), /shard 7 mailbox/);
  open();
  await Promise.all(admitted);
  assert.equal((await routers.ask(7, 't', 'c', send('1'))).seq, 1);
  routers.close();
});

test('shard routers - a full actor mailbox answers busy', async () => {
  const { store, routers } = setup({ actorMailboxCapacity: 2 });
  const open = gate(store);
  const admitted = [1, 2, 3].map((i) => routers.ask(1, 't', 'a', send(String(i))));
  await rejectsBusy(routers.ask(1, 't', 'a', send('4')), /actor mailbox/);
  open();
  assert.deepEqual(
    (await Promise.all(admitted)).map((a) => a.seq),
    [1, 2, 3],
  );
  routers.close();
});

test('shard routers - idle actors passivate after idleMs', async () => {
  const { clock, routers } = setup({ idleMs: 1000 });
  await routers.ask(1, 't', 'a', send('1'));
  clock.advance(500);
  await routers.ask(2, 't', 'b', send('1'));
  // The mailbox finishes its drain a few microtasks after the ack resolves.
  await new Promise((r) => setImmediate(r));
  clock.advance(600);
  routers.passivateIdle();
  assert.equal(routers.stats().activeActors, 1, 'only a was idle for longer than idleMs');
  clock.advance(1000);
  routers.passivateIdle();
  assert.equal(routers.stats().activeActors, 0);
  routers.close();
});

test('shard routers - release drains admitted requests, drops the actors and refuses new ones', async () => {
  const { store, routers } = setup();
  const open = gate(store);
  const inFlight = routers.ask(5, 't', 'a', send('1'));
  const released = routers.release(5);
  await assert.rejects(routers.ask(5, 't', 'a', send('2')), { code: 'unavailable' });
  open();
  assert.equal((await inFlight).seq, 1, 'what was admitted before the release completes');
  await released;
  assert.equal(routers.stats().activeActors, 0);
  routers.close();
});

test('shard routers - a shard acquired again while its release drains gets fresh actors; the old ones are fenced off', async () => {
  const { store, routers } = setup();
  const open = gate(store);
  // A write is inside the store when the shard is fenced (a pause past the lease), and the shard comes
  // back before that write finishes: the cell that held it knows a seq the store may no longer agree with.
  const stale = routers.ask(5, 't', 'a', send('1'));
  await new Promise((r) => setImmediate(r));
  const released = routers.release(5);
  routers.acquire(5);
  const fresh = routers.ask(5, 't', 'a', send('2'));
  await new Promise((r) => setImmediate(r));
  const loads = store.loads;
  open(); // before asserting: a failure must not leave the release polling forever
  assert.equal(loads, 2, 'the request after the re-acquisition reloads the actor');
  await assert.rejects(stale, { code: 'unavailable' }, 'the old cell must not ack after the shard moved on');
  assert.equal((await fresh).cmid, '2');
  await released;
  assert.equal(routers.stats().activeActors, 1, "the old release leaves the new acquisition's actor alone");
  await routers.ask(5, 't', 'a', send('3'));
  assert.equal(store.loads, 2, 'the fresh actor stays active');
  routers.close();
});

test('shard routers - a request still queued at its deadline is answered timeout without being processed', async () => {
  const { clock, store, routers } = setup();
  const open = gate(store);
  const deadline = clock.now() + 100;
  // The first starts at once (then waits for the store); the second queues behind it.
  const first = routers.ask(1, 't', 'a', send('1'), deadline);
  const second = routers.ask(1, 't', 'a', send('2'), deadline);
  const expired = assert.rejects(second, (err: SwitchboardError) => err.code === 'timeout');
  await new Promise((r) => setImmediate(r)); // the first is now inside the store's append
  clock.advance(200);
  open();
  assert.equal((await first).seq, 1, 'work already started is finished, deadline or not');
  await expired;
  assert.deepEqual(
    store.rows.map((r) => r.cmid),
    ['1'],
    'the expired send wrote nothing',
  );
  assert.equal(routers.stats().expired, 1);
  // The caller's retry with the same cmid is processed normally, at the next seq.
  assert.equal((await routers.ask(1, 't', 'a', send('2'), clock.now() + 100)).seq, 2);
  routers.close();
});
