/**
 * JetStream setup calls (creating a KV bucket or a stream) retried while the JetStream cluster is still
 * forming. When a fresh R3 cluster starts, or one of its servers restarts, the meta leader election and
 * the placement of the first replicated streams take seconds, and on a busy machine a setup request
 * times out meanwhile (`cluster up` failed this way on 2026-12-03: a worker exited on TIMEOUT before
 * ready). Such failures are transient: the call is repeated with backoff until `deadlineMs`; any other
 * error (a bad configuration) is thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export const DEFAULT_SETUP_DEADLINE_MS = 45_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 4_000;

/** Errors of a JetStream that is not (yet) able to answer: timeouts, no responders, no leader, no peers. */
export function isTransientSetupError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = String(e?.code ?? '');
  const message = String(e?.message ?? '');
  if (code === 'TIMEOUT' || code === '503' || code === 'NO_RESPONDERS') return true;
  return /timeout|no responders|temporarily unavailable|no suitable peers|insufficient resources|leader/i.test(
    message,
  );
}

/** Hears of a setup call that failed transiently and will be tried again after `backoffMs`. */
export type SetupRetryListener = (what: string, err: unknown, attempt: number, backoffMs: number) => void;

export async function retrySetup<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { deadlineMs?: number; onRetry?: SetupRetryListener | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? DEFAULT_SETUP_DEADLINE_MS);
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientSetupError(err) || Date.now() + backoff > deadline) throw err;
      opts.onRetry?.(what, err, attempt, backoff);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}
