/**
 * A lean WebSocket client for the connections scenario (issue #14): a bare `net.Socket` that writes the
 * upgrade request itself, reads server frames with a few lines of framing, and sends client frames
 * masked with an all-zero key (RFC 6455 §5.3 asks for a mask, not for a random one; a zero key leaves the
 * payload as it is, so nothing is copied). The `ws` package spent most of a generator's CPU on its
 * per-socket machinery (the last full run was generator-limited at 427 sockets/s) and several KB of heap
 * per socket; this keeps a generator's share small enough that the broker limits the ramp.
 * Only what the scenario needs: binary frames, ping → pong, close. Server frames are never masked.
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { decodeFrame, encodeFrame } from '../lib/codec.js';
import { SUBPROTOCOL_MSGPACK } from '../lib/ws-client.js';

const KEY = 'c3dpdGNoYm9hcmQtYmVuY2g='; // a fixed Sec-WebSocket-Key: every upgrade expects the same accept
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const FIN = 0x80;
const MASK = 0x80;
const ZERO_MASK = Buffer.alloc(4);
/** A response head longer than this is not a WebSocket upgrade answer. */
const MAX_HEAD_BYTES = 8192;
const CLOSE_NORMAL = 1000;
const CLOSE_NO_STATUS = 1005;
const CLOSE_ABNORMAL = 1006;

export interface LeanHandlers {
  /** The first frame was `welcome`: the socket is registered in the cluster. */
  onWelcome(node: string): void;
  /** Every later frame. */
  onFrame(frame: ServerFrame): void;
  /**
   * The socket ended. `welcomed` false: it never got to `welcome`; `reason` then says why (`http-503`,
   * `closed-1012`, an errno code, `timeout`); `retryAfterMs` is a refused upgrade's (503 `unavailable`).
   */
  onEnd(welcomed: boolean, code: number, reason: string, retryAfterMs?: number, refusal?: Refusal): void;
}

export interface LeanTarget {
  host: string;
  port: number;
  /** Source address to bind (127.a.b.x). */
  localAddress?: string;
}

/**
 * The source port of one attempt. A socket bound to an explicit address with port 0 gets its port from
 * the kernel's bind() search, which walks the address's ports in use: at ~11k sockets per address the
 * generators spent 78 % of their CPU in the kernel (stime 2654 vs utime 729 ticks) and the ramp fell from
 * 2 400 to ~100 sockets/s (issue #14). An explicit port is one hash lookup.
 */
export type SourcePort = number | undefined;

