/**
 * GET /api/v1/conversations/:id/messages?before=&limit= — a page of persisted history, newest
 * first, with a cursor. The caller must be the conversation's visitor or its agent (an agent may
 * also read a conversation still waiting for an agent); other tenants' conversations are not found.
 */
import type { HttpRequest } from 'uWebSockets.js';
import { SwitchboardError } from '../protocol/errors.js';
import { ID_PATTERN, toMessageItem } from '../protocol/frames.js';
import type { HistoryStore } from '../store/types.js';
import { authorizeRead } from './access.js';
import type { Authenticator, Principal } from './auth.js';
import { bearerToken, decodePathSegment, sendError, sendJson, type TrackedResponse } from './http.js';

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

function parseIntParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new SwitchboardError('invalid_field', `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function historyRoute(
  t: TrackedResponse,
  req: HttpRequest,
  auth: Authenticator,
  store: HistoryStore,
): void {
  // Everything from req must be read before the first await (uWS reuses it).
  const conv = decodePathSegment(req.getParameter(0) ?? '', 'conversation id');
  const token = bearerToken(req);
  const beforeRaw = req.getQuery('before');
  const limitRaw = req.getQuery('limit');
  (async () => {
    const p: Principal = await auth.verify(token);
    if (!ID_PATTERN.test(conv)) throw new SwitchboardError('invalid_field', 'conversation id is malformed');
    const before = parseIntParam(beforeRaw, 'before', 1, Number.MAX_SAFE_INTEGER);
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_PAGE_LIMIT) ?? DEFAULT_PAGE_LIMIT;
    await authorizeRead(store, p, conv);
    const page = await store.page(p.tenant, conv, before, limit);
    sendJson(t, 200, { items: page.items.map(toMessageItem), next: page.next });
  })().catch((err) => sendError(t, err));
}
