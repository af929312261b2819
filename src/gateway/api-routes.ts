/**
 * The HTTP API under /api/v1: handlers for the routes of routes.ts. Each handler reads everything it
 * needs from `req` before its first await (uWS reuses the request object), authenticates the caller
 * (http-auth.ts), applies the tenant's HTTP rate limit, validates, and answers JSON.
 */
import type { HttpRequest } from 'uWebSockets.js';
import { SwitchboardError } from '../protocol/errors.js';
import { fitFrame, ID_PATTERN, MAX_SERVER_FRAME_BYTES, toMessageItem } from '../protocol/frames.js';
import type { HistoryStore, MessageRow } from '../store/types.js';
import type { ApiKeyScope, TenantRegistry } from '../tenants.js';
import { authorizeRead } from './access.js';
import type { Authenticator } from './auth.js';
import { decodePathSegment, sendJson, type TrackedResponse } from './http.js';
import { authenticateCaller, type Caller, credentialsOf, tenantOf } from './http-auth.js';

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** What the API handlers need from the gateway. */
export interface ApiContext {
  auth: Authenticator;
  tenants: TenantRegistry;
  store: HistoryStore;
  /** Takes one HTTP request token of the tenant; throws `rate_limited` when there is none. */
  limitHttp(tenant: string): void;
  /** How a token holder sees rows (agents: PII masked, review flags); default: as stored. */
  viewOf?(reader: { role: string }, rows: MessageRow[]): Promise<unknown[]>;
}

export type ApiHandler = (t: TrackedResponse, req: HttpRequest) => Promise<void>;

export function parseIntParam(
  raw: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new SwitchboardError('invalid_field', `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** A path parameter that must match the identifier pattern. */
export function idParam(req: HttpRequest, index: number, name: string): string {
  const v = decodePathSegment(req.getParameter(index) ?? '', name);
  if (!ID_PATTERN.test(v)) throw new SwitchboardError('invalid_field', `${name} is malformed`);
  return v;
}

/** Authenticates, then rate-limits the caller's tenant. */
export async function caller(
  ctx: ApiContext,
  cred: ReturnType<typeof credentialsOf>,
  accept: { token: boolean; scope: ApiKeyScope },
): Promise<Caller> {
  const c = await authenticateCaller(cred, ctx.auth, ctx.tenants, accept);
  ctx.limitHttp(tenantOf(c));
  return c;
}

/**
 * GET /api/v1/conversations/:id/messages?before=&limit= — a page of history, newest first, with a
 * cursor. A token caller must be the conversation's visitor or agent (an agent may also read one
 * still waiting for an agent); an API key (scope `api`) reads any conversation of its tenant.
 */
export function historyHandler(ctx: ApiContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const convRaw = req.getParameter(0) ?? '';
    const beforeRaw = req.getQuery('before');
    const limitRaw = req.getQuery('limit');
    const c = await caller(ctx, cred, { token: true, scope: 'api' });
    const conv = decodePathSegment(convRaw, 'conversation id');
    if (!ID_PATTERN.test(conv)) throw new SwitchboardError('invalid_field', 'conversation id is malformed');
    const before = parseIntParam(beforeRaw, 'before', 1, Number.MAX_SAFE_INTEGER);
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_PAGE_LIMIT) ?? DEFAULT_PAGE_LIMIT;
    const tenant = tenantOf(c);
    if (c.kind === 'token') await authorizeRead(ctx.store, c.principal, conv);
    else if (!(await ctx.store.loadConversation(tenant, conv))) {
      throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    }
    const page = await ctx.store.page(tenant, conv, before, limit);
    const items =
      c.kind === 'token' && ctx.viewOf
        ? await ctx.viewOf(c.principal, page.items)
        : page.items.map(toMessageItem);
    // Bounded like a server frame: a longer page stops early, and `next` continues after what was sent.
    const kept = fitFrame(items, MAX_SERVER_FRAME_BYTES - 1024);
    const last = kept.at(-1) as { seq: number } | undefined;
    const next = kept.length < items.length && last !== undefined ? last.seq : page.next;
    sendJson(t, 200, { items: kept, next });
  };
}
