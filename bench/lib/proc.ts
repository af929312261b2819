/**
 * Linux /proc readers: per-process CPU time and RSS, process trees, which processes listen on a TCP port,
 * and whole-machine CPU. The bench measures the broker (and NATS, Cassandra, its own generators) from
 * outside, the way an SRE would, so the figures hold whatever the broker exposes about itself.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function sysconf(name: string, fallback: number): number {
  try {
    const n = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : fallback;
  } catch {
    return fallback;
  }
}

/** Kernel clock ticks per second (utime/stime unit) and page size (rss unit). */
export const CLOCK_TICKS_PER_S = sysconf('CLK_TCK', 100);
export const PAGE_BYTES = sysconf('PAGESIZE', 4096);

export interface ProcStat {
  pid: number;
  ppid: number;
  /** Field 6: the session id (the pid of its leader). */
  session: number;
  /** Field 3: R running, S sleeping, T stopped, Z zombie, ... */
  state: string;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  rssBytes: number;
}

/** One process's /proc/<pid>/stat; null when it has exited (or is not ours to read). */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const num = (field: number): number => Number(rest[field - 3] ?? 0);
  return {
    pid,
    ppid: num(4),
    session: num(6),
    state: rest[0] ?? '',
    cpuTicks: num(14) + num(15),
    rssBytes: num(24) * PAGE_BYTES,
  };
}

export function listPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** `roots` and all their descendants that are alive now. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const pid of listPids()) {
    const st = readProcStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(pid);
    else children.set(st.ppid, [pid]);
  }
  const out: number[] = [];
  const stack = roots.filter((p) => readProcStat(p) !== null);
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

const TCP_LISTEN_STATE = '0A';
const TCP_ESTABLISHED_STATE = '01';

/**
 * The rows of /proc/net/tcp and /proc/net/tcp6, split into columns (1 local address, 2 remote, 3 state,
 * 9 socket inode), the header skipped; a table that cannot be read is left out.
 */
export function tcpRows(files: readonly string[] = ['/proc/net/tcp', '/proc/net/tcp6']): string[][] {
  const rows: string[][] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) if (line.trim() !== '') rows.push(line.trim().split(/\s+/));
  }
  return rows;
}

/** The inodes of the sockets among `pid`'s open file descriptors (none when it is gone or not readable). */
export function socketInodesOf(pid: number): string[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) out.push(m[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return out;
}

/** Processes holding any of the sockets `inodes`. Walks every fd of every process: not for each sample. */
export function pidsHolding(inodes: ReadonlySet<string>): number[] {
  if (inodes.size === 0) return [];
  return listPids().filter((pid) => socketInodesOf(pid).some((i) => inodes.has(i)));
}

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const cols of tcpRows()) {
    const local = cols[1];
    if (!local || cols[3] !== TCP_LISTEN_STATE) continue;
    if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && cols[9]) inodes.add(cols[9]);
  }
  return inodes;
}

/**
 * Processes holding a listening socket on `port` (any local address), found through socket inodes in
 * /proc/<pid>/fd. Empty when the listener is in another container or owned by a user we cannot read.
 * Walks every fd of every process, so call it once at start, not per sample.
 */
export function pidsListeningOn(port: number): number[] {
  return pidsHolding(listeningInodes(port));
}

export interface MachineCpu {
  busyTicks: number;
  totalTicks: number;
}

/** The aggregate `cpu` line of /proc/stat (all cores). */
export function readMachineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already inside user).
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busyTicks: total - idle, totalTicks: total };
}

/** Remote ports of the established TCP connections held by `pids` (from their fds and /proc/net/tcp*). */
export function connectedPorts(pids: readonly number[]): number[] {
  const inodes = new Set(pids.flatMap(socketInodesOf));
  const ports = new Set<number>();
  for (const cols of tcpRows()) {
    const remote = cols[2];
    if (!remote || cols[3] !== TCP_ESTABLISHED_STATE || !cols[9] || !inodes.has(cols[9])) continue;
    ports.add(Number.parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16));
  }
  return [...ports];
}

/**
 * The local servers `pids` are connected to whose command line matches `command` (a `--url` target's
 * nats-server when its URL is not known: issue #13, its CPU was reported as 0).
 */
export function connectedServerPids(pids: readonly number[], command: RegExp): number[] {
  const out = new Set<number>();
  for (const port of connectedPorts(pids)) {
    for (const pid of pidsListeningOn(port)) if (command.test(commandLine(pid))) out.add(pid);
  }
  return [...out];
}
