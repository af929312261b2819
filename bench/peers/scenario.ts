/**
 * `npm run bench -- peers`: the e2e relay workload, same generator, same machine, one system after the
 * other — Switchboard and what a team would otherwise pick (a Socket.IO relay with persistence off and
 * on, NATS's own WebSocket listener with and without JetStream) — and a report with the ratios.
 */

import { type E2eRun, type E2eRunOptions, runE2e } from '../e2e/run.js';
import { type CommonOptions, newRunId, progressFor, startSampling } from '../lib/common.js';
import { sleep } from '../lib/units.js';
import { type MachineInfo, reportHeader, reportPaths, writeReport } from '../report/write.js';
import { peersCharts, peersMarkdown, peersSummary } from './report.js';
import { type PeerSystem, startPeerTarget } from './targets.js';

/** Let the previous system's processes and Cassandra compactions calm down before the next one. */
const BETWEEN_SYSTEMS_MS = 5000;

export interface PeersOptions extends E2eRunOptions {
  systems: PeerSystem[];
  workers: number;
}

export interface PeerRun {
  system: PeerSystem;
  description: string;
  run: E2eRun;
}

export interface PeersReport {
  schema: number;
  scenario: 'peers';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  options: PeersOptions;
  runs: PeerRun[];
}

export async function peersScenario(
  common: CommonOptions,
  o: PeersOptions,
  signal: AbortSignal,
): Promise<{ files: string[]; summary: string; report: PeersReport }> {
  if (common.url) throw new Error('peers starts every system itself; use `e2e --url` to load a running node');
  const ui = progressFor(common);
  const startedAt = new Date();
  const runs: PeerRun[] = [];
  for (const [i, system] of o.systems.entries()) {
    if (signal.aborted) break;
    if (i > 0) await sleep(BETWEEN_SYSTEMS_MS);
    ui.say(`— ${system} —`);
    const target = await startPeerTarget(system, {
      workers: o.workers,
      natsUrl: common.natsUrl,
      cassandra: common.cassandra,
      keyspace: common.keyspace,
      keepKeyspace: common.keepKeyspace,
      say: (l) => ui.say(l),
    });
    const { sampler, setGenerators } = startSampling(target);
    try {
      const population = {
        runId: newRunId(),
        convsPerAgent: o.convsPerAgent,
        agentsPerTenant: o.agentsPerTenant,
      };
      const run = await runE2e(target, sampler, population, o, ui, signal, setGenerators);
      runs.push({ system, description: target.description, run });
    } finally {
      sampler.stop();
      await target.stop();
    }
  }
  const report: PeersReport = {
    ...reportHeader('peers', startedAt, common.command),
    options: o,
    runs,
  };
  const paths = reportPaths(common.out, 'peers', startedAt);
  const files = writeReport(paths, report, peersMarkdown(report, paths), peersCharts(report));
  return { files, summary: peersSummary(report), report };
}
