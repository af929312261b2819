/**
 * The fault run's clients, in the root namespace: one visitor per conversation that pipelines up to
 * `pipeline` sends and retries every unanswered or refused send with the SAME cmid (after an ack timeout,
 * after `busy` / `unavailable` / `timeout` with `retryAfterMs` or a growing backoff, after its socket
 * closed), reconnecting to any broker with backoff and jitter; and agents that stay online so the tenants'
 * queues assign the conversations and push them `msg` frames. Everything any client was told is recorded
 * (acks, pushes, errors), and so is every frame that came before a socket's `welcome`.
 */
import WebSocket from 'ws';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { decodeFrame, encodeFrame } from '../lib/codec.js';
import type { AckSeen, PushSeen, SentMessage } from './classify.js';

export const SUBPROTOCOL = 'switchboard.v1.msgpack';
/** Common WebSocket clients refuse frames above this (issue #12): larger server frames are reported. */
export const CLIENT_FRAME_LIMIT_BYTES = 1024 * 1024;
const TOKEN_TTL_S = 24 * 3600;
const HANDSHAKE_TIMEOUT_MS = 5000;
const PING_INTERVAL_MS = 2000;
/** A socket that has received nothing for this long (pings included) is dropped and replaced. */
const SILENT_SOCKET_MS = 6000;
const RECONNECT_BASE_MS = 200;
const RECONNECT_MAX_MS = 3000;
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 2000;
/** Failed attempts (errors or ack timeouts) in a row on one socket before moving to another broker. */
const MOVE_AFTER_FAILURES = 3;
const TICK_MS = 50;
const AGENT_CAPACITY = 50;
const RETRYABLE = new Set(['busy', 'unavailable', 'timeout', 'rate_limited', 'internal']);
const MAX_PROTOCOL_EXAMPLES = 20;

export interface LoadPlan {
  runId: string;
  tenants: number;
  conversationsPerTenant: number;
  agentsPerTenant: number;
  /** Sends in flight per visitor. */
  pipeline: number;
  /** New messages per second, all visitors together. */
  ratePerS: number;
  ackTimeoutMs: number;
  jwtSecret: string;
}

export interface ErrorSeen {
  at: number;
  code: string;
  node: string;
}

export interface ProtocolFinding {
  kind: 'frame-before-welcome' | 'oversized-frame' | 'internal-error';
  at: number;
  node: string;
  user: string;
  detail: string;
}

/** Everything the clients were told, with times in ms since the load's t0. */
export interface LoadRecord {
  sent: SentMessage[];
  acks: AckSeen[];
  pushes: PushSeen[];
  errors: ErrorSeen[];
  ackTimeouts: number[];
  protocol: ProtocolFinding[];
  protocolCounts: Record<ProtocolFinding['kind'], number>;
  sockets: { opened: number; failedOpens: number; closed: number; moved: number; silentDropped: number };
  largestFrameBytes: number;
}

