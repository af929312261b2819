/**
 * The pauses of a JVM the bench watches (Cassandra), from the GC log it writes when started with
 * `-Xlog:gc:file=<path>` (src/stack/cassandra.ts does): a latency tail can then be laid beside the JVM's
 * stop-the-world pauses. A JVM started without that flag (one the stack did not start) reports nothing.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

/** A unified-logging pause line ends with its duration: `... Pause Young (Normal) ... 845M->542M(1024M) 34.142ms`. */
const PAUSE_LINE = /\bPause\b.*?(\d+(?:\.\d+)?)ms\s*$/;
/** At most this much of a log is read per call: a sample never stalls on a huge backlog. */
const MAX_READ_BYTES = 1 << 20;

/** The GC log file named by a process's `-Xlog:gc...:file=<path>` argument, or undefined. */
export function jvmGcLogOf(pid: number): string | undefined {
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  for (const arg of args) {
    if (!arg.startsWith('-Xlog:gc')) continue;
    const m = /(?:^|:)file=("?)([^":]+)\1/.exec(arg);
    if (m?.[2] !== undefined) return m[2];
  }
  return undefined;
}

/** The longest pause among the lines of `text` (0 when none). */
export function longestPauseMs(text: string): number {
  let max = 0;
  for (const line of text.split('\n')) {
    const m = PAUSE_LINE.exec(line);
    if (m?.[1] !== undefined) max = Math.max(max, Number(m[1]));
  }
  return max;
}

/** Follows one GC log from where it ended when first seen: each call gives the longest pause since the last. */
export class GcLogTail {
  #offset: number;
  #partial = '';

  constructor(readonly path: string) {
    this.#offset = sizeOf(path);
  }

  /** The longest pause logged since the previous call (0 when none, or the file cannot be read). */
  longestPauseSinceLast(): number {
    const size = sizeOf(this.path);
    // Rotated (or truncated): start again from its beginning.
    if (size < this.#offset) {
      this.#offset = 0;
      this.#partial = '';
    }
    const length = Math.min(size - this.#offset, MAX_READ_BYTES);
    if (length <= 0) return 0;
    const buf = Buffer.alloc(length);
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'r');
      readSync(fd, buf, 0, length, this.#offset);
    } catch {
      return 0;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.#offset += length;
    const text = this.#partial + buf.toString('utf8');
    const cut = text.lastIndexOf('\n');
    // A line still being written is kept for the next call.
    this.#partial = cut < 0 ? text : text.slice(cut + 1);
    return cut < 0 ? 0 : longestPauseMs(text.slice(0, cut));
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
