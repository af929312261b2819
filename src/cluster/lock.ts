/**
 * A cluster-wide lock on a JetStream KV key: `create` succeeds for one holder only; the key is
 * deleted when the holder is done and expires after the bucket TTL if the holder died. Used to run
 * schema migrations on one node at a time: Cassandra can create a table twice, with two ids,
 * when two nodes run the same CREATE TABLE IF NOT EXISTS at once.
 */
import { SwitchboardError } from '../protocol/errors.js';
import type { Transport } from './transport.js';

export const DEFAULT_LOCK_TTL_MS = 120_000;
export const DEFAULT_LOCKS_BUCKET = 'sb_locks';
const LOCK_POLL_MS = 200;

/**
 * Runs `fn` while holding the lock `name`; resolves with its result. Waits for another holder up
 * to `waitMs`, then rejects `unavailable`. The lock is released when `fn` settles.
 */
export async function withClusterLock<T>(
  transport: Transport,
  name: string,
  fn: () => Promise<T>,
  opts: { bucket?: string; ttlMs?: number; waitMs?: number } = {},
): Promise<T> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  const kv = await transport.kv(opts.bucket ?? DEFAULT_LOCKS_BUCKET, ttlMs);
  const key = name.replace(/[^A-Za-z0-9_=-]/g, '_');
  const deadline = Date.now() + (opts.waitMs ?? ttlMs + 10_000);
  const me = new TextEncoder().encode(transport.name);
  for (;;) {
    try {
      await kv.create(key, me);
      break;
    } catch {
      // Held by someone else (or a NATS hiccup): wait and try again.
    }
    if (Date.now() > deadline)
      throw new SwitchboardError('unavailable', `cluster lock '${name}' is held elsewhere`);
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  try {
    return await fn();
  } finally {
    await kv.delete(key).catch(() => {});
  }
}
