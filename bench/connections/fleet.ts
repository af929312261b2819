/**
 * The orchestrator's side of the connections load: forks one generator per planned range, starts the
 * ramp on a common instant, and folds the generators' per-second ticks into one timeline.
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
import type {
  ConnAcked,
  ConnClosed,
  ConnFromChild,
  ConnInit,
  ConnRampDone,
  ConnTick,
  ConnToChild,
} from './messages.js';
import type { ConnectionsPlan } from './plan.js';

const GENERATOR_PATH = fileURLToPath(new URL('./generator.js', import.meta.url));
const RAMP_START_DELAY_MS = 1000;

export interface ConnSecond {
  t: number;
  opened: number;
  failed: number;
  open: number;
  dropped: number;
  reconnected: number;
  reconnectFailed: number;
  pingsSent: number;
  pongs: number;
  rtt: LatencySummary;
  sent: number;
  acked: number;
  delivered: number;
  pending: number;
  ackLatency: LatencySummary;
  deliveryLatency: LatencySummary;
  maxGeneratorElu: number;
}

interface SecondAgg {
  ticks: Map<number, ConnTick>;
  rtt: Histogram;
  ack: Histogram;
  delivery: Histogram;
}

export type FleetInit = Omit<
  ConnInit,
  | 'type'
  | 'generator'
  | 'from'
  | 'to'
  | 'localAddress'
  | 'sourceAddresses'
  | 'rampRate'
  | 'senders'
  | 'sendRate'
> & {
  totalRampRate: number;
  totalSenders: number;
  totalSendRate: number;
};

export class Fleet {
  private readonly seconds = new Map<number, SecondAgg>();
  private readonly points: ConnSecond[] = [];
  private readonly latest = new Map<number, ConnTick>();
  private handlers: ((m: ConnFromChild) => void)[] = [];
  private failure: Error | undefined;
  private failWaiters: ((e: Error) => void)[] = [];
  private stopping = false;
  /** Ack and delivery latencies since beginWindow(), merged over generators. */
  private window: { ack: Histogram; delivery: Histogram } | undefined;
  /** Epoch ms of the ramp's t = 0. */
  startAt = 0;

  private constructor(private readonly children: ChildHandle<ConnToChild, ConnFromChild>[]) {
    for (const [g, c] of children.entries()) {
      c.onMessage((m) => {
        if (m.type === 'tick') this.onTick(m);
        if (m.type === 'fatal') this.fail(new Error(`generator ${g}: ${m.message}`));
        for (const h of this.handlers) h(m);
      });
    }
    children.forEach((c, g) => {
      void c.exited.then((e) =>
        this.fail(new Error(`generator ${g} exited (${e.code ?? e.signal}):\n${c.stderrTail()}`)),
      );
    });
  }

  private fail(e: Error): void {
    if (this.stopping) return;
    this.failure ??= e;
    for (const w of this.failWaiters) w(e);
  }

  static async start(plan: ConnectionsPlan, init: FleetInit): Promise<Fleet> {
    const children = plan.ranges.map(() => forkChild<ConnToChild, ConnFromChild>(GENERATOR_PATH));
    const fleet = new Fleet(children);
    children.forEach((c, g) => {
      const r = plan.ranges[g]!;
      c.send({
        ...init,
        type: 'init',
        generator: g,
        from: r.from,
        to: r.to,
        localAddress: r.localAddress,
        sourceAddresses: r.sourceAddresses,
        rampRate: init.totalRampRate > 0 ? (init.totalRampRate * (r.to - r.from)) / plan.target : 0,
        senders: share(init.totalSenders, g, children.length),
        sendRate:
          (init.totalSendRate * share(init.totalSenders, g, children.length)) /
          Math.max(1, init.totalSenders),
      });
    });
    await fleet.collect('ready', children.length);
    return fleet;
  }

  pids(): number[] {
    return this.children.filter((c) => c.isRunning()).map((c) => c.pid);
  }

  /** Resolves with `count` messages of `type` (one per generator); rejects when a generator fails. */
  private collect<T extends ConnFromChild['type']>(
    type: T,
    count: number,
  ): Promise<Extract<ConnFromChild, { type: T }>[]> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const got: Extract<ConnFromChild, { type: T }>[] = [];
      this.failWaiters.push(reject);
      this.handlers.push((m) => {
        if (m.type !== type) return;
        got.push(m as Extract<ConnFromChild, { type: T }>);
        if (got.length === count) resolve(got);
      });
    });
  }

  /** Starts the ramp on a common instant; resolves when every generator has tried all its sockets. */
  async ramp(): Promise<ConnRampDone[]> {
    this.startAt = Date.now() + RAMP_START_DELAY_MS;
    const done = this.collect('ramp-done', this.children.length);
    for (const c of this.children) c.send({ type: 'ramp', startAt: this.startAt });
    return done;
  }

  /** Starts collecting ack and delivery latencies (ticks that arrive from now on). */
  beginWindow(): void {
    this.window = { ack: newHistogram(), delivery: newHistogram() };
  }

  /** The latencies collected since beginWindow(); stops collecting. */
  endWindow(): { ack: LatencySummary; delivery: LatencySummary } {
    const w = this.window ?? { ack: newHistogram(), delivery: newHistogram() };
    this.window = undefined;
    return { ack: summarize(w.ack), delivery: summarize(w.delivery) };
  }

  /** Senders start or stop sending new messages. */
  setSending(on: boolean): void {
    for (const c of this.children) c.send({ type: 'send', on });
  }

  /** Every acknowledged message of every generator. */
  async acked(): Promise<ConnAcked[]> {
    const done = this.collect('acked', this.children.length);
    for (const c of this.children) c.send({ type: 'acked' });
    return done;
  }

  async closeAll(): Promise<ConnClosed[]> {
    const done = this.collect('closed', this.children.length);
    for (const c of this.children) c.send({ type: 'close' });
    return done;
  }

  /** The sum of every generator's latest tick (opened, open, … now). */
  current(): {
    opened: number;
    failed: number;
    open: number;
    dropped: number;
    reconnected: number;
    reconnectFailed: number;
    reconnectFailures: Record<string, number>;
    pending: number;
    startedSenders: number;
    elu: number;
  } {
    const all = [...this.latest.values()];
    const sum = (f: (t: ConnTick) => number): number => all.reduce((a, t) => a + f(t), 0);
    return {
      opened: sum((t) => t.opened),
      failed: sum((t) => t.failed),
      open: sum((t) => t.open),
      dropped: sum((t) => t.dropped),
      reconnected: sum((t) => t.reconnected),
      reconnectFailed: sum((t) => t.reconnectFailed),
      reconnectFailures: sumRecords(all.map((t) => t.reconnectFailures)),
      pending: sum((t) => t.pending),
      startedSenders: sum((t) => t.startedSenders),
      elu: Math.max(0, ...all.map((t) => t.elu)),
    };
  }

  private onTick(t: ConnTick): void {
    this.latest.set(t.generator, t);
    let s = this.seconds.get(t.second);
    if (!s) {
      s = { ticks: new Map(), rtt: newHistogram(), ack: newHistogram(), delivery: newHistogram() };
      this.seconds.set(t.second, s);
    }
    s.ticks.set(t.generator, t);
    addEncoded(s.rtt, t.rtt);
    addEncoded(s.ack, t.ackLatency);
    addEncoded(s.delivery, t.deliveryLatency);
    if (this.window) {
      addEncoded(this.window.ack, t.ackLatency);
      addEncoded(this.window.delivery, t.deliveryLatency);
    }
    if (s.ticks.size === this.children.length) {
      this.points.push(toSecond(t.second, s));
      this.seconds.delete(t.second);
    }
  }

  /** Seconds every generator has reported, in order. */
  timeline(): ConnSecond[] {
    return [...this.points].sort((a, b) => a.t - b.t);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.children.map((c) => c.stop()));
  }
}

