/**
 * Node-wide /metrics. A node is a supervisor and N worker processes sharing one port, so a scrape
 * lands on whichever worker the kernel picks; that worker asks its supervisor over the IPC channel,
 * the supervisor asks every ready worker for its registry (as JSON) and merges them, one metric
 * family each, every series keeping its `node` label (the worker id). A worker without a supervisor
 * (`switchboard node`, tests) — or whose supervisor does not answer in time — answers alone, and says
 * so in a comment line of the exposition.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { aggregateMetrics } from './metrics.js';
import { type ParentChannel, processChannel, sendToParent } from './parent-channel.js';

type Json = MetricObjectWithValues<MetricValue<string>>[];

/** The IPC messages of this protocol; `sb` tells them apart from anything else on the channel. */
export type MetricsIpc =
  | { sb: 'metrics-ask'; id: number }
  | { sb: 'metrics-json'; id: number; json: Json }
  | { sb: 'node-metrics-ask'; id: number }
  | { sb: 'node-metrics'; id: number; text: string };

export const NODE_METRICS_TIMEOUT_MS = 1_000;
/** Scrapes waiting for the supervisor at once, per worker; more are answered by the worker alone. */
export const MAX_PENDING_SCRAPES = 8;

function isIpc(m: unknown): m is MetricsIpc {
  return typeof m === 'object' && m !== null && typeof (m as { sb?: unknown }).sb === 'string';
}

export interface LocalMetrics {
  render(): Promise<string>;
  json(): Promise<Json>;
}

export interface NodeMetrics {
  /** Exposition text of every worker of this node (this worker's alone without a supervisor). */
  render(): Promise<string>;
  close(): void;
}

/** Worker side: answers the supervisor's asks and renders node-wide metrics through it. */
export function workerNodeMetrics(
  local: LocalMetrics,
  parent: ParentChannel<MetricsIpc> = processChannel<MetricsIpc>(),
  timeoutMs = NODE_METRICS_TIMEOUT_MS,
): NodeMetrics {
  let nextId = 1;
  const pending = new Map<number, (text: string | null) => void>();
  const onMessage = (m: unknown): void => {
    if (!isIpc(m)) return;
    if (m.sb === 'metrics-ask') {
      local.json().then(
        (json) => send({ sb: 'metrics-json', id: m.id, json }),
        () => send({ sb: 'metrics-json', id: m.id, json: [] }),
      );
    } else if (m.sb === 'node-metrics') pending.get(m.id)?.(m.text);
  };
  const send = (msg: MetricsIpc): boolean => sendToParent(parent, msg);
  if (parent.send) parent.on('message', onMessage);

  const alone = async (why: string): Promise<string> =>
    `# switchboard: ${why}; this worker's metrics only\n${await local.render()}`;

  return {
    async render() {
      if (!parent.send || parent.connected === false) return local.render();
      if (pending.size >= MAX_PENDING_SCRAPES) return alone('too many scrapes waiting for the supervisor');
      const id = nextId++;
      const text = await new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => settle(null), timeoutMs);
        const settle = (t: string | null): void => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(t);
        };
        pending.set(id, settle);
        if (!send({ sb: 'node-metrics-ask', id })) settle(null);
      });
      return text ?? alone(`the supervisor did not answer within ${timeoutMs} ms`);
    },
    close() {
      parent.off('message', onMessage);
      for (const settle of [...pending.values()]) settle(null);
    },
  };
}

/** One worker as the supervisor sees it for metrics. */
export interface MetricsPeer {
  readonly id: string;
  /** False when the message could not be sent (the worker is gone). */
  send(msg: MetricsIpc): boolean;
}

/**
 * Supervisor side. `onMessage(from, msg)` takes every IPC message of a worker: replies to the asks it
 * sent, and answers a worker's node-wide scrape with the merge of every ready worker's metrics that
 * arrived within the timeout (a worker that did not answer is named in a comment line).
 */
export function supervisorNodeMetrics(
  peers: () => readonly MetricsPeer[],
  timeoutMs = NODE_METRICS_TIMEOUT_MS,
): { onMessage(from: MetricsPeer, msg: unknown): void; close(): void } {
  let nextId = 1;
  const waiting = new Map<number, (json: Json | null) => void>();
  let closed = false;

  const collect = async (): Promise<{ jsons: Json[]; missing: string[] }> => {
    const asks = peers().map(
      (peer) =>
        new Promise<{ peer: MetricsPeer; json: Json | null }>((resolve) => {
          const id = nextId++;
          const timer = setTimeout(() => done(null), timeoutMs);
          const done = (json: Json | null): void => {
            clearTimeout(timer);
            waiting.delete(id);
            resolve({ peer, json });
          };
          waiting.set(id, done);
          if (closed || !peer.send({ sb: 'metrics-ask', id })) done(null);
        }),
    );
    const answers = await Promise.all(asks);
    return {
      jsons: answers.flatMap((a) => (a.json ? [a.json] : [])),
      missing: answers.filter((a) => !a.json).map((a) => a.peer.id),
    };
  };

  return {
    onMessage(from, msg) {
      if (!isIpc(msg)) return;
      if (msg.sb === 'metrics-json') {
        waiting.get(msg.id)?.(msg.json);
        return;
      }
      if (msg.sb !== 'node-metrics-ask') return;
      void collect()
        .then(async ({ jsons, missing }) => {
          const head = missing.length > 0 ? `# switchboard: no answer from ${missing.join(', ')}\n` : '';
          return head + (await aggregateMetrics(jsons));
        })
        .catch((err: unknown) => `# switchboard: could not merge the workers' metrics: ${String(err)}\n`)
        .then((text) => from.send({ sb: 'node-metrics', id: msg.id, text }));
    },
    close() {
      closed = true;
      for (const done of [...waiting.values()]) done(null);
    },
  };
}
