/**
 * The local stack a node needs: a nats-server with JetStream and a Cassandra, each started only
 * when nothing answers on its port already, and stopped again by `stop()` (only what we started).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type CassandraHandle, findProjectRoot, startCassandra } from './cassandra.js';
import { type NatsServerHandle, startNatsServer } from './nats-server.js';
import { isTcpReachable } from './process.js';

export interface LocalStackOptions {
  natsPort: number;
  cassandraPort: number;
  cassandraStoragePort: number;
  cassandraJmxPort: number;
  /** Folder for the servers' data; default `<project>/.stack/<name>`. */
  dataRoot?: string;
  cassandraHeapMb?: number;
  /**
   * Throw away the data of a server this call starts before starting it (default false). For a
   * throwaway stack such as the tests': each run leaves its keyspaces behind, and a few hundred of
   * them make Cassandra run out of heap while it loads them.
   */
  fresh?: boolean;
  /** Progress lines (e.g. console.log). */
  say?: (line: string) => void;
}

export interface LocalStack {
  natsUrl: string;
  cassandraContactPoint: string;
  /** Names of the servers this call started (the others were already running). */
  started: string[];
  stop(): Promise<void>;
}

export async function ensureLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const say = opts.say ?? (() => {});
  const root = opts.dataRoot ?? join(findProjectRoot(), '.stack', 'local');
  const started: string[] = [];
  let nats: NatsServerHandle | undefined;
  let cassandra: CassandraHandle | undefined;

  const natsUp = isTcpReachable('127.0.0.1', opts.natsPort, 500);
  const cassandraUp = isTcpReachable('127.0.0.1', opts.cassandraPort, 500);
  try {
    if (await natsUp) say(`nats-server already running on 127.0.0.1:${opts.natsPort}`);
    else {
      if (opts.fresh) await rm(join(root, 'nats'), { recursive: true, force: true });
      say(`starting nats-server on 127.0.0.1:${opts.natsPort} (JetStream, data in ${join(root, 'nats')})`);
      nats = await startNatsServer({
        port: opts.natsPort,
        dataDir: join(root, 'nats'),
        serverName: 'sb-local',
      });
      started.push('nats-server');
    }
    if (await cassandraUp) say(`Cassandra already running on 127.0.0.1:${opts.cassandraPort}`);
    else {
      if (opts.fresh) await rm(join(root, 'cassandra'), { recursive: true, force: true });
      const t0 = Date.now();
      say(
        `starting Cassandra on 127.0.0.1:${opts.cassandraPort} (data in ${join(root, 'cassandra')}), ~10-60 s`,
      );
      cassandra = await startCassandra({
        nativePort: opts.cassandraPort,
        storagePort: opts.cassandraStoragePort,
        jmxPort: opts.cassandraJmxPort,
        dataDir: join(root, 'cassandra'),
        ...(opts.cassandraHeapMb ? { heapMb: opts.cassandraHeapMb } : {}),
      });
      say(
        `Cassandra ${cassandra.releaseVersion} answered CQL after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      started.push('cassandra');
    }
  } catch (err) {
    await Promise.allSettled([nats?.stop(), cassandra?.stop()]);
    throw err;
  }
  return {
    natsUrl: `nats://127.0.0.1:${opts.natsPort}`,
    cassandraContactPoint: `127.0.0.1:${opts.cassandraPort}`,
    started,
    async stop() {
      await Promise.allSettled([nats?.stop(), cassandra?.stop()]);
    },
  };
}
