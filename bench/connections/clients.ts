/**
 * A generator's fleet for the connections scenario: opens its users' sockets (each authenticated with its
 * own token, signed before the ramp, and registered — `welcome` comes only after that), bound to the
 * generator's own loopback address, with bounded handshakes in flight and an optional rate; keeps every
 * socket pinging (protocol `ping` → `pong`) at a fixed interval, spread evenly over time; reconnects a
 * dropped socket with the documented backoff and jitter (bench/lib/backoff.ts), as a real client does,
 * and resends its unanswered message with the same cmid. Some visitors are senders: while sending is on,
 * they post to a conversation of their own at a fixed rate (one message in flight each) and measure the
 * ack and the delivery of their own `msg`; every ack is kept for the check against Cassandra.
 */
import { performance } from 'node:perf_hooks';
import { createAuthenticator } from '../../src/gateway/auth.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { reconnectDelayMs, refusedDelayMs } from '../lib/backoff.js';
import { encodeHistogram, type Histogram, newHistogram, recordMs } from '../lib/histogram.js';
import { pool, SlotQueue } from '../lib/pool.js';
import { sleep } from '../lib/units.js';
import { LeanSocket, type LeanTarget, type Refusal, upgradeRequest } from './lean-ws.js';
import {
  type AckedMessage,
  type ConnAcked,
  type ConnInit,
  type ConnRampDone,
  connectionUser,
} from './messages.js';

const TOKEN_TTL_S = 24 * 3600;
const PING_TICK_MS = 100;
const SEND_TICK_MS = 10;
/** The most time a late send tick makes up for. */
const MAX_SEND_CATCH_UP_MS = 1000;
const CLOSE_TIMEOUT_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 60_000;
/** A reconnect attempt not welcomed within this is dropped and retried (uWS itself gives an upgrade 10 s). */
const RECONNECT_TIMEOUT_MS = 15_000;
/** A ramp attempt refused by the broker's admission or reset more often than this counts as failed. */
const MAX_RAMP_REFUSALS = 50;
/** An unanswered send on an open socket is resent (same cmid) after this long. */
const ACK_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRYABLE = new Set(['busy', 'unavailable', 'timeout', 'internal', 'rate_limited']);
/** Bodies carry their send time: `sb~<epoch ms base 36>~<n>` (base 36: PII masking leaves it alone). */
const BODY_PREFIX = 'sb~';
const MAX_EXAMPLES = 5;
/**
 * Client k's source ports: PORT_BASE + k + slot × clients, the slot turning with each attempt, so an attempt
 * never waits for a port a previous one of its own may still hold (lean-ws.ts, SourcePort).
 */
const PORT_BASE = 10_000;
/** A port someone else holds (a wildcard listener): the attempt moves to its next slot. */
const PORT_TAKEN = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);
const PORT_SLOTS = 3;
const MAX_PORT = 65_535;

interface Sender {
  tenant: string;
  conv: string;
  n: number;
  /** Its first message was acknowledged: its conversation has started. */
  started?: boolean;
  pending?: { cmid: string; body: string; sentAt: number; lastTry: number; retryAt: number };
}

interface Client {
  readonly k: number;
  readonly request: Buffer;
  sock: LeanSocket | undefined;
  /** Reconnect attempts since the last welcome. */
  attempt: number;
  /** Connection attempts so far (picks the source port). */
  tries: number;
  /** The last attempt was refused `503` with this `retryAfterMs`, or the node that dropped it said so. */
  retryAfterMs: number | undefined;
  /** Why the last attempt was refused `503`, when the broker's message said (lean-ws.ts). */
  refusal: Refusal | undefined;
  /** The `retryAfterMs` of a drain's notice on the open socket (an `error` frame without `ref`). */
  drainRetryAfterMs: number | undefined;
  timer: NodeJS.Timeout | undefined;
  sender: Sender | undefined;
}

