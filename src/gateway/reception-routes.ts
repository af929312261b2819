/**
 * Reception's HTTP route (issue #17): GET /api/v1/left-messages — the messages visitors left
 * outside business hours that wait for the desk to open (they are queued as conversations then), for
 * an admin API key or an agent's token of the tenant.
 */
import { SwitchboardError } from '../protocol/errors.js';
import { type ApiHandler, caller, parseIntParam } from './api-routes.js';
import type { ChatRouteContext } from './chat-routes.js';
import { sendJson } from './http.js';
import { credentialsOf, tenantOf } from './http-auth.js';

export const DEFAULT_LEFT_LISTING = 100;
export const MAX_LEFT_LISTING = 1000;

/** GET /api/v1/left-messages?limit= — oldest first. */
export function leftMessagesHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const limitRaw = req.getQuery('limit');
    const c = await caller(ctx, cred, { token: true, scope: 'admin' });
    if (c.kind === 'token' && c.principal.role !== 'agent')
      throw new SwitchboardError('forbidden', 'only agents and admin API keys may read left messages');
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_LEFT_LISTING) ?? DEFAULT_LEFT_LISTING;
    if (!ctx.reception) throw new SwitchboardError('unavailable', 'reception is not running');
    sendJson(t, 200, { items: await ctx.reception.leftMessages(tenantOf(c), limit) });
  };
}
