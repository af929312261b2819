/**
 * The support-desk routes of /api/v1 (issue #17; docs/openapi.yaml): canned replies of the tenant
 * (admin API keys) and of each agent (admin keys, or the agent's own token), labels of a conversation
 * and the listing by label (API keys, scope `api`), and the audit of recalls and edits — the bodies they
 * replaced — for auditors only (API keys with scope `audit`).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { z } from 'zod';
import type { DeskService } from '../desk/service.js';
import { SwitchboardError } from '../protocol/errors.js';
import { TENANT_OWNER, utcMonth } from '../store/desk-store.js';
import { type ApiHandler, caller, idParam, parseIntParam } from './api-routes.js';
import { actorOf, type ChatRouteContext, jsonBody, keyCaller, parseWith } from './chat-routes.js';
import { decodePathSegment, sendJson } from './http.js';
import { type Caller, credentialsOf, tenantOf } from './http-auth.js';
import type { RouteKey } from './routes.js';

export const DEFAULT_LABEL_LISTING = 50;
export const MAX_LABEL_LISTING = 500;
export const DEFAULT_AUDIT_LISTING = 100;
export const MAX_AUDIT_LISTING = 500;

const cannedSchema = z.strictObject({ title: z.string().optional(), body: z.string() });
const labelsSchema = z
  .strictObject({
    add: z.array(z.string()).max(64).optional(),
    remove: z.array(z.string()).max(64).optional(),
  })
  .refine((b) => (b.add?.length ?? 0) + (b.remove?.length ?? 0) > 0, 'give add, remove or both');

type Route = (res: HttpResponse, req: HttpRequest) => void;
type DeskRouteKey = Extract<
  RouteKey,
  | 'get /api/v1/canned'
  | 'put /api/v1/canned/:shortcut'
  | 'del /api/v1/canned/:shortcut'
  | 'get /api/v1/agents/:agent/canned'
  | 'put /api/v1/agents/:agent/canned/:shortcut'
  | 'del /api/v1/agents/:agent/canned/:shortcut'
  | 'get /api/v1/conversations'
  | 'post /api/v1/conversations/:id/labels'
  | 'get /api/v1/conversations/:id/audit'
>;

function shortcutParam(req: HttpRequest, index: number): string {
  return decodePathSegment(req.getParameter(index) ?? '', 'shortcut');
}

function desk(d: DeskService | undefined): DeskService {
  if (!d) throw new SwitchboardError('unavailable', 'the support desk is not running');
  return d;
}

/** An agent's canned replies: an admin API key, or that agent's own token. */
function agentOwner(c: Caller, agent: string): void {
  if (c.kind === 'apiKey') return;
  if (c.principal.role !== 'agent' || c.principal.user !== agent)
    throw new SwitchboardError(
      'forbidden',
      "only the agent itself or an admin API key may use an agent's canned replies",
    );
}

