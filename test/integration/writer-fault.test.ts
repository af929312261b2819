/**
 * Writer failure: Cassandra stops answering in the middle of a run (SIGSTOP of a private Cassandra this
 * test starts on its own ports and data folder; the shared test Cassandra is never touched). Senders
 * whose write cannot complete get an error, never an ack; every acked message is in history afterwards
 * at its seq, seqs stay gap-free and no cmid is stored twice.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type Ack,
  type ConversationContext,
  conversationBehaviour,
  initialState,
} from '../../actors/conversation.js';
import { type CassandraHandle, startCassandra } from '../../src/stack/cassandra.js';
import { type CassandraHistoryStore, openCassandraStore } from '../../src/store/cassandra-store.js';

const TENANT = 'tf';
const CONVERSATIONS = 8;
const RETRY_DELAY_MS = 200;

let cassandra: CassandraHandle | undefined;
let dataDir = '';

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sb-writer-fault-'));
  // Ports of our own, away from the shared stack's (29042/27000/27199) and from each other's runs.
  const base = 41_000 + Math.floor(Math.random() * 4000) * 3;
  cassandra = await startCassandra({
    nativePort: base,
    storagePort: base + 1,
    jmxPort: base + 2,
    dataDir,
    heapMb: 512,
    clusterName: 'sb-writer-fault',
  });
});

after(async () => {
  cassandra?.signal('SIGCONT');
  await cassandra?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('writer - Cassandra stopped mid-run: no ack for unwritten rows, no acked row lost', {
  timeout: 120_000,
}, async () => {
  const handle = cassandra;
  assert.ok(handle);
  const store: CassandraHistoryStore = await openCassandraStore({
    contactPoints: [handle.contactPoint],
    localDataCenter: handle.localDataCenter,
    keyspace: 'writer_fault',
    requestTimeoutMs: 1000,
    writer: { maxAttempts: 2, retryBackoffMs: 50 },
  });
  let ids = 0;
  const ctx: ConversationContext = {
    store,
    clock: { now: () => Date.now() },
    fence: () => Date.now(),
    newId: () => `id-${String(++ids).padStart(8, '0')}`,
    deliver: () => {},
    chat: {
      saveMeta: async () => {},
      saveReceipt: async () => {},
      addOpen: async () => {},
      removeOpen: async () => {},
    },
    notify: () => {},
    emit: () => {},
    readMessage: (t, c, seq) => store.message(t, c, seq),
  };
  let stopping = false;
  let failures = 0;
  const acked = new Map<string, Ack[]>();
  // When each ack's send started and when it was answered (performance.now()), for the report of a
  // failed window check.
  const timings = new Map<string, { started: number; answered: number }[]>();

  // Each conversation behaves like its actor with a client in front: one message at a time, a failed
  // send retried with the same cmid until it is acked.
  async function converse(conv: string): Promise<void> {
    const state = initialState(TENANT, conv, { record: null, lastSeq: 0, recent: [] }, 64);
    const acks: Ack[] = [];
    acked.set(conv, acks);
    const times: { started: number; answered: number }[] = [];
    timings.set(conv, times);
    for (let n = 1; !stopping; n++) {
      const cmid = `m${n}`;
      for (;;) {
        try {
          const body = `order ${n} of ${conv}: 我的快递到哪里了？`;
          const started = performance.now();
          acks.push(
            (await conversationBehaviour(
              state,
              { type: 'send', sender: 'v', role: 'visitor', cmid, body },
              ctx,
            )) as Ack,
          );
          times.push({ started, answered: performance.now() });
          break;
        } catch {
          failures++;
          // Any failure (writer 'internal', 'busy', or a driver timeout of the conversation record while
          // it is created) means no ack: the client retries the same cmid.
          await sleep(RETRY_DELAY_MS);
        }
      }
    }
  }

  const running = Array.from({ length: CONVERSATIONS }, (_, i) => converse(`c${i}`));
  let ackedBeforeStop = 0;
  let ackedDuringStop = 0;
  let stoppedAt = 0;
  let resumedAt = 0;
  try {
    await sleep(1500);
    ackedBeforeStop = [...acked.values()].reduce((sum, a) => sum + a.length, 0);
    handle.signal('SIGSTOP');
    stoppedAt = performance.now();
    await sleep(3500);
    ackedDuringStop = [...acked.values()].reduce((sum, a) => sum + a.length, 0);
    resumedAt = performance.now();
    handle.signal('SIGCONT');
    await sleep(4000);
  } finally {
    // Whatever happens, the senders stop (a failing assertion must not leave them looping).
    stopping = true;
    handle.signal('SIGCONT');
  }
  try {
    await Promise.all(running);

    assert.ok(ackedBeforeStop > 0, 'messages were acked before the stop');
    assert.ok(failures > 0, 'sends failed while Cassandra was stopped');
    // Writes in flight at the stop may complete after it; nothing started after the stop was acked while
    // Cassandra was stopped: at most one ack per conversation (its in-flight write) can land in the window.
    const inWindow = [...timings].map(([conv, times]) => {
      const answered = times.filter((t) => t.answered >= stoppedAt && t.answered < resumedAt);
      const ms = (t: number) => Math.round(t - stoppedAt);
      return `${conv}: ${answered.map((t) => `sent ${ms(t.started)} ms, acked ${ms(t.answered)} ms`).join('; ')}`;
    });
    assert.ok(
      ackedDuringStop - ackedBeforeStop <= CONVERSATIONS,
      `no acks while Cassandra was stopped: ${ackedDuringStop - ackedBeforeStop} in the ${Math.round(resumedAt - stoppedAt)} ms window (times from the SIGSTOP) - ${inWindow.join(' | ')}`,
    );
    const ackedAfter = [...acked.values()].reduce((sum, a) => sum + a.length, 0);
    assert.ok(ackedAfter > ackedDuringStop, 'sends succeed again after Cassandra resumed');
    assert.ok(store.stats().failed > 0 && store.stats().retries > 0);

    for (const [conv, acks] of acked) {
      const stored = [];
      for (let since = 0; ; ) {
        const { items, more } = await store.after(TENANT, conv, since, 500);
        stored.push(...items);
        if (!more || items.length === 0) break;
        since = items.at(-1)?.seq ?? since;
      }
      // Every acked message is stored at its seq with its id; seqs are gap-free; no cmid twice.
      const bySeq = new Map(stored.map((m) => [m.seq, m]));
      for (const ack of acks) {
        const m = bySeq.get(ack.seq);
        assert.ok(m, `${conv} acked seq ${ack.seq} is stored`);
        assert.equal(m.id, ack.id);
        assert.equal(m.cmid, ack.cmid);
      }
      assert.deepEqual(
        stored.map((m) => m.seq),
        stored.map((_, i) => i + 1),
      );
      assert.equal(new Set(stored.map((m) => m.cmid)).size, stored.length);
      assert.ok(stored.length >= acks.length && stored.length <= acks.length + 1);
    }
  } finally {
    await store.close();
  }
});
