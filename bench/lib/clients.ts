/**
 * Opens one load client in the protocol of the target: Switchboard's own WebSocket protocol, or a peer's
 * (loaded only when used, so Switchboard runs never load socket.io-client or nats.ws). Every client has
 * the BenchSocket shape and reports `ack` / `msg` / `error` frames, so the same generator drives them all.
 */
import type { ClientSpec } from './target.js';
import { type BenchSocket, type OpenOptions, openSocket } from './ws-client.js';

export async function openClient(spec: ClientSpec, o: OpenOptions): Promise<BenchSocket> {
  switch (spec.protocol) {
    case 'switchboard':
      return openSocket(o);
    case 'socketio':
      return (await import('../peers/socketio-client.js')).openSocketIo(o);
    case 'nats':
      return (await import('../peers/nats-client.js')).openNatsWs(o, spec.persist);
  }
}
