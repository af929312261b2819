/**
 * The one registry of Switchboard error codes and how each maps onto the wire: the `code` in an
 * `error` frame, the HTTP status of the API, and the close code when the code ends a WebSocket.
 * Every code here is documented in docs/PROTOCOL.md (test/unit/errors.test.ts checks that).
 */
export const ERROR_CODES = {
  bad_frame: { http: 400, description: 'the frame could not be decoded (not msgpack / JSON, not an object)' },
  invalid_utf8: { http: 400, description: 'a text frame or string field is not valid UTF-8' },
  unknown_type: { http: 400, description: 'the frame `type` is not one this endpoint accepts' },
  invalid_field: { http: 400, description: 'a field is missing, of the wrong type, or out of range' },
  payload_too_large: { http: 413, description: 'the frame or body exceeds the configured maximum size' },
  unsupported_media_type: { http: 415, description: 'an HTTP request body that is not application/json' },
  unsupported_subprotocol: { http: 400, description: 'no supported WebSocket subprotocol was offered' },
  unauthorized: { http: 401, description: 'missing, malformed or badly signed token' },
  token_expired: { http: 401, description: 'the token has expired' },
  forbidden: { http: 403, description: 'the token is valid but may not do this (role, tenant, participant)' },
  not_found: { http: 404, description: 'no such conversation (in this tenant) or route' },
  conflict: {
    http: 409,
    description: 'the request conflicts with the current state (held by another agent, agent cannot take it)',
  },
  conversation_closed: { http: 409, description: 'the conversation is closed; start a new one' },
  blocked: { http: 422, description: 'the message was refused by the content policy' },
  rate_limited: {
    http: 429,
    description: 'a rate limit (connection, tenant, HTTP) was hit; retry after `retryAfterMs`',
  },
  busy: { http: 503, description: 'a bounded queue is full; retry after `retryAfterMs`' },
  unavailable: { http: 503, description: 'the shard has no reachable owner right now; retry later' },
  timeout: { http: 504, description: 'the owner did not answer within the request deadline' },
  internal: { http: 500, description: 'an unexpected failure on the broker; the request was not applied' },
} as const satisfies Record<string, { http: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export interface SwitchboardErrorOptions {
  cause?: unknown;
  /** For `busy` / `unavailable` / `rate_limited`: how long the client should wait before retrying, in ms. */
  retryAfterMs?: number;
}

/** Base error: a stable string `code` from the registry, a human message, an optional cause. */
export class SwitchboardError extends Error {
  override readonly name: string = 'SwitchboardError';
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: SwitchboardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
}

/** A bounded queue (mailbox, writer, pool) is full. Carries which one and its capacity. */
export class BusyError extends SwitchboardError {
  override readonly name = 'BusyError';
  readonly queue: string;
  readonly capacity: number;

  constructor(queue: string, capacity: number, retryAfterMs: number) {
    super('busy', `${queue} is full (capacity ${capacity}); retry after ${retryAfterMs} ms`, {
      retryAfterMs,
    });
    this.queue = queue;
    this.capacity = capacity;
  }
}

/**
 * A write whose outcome is unknown (a timeout, a lost connection, a paused store): it may or may not
 * have landed, and may still land later. Answered to clients as `unavailable` with a retry delay; the
 * conversation actor keeps the row's seq reserved for it until a repeat of the same write succeeds
 * (docs/ARCHITECTURE.md, "Uncertain writes").
 */
export class OutcomeUnknownError extends SwitchboardError {
  override readonly name = 'OutcomeUnknownError';

  constructor(what: string, retryAfterMs: number, cause?: unknown) {
    super('unavailable', `${what}: outcome unknown (store not answering); retry after ${retryAfterMs} ms`, {
      cause,
      retryAfterMs,
    });
  }
}

/** Wraps anything thrown into a SwitchboardError; unknown failures become `internal`. */
export function toSwitchboardError(err: unknown): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  return new SwitchboardError('internal', 'internal error', { cause: err });
}
