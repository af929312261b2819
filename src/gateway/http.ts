/** Small helpers for uWebSockets.js HTTP responses: JSON bodies, error bodies, abort tracking. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ERROR_CODES, type ErrorCode, SwitchboardError, toSwitchboardError } from '../protocol/errors.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A response that remembers whether the client went away, so async handlers do not write to it. */
export interface TrackedResponse {
  readonly res: HttpResponse;
  aborted: boolean;
  /** Called once if the client goes away (body readers release their buffers). */
  onAbort: (() => void) | undefined;
  /** Also called once on abort (the in-flight bound releases the request's slot). */
  onAbortRelease?: (() => void) | undefined;
  /** Set when the answer must close the connection (a body left unread). */
  closeAfter?: boolean;
}

export function track(res: HttpResponse): TrackedResponse {
  const t: TrackedResponse = { res, aborted: false, onAbort: undefined };
  res.onAborted(() => {
    t.aborted = true;
    t.onAbort?.();
    t.onAbortRelease?.();
  });
  return t;
}

/** Whether the request declares a JSON body (`application/json`, any parameters). */
export function isJsonContentType(req: HttpRequest): boolean {
  const ct = req.getHeader('content-type');
  return /^application\/json\s*(;|$)/i.test(ct);
}

/**
 * Reads the request body, at most `maxBytes`, and parses it as JSON. MUST be called before the
 * handler returns (uWS delivers data only to a handler registered synchronously). Rejects
 * `payload_too_large` as soon as the body passes the cap (the rest is not buffered; the connection
 * is closed after the answer, so the client stops sending), `invalid_field` for a body that is not
 * JSON, and never settles when the client aborts (nothing can be answered then).
 */
export function readJsonBody(t: TrackedResponse, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] | undefined;
    let first: Buffer | undefined;
    let size = 0;
    let done = false;
    t.onAbort = () => {
      done = true;
      chunks = undefined;
      first = undefined;
    };
    t.res.onData((ab, isLast) => {
      if (done) return;
      size += ab.byteLength;
      if (size > maxBytes) {
        done = true;
        chunks = undefined;
        first = undefined;
        t.closeAfter = true;
        reject(
          new SwitchboardError('payload_too_large', `the request body is larger than ${maxBytes} bytes`),
        );
        return;
      }
      // The ArrayBuffer is only valid during this callback: copy it.
      const copy = Buffer.from(new Uint8Array(ab));
      if (first === undefined && chunks === undefined) first = copy;
      else {
        chunks ??= first ? [first] : [];
        first = undefined;
        chunks.push(copy);
      }
      if (!isLast) return;
      done = true;
      const body = first ?? Buffer.concat(chunks ?? []);
      if (body.length === 0) {
        reject(new SwitchboardError('invalid_field', 'a JSON request body is required'));
        return;
      }
      try {
        resolve(JSON.parse(body.toString('utf8')));
      } catch {
        reject(new SwitchboardError('invalid_field', 'the request body is not valid JSON'));
      }
    });
  });
}

/** Percent-decodes a path segment; a malformed escape is `invalid_field`, never a thrown URIError. */
export function decodePathSegment(raw: string, name: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new SwitchboardError('invalid_field', `${name} is not a valid percent-encoded path segment`);
  }
}

/**
 * Runs a uWS handler so that nothing it throws synchronously escapes into uWS (which would take
 * the process down): the client gets a JSON error instead.
 */
export function guarded<A extends unknown[]>(
  handler: (t: TrackedResponse, ...args: A) => void,
): (res: HttpResponse, ...args: A) => void {
  return (res, ...args) => {
    const t = track(res);
    try {
      handler(t, ...args);
    } catch (err) {
      sendError(t, err);
    }
  };
}

export function sendJson(
  t: TrackedResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  if (t.aborted) return;
  t.res.cork(() => {
    t.res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
    t.res.writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(headers)) t.res.writeHeader(k, v);
    t.res.end(JSON.stringify(body), t.closeAfter === true);
  });
}

export function sendText(t: TrackedResponse, status: number, body: string, contentType: string): void {
  if (t.aborted) return;
  t.res.cork(() => {
    t.res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
    t.res.writeHeader('content-type', contentType);
    t.res.end(body);
  });
}

/** The JSON error body of the HTTP API: `{ error: { code, message } }`, with Retry-After when busy. */
export function sendError(t: TrackedResponse, err: unknown): void {
  const e: SwitchboardError = toSwitchboardError(err);
  sendErrorBody(t, e.code, e.message, e.retryAfterMs);
}

/**
 * The same answer from its fields, for refusals on a hot path: a storm of reconnects is refused
 * hundreds of thousands of times, and constructing an Error (its stack trace) cost ~9 µs each on
 * Node 20 here, a fifth of a refusal.
 */
export function sendErrorBody(
  t: TrackedResponse,
  code: ErrorCode,
  message: string,
  retryAfterMs?: number,
): void {
  const headers: Record<string, string> = {};
  const body: { error: { code: string; message: string; retryAfterMs?: number } } = {
    error: { code, message },
  };
  if (retryAfterMs !== undefined) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
    body.error.retryAfterMs = retryAfterMs;
  }
  sendJson(t, ERROR_CODES[code].http, body, headers);
}

/**
 * The bearer token from `Authorization: Bearer ...` (scheme case-insensitive, RFC 7235), else
 * from the `token` query parameter (uWS has already percent-decoded it).
 */
export function bearerToken(req: HttpRequest): string | undefined {
  const auth = req.getHeader('authorization');
  if (auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') return auth.slice(7).trim();
  const q = req.getQuery('token');
  return q || undefined;
}
