/**
 * The bench's clients reconnect exactly as the browser clients do, with the one implementation in
 * src/web/shared/connection.ts, which docs/PROTOCOL.md ("A minimal client", step 7) documents:
 * - reconnectDelayMs: exponential from 500 ms, capped at 15 s, "equal jitter" (uniform in the upper half of
 *   the cap), so a whole fleet dropped at once comes back spread out rather than in one burst;
 * - refusedDelayMs: after an upgrade refused `503` with `retryAfterMs`, or a drain's notice, what the server
 *   said plus up to a quarter more; such a refusal does not raise reconnectDelayMs's attempt counter.
 */
export {
  BACKOFF_BASE_MS as RECONNECT_BASE_MS,
  BACKOFF_MAX_MS as RECONNECT_MAX_MS,
  backoffMs as reconnectDelayMs,
  toldDelayMs as refusedDelayMs,
} from '../../src/web/shared/connection.js';
