/**
 * Runs the example business system (examples/business-system.ts), or another example, as a process for
 * tests: ready when it prints {"ready":true}; every later JSON line it prints is kept in `lines`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_NATS_URL } from './env.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/business-system.js', import.meta.url));

export interface BusinessSystemProcess {
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the first line (already printed or later) that `pred` accepts. */
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves when the process exits (e.g. after --exit). */
  exited(): Promise<number | null>;
  stop(): Promise<void>;
}

export async function startBusinessSystem(
  cluster: string,
  args: string[],
  natsUrl = TEST_NATS_URL,
): Promise<BusinessSystemProcess> {
  return startExample(EXAMPLE, 'business system', ['--nats', natsUrl, '--cluster', cluster, ...args]);
}

/**
 * Runs an example script (its compiled .js) with `args`: ready when it prints {"ready":true}; every
 * JSON line it prints is kept in `lines`. `label` names it in a timeout's error.
 */
export async function startExample(
  script: string,
  label: string,
  args: string[],
): Promise<BusinessSystemProcess> {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of [...waiters]) w();
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${label}: no matching line in time; stderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  await waitFor((l) => l['ready'] === true);
  return {
    lines,
    waitFor,
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exit;
    },
  };
}
