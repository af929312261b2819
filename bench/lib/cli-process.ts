/**
 * Runs a `switchboard` CLI command (dist/src/cli.js) as a child that prints one JSON ready line on stdout:
 * `serve` (one node) or `cluster up` (a local cluster). Its logs go to a file; stop() is the command's own
 * graceful path (SIGTERM), SIGKILL after a grace period. The child runs in its own process group so a
 * terminal's Ctrl-C reaches only the bench, which stops the broker after the load, in order.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
export const PROBE_PATH = fileURLToPath(new URL('../probe/memory-reporter.js', import.meta.url));
const LOG_TAIL_CHARS = 3000;
const DEFAULT_STOP_GRACE_MS = 60_000;

export interface CliProcess<Ready> {
  readonly pid: number;
  readonly ready: Ready;
  readonly logFile: string;
  isRunning(): boolean;
  stop(graceMs?: number): Promise<void>;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-LOG_TAIL_CHARS);
  } catch {
    return '';
  }
}

/** Resolves once the ready line (a JSON object with `ready: true`) is printed; rejects on exit or timeout. */
export function startCli<Ready>(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  readyTimeoutMs: number,
  onSpawn?: (pid: number) => void,
): Promise<CliProcess<Ready>> {
  return startScript<Ready>(CLI_PATH, args, env, logFile, readyTimeoutMs, onSpawn);
}

/** startCli for any Node script that prints the same kind of ready line (the bench's peer servers). */
export async function startScript<Ready>(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  readyTimeoutMs: number,
  /** Told the child's pid at once, before it is ready (to sample a starting process's CPU). */
  onSpawn?: (pid: number) => void,
): Promise<CliProcess<Ready>> {
  const logFd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [script, ...args], {
    env,
    stdio: ['ignore', 'pipe', logFd],
    detached: true,
  });
  closeSync(logFd);
  if (child.pid === undefined) throw new Error(`cannot start ${script}`);
  const pid = child.pid;
  onSpawn?.(pid);
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running = false;
      resolve();
    }),
  );
  // Last resort if the bench itself dies without its cleanup: never leave a broker holding the port.
  const onExit = (): void => {
    if (running) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${script} ${args.join(' ')} not ready in ${readyTimeoutMs} ms:\n${logTail(logFile)}`),
      );
    }, readyTimeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      try {
        const msg = JSON.parse(line) as { ready?: unknown };
        if (msg.ready === true) {
          clearTimeout(timer);
          resolve(msg as Ready);
        }
      } catch {
        // Another line that happens to start with '{'.
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} ${args.join(' ')} exited before ready:\n${logTail(logFile)}`));
    });
  });

  return {
    pid,
    ready,
    logFile,
    isRunning: () => running,
    async stop(graceMs = DEFAULT_STOP_GRACE_MS) {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      process.removeListener('exit', onExit);
    },
  };
}