export class ClientFleet {
  private readonly clients: Client[] = [];
  private readonly senders: Client[] = [];
  private readonly pings = new Map<string, number>();
  private readonly handshake = newHistogram();
  private readonly rttTotal = newHistogram();
  private rttTick: Histogram = newHistogram();
  private ackTick: Histogram = newHistogram();
  private deliveryTick: Histogram = newHistogram();
  private readonly failures: Record<string, number> = {};
  private readonly byWorker: Record<string, number> = {};
  readonly dropCodes: Record<string, number> = {};
  readonly reconnectFailures: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};
  /** Error answers to a send that were retried (same cmid), by code. */
  private readonly retried: Record<string, number> = {};
  private readonly acked: AckedMessage[] = [];
  private readonly target: LeanTarget;
  opened = 0;
  /** Sockets open now. */
  open = 0;
  failed = 0;
  /** Ramp upgrades refused 503 with retryAfterMs and tried again. */
  refused = 0;
  /** Ramp connects reset before any answer and tried again. */
  resets = 0;
  dropped = 0;
  reconnected = 0;
  reconnectFailed = 0;
  pingsSent = 0;
  pongs = 0;
  sent = 0;
  ackedCount = 0;
  /** Senders whose conversation has started (their first message was acknowledged). */
  startedSenders = 0;
  delivered = 0;
  private closing = false;
  /**
   * Clients whose backoff has run out (each at most once), started with at most `concurrency` in flight as
   * in the ramp. Without the bound, a storm fired ~14k attempts per generator at once; the generator's loop,
   * sharing 2 cores with the broker, then saw a `connect` over 10 s late and wrote the upgrade request after
   * uWS's HTTP timeout had closed the accepted socket: ~50k attempts per storm ended `closed`, each one more
   * round of work for both sides (BENCHMARKS.md, eighteenth session). Time spent waiting for a slot counts
   * against the storm's curve like any other.
   */
  private readonly reconnects: SlotQueue<Client>;
  private sending = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  private pingSeq = 0;
  private sendCarry = 0;
  /** When sendTick last ran (ms), so that a late tick makes up for the time it missed. */
  private sendTickAt = 0;
  private sendCursor = 0;

  constructor(private readonly init: ConnInit) {
    const url = new URL(init.base);
    this.target = { host: url.hostname, port: Number(url.port), localAddress: init.localAddress };
    this.reconnects = new SlotQueue(init.concurrency, (c) => this.reconnect(c));
  }

  /** Signs every user's token and builds its upgrade request (before the ramp, so not timed). */
  async prepare(): Promise<void> {
    const { init } = this;
    const auth = createAuthenticator(init.jwtSecret);
    // Senders are spread over the ramp's order (every `stride`-th visitor of the range), not its first
    // visitors: which worker of the node takes a socket depends on when it connects (a gateway on standby
    // takes none early in a ramp), and the mix should cross workers as often as the node's sockets do. The
    // twenty-eighth session's senders were the ramp's first 2 000, all on the owner.
    const users = [];
    for (let k = 0; k < init.to - init.from; k++)
      users.push(connectionUser(init.runId, init.from + k, init.visitorPercent, init.tenants));
    const visitors = users.filter((u) => u.role === 'visitor').length;
    const stride = Math.max(1, Math.floor(visitors / Math.max(1, init.senders)));
    let visitor = 0;
    for (let k = 0; k < init.to - init.from; k++) {
      const user = users[k]!;
      const token = await auth.sign(user, TOKEN_TTL_S);
      const c: Client = {
        k,
        request: upgradeRequest(this.target, user.role, token),
        sock: undefined,
        attempt: 0,
        retryAfterMs: undefined,
        refusal: undefined,
        drainRetryAfterMs: undefined,
        tries: 0,
        timer: undefined,
        sender: undefined,
      };
      if (user.role === 'visitor' && visitor++ % stride === 0 && this.senders.length < init.senders) {
        c.sender = { tenant: user.tenant, conv: `s${init.runId}${init.from + k}`, n: 0 };
        this.senders.push(c);
      }
      this.clients.push(c);
    }
  }

  /** Opens every socket; resolves when each attempt has succeeded or failed. */
  async ramp(startAt: number): Promise<ConnRampDone> {
    const { init } = this;
    const slotMs = init.rampRate > 0 ? 1000 / init.rampRate : 0;
    let firstAt = 0;
    let lastAt = 0;
    // Every generator starts on the common instant, so the ramp's time is measured from its real start.
    await sleep(startAt - Date.now());
    this.startPings();
    await pool(this.clients, init.concurrency, async (c) => {
      if (slotMs > 0) await sleep(startAt + c.k * slotMs - Date.now());
      firstAt ||= Date.now();
      const t0 = performance.now();
      let reason = await this.connect(c, HANDSHAKE_TIMEOUT_MS);
      for (let slot = 1; slot < PORT_SLOTS && reason !== undefined && PORT_TAKEN.has(reason); slot++) {
        reason = await this.connect(c, HANDSHAKE_TIMEOUT_MS);
      }
      // Refused by the broker's admission: come back when told, as a client does (PROTOCOL.md, step 7).
      // Reset before any answer (a worker's listening socket closed at its socket limit with this connect
      // in its queue, src/listener-group.ts): come back after the backoff, as the browser client does.
      for (let n = 0, resets = 0; n < MAX_RAMP_REFUSALS; n++) {
        if (reason === 'http-503' && c.retryAfterMs !== undefined) {
          this.refused++;
          await sleep(refusedDelayMs(c.retryAfterMs));
        } else if (reason === 'ECONNRESET') {
          this.resets++;
          await sleep(reconnectDelayMs(resets++));
        } else break;
        reason = await this.connect(c, HANDSHAKE_TIMEOUT_MS);
      }
      if (reason === undefined) {
        recordMs(this.handshake, performance.now() - t0);
        this.opened++;
        lastAt = Date.now();
      } else {
        this.failures[reason] = (this.failures[reason] ?? 0) + 1;
        this.failed++;
      }
    });
    return {
      type: 'ramp-done',
      generator: init.generator,
      opened: this.opened,
      failed: this.failed,
      failures: this.failures,
      refused: this.refused,
      resets: this.resets,
      byWorker: this.byWorker,
      handshake: encodeHistogram(this.handshake),
      firstAt,
      lastAt,
    };
  }

  /**
   * One connection attempt of client `c`; resolves undefined at `welcome`, else the reason it ended.
   * A socket that was welcomed and later drops reconnects by itself (unless the fleet is closing).
   */
  private connect(c: Client, timeoutMs: number): Promise<string | undefined> {
    const n = this.clients.length;
    c.tries++;
    const port = PORT_BASE + c.k + (c.tries % PORT_SLOTS) * n;
    // Each round of the port slots moves to the next source address: the node's SO_REUSEPORT hash then
    // sends the attempt to a worker chosen afresh, as a real client's new ephemeral port does (plan.ts).
    const addrs = this.init.sourceAddresses;
    const at = Math.floor(c.tries / PORT_SLOTS) % Math.max(1, addrs.length);
    const target = at === 0 ? this.target : { ...this.target, localAddress: addrs[at] };
    return new Promise((resolve) => {
      c.sock = new LeanSocket(target, port <= MAX_PORT ? port : undefined, c.request, timeoutMs, {
        onWelcome: (node) => {
          this.open++;
          c.attempt = 0;
          this.byWorker[node] = (this.byWorker[node] ?? 0) + 1;
          const p = c.sender?.pending;
          if (p) this.transmit(c, p);
          resolve(undefined);
        },
        onFrame: (f) => this.onFrame(c, f),
        onEnd: (welcomed, code, reason, retryAfterMs, refusal) => {
          c.sock = undefined;
          c.refusal = refusal;
          c.retryAfterMs = retryAfterMs ?? c.drainRetryAfterMs;
          c.drainRetryAfterMs = undefined;
          if (!welcomed) return resolve(reason);
          this.open--;
          if (this.closing) return;
          this.dropped++;
          this.dropCodes[code] = (this.dropCodes[code] ?? 0) + 1;
          this.scheduleReconnect(c);
        },
      });
    });
  }

  private scheduleReconnect(c: Client): void {
    if (this.closing) return;
    const delay = c.retryAfterMs === undefined ? reconnectDelayMs(c.attempt) : refusedDelayMs(c.retryAfterMs);
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (this.closing) return;
      this.reconnects.push(c);
    }, delay);
  }

  /** One reconnect attempt of `c`, in a slot of `reconnects`; a failed one waits its delay and queues again. */
  private async reconnect(c: Client): Promise<void> {
    const reason = await this.connect(c, RECONNECT_TIMEOUT_MS);
    if (reason === undefined) {
      this.reconnected++;
      return;
    }
    this.reconnectFailed++;
    // A 503 is counted by why the worker refused (its socket limit, its admission's pace, cut off).
    const key = reason === 'http-503' && c.refusal !== undefined ? `${reason}-${c.refusal}` : reason;
    this.reconnectFailures[key] = (this.reconnectFailures[key] ?? 0) + 1;
    // A refusal with retryAfterMs says when to come back; anything else raises the backoff.
    if (c.retryAfterMs === undefined) c.attempt++;
    this.scheduleReconnect(c);
  }

  private onFrame(c: Client, f: ServerFrame): void {
    if (f.type === 'pong') {
      const ref = (f as { ref?: string }).ref;
      const sentAt = ref === undefined ? undefined : this.pings.get(ref);
      if (sentAt === undefined) return;
      this.pings.delete(ref!);
      this.pongs++;
      const rtt = performance.now() - sentAt;
      recordMs(this.rttTick, rtt);
      recordMs(this.rttTotal, rtt);
      return;
    }
    const notice = f as { type: string; ref?: string; code?: string; retryAfterMs?: number };
    if (notice.type === 'error' && notice.ref === undefined && notice.code === 'unavailable') {
      // A draining node's notice before its 1012: when to come back (PROTOCOL.md, step 7).
      c.drainRetryAfterMs = notice.retryAfterMs;
      return;
    }
    const s = c.sender;
    if (s === undefined) return;
    if (f.type === 'msg') {
      const body = (f as { body?: string }).body;
      if (typeof body !== 'string' || !body.startsWith(BODY_PREFIX)) return;
      const at = Number.parseInt(body.slice(BODY_PREFIX.length).split('~')[0] ?? '', 36);
      if (!Number.isFinite(at)) return;
      this.delivered++;
      recordMs(this.deliveryTick, Date.now() - at);
      return;
    }
    const p = s.pending;
    if (f.type === 'ack' && p && (f as { cmid?: string }).cmid === p.cmid) {
      this.acked.push([s.tenant, s.conv, p.cmid, (f as { seq: number }).seq]);
      this.ackedCount++;
      if (!s.started) {
        s.started = true;
        this.startedSenders++;
      }
      recordMs(this.ackTick, Date.now() - p.sentAt);
      s.pending = undefined;
      return;
    }
    if (f.type === 'error' && p && (f as { ref?: string }).ref === p.cmid) {
      const e = f as { code: string; retryAfterMs?: number };
      if (RETRYABLE.has(e.code)) {
        this.retried[e.code] = (this.retried[e.code] ?? 0) + 1;
        p.retryAt = Date.now() + Math.max(RETRY_MIN_MS, e.retryAfterMs ?? 0);
        return;
      }
      this.errors[e.code] = (this.errors[e.code] ?? 0) + 1;
      s.pending = undefined;
    }
  }

  private transmit(c: Client, p: NonNullable<Sender['pending']>): void {
    if (c.sock?.send({ type: 'send', conv: c.sender!.conv, cmid: p.cmid, body: p.body })) {
      p.lastTry = Date.now();
      p.retryAt = p.lastTry + ACK_TIMEOUT_MS;
    }
  }

  /** Turns new sends on or off (unanswered ones are retried either way until answered). */
  setSending(on: boolean): void {
    this.sending = on;
    if (this.sendTimer !== undefined || this.senders.length === 0) return;
    this.sendTimer = setInterval(() => this.sendTick(), SEND_TICK_MS);
  }

  /** Retries what is due; while sending, starts rate × elapsed time new messages on idle open senders. */
  private sendTick(): void {
    const now = Date.now();
    // New sends accrue by the time since the last tick, not per tick: a generator whose loop is late (it
    // shares 2 cores with the broker) runs fewer ticks, and counting ticks offered only 650-880 of
    // 1 000 msg/s in the nineteenth session's mixed runs. At most a second is made up after a stall.
    const elapsedMs = Math.min(MAX_SEND_CATCH_UP_MS, now - (this.sendTickAt || now - SEND_TICK_MS));
    this.sendTickAt = now;
    for (const c of this.senders) {
      const p = c.sender!.pending;
      if (p && now >= p.retryAt && c.sock?.isOpen()) this.transmit(c, p);
    }
    if (!this.sending) return;
    this.sendCarry += (this.init.sendRate * elapsedMs) / 1000;
    const n = this.senders.length;
    for (let tries = 0; this.sendCarry >= 1 && tries < n; tries++) {
      const c = this.senders[this.sendCursor]!;
      this.sendCursor = (this.sendCursor + 1) % n;
      const s = c.sender!;
      if (s.pending || !c.sock?.isOpen()) continue;
      this.sendCarry--;
      s.n++;
      const cmid = `m${s.n}`;
      s.pending = {
        cmid,
        body: `${BODY_PREFIX}${now.toString(36)}~${s.n}`,
        sentAt: now,
        lastTry: 0,
        retryAt: 0,
      };
      this.sent++;
      this.transmit(c, s.pending);
    }
    // Senders all busy: what could not be sent this tick is not owed later (the rate is an upper bound).
    this.sendCarry = Math.min(this.sendCarry, 1);
  }

  /** Sends waiting for their answer. */
  pendingCount(): number {
    let n = 0;
    for (const c of this.senders) if (c.sender!.pending) n++;
    return n;
  }

  ackedReport(): ConnAcked {
    return {
      type: 'acked',
      generator: this.init.generator,
      acked: this.acked,
      unanswered: this.pendingCount(),
      unansweredExamples: this.senders
        .filter((c) => c.sender!.pending)
        .slice(0, MAX_EXAMPLES)
        .map((c) => {
          const s = c.sender!;
          return `${s.tenant}/${s.conv} ${s.pending!.cmid} sent ${new Date(s.pending!.sentAt).toISOString()} open ${c.sock?.isOpen() ?? false}`;
        }),
      errors: this.errors,
      retried: this.retried,
    };
  }

  /**
   * Every PING_TICK_MS, pings the next slice of sockets so each open socket pings once per interval, with
   * the load spread evenly instead of in bursts.
   */
  private startPings(): void {
    let cursor = 0;
    let carry = 0;
    this.pingTimer = setInterval(() => {
      const n = this.clients.length;
      if (n === 0) return;
      carry += (n * PING_TICK_MS) / this.init.pingIntervalMs;
      for (; carry >= 1; carry--) {
        const idx = cursor;
        cursor = (cursor + 1) % n;
        const s = this.clients[idx]!.sock;
        if (!s?.isOpen()) continue;
        const ref = `${idx.toString(36)}.${(++this.pingSeq).toString(36)}`;
        if (s.send({ type: 'ping', ref })) {
          this.pings.set(ref, performance.now());
          this.pingsSent++;
        }
      }
    }, PING_TICK_MS);
  }

  /** This second's histograms, encoded; starts the next second's. */
  takeTick(): { rtt: string; ackLatency: string; deliveryLatency: string } {
    const out = {
      rtt: encodeHistogram(this.rttTick),
      ackLatency: encodeHistogram(this.ackTick),
      deliveryLatency: encodeHistogram(this.deliveryTick),
    };
    this.rttTick = newHistogram();
    this.ackTick = newHistogram();
    this.deliveryTick = newHistogram();
    return out;
  }

  totalRtt(): string {
    return encodeHistogram(this.rttTotal);
  }

  /** Closes every socket with a close handshake (so the broker frees them as in normal operation). */
  async closeAll(): Promise<void> {
    this.closing = true;
    this.reconnects.stop();
    this.sending = false;
    clearInterval(this.pingTimer);
    clearInterval(this.sendTimer);
    for (const c of this.clients) clearTimeout(c.timer);
    for (const c of this.clients) c.sock?.close();
    const deadline = Date.now() + CLOSE_TIMEOUT_MS;
    while (this.clients.some((c) => c.sock !== undefined) && Date.now() < deadline) await sleep(50);
    for (const c of this.clients) c.sock?.destroy();
  }
}
