/**
 * Child processes of the local stack (nats-server, Cassandra): spawned with stdout and stderr appended to a
 * log file, stopped with SIGTERM then SIGKILL, and signalled on demand (SIGKILL, SIGSTOP, SIGCONT) by fault
 * tests. Also the small polling and TCP helpers the launchers share.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { dirname } from 'node:path';

export const DEFAULT_STOP_GRACE_MS = 10_000;
export const DEFAULT_TCP_TIMEOUT_MS = 1_000;
export const DEFAULT_POLL_INTERVAL_MS = 100;
export const DEFAULT_LOG_TAIL_BYTES = 4_096;

export interface ExitInfo {
  /** Exit code, or null when the process ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnLoggedOptions {
  command: string;
  args: readonly string[];
  /** stdout and stderr are appended here; the folder is created when missing. */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ManagedProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once, when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** The exit status once the process has exited, else null. */
  exitInfo(): ExitInfo | null;
  /**
   * SIGCONT (so a SIGSTOPped process can handle it), SIGTERM, then SIGKILL after `graceMs`.
   * Resolves when the process has exited; resolves at once when it already had.
   */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...); a no-op once the process has exited. */
  signal(sig: NodeJS.Signals): void;
}

// Children still running when this process exits are killed, so a crashed test run or CLI does not leave
// servers holding ports.
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.signal('SIGKILL');
  });
}

/**
 * Spawns `command args` with stdout/stderr appended to `logFile`. Resolves once the OS has started the
 * process; rejects when it cannot be started (for example ENOENT for a missing binary).
 */
export async function spawnLogged(opts: SpawnLoggedOptions): Promise<ManagedProcess> {
  await mkdir(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      // Its own process group: a terminal's Ctrl-C reaches only our CLI, which then stops the
      // broker nodes first and the servers after them, instead of all at once.
      detached: true,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }

  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${opts.command} started without a pid`);

  let info: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      info = { code, signal };
      live.delete(handle);
      resolve(info);
    });
  });

  const handle: ManagedProcess = {
    pid,
    logFile: opts.logFile,
    exited,
    exitInfo: () => info,
    signal(sig) {
      if (info !== null) return;
      try {
        child.kill(sig);
      } catch {
        // Raced with the exit: nothing left to signal.
      }
    },
    async stop(graceMs = DEFAULT_STOP_GRACE_MS) {
      if (info !== null) return info;
      handle.signal('SIGCONT');
      handle.signal('SIGTERM');
      const timer = setTimeout(() => handle.signal('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(handle);
  installExitHook();
  return handle;
}

/** Resolves true when a TCP connection to host:port succeeds within `timeoutMs`, else false (never rejects). */
export function isTcpReachable(
  host: string,
  port: number,
  timeoutMs = DEFAULT_TCP_TIMEOUT_MS,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host);
  });
}

/**
 * Resolves with a TCP port that was free on `host` a moment ago (the OS picks it). Another process may still
 * take it before it is used; prefer letting the server pick (nats-server's port -1) when it can.
 */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a probe listener'));
      });
    });
  });
}

export interface WaitUntilOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each attempt: a string aborts the wait with an Error of that message. */
  abort?: () => string | null;
  /** Used in the timeout message: "timed out after N ms waiting for <what>". */
  what: string;
}

/**
 * Calls `attempt` until it returns a value other than undefined/false/null and resolves with it.
 * Rejects on timeout or when `abort` returns a message. Attempts never overlap.
 */
export async function waitUntil<T>(
  attempt: () => Promise<T | null | undefined | false>,
  opts: WaitUntilOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const intervalMs = opts.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  for (;;) {
    const reason = opts.abort?.() ?? null;
    if (reason !== null) throw new Error(reason);
    const result = await attempt();
    if (result !== undefined && result !== null && result !== false) return result;
    // The abort reason may have appeared while the attempt ran (the process exited meanwhile).
    const late = opts.abort?.() ?? null;
    if (late !== null) throw new Error(late);
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The last `maxBytes` of a log file as text ('' when it does not exist). */
export async function readLogTail(file: string, maxBytes = DEFAULT_LOG_TAIL_BYTES): Promise<string> {
  if (!existsSync(file)) return '';
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The current size of a file in bytes (0 when it does not exist); used to read only what a run appended. */
export function fileSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** The text appended to `file` after byte offset `from` ('' when it does not exist). */
export function readFrom(file: string, from: number): string {
  if (!existsSync(file)) return '';
  return readFileSync(file).subarray(from).toString('utf8');
}
