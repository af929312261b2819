/**
 * The systems the `peers` scenario compares, each started fresh as a BrokerTarget: Switchboard (a node of
 * --workers workers), the Socket.IO relay without and with persistence (bench/peers/socketio-server.ts),
 * and nats-server's own WebSocket listener with clients speaking NATS, without and with JetStream.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer } from '../../src/stack/nats-server.js';
import { startScript } from '../lib/cli-process.js';
import { processTree } from '../lib/proc.js';
import { ensureServers } from '../lib/servers.js';
import {
  BENCH_JWT_SECRET,
  type BrokerTarget,
  startFromEmptyKeyspace,
  startNodeTarget,
} from '../lib/target.js';
import { ensureChatStream } from './nats-client.js';

export const PEER_SYSTEMS = ['switchboard', 'socketio', 'socketio-persist', 'nats', 'nats-persist'] as const;
export type PeerSystem = (typeof PEER_SYSTEMS)[number];

export const PEER_DESCRIPTIONS: Record<PeerSystem, string> = {
  switchboard: 'Switchboard: ack after the Cassandra write, fan-out through NATS',
  socketio: 'Socket.IO relay, one process, no persistence (ack on receipt)',
  'socketio-persist': 'Socket.IO relay, one process, ack after a Cassandra INSERT per message',
  nats: "NATS WebSocket listener, clients speak NATS; ack = the server's PONG after the publish",
  'nats-persist': 'NATS WebSocket listener with JetStream; ack = PubAck once the message is stored',
};

const SERVER_PATH = fileURLToPath(new URL('./socketio-server.js', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface PeerTargetOptions {
  workers: number;
  natsUrl: string;
  cassandra: string;
  keyspace: string;
  keepKeyspace: boolean;
  say(line: string): void;
}

export async function startPeerTarget(system: PeerSystem, o: PeerTargetOptions): Promise<BrokerTarget> {
  switch (system) {
    case 'switchboard':
      return startNodeTarget(o);
    case 'socketio':
    case 'socketio-persist':
      return startSocketIo(system === 'socketio-persist', o);
    case 'nats':
    case 'nats-persist':
      return startNatsWs(system === 'nats-persist', o);
  }
}

async function startSocketIo(persist: boolean, o: PeerTargetOptions): Promise<BrokerTarget> {
  const servers = persist ? await ensureServers(o) : undefined;
  const keyspace = `${o.keyspace}_peers`;
  // The same clean start as Switchboard's node (its table would otherwise grow run after run).
  if (servers) await startFromEmptyKeyspace(servers, keyspace, o);
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-peer-'));
  const logFile = join(dir, 'socketio.log');
  o.say(`starting the Socket.IO relay (persistence ${persist ? 'on' : 'off'}), log ${logFile}`);
  const server = await startScript<{ port: number }>(
    SERVER_PATH,
    [],
    {
      ...process.env,
      SB_PEER_PORT: '0',
      SB_PEER_SECRET: BENCH_JWT_SECRET,
      SB_PEER_PERSIST: persist ? '1' : '0',
      SB_PEER_CASSANDRA: o.cassandra,
      SB_PEER_KEYSPACE: keyspace,
    },
    logFile,
    READY_TIMEOUT_MS,
  );
  const { port } = server.ready;
  return {
    description: `Socket.IO relay (persistence ${persist ? 'on' : 'off'})`,
    client: { protocol: 'socketio' },
    nodes: [
      {
        nodeId: 'socketio',
        port,
        wsBase: `ws://127.0.0.1:${port}`,
        httpBase: `http://127.0.0.1:${port}`,
        workers: 1,
      },
    ],
    jwtSecret: BENCH_JWT_SECRET,
    probeDir: undefined,
    logFile,
    brokerPids: () => processTree([server.pid]),
    natsPids: () => [],
    cassandraPids: () => servers?.cassandraPids() ?? [],
    async stop() {
      await server.stop();
      await servers?.stop();
    },
  };
}

async function startNatsWs(persist: boolean, o: PeerTargetOptions): Promise<BrokerTarget> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-bench-nats-peer-'));
  o.say(
    `starting nats-server with a WebSocket listener (JetStream ${persist ? 'on' : 'off'}), data in ${dataDir}`,
  );
  const nats = await startNatsServer({ dataDir, jetstream: persist, websocketPort: 0 });
  const wsPort = nats.websocketPort!;
  const wsBase = `ws://127.0.0.1:${wsPort}`;
  if (persist) await ensureChatStream(wsBase);
  return {
    description: `nats-server WebSocket listener (JetStream ${persist ? 'on' : 'off'})`,
    client: { protocol: 'nats', persist },
    nodes: [
      { nodeId: 'nats-server', port: wsPort, wsBase, httpBase: `http://127.0.0.1:${wsPort}`, workers: 1 },
    ],
    jwtSecret: BENCH_JWT_SECRET,
    probeDir: undefined,
    logFile: nats.logFile,
    // Here nats-server is the broker: its CPU and memory are reported as the broker's.
    brokerPids: () => (nats.isRunning() ? [nats.pid] : []),
    natsPids: () => [],
    cassandraPids: () => [],
    async stop() {
      await nats.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
