/**
 * ChatService.send on a conversation still waiting for an agent: the re-enqueue that heals a failed
 * first enqueue is skipped while the queue has just said it holds the conversation (issue #14), and
 * still made for every message the queue routes to the bot or to the closed desk.
 *
 * The actor runtime is replaced by a recorder of asks (the boundary ChatService is built on); the real
 * actors, NATS and Cassandra are in the integration and cluster suites.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnqueueReply } from '../../actors/queue.js';
import { type ActorAsker, ChatService } from '../../src/chat/service.js';
import { QUEUE_ACTOR_ID } from '../../src/routing/actor-kind.js';

interface Harness {
  chat: ChatService;
  enqueues: string[];
  routed: EnqueueReply[];
}

function harness(
  enqueueReply: (conv: string) => EnqueueReply | Error,
  limits: { queuedMemoMax?: number; queuedMemoMs?: number } = {},
): Harness {
  const enqueues: string[] = [];
  const routed: EnqueueReply[] = [];
  let seq = 0;
  const actors: ActorAsker = {
    async ask(_tenant, id, msg) {
      const m = msg as { type: string; conv?: string };
      if (id === QUEUE_ACTOR_ID) {
        enqueues.push(m.conv!);
        const r = enqueueReply(m.conv!);
        if (r instanceof Error) throw r;
        return r;
      }
      if (m.type === 'send') return { seq: ++seq, queued: true };
      if (m.type === 'view') return { conv: id, status: 'queued', visitor: 'v1', skill: null, agent: null };
      throw new Error(`unexpected ${m.type}`);
    },
  };
  const chat = new ChatService(
    actors,
    { listOpen: async () => [] },
    { maxOpenListed: 10, ...limits },
    () => {},
  );
  chat.attachReception({ routed: (_t, reply) => routed.push(reply) });
  return { chat, enqueues, routed };
}

const send = (h: Harness, conv: string, n: number) =>
  h.chat.send('t1', conv, { user: 'v1', role: 'visitor' }, `m${n}`, `hello ${n}`);

test('chat requeue - a conversation the queue holds is asked once, then again after the memo expires', async () => {
  const h = harness((conv) => ({ conv, agent: null, position: 3 }), { queuedMemoMs: 200 });
  for (let i = 0; i < 5; i++) await send(h, 'c1', i);
  assert.deepEqual(h.enqueues, ['c1'], 'one re-enqueue for five messages');
  await sleep(300);
  await send(h, 'c1', 5);
  assert.deepEqual(h.enqueues, ['c1', 'c1'], 'asked again once the memo expired (the heal still runs)');
});

test('chat requeue - messages routed to the bot or the closed desk are enqueued every time', async () => {
  for (const route of ['bot', 'closed'] as const) {
    const h = harness((conv) => ({ conv, agent: null, position: null, route }));
    for (let i = 0; i < 4; i++) await send(h, 'c1', i);
    assert.equal(h.enqueues.length, 4, `${route}: every message goes to the queue`);
    assert.equal(h.routed.length, 4, `${route}: and to reception`);
  }
});

test('chat requeue - a failed re-enqueue is tried again on the next message', async () => {
  let fail = true;
  const h = harness((conv) => (fail ? new Error('no answer') : { conv, agent: null, position: 1 }));
  await send(h, 'c1', 0);
  fail = false;
  await send(h, 'c1', 1);
  await send(h, 'c1', 2);
  assert.deepEqual(h.enqueues, ['c1', 'c1'], 'the failure is not remembered; the success is');
});

test('chat requeue - at its limit the memo forgets the oldest conversation, which is asked again', async () => {
  const h = harness((conv) => ({ conv, agent: null, position: 1 }), { queuedMemoMax: 2 });
  await send(h, 'a', 0);
  await send(h, 'b', 0);
  await send(h, 'c', 0);
  await send(h, 'a', 1);
  await send(h, 'c', 1);
  assert.deepEqual(
    h.enqueues,
    ['a', 'b', 'c', 'a'],
    "'a' was evicted by 'c' and is healed again; 'c' is remembered",
  );
});
