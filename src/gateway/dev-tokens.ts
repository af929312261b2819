/**
 * Development mode only (config.auth.devTokens, docs/WIDGET.md): `GET /dev/token` signs a demo
 * token with the deployment secret so that `npm start` alone gives a working demo page and console.
 * In production the shop's backend signs visitor tokens and an SSO signs agent tokens; this route
 * then answers 404 like any unknown path.
 *
 * A visitor keeps one id across reloads through a cookie (as a shop's session would): the widget's
 * saved conversation and unsent messages belong to that id.
 */

import type { HttpRequest } from 'uWebSockets.js';
import { randomBytes } from 'node:crypto';
import { SwitchboardError } from '../protocol/errors.js';
import type { Authenticator, TokenRole } from './auth.js';
import { sendJson, type TrackedResponse } from './http.js';

/** Lifetime of a demo token, seconds: short, so the widget's refresh path is exercised. */
export const DEV_TOKEN_TTL_S = 15 * 60;
export const DEV_VISITOR_COOKIE = 'sb_dev_visitor';
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const PERM = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Query: `role` (visitor | agent), `tenant` (default acme), `sub` (agents; visitors: the cookie), `perms`. */
export function devTokenHandler(
  auth: Authenticator,
): (t: TrackedResponse, req: HttpRequest) => Promise<void> {
  return async (t, req) => {
    const role = (req.getQuery('role') || 'visitor') as TokenRole;
    const tenant = req.getQuery('tenant') || 'acme';
    const subQuery = req.getQuery('sub') || '';
    const perms = (req.getQuery('perms') || '').split(',').filter((p) => p !== '');
    const cookie = /(?:^|;\s*)sb_dev_visitor=([A-Za-z0-9_-]{1,64})/.exec(req.getHeader('cookie'))?.[1];
    if (role !== 'visitor' && role !== 'agent') {
      throw new SwitchboardError('invalid_field', 'role must be visitor or agent');
    }
    if (!ID.test(tenant)) throw new SwitchboardError('invalid_field', 'tenant is malformed');
    if (subQuery && !ID.test(subQuery)) throw new SwitchboardError('invalid_field', 'sub is malformed');
    if (perms.length > 8 || !perms.every((p) => PERM.test(p))) {
      throw new SwitchboardError('invalid_field', 'perms must be a comma-separated list of permission names');
    }
    const sub =
      subQuery || (role === 'visitor' ? cookie : undefined) || `${role}-${randomBytes(5).toString('hex')}`;
    const token = await auth.sign({ tenant, sub, role, ...(perms.length ? { perms } : {}) }, DEV_TOKEN_TTL_S);
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    if (role === 'visitor' && !subQuery) {
      headers['set-cookie'] = `${DEV_VISITOR_COOKIE}=${sub}; Path=/; Max-Age=2592000; SameSite=Lax; HttpOnly`;
    }
    sendJson(t, 200, { token, tenant, sub, role, expiresIn: DEV_TOKEN_TTL_S }, headers);
  };
}
