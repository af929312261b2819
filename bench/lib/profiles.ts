/**
 * Taking CPU profiles of a started node's processes over a window (`e2e --profile`): writes the probe's
 * control file at the window's start, removes it at its end, then collects each process's
 * `.cpuprofile` and CPU record (bench/probe/cpu-profiler.ts) and turns them into a per-stage table.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROFILE_CONTROL_FILE, type ProfileCpu } from '../probe/probe-record.js';
import { addProfile, type CpuProfile, emptyTotals, type StageTable, stageTable } from './profile-stages.js';
import { sleep } from './units.js';

const COLLECT_TIMEOUT_MS = 10_000;

export interface ProfileWindow {
  /** Resolves once the window is over and every profiled process has written its files. */
  collect(messages: number): Promise<StageTable | undefined>;
  cancel(): void;
}

/**
 * Profiles the node behind `probeDir` from `startInMs` for `durationMs`. `expect` is how many processes
 * should write a profile (the node's workers); the supervisor's own profile (no load) is kept but adds
 * almost nothing. Copies the raw profiles into `keepDir` (open them in Chrome DevTools or speedscope).
 */
export function profileWindow(
  probeDir: string,
  id: string,
  startInMs: number,
  durationMs: number,
  keepDir: string | undefined,
): ProfileWindow {
  const control = join(probeDir, PROFILE_CONTROL_FILE);
  const startTimer = setTimeout(() => writeFileSync(control, JSON.stringify({ id })), startInMs);
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    rmSync(control, { force: true });
  };
  const stopTimer = setTimeout(stop, startInMs + durationMs);
  return {
    cancel() {
      clearTimeout(startTimer);
      clearTimeout(stopTimer);
      stop();
    },
    async collect(messages) {
      if (!stopped) {
        clearTimeout(stopTimer);
        stop();
      }
      // The probes poll every 100 ms; a busy process may take a few hundred more to write its profile.
      const deadline = Date.now() + COLLECT_TIMEOUT_MS;
      let cpuFiles: string[] = [];
      let last = -1;
      while (Date.now() < deadline) {
        await sleep(500);
        cpuFiles = readdirSync(probeDir).filter((f) => f.endsWith(`-${id}.cpu.json`));
        if (cpuFiles.length > 0 && cpuFiles.length === last) break;
        last = cpuFiles.length;
      }
      if (cpuFiles.length === 0) return undefined;
      const totals = emptyTotals();
      let mainThreadUs = 0;
      let processUs = 0;
      if (keepDir) mkdirSync(keepDir, { recursive: true });
      for (const f of cpuFiles) {
        const cpu = JSON.parse(readFileSync(join(probeDir, f), 'utf8')) as ProfileCpu;
        const profFile = join(probeDir, f.replace(/\.cpu\.json$/, '.cpuprofile'));
        const profile = JSON.parse(readFileSync(profFile, 'utf8')) as CpuProfile;
        addProfile(totals, profile);
        mainThreadUs += cpu.mainThreadCpuUs;
        processUs += cpu.processCpuUs;
        if (keepDir) copyFileSync(profFile, join(keepDir, `${id}-${cpu.pid}.cpuprofile`));
        rmSync(profFile, { force: true });
        rmSync(join(probeDir, f), { force: true });
      }
      return stageTable(totals, messages, cpuFiles.length, { mainThreadUs, processUs });
    },
  };
}
