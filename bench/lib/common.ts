/**
 * What every scenario shares: the common options, the run id, starting the resource sampler over a target,
 * and the run's lifecycle (Ctrl-C ends the load early but still writes the report; the target is stopped
 * whatever happens).
 */
import { randomBytes } from 'node:crypto';
import { createProgress, type Progress } from './progress.js';
import { ResourceSampler } from './sampler.js';
import type { BrokerTarget } from './target.js';

export interface CommonOptions {
  /** Target a running node instead of starting one. */
  url?: string;
  natsUrl: string;
  cassandra: string;
  keyspace: string;
  /** Start a node on what earlier runs left in `keyspace`; by default the keyspace is dropped first. */
  keepKeyspace: boolean;
  /** Secret for tokens against a --url target (started targets use the bench's own). */
  jwtSecret: string;
  out: string;
  quiet: boolean;
  /** The command line, recorded in the report so a run can be repeated. */
  command: string;
}

/** A short id prefixed to the run's tenants, users and conversations (subject-safe characters only). */
export function newRunId(): string {
  return `b${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

/** Starts a sampler over the target's processes; the caller stops it. */
export function startSampling(target: BrokerTarget): {
  sampler: ResourceSampler;
  setGenerators(p: () => number[]): void;
} {
  let generators: () => number[] = () => [];
  const sampler = new ResourceSampler({
    groups: {
      broker: () => target.brokerPids(),
      generators: () => generators(),
      nats: () => target.natsPids(),
      cassandra: () => target.cassandraPids(),
    },
    ...(target.probeDir === undefined ? {} : { probeDir: target.probeDir }),
    stallProbe: true,
  });
  sampler.start();
  return {
    sampler,
    setGenerators(p) {
      generators = p;
    },
  };
}

export function progressFor(common: CommonOptions): Progress {
  return createProgress({ quiet: common.quiet });
}
