/**
 * A socket's state and its outgoing frames: the bounded send (4008 past the send limit), the outbox
 * written once at the end of a turn, and the `ack` held for the sender's own echo so both leave in one
 * corked write (issue #13). Split from the gateway (server.ts), which owns the sockets; uWS is only a
 * type here.
 */
import type * as uWS from 'uWebSockets.js';
import type { Codec } from '../protocol/codec.js';
import { CLOSE_CODES } from '../protocol/frames.js';
import type { Bucket } from './rate-limit.js';
import type { SessionSocket } from './sessions.js';

/**
 * Per-socket state. A plain object: uWS copies the user data's own properties at upgrade (its
 * prototype does not survive), so behaviour lives in functions of the gateway, not methods here.
 */
export interface SocketData extends SessionSocket {
  readonly codec: Codec;
  readonly expiresAt: number;
  /** Roles from the token's `roles` claim (agent actions). */
  readonly roles?: readonly string[];
  /** This connection's frame rate-limit bucket. */
  readonly bucket: Bucket;
  /** From the token's `perms` claim (e.g. `pii.reveal`). */
  readonly perms: readonly string[];
  closed: boolean;
  /** An agent socket counted in the presence reports. */
  announced: boolean;
  ws: uWS.WebSocket<SocketData> | undefined;
  /** `welcome` was sent: until then pushed frames wait in `early`, so `welcome` is always first. */
  welcomed: boolean;
  /** Counted in the upgrade admission's in-progress bound until `welcome` or close (admission.ts). */
  admitting: boolean;
  /** When the upgrade admission admitted it (epoch ms). */
  admittedAt: number;
  /** Frames pushed before `welcome` (at most EARLY_FRAMES_MAX; beyond, dropped: the client syncs the gap). */
  early?: (Uint8Array | string)[];
  /** Acks waiting to go out corked with the sender's own echo (holdAck). */
  heldAcks?: (Uint8Array | string)[];
  ackTimer?: NodeJS.Timeout | undefined;
  /** `send` frames of this socket not answered yet (ack or error). */
  inflight: number;
  /** Frames waiting for the end of this event-loop turn, to leave in one corked write (queueFrame). */
  outbox?: (Uint8Array | string)[];
}

/**
 * An `ack` waits at most this long for the sender's own `msg` echo (which comes back through NATS,
 * usually within a millisecond) so that both leave in one corked write, one system call instead of
 * two (issue #13: each uncorked ws.send was a write of its own). Delivery to the other side does not
 * wait; only the sender's ack may be this much later.
 */
export const ACK_HOLD_MS = 2;
/** Acks held per socket at most; one more sends them all at once. */
export const MAX_HELD_ACKS = 64;

/**
 * Sends one frame unless the socket's send buffer already holds more than `limit` bytes; then the frame
 * is dropped and the socket is closed with 4008. The bound is enforced here rather than by uWS's
 * maxBackpressure (which is off): uWS drops *every* send over its limit, the close frame included, so a
 * client would only ever see 1006; checked here, the close frame still goes out behind the buffered
 * frames. As with uWS's own check, a buffer below the limit takes one more frame of any size, so a
 * socket holds at most `limit` plus one frame (a `messages` answer is the largest) plus the close frame.
 */
export function sendBounded(data: SocketData, payload: Uint8Array | string, limit: number): void {
  const ws = data.ws;
  if (data.closed || !ws) return;
  if (ws.getBufferedAmount() > limit) {
    ws.end(CLOSE_CODES.slowConsumer, 'slow consumer');
    return;
  }
  ws.send(payload, data.codec.binary);
}

/**
 * Sockets with frames in their outbox, written at the end of the turn. A sender's own echo and its
 * `ack` are made in the same turn when the conversation's owner is in this process (the echo is
 * delivered as the write commits, the ack a few microtasks later): held to the end of the turn they
 * leave in one write, where the echo alone and the ack after ACK_HOLD_MS were two writes and a timer.
 */
const dirtySockets: SocketData[] = [];
/** The send limit of each listed socket's gateway (a process may run several in tests). */
const dirtyLimits: number[] = [];
let outboxFlushScheduled = false;

/** Writes every waiting outbox, each in one corked write. */
export function flushOutboxes(): void {
  outboxFlushScheduled = false;
  // Bounded: one entry per outbox started this turn, each with at least one frame queued in it (a socket
  // whose outbox filled and left early is listed again only for frames queued after that).
  const dirty = dirtySockets.splice(0);
  const limits = dirtyLimits.splice(0);
  for (let i = 0; i < dirty.length; i++) flushOutbox(dirty[i]!, limits[i]!);
}

function flushOutbox(data: SocketData, limit: number): void {
  const out = data.outbox;
  data.outbox = undefined;
  const ws = data.ws;
  if (out === undefined || data.closed || !ws) return;
  if (out.length === 1) {
    sendBounded(data, out[0]!, limit);
    return;
  }
  ws.cork(() => {
    for (const frame of out) sendBounded(data, frame, limit);
  });
}

/**
 * Queues a frame for the end of this turn (setImmediate). At MAX_HELD_ACKS frames the socket's outbox
 * is written at once, so an outbox never holds more.
 */
export function queueFrame(data: SocketData, frame: Uint8Array | string, limit: number): void {
  if (data.closed || !data.ws) return;
  if (data.outbox === undefined) {
    data.outbox = [frame];
    dirtySockets.push(data);
    dirtyLimits.push(limit);
    if (!outboxFlushScheduled) {
      outboxFlushScheduled = true;
      setImmediate(flushOutboxes);
    }
    return;
  }
  data.outbox.push(frame);
  if (data.outbox.length >= MAX_HELD_ACKS) flushOutbox(data, limit);
}

/** Sends the held acks, then `next` (a delivered frame) if given, in one corked write. */
export function releaseAcks(data: SocketData, limit: number, next?: Uint8Array | string): void {
  if (data.ackTimer) clearTimeout(data.ackTimer);
  data.ackTimer = undefined;
  const held = data.heldAcks;
  data.heldAcks = undefined;
  const ws = data.ws;
  if (data.closed || !ws) return;
  ws.cork(() => {
    for (const ack of held ?? []) sendBounded(data, ack, limit);
    if (next !== undefined) sendBounded(data, next, limit);
  });
}

/** Holds an ack until the socket's next delivered frame, ACK_HOLD_MS or MAX_HELD_ACKS, whichever first. */
export function holdAck(data: SocketData, ack: Uint8Array | string, limit: number): void {
  if (data.closed || !data.ws) return;
  if (data.outbox !== undefined) {
    // The echo (or another frame) is already waiting for the end of this turn: the ack joins it.
    queueFrame(data, ack, limit);
    return;
  }
  if (data.heldAcks === undefined) data.heldAcks = [ack];
  else data.heldAcks.push(ack);
  if (data.heldAcks.length >= MAX_HELD_ACKS) releaseAcks(data, limit);
  else data.ackTimer ??= setTimeout(() => releaseAcks(data, limit), ACK_HOLD_MS);
}