function toSecond(t: number, s: SecondAgg): ConnSecond {
  const ticks = [...s.ticks.values()];
  const sum = (f: (x: ConnTick) => number): number => ticks.reduce((a, x) => a + f(x), 0);
  return {
    t,
    opened: sum((x) => x.opened),
    failed: sum((x) => x.failed),
    open: sum((x) => x.open),
    dropped: sum((x) => x.dropped),
    reconnected: sum((x) => x.reconnected),
    reconnectFailed: sum((x) => x.reconnectFailed),
    pingsSent: sum((x) => x.pingsSent),
    pongs: sum((x) => x.pongs),
    rtt: summarize(s.rtt),
    sent: sum((x) => x.sent),
    acked: sum((x) => x.acked),
    delivered: sum((x) => x.delivered),
    pending: sum((x) => x.pending),
    ackLatency: summarize(s.ack),
    deliveryLatency: summarize(s.delivery),
    maxGeneratorElu: Math.max(0, ...ticks.map((x) => x.elu)),
  };
}

/** Generator g's share of `total` (as even as whole numbers allow). */
function share(total: number, g: number, generators: number): number {
  return Math.floor((total * (g + 1)) / generators) - Math.floor((total * g) / generators);
}

export function mergeEncoded(list: readonly string[]): LatencySummary {
  const h = newHistogram();
  for (const e of list) addEncoded(h, e);
  return summarize(h);
}

/** Counts by key (a reason, a worker), summed over generators. */
export function sumRecords(list: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of list) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}