/** A small seeded generator (mulberry32): the same seed gives the same choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Frame = Record<string, unknown> & { type?: unknown };

interface Conn {
  ws: WebSocket;
  base: string;
  welcomed: boolean;
  node: string;
  lastFrameAt: number;
  failures: number;
}

interface Pending {
  cmid: string;
  body: string;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
}

abstract class Participant {
  conn: Conn | undefined;
  private reconnects = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  protected stopped = false;

  constructor(
    protected readonly load: FaultLoad,
    readonly tenant: string,
    readonly user: string,
    readonly role: 'visitor' | 'agent',
    protected base: string,
  ) {}

  protected abstract onWelcome(): void;
  protected abstract onFrame(f: Frame): void;
  protected onLost(): void {}

  async connect(): Promise<void> {
    if (this.stopped) return;
    const token = await this.load.token(this.tenant, this.user, this.role);
    const ws = new WebSocket(`${this.base}/ws/${this.role}`, [SUBPROTOCOL], {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: 256 * 1024 * 1024,
    });
    ws.binaryType = 'nodebuffer';
    const conn: Conn = {
      ws,
      base: this.base,
      welcomed: false,
      node: '?',
      lastFrameAt: this.load.now(),
      failures: 0,
    };
    this.conn = conn;
    const rec = this.load.record;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      rec.sockets.opened++;
      conn.lastFrameAt = this.load.now();
    });
    ws.on('message', (data: Buffer) => {
      conn.lastFrameAt = this.load.now();
      if (data.length > rec.largestFrameBytes) rec.largestFrameBytes = data.length;
      let f: Frame;
      try {
        f = decodeFrame(data) as Frame;
      } catch {
        return;
      }
      if (data.length > CLIENT_FRAME_LIMIT_BYTES) {
        this.load.finding({
          kind: 'oversized-frame',
          at: this.load.now(),
          node: conn.node,
          user: this.user,
          detail: `${String(f.type)} frame of ${data.length} bytes`,
        });
      }
      if (!conn.welcomed) {
        if (f.type === 'welcome') {
          conn.welcomed = true;
          conn.node = String(f['node'] ?? '?');
          this.reconnects = 0;
          if (this.conn === conn) this.onWelcome();
          return;
        }
        this.load.finding({
          kind: 'frame-before-welcome',
          at: this.load.now(),
          node: conn.node,
          user: this.user,
          detail: `${String(f.type)} frame${f['conv'] === undefined ? '' : ` of ${String(f['conv'])} seq ${String(f['seq'])}`} before welcome on ${conn.base}`,
        });
      }
      // Frames are recorded even before welcome: what the client was told counts.
      this.onFrame(f);
    });
    ws.on('error', () => {
      // 'close' follows.
    });
    ws.on('close', () => {
      if (opened) rec.sockets.closed++;
      else rec.sockets.failedOpens++;
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.onLost();
      this.scheduleReconnect(false);
    });
  }

  /** Reconnects after a backoff with jitter; `move` picks another broker than the current one. */
  scheduleReconnect(move: boolean): void {
    if (this.stopped || this.reconnectTimer !== undefined) return;
    const n = this.reconnects++;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** n) * (0.5 + this.load.random());
    this.base = this.load.pickBroker(move || n > 0 ? this.base : undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  /** Drops the socket and reconnects to another broker (counted as a move). */
  move(): void {
    const c = this.conn;
    if (c === undefined) return;
    this.load.record.sockets.moved++;
    this.conn = undefined;
    c.ws.terminate();
    this.onLost();
    this.scheduleReconnect(true);
  }

  /** Pings, and replaces a socket that has been silent too long (a paused or cut-off broker). */
  tick(now: number): void {
    const c = this.conn;
    if (c === undefined || c.ws.readyState !== WebSocket.OPEN) return;
    if (now - c.lastFrameAt > SILENT_SOCKET_MS) {
      this.load.record.sockets.silentDropped++;
      this.move();
      return;
    }
    if (now - c.lastFrameAt > PING_INTERVAL_MS) this.send({ type: 'ping' });
  }

  send(frame: Frame): boolean {
    const c = this.conn;
    if (c === undefined || !c.welcomed || c.ws.readyState !== WebSocket.OPEN) return false;
    c.ws.send(encodeFrame(frame));
    return true;
  }

  protected recordPush(f: Frame): void {
    if (f.type !== 'msg') return;
    this.load.record.pushes.push({
      conv: `${this.tenant}/${String(f['conv'])}`,
      seq: Number(f['seq']),
      id: String(f['id']),
      cmid: String(f['cmid']),
      body: String(f['body']),
      to: this.user,
      at: this.load.now(),
    });
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.conn?.ws.terminate();
    this.conn = undefined;
  }
}

class Agent extends Participant {
  protected onWelcome(): void {
    this.send({ type: 'status', status: 'online', capacity: AGENT_CAPACITY });
  }

