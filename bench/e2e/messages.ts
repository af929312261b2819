/**
 * The IPC vocabulary between the e2e orchestrator and its generator processes. Histograms travel as
 * compressed base64 HDR (lossless to merge); times are epoch ms so all processes share one timeline.
 */
import type { ClientSpec } from '../lib/target.js';

/** Identity of the bench's users and conversations; shared by orchestrator and generators. */
export interface Population {
  /** Short id of the run, prefixed to every tenant, user and conversation id, so runs never collide. */
  runId: string;
  convsPerAgent: number;
  agentsPerTenant: number;
}

export interface E2eInit {
  type: 'init';
  generator: number;
  /** The protocol the target speaks (Switchboard's own, or a peer's). */
  client: ClientSpec;
  population: Population;
  /** ws://host:port of each node; conversation i's visitor uses node i mod n, its agent the next one. */
  nodes: string[];
  jwtSecret: string;
  /** Conversations [from, to) belong to this generator (whole agents: from and to are multiples of convsPerAgent). */
  convFrom: number;
  convTo: number;
  bodyChars: number;
  ackTimeoutMs: number;
  /** Conversations opened (visitor's first message + agent's claim) at a time during setup. */
  setupConcurrency: number;
  localAddress?: string;
}

export interface E2ePhase {
  type: 'phase';
  phase: number;
  /** This generator's share of the offered rate, msg/s. */
  rate: number;
  /** Epoch ms at which message 0 is due; every generator starts on the same instant. */
  startAt: number;
  warmupMs: number;
  /** Measured window after the warm-up; only messages scheduled inside it enter the totals. */
  durationMs: number;
  /** After the last scheduled send, how long to wait for outstanding acks and deliveries. */
  drainMs: number;
}

/** Ends the running phase's schedule now (Ctrl-C): outstanding messages are still drained. */
export interface E2eEndPhase {
  type: 'end-phase';
}

export type E2eToChild = E2eInit | E2ePhase | E2eEndPhase;

export interface SetupProgress {
  type: 'setup-progress';
  generator: number;
  sockets: number;
  failed: number;
  opened: number;
}

export interface E2eReady {
  type: 'ready';
  generator: number;
  sockets: number;
  conversations: number;
  /** Conversations whose opening or claim failed: left out of the load. */
  conversationsFailed: number;
  /** Why, by step and answer (`open:timeout`, `claim:forbidden`, `open:no-answer`…). */
  conversationFailures: Record<string, number>;
  /** Open failures by reason (http-401, ECONNREFUSED, …). */
  socketFailures: Record<string, number>;
  /** Sockets per broker process (the `node` of welcome): shows how SO_REUSEPORT spread them. */
  byWorker: Record<string, number>;
  setupMs: number;
}

export interface Counts {
  scheduled: number;
  sent: number;
  /** Scheduled on a socket that had closed: never sent. */
  notSent: number;
  acked: number;
  delivered: number;
  /** `busy` answers received (each retried after retryAfterMs with the same cmid). */
  busy: number;
  /** Other error answers (and busy after the last retry), by code. */
  errors: Record<string, number>;
  /** No ack within the ack timeout. */
  lostAck: number;
  /** No delivery to the other side within the ack timeout. */
  lostDelivery: number;
  socketsClosed: number;
}

export function emptyCounts(): Counts {
  return {
    scheduled: 0,
    sent: 0,
    notSent: 0,
    acked: 0,
    delivered: 0,
    busy: 0,
    errors: {},
    lostAck: 0,
    lostDelivery: 0,
    socketsClosed: 0,
  };
}

export function addCounts(into: Counts, c: Counts): void {
  into.scheduled += c.scheduled;
  into.sent += c.sent;
  into.notSent += c.notSent;
  into.acked += c.acked;
  into.delivered += c.delivered;
  into.busy += c.busy;
  into.lostAck += c.lostAck;
  into.lostDelivery += c.lostDelivery;
  into.socketsClosed += c.socketsClosed;
  for (const [code, n] of Object.entries(c.errors)) into.errors[code] = (into.errors[code] ?? 0) + n;
}

export function errorTotal(c: Counts): number {
  return Object.values(c.errors).reduce((a, b) => a + b, 0);
}

/** One second of one generator (by arrival time, warm-up and drain included). */
export interface E2eTick {
  type: 'tick';
  generator: number;
  phase: number;
  /** Seconds since the phase's startAt. */
  second: number;
  counts: Counts;
  /** Latencies that completed in this second (ms from the scheduled send). */
  ack: string;
  delivery: string;
  /** Worst lateness of a send behind its schedule in this second (generator lag), ms. */
  maxSendLagMs: number;
  /** Generator event-loop utilisation in this second, 0..1. */
  elu: number;
}

export interface E2ePhaseDone {
  type: 'phase-done';
  generator: number;
  phase: number;
  /** Messages scheduled inside the measured window only. */
  counts: Counts;
  ack: string;
  delivery: string;
  /** Send time minus scheduled time of measured messages: the generator's own contribution to latency. */
  sendLag: string;
  /** Mean generator event-loop utilisation over the measured window. */
  elu: number;
}

export type E2eFromChild =
  | SetupProgress
  | E2eReady
  | E2eTick
  | E2ePhaseDone
  | { type: 'fatal'; message: string };

/** Tenant, user and conversation ids of conversation `i` (ids match the broker's subject-safe pattern). */
export function conversationIds(p: Population, i: number) {
  const agent = Math.floor(i / p.convsPerAgent);
  const tenant = `${p.runId}t${Math.floor(agent / p.agentsPerTenant)}`;
  return {
    tenant,
    conv: `${p.runId}-c${i}`,
    visitor: `${p.runId}v${i}`,
    agent: `${p.runId}a${agent}`,
    agentIndex: agent,
  };
}
