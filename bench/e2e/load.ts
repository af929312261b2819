/**
 * The orchestrator's side of the e2e load: forks the generator processes, hands each a whole number of
 * agents (with their conversations), waits for their sockets and conversations, then runs phases at an
 * offered rate and merges what the generators report into one PhaseResult.
 */
import { fileURLToPath } from 'node:url';
import { type ChildHandle, forkChild } from '../lib/children.js';
import {
  addEncoded,
  type Histogram,
  type LatencySummary,
  newHistogram,
  summarize,
} from '../lib/histogram.js';
import type { BrokerTarget } from '../lib/target.js';
import {
  addCounts,
  type Counts,
  type E2eFromChild,
  type E2eReady,
  type E2eToChild,
  emptyCounts,
  type Population,
} from './messages.js';

const GENERATOR_PATH = fileURLToPath(new URL('./generator.js', import.meta.url));
/** Lead time so every generator has its phase message before message 0 is due. */
const PHASE_START_DELAY_MS = 1000;
const PHASE_REPLY_MARGIN_MS = 60_000;

export interface LoadShape {
  conversations: number;
  convsPerAgent: number;
  agentsPerTenant: number;
  generators: number;
  bodyChars: number;
  ackTimeoutMs: number;
  setupConcurrency: number;
}

export interface SetupSummary {
  sockets: number;
  conversations: number;
  conversationsFailed: number;
  socketFailures: Record<string, number>;
  byWorker: Record<string, number>;
  setupMs: number;
}

export interface SecondPoint {
  /** Seconds since the phase's start (the warm-up included). */
  t: number;
  measured: boolean;
  counts: Counts;
  ack: LatencySummary;
  delivery: LatencySummary;
  maxSendLagMs: number;
  /** Busiest generator's event-loop utilisation in this second. */
  maxGeneratorElu: number;
}

export interface PhaseResult {
  phase: number;
  offeredRate: number;
  startAt: number;
  endAt: number;
  warmupMs: number;
  /** The measured window as run (shorter than asked when ended early). */
  measuredMs: number;
  counts: Counts;
  ack: LatencySummary;
  delivery: LatencySummary;
  /** How late the generators sent measured messages behind their schedule. */
  sendLag: LatencySummary;
  /** Mean event-loop utilisation of each generator over the measured window. */
  generatorElu: number[];
  series: SecondPoint[];
}

interface SecondAgg {
  reports: number;
  counts: Counts;
  ack: Histogram;
  delivery: Histogram;
  maxSendLagMs: number;
  maxElu: number;
  measured: boolean;
}

export type SetupListener = (sockets: number, opened: number, failed: number) => void;

export class E2eLoad {
  private listeners: ((m: E2eFromChild) => void)[] = [];
  private phaseNo = 0;

  private constructor(
    private readonly children: ChildHandle<E2eToChild, E2eFromChild>[],
    readonly setup: SetupSummary,
  ) {
    for (const c of children) c.onMessage((m) => this.listeners.forEach((l) => l(m)));
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
    const children = Array.from({ length: g }, () => forkChild<E2eToChild, E2eFromChild>(GENERATOR_PATH));
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
              onSetup(sum((p) => p.sockets), sum((p) => p.opened), sum((p) => p.failed));
            }
          });
          void c.exited.then((e) =>
            reject(new Error(`generator ${i} exited during setup (${e.code ?? e.signal}):\n${c.stderrTail()}`)),
          );
        }),
    );
    children.forEach((c, i) => {
      const a0 = Math.floor((agents * i) / g);
      const a1 = Math.floor((agents * (i + 1)) / g);
      c.send({
        type: 'init',
        generator: i,
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
      socketFailures: {},
      byWorker: {},
      setupMs: Math.max(...ready.map((r) => r.setupMs)),
    };
    for (const r of ready) {
      setup.sockets += r.sockets;
      setup.conversations += r.conversations;
      setup.conversationsFailed += r.conversationsFailed;
      for (const [k, v] of Object.entries(r.socketFailures)) setup.socketFailures[k] = (setup.socketFailures[k] ?? 0) + v;
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
    const seconds = new Map<number, SecondAgg>();
    const total = { counts: emptyCounts(), ack: newHistogram(), delivery: newHistogram(), sendLag: newHistogram() };
    const elus: number[] = [];
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
            let s = seconds.get(m.second);
            if (!s) {
              s = { reports: 0, counts: emptyCounts(), ack: newHistogram(), delivery: newHistogram(), maxSendLagMs: 0, maxElu: 0, measured: false };
              seconds.set(m.second, s);
            }
            s.reports++;
            addCounts(s.counts, m.counts);
            addEncoded(s.ack, m.ack);
            addEncoded(s.delivery, m.delivery);
            s.maxSendLagMs = Math.max(s.maxSendLagMs, m.maxSendLagMs);
            s.maxElu = Math.max(s.maxElu, m.elu);
            s.measured = (m.second + 1) * 1000 > p.warmupMs && m.second * 1000 < p.warmupMs + p.durationMs;
            if (s.reports === n) onSecond(toPoint(m.second, s));
          } else if (m.type === 'phase-done' && m.phase === phase) {
            addCounts(total.counts, m.counts);
            addEncoded(total.ack, m.ack);
            addEncoded(total.delivery, m.delivery);
            addEncoded(total.sendLag, m.sendLag);
            elus[m.generator] = m.elu;
            if (++done === n) {
              clearTimeout(timeout);
              resolve();
            }
          }
        },
      ];
      for (const c of this.children) {
        void c.exited.then(() => reject(new Error(`a generator exited during phase ${phase}:\n${c.stderrTail()}`)));
      }
    });
    this.children.forEach((c, i) => {
      // Generator i's share; rounding leftovers go to the first ones so the total is exact.
      const share = p.rate / n;
      c.send({ type: 'phase', phase, rate: share, startAt, warmupMs: p.warmupMs, durationMs: p.durationMs, drainMs: p.drainMs });
      void i;
    });
    await finished;
    const result: PhaseResult = {
      phase,
      offeredRate: p.rate,
      startAt,
      endAt: Date.now(),
      warmupMs: p.warmupMs,
      measuredMs: (total.counts.scheduled / p.rate) * 1000,
      counts: total.counts,
      ack: summarize(total.ack),
      delivery: summarize(total.delivery),
      sendLag: summarize(total.sendLag),
      generatorElu: elus,
      series: [...seconds.entries()].sort((a, b) => a[0] - b[0]).map(([t, s]) => toPoint(t, s)),
    };
    return result;
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()));
  }
}

function toPoint(t: number, s: SecondAgg): SecondPoint {
  return {
    t,
    measured: s.measured,
    counts: s.counts,
    ack: summarize(s.ack),
    delivery: summarize(s.delivery),
    maxSendLagMs: s.maxSendLagMs,
    maxGeneratorElu: s.maxElu,
  };
}
