/**
 * Who is calling the HTTP API. Three kinds of credentials:
 *
 * - an **API key** of a tenant (`X-Api-Key: <key>`, or `Authorization: Bearer <key>` when the key
 *   starts with `sbk_`): business systems and tenant admins; looked up by its sha256 in the tenants
 *   file, scopes `api` and/or `admin`;
 * - a **token** (the JWT of the WebSocket API, `Authorization: Bearer <jwt>` or `?token=`): visitors
 *   and agents, on the routes that accept them;
 * - an **operator** credential for /admin/* and /metrics: SB_ADMIN_TOKEN or an `operatorKeys` key.
 *
 * Missing or unknown credentials are 401 `unauthorized`; a valid credential that may not use a route
 * (wrong kind, missing scope) is 403 `forbidden`; another tenant's conversation is 404 `not_found`.
 */

import type { HttpRequest } from 'uWebSockets.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { SwitchboardError } from '../protocol/errors.js';
import type { ApiKeyScope, TenantRegistry } from '../tenants.js';
import type { Authenticator, Principal } from './auth.js';

export const API_KEY_PREFIX = 'sbk_';
/** Longer credentials are refused before hashing (a header can be 8 KiB+). */
export const MAX_CREDENTIAL_CHARS = 4096;

export interface Credentials {
  apiKey: string | undefined;
  token: string | undefined;
}

export type Caller =
  | {
      readonly kind: 'apiKey';
      readonly tenant: string;
      readonly keyId: string;
      readonly scopes: readonly ApiKeyScope[];
    }
  | { readonly kind: 'token'; readonly principal: Principal };

/** Reads the credentials off the request (synchronously: uWS reuses `req` after the handler returns). */
export function credentialsOf(req: HttpRequest): Credentials {
  const headerKey = req.getHeader('x-api-key');
  const auth = req.getHeader('authorization');
  let bearer: string | undefined;
  if (auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') bearer = auth.slice(7).trim();
  if (headerKey) return { apiKey: headerKey.trim(), token: undefined };
  if (bearer?.startsWith(API_KEY_PREFIX)) return { apiKey: bearer, token: undefined };
  return { apiKey: undefined, token: bearer || req.getQuery('token') || undefined };
}

/**
 * Resolves the caller. `accept` names the kinds the route takes; `scope` the API-key scope it
 * needs. Rejects `unauthorized` (no or unknown credential, bad token), `token_expired`, or
 * `forbidden` (a kind or scope the route does not take).
 */
export async function authenticateCaller(
  cred: Credentials,
  auth: Authenticator,
  tenants: TenantRegistry,
  accept: { token: boolean; scope: ApiKeyScope },
): Promise<Caller> {
  if (cred.apiKey !== undefined) return apiKeyCaller(cred.apiKey, tenants, accept.scope);
  if (cred.token === undefined) {
    throw new SwitchboardError('unauthorized', 'an API key (X-Api-Key) or a bearer token is required');
  }
  const principal = await auth.verify(cred.token);
  if (!accept.token) throw new SwitchboardError('forbidden', 'this route takes an API key, not a user token');
  return { kind: 'token', principal };
}

/** The synchronous part for API keys (the ingest hot path takes no promise for it). */
export function apiKeyCaller(key: string, tenants: TenantRegistry, scope: ApiKeyScope): Caller {
  if (key.length === 0 || key.length > MAX_CREDENTIAL_CHARS) {
    throw new SwitchboardError('unauthorized', 'the API key is invalid');
  }
  const match = tenants.current.findApiKey(key);
  if (!match) throw new SwitchboardError('unauthorized', 'the API key is invalid');
  if (match.tenant === undefined) {
    throw new SwitchboardError('forbidden', 'an operator key cannot act for a tenant');
  }
  if (!match.key.scopes.includes(scope)) {
    throw new SwitchboardError('forbidden', `the API key '${match.key.id}' lacks the '${scope}' scope`);
  }
  return { kind: 'apiKey', tenant: match.tenant, keyId: match.key.id, scopes: match.key.scopes };
}

/**
 * Checks an operator credential (/admin/*, /metrics): SB_ADMIN_TOKEN or an operator key of the
 * tenants file. With neither configured, operator routes are closed.
 */
export function checkOperator(
  cred: Credentials,
  adminToken: string | undefined,
  tenants: TenantRegistry,
): void {
  const presented = cred.apiKey ?? cred.token;
  if (presented === undefined || presented.length > MAX_CREDENTIAL_CHARS) {
    throw new SwitchboardError(
      'unauthorized',
      'an operator credential (SB_ADMIN_TOKEN or an operator key) is required',
    );
  }
  if (adminToken !== undefined) {
    // Hash both sides so the comparison is constant-time regardless of lengths.
    const a = createHash('sha256').update(presented).digest();
    const b = createHash('sha256').update(adminToken).digest();
    if (timingSafeEqual(a, b)) return;
  }
  const match = tenants.current.findApiKey(presented);
  if (match && match.tenant === undefined) return;
  if (match) throw new SwitchboardError('forbidden', 'a tenant API key cannot use operator routes');
  throw new SwitchboardError('unauthorized', 'the operator credential is invalid');
}

/** The tenant a caller acts in. */
export function tenantOf(c: Caller): string {
  return c.kind === 'apiKey' ? c.tenant : c.principal.tenant;
}
