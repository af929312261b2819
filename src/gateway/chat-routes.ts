/**
 * The business and admin routes of /api/v1 (API keys only): create a conversation for a known
 * customer, post a system/bot message, read one conversation, list a visitor's conversations, close,
 * transfer, list the queue, set an agent's status. Every call goes through the ChatApi facade, so it
 * works from any node. Bodies are JSON, read with a cap (readJsonBody) and validated here.
 */
import { z } from 'zod';
import type { ActorRef, ChatApi } from '../chat/api.js';
import { SwitchboardError } from '../protocol/errors.js';
import { ID_PATTERN } from '../protocol/frames.js';
import type { ReceptionService } from '../reception/service.js';
import type { HistoryStore } from '../store/types.js';
import type { ApiKeyScope } from '../tenants.js';
import { type ApiContext, type ApiHandler, caller, idParam, parseIntParam } from './api-routes.js';
import { isJsonContentType, readJsonBody, sendJson, type TrackedResponse } from './http.js';
import { apiKeyCaller, type Caller, type Credentials, credentialsOf, tenantOf } from './http-auth.js';

export const MAX_VISITOR_LISTING = 500;
export const DEFAULT_VISITOR_LISTING = 50;
const MAX_CARD_FIELDS = 16;

export interface ChatRouteContext extends ApiContext {
  chat: ChatApi;
  /** Reception (src/reception/): left messages (src/gateway/reception-routes.ts). */
  reception?: Pick<ReceptionService, 'leftMessages'>;
  store: HistoryStore;
  maxBodyBytes: number;
  maxBodyChars: number;
}

/** Starts reading the JSON body (must run before the handler's first await). */
export function jsonBody(t: TrackedResponse, req: Parameters<ApiHandler>[1], max: number): Promise<unknown> {
  if (!isJsonContentType(req)) {
    t.closeAfter = true;
    throw new SwitchboardError('unsupported_media_type', 'the request body must be application/json');
  }
  return readJsonBody(t, max);
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const path = i.path.length > 0 ? i.path.join('.') : 'body';
  throw new SwitchboardError('invalid_field', `${path}: ${i.message}`);
}

/**
 * The API-key caller of a key-only route, synchronously (so a refusal comes before the body is read),
 * rate-limited. 401 without a key; 403 for a user token (these routes are for business systems).
 */
export function keyCaller(
  ctx: ChatRouteContext,
  cred: Credentials,
  scope: ApiKeyScope,
): Caller & { kind: 'apiKey' } {
  if (cred.apiKey === undefined) {
    if (cred.token !== undefined) {
      throw new SwitchboardError('forbidden', 'this route takes an API key, not a user token');
    }
    throw new SwitchboardError(
      'unauthorized',
      'an API key is required (X-Api-Key or Authorization: Bearer sbk_...)',
    );
  }
  const c = apiKeyCaller(cred.apiKey, ctx.tenants, scope) as Caller & { kind: 'apiKey' };
  ctx.limitHttp(c.tenant);
  return c;
}

/** Who the API key acts as, for the actors' records (close/transfer `by`). */
export function actorOf(c: Caller): ActorRef {
  return c.kind === 'apiKey'
    ? { user: `api:${c.keyId}`, role: 'admin' }
    : { user: c.principal.user, role: c.principal.role };
}

const ID = z.string().regex(ID_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ - . :');
const createSchema = z.strictObject({
  visitor: ID,
  conv: ID.optional(),
  skill: z.string().optional(),
  subject: z.string().optional(),
});
const cardSchema = z.strictObject({
  kind: z.string().min(1).max(32),
  title: z.string().min(1).max(200),
  fields: z
    .record(z.string().max(64), z.string().max(500))
    .refine((f) => Object.keys(f).length <= MAX_CARD_FIELDS, `at most ${MAX_CARD_FIELDS} fields`)
    .optional(),
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
});
const closeSchema = z.strictObject({ reason: z.string().max(200).optional() });
const transferSchema = z.union([z.strictObject({ agent: ID }), z.strictObject({ skill: z.string() })]);
const statusSchema = z.strictObject({
  status: z.enum(['online', 'away', 'offline']),
  capacity: z.number().int().positive().optional(),
  skills: z.array(z.string()).max(16).optional(),
});

/** POST /api/v1/conversations — create (idempotent) a conversation for a known visitor. */
export function createConversationHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const c = keyCaller(ctx, cred, 'api');
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const input = parseWith(createSchema, await body);
    const view = await ctx.chat.createConversation(tenantOf(c), input);
    sendJson(t, 201, view);
  };
}

/**
 * POST /api/v1/conversations/:id/messages — a system or bot message (the ingest hot path: one
 * synchronous key check, one body read, hand-written checks, one actor request).
 */
