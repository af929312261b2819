/**
 * The bench's WebSocket client: one authenticated Switchboard socket on the msgpack subprotocol.
 * `openSocket` resolves at `welcome`, which the broker sends only once the user's socket is registered —
 * so a resolved socket is a fully subscribed visitor or agent. Failures are classified into short,
 * stable reasons for the report.
 *
 * The client speaks RFC 6455 itself over `net` (the upgrade, masked client frames, ping/pong and the close
 * handshake) rather than through the `ws` package: the generators' CPU is part of the machine's budget
 * (issue #13), and `ws`'s event and stream layers cost about half of a generator's busy time. For the same
 * reason it reads through `net`'s `onread` into one buffer per process (no stream layer on the read side),
 * and hands onFrame only a frame's envelope unless asked for more (`decode`). It is a bench client only: no
 * extensions, no text frames sent, and only what the broker sends is parsed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { decodeEnvelope, decodeFrame, type Envelope, encodeFrameShared } from './codec.js';

export const SUBPROTOCOL_MSGPACK = 'switchboard.v1.msgpack';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** A server frame larger than this fails the socket: the broker caps its frames at 256 KiB. */
export const MAX_INBOUND_FRAME_BYTES = 1 << 20;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONTINUATION = 0x0;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export type Role = 'visitor' | 'agent';

/** A whole server frame, for clients that read more than the envelope (a `msg`'s body, a seq). */
export const decodeServerFrame = (payload: Uint8Array): ServerFrame => decodeFrame(payload) as ServerFrame;

/**
 * Bytes read from any socket land here first. Reads are handled one at a time, on the main thread, to the
 * end before the next: a socket keeps only a copy of what it has not parsed yet. One buffer per process
 * instead of a new chunk per read and the stream layer's `data` event (issue #13: the generators' CPU).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** `F` is what onFrame gets: the envelope (decodeEnvelope), unless `decode` reads more. */
export interface OpenOptions<F extends Envelope = Envelope> {
  /** ws://host:port (no path): the role picks /ws/visitor or /ws/agent. */
  base: string;
  role: Role;
  token: string;
  /** Who the token names; clients of peers without token checks (NATS) use it directly. */
  identity?: { tenant: string; user: string };
  /** Source address to bind (127.0.0.x), so one machine can open more than ~28k sockets per port. */
  localAddress?: string;
  handshakeTimeoutMs?: number;
  /** How a server frame's payload becomes what onFrame gets; decodeEnvelope when not given. */
  decode?: (payload: Uint8Array) => F;
  onFrame(frame: F): void;
  onClose(code: number): void;
}

export interface BenchSocket {
  /** The broker process (worker) that holds this socket, from `welcome`. */
  readonly node: string;
  /** Encodes and sends a client frame; false when the socket is no longer open. */
  send(frame: Record<string, unknown>): boolean;
  isOpen(): boolean;
  /** Bytes queued in the client towards the broker (the broker is not reading fast enough). */
  bufferedBytes(): number;
  /** Close handshake (1000); resolves when closed or after the timeout. */
  close(timeoutMs?: number): Promise<void>;
  /** Drops the TCP connection at once. */
  terminate(): void;
}

/** Why a socket could not be opened: `http-<status>`, an errno code (ECONNREFUSED, EADDRNOTAVAIL…), … */
export class OpenError extends Error {
  constructor(
    readonly reason: string,
    /** A refused upgrade's (503 `unavailable`) advice, from its JSON body, when it came with the head. */
    readonly retryAfterMs?: number,
  ) {
    super(`socket not opened: ${reason}`);
    this.name = 'OpenError';
  }
}

