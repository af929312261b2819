/**
 * One worker process of a supervised node: `node dist/src/cli.js node` with its own SB_NODE_ID and the
 * node's SB_PORT, ready when it prints its JSON ready line on stdout. Its stderr (pino logs) is inherited;
 * other stdout lines are passed to the supervisor's log. The worker runs in its own process group, so a
 * terminal's Ctrl-C reaches only the supervisor, which then drains the workers in order; an IPC channel
 * lets the worker notice its supervisor's death (even by SIGKILL) and drain itself (see cli.ts `node`).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from './log.js';

export interface WorkerExit {
  /** Exit code, or null when the process ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerSpawnOptions {
  id: string;
  /** Absolute path of the compiled cli.js. */
  cliPath: string;
  /** The node's port; 0 lets the (first) worker pick one. */
  port: number;
  /** The whole environment of the worker; SB_NODE_ID and SB_PORT are set over it. */
  env: NodeJS.ProcessEnv;
  /** Node flags before the script (V8 heap sizing). */
  execArgv?: readonly string[];
  readyTimeoutMs: number;
  log: Logger;
}

export interface WorkerProcess {
  readonly id: string;
  readonly pid: number;
  /** Resolves with the port from the ready line; rejects when the worker exits first or times out (it is then killed). */
  readonly ready: Promise<number>;
  /** True once the ready line was seen. */
  isReady(): boolean;
  /** Resolves once, when the process has exited (never rejects). */
  readonly exited: Promise<WorkerExit>;
  /** The exit status once exited, else null. */
  exitInfo(): WorkerExit | null;
  /** Sends an IPC message; false when the channel is gone. */
  send(msg: object): boolean;
  /** Every IPC message the worker sends. */
  onMessage(listener: (msg: unknown) => void): void;
  /** Sends a signal; a no-op once the process has exited. */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status and whether SIGKILL was needed. */
  stop(graceMs: number): Promise<WorkerExit & { forced: boolean }>;
}

interface ReadyLine {
  ready?: unknown;
  port?: unknown;
}

function parseReadyPort(line: string): number | null {
  if (!line.startsWith('{')) return null;
  try {
    const msg = JSON.parse(line) as ReadyLine;
    return msg.ready === true && typeof msg.port === 'number' ? msg.port : null;
  } catch {
    return null;
  }
}

/** Spawns one worker. Throws synchronously only when the OS cannot start `process.execPath` at all. */
export function spawnWorker(opts: WorkerSpawnOptions): WorkerProcess {
  const child = spawn(process.execPath, [...(opts.execArgv ?? []), opts.cliPath, 'node'], {
    env: { ...opts.env, SB_NODE_ID: opts.id, SB_PORT: String(opts.port) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    detached: true,
  });
  // The IPC channel exists only so the worker sees our death; it must not keep an idle supervisor alive.
  child.channel?.unref();
  if (child.pid === undefined) throw new Error(`worker ${opts.id} could not be started`);
  const pid = child.pid;
  const log = opts.log.child({ worker: opts.id, pid });

  let exit: WorkerExit | null = null;
  const exited = new Promise<WorkerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });

  let readyPort: number | null = null;
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`worker ${opts.id} (pid ${pid}) not ready within ${opts.readyTimeoutMs} ms`));
      child.kill('SIGKILL');
    }, opts.readyTimeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const port = readyPort === null ? parseReadyPort(line) : null;
      if (port !== null) {
        readyPort = port;
        clearTimeout(timer);
        resolve(port);
      } else if (line.trim() !== '') log.info({ line }, 'worker stdout');
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(
        new Error(`worker ${opts.id} (pid ${pid}) exited before ready (code ${e.code}, signal ${e.signal})`),
      );
    });
  });
  // Callers may learn of a failed start from `exited` instead; never leave the rejection unhandled.
  ready.catch(() => {});

  const signal = (sig: NodeJS.Signals): void => {
    if (exit !== null) return;
    try {
      child.kill(sig);
    } catch {
      // Raced with the exit: nothing left to signal.
    }
  };

  return {
    id: opts.id,
    pid,
    ready,
    isReady: () => readyPort !== null,
    exited,
    exitInfo: () => exit,
    send(msg) {
      if (exit !== null || !child.connected) return false;
      try {
        return child.send(msg);
      } catch {
        return false;
      }
    },
    onMessage(listener) {
      child.on('message', listener);
      // A listener must not make the channel keep an idle supervisor alive (see above).
      child.channel?.unref();
    },
    signal,
    async stop(graceMs) {
      if (exit !== null) return { ...exit, forced: false };
      let forced = false;
      signal('SIGTERM');
      const timer = setTimeout(() => {
        forced = true;
        log.warn({ graceMs }, 'worker did not stop in time: SIGKILL');
        signal('SIGKILL');
      }, graceMs);
      try {
        return { ...(await exited), forced };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
