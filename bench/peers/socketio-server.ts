/**
 * The Socket.IO peer: the visitor → agent relay a team would otherwise write with Socket.IO, run as its own
 * process by the `peers` scenario. Same token check as Switchboard (HS256, via src/gateway/auth.ts); each
 * socket joins its user's room; `send` is acknowledged, then emitted to the recipient's room. With
 * SB_PEER_PERSIST=1 every message is first written to Cassandra (one prepared INSERT, awaited), so the ack
 * means "stored", as Switchboard's does. One process, as a plain Socket.IO server is: scaling it out would
 * need sticky sessions and an adapter (Redis or similar). Prints `{"ready":true,"port":N}` when listening.
 * cassandra-driver is imported here as the peer's own dependency, outside src/store on purpose.
 */
import { createServer } from 'node:http';
import cassandra from 'cassandra-driver';
import { Server } from 'socket.io';
import { createAuthenticator, type Principal } from '../../src/gateway/auth.js';
import type { RelayAnswer, RelayMsg } from './socketio-client.js';

const env = process.env;
const port = Number(env['SB_PEER_PORT'] ?? 0);
const persist = env['SB_PEER_PERSIST'] === '1';
const auth = createAuthenticator(env['SB_PEER_SECRET'] ?? '');
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_BODY_CHARS = 4000;

interface Store {
  insert(tenant: string, m: RelayMsg): Promise<void>;
  close(): Promise<void>;
}

async function openStore(): Promise<Store> {
  const [host, p] = (env['SB_PEER_CASSANDRA'] ?? '127.0.0.1:19042').split(':');
  const keyspace = env['SB_PEER_KEYSPACE'] ?? 'sb_bench_peers';
  const opts = { contactPoints: [`${host}:${p}`], localDataCenter: 'datacenter1' };
  const admin = new cassandra.Client(opts);
  await admin.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  );
  await admin.execute(
    `CREATE TABLE IF NOT EXISTS ${keyspace}.peer_messages (tenant text, conv text, cmid text, sender text, body text, ts timestamp, PRIMARY KEY ((tenant, conv), cmid))`,
  );
  await admin.shutdown();
  const client = new cassandra.Client({ ...opts, keyspace });
  await client.connect();
  const cql = 'INSERT INTO peer_messages (tenant, conv, cmid, sender, body, ts) VALUES (?, ?, ?, ?, ?, ?)';
  return {
    async insert(tenant, m) {
      await client.execute(cql, [tenant, m.conv, m.cmid, m.from, m.body, new Date(m.ts)], {
        prepare: true,
        consistency: cassandra.types.consistencies.localOne,
      });
    },
    close: () => client.shutdown(),
  };
}

function valid(m: unknown): m is { conv: string; cmid: string; body: string; to: string } {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  return (
    typeof o['conv'] === 'string' &&
    ID_PATTERN.test(o['conv']) &&
    typeof o['cmid'] === 'string' &&
    ID_PATTERN.test(o['cmid']) &&
    typeof o['to'] === 'string' &&
    ID_PATTERN.test(o['to']) &&
    typeof o['body'] === 'string' &&
    o['body'].length <= MAX_BODY_CHARS
  );
}

async function main(): Promise<void> {
  const store = persist ? await openStore() : undefined;
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
  io.use((socket, next) => {
    auth.verify(socket.handshake.auth['token'] as string | undefined).then(
      (p) => {
        socket.data = p;
        next();
      },
      () => next(new Error('unauthorized')),
    );
  });
  io.on('connection', (socket) => {
    const p = socket.data as Principal;
    void socket.join(`${p.tenant}:${p.user}`);
    socket.on('send', (m: unknown, answer: (a: RelayAnswer) => void) => {
      if (typeof answer !== 'function') return;
      if (!valid(m)) {
        answer({ ok: false, code: 'invalid_field' });
        return;
      }
      const msg: RelayMsg = { conv: m.conv, cmid: m.cmid, from: p.user, body: m.body, ts: Date.now() };
      const relay = (): void => {
        answer({ ok: true, ts: msg.ts });
        io.to(`${p.tenant}:${m.to}`).emit('msg', msg);
      };
      if (!store) relay();
      else store.insert(p.tenant, msg).then(relay, () => answer({ ok: false, code: 'internal' }));
    });
  });
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  const address = http.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  console.log(JSON.stringify({ ready: true, port: actual, persist }));
  const stop = (): void => {
    io.close();
    void store?.close().finally(() => process.exit(0));
    if (!store) process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
