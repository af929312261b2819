/**
 * The agent actor's timer (actors/agent.ts) with a simulated clock and a queue that can fail: a check
 * whose ask of the queue fails is armed again before its error leaves (it used to leave the agent
 * without a timer, checked again only when something else asked it), and a change of connectivity the
 * queue was not told of is told at the next check.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AGENT_CHECK_RETRY_MS,
  type AgentContext,
  type AgentLimits,
  type AgentMessage,
  type AgentState,
  agentBehaviour,
  initialAgentState,
  stopAgent,
} from '../../actors/agent.js';
import type { QueueMessage } from '../../actors/queue.js';
import { SwitchboardError } from '../../src/protocol/errors.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

const LIMITS: AgentLimits = {
  defaultCapacity: 3,
  maxCapacity: 50,
  maxSkills: 8,
  graceMs: 30_000,
  presenceTtlMs: 20_000,
};

function setup() {
  const clock = new SimulatedClock();
  const asked: QueueMessage[] = [];
  const timers: Array<{ ms: number; msg: AgentMessage }> = [];
  const queue = { down: false };
  const ctx: AgentContext = {
    chat: { saveAgent: async () => {} },
    clock,
    fence: () => clock.now(),
    askQueue: async (m) => {
      if (queue.down) throw new SwitchboardError('timeout', 'the queue did not answer');
      asked.push(m);
      return { load: 0 };
    },
    later: (ms, msg) => {
      timers.push({ ms, msg });
      // Never fires: the test delivers the message itself. Unref'd, so it never holds the process.
      return setTimeout(() => {}, 1 << 30).unref();
    },
  };
  const state: AgentState = initialAgentState('t1', 'lin', null, LIMITS, clock.now());
  return { clock, asked, timers, queue, ctx, state };
}

test('agent actor - a check whose agentLost ask fails is armed again and reports the loss at the retry', async () => {
  const { clock, asked, timers, queue, ctx, state } = setup();
  await agentBehaviour(state, { type: 'presence', node: 'n1', sockets: 1 }, ctx);
  await agentBehaviour(state, { type: 'presence', node: 'n1', sockets: 0 }, ctx);
  assert.deepEqual(timers.at(-1), { ms: LIMITS.graceMs, msg: { type: 'check' } });
  clock.advance(LIMITS.graceMs);
  queue.down = true;
  await assert.rejects(agentBehaviour(state, { type: 'check' }, ctx), /queue did not answer/);
  assert.ok(state.timer, 'a timer is armed after the failed check');
  assert.deepEqual(timers.at(-1), { ms: AGENT_CHECK_RETRY_MS, msg: { type: 'check' } });
  assert.equal(state.lostReported, false);

  queue.down = false;
  clock.advance(AGENT_CHECK_RETRY_MS);
  await agentBehaviour(state, { type: 'check' }, ctx);
  assert.deepEqual(asked.at(-1), { type: 'agentLost', agent: 'lin' });
  assert.equal(state.lostReported, true);
  stopAgent(state);
});

test('agent actor - a connectivity change the queue missed is reported at the next check', async () => {
  const { clock, asked, queue, ctx, state } = setup();
  queue.down = true;
  // Connected on n1: the report of the change fails, the presence message with it.
  await assert.rejects(agentBehaviour(state, { type: 'presence', node: 'n1', sockets: 1 }, ctx));
  assert.equal(state.connected, true);
  assert.equal(state.reportDue, true);
  assert.ok(state.timer, 'the presence check is armed before the report');

  queue.down = false;
  clock.advance(LIMITS.presenceTtlMs / 2);
  await agentBehaviour(state, { type: 'check' }, ctx);
  const last = asked.at(-1) as Extract<QueueMessage, { type: 'agent' }>;
  assert.equal(last.type, 'agent');
  assert.equal(last.connected, true, 'the queue now knows the agent is connected');
  assert.equal(state.reportDue, false);

  // Nothing changed since: the next check asks nothing.
  const n = asked.length;
  clock.advance(LIMITS.presenceTtlMs / 4);
  await agentBehaviour(state, { type: 'check' }, ctx);
  assert.equal(asked.length, n);
  stopAgent(state);
});
