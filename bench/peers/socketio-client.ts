/**
 * Load client for the Socket.IO peer (socket.io-client, imported here only): the same BenchSocket shape as
 * Switchboard's client. `send` becomes an emit with an acknowledgement callback (Socket.IO's idiom for
 * "the server has it"), turned into an `ack` frame; the relay's `msg` events become `msg` frames.
 */
import { io } from 'socket.io-client';
import {
  type BenchSocket,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  OpenError,
  type OpenOptions,
} from '../lib/ws-client.js';

/** What the relay answers to `send` (bench/peers/socketio-server.ts). */
export interface RelayAnswer {
  ok: boolean;
  ts?: number;
  code?: string;
}

export interface RelayMsg {
  conv: string;
  cmid: string;
  from: string;
  body: string;
  ts: number;
}

export function openSocketIo(o: OpenOptions): Promise<BenchSocket> {
  const socket = io(o.base.replace(/^ws/, 'http'), {
    transports: ['websocket'],
    auth: { token: o.token },
    reconnection: false,
    forceNew: true,
    timeout: o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
  });
  const user = o.identity?.user ?? '';
  socket.on('msg', (m: RelayMsg) => {
    o.onFrame({ type: 'msg', conv: m.conv, cmid: m.cmid, from: m.from });
  });
  return new Promise((resolve, reject) => {
    socket.once('connect_error', (err) => {
      socket.close();
      reject(new OpenError(err.message || 'connect_error'));
    });
    socket.once('connect', () => {
      socket.on('disconnect', () => o.onClose(1006));
      resolve({
        node: 'socketio',
        send(frame) {
          if (!socket.connected) return false;
          const conv = String(frame['conv']);
          const cmid = String(frame['cmid']);
          socket.emit(
            'send',
            { conv, cmid, body: frame['body'], to: frame['to'], from: user },
            (a: RelayAnswer) => {
              o.onFrame(
                a.ok ? { type: 'ack', cmid, conv } : { type: 'error', code: a.code ?? 'internal', ref: cmid },
              );
            },
          );
          return true;
        },
        isOpen: () => socket.connected,
        bufferedBytes: () => 0,
        async close() {
          socket.close();
        },
        terminate: () => socket.close(),
      });
    });
  });
}
