/** The IPC vocabulary between the connections orchestrator and its generator processes. */

export interface ConnInit {
  type: 'init';
  generator: number;
  runId: string;
  /** ws://host:port of the node. */
  base: string;
  jwtSecret: string;
  /** Users [from, to) of the run are this generator's. */
  from: number;
  to: number;
  localAddress: string;
  /** Source addresses reconnects turn through (the first is `localAddress`); see plan.ts. */
  sourceAddresses: string[];
  visitorPercent: number;
  tenants: number;
  /** Handshakes in flight at once. */
  concurrency: number;
  /** This generator's share of the opening rate, conn/s; 0 = unlimited. */
  rampRate: number;
  pingIntervalMs: number;
  /** Visitors of this generator that send messages while `send` is on (the mixed load). */
  senders: number;
  /** This generator's share of the send rate, msg/s. */
  sendRate: number;
}

export interface ConnRamp {
  type: 'ramp';
  /** Epoch ms: the common t = 0 of every generator's ticks. */
  startAt: number;
}

export type ConnToChild =
  | ConnInit
  | ConnRamp
  /** Senders start (on) or stop (off) sending new messages; unanswered ones are still retried. */
  | { type: 'send'; on: boolean }
  /** Report every acknowledged message (once the senders are idle). */
  | { type: 'acked' }
  | { type: 'close' };

/** One second of one generator. */
export interface ConnTick {
  type: 'tick';
  generator: number;
  /** Seconds since the ramp's startAt. */
  second: number;
  /** Totals so far. */
  opened: number;
  failed: number;
  /** Sockets open now. */
  open: number;
  /** Sockets the broker (or the network) closed after welcome, so far. */
  dropped: number;
  /** Welcomes after a drop (reconnected), so far. */
  reconnected: number;
  /** Reconnect attempts that ended before `welcome`, so far. */
  reconnectFailed: number;
  /** The same by reason (lean-ws.ts: `closed`, `timeout`, `http-503`, an errno code…), so far. */
  reconnectFailures: Record<string, number>;
  pingsSent: number;
  pongs: number;
  /** Ping round trips completed in this second (HDR, base64). */
  rtt: string;
  /** Sends of new messages, acks and own-`msg` deliveries so far. */
  sent: number;
  acked: number;
  delivered: number;
  /** Ack and delivery latencies of this second (HDR, base64). */
  ackLatency: string;
  deliveryLatency: string;
  /** Sends waiting for their answer now. */
  pending: number;
  /** Senders whose conversation has started (first message acknowledged), so far. */
  startedSenders: number;
  elu: number;
}

export interface ConnRampDone {
  type: 'ramp-done';
  generator: number;
  opened: number;
  failed: number;
  failures: Record<string, number>;
  /** Upgrades refused `503` with `retryAfterMs` and tried again when told (not failures). */
  refused: number;
  /** Connects reset before any answer (a listener closed at its socket limit) and tried again (not failures). */
  resets: number;
  byWorker: Record<string, number>;
  /** upgrade request → welcome, HDR base64. */
  handshake: string;
  /** Epoch ms of the first attempt and of the last successful welcome. */
  firstAt: number;
  lastAt: number;
}

/** One acknowledged message: conversation, cmid, seq (the Jepsen-style check reads Cassandra for it). */
export type AckedMessage = [tenant: string, conv: string, cmid: string, seq: number];

export interface ConnAcked {
  type: 'acked';
  generator: number;
  acked: AckedMessage[];
  /** Sends still unanswered (neither acked nor refused) when asked. */
  unanswered: number;
  /** A few of them: `tenant/conv cmid, tries`. */
  unansweredExamples: string[];
  /** Error answers by code (not counting retried busy/unavailable/timeout). */
  errors: Record<string, number>;
  /** Error answers retried with the same cmid, by code. */
  retried: Record<string, number>;
}

export interface ConnClosed {
  type: 'closed';
  generator: number;
  /** Close codes of sockets dropped during the run (not our own closes). */
  dropCodes: Record<string, number>;
  /** Why reconnect attempts ended before `welcome`. */
  reconnectFailures: Record<string, number>;
  rtt: string;
}

export type ConnFromChild =
  | { type: 'ready'; generator: number }
  | ConnTick
  | ConnRampDone
  | ConnAcked
  | ConnClosed
  | { type: 'fatal'; message: string };

/**
 * Identity of user `i`: tenants round-robin, and within each tenant `visitorPercent` % visitors (the role
 * follows i / tenants, not i, so every tenant gets its share of agents and so its own lobby).
 */
export function connectionUser(runId: string, i: number, visitorPercent: number, tenants: number) {
  return {
    tenant: `${runId}t${i % tenants}`,
    sub: `${runId}u${i}`,
    role: Math.floor(i / tenants) % 100 < visitorPercent ? ('visitor' as const) : ('agent' as const),
  };
}
