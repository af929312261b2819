/**
 * Lowers the OS priority (raises the nice value) of some threads of another process, picked by the
 * thread name Linux shows in /proc/<pid>/task/<tid>/comm (the first 15 characters). Used for the
 * Cassandra this stack launches: its memtable flushes and compactions are background work that comes in
 * bursts of 0.5 core-seconds, and on a machine shared with the broker they took the CPU from the write
 * path at the moment a message waited for it. Cassandra up to 3.x ran compaction at Java's minimum
 * priority for the same reason; 5.0 no longer does, and the JVM maps Java priorities to nice values
 * only as root. Linux-only; elsewhere (no /proc) it does nothing.
 *
 * Pools create their threads when work first arrives, so the task list is read again every
 * `intervalMs`. Lowering one's own processes' priority needs no privilege.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

export interface BackgroundThreadsOptions {
  /** The process whose threads to lower. */
  pid: number;
  /** A thread is lowered when its name starts with one of these. */
  namePrefixes: readonly string[];
  /** The nice value to give them, 1..19. */
  nice: number;
  /** How often to look for new threads (ms). */
  intervalMs: number;
}

export interface BackgroundThreads {
  /** Threads lowered so far (each thread id counted once). */
  lowered(): number;
  stop(): void;
}

/** Thread ids of `pid` whose name starts with one of `prefixes`; empty when the process is gone. */
export function threadsNamed(pid: number, prefixes: readonly string[]): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tids) {
    let name: string;
    try {
      name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8');
    } catch {
      continue; // the thread ended between the two reads
    }
    if (prefixes.some((p) => name.startsWith(p))) out.push(Number(tid));
  }
  return out;
}

export function lowerBackgroundThreads(o: BackgroundThreadsOptions): BackgroundThreads {
  if (!Number.isInteger(o.nice) || o.nice < 1 || o.nice > 19)
    throw new Error('nice must be an integer 1..19');
  if (!(o.intervalMs > 0)) throw new Error('intervalMs must be positive');
  const done = new Set<number>();
  let lowered = 0;
  const sweep = (): void => {
    const tids = threadsNamed(o.pid, o.namePrefixes);
    const alive = new Set(tids);
    // Forget threads that ended (the set stays as small as the pools; a reused id is looked at again).
    for (const tid of done) if (!alive.has(tid)) done.delete(tid);
    for (const tid of tids) {
      if (done.has(tid)) continue;
      try {
        setPriority(tid, o.nice);
        done.add(tid);
        lowered += 1;
      } catch {
        // ended between the read and now
      }
    }
  };
  sweep();
  const timer = setInterval(sweep, o.intervalMs);
  timer.unref();
  return {
    lowered: () => lowered,
    stop: () => clearInterval(timer),
  };
}
