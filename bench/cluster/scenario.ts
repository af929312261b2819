/**
 * `npm run bench -- cluster`: the e2e load against a fresh local cluster of each size in --nodes (default
 * 1 and 3 nodes, each with the same 3-server NATS cluster and the same Cassandra), to show how throughput
 * scales with nodes on this machine. Each size gets its own sweep (or fixed-rate phase); the report puts
 * them side by side. Conversations' two sides sit on different nodes, so deliveries cross NATS.
 */

import { join } from 'node:path';
import { type E2eRun, type E2eRunOptions, runE2e } from '../e2e/run.js';
import { type CommonOptions, newRunId, progressFor, startSampling } from '../lib/common.js';
import type { TargetNode } from '../lib/target.js';
import { sleep } from '../lib/units.js';
import { type MachineInfo, reportHeader, reportPaths, writeReport } from '../report/write.js';
import { clusterCharts, clusterMarkdown, clusterSummary } from './report.js';
import { type NatsPlacement, startClusterTarget } from './target.js';

/** Longer than the membership lease TTL, so one size's members have expired before the next size starts. */
const BETWEEN_SIZES_MS = 8000;

export interface ClusterOptions extends E2eRunOptions {
  nodes: number[];
  workers: number;
  basePort: number;
}

export interface ClusterRun {
  nodes: number;
  target: { description: string; nodes: TargetNode[] };
  run: E2eRun;
  /** Which NATS server each node's workers used, read at the end of the run (absent in older reports). */
  natsPlacement?: NatsPlacement[];
}

export interface ClusterReport {
  schema: number;
  scenario: 'cluster';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  options: ClusterOptions;
  keyspace: string;
  runs: ClusterRun[];
}

export async function clusterScenario(
  common: CommonOptions,
  o: ClusterOptions,
  signal: AbortSignal,
): Promise<{ files: string[]; summary: string; report: ClusterReport }> {
  if (common.url) throw new Error('cluster starts its own clusters; use `e2e --url` to load a running node');
  const ui = progressFor(common);
  const startedAt = new Date();
  const runs: ClusterRun[] = [];
  for (const [i, size] of o.nodes.entries()) {
    if (signal.aborted) break;
    if (i > 0) await sleep(BETWEEN_SIZES_MS);
    ui.say(`— ${size}-node cluster —`);
    const target = await startClusterTarget({
      nodes: size,
      workers: o.workers,
      basePort: o.basePort,
      keyspace: common.keyspace,
      say: (l) => ui.say(l),
    });
    const { sampler, setGenerators } = startSampling(target);
    try {
      const run = await runE2e(
        target,
        sampler,
        { runId: newRunId(), convsPerAgent: o.convsPerAgent, agentsPerTenant: o.agentsPerTenant },
        // One profile folder per size: the phases of each are named by index and rate alone.
        o.profileDir === undefined ? o : { ...o, profileDir: join(o.profileDir, `n${size}`) },
        ui,
        signal,
        setGenerators,
      );
      runs.push({
        nodes: size,
        target: { description: target.description, nodes: [...target.nodes] },
        run,
        natsPlacement: target.natsPlacement(),
      });
    } finally {
      sampler.stop();
      ui.say('stopping the cluster…');
      await target.stop();
    }
  }
  const report: ClusterReport = {
    ...reportHeader('cluster', startedAt, common.command),
    options: o,
    keyspace: common.keyspace,
    runs,
  };
  const paths = reportPaths(common.out, 'cluster', startedAt);
  const files = writeReport(paths, report, clusterMarkdown(report, paths), clusterCharts(report));
  return { files, summary: clusterSummary(report), report };
}
