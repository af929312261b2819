/**
 * The reconnect delay that docs/PROTOCOL.md ("A minimal client", step 7) documents and the browser
 * clients use (src/web/shared/connection.ts): exponential from 500 ms, capped at 15 s, "equal jitter"
 * (uniform in the upper half of the cap), so a whole fleet dropped at once comes back spread out rather
 * than in one burst, and never retries at once. A test keeps the three in step.
 */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 15_000;

/**
 * The delay after an upgrade refused `503` with `retryAfterMs` (PROTOCOL.md, step 7): what the server
 * said plus up to a quarter more, so clients told the same slot do not arrive in the same millisecond.
 * The server's admission hands refused clients a spread-out schedule (src/gateway/admission.ts); the
 * attempt counter of reconnectDelayMs is not raised by such a refusal.
 */
export function refusedDelayMs(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs * (1 + random() / 4));
}

/** The delay before reconnect attempt `n` (0-based), ms. */
export function reconnectDelayMs(n: number, random: () => number = Math.random): number {
  const cap = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(n, 10));
  return Math.round(cap / 2 + (random() * cap) / 2);
}
