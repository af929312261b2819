/**
 * How many WebSockets one worker process may hold (issue #14). Each socket is a file descriptor, and a
 * process past its open-file limit cannot accept at all (EMFILE), so the gateway refuses upgrades a little
 * before it: `503 unavailable` with `retryAfterMs`, which a client answers by retrying with backoff, and
 * the kernel's SO_REUSEPORT hash then sends most retries to the node's other workers. This matters after a
 * restart, when the first worker up would otherwise take every reconnecting client.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything but sockets: NATS, Cassandra, the pool, log and metric files, libuv. */
export const DEFAULT_FD_HEADROOM = 1000;
/** When the limit cannot be read (not Linux). */
const FALLBACK_FD_LIMIT = 1024;
const MIN_SOCKETS = 1;

/** The soft "Max open files" of this process, from /proc/self/limits (Node raises it to the hard limit). */
export function openFileLimit(limitsText?: string): number {
  try {
    const text = limitsText ?? readFileSync('/proc/self/limits', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('Max open files'));
    const n = Number(line?.trim().split(/\s+/)[3]);
    return Number.isInteger(n) && n > 0 ? n : FALLBACK_FD_LIMIT;
  } catch {
    return FALLBACK_FD_LIMIT;
  }
}

/** The configured limit, or (0) the open-file limit minus the headroom. */
export function resolveMaxSockets(configured: number, fdLimit: number = openFileLimit()): number {
  return configured > 0 ? configured : Math.max(MIN_SOCKETS, fdLimit - DEFAULT_FD_HEADROOM);
}
