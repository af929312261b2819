/**
 * "What was the limit?" — read from the evidence every scenario collects: the generators' event-loop
 * utilisation and send lag (is the bench itself the bottleneck?), the machine's CPU, and how the CPU was
 * shared between the broker, NATS, Cassandra and the generators. The notes go verbatim into the report.
 */
import { availableParallelism } from 'node:os';
import {
  type GroupStats,
  groupStats,
  maxMachineStall,
  meanCpuPressure,
  meanMachineBusy,
  type ResourceSample,
} from './sampler.js';

/** A generator event loop busier than this cannot keep its schedule: the bench is (part of) the limit. */
export const GENERATOR_ELU_LIMIT = 0.9;
/** Sends later than this at p99 mean the generator added latency of its own. */
export const SEND_LAG_P99_LIMIT_MS = 10;
export const MACHINE_BUSY_LIMIT = 0.9;
export const BROKER_ELU_LIMIT = 0.9;
/** CPU used by processes outside the run worth a note, cores. */
const OUTSIDE_CORES_NOTE = 0.25;
/**
 * A broker loop peaking above this is near saturation: queueing alone makes its tail latency grow
 * (a step missed here is throughput, not a stall). Issue #13: 84 % was reported as "not throughput".
 */
export const BROKER_ELU_NEAR = 0.75;
/**
 * Late sends explain a miss only when they are this large a share of the latency p99; a send lag of
 * 21-25 ms under a delivery p99 of 241-396 ms was reported as "generator (late sends)" (issue #13).
 */
export const SEND_LAG_SHARE_OF_P99 = 0.5;

export const GROUPS = ['broker', 'generators', 'nats', 'cassandra'] as const;
export type GroupName = (typeof GROUPS)[number];

export interface ResourceSummary {
  cores: number;
  machineBusy: number;
  groups: Record<GroupName, GroupStats>;
  /** The longest time an idle probe process waited for a CPU, ms (stall-probe.ts); undefined without it. */
  maxMachineStallMs?: number;
  /** Mean share of time some task waited for a CPU (Linux PSI), 0..1; undefined without PSI. */
  cpuPressure?: number;
}

export function summarizeResources(samples: readonly ResourceSample[]): ResourceSummary {
  const groups = Object.fromEntries(GROUPS.map((g) => [g, groupStats(samples, g)])) as Record<
    GroupName,
    GroupStats
  >;
  const out: ResourceSummary = {
    cores: availableParallelism(),
    machineBusy: meanMachineBusy(samples),
    groups,
  };
  const stall = maxMachineStall(samples);
  if (stall !== undefined) out.maxMachineStallMs = stall;
  const pressure = meanCpuPressure(samples);
  if (pressure !== undefined) out.cpuPressure = pressure;
  return out;
}

export interface LimitAnalysis {
  generatorLimited: boolean;
  machineSaturated: boolean;
  brokerSaturated: boolean;
  /** One short label: generator, machine CPU (largest user), broker, or none seen. */
  limitedBy: string;
  notes: string[];
}

export interface LimitEvidence {
  resources: ResourceSummary;
  /** Mean event-loop utilisation per generator over the window. */
  generatorElu: readonly number[];
  sendLagP99Ms?: number;
  busyAnswers?: number;
  /** Share of the window's messages (or connections) that failed, were lost or never sent. */
  failedRatio?: number;
  /** The latency p99 the objective bounds, ms: late sends are weighed against it. */
  latencyP99Ms?: number;
}

const pct = (x: number): string => `${Math.round(x * 100)} %`;

interface Stall {
  what: string;
  ms: number;
  /** A V8 pause's kind (minor, major, ...), when the probe saw it. */
  kind?: string;
}

const stallText = (x: Stall): string =>
  `${x.what} ${x.ms.toFixed(0)} ms${x.kind === undefined ? '' : ` (${x.kind})`}`;

/**
 * A machine stall at least this long is named as one; shorter ones are the ordinary scheduling of a busy
 * machine (a probe on this 2-core machine sees 20-70 ms at 50 % busy).
 */
export const MACHINE_STALL_NOTE_MS = 80;

/**
 * The stalls the probes and GC logs saw: the broker's loop delay and GC pauses, Cassandra's GC pauses, and
 * the machine's own (an idle probe process that could not get a CPU).
 */
function stallsOf(r: ResourceSummary): Stall[] {
  const out: Stall[] = [];
  if (r.maxMachineStallMs !== undefined && r.maxMachineStallMs >= MACHINE_STALL_NOTE_MS)
    out.push({ what: 'machine stall (an idle probe process waited for a CPU)', ms: r.maxMachineStallMs });
  const b = r.groups.broker;
  if (b.maxLoopDelayMs !== undefined) out.push({ what: 'broker event-loop delay', ms: b.maxLoopDelayMs });
  if (b.maxGcPauseMs !== undefined) {
    const pause: Stall = { what: 'broker GC pause', ms: b.maxGcPauseMs };
    if (b.maxGcPauseKind !== undefined) pause.kind = b.maxGcPauseKind;
    out.push(pause);
  }
  const c = r.groups.cassandra.maxGcPauseMs;
  if (c !== undefined) out.push({ what: 'Cassandra GC pause', ms: c });
  return out;
}

