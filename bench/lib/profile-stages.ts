/**
 * Per-stage cost of a message from CPU profiles of the broker's main threads (`e2e --profile`): every
 * sample of a `.cpuprofile` is given to one stage of a message's way by its call stack, and each stage's
 * sampled time is divided by the messages of the profiled window. The rules are by file and function of
 * the compiled project (dist/…) and by library, documented in BENCHMARKS.md ("Profiling"):
 *
 * - walking from the sampled (innermost) frame outwards, the first frame a rule names decides;
 * - frames of libraries used by several stages (nats, msgpack, Node's own net/stream code, uWS natives)
 *   are "context" frames: the walk goes on to the first project frame and takes its stage (a nats
 *   publish called from an actor is fan-out; from the dispatcher, route);
 * - `(garbage collector)` is GC, `(idle)` is not counted, anything left is "other".
 */

export const STAGES = [
  'decode + validate',
  'screen (gateway side)',
  'pool hand-off',
  'route',
  'actor',
  'store encode',
  'driver (cassandra-driver)',
  'fan-out (NATS publish + deliver)',
  'out events',
  'encode + send (uWS)',
  'NATS client (parse, flush)',
  'Node I/O (net, streams, timers)',
  'GC',
  'metrics + logging',
  'other',
] as const;
export type Stage = (typeof STAGES)[number];

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber?: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

type Rule = Stage | 'context' | undefined;

const PROJECT_RE = /\/dist\/(src|actors|workers)\/(.+)\.js$/;

/** The stage of one frame of the project (dist/src, dist/actors), or undefined when it is not ours. */
export function projectStage(frame: CallFrame): Stage | undefined {
  const m = PROJECT_RE.exec(frame.url);
  if (!m) return undefined;
  const file = `${m[1]}/${m[2]}`;
  const fn = frame.functionName;
  if (file.startsWith('actors/') || file.startsWith('src/chat/')) return 'actor';
  if (file === 'src/protocol/codec') return /encode/i.test(fn) ? 'encode + send (uWS)' : 'decode + validate';
  if (file.startsWith('src/protocol/')) return 'decode + validate';
  if (file === 'src/gateway/sessions') return 'fan-out (NATS publish + deliver)';
  // A socket's outgoing frames (the bounded send, a turn's frames in one corked write, the held ack).
  if (file === 'src/gateway/socket-outbox') return 'encode + send (uWS)';
  if (file === 'src/gateway/server' || file === 'src/gateway/socket-frames') {
    // The outbox lived in server.ts before 1e5f23e: its names still count as sending in older profiles.
    if (
      /^(sendBounded|send|sendError|sendWelcome|holdAck|releaseAcks|writeFrame|queueFrame|flushOutbox|flushOutboxes)$/.test(
        fn,
      )
    )
      return 'encode + send (uWS)';
    if (/^handleSend$/.test(fn)) return 'screen (gateway side)';
    return 'decode + validate';
  }
  if (file.startsWith('src/gateway/')) return 'decode + validate';
  if (file.startsWith('src/content/')) return 'screen (gateway side)';
  if (file.startsWith('src/pool/') || file.startsWith('workers/')) return 'pool hand-off';
  if (file.startsWith('src/routing/')) return 'route';
  if (file === 'src/cluster/transport')
    return /publish/i.test(fn) ? 'fan-out (NATS publish + deliver)' : 'route';
  if (file.startsWith('src/cluster/')) return 'other';
  if (file.startsWith('src/store/') || file === 'src/cache') return 'store encode';
  if (file.startsWith('src/integration/')) return 'out events';
  if (file === 'src/metrics' || file === 'src/log' || file === 'src/node-metrics') return 'metrics + logging';
  return 'other';
}

