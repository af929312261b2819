/**
 * The orchestrator's side of the e2e load: forks the generator processes, hands each a whole number of
 * agents (with their conversations), waits for their sockets and conversations, then runs phases at an
 * offered rate and merges what the generators report into one PhaseResult.
 */
import { fileURLToPath } from 'node:url';
import { type ChildHandle, forkChild } from '../lib/children.js';
import type { BrokerTarget } from '../lib/target.js';
import { PhaseAggregator, type PhaseResult, type SecondPoint } from './aggregate.js';
import type { E2eFromChild, E2eReady, E2eToChild, Population } from './messages.js';

export type { PhaseResult, SecondPoint } from './aggregate.js';

const GENERATOR_PATH = fileURLToPath(new URL('./generator.js', import.meta.url));
/** Lead time so every generator has its phase message before message 0 is due. */
export const PHASE_START_DELAY_MS = 1000;
const PHASE_REPLY_MARGIN_MS = 60_000;

export interface LoadShape {
  conversations: number;
  convsPerAgent: number;
  agentsPerTenant: number;
  generators: number;
  bodyChars: number;
  ackTimeoutMs: number;
  setupConcurrency: number;
  /** Profile the generator processes (--cpu-prof, whole lifetime) into this folder. */
  generatorProfileDir?: string;
}

export interface SetupSummary {
  sockets: number;
  conversations: number;
  conversationsFailed: number;
  conversationFailures: Record<string, number>;
  socketFailures: Record<string, number>;
  byWorker: Record<string, number>;
  setupMs: number;
}

export type SetupListener = (sockets: number, opened: number, failed: number) => void;

export class E2eLoad {
  private listeners: ((m: E2eFromChild) => void)[] = [];
  private phaseNo = 0;

  private constructor(
    private readonly children: ChildHandle<E2eToChild, E2eFromChild>[],
    readonly setup: SetupSummary,
  ) {
    for (const c of children) {
      c.onMessage((m) => {
        for (const l of this.listeners) l(m);
      });
    }
  }

  /** Forks the generators and resolves once all their conversations are open. */
  static async start(
    target: BrokerTarget,
    population: Population,
    shape: LoadShape,
    onSetup: SetupListener,
  ): Promise<E2eLoad> {
    const agents = Math.ceil(shape.conversations / shape.convsPerAgent);
    const g = Math.max(1, Math.min(shape.generators, agents));
    const execArgv = shape.generatorProfileDir
      ? ['--cpu-prof', '--cpu-prof-dir', shape.generatorProfileDir]
      : [];
    const children = Array.from({ length: g }, () =>
      forkChild<E2eToChild, E2eFromChild>(GENERATOR_PATH, [], execArgv),
    );
    const progress = new Map<number, { sockets: number; opened: number; failed: number }>();
    const readies = children.map(
      (c, i) =>
        new Promise<E2eReady>((resolve, reject) => {
          c.onMessage((m) => {
            if (m.type === 'ready') resolve(m);
            else if (m.type === 'fatal') reject(new Error(`generator ${i}: ${m.message}`));
            else if (m.type === 'setup-progress') {
              progress.set(i, m);
              const all = [...progress.values()];
              const sum = (f: (p: { sockets: number; opened: number; failed: number }) => number): number =>
                all.reduce((a, p) => a + f(p), 0);
              onSetup(
                sum((p) => p.sockets),
                sum((p) => p.opened),
                sum((p) => p.failed),
              );
            }
          });
          void c.exited.then((e) =>
            reject(
              new Error(`generator ${i} exited during setup (${e.code ?? e.signal}):\n${c.stderrTail()}`),
            ),
          );
        }),
    );
    children.forEach((c, i) => {
      const a0 = Math.floor((agents * i) / g);
      const a1 = Math.floor((agents * (i + 1)) / g);
      c.send({
        type: 'init',
        generator: i,
        client: target.client ?? { protocol: 'switchboard' },
        population,
        nodes: target.nodes.map((n) => n.wsBase),
        jwtSecret: target.jwtSecret,
        convFrom: a0 * shape.convsPerAgent,
        convTo: Math.min(shape.conversations, a1 * shape.convsPerAgent),
        bodyChars: shape.bodyChars,
        ackTimeoutMs: shape.ackTimeoutMs,
        setupConcurrency: shape.setupConcurrency,
      });
    });
    let ready: E2eReady[];
    try {
      ready = await Promise.all(readies);
    } catch (err) {
      await Promise.all(children.map((c) => c.stop()));
      throw err;
    }
    const setup: SetupSummary = {
      sockets: 0,
      conversations: 0,
      conversationsFailed: 0,
      conversationFailures: {},
      socketFailures: {},
      byWorker: {},
      setupMs: Math.max(...ready.map((r) => r.setupMs)),
    };
    for (const r of ready) {
      setup.sockets += r.sockets;
      setup.conversations += r.conversations;
      setup.conversationsFailed += r.conversationsFailed;
      for (const [k, v] of Object.entries(r.socketFailures))
        setup.socketFailures[k] = (setup.socketFailures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.conversationFailures))
        setup.conversationFailures[k] = (setup.conversationFailures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.byWorker)) setup.byWorker[k] = (setup.byWorker[k] ?? 0) + v;
    }
    return new E2eLoad(children, setup);
  }

  generatorPids(): number[] {
    return this.children.filter((c) => c.isRunning()).map((c) => c.pid);
  }

  /** Ends the running phase early (its outstanding messages are still drained). */
  endPhase(): void {
    for (const c of this.children) c.send({ type: 'end-phase' });
  }

  /** Runs one phase at `rate` msg/s in total; `onSecond` sees each second once every generator reported it. */
  async runPhase(
    p: { rate: number; warmupMs: number; durationMs: number; drainMs: number },
    onSecond: (point: SecondPoint) => void = () => {},
  ): Promise<PhaseResult> {
    const phase = this.phaseNo++;
    const startAt = Date.now() + PHASE_START_DELAY_MS;
    const n = this.children.length;
    const agg = new PhaseAggregator(n, p.warmupMs, p.durationMs);
    let done = 0;
    const finished = new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () => reject(new Error(`generators did not finish phase ${phase} in time`)),
        PHASE_START_DELAY_MS + p.warmupMs + p.durationMs + p.drainMs + PHASE_REPLY_MARGIN_MS,
      );
      this.listeners = [
        (m) => {
          if (m.type === 'fatal') reject(new Error(`generator: ${m.message}`));
          if (m.type === 'tick' && m.phase === phase) {
            const point = agg.tick(m);
            if (point) onSecond(point);
          } else if (m.type === 'phase-done' && m.phase === phase) {
            agg.done(m);
            if (++done === n) {
              clearTimeout(timeout);
              resolve();
            }
          }
        },
      ];
      for (const c of this.children) {
        void c.exited.then(() =>
          reject(new Error(`a generator exited during phase ${phase}:\n${c.stderrTail()}`)),
        );
      }
    });
    // Each generator offers an equal share; the schedules interleave, so the sum is a steady p.rate.
    for (const c of this.children) {
      c.send({
        type: 'phase',
        phase,
        rate: p.rate / n,
        startAt,
        warmupMs: p.warmupMs,
        durationMs: p.durationMs,
        drainMs: p.drainMs,
      });
    }
    await finished;
    return agg.result(phase, p.rate, startAt);
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()));
  }
}