export function analyseLimits(e: LimitEvidence): LimitAnalysis {
  const notes: string[] = [];
  const r = e.resources;
  const maxGenElu = Math.max(0, ...e.generatorElu);
  const machineSaturated = r.machineBusy >= MACHINE_BUSY_LIMIT;
  const genBusy = maxGenElu >= GENERATOR_ELU_LIMIT;
  const lagging = e.sendLagP99Ms !== undefined && e.sendLagP99Ms > SEND_LAG_P99_LIMIT_MS;
  // Late sends explain the latency only when they are a large part of it.
  const lagExplains =
    lagging &&
    (e.latencyP99Ms === undefined || (e.sendLagP99Ms ?? 0) >= SEND_LAG_SHARE_OF_P99 * e.latencyP99Ms);
  // Late sends from a generator whose own loop is not busy mean it was starved of CPU by the others: on a
  // saturated machine that is the machine's limit, not the generator's.
  const generatorLimited = genBusy || (lagExplains && !machineSaturated);
  if (genBusy) {
    notes.push(
      `Generator-limited: the busiest generator's event loop was ${pct(maxGenElu)} busy — part of the measured latency is the bench itself; add --generators or a second machine.`,
    );
  } else if (lagging) {
    notes.push(
      `Generators sent p99 ${e.sendLagP99Ms?.toFixed(1)} ms behind schedule while their loops were only ${pct(maxGenElu)} busy: ` +
        (machineSaturated
          ? 'they were starved of CPU by the other processes, so that much of the latency is the saturated machine.'
          : 'something else delayed them (GC pauses, other load on the machine).') +
        (lagExplains || e.latencyP99Ms === undefined
          ? ''
          : ` That is a small part of the p99 of ${e.latencyP99Ms.toFixed(1)} ms: the rest is the servers'.`),
    );
  }
  const shares = GROUPS.map((g) => ({ g, cores: r.groups[g].meanCpuCores })).sort(
    (a, b) => b.cores - a.cores,
  );
  const shareText = shares.map((s) => `${s.g} ${s.cores.toFixed(2)}`).join(', ');
  notes.push(
    `CPU (cores, mean): ${shareText}; machine ${pct(r.machineBusy)} busy of ${r.cores} cores` +
      (r.cpuPressure === undefined ? '' : `; some task waited for a CPU ${pct(r.cpuPressure)} of the time`) +
      '.',
  );
  // The machine may be shared (other people's builds and tests): CPU the run's own groups do not account for.
  const outside = Math.max(0, r.machineBusy * r.cores - shares.reduce((a, x) => a + x.cores, 0));
  const outsideLargest = outside > (shares[0]?.cores ?? 0);
  if (outside >= OUTSIDE_CORES_NOTE) {
    notes.push(`Processes outside the run used ${outside.toFixed(2)} cores of the machine.`);
  }
  if (machineSaturated) {
    notes.push(
      `Machine CPU saturated: every process competes for ${r.cores} cores; the largest user was ${outsideLargest ? 'processes outside the run' : shares[0]?.g}.`,
    );
  }
  const brokerElu = r.groups.broker.maxElu;
  const brokerSaturated = brokerElu !== undefined && brokerElu >= BROKER_ELU_LIMIT;
  const brokerNear = brokerElu !== undefined && brokerElu >= BROKER_ELU_NEAR;
  if (brokerElu !== undefined) {
    notes.push(`Broker event loops: the busiest worker peaked at ${pct(brokerElu)} utilisation.`);
  }
  if ((e.busyAnswers ?? 0) > 0) {
    notes.push(`The broker shed load: ${e.busyAnswers} busy answers (bounded mailboxes / writer / pool).`);
  }
  const stalls = stallsOf(r);
  if (stalls.length > 0) {
    notes.push(`Stalls (longest in the window): ${stalls.map(stallText).join(', ')}.`);
  }
  const longest = stalls.reduce<Stall | undefined>(
    (a, x) => (a === undefined || x.ms > a.ms ? x : a),
    undefined,
  );
  const failing = (e.failedRatio ?? 0) > 0;
  if (failing) {
    notes.push(
      `${(100 * (e.failedRatio ?? 0)).toFixed(1)} % failed or went unanswered (see the error and lost counts).`,
    );
  }
  let limitedBy = failing
    ? 'broker failures or stalls, without CPU saturation (see errors and lost)'
    : // Nothing saturated: a step that still misses its latency objective misses it on the tail
      // (pauses such as GC or Cassandra flushes), which says nothing about throughput capacity.
      `none seen (no resource saturated; a miss here is tail latency from stalls, not throughput${
        longest === undefined ? '' : `; longest: ${stallText(longest)}`
      })`;
  // On a saturated machine a busy event loop is partly time the OS gave to other processes (utilisation is
  // wall-clock), so the machine is named first; a saturated loop with cores to spare is the broker's own.
  const loopNote = brokerSaturated ? `; a broker worker's loop at ${pct(brokerElu ?? 0)}` : '';
  // A loop starved of CPU by processes outside the run reads as busy too: name the machine first then.
  if (machineSaturated && outsideLargest)
    limitedBy = `machine CPU (largest user: processes outside the run, ${outside.toFixed(2)} cores)`;
  else if (genBusy) limitedBy = 'generator';
  else if (machineSaturated) limitedBy = `machine CPU (largest user: ${shares[0]?.g}${loopNote})`;
  else if (brokerSaturated) limitedBy = `broker event loop (a worker at ${pct(brokerElu ?? 0)})`;
  else if (generatorLimited) limitedBy = 'generator (late sends)';
  else if (brokerNear && !failing)
    limitedBy = `broker event loop near saturation (a worker peaked at ${pct(brokerElu ?? 0)}: queueing)`;
  return { generatorLimited, machineSaturated, brokerSaturated, limitedBy, notes };
}
