/**
 * The fault schedule: which faults, on which target, how long each is held and how long the load runs
 * after it before the next. `short` holds every fault once (bounded, for CI); `soak` repeats cycles of all
 * of them, in a seeded order, until the duration is spent. Building a schedule is pure; `injectFault`
 * applies one step to the running processes and network and always undoes it (SIGCONT, heal, restart).
 */
import type { Network } from './netns.js';
import { type BrokerNode, type JetStreamPlacement, jetStreamPlacement, type Servers } from './topology.js';

export const FAULT_KINDS = [
  'kill-broker',
  'pause-broker',
  'partition-broker',
  'pause-cassandra',
  'kill-nats',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const DEFAULT_LEASE_TTL_MS = 6000;
const CASSANDRA_PAUSE_MS = 15_000;
const PARTITION_MS = 20_000;
const BROKER_DOWN_MS = 5000;
const NATS_DOWN_MS = 15_000;
/** Acking resumed ~7 s after the restart of the server holding every stream (R1): watch past that. */
const NATS_OBSERVE_MS = 15_000;
const PARTITION_OBSERVE_MS = 20_000;
/** After SIGCONT a paused broker is past its lease by this much at least. */
const PAUSE_PAST_LEASE_FACTOR = 2;

export interface FaultStep {
  kind: FaultKind;
  /** Broker index, nats-server index, or 0 for Cassandra. */
  target: number;
  /** How long the fault is held (down, paused, cut). */
  holdMs: number;
  /** Load without faults after the fault ends, before the next step. */
  observeMs: number;
}

export interface Schedule {
  name: 'short' | 'soak';
  seed: number;
  steps: FaultStep[];
  /** soak: no step starts after this many ms of faults. */
  durationMs: number | undefined;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** One of each fault, brokers chosen by the seed; every nats-server in turn. */
function cycle(
  random: () => number,
  o: { brokers: number; natsServers: number; leaseTtlMs: number; observeMs: number; shuffled: boolean },
): FaultStep[] {
  const b = shuffle([...Array(o.brokers).keys()], random);
  const pick = (i: number): number => b[i % b.length]!;
  const broker: FaultStep[] = [
    { kind: 'kill-broker', target: pick(0), holdMs: BROKER_DOWN_MS, observeMs: o.observeMs },
    {
      kind: 'pause-broker',
      target: pick(1),
      holdMs: o.leaseTtlMs * PAUSE_PAST_LEASE_FACTOR,
      observeMs: o.observeMs,
    },
    // Issue #12 saw the conflicts 10-12 s after the heal: watch longer than that.
    {
      kind: 'partition-broker',
      target: pick(2),
      holdMs: PARTITION_MS,
      observeMs: Math.max(o.observeMs, PARTITION_OBSERVE_MS),
    },
  ];
  const cassandra: FaultStep = {
    kind: 'pause-cassandra',
    target: 0,
    holdMs: CASSANDRA_PAUSE_MS,
    observeMs: o.observeMs,
  };
  const nats: FaultStep[] = [...Array(o.natsServers).keys()].map((i) => ({
    kind: 'kill-nats',
    target: i,
    holdMs: NATS_DOWN_MS,
    observeMs: Math.max(o.observeMs, NATS_OBSERVE_MS),
  }));
  // Short: the Cassandra pause comes after the broker faults so conversations are past the broker's
  // recent-cmid window (256), where issue #12's uncertain write was seen.
  return o.shuffled ? shuffle([...broker, cassandra, ...nats], random) : [...broker, cassandra, ...nats];
}

export function buildSchedule(
  name: 'short' | 'soak',
  random: () => number,
  o: { seed: number; brokers: number; natsServers: number; leaseTtlMs: number; durationMs?: number },
): Schedule {
  if (name === 'short') {
    return {
      name,
      seed: o.seed,
      steps: cycle(random, { ...o, observeMs: 8000, shuffled: false }),
      durationMs: undefined,
    };
  }
  const durationMs = o.durationMs ?? 30 * 60_000;
  // Enough cycles to fill the duration; the runner stops starting steps once it is spent.
  const steps: FaultStep[] = [];
  const cycles = Math.max(1, Math.ceil(durationMs / 90_000));
  for (let i = 0; i < cycles; i++) steps.push(...cycle(random, { ...o, observeMs: 15_000, shuffled: true }));
  return { name, seed: o.seed, steps, durationMs };
}

/** What happened at one step, times in ms since the run's t0. */
export interface FaultEvent {
  kind: FaultKind;
  target: string;
  /** Fault injected. */
  startMs: number;
  /** Fault undone (restarted and ready, SIGCONT, healed). */
  endMs: number;
  /** End of the observation after it (start of the next step). */
  untilMs: number;
  notes: string[];
  /** Set when undoing the fault failed (e.g. a restart that did not come up). */
  error?: string;
}

export interface FaultContext {
  brokers: readonly BrokerNode[];
  servers: Servers;
  network: Network;
  now(): number;
  say(line: string): void;
  signal: AbortSignal;
}

function describeTarget(step: FaultStep, ctx: FaultContext): string {
  switch (step.kind) {
    case 'kill-broker':
    case 'pause-broker':
    case 'partition-broker':
      return ctx.brokers[step.target]?.nodeId ?? `broker ${step.target}`;
    case 'pause-cassandra':
      return 'cassandra';
    case 'kill-nats':
      return ctx.servers.nats.servers[step.target]?.serverName ?? `nats ${step.target}`;
  }
}

/** Sleeps `ms`, or less when the run is aborted. */
function hold(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function leadersOn(p: JetStreamPlacement, server: string): string[] {
  return Object.entries(p.streamLeaders)
    .filter(([, leader]) => leader === server)
    .map(([stream]) => stream)
    .sort();
}

/**
 * Injects one fault, holds it, undoes it, then lets the load run for the step's observation time.
 * Never leaves the fault in place: the undo runs in `finally`.
 */
export async function injectFault(step: FaultStep, ctx: FaultContext): Promise<FaultEvent> {
  const target = describeTarget(step, ctx);
  const notes: string[] = [];
  let error: string | undefined;
  let startMs = ctx.now();
  ctx.say(`fault: ${step.kind} ${target} for ${(step.holdMs / 1000).toFixed(0)} s`);
  switch (step.kind) {
    case 'kill-broker': {
      const b = ctx.brokers[step.target]!;
      startMs = ctx.now();
      b.signal('SIGKILL');
      await b.exited();
      try {
        await hold(step.holdMs, ctx.signal);
      } finally {
        const t = ctx.now();
        await b.start().catch((err: unknown) => {
          error = `restart failed: ${(err as Error).message}`;
        });
        notes.push(`restarted in ${((ctx.now() - t) / 1000).toFixed(1)} s`);
      }
      break;
    }
    case 'pause-broker': {
      const b = ctx.brokers[step.target]!;
      startMs = ctx.now();
      b.signal('SIGSTOP');
      try {
        await hold(step.holdMs, ctx.signal);
      } finally {
        b.signal('SIGCONT');
      }
      break;
    }
    case 'partition-broker': {
      const b = ctx.brokers[step.target]!;
      startMs = ctx.now();
      ctx.network.cutFromNats(b.host);
      try {
        await hold(step.holdMs, ctx.signal);
      } finally {
        ctx.network.heal(b.host);
      }
      notes.push(`${b.nodeId} (${b.host.address}) cut from NATS; Cassandra and its client sockets reachable`);
      break;
    }
    case 'pause-cassandra': {
      startMs = ctx.now();
      ctx.servers.cassandra.signal('SIGSTOP');
      try {
        await hold(step.holdMs, ctx.signal);
      } finally {
        ctx.servers.cassandra.signal('SIGCONT');
      }
      break;
    }
    case 'kill-nats': {
      const s = ctx.servers.nats.servers[step.target]!;
      const placement = await jetStreamPlacement(ctx.servers.natsMonitorUrls);
      const led = leadersOn(placement, s.serverName);
      if (placement.metaLeader === s.serverName) notes.push('JetStream meta leader');
      notes.push(led.length > 0 ? `stream leader of ${led.join(', ')}` : 'leader of no stream');
      startMs = ctx.now();
      s.signal('SIGKILL');
      try {
        await hold(step.holdMs, ctx.signal);
      } finally {
        const t = ctx.now();
        try {
          await s.restart();
          await ctx.servers.nats.waitForRoutes();
          notes.push(`restarted and routed in ${((ctx.now() - t) / 1000).toFixed(1)} s`);
        } catch (err) {
          error = `restart failed: ${(err as Error).message.split('\n')[0]}`;
        }
      }
      break;
    }
  }
  const endMs = ctx.now();
  await hold(step.observeMs, ctx.signal);
  const event: FaultEvent = { kind: step.kind, target, startMs, endMs, untilMs: ctx.now(), notes };
  if (error !== undefined) event.error = error;
  return event;
}