/** The handlers of the desk routes, wrapped by the gateway's `apiRoute` (bounded, errors as JSON). */
export function deskRouteHandlers(
  ctx: ChatRouteContext,
  service: DeskService | undefined,
  apiRoute: (h: ApiHandler) => Route,
): Record<DeskRouteKey, Route> {
  const listTenantCanned: ApiHandler = async (t, req) => {
    const c = await caller(ctx, credentialsOf(req), { token: true, scope: 'admin' });
    const tenant = tenantOf(c);
    const d = desk(service);
    if (c.kind === 'token') {
      if (c.principal.role !== 'agent')
        throw new SwitchboardError('forbidden', 'only agents read canned replies');
      // An agent sees the tenant's and its own; its own win on the same shortcut (as `canned` does).
      const [shared, own] = await Promise.all([
        d.listCanned(tenant, TENANT_OWNER),
        d.listCanned(tenant, c.principal.user),
      ]);
      const mine = new Set(own.map((r) => r.shortcut));
      sendJson(t, 200, { items: [...own, ...shared.filter((r) => !mine.has(r.shortcut))] });
      return;
    }
    sendJson(t, 200, { items: await d.listCanned(tenant, TENANT_OWNER) });
  };
  const putTenantCanned: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const shortcut = shortcutParam(req, 0);
    const c = keyCaller(ctx, cred, 'admin');
    const input = parseWith(cannedSchema, await jsonBody(t, req, ctx.maxBodyBytes));
    const r = await desk(service).putCanned(c.tenant, TENANT_OWNER, shortcut, input, Date.now());
    sendJson(t, r.created ? 201 : 200, r.reply);
  };
  const deleteTenantCanned: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const shortcut = shortcutParam(req, 0);
    const c = keyCaller(ctx, cred, 'admin');
    await desk(service).deleteCanned(c.tenant, TENANT_OWNER, shortcut);
    sendJson(t, 200, { deleted: shortcut });
  };
  const listAgentCanned: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const agent = idParam(req, 0, 'agent id');
    const c = await caller(ctx, cred, { token: true, scope: 'admin' });
    agentOwner(c, agent);
    sendJson(t, 200, { items: await desk(service).listCanned(tenantOf(c), agent) });
  };
  const putAgentCanned: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const agent = idParam(req, 0, 'agent id');
    const shortcut = shortcutParam(req, 1);
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const c = await caller(ctx, cred, { token: true, scope: 'admin' });
    agentOwner(c, agent);
    const input = parseWith(cannedSchema, await body);
    const r = await desk(service).putCanned(tenantOf(c), agent, shortcut, input, Date.now());
    sendJson(t, r.created ? 201 : 200, r.reply);
  };
  const deleteAgentCanned: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const agent = idParam(req, 0, 'agent id');
    const shortcut = shortcutParam(req, 1);
    const c = await caller(ctx, cred, { token: true, scope: 'admin' });
    agentOwner(c, agent);
    await desk(service).deleteCanned(tenantOf(c), agent, shortcut);
    sendJson(t, 200, { deleted: shortcut });
  };
  const listByLabel: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const label = req.getQuery('label') ?? '';
    const month = req.getQuery('month') || utcMonth(Date.now());
    const limitRaw = req.getQuery('limit');
    const c = keyCaller(ctx, cred, 'api');
    if (label === '') throw new SwitchboardError('invalid_field', 'label is required (?label=...)');
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_LABEL_LISTING) ?? DEFAULT_LABEL_LISTING;
    const items = await desk(service).byLabel(c.tenant, label, month, limit);
    sendJson(t, 200, { label, month, items });
  };
  const setLabels: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const c = keyCaller(ctx, cred, 'api');
    const input = parseWith(labelsSchema, await jsonBody(t, req, ctx.maxBodyBytes));
    sendJson(
      t,
      200,
      await desk(service).label(c.tenant, conv, actorOf(c), input.add ?? [], input.remove ?? []),
    );
  };
  const audit: ApiHandler = async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const limitRaw = req.getQuery('limit');
    // Auditors only: an API key with scope `audit` (not `api`, not `admin`, never a user token).
    const c = keyCaller(ctx, cred, 'audit');
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_AUDIT_LISTING) ?? DEFAULT_AUDIT_LISTING;
    sendJson(t, 200, { conv, items: await desk(service).audits(c.tenant, conv, limit) });
  };
  return {
    'get /api/v1/canned': apiRoute(listTenantCanned),
    'put /api/v1/canned/:shortcut': apiRoute(putTenantCanned),
    'del /api/v1/canned/:shortcut': apiRoute(deleteTenantCanned),
    'get /api/v1/agents/:agent/canned': apiRoute(listAgentCanned),
    'put /api/v1/agents/:agent/canned/:shortcut': apiRoute(putAgentCanned),
    'del /api/v1/agents/:agent/canned/:shortcut': apiRoute(deleteAgentCanned),
    'get /api/v1/conversations': apiRoute(listByLabel),
    'post /api/v1/conversations/:id/labels': apiRoute(setLabels),
    'get /api/v1/conversations/:id/audit': apiRoute(audit),
  };
}
