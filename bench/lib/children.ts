/**
 * Generator child processes: forked Node processes that talk to the orchestrator over IPC with typed
 * messages. Load is spread over several processes because one Node event loop cannot both drive
 * thousands of sockets and time its sends precisely on a busy 2-core machine, and because each process
 * may hold only ~20k file descriptors here.
 */
import { type ChildProcess, fork } from 'node:child_process';

const STDERR_TAIL_CHARS = 4000;
const KILL_GRACE_MS = 5000;

export interface ChildHandle<In, Out> {
  readonly pid: number;
  send(msg: In): void;
  /** Every message from the child goes to the handlers, in order. */
  onMessage(handler: (msg: Out) => void): void;
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
  stderrTail(): string;
  /** Disconnects (the child then finishes on its own), SIGKILL after a grace period. */
  stop(): Promise<void>;
}

export function forkChild<In, Out>(
  modulePath: string,
  args: string[] = [],
  /** Node flags of the child (e.g. --cpu-prof); never the orchestrator's own. */
  execArgv: string[] = [],
): ChildHandle<In, Out> {
  const child: ChildProcess = fork(modulePath, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // The orchestrator's own flags (such as a debugger) must not be copied into every generator.
    execArgv,
    // Its own session, as each worker of the node has (src/worker-process.ts). With the kernel's
    // autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled, on by default here) the CPU is
    // shared between sessions first, then between the processes of a session: all generators in the
    // orchestrator's session got one share against each of the node's six workers' (~0.3 of a core
    // in a 100k reconnect storm), and read the drain's notices seconds late (BENCHMARKS.md). The child
    // still exits when the orchestrator does: it leaves on the IPC channel's disconnect.
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`cannot fork ${modulePath}`);
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-STDERR_TAIL_CHARS);
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid,
    send(msg) {
      if (child.connected) child.send(msg as object);
    },
    onMessage(handler) {
      child.on('message', (m) => handler(m as Out));
    },
    exited,
    isRunning: () => running,
    stderrTail: () => tail,
    async stop() {
      if (!running) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Child side: typed send to the parent, and the handler for its messages. The child exits when the parent
 * disconnects (or dies), and ignores SIGINT so a terminal's Ctrl-C reaches only the orchestrator, which
 * then ends the run in order and still writes its report.
 */
export function parentChannel<In, Out>(onMessage: (msg: In) => void): { send(msg: Out): void } {
  if (typeof process.send !== 'function') throw new Error('this module runs as a forked bench generator');
  process.on('SIGINT', () => {});
  process.on('message', (m) => onMessage(m as In));
  process.on('disconnect', () => process.exit(0));
  return {
    send(msg) {
      if (process.connected) process.send?.(msg);
    },
  };
}
