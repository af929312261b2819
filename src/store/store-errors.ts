/**
 * What a failed Cassandra request means to a client. A timeout, an unreachable host or too few live
 * replicas is an outage of a dependency: the client is told `unavailable` with a retry delay (issue #12:
 * a paused Cassandra answered sends `internal`), never that the broker is broken. Reads and writes of
 * rows other than messages go through here; message writes have their own outcome rules
 * (src/store/history-writer.ts).
 */
import cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';

/** How long a client should wait before retrying after a store outage, ms. */
export const STORE_RETRY_AFTER_MS = 1000;

/** True for the driver's failures that say "the store is not answering now", not "this request is wrong". */
export function isStoreOutage(err: unknown): boolean {
  const { errors, types } = cassandra;
  if (err instanceof errors.OperationTimedOutError || err instanceof errors.NoHostAvailableError) return true;
  if (err instanceof errors.ResponseError) {
    const c = types.responseErrorCodes;
    return [
      c.readTimeout,
      c.writeTimeout,
      c.unavailableException,
      c.overloaded,
      c.isBootstrapping,
      c.readFailure,
      c.writeFailure,
    ].includes(err.code);
  }
  return false;
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
