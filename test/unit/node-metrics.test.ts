/**
 * The IPC side of node-wide /metrics (src/node-metrics.ts), over an in-process channel pair: the
 * supervisor merges what its workers answer in time, names the ones that did not, and a worker
 * answers alone (saying so) when its supervisor is silent, gone, or already has too many scrapes.
 * The end-to-end path over real processes is in test/integration/supervisor.test.ts.
 */
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics.js';
import {
  MAX_PENDING_SCRAPES,
  type MetricsIpc,
  type MetricsPeer,
  supervisorNodeMetrics,
  workerNodeMetrics,
} from '../../src/node-metrics.js';
import type { ParentChannel } from '../../src/parent-channel.js';

const sources = (sockets: number) => ({
  routers: () => ({ activeActors: 0, ownedShards: 0, inFlight: 0, maxShardDepth: 0, rejected: 0 }),
  writer: () => ({ pending: 0, inFlight: 0 }),
  pool: () => ({ buffered: 0, queuedBatches: 0, completed: 0 }),
  dispatcher: () => ({ retries: 0, unavailable: 0 }),
  sockets: () => sockets,
  heldShards: () => 0,
  members: () => 1,
});

/** A worker process's `process` as the worker sees it, wired to a supervisor callback. */
class Channel extends EventEmitter implements ParentChannel<MetricsIpc> {
  connected = true;
  constructor(private readonly toSupervisor: (msg: MetricsIpc) => void) {
    super();
  }
  send = (msg: MetricsIpc): boolean => {
    if (!this.connected) return false;
    setImmediate(() => this.toSupervisor(msg));
    return true;
  };
}

function node(ids: string[], silent: Set<string> = new Set()) {
  const peers: MetricsPeer[] = [];
  const sup = supervisorNodeMetrics(() => peers, 200);
  const workers = ids.map((id, i) => {
    const peer: MetricsPeer = {
      id,
      send: (m) => {
        if (silent.has(id) && m.sb === 'metrics-ask') return true;
        setImmediate(() => channel.emit('message', m));
        return true;
      },
    };
    const channel = new Channel((m) => sup.onMessage(peer, m));
    peers.push(peer);
    return {
      id,
      channel,
      metrics: workerNodeMetrics(createMetrics(id, sources(10 * (i + 1))), channel, 500),
    };
  });
  return { sup, workers };
}

test('node metrics - a scrape on any worker returns every worker, one family per metric', async () => {
  const { sup, workers } = node(['n-w0', 'n-w1', 'n-w2']);
  for (const w of workers) {
    const text = await w.metrics.render();
    assert.match(text, /^switchboard_sockets\{node="n-w0"\} 10$/m);
    assert.match(text, /^switchboard_sockets\{node="n-w1"\} 20$/m);
    assert.match(text, /^switchboard_sockets\{node="n-w2"\} 30$/m);
    assert.equal(text.match(/^# TYPE switchboard_sockets gauge$/gm)?.length, 1);
  }
  for (const w of workers) w.metrics.close();
  sup.close();
});

test('node metrics - a worker that does not answer in time is named, the others still count', async () => {
  const { sup, workers } = node(['s-w0', 's-w1'], new Set(['s-w1']));
  const text = await workers[0]!.metrics.render();
  assert.match(text, /^# switchboard: no answer from s-w1$/m);
  assert.match(text, /^switchboard_sockets\{node="s-w0"\} 10$/m);
  assert.doesNotMatch(text, /node="s-w1"/);
  for (const w of workers) w.metrics.close();
  sup.close();
});

test('node metrics - without a supervisor, or with a silent one, a worker answers alone', async () => {
  const alone = workerNodeMetrics(createMetrics('a-w0', sources(5)), new Channel(() => {}), 100);
  const silent = await alone.render();
  assert.match(
    silent,
    /^# switchboard: the supervisor did not answer within 100 ms; this worker's metrics only$/m,
  );
  assert.match(silent, /^switchboard_sockets\{node="a-w0"\} 5$/m);
  alone.close();

  const gone = new Channel(() => {});
  gone.connected = false;
  const unsupervised = workerNodeMetrics(createMetrics('a-w1', sources(6)), gone, 100);
  const text = await unsupervised.render();
  assert.doesNotMatch(text, /^# switchboard:/m, 'no supervisor is the normal case of `switchboard node`');
  assert.match(text, /^switchboard_sockets\{node="a-w1"\} 6$/m);
  unsupervised.close();
});

test('node metrics - scrapes waiting for the supervisor are bounded; past the bound a worker answers alone', async () => {
  const w = workerNodeMetrics(createMetrics('b-w0', sources(1)), new Channel(() => {}), 300);
  const waiting = Array.from({ length: MAX_PENDING_SCRAPES }, () => w.render());
  const extra = await w.render();
  assert.match(
    extra,
    /^# switchboard: too many scrapes waiting for the supervisor; this worker's metrics only$/m,
  );
  w.close(); // settles the waiting ones at once
  for (const t of await Promise.all(waiting)) assert.match(t, /did not answer/);
});