export function openSocket<F extends Envelope = Envelope>(opts: OpenOptions<F>): Promise<BenchSocket> {
  const url = new URL(`${opts.base}/ws/${opts.role}`);
  const port = Number(url.port || 80);
  const key = randomBytes(16).toString('base64');
  const expectedAccept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  let conn: Connection<F> | undefined;
  const sock = connect({
    host: url.hostname,
    port,
    noDelay: true,
    ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number, buf: Uint8Array) => {
        conn?.onData(buf.subarray(0, n) as Buffer, expectedAccept);
        return true;
      },
    },
  });
  conn = new Connection(sock, opts, opts.decode ?? (decodeEnvelope as (payload: Uint8Array) => F));
  sock.once('connect', () => {
    sock.write(
      `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL_MSGPACK}\r\n` +
        `Authorization: Bearer ${opts.token}\r\n\r\n`,
    );
  });
  return conn.opened();
}

/** One socket's state: the upgrade, then the frame parser; `welcome` resolves `opened`. */
class Connection<F extends Envelope> implements BenchSocket {
  node = '';
  private state: 'upgrading' | 'open' | 'closing' | 'closed' = 'upgrading';
  private welcomed = false;
  private settle: ((err: OpenError | null) => void) | undefined;
  private pending: Buffer | undefined;
  private fragments: Buffer[] = [];
  private closeCode = 1006;
  private readonly mask = randomBytes(4);
  private readonly onClosedWaiters: (() => void)[] = [];

  constructor(
    private readonly sock: Socket,
    private readonly opts: OpenOptions<F>,
    private readonly decode: (payload: Uint8Array) => F,
  ) {}

  opened(): Promise<BenchSocket> {
    return new Promise<BenchSocket>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.settle?.(new OpenError(this.state === 'upgrading' ? 'handshake-timeout' : 'welcome-timeout')),
        this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      );
      this.settle = (err) => {
        this.settle = undefined;
        clearTimeout(timer);
        if (err) {
          reject(err);
          this.terminate();
        } else resolve(this);
      };
      this.sock.on('error', (err: NodeJS.ErrnoException) =>
        this.settle?.(new OpenError(err.code ?? 'error')),
      );
      this.sock.on('close', () => this.onSocketClosed());
    });
  }

  /** `chunk` is READ_BUFFER's: whatever outlives this call is copied. */
  onData(chunk: Buffer, expectedAccept: string): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    if (this.state === 'upgrading') {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (data.length > 16_384) this.settle?.(new OpenError('bad-upgrade'));
        else this.pending = Buffer.from(data);
        return;
      }
      const reason = upgradeRefusal(data.subarray(0, end).toString('latin1'), expectedAccept);
      if (reason) {
        const advice = /"retryAfterMs":(\d+)/.exec(
          data.toString('latin1', end + 4, Math.min(data.length, end + 4 + 1024)),
        );
        this.settle?.(new OpenError(reason, advice ? Number(advice[1]) : undefined));
        return;
      }
      this.state = 'open';
      data = data.subarray(end + 4);
    }
    let at = 0;
    while (this.state !== 'closed') {
      const frame = readFrame(data, at);
      if (frame === 'partial') break;
      if (frame === 'too-large') {
        this.fail();
        return;
      }
      at = frame.next;
      this.onWsFrame(frame.fin, frame.opcode, data.subarray(frame.start, frame.next));
    }
    if (at < data.length && this.state !== 'closed') this.pending = Buffer.from(data.subarray(at));
  }

  private onWsFrame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === OP_BINARY || opcode === OP_CONTINUATION) {
      if (!fin || this.fragments.length > 0) {
        this.fragments.push(Buffer.from(payload));
        if (!fin) return;
        payload = Buffer.concat(this.fragments);
        this.fragments = [];
      }
      this.onMessage(payload);
    } else if (opcode === OP_PING) this.writeFrame(OP_PONG, payload);
    else if (opcode === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (this.state === 'open') this.writeFrame(OP_CLOSE, payload.subarray(0, 2));
      this.state = 'closing';
      this.sock.end();
    }
  }

  private onMessage(payload: Buffer): void {
    let frame: F;
    try {
      frame = this.decode(payload);
    } catch {
      return;
    }
    if (!this.welcomed) {
      if (frame.type !== 'welcome' || !this.settle) return;
      this.welcomed = true;
      this.node = frame.node ?? '';
      this.settle(null);
      return;
    }
    this.opts.onFrame(frame);
  }

  private onSocketClosed(): void {
    const was = this.state;
    this.state = 'closed';
    if (this.settle) this.settle(new OpenError(was === 'upgrading' ? 'error' : `closed-${this.closeCode}`));
    else if (this.welcomed) this.opts.onClose(this.closeCode);
    for (const w of this.onClosedWaiters.splice(0)) w();
  }

  private fail(): void {
    this.closeCode = 1009;
    this.terminate();
  }

  /** A masked client frame; payloads here are small, so the XOR is a plain loop. */
  private writeFrame(opcode: number, payload: Uint8Array): void {
    const len = payload.length;
    const head = len < 126 ? 6 : len < 65_536 ? 8 : 14;
    const out = Buffer.allocUnsafe(head + len);
    out[0] = 0x80 | opcode;
    if (len < 126) out[1] = 0x80 | len;
    else if (len < 65_536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(len, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(len), 2);
    }
    const m = this.mask;
    out[head - 4] = m[0]!;
    out[head - 3] = m[1]!;
    out[head - 2] = m[2]!;
    out[head - 1] = m[3]!;
    for (let i = 0; i < len; i++) out[head + i] = payload[i]! ^ m[i & 3]!;
    this.sock.write(out);
  }

  send(frame: Record<string, unknown>): boolean {
    if (this.state !== 'open') return false;
    // writeFrame copies the payload (masked) into the frame it writes.
    this.writeFrame(OP_BINARY, encodeFrameShared(frame));
    return true;
  }

  isOpen(): boolean {
    return this.state === 'open';
  }

  bufferedBytes(): number {
    return this.sock.writableLength;
  }

  close(timeoutMs = 5000): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.terminate();
        resolve();
      }, timeoutMs);
      this.onClosedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      if (this.state === 'open') {
        const code = Buffer.allocUnsafe(2);
        code.writeUInt16BE(1000, 0);
        this.writeFrame(OP_CLOSE, code);
        this.state = 'closing';
      }
    });
  }

  terminate(): void {
    this.sock.destroy();
  }
}