function libraryRule(frame: CallFrame): Rule {
  const { url, functionName: fn } = frame;
  if (url === '') {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(program)') return 'other';
    if (fn === '(root)') return undefined;
    // Natives without a script: uWS's send / cork / end, Buffer and TextEncoder built-ins.
    return 'context';
  }
  if (url.includes('/node_modules/cassandra-driver/')) return 'driver (cassandra-driver)';
  if (url.includes('/node_modules/piscina/')) return 'pool hand-off';
  if (url.includes('/node_modules/prom-client/') || url.includes('/node_modules/pino'))
    return 'metrics + logging';
  if (url.includes('/node_modules/ulidx/')) return 'actor';
  if (url.includes('/node_modules/')) return 'context';
  if (url.startsWith('node:')) return 'context';
  return undefined;
}

/** What a context frame is when no project frame is found further out. */
function contextDefault(frame: CallFrame): Stage {
  const { url } = frame;
  if (url.includes('/node_modules/nats/')) return 'NATS client (parse, flush)';
  if (url.includes('/node_modules/@msgpack/')) return 'decode + validate';
  if (url.includes('/node_modules/uWebSockets.js/')) return 'encode + send (uWS)';
  if (url.startsWith('node:')) return 'Node I/O (net, streams, timers)';
  return 'other';
}

/** Context libraries reached from a project stage: nats under an actor is its fan-out. */
function refine(sawNats: boolean, outer: Stage): Stage {
  return sawNats && outer === 'actor' ? 'fan-out (NATS publish + deliver)' : outer;
}

/** The stage of every node of the profile (by id); `undefined` for idle. */
export function stagesByNode(profile: CpuProfile): Map<number, Stage | undefined> {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const out = new Map<number, Stage | undefined>();
  for (const n of profile.nodes) {
    if (n.callFrame.functionName === '(idle)' && n.callFrame.url === '') {
      out.set(n.id, undefined);
      continue;
    }
    let context: CallFrame | undefined;
    let sawNats = false;
    let stage: Stage | undefined;
    for (let cur: ProfileNode | undefined = n; cur; cur = byId.get(parent.get(cur.id) ?? -1)) {
      const own = projectStage(cur.callFrame);
      if (own !== undefined) {
        stage = refine(sawNats, own);
        break;
      }
      const lib = libraryRule(cur.callFrame);
      if (lib === 'context') {
        context ??= cur.callFrame;
        if (cur.callFrame.url.includes('/node_modules/nats/')) sawNats = true;
      } else if (lib !== undefined) {
        // A library of one stage (the driver, piscina) owns the context frames it calls: the socket
        // write under cassandra-driver is the driver's.
        stage = lib;
        break;
      }
    }
    out.set(n.id, stage ?? (context ? contextDefault(context) : 'other'));
  }
  return out;
}

export interface StageTotals {
  /** Sampled µs per stage (idle excluded). */
  us: Record<Stage, number>;
  idleUs: number;
  /** µs of self time per function ("name file:line"), for the hottest-functions list. */
  selfUs: Map<string, { us: number; stage: Stage }>;
}

export function emptyTotals(): StageTotals {
  return {
    us: Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>,
    idleUs: 0,
    selfUs: new Map(),
  };
}

