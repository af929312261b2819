/**
 * Entry point of one e2e generator process (forked by the orchestrator): receives `init`, opens its
 * sockets and conversations, answers `ready`, then runs each `phase` it is sent, reporting one `tick`
 * per second and a `phase-done` with the measured window's totals.
 */
import { performance } from 'node:perf_hooks';
import { parentChannel } from '../lib/children.js';
import { ConversationLoad } from './conversations.js';
import type { E2eFromChild, E2eInit, E2ePhase, E2eToChild } from './messages.js';

let load: ConversationLoad | undefined;
let init: E2eInit | undefined;
// Phases run one after another even if the orchestrator sends the next one early.
let queue: Promise<void> = Promise.resolve();

const parent = parentChannel<E2eToChild, E2eFromChild>((msg) => {
  if (msg.type === 'init') {
    init = msg;
    load = new ConversationLoad(msg, (p) => parent.send(p));
    load.setup().then(
      (ready) => parent.send(ready),
      (err: unknown) => fatal(err),
    );
  } else if (msg.type === 'end-phase') {
    load?.endPhase();
  } else {
    queue = queue.then(() => runPhase(msg)).catch(fatal);
  }
});

function fatal(err: unknown): void {
  parent.send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

async function runPhase(ph: E2ePhase): Promise<void> {
  if (!load || !init) throw new Error('phase before init');
  const l = load;
  const generator = init.generator;
  let elu = performance.eventLoopUtilization();
  await l.runPhase(ph, (second, measured) => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    parent.send({
      type: 'tick',
      generator,
      phase: ph.phase,
      second,
      elu: u,
      ...l.recorder.takeTick(u, measured),
    });
  });
  parent.send({ type: 'phase-done', generator, phase: ph.phase, ...l.recorder.takePhase() });
}
