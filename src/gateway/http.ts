/** Small helpers for uWebSockets.js HTTP responses: JSON bodies, error bodies, abort tracking. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SwitchboardError, toSwitchboardError } from '../protocol/errors.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A response that remembers whether the client went away, so async handlers do not write to it. */
export interface TrackedResponse {
  readonly res: HttpResponse;
  aborted: boolean;
}

export function track(res: HttpResponse): TrackedResponse {
  const t: TrackedResponse = { res, aborted: false };
  res.onAborted(() => {
    t.aborted = true;
  });
  return t;
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
    t.res.end(JSON.stringify(body));
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
  const headers: Record<string, string> = {};
  if (e.retryAfterMs !== undefined)
    headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  const body: { error: { code: string; message: string; retryAfterMs?: number } } = {
    error: { code: e.code, message: e.message },
  };
  if (e.retryAfterMs !== undefined) body.error.retryAfterMs = e.retryAfterMs;
  sendJson(t, e.httpStatus, body, headers);
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
