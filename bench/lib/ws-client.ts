/**
 * The bench's WebSocket client: one authenticated Switchboard socket on the msgpack subprotocol, over the
 * `ws` package (imported here only). `openSocket` resolves at `welcome`, which the
 * broker sends only once the user's NATS interest is registered — so a resolved socket is a fully
 * subscribed visitor or agent. Failures are classified into short, stable reasons for the report.
 */
import WebSocket from 'ws';
import type { ServerFrame, WelcomeFrame } from '../../src/protocol/frames.js';
import { decodeFrame, encodeFrame } from './codec.js';

export const SUBPROTOCOL_MSGPACK = 'switchboard.v1.msgpack';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

export type Role = 'visitor' | 'agent';

export interface OpenOptions {
  /** ws://host:port (no path): the role picks /ws/visitor or /ws/agent. */
  base: string;
  role: Role;
  token: string;
  /** Who the token names; clients of peers without token checks (NATS) use it directly. */
  identity?: { tenant: string; user: string };
  /** Source address to bind (127.0.0.x), so one machine can open more than ~28k sockets per port. */
  localAddress?: string;
  handshakeTimeoutMs?: number;
  onFrame(frame: ServerFrame): void;
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
  constructor(readonly reason: string) {
    super(`socket not opened: ${reason}`);
    this.name = 'OpenError';
  }
}

export function openSocket(opts: OpenOptions): Promise<BenchSocket> {
  const ws = new WebSocket(`${opts.base}/ws/${opts.role}`, [SUBPROTOCOL_MSGPACK], {
    headers: { authorization: `Bearer ${opts.token}` },
    perMessageDeflate: false,
    handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
  });
  ws.binaryType = 'nodebuffer';
  return new Promise<BenchSocket>((resolve, reject) => {
    let settled = false;
    let welcomed = false;
    // `ws` times out the upgrade only; a broker that upgrades but never registers the socket must fail too.
    const timer = setTimeout(
      () => fail('welcome-timeout'),
      opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new OpenError(reason));
      ws.terminate();
    };
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      fail(`http-${res.statusCode ?? 0}`);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      fail(err.code ?? (/timeout/i.test(err.message) ? 'handshake-timeout' : 'error'));
    });
    ws.on('close', (code) => {
      if (welcomed) opts.onClose(code);
      else fail(`closed-${code}`);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      let frame: ServerFrame;
      try {
        frame = decodeFrame(data) as ServerFrame;
      } catch {
        return;
      }
      if (!welcomed) {
        if (frame.type !== 'welcome' || settled) return;
        settled = true;
        welcomed = true;
        clearTimeout(timer);
        resolve(makeSocket(ws, (frame as WelcomeFrame).node));
        return;
      }
      opts.onFrame(frame);
    });
  });
}

function makeSocket(ws: WebSocket, node: string): BenchSocket {
  return {
    node,
    send(frame) {
      if (ws.readyState !== WebSocket.OPEN) return false;
      ws.send(encodeFrame(frame));
      return true;
    },
    isOpen: () => ws.readyState === WebSocket.OPEN,
    bufferedBytes: () => ws.bufferedAmount,
    close(timeoutMs = 5000) {
      if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, timeoutMs);
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1000);
      });
    },
    terminate: () => ws.terminate(),
  };
}

/** Gives libraries written for the W3C WebSocket API (nats.ws) the `ws` implementation in Node 20. */
export function installW3cWebSocket(): void {
  const g = globalThis as { WebSocket?: unknown };
  g.WebSocket ??= WebSocket;
}
