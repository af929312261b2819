/**
 * What a failed Cassandra request means: to a client (an outage is `unavailable` with a retry delay; issue
 * #12: a paused Cassandra answered sends `internal`), and to the history writer (may the write be
 * repeated; was it certainly not applied). Message writes have their own outcome rules
 * (src/store/history-writer.ts); every other read and write goes through rethrowStoreError.
 */
import cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';

/** How long a client should wait before retrying after a store outage, ms. */
export const STORE_RETRY_AFTER_MS = 1000;

const codes = cassandra.types.responseErrorCodes;

/** The driver's error: a client-side kind, or the server's response code. */
function kindOf(err: unknown): 'timeout' | 'no-host' | number | undefined {
  const { errors } = cassandra;
  if (err instanceof errors.OperationTimedOutError) return 'timeout';
  if (err instanceof errors.NoHostAvailableError) return 'no-host';
  if (err instanceof errors.ResponseError) return err.code;
  return undefined;
}

function isOneOf(err: unknown, clientKinds: readonly string[], serverCodes: readonly number[]): boolean {
  const k = kindOf(err);
  return typeof k === 'number' ? serverCodes.includes(k) : k !== undefined && clientKinds.includes(k);
}

/** True for the driver's failures that say "the store is not answering now", not "this request is wrong". */
export function isStoreOutage(err: unknown): boolean {
  return isOneOf(
    err,
    ['timeout', 'no-host'],
    [
      codes.readTimeout,
      codes.writeTimeout,
      codes.unavailableException,
      codes.overloaded,
      codes.isBootstrapping,
      codes.readFailure,
      codes.writeFailure,
    ],
  );
}

/**
 * True when the store refused a write before applying it anywhere (its outcome is certain: not written).
 * A write timeout is not among these: it may have been applied, and may still be.
 */
export function isRefusedWrite(err: unknown): boolean {
  return isOneOf(
    err,
    [],
    [codes.unavailableException, codes.overloaded, codes.invalid, codes.syntaxError, codes.unauthorized],
  );
}

/**
 * Failures after which repeating the same idempotent batch is safe and may succeed: a client-side
 * timeout or the coordinator's write timeout (the write may or may not have landed: repeating it writes
 * the same cells at the same timestamp), `unavailable` (not enough replicas alive: nothing was written),
 * an overloaded coordinator, and no host reachable (connection refused or reset). With isIdempotent the
 * driver already tried the next host; this is the writer's own bounded retry on top.
 */
export function isRetryableWrite(err: unknown): boolean {
  return isOneOf(
    err,
    ['timeout', 'no-host'],
    [codes.writeTimeout, codes.unavailableException, codes.overloaded],
  );
}

/** Rethrows a store outage as `unavailable` with a retry delay; anything else as it is. */
export function rethrowStoreError(err: unknown): never {
  if (err instanceof SwitchboardError) throw err;
  if (isStoreOutage(err)) {
    throw new SwitchboardError('unavailable', 'history store not answering; retry later', {
      cause: err,
      retryAfterMs: STORE_RETRY_AFTER_MS,
    });
  }
  throw err;
}