  protected onFrame(f: Frame): void {
    this.recordPush(f);
  }
}

class Visitor extends Participant {
  private next = 1;
  private credit = 0;
  readonly pending = new Map<string, Pending>();

  constructor(
    load: FaultLoad,
    tenant: string,
    user: string,
    base: string,
    readonly conv: string,
    private readonly index: number,
  ) {
    super(load, tenant, user, 'visitor', base);
  }

  protected onWelcome(): void {
    for (const p of this.pending.values()) this.attempt(p);
  }

  protected override onLost(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
  }

  protected onFrame(f: Frame): void {
    this.recordPush(f);
    if (f.type === 'ack') {
      const cmid = String(f['cmid']);
      this.load.record.acks.push({
        conv: `${this.tenant}/${this.conv}`,
        cmid,
        seq: Number(f['seq']),
        id: String(f['id']),
        at: this.load.now(),
      });
      if (this.conn) this.conn.failures = 0;
      const p = this.pending.get(cmid);
      if (p !== undefined) {
        clearTimeout(p.timer);
        this.pending.delete(cmid);
      }
      return;
    }
    if (f.type !== 'error' || typeof f['ref'] !== 'string') return;
    const p = this.pending.get(f['ref']);
    const code = String(f['code']);
    this.load.record.errors.push({ at: this.load.now(), code, node: this.conn?.node ?? '?' });
    if (code === 'internal') {
      // Issue #12: an outage of a dependency is `unavailable` or `busy` with retryAfterMs, never `internal`.
      this.load.finding({
        kind: 'internal-error',
        at: this.load.now(),
        node: this.conn?.node ?? '?',
        user: this.user,
        detail: `internal error for ${String(f['ref'])}: ${String(f['message'])}`,
      });
    }
    if (p === undefined) return;
    clearTimeout(p.timer);
    p.timer = undefined;
    if (!RETRYABLE.has(code)) {
      // Not ours to retry (a refused message): it stays unacked and is scored `unknown`.
      this.pending.delete(p.cmid);
      return;
    }
    if (this.failed()) return;
    const after = Number(f['retryAfterMs'] ?? 0);
    const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(p.attempts, 8));
    const conn = this.conn;
    p.timer = setTimeout(
      () => {
        p.timer = undefined;
        if (this.conn === conn) this.attempt(p);
      },
      Math.max(after, backoff) * (0.75 + this.load.random() / 2),
    );
  }

  /** Counts a failed attempt on this socket; true when it moved to another broker. */
  private failed(): boolean {
    const c = this.conn;
    if (c === undefined) return true;
    c.failures++;
    if (c.failures >= MOVE_AFTER_FAILURES) {
      this.move();
      return true;
    }
    return false;
  }

  private attempt(p: Pending): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    p.attempts++;
    if (!this.send({ type: 'send', conv: this.conv, cmid: p.cmid, body: p.body })) return;
    const conn = this.conn;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (this.conn !== conn) return;
      this.load.record.ackTimeouts.push(this.load.now());
      if (!this.failed()) this.attempt(p);
    }, this.load.plan.ackTimeoutMs);
  }

  /** Adds this tick's share of the rate and sends new messages while the pipeline has room. */
  produce(perTick: number, open: boolean): void {
    if (!open) return;
    this.credit = Math.min(this.load.plan.pipeline, this.credit + perTick);
    while (this.credit >= 1 && this.pending.size < this.load.plan.pipeline && this.conn?.welcomed) {
      this.credit -= 1;
      const n = this.next++;
      const cmid = `c${String(this.index).padStart(2, '0')}-${String(n).padStart(6, '0')}`;
      const body = `hello from ${this.user}, message ${cmid}: where is my parcel?`;
      const p: Pending = { cmid, body, attempts: 0, timer: undefined };
      this.pending.set(cmid, p);
      this.load.record.sent.push({ conv: `${this.tenant}/${this.conv}`, cmid, sender: this.user, body });
      this.attempt(p);
    }
  }
}

