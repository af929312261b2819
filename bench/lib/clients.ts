/**
 * Opens one load client in the protocol of the target: Switchboard's own WebSocket protocol, or a peer's
 * (loaded only when used, so Switchboard runs never load socket.io-client or nats.ws). Every client has
 * the BenchSocket shape and reports `ack` / `msg` / `error` frames, so the same generator drives them all.
 */
import type { ClientSpec } from './target.js';
import { type BenchSocket, OpenError, type OpenOptions, openSocket } from './ws-client.js';

/** Refused upgrades (503, the node's upgrade admission) retried at most this many times per socket. */
const MAX_REFUSED_UPGRADES = 30;

/**
 * A Switchboard socket, retried as docs/PROTOCOL.md asks of a refused upgrade (503 `unavailable`): wait
 * `retryAfterMs × (1 + random/4)`, at most MAX_REFUSED_UPGRADES times; any other failure is final.
 */
async function openSwitchboard(o: OpenOptions): Promise<BenchSocket> {
  for (let refused = 0; ; refused++) {
    try {
      return await openSocket(o);
    } catch (err) {
      if (!(err instanceof OpenError) || err.reason !== 'http-503' || refused >= MAX_REFUSED_UPGRADES)
        throw err;
      const wait = (err.retryAfterMs ?? 250) * (1 + Math.random() / 4);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export async function openClient(spec: ClientSpec, o: OpenOptions): Promise<BenchSocket> {
  switch (spec.protocol) {
    case 'switchboard':
      return openSwitchboard(o);
    case 'socketio':
      return (await import('../peers/socketio-client.js')).openSocketIo(o);
    case 'nats':
      return (await import('../peers/nats-client.js')).openNatsWs(o, spec.persist);
  }
}