export function postMessageHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const c = keyCaller(ctx, cred, 'api');
    const tenant = c.tenant;
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const b = (await body) as Record<string, unknown> | null;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) {
      throw new SwitchboardError('invalid_field', 'body: must be a JSON object');
    }
    const { cmid, text, role, from, card } = {
      cmid: b['cmid'],
      text: b['body'],
      role: b['role'] ?? 'bot',
      from: b['from'] ?? c.keyId,
      card: b['card'],
    };
    if (typeof cmid !== 'string' || !ID_PATTERN.test(cmid)) {
      throw new SwitchboardError('invalid_field', 'cmid: must be 1-64 characters of A-Z a-z 0-9 _ - . :');
    }
    if (typeof text !== 'string' || text.trim().length === 0) {
      throw new SwitchboardError('invalid_field', 'body: must be a non-blank string');
    }
    if (text.length > ctx.maxBodyChars) {
      throw new SwitchboardError('payload_too_large', `body: at most ${ctx.maxBodyChars} characters`);
    }
    if (role !== 'bot' && role !== 'system')
      throw new SwitchboardError('invalid_field', "role: must be 'bot' or 'system'");
    if (typeof from !== 'string' || !ID_PATTERN.test(from)) {
      throw new SwitchboardError('invalid_field', 'from: must be 1-64 characters of A-Z a-z 0-9 _ - . :');
    }
    const ack = await ctx.chat.postMessage(tenant, conv, {
      from,
      role,
      cmid,
      body: text,
      ...(card === undefined ? {} : { card: parseWith(cardSchema, card) }),
    });
    sendJson(t, 201, { cmid: ack.cmid, conv: ack.conv, seq: ack.seq, id: ack.id, ts: ack.ts });
  };
}

/** GET /api/v1/conversations/:id — the conversation's state. */
export function conversationHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const c = keyCaller(ctx, cred, 'api');
    const view = await ctx.chat.conversation(tenantOf(c), conv);
    if (!view) throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    sendJson(t, 200, view);
  };
}

/** POST /api/v1/conversations/:id/close — close (idempotent). */
export function closeHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const c = keyCaller(ctx, cred, 'api');
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const input = parseWith(closeSchema, await body);
    if (!(await ctx.chat.conversation(tenantOf(c), conv))) {
      throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    }
    sendJson(t, 200, await ctx.chat.close(tenantOf(c), conv, actorOf(c), input.reason));
  };
}

/** POST /api/v1/conversations/:id/transfer — to an agent or a skill group. */
export function transferHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const conv = idParam(req, 0, 'conversation id');
    const c = keyCaller(ctx, cred, 'api');
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const to = parseWith(transferSchema, await body);
    sendJson(t, 200, await ctx.chat.transfer(tenantOf(c), conv, actorOf(c), to));
  };
}

/** GET /api/v1/visitors/:visitor/conversations?limit= — newest first. */
export function visitorConversationsHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const visitor = idParam(req, 0, 'visitor id');
    const limitRaw = req.getQuery('limit');
    const c = keyCaller(ctx, cred, 'api');
    const limit = parseIntParam(limitRaw, 'limit', 1, MAX_VISITOR_LISTING) ?? DEFAULT_VISITOR_LISTING;
    const items = await ctx.store.listConversations(tenantOf(c), { visitor }, limit);
    sendJson(t, 200, { items });
  };
}

/** GET /api/v1/queue — waiting conversations, oldest first (scope admin). */
export function queueHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    // An agent's token may read its tenant's queue too: the console shows it to pick with `accept`.
    const c = await caller(ctx, cred, { token: true, scope: 'admin' });
    if (c.kind === 'token' && c.principal.role !== 'agent') {
      throw new SwitchboardError('forbidden', 'only agents and admin API keys may read the queue');
    }
    sendJson(t, 200, { items: await ctx.chat.queue(tenantOf(c)) });
  };
}

/** PUT /api/v1/agents/:agent/status — status, optionally capacity and skills (scope admin). */
export function agentStatusHandler(ctx: ChatRouteContext): ApiHandler {
  return async (t, req) => {
    const cred = credentialsOf(req);
    const agent = idParam(req, 0, 'agent id');
    const c = keyCaller(ctx, cred, 'admin');
    const body = jsonBody(t, req, ctx.maxBodyBytes);
    const input = parseWith(statusSchema, await body);
    const opts: { capacity?: number; skills?: string[] } = {};
    if (input.capacity !== undefined) opts.capacity = input.capacity;
    if (input.skills !== undefined) opts.skills = input.skills;
    sendJson(t, 200, await ctx.chat.setAgentStatus(tenantOf(c), agent, input.status, opts));
  };
}