/** The upgrade request of one user, built once and reused for each reconnect. */
export function upgradeRequest(target: LeanTarget, role: 'visitor' | 'agent', token: string): Buffer {
  return Buffer.from(
    `GET /ws/${role} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Protocol: ${SUBPROTOCOL_MSGPACK}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    'latin1',
  );
}

/** One frame from client to server: FIN, opcode, masked with a zero key. */
function clientFrame(op: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.alloc(2) : n < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = FIN | op;
  if (n < 126) head[1] = MASK | n;
  else if (n < 65_536) {
    head[1] = MASK | 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = MASK | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, ZERO_MASK, payload]);
}

/** Why a worker refused an upgrade `503`, told apart by the broker's messages (src/gateway/server.ts). */
export type Refusal = 'full' | 'paced' | 'cut-off';
export const REFUSALS: readonly [RegExp, Refusal][] = [
  [/holds its limit of \d+ sockets/, 'full'],
  [/admitting upgrades at its pace/, 'paced'],
  [/cut off from the cluster/, 'cut-off'],
];

export class LeanSocket {
  private readonly sock: Socket;
  private buf: Buffer | undefined;
  private upgraded = false;
  private welcomed = false;
  private ended = false;
  private closeCode = CLOSE_ABNORMAL;
  private failReason = '';
  private retryAfterMs: number | undefined;
  private refusal: Refusal | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Connects and upgrades; `timeoutMs` bounds the time to `welcome`. */
  constructor(
    target: LeanTarget,
    localPort: SourcePort,
    request: Buffer,
    timeoutMs: number,
    private readonly h: LeanHandlers,
  ) {
    this.sock = connect({
      host: target.host,
      port: target.port,
      ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
      ...(localPort === undefined ? {} : { localPort }),
    });
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => this.sock.write(request));
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      this.failReason ||= err.code ?? 'error';
    });
    this.sock.on('close', () => this.finish());
    this.timer = setTimeout(() => this.fail('timeout'), timeoutMs);
  }

  isOpen(): boolean {
    return this.welcomed && !this.ended;
  }

  /** Encodes and sends a client frame; false when the socket is not open. */
  send(frame: Record<string, unknown>): boolean {
    if (!this.isOpen()) return false;
    this.sock.write(clientFrame(OP_BINARY, encodeFrame(frame)));
    return true;
  }

  /** Close handshake (1000); the socket ends when the server answers or the peer drops it. */
  close(): void {
    if (this.ended) return;
    if (!this.upgraded) {
      this.fail('closed-by-client');
      return;
    }
    const body = Buffer.alloc(2);
    body.writeUInt16BE(CLOSE_NORMAL);
    this.sock.write(clientFrame(OP_CLOSE, body));
    this.sock.end();
  }

  /** Drops the TCP connection at once, with a reset (so its source port is free again at once). */
  destroy(): void {
    this.reset();
  }

  private reset(): void {
    if (this.sock.connecting || this.sock.destroyed) this.sock.destroy();
    else this.sock.resetAndDestroy();
  }

  private fail(reason: string): void {
    this.failReason ||= reason;
    this.reset();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const code = this.closeCode;
    const reason = this.welcomed ? '' : this.failReason || (this.upgraded ? `closed-${code}` : 'closed');
    this.h.onEnd(this.welcomed, code, reason, this.retryAfterMs, this.refusal);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf === undefined || this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    if (!this.upgraded && !this.readHead()) return;
    this.readFrames();
  }

  /** Reads the HTTP answer; true once upgraded (anything after the head is frames). */
  private readHead(): boolean {
    const buf = this.buf!;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) this.fail('bad-response');
      return false;
    }
    const head = buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    if (status !== 101) {
      // A refusal's JSON body carries `retryAfterMs` (docs/PROTOCOL.md, refused upgrades): wait for it.
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length && buf.length <= MAX_HEAD_BYTES) return false;
      const body = buf.toString('latin1', end + 4, end + 4 + length);
      const m = /"retryAfterMs":(\d+)/.exec(body);
      if (m) this.retryAfterMs = Number(m[1]);
      this.refusal = REFUSALS.find(([re]) => re.test(body))?.[1];
      this.fail(`http-${status || 0}`);
      return false;
    }
    if (!head.includes(ACCEPT)) {
      this.fail('bad-accept');
      return false;
    }
    this.upgraded = true;
    this.buf = buf.subarray(end + 4);
    return true;
  }

  private readFrames(): void {
    let buf = this.buf!;
    while (buf.length >= 2 && !this.ended) {
      const op = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) break;
      const payload = buf.subarray(at, at + len);
      buf = buf.subarray(at + len);
      this.onFrame(op, payload);
    }
    this.buf = buf.length === 0 ? undefined : Buffer.from(buf);
  }

  private onFrame(op: number, payload: Buffer): void {
    if (op === OP_PING) {
      this.sock.write(clientFrame(OP_PONG, payload));
      return;
    }
    if (op === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : CLOSE_NO_STATUS;
      if (!this.welcomed) this.failReason ||= `closed-${this.closeCode}`;
      this.sock.end();
      return;
    }
    if (op !== OP_BINARY) return;
    let frame: ServerFrame;
    try {
      frame = decodeFrame(payload) as ServerFrame;
    } catch {
      return;
    }
    if (!this.welcomed) {
      if (frame.type !== 'welcome') {
        // PROTOCOL.md: `welcome` is always the first frame.
        this.fail(`frame-before-welcome-${frame.type}`);
        return;
      }
      this.welcomed = true;
      clearTimeout(this.timer);
      this.h.onWelcome((frame as { node: string }).node);
      return;
    }
    this.h.onFrame(frame);
  }
}
