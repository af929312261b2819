/**
 * Load client for the NATS peer: clients speak NATS directly to nats-server's WebSocket listener (nats.ws,
 * imported here only). Each user subscribes to `chat.<tenant>.<user>` (as Switchboard's gateway does for
 * it); a `send` publishes to the recipient's subject. The ack is the server's word that it has the message:
 * the PONG of a flush for a core publish, or the JetStream PubAck once the message is stored (persist).
 * There is no token check: the bench's nats-server runs without auth (a real one would use NKEYs/JWTs).
 */
import { connect, type JetStreamClient, type NatsConnection } from 'nats.ws';
import { decodeEnvelopeFields, encodeFrame } from '../lib/codec.js';
import {
  type BenchSocket,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  installW3cWebSocket,
  OpenError,
  type OpenOptions,
} from '../lib/ws-client.js';

export const CHAT_STREAM = 'CHAT';
export const CHAT_SUBJECTS = 'chat.>';
/** Stored chat messages are kept this long: long enough for a run, short enough not to fill the disk. */
const CHAT_MAX_AGE_NS = 600 * 1e9;

interface ChatMessage {
  conv: string;
  cmid: string;
  from: string;
  body: string;
  ts: number;
}

async function connectWs(url: string, timeoutMs: number): Promise<NatsConnection> {
  installW3cWebSocket();
  return connect({ servers: url, reconnect: false, timeout: timeoutMs });
}

/** Creates the stream that stores chat messages for the persist variant (idempotent). */
export async function ensureChatStream(url: string): Promise<void> {
  const nc = await connectWs(url, DEFAULT_HANDSHAKE_TIMEOUT_MS);
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: CHAT_STREAM, subjects: [CHAT_SUBJECTS], max_age: CHAT_MAX_AGE_NS });
  } finally {
    await nc.close();
  }
}

export async function openNatsWs(o: OpenOptions, persist: boolean): Promise<BenchSocket> {
  const id = o.identity;
  if (!id) throw new OpenError('no-identity');
  let nc: NatsConnection;
  try {
    nc = await connectWs(o.base, o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
  } catch (err) {
    throw new OpenError((err as { code?: string }).code ?? 'connect-error');
  }
  nc.subscribe(`chat.${id.tenant}.${id.user}`, {
    callback: (err, m) => {
      if (err) return;
      // Only what the generator compares, read as the Switchboard client reads its frames (body skipped).
      const c = decodeEnvelopeFields(m.data);
      o.onFrame({ type: 'msg', conv: String(c.conv), cmid: String(c.cmid), from: String(c.from) });
    },
  });
  // Like Switchboard's welcome: the subscription is registered at the server before anything is sent.
  await nc.flush();
  let open = true;
  void nc.closed().then(() => {
    open = false;
    o.onClose(1006);
  });
  const js: JetStreamClient | undefined = persist ? nc.jetstream() : undefined;
  const ack = (cmid: string, conv: string): void => o.onFrame({ type: 'ack', cmid, conv });
  const fail = (cmid: string): void => o.onFrame({ type: 'error', code: 'internal', ref: cmid });
  return {
    node: 'nats-server',
    send(frame) {
      if (!open) return false;
      const conv = String(frame['conv']);
      const cmid = String(frame['cmid']);
      const subject = `chat.${id.tenant}.${String(frame['to'])}`;
      const message: ChatMessage = { conv, cmid, from: id.user, body: String(frame['body']), ts: Date.now() };
      const data = encodeFrame(message);
      if (js) {
        js.publish(subject, data, { msgID: `${conv}.${cmid}` }).then(
          () => ack(cmid, conv),
          () => fail(cmid),
        );
      } else {
        nc.publish(subject, data);
        nc.flush().then(
          () => ack(cmid, conv),
          () => fail(cmid),
        );
      }
      return true;
    },
    isOpen: () => open,
    bufferedBytes: () => 0,
    async close() {
      await nc.close();
    },
    terminate: () => void nc.close(),
  };
}