/** Adds one profile's samples to `into` (time per sample from its timeDeltas). */
export function addProfile(into: StageTotals, profile: CpuProfile): StageTotals {
  const stages = stagesByNode(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample; the next delta is this sample's share.
    const us = Math.max(0, deltas[i + 1] ?? deltas[i] ?? 0);
    const id = samples[i] as number;
    const stage = stages.get(id);
    if (stage === undefined) {
      into.idleUs += us;
      continue;
    }
    into.us[stage] += us;
    const f = byId.get(id)?.callFrame;
    if (f) {
      const file = f.url.replace(/^.*?\/(dist|node_modules)\//, '$1/');
      const key = `${f.functionName || '(anonymous)'} ${file}:${(f.lineNumber ?? 0) + 1}`;
      const cur = into.selfUs.get(key);
      if (cur) cur.us += us;
      else into.selfUs.set(key, { us, stage });
    }
  }
  return into;
}

export interface StageRow {
  stage: Stage;
  /** Sampled (wall) µs per message. */
  usPerMessage: number;
  share: number;
  /** The row's share of the main thread's measured CPU per message (when known). */
  cpuUsPerMessage?: number;
}

export interface StageTable {
  messages: number;
  processes: number;
  rows: StageRow[];
  /** Sampled (non-idle) main-thread time per message: the sum of the rows. */
  sampledUsPerMessage: number;
  /** From /proc and process.cpuUsage over the same windows, summed over the profiled processes. */
  mainThreadCpuUsPerMessage?: number;
  processCpuUsPerMessage?: number;
  /** processCpu − mainThreadCpu: the worker pool's threads, GC helpers, libuv. */
  offMainThreadCpuUsPerMessage?: number;
  hottest: { fn: string; stage: Stage; usPerMessage: number }[];
}

/** Turns totals into µs per message (`messages` > 0: the window's messages, e.g. delivered). */
export function stageTable(
  t: StageTotals,
  messages: number,
  processes: number,
  cpu?: { mainThreadUs: number; processUs: number },
  hottest = 15,
): StageTable {
  const per = (us: number): number => (messages > 0 ? us / messages : 0);
  const sampled = STAGES.reduce((a, s) => a + t.us[s], 0);
  const rows: StageRow[] = STAGES.map((stage) => ({
    stage,
    usPerMessage: per(t.us[stage]),
    share: sampled > 0 ? t.us[stage] / sampled : 0,
  }));
  const table: StageTable = {
    messages,
    processes,
    rows,
    sampledUsPerMessage: per(sampled),
    hottest: [...t.selfUs.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, hottest)
      .map(([fn, v]) => ({ fn, stage: v.stage, usPerMessage: per(v.us) })),
  };
  if (cpu) {
    for (const r of rows) r.cpuUsPerMessage = r.share * per(cpu.mainThreadUs);
    table.mainThreadCpuUsPerMessage = per(cpu.mainThreadUs);
    table.processCpuUsPerMessage = per(cpu.processUs);
    table.offMainThreadCpuUsPerMessage = per(cpu.processUs - cpu.mainThreadUs);
  }
  return table;
}

/** The table as Markdown (µs per message and share of the sampled main-thread time). */
export function stageMarkdown(t: StageTable): string {
  const f = (x: number): string => x.toFixed(1);
  const cpu = t.mainThreadCpuUsPerMessage !== undefined;
  const lines = [
    `| stage | sampled µs per message | share |${cpu ? ' main-thread CPU µs per message |' : ''}`,
    `| --- | ---: | ---: |${cpu ? ' ---: |' : ''}`,
    ...t.rows.map(
      (r) =>
        `| ${r.stage} | ${f(r.usPerMessage)} | ${(100 * r.share).toFixed(1)} % |${cpu ? ` ${f(r.cpuUsPerMessage ?? 0)} |` : ''}`,
    ),
    `| **main thread (sum)** | **${f(t.sampledUsPerMessage)}** | 100 % |${cpu ? ` **${f(t.mainThreadCpuUsPerMessage ?? 0)}** |` : ''}`,
  ];
  if (t.mainThreadCpuUsPerMessage !== undefined) {
    lines.push(
      '',
      `Over the same window (${t.messages} messages delivered, ${t.processes} profiled process(es)): main-thread CPU ` +
        `${f(t.mainThreadCpuUsPerMessage)} µs/msg, whole-process CPU ${f(t.processCpuUsPerMessage ?? 0)} µs/msg, of which ` +
        `${f(t.offMainThreadCpuUsPerMessage ?? 0)} µs/msg off the main thread (the worker pool's threads, GC helpers, libuv). ` +
        'Sampled time is wall time the thread was not idle, so it includes time blocked in system calls and time the OS gave to ' +
        'other processes; the CPU column spreads the measured main-thread CPU over the stages in the sampled shares.',
    );
  }
  lines.push('', '| hottest functions (self time) | stage | µs per message |', '| --- | --- | ---: |');
  for (const h of t.hottest) lines.push(`| \`${h.fn}\` | ${h.stage} | ${f(h.usPerMessage)} |`);
  return lines.join('\n');
}