export class FaultLoad {
  readonly record: LoadRecord = {
    sent: [],
    acks: [],
    pushes: [],
    errors: [],
    ackTimeouts: [],
    protocol: [],
    protocolCounts: { 'frame-before-welcome': 0, 'oversized-frame': 0, 'internal-error': 0 },
    sockets: { opened: 0, failedOpens: 0, closed: 0, moved: 0, silentDropped: 0 },
    largestFrameBytes: 0,
  };
  private readonly auth;
  private readonly visitors: Visitor[] = [];
  private readonly agents: Agent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private producing = true;
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    readonly plan: LoadPlan,
    private readonly brokers: readonly string[],
    readonly random: () => number,
    private readonly t0: number,
  ) {
    this.auth = createAuthenticator(plan.jwtSecret);
  }

  now(): number {
    return performance.now() - this.t0;
  }

  token(tenant: string, user: string, role: 'visitor' | 'agent'): Promise<string> {
    const k = `${tenant}/${user}`;
    let t = this.tokens.get(k);
    if (t === undefined) {
      t = this.auth.sign({ tenant, sub: user, role }, TOKEN_TTL_S);
      this.tokens.set(k, t);
    }
    return t;
  }

  /** Any broker, or any other than `avoid`. */
  pickBroker(avoid: string | undefined): string {
    const list = avoid === undefined ? this.brokers : this.brokers.filter((b) => b !== avoid);
    return list[Math.floor(this.random() * list.length)] ?? this.brokers[0]!;
  }

  finding(f: ProtocolFinding): void {
    this.record.protocolCounts[f.kind]++;
    if (this.record.protocolCounts[f.kind] <= MAX_PROTOCOL_EXAMPLES) this.record.protocol.push(f);
  }

  tenantOf(k: number): string {
    return `${this.plan.runId}t${k}`;
  }

  /** Connects the agents (online), then the visitors, each to brokers in turn; starts sending. */
  async start(): Promise<void> {
    const p = this.plan;
    let i = 0;
    for (let t = 0; t < p.tenants; t++) {
      for (let a = 0; a < p.agentsPerTenant; a++) {
        const base = this.brokers[i++ % this.brokers.length]!;
        this.agents.push(new Agent(this, this.tenantOf(t), `a${a}`, 'agent', base));
      }
    }
    for (let t = 0; t < p.tenants; t++) {
      for (let c = 0; c < p.conversationsPerTenant; c++) {
        const index = t * p.conversationsPerTenant + c;
        const base = this.brokers[index % this.brokers.length]!;
        this.visitors.push(new Visitor(this, this.tenantOf(t), `v${index}`, base, `conv${index}`, index));
      }
    }
    await Promise.all(this.agents.map((a) => a.connect()));
    await Promise.all(this.visitors.map((v) => v.connect()));
    const perTick = p.ratePerS / this.visitors.length / (1000 / TICK_MS);
    this.timer = setInterval(() => {
      const now = this.now();
      for (const a of this.agents) a.tick(now);
      for (const v of this.visitors) {
        v.tick(now);
        v.produce(perTick, this.producing);
      }
    }, TICK_MS);
  }

  /** No new messages from now on; unacked ones keep being retried. */
  stopProducing(): void {
    this.producing = false;
  }

  /** Sends not acked yet (each is retried until acked or the load is closed). */
  unacked(): number {
    return this.visitors.reduce((n, v) => n + v.pending.size, 0);
  }

  /** Visitors whose socket is welcomed now. */
  connected(): number {
    return this.visitors.filter((v) => v.conn?.welcomed).length;
  }

  close(): void {
    clearInterval(this.timer);
    for (const v of this.visitors) {
      for (const p of v.pending.values()) clearTimeout(p.timer);
      v.close();
    }
    for (const a of this.agents) a.close();
  }
}
