/**
 * A generator's fleet of idle-but-alive clients for the connections scenario: opens its users' sockets
 * (each authenticated with its own token and subscribed — `welcome` comes only after that), bound to the
 * generator's own loopback address, with bounded handshakes in flight and an optional rate; then keeps every
 * socket pinging (protocol `ping` → `pong`) at a fixed interval, spread evenly over time.
 */
import { performance } from 'node:perf_hooks';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { encodeHistogram, type Histogram, newHistogram, recordMs } from '../lib/histogram.js';
import { pool } from '../lib/pool.js';
import { sleep } from '../lib/units.js';
import { type BenchSocket, OpenError, openSocket } from '../lib/ws-client.js';
import { type ConnInit, type ConnRampDone, connectionUser } from './messages.js';

const TOKEN_TTL_S = 24 * 3600;
const PING_TICK_MS = 100;
const CLOSE_CONCURRENCY = 1000;
const HANDSHAKE_TIMEOUT_MS = 60_000;

export class ClientFleet {
  private readonly sockets: (BenchSocket | undefined)[] = [];
  private readonly pings = new Map<string, number>();
  private readonly handshake = newHistogram();
  private readonly rttTotal = newHistogram();
  private rttTick: Histogram = newHistogram();
  private readonly failures: Record<string, number> = {};
  private readonly byWorker: Record<string, number> = {};
  readonly dropCodes: Record<string, number> = {};
  opened = 0;
  /** Sockets open now. */
  open = 0;
  failed = 0;
  dropped = 0;
  pingsSent = 0;
  pongs = 0;
  private closing = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingSeq = 0;

  constructor(private readonly init: ConnInit) {}

  /** Opens every socket; resolves when each attempt has succeeded or failed. */
  async ramp(startAt: number): Promise<ConnRampDone> {
    const { init } = this;
    const auth = createAuthenticator(init.jwtSecret);
    const n = init.to - init.from;
    const slotMs = init.rampRate > 0 ? 1000 / init.rampRate : 0;
    let firstAt = 0;
    let lastAt = 0;
    this.startPings();
    await pool(
      Array.from({ length: n }, (_, k) => k),
      init.concurrency,
      async (k) => {
        if (slotMs > 0) await sleep(startAt + k * slotMs - Date.now());
        const user = connectionUser(init.runId, init.from + k, init.visitorPercent, init.tenants);
        const token = await auth.sign(user, TOKEN_TTL_S);
        firstAt ||= Date.now();
        const t0 = performance.now();
        try {
          const socket = await openSocket({
            base: init.base,
            role: user.role,
            token,
            localAddress: init.localAddress,
            handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
            onFrame: (f) => {
              if (f.type !== 'pong' || f.ref === undefined) return;
              const sentAt = this.pings.get(f.ref);
              if (sentAt === undefined) return;
              this.pings.delete(f.ref);
              this.pongs++;
              const rtt = performance.now() - sentAt;
              recordMs(this.rttTick, rtt);
              recordMs(this.rttTotal, rtt);
            },
            onClose: (code) => {
              this.sockets[k] = undefined;
              this.open--;
              if (this.closing) return;
              this.dropped++;
              this.dropCodes[code] = (this.dropCodes[code] ?? 0) + 1;
            },
          });
          recordMs(this.handshake, performance.now() - t0);
          this.sockets[k] = socket;
          this.byWorker[socket.node] = (this.byWorker[socket.node] ?? 0) + 1;
          this.opened++;
          this.open++;
          lastAt = Date.now();
        } catch (err) {
          const reason = err instanceof OpenError ? err.reason : String(err);
          this.failures[reason] = (this.failures[reason] ?? 0) + 1;
          this.failed++;
        }
      },
    );
    return {
      type: 'ramp-done',
      generator: init.generator,
      opened: this.opened,
      failed: this.failed,
      failures: this.failures,
      byWorker: this.byWorker,
      handshake: encodeHistogram(this.handshake),
      firstAt,
      lastAt,
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
      const n = this.sockets.length;
      if (n === 0) return;
      carry += (n * PING_TICK_MS) / this.init.pingIntervalMs;
      for (; carry >= 1; carry--) {
        const idx = cursor;
        cursor = (cursor + 1) % n;
        const s = this.sockets[idx];
        if (!s) continue;
        const ref = `${idx.toString(36)}.${(++this.pingSeq).toString(36)}`;
        if (s.send({ type: 'ping', ref })) {
          this.pings.set(ref, performance.now());
          this.pingsSent++;
        }
      }
    }, PING_TICK_MS);
  }

  /** This second's ping round trips, encoded; starts the next second's histogram. */
  takeRtt(): string {
    const out = encodeHistogram(this.rttTick);
    this.rttTick = newHistogram();
    return out;
  }

  totalRtt(): string {
    return encodeHistogram(this.rttTotal);
  }

  /** Closes every socket with a close handshake (so the broker frees them as in normal operation). */
  async closeAll(): Promise<void> {
    this.closing = true;
    clearInterval(this.pingTimer);
    await pool(this.sockets, CLOSE_CONCURRENCY, async (s) => s?.close());
  }
}
