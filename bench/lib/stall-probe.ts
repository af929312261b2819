/**
 * Machine stalls, seen from outside every process under test (a jHiccup-style probe). A tiny child process
 * that does nothing but wake every PROBE_TICK_MS reports how late its timer fired; on an idle machine that is
 * about a millisecond. When it is hundreds of milliseconds, no process could run: the cores were taken (by
 * Cassandra compacting, V8's GC helper threads, the generators) or the hypervisor held the VM. A step whose
 * latency tail matches such a stall missed on the machine, not on the broker's own work (issue #13: a miss
 * read as "tail latency from stalls" did not say whose).
 *
 * The probe costs ~200 timer wake-ups a second (well under 1 % of a core). It exits when the bench does: it
 * reads its stdin, which closes with the parent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The probe's timer period, ms: the resolution of a stall. */
export const PROBE_TICK_MS = 5;
/** How often the probe reports its worst lateness since the last report, ms. */
const PROBE_REPORT_MS = 250;

const PROBE_SOURCE = `
const tick = ${PROBE_TICK_MS};
let last = performance.now();
let worst = 0;
const beat = () => {
  const now = performance.now();
  const late = now - last - tick;
  if (late > worst) worst = late;
  last = now;
  setTimeout(beat, tick);
};
setTimeout(beat, tick);
setInterval(() => {
  process.stdout.write(Math.max(0, worst).toFixed(1) + '\\n');
  worst = 0;
}, ${PROBE_REPORT_MS});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

export class StallProbe {
  readonly #child: ChildProcess;
  #worst = 0;
  #partial = '';
  #seen = false;

  constructor() {
    this.#child = spawn(process.execPath, ['-e', PROBE_SOURCE], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.#child.on('error', () => {
      // No probe (spawn failed): samples carry no machine stall.
    });
    this.#child.stdout?.setEncoding('utf8');
    this.#child.stdout?.on('data', (chunk: string) => {
      const lines = (this.#partial + chunk).split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) {
        const ms = Number(line);
        if (!Number.isFinite(ms)) continue;
        this.#seen = true;
        if (ms > this.#worst) this.#worst = ms;
      }
    });
    this.#child.unref();
    (this.#child.stdout as { unref?: () => void } | null)?.unref?.();
    (this.#child.stdin as { unref?: () => void } | null)?.unref?.();
  }

  /** The probe process (tests stop and continue it to make a stall). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** The probe's worst lateness since the previous call, ms; undefined before its first report. */
  takeWorstMs(): number | undefined {
    if (!this.#seen) return undefined;
    const w = this.#worst;
    this.#worst = 0;
    return w;
  }

  stop(): void {
    this.#child.stdin?.end();
    this.#child.kill();
  }
}

/** Microseconds in which at least one task waited for a CPU, since boot (Linux PSI); undefined without PSI. */
export function readCpuPressureUs(path = '/proc/pressure/cpu'): number | undefined {
  try {
    const m = /^some .*\btotal=(\d+)/m.exec(readFileSync(path, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