/** The reason an upgrade response refuses the socket, or undefined for a good 101. */
function upgradeRefusal(head: string, expectedAccept: string): string | undefined {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
  if (!status) return 'bad-upgrade';
  if (status[1] !== '101') return `http-${status[1]}`;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('sec-websocket-accept') !== expectedAccept) return 'bad-accept';
  if (headers.get('sec-websocket-protocol') !== SUBPROTOCOL_MSGPACK) return 'bad-subprotocol';
  return undefined;
}

/** One server frame at `at` (servers never mask), or 'partial' until more bytes arrive. */
function readFrame(
  data: Buffer,
  at: number,
): { fin: boolean; opcode: number; start: number; next: number } | 'partial' | 'too-large' {
  if (data.length - at < 2) return 'partial';
  const b0 = data[at]!;
  const b1 = data[at + 1]! & 0x7f;
  let start = at + 2;
  let len = b1;
  if (b1 === 126) {
    if (data.length - at < 4) return 'partial';
    len = data.readUInt16BE(at + 2);
    start = at + 4;
  } else if (b1 === 127) {
    if (data.length - at < 10) return 'partial';
    const big = data.readBigUInt64BE(at + 2);
    if (big > BigInt(MAX_INBOUND_FRAME_BYTES)) return 'too-large';
    len = Number(big);
    start = at + 10;
  }
  if (len > MAX_INBOUND_FRAME_BYTES) return 'too-large';
  if (data.length - start < len) return 'partial';
  return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, start, next: start + len };
}

/** Gives libraries written for the W3C WebSocket API (nats.ws) the `ws` implementation in Node 20. */
export function installW3cWebSocket(): void {
  const g = globalThis as { WebSocket?: unknown };
  g.WebSocket ??= WebSocket;
}
