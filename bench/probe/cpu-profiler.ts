/**
 * The CPU-profile half of the broker probe (imported by memory-reporter.ts, so it is preloaded into every
 * broker process the bench starts). Node refuses `--cpu-prof` in NODE_OPTIONS, so the profile is taken
 * from inside through the inspector's `Profiler` domain, on the main thread of each broker process.
 *
 * Controlled by a file, so nothing is profiled unless the bench asks (`e2e --profile`): while
 * `$SB_BENCH_PROBE_DIR/profile.json` holds `{ "id": "<phase>" }` the process is profiled; when the file
 * goes (or names another id) the profile is written to `<dir>/<pid>-<id>.cpuprofile` together with
 * `<pid>-<id>.cpu.json` (process and main-thread CPU over the same window, see ProfileCpu).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import {
  PROFILE_CONTROL_FILE,
  PROFILE_SAMPLING_US,
  type ProfileControl,
  type ProfileCpu,
} from './probe-record.js';

const POLL_MS = 100;

function readControl(dir: string): ProfileControl | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, PROFILE_CONTROL_FILE), 'utf8')) as ProfileControl;
  } catch {
    return undefined;
  }
}

/** utime + stime of this process's main thread, µs (its tid is the pid). */
function mainThreadCpuUs(): number {
  try {
    const text = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15, in clock ticks of 10 ms on Linux (CLK_TCK 100).
    return (Number(rest[11] ?? 0) + Number(rest[12] ?? 0)) * 10_000;
  } catch {
    return 0;
  }
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T)));
  });
}

export function startProfileControl(dir: string): void {
  const session = new Session();
  session.connect();
  let current: { id: string; cpu: NodeJS.CpuUsage; main: number; at: number } | undefined;
  let busy = false;
  const tick = async (): Promise<void> => {
    const want = readControl(dir)?.id;
    if (current && current.id !== want) {
      const done = current;
      current = undefined;
      const { profile } = await post<{ profile: unknown }>(session, 'Profiler.stop');
      const cpu = process.cpuUsage(done.cpu);
      const record: ProfileCpu = {
        pid: process.pid,
        id: done.id,
        wallUs: (Date.now() - done.at) * 1000,
        processCpuUs: cpu.user + cpu.system,
        mainThreadCpuUs: mainThreadCpuUs() - done.main,
      };
      const base = join(dir, `${process.pid}-${done.id}`);
      writeFileSync(`${base}.cpu.json.tmp`, JSON.stringify(record));
      writeFileSync(`${base}.cpuprofile.tmp`, JSON.stringify(profile));
      renameSync(`${base}.cpuprofile.tmp`, `${base}.cpuprofile`);
      renameSync(`${base}.cpu.json.tmp`, `${base}.cpu.json`);
    }
    if (!current && want !== undefined && want !== '') {
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.setSamplingInterval', { interval: PROFILE_SAMPLING_US });
      await post(session, 'Profiler.start');
      current = { id: want, cpu: process.cpuUsage(), main: mainThreadCpuUs(), at: Date.now() };
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch(() => {})
      .finally(() => {
        busy = false;
      });
  }, POLL_MS);
  timer.unref();
}
